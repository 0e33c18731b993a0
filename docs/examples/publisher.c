/*
 * A publisher: sends COUNT text messages as component PUB_ID, one every
 * INTERVAL_MS milliseconds.
 *
 *   pps-example-publisher CONFIG PUB_ID COUNT [INTERVAL_MS]
 */
#include <persipubsub/persipubsub.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG PUB_ID COUNT [INTERVAL_MS]\n",
                argv[0]);
        return 2;
    }
    long count = strtol(argv[3], NULL, 10);
    long interval_ms = argc > 4 ? strtol(argv[4], NULL, 10) : 0;

    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc == PPS_OK) {
        rc = pps_pub_open(&pub, cfg, argv[2]);
    }
    for (long i = 0; rc == PPS_OK && i < count; i++) {
        char text[64];
        int len = snprintf(text, sizeof(text), "reading #%ld: %ld.%ld C", i,
                           20 + i % 5, i % 10);
        rc = pps_pub_send(pub, text, (size_t)len);
        if (rc == PPS_OK) {
            printf("[publisher %s] sent     \"%s\"\n", argv[2], text);
            fflush(stdout);
        }
        if (interval_ms > 0) {
            struct timespec ts = {interval_ms / 1000,
                                  (interval_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "publisher: %s: %s\n", pps_strerror(rc),
                pps_last_error());
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
