/*
 * A subscriber: receives as component SUB_ID until it has COUNT messages or
 * none arrives for TIMEOUT_MS milliseconds.
 *
 *   pps-example-subscriber CONFIG SUB_ID COUNT [TIMEOUT_MS]
 */
#include <persipubsub/persipubsub.h>

#include <stdio.h>
#include <stdlib.h>

struct state {
    const char *id;
    long received;
};

/* Called with each message; the payload is valid only during the call. */
static int
on_message(const pps_message *msg, void *user)
{
    struct state *st = user;
    printf("[subscriber %s] received \"%.*s\" (id %llu)\n", st->id,
           (int)msg->len, (const char *)msg->data,
           (unsigned long long)msg->id);
    fflush(stdout);
    st->received++;
    return 0; /* 0 consumes the message; anything else keeps it */
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG SUB_ID COUNT [TIMEOUT_MS]\n",
                argv[0]);
        return 2;
    }
    long count = strtol(argv[3], NULL, 10);
    int timeout_ms = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 5000;

    pps_config *cfg = NULL;
    pps_sub *sub = NULL;
    struct state st = {argv[2], 0};
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc == PPS_OK) {
        rc = pps_sub_open(&sub, cfg, argv[2]);
    }
    while (rc == PPS_OK && st.received < count) {
        rc = pps_sub_receive(sub, timeout_ms, on_message, &st);
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "subscriber: %s: %s\n", pps_strerror(rc),
                pps_last_error());
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
