/*
 * Finding the queues of a configuration: by key, by path as resolved, or by
 * any path to the same directory; and the public accessors of its queues.
 */
#include "internal.h"

#include <string.h>
#include <sys/stat.h>

int
pps__config_find_queues(const pps_config *cfg, const char *name,
                        size_t *first, size_t *end)
{
    *first = 0;
    *end = cfg->n_queues;
    if (name == NULL) {
        return PPS_OK;
    }
    struct stat want;
    bool have_stat = stat(name, &want) == 0;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const pps__queue_cfg *q = &cfg->queues[i];
        struct stat st;
        if (strcmp(q->key, name) == 0 || strcmp(q->path, name) == 0 ||
            (have_stat && stat(q->path, &st) == 0 && st.st_dev == want.st_dev &&
             st.st_ino == want.st_ino)) {
            *first = i;
            *end = i + 1;
            return PPS_OK;
        }
    }
    return pps__err(PPS_ENOTFOUND, "%s: no queue \"%s\" (by key or path)",
                    cfg->file, name);
}

int
pps__config_handle_role(const pps_config *cfg, const char *id,
                        bool publisher, const pps__component **comp,
                        const char *what)
{
    const char *id_name = publisher ? "pub_id" : "sub_id";
    const char *role = publisher ? "out_queue" : "in_queue";
    if (cfg == NULL || id == NULL) {
        return pps__err(PPS_EINVAL, "%s: %s is NULL", what,
                        cfg == NULL ? "cfg" : id_name);
    }
    const pps__component *c = pps__config_component(cfg, id);
    if (c == NULL) {
        return pps__err(PPS_ENOTFOUND, "%s: no component \"%s\"", cfg->file,
                        id);
    }
    if ((publisher ? c->out_queue : c->in_queue) < 0) {
        return pps__err(PPS_ENOTFOUND, "%s: component \"%s\" has no %s",
                        cfg->file, id, role);
    }
    *comp = c;
    return PPS_OK;
}

size_t
pps_config_queue_count(const pps_config *cfg)
{
    return cfg != NULL ? cfg->n_queues : 0;
}

const char *
pps_config_queue_key(const pps_config *cfg, size_t index)
{
    return cfg != NULL && index < cfg->n_queues ? cfg->queues[index].key
                                                : NULL;
}

const char *
pps_config_queue_path(const pps_config *cfg, size_t index)
{
    return cfg != NULL && index < cfg->n_queues ? cfg->queues[index].path
                                                : NULL;
}

int
pps_config_queue_find(const pps_config *cfg, const char *name, size_t *index)
{
    pps__err_begin();
    if (cfg == NULL || name == NULL || index == NULL) {
        return pps__err(PPS_EINVAL, "pps_config_queue_find: %s is NULL",
                        cfg == NULL ? "cfg" : name == NULL ? "name" : "index");
    }
    size_t end;
    return pps__config_find_queues(cfg, name, index, &end);
}
