/*
 * The short C snippets of docs/guide.rst, completed into functions so that
 * the build compiles them (tests/docs_snippets.sh checks that every C code
 * block of the guide is a verbatim part of a compiled example). The longer
 * snippets come from the example programs themselves. Not meant to be run:
 * the snippets name config/example.json relative to the current directory.
 */
#include <persipubsub/persipubsub.h>

#include <stdio.h>

/* "Using the C API": a publisher */
static int
publish(void)
{
    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    int rc = pps_config_load(&cfg, "config/example.json");
    if (rc == PPS_OK) {
        rc = pps_pub_open(&pub, cfg, "pub");
    }
    if (rc == PPS_OK) {
        rc = pps_pub_send(pub, "hello", 5);
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "%s: %s\n", pps_strerror(rc), pps_last_error());
    }
    pps_pub_close(pub);   /* NULL is fine */
    pps_config_free(cfg);
    return rc;
}

/* "Using the C API": a subscriber */
static int
on_message(const pps_message *msg, void *user)
{
    /* msg->data is valid only during this call: copy what you keep. */
    printf("%llu: %.*s\n", (unsigned long long)msg->id, (int)msg->len,
           (const char *)msg->data);
    return 0; /* consume; non-zero keeps it for redelivery */
}

static int
subscribe(const pps_config *cfg)
{
    int rc = PPS_OK;
    pps_sub *sub = NULL;
    rc = pps_sub_open(&sub, cfg, "sub");
    while (rc == PPS_OK) {
        rc = pps_sub_receive(sub, 5000, on_message, NULL);
    }
    /* rc == PPS_ETIMEDOUT: nothing arrived for 5 s */
    pps_sub_close(sub);
    return rc;
}

int
main(void)
{
    /* Referenced, so that they are compiled, but not run. */
    int (*snippets[])(void) = {publish};
    int (*with_config[])(const pps_config *) = {subscribe};
    (void)snippets;
    (void)with_config;
    return 0;
}
