/*
 * The protobuf-c helpers (persipubsub/protobuf.h) with the messages of
 * docs/examples/demo.proto: round trips of nested and repeated fields,
 * order, payloads that are not protobuf (kept, PPS_EDECODE), refusal by the
 * callback (kept, PPS_ECALLBACK), invalid arguments, a message far larger
 * than the stack buffer, and interoperability with the plain API.
 *
 * Criterion's test processes end without LeakSanitizer's check, so the
 * freeing of unpacked messages is checked by measuring the heap.
 */
#include "demo.pb-c.h"
#include "internal.h"
#include "pps_alloc.h"
#include "pps_test.h"

#include <persipubsub/protobuf.h>

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
/* From <sanitizer/allocator_interface.h>, which Debian does not ship. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static const char *const SUBS[] = {"a", NULL};

/* Bytes currently allocated on the heap by this process. */
static size_t
heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* ---- building and comparing readings ------------------------------------ */

/* A Reading and every buffer it points to, owned by the test. */
typedef struct fixture {
    Demo__Reading reading;
    Demo__Sensor sensor;
    Demo__Sensor neighbours[3];
    Demo__Sensor *neighbour_ptrs[3];
    double *values;
    char **tags;
    uint8_t *raw;
} fixture;

static char *
dup_str(const char *s)
{
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

/* A reading with every field set; n_values doubles, n_tags tags and
 * n_raw raw bytes, all derived from seq. */
static fixture *
fixture_new(uint64_t seq, size_t n_values, size_t n_tags, size_t n_raw)
{
    fixture *f = calloc(1, sizeof(*f));
    cr_assert_not_null(f);
    demo__sensor__init(&f->sensor);
    f->sensor.id = dup_str("t-101");
    f->sensor.kind = DEMO__SENSOR__KIND__HUMIDITY;
    f->sensor.location = dup_str("boiler room, shelf 2 \xc3\xa4");
    static const Demo__Sensor__Kind kinds[] = {
        DEMO__SENSOR__KIND__TEMPERATURE, DEMO__SENSOR__KIND__PRESSURE,
        DEMO__SENSOR__KIND__KIND_UNSPECIFIED};
    for (size_t i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "n-%zu", i);
        demo__sensor__init(&f->neighbours[i]);
        f->neighbours[i].id = dup_str(id);
        f->neighbours[i].kind = kinds[i];
        f->neighbours[i].location = dup_str(i == 2 ? "" : "hall");
        f->neighbour_ptrs[i] = &f->neighbours[i];
    }
    f->values = calloc(n_values + 1, sizeof(double));
    f->tags = calloc(n_tags + 1, sizeof(char *));
    f->raw = calloc(n_raw + 1, 1);
    cr_assert(f->values != NULL && f->tags != NULL && f->raw != NULL);
    for (size_t i = 0; i < n_values; i++) {
        f->values[i] = (double)seq + (double)i * 0.125 - 3.5;
    }
    for (size_t i = 0; i < n_tags; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "tag-%llu-%zu", (unsigned long long)seq, i);
        f->tags[i] = dup_str(tag);
    }
    for (size_t i = 0; i < n_raw; i++) {
        f->raw[i] = (uint8_t)(i * 7 + seq); /* zero bytes included */
    }
    Demo__Reading *r = &f->reading;
    demo__reading__init(r);
    r->seq = seq;
    r->taken_ns = -(int64_t)seq * 1000 - 1; /* negative: a 10-byte varint */
    r->sensor = &f->sensor;
    r->n_values = n_values;
    r->values = f->values;
    r->n_tags = n_tags;
    r->tags = f->tags;
    r->raw.len = n_raw;
    r->raw.data = f->raw;
    r->quality = DEMO__QUALITY__DEGRADED;
    r->n_neighbours = 3;
    r->neighbours = f->neighbour_ptrs;
    return f;
}

static void
fixture_free(fixture *f)
{
    free(f->sensor.id);
    free(f->sensor.location);
    for (size_t i = 0; i < 3; i++) {
        free(f->neighbours[i].id);
        free(f->neighbours[i].location);
    }
    for (size_t i = 0; i < f->reading.n_tags; i++) {
        free(f->tags[i]);
    }
    free(f->values);
    free(f->tags);
    free(f->raw);
    free(f);
}

/* NULL if the sensors are equal, else what differs. */
static const char *
sensor_diff(const Demo__Sensor *a, const Demo__Sensor *b)
{
    if ((a == NULL) != (b == NULL)) {
        return "sensor presence";
    }
    if (a == NULL) {
        return NULL;
    }
    if (strcmp(a->id, b->id) != 0) {
        return "sensor.id";
    }
    if (a->kind != b->kind) {
        return "sensor.kind";
    }
    if (strcmp(a->location, b->location) != 0) {
        return "sensor.location";
    }
    return NULL;
}

/* NULL if every field of the readings is equal, else the first that is
 * not. */
static const char *
reading_diff(const Demo__Reading *a, const Demo__Reading *b)
{
    if (a->seq != b->seq) {
        return "seq";
    }
    if (a->taken_ns != b->taken_ns) {
        return "taken_ns";
    }
    const char *d = sensor_diff(a->sensor, b->sensor);
    if (d != NULL) {
        return d;
    }
    if (a->n_values != b->n_values) {
        return "n_values";
    }
    for (size_t i = 0; i < a->n_values; i++) {
        if (a->values[i] != b->values[i]) {
            return "values";
        }
    }
    if (a->n_tags != b->n_tags) {
        return "n_tags";
    }
    for (size_t i = 0; i < a->n_tags; i++) {
        if (strcmp(a->tags[i], b->tags[i]) != 0) {
            return "tags";
        }
    }
    if (a->raw.len != b->raw.len ||
        (a->raw.len > 0 && memcmp(a->raw.data, b->raw.data, a->raw.len))) {
        return "raw";
    }
    if (a->quality != b->quality) {
        return "quality";
    }
    if (a->n_neighbours != b->n_neighbours) {
        return "n_neighbours";
    }
    for (size_t i = 0; i < a->n_neighbours; i++) {
        d = sensor_diff(a->neighbours[i], b->neighbours[i]);
        if (d != NULL) {
            return d;
        }
    }
    return NULL;
}

/* ---- callbacks ---------------------------------------------------------- */

/* Compares each received reading with the expected one. Failures are
 * recorded, not asserted: a Criterion assert would jump out of the
 * library's receive. */
typedef struct check {
    const Demo__Reading *const *expected; /* indexed by calls */
    size_t n_expected;
    size_t calls;
    int refuse;            /* returned from the callback */
    const char *diff;      /* first difference found */
    uint64_t ids[1024];    /* raw->id of each call */
    size_t raw_lens[1024]; /* raw->len of each call */
    const ProtobufCMessageDescriptor *descriptor;
} check;

static int
on_reading(const ProtobufCMessage *msg, const pps_message *raw, void *user)
{
    check *c = user;
    size_t i = c->calls++;
    if (i < 1024) {
        c->ids[i] = raw->id;
        c->raw_lens[i] = raw->len;
    }
    c->descriptor = msg->descriptor;
    if (c->diff == NULL) {
        if (i >= c->n_expected) {
            c->diff = "more calls than expected";
        } else {
            c->diff = reading_diff((const Demo__Reading *)msg, c->expected[i]);
        }
    }
    return c->refuse;
}

static int
count_calls(const ProtobufCMessage *msg, const pps_message *raw, void *user)
{
    (void)msg;
    (void)raw;
    (*(int *)user)++;
    return 0;
}

/* A plain callback that keeps a copy of the payload. */
typedef struct raw_copy {
    size_t calls;
    uint64_t id;
    size_t len;
    uint8_t data[256];
} raw_copy;

static int
copy_raw(const pps_message *msg, void *user)
{
    raw_copy *c = user;
    c->calls++;
    c->id = msg->id;
    c->len = msg->len;
    memcpy(c->data, msg->data, msg->len < 256 ? msg->len : 256);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

typedef struct env {
    char *dir;
    pps_config *cfg;
    pps_pub *pub;
    pps_sub *sub;
} env;

static void
env_open(env *e)
{
    e->dir = pps_test_tmpdir();
    e->cfg = pps_test_simple(e->dir, SUBS, NULL, NULL);
    int rc = pps_pub_open(&e->pub, e->cfg, "pub");
    cr_assert_eq(rc, PPS_OK, "pub_open: %s", pps_last_error());
    rc = pps_sub_open(&e->sub, e->cfg, "a");
    cr_assert_eq(rc, PPS_OK, "sub_open: %s", pps_last_error());
}

static void
env_close(env *e)
{
    pps_sub_close(e->sub);
    pps_pub_close(e->pub);
    pps_config_free(e->cfg);
    pps_test_cleanup(e->dir);
}

static void
send_pb(pps_pub *pub, const Demo__Reading *r)
{
    int rc = pps_pub_send_pb(pub, &r->base);
    cr_assert_eq(rc, PPS_OK, "send_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
}

static void
expect_empty(pps_sub *sub)
{
    int calls = 0;
    int rc = pps_sub_receive_pb(sub, &demo__reading__descriptor, 0,
                                count_calls, &calls);
    cr_assert_eq(rc, PPS_ETIMEDOUT, "expected nothing pending, got %s",
                 pps_status_name(rc));
    cr_assert_eq(calls, 0);
}

/* ---- tests -------------------------------------------------------------- */

Test(protobuf, round_trip_every_field, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(42, 5, 3, 16);
    send_pb(e.pub, &f->reading);

    const Demo__Reading *expected[] = {&f->reading};
    check c = {.expected = expected, .n_expected = 1};
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 1000,
                                on_reading, &c);
    cr_assert_eq(rc, PPS_OK, "receive_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(c.calls, 1);
    cr_assert_null(c.diff, "field %s differs", c.diff);
    cr_assert_eq(c.descriptor, &demo__reading__descriptor);
    cr_assert_eq(c.ids[0], 1);
    cr_assert_eq(c.raw_lens[0],
                 protobuf_c_message_get_packed_size(&f->reading.base));
    expect_empty(e.sub);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, defaults_and_absent_fields_round_trip, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    /* Nothing set: proto3 sends nothing; an empty payload is a valid
     * message with every field at its default. */
    Demo__Reading empty = DEMO__READING__INIT;
    send_pb(e.pub, &empty);
    int rc = pps_pub_send(e.pub, NULL, 0);
    cr_assert_eq(rc, PPS_OK);

    const Demo__Reading *expected[] = {&empty, &empty};
    check c = {.expected = expected, .n_expected = 2};
    for (int i = 0; i < 2; i++) {
        rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
        cr_assert_eq(rc, PPS_OK, "receive_pb: %s: %s", pps_status_name(rc),
                     pps_last_error());
    }
    cr_assert_eq(c.calls, 2);
    cr_assert_null(c.diff, "field %s differs", c.diff);
    cr_assert_eq(c.raw_lens[0], 0);
    cr_assert_eq(c.raw_lens[1], 0);
    expect_empty(e.sub);
    env_close(&e);
}

Test(protobuf, many_messages_in_order, .timeout = 60)
{
    enum { N = 300 };
    env e = {0};
    env_open(&e);
    fixture *fx[N];
    const Demo__Reading *expected[N];
    for (size_t i = 0; i < N; i++) {
        fx[i] = fixture_new(i, i % 7, i % 4, i % 11);
        expected[i] = &fx[i]->reading;
        send_pb(e.pub, &fx[i]->reading);
    }
    check c = {.expected = expected, .n_expected = N};
    for (size_t i = 0; i < N; i++) {
        int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                    on_reading, &c);
        cr_assert_eq(rc, PPS_OK, "receive_pb %zu: %s: %s", i,
                     pps_status_name(rc), pps_last_error());
    }
    cr_assert_eq(c.calls, N);
    cr_assert_null(c.diff, "field %s differs", c.diff);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(c.ids[i], i + 1, "message %zu has id %llu", i,
                     (unsigned long long)c.ids[i]);
    }
    expect_empty(e.sub);
    for (size_t i = 0; i < N; i++) {
        fixture_free(fx[i]);
    }
    env_close(&e);
}

Test(protobuf, payload_that_is_not_protobuf_is_kept, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    /* Field 1 with wire type 7, which does not exist. */
    static const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0xff, 0x00, 0x13};
    cr_assert_null(protobuf_c_message_unpack(&demo__reading__descriptor, NULL,
                                             sizeof(garbage), garbage));
    int rc = pps_pub_send(e.pub, garbage, sizeof(garbage));
    cr_assert_eq(rc, PPS_OK);
    fixture *f = fixture_new(7, 2, 1, 3);
    send_pb(e.pub, &f->reading); /* behind the garbage */

    for (int attempt = 0; attempt < 3; attempt++) {
        int calls = 0;
        rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                count_calls, &calls);
        cr_assert_eq(rc, PPS_EDECODE, "attempt %d: %s", attempt,
                     pps_status_name(rc));
        cr_assert_eq(calls, 0, "the callback saw an undecodable payload");
        cr_assert_not_null(strstr(pps_last_error(), "message 1 "),
                           "detail does not name the id: %s",
                           pps_last_error());
        cr_assert_not_null(strstr(pps_last_error(), "demo.Reading"),
                           "detail does not name the type: %s",
                           pps_last_error());
    }

    /* Still there, as it was sent: the plain API reads and consumes it. */
    raw_copy copy = {0};
    rc = pps_sub_receive(e.sub, 0, copy_raw, &copy);
    cr_assert_eq(rc, PPS_OK);
    cr_assert_eq(copy.calls, 1);
    cr_assert_eq(copy.id, 1);
    cr_assert_eq(copy.len, sizeof(garbage));
    cr_assert_arr_eq(copy.data, garbage, sizeof(garbage));

    /* Then the next message decodes. */
    const Demo__Reading *expected[] = {&f->reading};
    check c = {.expected = expected, .n_expected = 1};
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0, on_reading,
                            &c);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_null(c.diff, "field %s differs", c.diff);
    cr_assert_eq(c.ids[0], 2);
    expect_empty(e.sub);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, truncated_payload_is_kept, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(3, 4, 2, 8);
    size_t len = protobuf_c_message_get_packed_size(&f->reading.base);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(&f->reading.base, buf), len);
    /* Cut the last byte: the payload ends inside the last neighbour, a
     * length-delimited field that now claims more bytes than remain. */
    int rc = pps_pub_send(e.pub, buf, len - 1);
    cr_assert_eq(rc, PPS_OK);

    int calls = 0;
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0, count_calls,
                            &calls);
    cr_assert_eq(rc, PPS_EDECODE, "%s", pps_status_name(rc));
    cr_assert_eq(calls, 0);
    raw_copy copy = {0};
    rc = pps_sub_receive(e.sub, 0, copy_raw, &copy);
    cr_assert_eq(rc, PPS_OK);
    cr_assert_eq(copy.len, len - 1);
    free(buf);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, refused_message_is_kept, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(9, 3, 2, 4);
    send_pb(e.pub, &f->reading);

    const Demo__Reading *expected[] = {&f->reading, &f->reading, &f->reading};
    check c = {.expected = expected, .n_expected = 3, .refuse = 1};
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
    cr_assert_eq(rc, PPS_ECALLBACK, "%s", pps_status_name(rc));
    c.refuse = -5; /* any non-zero value refuses */
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0, on_reading,
                            &c);
    cr_assert_eq(rc, PPS_ECALLBACK, "%s", pps_status_name(rc));
    c.refuse = 0;
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0, on_reading,
                            &c);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(c.calls, 3);
    cr_assert_null(c.diff, "field %s differs", c.diff);
    cr_assert(c.ids[0] == 1 && c.ids[1] == 1 && c.ids[2] == 1,
              "the refused message did not come again");
    expect_empty(e.sub);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, invalid_arguments, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    Demo__Reading r = DEMO__READING__INIT;
    int calls = 0;

    cr_assert_eq(pps_pub_send_pb(NULL, &r.base), PPS_EINVAL);
    cr_assert_neq(pps_last_error()[0], '\0');
    cr_assert_eq(pps_pub_send_pb(e.pub, NULL), PPS_EINVAL);
    cr_assert_str_eq(pps_last_error(), "pps_pub_send_pb: msg is NULL");
    /* Not a message: no descriptor, or an enum's descriptor. */
    ProtobufCMessage bare = {0};
    cr_assert_eq(pps_pub_send_pb(e.pub, &bare), PPS_EINVAL);
    ProtobufCMessage wrong = {(const ProtobufCMessageDescriptor
                                   *)(const void *)&demo__quality__descriptor,
                              0, NULL};
    cr_assert_eq(pps_pub_send_pb(e.pub, &wrong), PPS_EINVAL);

    const ProtobufCMessageDescriptor *type = &demo__reading__descriptor;
    cr_assert_eq(pps_sub_receive_pb(NULL, type, 0, count_calls, &calls),
                 PPS_EINVAL);
    cr_assert_neq(pps_last_error()[0], '\0');
    cr_assert_eq(pps_sub_receive_pb(e.sub, NULL, 0, count_calls, &calls),
                 PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_pb(e.sub, type, 0, NULL, NULL), PPS_EINVAL);
    cr_assert_str_eq(pps_last_error(), "pps_sub_receive_pb: fn is NULL");
    cr_assert_eq(
        pps_sub_receive_pb(e.sub,
                           (const ProtobufCMessageDescriptor
                                *)(const void *)&demo__quality__descriptor,
                           0, count_calls, &calls),
        PPS_EINVAL);
    cr_assert_eq(calls, 0);

    /* Nothing was sent by the failed calls. */
    raw_copy copy = {0};
    cr_assert_eq(pps_sub_receive(e.sub, 0, copy_raw, &copy), PPS_ETIMEDOUT);
    cr_assert_eq(copy.calls, 0);
    env_close(&e);
}

Test(protobuf, message_that_fails_its_check_is_not_sent, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    /* A repeated string with a NULL entry would crash the packer. */
    char *tags[] = {"ok", NULL};
    Demo__Reading r = DEMO__READING__INIT;
    r.n_tags = 2;
    r.tags = tags;
    cr_assert_eq(pps_pub_send_pb(e.pub, &r.base), PPS_EINVAL);
    raw_copy copy = {0};
    cr_assert_eq(pps_sub_receive(e.sub, 0, copy_raw, &copy), PPS_ETIMEDOUT);
    env_close(&e);
}

Test(protobuf, large_message_round_trip, .timeout = 60)
{
    env e = {0};
    env_open(&e);
    /* 1 MiB of doubles, 1 MiB of raw bytes and 10000 tags: far over the
     * 4 KiB stack buffer. */
    fixture *f = fixture_new(1, 131072, 10000, 1 << 20);
    size_t len = protobuf_c_message_get_packed_size(&f->reading.base);
    cr_assert_gt(len, 2u << 20);
    send_pb(e.pub, &f->reading);
    /* And a small one after it, on the stack path. */
    fixture *g = fixture_new(2, 1, 1, 1);
    send_pb(e.pub, &g->reading);

    const Demo__Reading *expected[] = {&f->reading, &g->reading};
    check c = {.expected = expected, .n_expected = 2};
    for (int i = 0; i < 2; i++) {
        int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                    on_reading, &c);
        cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc),
                     pps_last_error());
    }
    cr_assert_eq(c.calls, 2);
    cr_assert_null(c.diff, "field %s differs", c.diff);
    cr_assert_eq(c.raw_lens[0], len);
    expect_empty(e.sub);
    fixture_free(f);
    fixture_free(g);
    env_close(&e);
}

Test(protobuf, interoperates_with_the_plain_api, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(5, 2, 2, 2);
    send_pb(e.pub, &f->reading);

    /* What send_pb stored is exactly the protobuf encoding. */
    size_t len = protobuf_c_message_get_packed_size(&f->reading.base);
    cr_assert_leq(len, 256);
    uint8_t packed[256];
    protobuf_c_message_pack(&f->reading.base, packed);
    raw_copy copy = {0};
    cr_assert_eq(pps_sub_receive(e.sub, 0, copy_raw, &copy), PPS_OK);
    cr_assert_eq(copy.len, len);
    cr_assert_arr_eq(copy.data, packed, len);

    /* And a payload packed by hand and sent plainly is a Reading. */
    cr_assert_eq(pps_pub_send(e.pub, packed, len), PPS_OK);
    const Demo__Reading *expected[] = {&f->reading};
    check c = {.expected = expected, .n_expected = 1};
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_null(c.diff, "field %s differs", c.diff);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, unpacked_messages_are_freed, .timeout = 60)
{
    enum { N = 400 };
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(11, 20, 10, 64);
    for (size_t i = 0; i < N + 1; i++) {
        send_pb(e.pub, &f->reading);
    }
    /* The first receive warms the handle's caches up. */
    const Demo__Reading *expected[N + 1];
    for (size_t i = 0; i < N + 1; i++) {
        expected[i] = &f->reading;
    }
    check c = {.expected = expected, .n_expected = N + 1};
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
    cr_assert_eq(rc, PPS_OK);
    size_t before = heap_in_use();
    for (size_t i = 0; i < N; i++) {
        c.refuse = (int)(i % 2); /* freed when refused, too */
        rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
        cr_assert_eq(rc, i % 2 ? PPS_ECALLBACK : PPS_OK);
    }
    size_t after = heap_in_use();
    cr_assert_null(c.diff, "field %s differs", c.diff);
    /* Each unpacked Reading takes over 500 bytes: N of them leaked would
     * be 200 KB. */
    cr_assert_lt(after, before + 16384, "heap grew from %zu to %zu bytes",
                 before, after);
    fixture_free(f);
    env_close(&e);
}

Test(protobuf, waits_for_a_message_then_times_out, .timeout = 30)
{
    env e = {0};
    env_open(&e);
    int calls = 0;
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 50,
                                count_calls, &calls);
    cr_assert_eq(rc, PPS_ETIMEDOUT);
    cr_assert_eq(calls, 0);
    env_close(&e);
}

/* ---- the statuses the helpers pass on from the plain API ---------------- */

Test(protobuf, message_larger_than_the_map_is_efull, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    /* Over 2 MiB packed: it cannot fit a 1 MiB map, whatever is in it. */
    fixture *f = fixture_new(1, 131072, 10000, 1 << 20);
    cr_assert_gt(protobuf_c_message_get_packed_size(&f->reading.base),
                 2u << 20);
    int rc = pps_pub_send_pb(pub, &f->reading.base);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    char *qpath = pps_test_path_in(dir, "q");
    pps_test_expect_detail(qpath, "send_pb of 2 MiB into a 1 MiB map");
    free(qpath);
    /* Nothing of it was stored, and no id was used. */
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_eq(st.messages, 0);
    cr_assert_eq(st.next_id, 1);
    expect_empty(sub);
    /* A small one goes through. */
    fixture *g = fixture_new(2, 1, 1, 1);
    send_pb(pub, &g->reading);
    const Demo__Reading *expected[] = {&g->reading};
    check c = {.expected = expected, .n_expected = 1};
    rc = pps_sub_receive_pb(sub, &demo__reading__descriptor, 0, on_reading,
                            &c);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_null(c.diff, "field %s differs", c.diff);
    fixture_free(f);
    fixture_free(g);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(protobuf, handles_used_after_fork_are_eforked, .timeout = 60)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(3, 1, 1, 1);
    send_pb(e.pub, &f->reading);
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        int calls = 0;
        int rc = pps_pub_send_pb(e.pub, &f->reading.base);
        if (rc != PPS_EFORKED) {
            pps_test_child_fail(PPS_TEST_CHILD_ELOCAL, "send_pb", rc);
        }
        rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                count_calls, &calls);
        if (rc != PPS_EFORKED || calls != 0) {
            pps_test_child_fail(PPS_TEST_CHILD_ELOCAL + 1, "receive_pb", rc);
        }
        if (strstr(pps_last_error(), "fork") == NULL) {
            pps_test_child_fail(PPS_TEST_CHILD_ELOCAL + 2, "detail", rc);
        }
        _exit(PPS_TEST_CHILD_OK);
    }
    pps_test_wait_ok(pid);
    /* The parent's handles are untouched: the one message, once. */
    const Demo__Reading *expected[] = {&f->reading};
    check c = {.expected = expected, .n_expected = 1};
    int rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                on_reading, &c);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(c.calls, 1);
    expect_empty(e.sub);
    fixture_free(f);
    env_close(&e);
}

/* ---- every documented status (docs/reliability.rst) --------------------- */

static const char NAMED_SUBS_JSON[] =
    "{\"pub\": {\"out_queue\": \"q\", \"subscribers\": [\"a\", \"b\"]},"
    " \"a\": {\"in_queue\": \"q\"}, \"b\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\", \"b\"]}}}";
static const char WITHOUT_B_JSON[] =
    "{\"pub\": {\"out_queue\": \"q\", \"subscribers\": [\"a\"]},"
    " \"a\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\"]}}}";

Test(protobuf, removed_subscriber_is_enotinit, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *with = pps_test_queue(dir, NAMED_SUBS_JSON);
    char *path = pps_test_write(dir, "without.json", WITHOUT_B_JSON);
    pps_config *without = NULL;
    cr_assert_eq(pps_config_load(&without, path), PPS_OK, "%s",
                 pps_last_error());
    pps_pub *pub = pps_test_pub_open(with, "pub");
    pps_sub *b = pps_test_sub_open(with, "b");
    fixture *f = fixture_new(1, 1, 1, 1);
    send_pb(pub, &f->reading);
    cr_assert_eq(pps_ctl_remove_subscriber(without, "q", "b"), PPS_OK, "%s",
                 pps_last_error());
    /* The publisher names b; b's handle is no longer registered. */
    int rc = pps_pub_send_pb(pub, &f->reading.base);
    cr_assert_eq(rc, PPS_ENOTINIT, "send_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    int calls = 0;
    rc = pps_sub_receive_pb(b, &demo__reading__descriptor, 0, count_calls,
                            &calls);
    cr_assert_eq(rc, PPS_ENOTINIT, "receive_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(calls, 0);
    fixture_free(f);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(without);
    pps_config_free(with);
    free(path);
    pps_test_cleanup(dir);
}

Test(protobuf, queue_of_a_newer_format_is_eversion, .timeout = 60)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(1, 1, 1, 1);
    send_pb(e.pub, &f->reading);
    uint32_t v2 = PPS__FORMAT_VERSION + 1;
    pps_test_put_raw(e.cfg, PPS__DB_META, 0, "format", 6, &v2, sizeof(v2));
    pps_test_bump_generation(e.cfg);
    int rc = pps_pub_send_pb(e.pub, &f->reading.base);
    cr_assert_eq(rc, PPS_EVERSION, "send_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    fixture_free(f);
    env_close(&e);
}

static int
note_id_and_refuse(const pps_message *msg, void *user)
{
    *(uint64_t *)user = msg->id;
    return 1;
}

Test(protobuf, damaged_queue_is_estorage, .timeout = 60)
{
    env e = {0};
    env_open(&e);
    fixture *f = fixture_new(1, 1, 1, 1);
    send_pb(e.pub, &f->reading);
    uint64_t id = 0;
    cr_assert_eq(pps_sub_receive(e.sub, 0, note_id_and_refuse, &id),
                 PPS_ECALLBACK);
    /* Its metadata is 3 bytes where 16 are expected, and a payload sits
     * under the largest id, so that no id is left for the next send. */
    pps_test_put_raw(e.cfg, PPS__DB_MSG, PPS__ID_KEYED, &id, sizeof(id),
                     "bad", 3);
    uint64_t top = UINT64_MAX;
    pps_test_put_raw(e.cfg, PPS__DB_DATA, PPS__ID_KEYED, &top, sizeof(top),
                     "z", 1);
    int rc = pps_pub_send_pb(e.pub, &f->reading.base);
    cr_assert_eq(rc, PPS_ESTORAGE, "send_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    int calls = 0;
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                            count_calls, &calls);
    cr_assert_eq(rc, PPS_ESTORAGE, "receive_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(calls, 0);
    fixture_free(f);
    env_close(&e);
}

/* The failing allocator of tests/pps_alloc.c, linked into this test. */
Test(protobuf, out_of_memory_is_enomem_and_keeps_the_message, .timeout = 60)
{
    env e = {0};
    env_open(&e);
    /* Over the 4 KiB stack buffer: send_pb packs it on the heap. */
    fixture *big = fixture_new(1, 2048, 1, 1);
    cr_assert_gt(protobuf_c_message_get_packed_size(&big->reading.base),
                 4096u);
    pps_alloc_arm(1);
    int rc = pps_pub_send_pb(e.pub, &big->reading.base);
    pps_alloc_disarm();
    cr_assert_eq(rc, PPS_ENOMEM, "send_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(pps_test_queue_usage(e.cfg).count, 0);
    fixture *f = fixture_new(2, 1, 1, 1);
    send_pb(e.pub, &f->reading);
    send_pb(e.pub, &f->reading);
    int calls = 0;
    /* The handle has received once: the next receive allocates nothing
     * but the unpacked message. */
    cr_assert_eq(pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                    count_calls, &calls),
                 PPS_OK);
    pps_alloc_arm(1);
    rc = pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                            count_calls, &calls);
    pps_alloc_disarm();
    cr_assert_eq(rc, PPS_ENOMEM, "receive_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "out of memory"), "%s",
                       pps_last_error());
    cr_assert_eq(calls, 1, "the callback was called without a message");
    /* Kept: it comes again. */
    cr_assert_eq(pps_sub_receive_pb(e.sub, &demo__reading__descriptor, 0,
                                    count_calls, &calls),
                 PPS_OK);
    cr_assert_eq(calls, 2);
    fixture_free(f);
    fixture_free(big);
    env_close(&e);
}

Test(protobuf, consumption_on_a_full_map_is_efull, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    fixture *f = fixture_new(1, 1, 1, 1);
    send_pb(pub, &f->reading);
    /* Somebody else took every page, the room kept for consumption too. */
    unsigned fill = pps_test_fill_map_raw(cfg);
    int calls = 0;
    int rc = pps_sub_receive_pb(sub, &demo__reading__descriptor, 0,
                                count_calls, &calls);
    cr_assert_eq(rc, PPS_EFULL, "receive_pb: %s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_unfill_map_raw(cfg, fill);
    /* The owed consumption commits now; the message does not come again. */
    expect_empty(sub);
    cr_assert_eq(calls, 1);
    fixture_free(f);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
