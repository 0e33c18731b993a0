/*
 * The C code of README.rst, completed into a program so that the build
 * compiles it (tests/docs_snippets.sh checks that each code block of the
 * README is a verbatim part of this file). Not meant to be run: the README
 * leaves out error handling for brevity.
 */
#include <stdio.h>

/* README.rst, "In C" */
#include <persipubsub/persipubsub.h>

static int
on_message(const pps_message *msg, void *user)
{
    printf("%llu: %.*s\n", (unsigned long long)msg->id, (int)msg->len,
           (const char *)msg->data);
    return 0; /* 0 consumes; anything else keeps it for redelivery */
}

int
main(void)
{
    pps_config *cfg;
    pps_pub *pub;
    pps_sub *sub;
    pps_config_load(&cfg, "config/example.json");
    pps_ctl_init(cfg);                 /* once, at deployment: idempotent */
    pps_pub_open(&pub, cfg, "pub");
    pps_pub_send(pub, "hello", 5);     /* on disk when it returns */
    pps_sub_open(&sub, cfg, "sub");
    pps_sub_receive(sub, 1000, on_message, NULL);

    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    return 0;
}
