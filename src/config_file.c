/*
 * The configuration as an object: loaded from a file, freed, asked for a
 * component.
 *
 * pps_config_load() reads the file whole (at most 64 MiB), then parses and
 * validates its text with the queue directories compared on disk
 * (config.c, config_dirs.c). A file that cannot be read is "PATH: cannot
 * read: WHY".
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX ((size_t)64 << 20) /* larger files are refused */

/* "PATH: cannot read: WHY" (WHY is errnum's text, or `why` if errnum is 0). */
static int
fail_read(const char *path, int errnum, const char *why)
{
    char text[256];
    if (errnum != 0 && strerror_r(errnum, text, sizeof(text)) != 0) {
        snprintf(text, sizeof(text), "error %d", errnum);
    }
    return pps__config_report(
        errnum == ENOMEM ? PPS_ENOMEM : PPS_ECONFIG, path, ": cannot read: ",
        errnum != 0 ? text : (why != NULL ? why : "unknown error"));
}

/* Reads the whole file (at most FILE_MAX bytes) into a malloc'ed buffer. */
static int
read_file(const char *path, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    size_t cap = 0;
    int rc = PPS_OK;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return fail_read(path, errno, NULL);
    }
    for (;;) {
        if (*len == cap) {
            if (cap >= FILE_MAX) {
                rc = fail_read(path, 0, "larger than 64 MiB");
                goto fail;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            char *grown = realloc(*text, cap);
            if (grown == NULL) {
                rc = fail_read(path, ENOMEM, NULL);
                goto fail;
            }
            *text = grown;
        }
        errno = 0;
        size_t got = fread(*text + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = fail_read(path, errno != 0 ? errno : EIO, NULL);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    return PPS_OK;

fail:
    fclose(f);
    free(*text);
    *text = NULL;
    *len = 0;
    return rc;
}

int
pps_config_load(pps_config **out, const char *path)
{
    pps__err_begin();
    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || path == NULL) {
        return pps__err(PPS_EINVAL,
                        "pps_config_load: out and path must not be NULL");
    }
    char *text = NULL;
    size_t len = 0;
    char *dir = NULL;
    int rc = read_file(path, &text, &len);
    if (rc != PPS_OK) {
        goto fail;
    }
    /* The directory of the file: "" (keep relative) for a bare name. */
    const char *slash = strrchr(path, '/');
    if (slash != NULL) {
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
        if (dir == NULL) {
            rc = pps__err(PPS_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    rc = pps__config_parse_on_disk(out, text, len, path, dir);

fail:
    free(text);
    free(dir);
    return rc;
}

static void
free_ids(char **ids, size_t n)
{
    if (ids == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
    }
    free(ids);
}

void
pps_config_free(pps_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    if (cfg->queues != NULL) {
        for (size_t i = 0; i < cfg->n_queues; i++) {
            pps__queue_cfg *q = &cfg->queues[i];
            free(q->key);
            free(q->path);
            free_ids(q->subscribers, q->n_subscribers);
        }
        free(cfg->queues);
    }
    if (cfg->components != NULL) {
        for (size_t i = 0; i < cfg->n_components; i++) {
            pps__component *comp = &cfg->components[i];
            free(comp->id);
            free_ids(comp->subscribers, comp->n_subscribers);
        }
        free(cfg->components);
    }
    free(cfg->file);
    free(cfg);
}

const pps__component *
pps__config_component(const pps_config *cfg, const char *id)
{
    if (cfg == NULL || id == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_components; i++) {
        if (strcmp(cfg->components[i].id, id) == 0) {
            return &cfg->components[i];
        }
    }
    return NULL;
}
