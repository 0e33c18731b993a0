/*
 * A protobuf subscriber: receives demo.Reading messages (demo.proto) as
 * component SUB_ID and prints them, until it has COUNT of them or none
 * arrives for TIMEOUT_MS milliseconds. A message that is not a Reading is
 * reported on stderr and consumed, so that it does not block the queue.
 *
 *   pps-example-pb-subscriber CONFIG SUB_ID COUNT [TIMEOUT_MS]
 *
 * Build it on its own with:
 *
 *   protoc-c --c_out=. demo.proto
 *   cc -std=c11 -o pb_subscriber pb_subscriber.c demo.pb-c.c \
 *       $(pkg-config --cflags --libs persipubsub-protobuf)
 */
#include "demo.pb-c.h"

#include <persipubsub/protobuf.h>

#include <stdio.h>
#include <stdlib.h>

struct state {
    const char *id;
    long received;
};

/* The name of an enum value, as written in demo.proto. */
static const char *
enum_name(const ProtobufCEnumDescriptor *type, int value)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(type, value);
    return v != NULL ? v->name : "?";
}

/* Called with each Reading; it is freed when this returns. */
static int
on_reading(const ProtobufCMessage *msg, const pps_message *raw, void *user)
{
    const Demo__Reading *r = (const Demo__Reading *)msg;
    struct state *st = user;
    printf("[%s] id %llu: reading %llu", st->id, (unsigned long long)raw->id,
           (unsigned long long)r->seq);
    if (r->sensor != NULL) { /* a nested message may be absent */
        printf(" of %s (%s, %s)", r->sensor->id,
               enum_name(&demo__sensor__kind__descriptor, r->sensor->kind),
               r->sensor->location);
    }
    for (size_t i = 0; i < r->n_values; i++) {
        printf(" %.2f", r->values[i]);
    }
    for (size_t i = 0; i < r->n_tags; i++) {
        printf(" #%s", r->tags[i]);
    }
    printf(", %zu raw bytes, %s\n", r->raw.len,
           enum_name(&demo__quality__descriptor, r->quality));
    fflush(stdout);
    st->received++;
    return 0; /* 0 consumes the message; anything else keeps it */
}

/* Consumes a message that is not a Reading, after saying so. */
static int
skip_message(const pps_message *msg, void *user)
{
    struct state *st = user;
    fprintf(stderr, "[%s] id %llu: not a Reading (%zu bytes); skipped\n",
            st->id, (unsigned long long)msg->id, msg->len);
    return 0;
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
        rc = pps_sub_receive_pb(sub, &demo__reading__descriptor, timeout_ms,
                                on_reading, &st);
        if (rc == PPS_EDECODE) {
            /* Not a Reading: it stays in the queue until consumed. */
            rc = pps_sub_receive(sub, 0, skip_message, &st);
        }
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "pb_subscriber: %s: %s\n", pps_strerror(rc),
                pps_last_error());
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
