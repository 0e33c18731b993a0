/*
 * libFuzzer target: the config loader's pure parser, pps__config_parse(),
 * from any bytes. Property: no crash, no leak, no undefined behaviour, and
 * either a configuration (which is then freed) or PPS_ECONFIG (PPS_ENOMEM
 * allowed) with a one-line detail that names the file.
 *
 * Built and run by tests/fuzz/run.sh (clang -fsanitize=fuzzer,...).
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pps_config *cfg = (pps_config *)&cfg; /* must be overwritten */
    pps__err_begin();
    int rc = pps__config_parse(&cfg, (const char *)data, size, "fuzz.json",
                               "/base");
    if (rc == PPS_OK) {
        if (cfg == NULL) {
            fprintf(stderr, "PPS_OK without a configuration\n");
            abort();
        }
        /* Whatever was accepted is usable: every component names a
         * defined queue, every queue has a path. */
        for (size_t i = 0; i < cfg->n_queues; i++) {
            if (cfg->queues[i].path == NULL || cfg->queues[i].path[0] == '\0' ||
                cfg->queues[i].max_db_size_bytes == 0) {
                abort();
            }
            for (size_t k = 0; k < cfg->queues[i].n_subscribers; k++) {
                if (!pps__sub_id_valid(cfg->queues[i].subscribers[k])) {
                    abort();
                }
            }
        }
        for (size_t i = 0; i < cfg->n_components; i++) {
            const pps__component *c = &cfg->components[i];
            if ((c->out_queue < 0 && c->in_queue < 0) ||
                c->out_queue >= (long)cfg->n_queues ||
                c->in_queue >= (long)cfg->n_queues ||
                pps__config_component(cfg, c->id) == NULL) {
                abort();
            }
        }
        pps_config_free(cfg);
        return 0;
    }
    const char *e = pps_last_error();
    if (cfg != NULL || (rc != PPS_ECONFIG && rc != PPS_ENOMEM) ||
        e[0] == '\0' || strchr(e, '\n') != NULL ||
        strncmp(e, "fuzz.json", 9) != 0) {
        fprintf(stderr, "bad failure: %s (%d), cfg %p, detail \"%s\"\n",
                pps_status_name(rc), rc, (void *)cfg, e);
        abort();
    }
    return 0;
}
