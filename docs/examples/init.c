/*
 * Initializes every queue of a configuration, as `persipubsub-ctl init`
 * does: creates the queue directories and registers the subscribers.
 * Idempotent: run it at every deployment.
 *
 *   pps-example-init CONFIG
 */
#include <persipubsub/persipubsub.h>

#include <stdio.h>

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
        return 2;
    }
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc == PPS_OK) {
        rc = pps_ctl_init(cfg); /* creates or updates every queue */
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "init: %s: %s\n", pps_strerror(rc), pps_last_error());
    }
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
