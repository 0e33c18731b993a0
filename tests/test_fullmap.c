/*
 * Hostile use of a full or nearly full map (issue 10; docs/reliability.rst,
 * "A full map"):
 *
 * - draining a full map in batches of any size makes progress and hands no
 *   message twice (the consumption is committed in parts that fit);
 * - receive_to_top on a full map;
 * - a large message after a large message (the pages the first one freed
 *   are reused by the next one);
 * - send_many larger than MAX_MSGS_NUM leaves the queue within the mark;
 * - the detail of a refused send says what the send needs.
 *
 * "nosync" queues where the test is not about durability: fast on a loaded
 * machine.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOSYNC "\"durability\": \"nosync\""

/* Records the ids handed to a callback: how many, how many twice. */
typedef struct seen {
    uint8_t *ids; /* one byte per id, 1..cap */
    size_t cap;
    size_t handed;
    size_t twice;
    uint64_t last;
    bool out_of_order;
} seen;

static int
record(const pps_message *msg, void *user)
{
    seen *s = user;
    s->handed++;
    if (msg->id >= s->cap) {
        return 0;
    }
    if (s->ids[msg->id]) {
        s->twice++;
    } else if (msg->id <= s->last) {
        s->out_of_order = true;
    }
    s->ids[msg->id] = 1;
    if (msg->id > s->last) {
        s->last = msg->id;
    }
    return 0;
}

/* Drains sub with receive_batch(max) until PPS_ETIMEDOUT; every call must
 * consume something. Returns how many messages were consumed. */
static size_t
drain_batches(pps_sub *sub, size_t max, seen *s, const char *who)
{
    size_t consumed = 0, calls = 0;
    for (;;) {
        int rc = pps_sub_receive_batch(sub, max, 0, record, s);
        if (rc == PPS_ETIMEDOUT) {
            break;
        }
        cr_assert_gt(rc, 0, "%s, batch %zu of max %zu after %zu consumed: "
                     "%s: %s", who, calls, max, consumed,
                     pps_status_name(rc), pps_last_error());
        consumed += (size_t)rc;
        calls++;
        cr_assert_lt(calls, 1000000, "%s: no end", who);
    }
    return consumed;
}

/* Fills a 4 MiB map with two subscribers to PPS_EFULL, then drains both
 * with receive_batch(max): no livelock, no duplicate. */
static void
full_map_drained_in_batches(size_t max)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 4 * PPS_TEST_MIB, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, 100, &next, 1000000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_log_info("4 MiB map full after %zu messages of 100 bytes", sent);

    const char *ids[2] = {"s1", "s2"};
    for (int i = 0; i < 2; i++) {
        seen s = {.cap = sent + 2};
        s.ids = calloc(s.cap, 1);
        cr_assert_not_null(s.ids);
        pps_sub *sub = pps_test_sub_open(cfg, ids[i]);
        size_t consumed = drain_batches(sub, max, &s, ids[i]);
        cr_assert_eq(s.twice, 0, "%s, batches of %zu: %zu messages were "
                     "handed twice (%zu handed, %zu consumed)", ids[i], max,
                     s.twice, s.handed, consumed);
        cr_assert(!s.out_of_order, "%s: out of order", ids[i]);
        cr_assert_eq(consumed, sent, "%s consumed %zu of %zu", ids[i],
                     consumed, sent);
        cr_assert_eq(s.handed, sent);
        pps_sub_close(sub);
        free(s.ids);
    }
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_eq(st.messages, 0);
    pps_test_expect_consistent(cfg);
    /* And the map takes messages again. */
    size_t again = 0;
    rc = pps_test_fill(pub, 100, &next, sent / 2, &again);
    cr_assert_eq(rc, PPS_OK, "send %zu after draining: %s: %s", again,
                 pps_status_name(rc), pps_last_error());
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(fullmap, drain_full_map_in_batches_of_1, .timeout = 300)
{
    full_map_drained_in_batches(1);
}

Test(fullmap, drain_full_map_in_batches_of_100, .timeout = 300)
{
    full_map_drained_in_batches(100);
}

Test(fullmap, drain_full_map_in_batches_of_100000, .timeout = 300)
{
    full_map_drained_in_batches(100000);
}

Test(fullmap, receive_to_top_on_a_full_map, .timeout = 300)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 4 * PPS_TEST_MIB, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, 100, &next, 1000000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    const char *ids[2] = {"s1", "s2"};
    for (int i = 0; i < 2; i++) {
        seen s = {.cap = sent + 2};
        s.ids = calloc(s.cap, 1);
        cr_assert_not_null(s.ids);
        pps_sub *sub = pps_test_sub_open(cfg, ids[i]);
        rc = pps_sub_receive_to_top(sub, 0, record, &s);
        cr_assert_eq(rc, PPS_OK, "%s: receive_to_top on a full map: %s: %s",
                     ids[i], pps_status_name(rc), pps_last_error());
        cr_assert_eq(s.handed, 1);
        cr_assert_eq(s.last, sent, "%s got message %llu, the newest is %zu",
                     ids[i], (unsigned long long)s.last, sent);
        pps_test_expect_empty(sub);
        pps_sub_close(sub);
        free(s.ids);
    }
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_eq(st.messages, 0);
    pps_test_expect_consistent(cfg);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- a large message after a large message ------------------------------ */

/* The size the detail of a refused large send says fits now, 0 if none. */
static size_t
largest_that_fits(const char *detail)
{
    static const char key[] = "a message of up to ";
    const char *p = strstr(detail, key);
    return p != NULL ? (size_t)strtoull(p + sizeof(key) - 1, NULL, 10) : 0;
}

/* A 64 MiB map, every message sent into an empty queue right after the
 * previous one was consumed by both subscribers. A message no larger than
 * the one before always fits: the pages that one freed are reused. A
 * larger one may find the free pages split by the few pages that stay in
 * use (LMDB needs one run of pages for it, and puts small pages such as
 * its free list's records in the lowest free ones); it is then PPS_EFULL
 * with a size that surely fits now (at most 512 KiB below the previous
 * size: the room the free list's record may take), and that size does
 * fit. */
Test(fullmap, large_message_after_large_message, .timeout = 300)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 64 * PPS_TEST_MIB, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_sub *s2 = pps_test_sub_open(cfg, "s2");
    static const size_t mib[] = {60, 4, 58, 30, 58, 40, 60, 2,
                                 48, 59, 12, 58, 58, 48, 1, 60};
    size_t prev = 0;
    unsigned char *buf = malloc(60 * PPS_TEST_MIB);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
        size_t len = mib[i] * PPS_TEST_MIB;
        pps_test_payload(buf, len, (uint32_t)i);
        int rc = pps_pub_send(pub, buf, len);
        if (rc == PPS_EFULL && len > prev) {
            size_t fits = largest_that_fits(pps_last_error());
            cr_log_info("%zu MiB after %zu bytes: %s", mib[i], prev,
                        pps_last_error());
            cr_assert_geq(fits + 512 * PPS_TEST_KIB, prev, "send %zu: %zu MiB into an empty "
                          "64 MiB queue after %zu bytes: %s", i, mib[i],
                          prev, pps_last_error());
            cr_assert_lt(fits, len);
            len = fits;
            pps_test_payload(buf, len, (uint32_t)i);
            rc = pps_pub_send(pub, buf, len);
        }
        cr_assert_eq(rc, PPS_OK, "send %zu: %zu bytes into an empty 64 MiB "
                     "queue: %s: %s", i, len, pps_status_name(rc),
                     pps_last_error());
        pps_test_seq x = {.len = len, .next = (uint32_t)i,
                          .want = malloc(len)};
        pps_test_receive_expected(s1, &x, 1, "s1");
        x = (pps_test_seq){.len = len, .next = (uint32_t)i, .want = x.want};
        pps_test_receive_expected(s2, &x, 1, "s2");
        free(x.want);
        pps_test_qstat st = pps_test_queue_status(cfg);
        cr_assert_eq(st.messages, 0);
        prev = len;
    }
    free(buf);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- send_many beyond MAX_MSGS_NUM -------------------------------------- */

/* 10,000 messages in one send_many under MAX_MSGS_NUM 1000: the mark is
 * applied after the batch too (halving while over it), so the queue is
 * never left over the limit; prune_first keeps the batch's newest,
 * prune_last its oldest. */
static void
batch_over_max_msgs(const char *strategy, bool newest_kept)
{
    char *dir = pps_test_tmpdir();
    char extra[256];
    snprintf(extra, sizeof(extra),
             NOSYNC ", \"high-water-mark\": {\"MAX_MSGS_NUM\": 1000, "
             "\"strategy\": \"%s\"}", strategy);
    pps_config *cfg = pps_test_small_queue(dir, 16 * PPS_TEST_MIB, extra);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    enum { N = 10000 };
    static char text[N][8];
    static pps_buf msgs[N];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "%d", i);
        msgs[i] = (pps_buf){text[i], strlen(text[i])};
    }
    int rc = pps_pub_send_many(pub, msgs, N);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_leq(st.messages, 1000, "%s: %llu messages stored under "
                  "MAX_MSGS_NUM 1000", strategy,
                  (unsigned long long)st.messages);
    cr_assert_geq(st.messages, 500, "%s: only %llu messages kept", strategy,
                  (unsigned long long)st.messages);
    cr_assert_eq(st.next_id, N + 2, "every message got its id");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_test_sink *sink = pps_test_sink_new();
    size_t got = pps_test_drain(s1, sink);
    cr_assert_eq(got, st.messages);
    for (size_t i = 1; i < got; i++) {
        cr_assert_eq(sink->ids[i], sink->ids[i - 1] + 1, "a gap at %zu", i);
    }
    if (newest_kept) {
        cr_assert_eq(sink->ids[got - 1], N + 1, "the newest was pruned");
    } else {
        cr_assert_str_eq(sink->data[0], "before", "the oldest was pruned");
    }
    pps_test_sink_del(sink);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(fullmap, send_many_beyond_max_msgs_prune_first, .timeout = 120)
{
    batch_over_max_msgs("prune_first", true);
}

Test(fullmap, send_many_beyond_max_msgs_prune_last, .timeout = 120)
{
    batch_over_max_msgs("prune_last", false);
}

/* A send refused for want of room says what it needs in terms that hold:
 * a 2-byte message stores about a hundred bytes; the rest of the estimate
 * is the pages its commit may copy. */
Test(fullmap, efull_detail_of_a_small_send_is_truthful, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, 2000, &next, 100000, &sent);
    cr_assert_eq(rc, PPS_EFULL);
    while ((rc = pps_pub_send(pub, "ab", 2)) == PPS_OK) {
    }
    cr_assert_eq(rc, PPS_EFULL, "%s", pps_status_name(rc));
    const char *d = pps_last_error();
    const char *p = strstr(d, "the send stores about ");
    cr_assert_not_null(p, "%s", d);
    unsigned long long stored = strtoull(p + 22, NULL, 10);
    cr_assert_lt(stored, 200, "a 2-byte send stores %llu bytes? %s", stored,
                 d);
    cr_assert_not_null(strstr(d, "may copy up to"), "%s", d);
    cr_assert_not_null(strstr(d, "max_db_size_bytes"), "%s", d);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
