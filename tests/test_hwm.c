/*
 * The high-water mark: its pure arithmetic, and its effect on real queues
 * (MAX_MSGS_NUM and HWM_LMDB_SIZE_BYTES with both strategies,
 * MSG_TIMEOUT_SECS), the control calls prune, clear and init, and a full
 * LMDB map.
 *
 * Which messages survive a count limit is deterministic; the tests simulate
 * the rule (a send that finds count >= MAX_MSGS_NUM first removes
 * ceil(count / 2) messages, the oldest with prune_first, the newest with
 * prune_last, then stores its own) and compare exactly.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NOSYNC "\"durability\": \"nosync\""

static const char *const SUB_A[] = {"a", NULL};
static const char *const SUB_ABC[] = {"a", "b", "c", NULL};

/* ---- helpers ------------------------------------------------------------ */

/* Sends "i<idx>", padded to `len` bytes (at least the text) with a pattern. */
static void
send_idx(pps_pub *pub, size_t idx, size_t len)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "i%zu", idx);
    size_t total = len > (size_t)n + 1 ? len : (size_t)n + 1;
    char *buf = malloc(total);
    cr_assert_not_null(buf);
    memcpy(buf, head, (size_t)n + 1); /* NUL ends the index text */
    for (size_t j = (size_t)n + 1; j < total; j++) {
        buf[j] = (char)((idx * 13 + j) & 0x7f);
    }
    int rc = pps_pub_send(pub, buf, total);
    free(buf);
    cr_assert_eq(rc, PPS_OK, "send %zu: %s: %s", idx, pps_status_name(rc),
                 pps_last_error());
}

/* Sends "i<from>" .. "i<to - 1>" in one pps_pub_send_many(). */
static void
send_many_idx(pps_pub *pub, size_t from, size_t to)
{
    char text[16][32];
    pps_buf msgs[16];
    cr_assert_leq(to - from, 16u);
    for (size_t i = from; i < to; i++) {
        int n = snprintf(text[i - from], sizeof(text[0]), "i%zu", i);
        msgs[i - from].data = text[i - from];
        msgs[i - from].len = (size_t)n + 1;
    }
    int rc = pps_pub_send_many(pub, msgs, to - from);
    cr_assert_eq(rc, PPS_OK, "send_many: %s: %s", pps_status_name(rc),
                 pps_last_error());
}

/* The index of message k of a sink, checking the padding. */
static size_t
idx_of(const pps_test_sink *s, size_t k)
{
    size_t idx = 0;
    cr_assert_eq(sscanf(s->data[k], "i%zu", &idx), 1, "payload '%s'",
                 s->data[k]);
    size_t start = strlen(s->data[k]) + 1;
    for (size_t j = start; j < s->lens[k]; j++) {
        cr_assert_eq(s->data[k][j], (char)((idx * 13 + j) & 0x7f),
                     "message i%zu byte %zu", idx, j);
    }
    return idx;
}

/* The simulated queue: indices of the stored messages, oldest first. */
typedef struct sim {
    size_t idx[4096];
    size_t n;
} sim;

static void
sim_send(sim *s, uint64_t max, bool prune_last, size_t idx)
{
    if (s->n >= max) {
        size_t k = s->n - s->n / 2;
        if (!prune_last) {
            memmove(s->idx, s->idx + k, (s->n - k) * sizeof(s->idx[0]));
        }
        s->n -= k;
    }
    cr_assert_lt(s->n, sizeof(s->idx) / sizeof(s->idx[0]));
    s->idx[s->n++] = idx;
}

/* Receives everything for sub and compares with the simulation; ids must be
 * strictly increasing and match the send order (id - idx constant). */
static void
expect_sim(pps_sub *sub, const sim *want)
{
    pps_test_sink *got = pps_test_sink_new();
    pps_test_drain(sub, got);
    cr_assert_eq(got->n, want->n, "got %zu messages, expected %zu", got->n,
                 want->n);
    for (size_t k = 0; k < got->n; k++) {
        size_t idx = idx_of(got, k);
        cr_assert_eq(idx, want->idx[k], "message %zu: got i%zu, expected i%zu",
                     k, idx, want->idx[k]);
        if (k > 0) {
            cr_assert_gt(got->ids[k], got->ids[k - 1]);
            cr_assert_eq(got->ids[k] - idx, got->ids[0] - want->idx[0],
                         "ids do not follow the send order");
        }
    }
    pps_test_sink_del(got);
}

/* ---- pure arithmetic ---------------------------------------------------- */

Test(hwm, expired_arithmetic, .timeout = 10)
{
    const int64_t s = 1000000000;
    int64_t now = 1700000000 * s;
    cr_assert(!pps__hwm_expired(now, now, 1));
    cr_assert(!pps__hwm_expired(now - s, now, 1)); /* exactly the limit */
    cr_assert(pps__hwm_expired(now - s - 1, now, 1));
    cr_assert(pps__hwm_expired(now - 601 * s, now, 600));
    cr_assert(!pps__hwm_expired(now - 599 * s, now, 600));
    /* a message from the future (clock stepped back) is not expired */
    cr_assert(!pps__hwm_expired(now + 1000 * s, now, 1));
    /* timeouts too large for nanoseconds never expire and never overflow */
    cr_assert(!pps__hwm_expired(0, now, UINT64_MAX));
    cr_assert(!pps__hwm_expired(INT64_MIN, INT64_MAX, UINT64_MAX / 2));
    cr_assert(!pps__hwm_expired(0, now, (uint64_t)INT64_MAX / s));
    cr_assert(pps__hwm_expired(0, now, 1700000000 - 1));
    cr_assert(!pps__hwm_expired(0, now, 1700000000));
}

Test(hwm, over_arithmetic, .timeout = 10)
{
    pps__settings st = {.msg_timeout_secs = 500,
                        .max_msgs_num = 10,
                        .hwm_lmdb_size_bytes = 4096 * 10,
                        .strategy = PPS__PRUNE_FIRST};
    cr_assert(!pps__hwm_over(0, 0, &st));
    cr_assert(!pps__hwm_over(9, 4096 * 10 - 1, &st));
    cr_assert(pps__hwm_over(10, 0, &st)); /* at the count limit */
    cr_assert(pps__hwm_over(11, 0, &st));
    cr_assert(pps__hwm_over(0, 4096 * 10, &st)); /* at the size limit */
    cr_assert(pps__hwm_over(1, UINT64_MAX, &st));
    cr_assert(pps__hwm_over(UINT64_MAX, 0, &st));
    st.max_msgs_num = 1;
    cr_assert(pps__hwm_over(1, 0, &st));
    cr_assert(!pps__hwm_over(0, 0, &st));
}

Test(hwm, prune_count_arithmetic, .timeout = 10)
{
    cr_assert_eq(pps__hwm_prune_count(0), 0u);
    cr_assert_eq(pps__hwm_prune_count(1), 1u);
    cr_assert_eq(pps__hwm_prune_count(2), 1u);
    cr_assert_eq(pps__hwm_prune_count(3), 2u);
    cr_assert_eq(pps__hwm_prune_count(10), 5u);
    cr_assert_eq(pps__hwm_prune_count(11), 6u);
    cr_assert_eq(pps__hwm_prune_count(UINT64_MAX), (UINT64_MAX / 2) + 1);
    for (uint64_t c = 1; c < 1000; c++) {
        uint64_t k = pps__hwm_prune_count(c);
        cr_assert(k >= 1 && k <= c);
        /* Half, rounded up: one value for each count. */
        cr_assert_eq(k, (c + 1) / 2, "count %llu: %llu",
                     (unsigned long long)c, (unsigned long long)k);
    }
}

/* ---- MAX_MSGS_NUM ------------------------------------------------------- */

static void
run_count_limit(bool prune_last)
{
    enum { MAX = 10, N = 25 };
    char *dir = pps_test_tmpdir();
    char hwm[128];
    snprintf(hwm, sizeof(hwm), "{\"MAX_MSGS_NUM\": %d, \"strategy\": \"%s\"}",
             MAX, prune_last ? "prune_last" : "prune_first");
    pps_config *cfg = pps_test_simple(dir, SUB_A, hwm, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    sim *want = calloc(1, sizeof(*want));
    cr_assert_not_null(want);
    for (size_t i = 0; i < N; i++) {
        send_idx(pub, i, 0);
        sim_send(want, MAX, prune_last, i);
        pps_test_usage u = pps_test_queue_usage(cfg);
        cr_assert_leq(u.count, (uint64_t)MAX, "after send %zu: %llu stored", i,
                      (unsigned long long)u.count);
        cr_assert_eq(u.count, (uint64_t)want->n, "after send %zu", i);
    }
    expect_sim(a, want);
    pps_test_usage u = pps_test_queue_usage(cfg);
    cr_assert_eq(u.count, 0u);
    free(want);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hwm, max_msgs_prune_first, .timeout = 60)
{
    run_count_limit(false);
}

Test(hwm, max_msgs_prune_last, .timeout = 60)
{
    run_count_limit(true);
}

Test(hwm, max_msgs_applies_to_every_subscriber, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, SUB_ABC, "{\"MAX_MSGS_NUM\": 4}", NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_sub *c = pps_test_sub_open(cfg, "c");
    sim *want = calloc(1, sizeof(*want));
    cr_assert_not_null(want);
    /* b consumes as it goes; a and c lag: pruning removes what they pend
     * on, consumed or not, and keeps the pending counts right */
    pps_test_sink *rb = pps_test_sink_new();
    for (size_t i = 0; i < 11; i++) {
        send_idx(pub, i, 0);
        sim_send(want, 4, false, i);
        if (i % 3 == 0) {
            pps_test_drain(b, rb);
        }
    }
    expect_sim(a, want);
    expect_sim(c, want);
    /* b received every message that was pending when it looked */
    pps_test_drain(b, rb);
    for (size_t k = 1; k < rb->n; k++) {
        cr_assert_gt(rb->ids[k], rb->ids[k - 1]);
    }
    cr_assert_eq(idx_of(rb, rb->n - 1), 10u);
    pps_test_usage u = pps_test_queue_usage(cfg);
    cr_assert_eq(u.count, 0u,
                 "payloads left after every subscriber "
                 "consumed: %llu",
                 (unsigned long long)u.count);
    pps_test_sink_del(rb);
    free(want);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_sub_close(c);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- HWM_LMDB_SIZE_BYTES ------------------------------------------------ */

static void
run_size_limit(bool prune_last)
{
    enum { LIMIT = 200000, N = 400, SIZE = 4096 };
    char *dir = pps_test_tmpdir();
    char hwm[160];
    snprintf(hwm, sizeof(hwm),
             "{\"HWM_LMDB_SIZE_BYTES\": %d, \"strategy\": \"%s\"}", LIMIT,
             prune_last ? "prune_last" : "prune_first");
    pps_config *cfg = pps_test_simple(dir, SUB_A, hwm, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    uint64_t max_count = 0;
    pps_test_usage u = {0};
    for (size_t i = 0; i < N; i++) {
        send_idx(pub, i, SIZE);
        u = pps_test_queue_usage(cfg);
        /* at most one message (a few pages) beyond the limit */
        cr_assert_lt(u.bytes, (uint64_t)LIMIT + 65536,
                     "after send %zu: %llu bytes", i,
                     (unsigned long long)u.bytes);
        cr_assert_gt(u.count, 0u);
        if (u.count > max_count) {
            max_count = u.count;
        }
    }
    /* the limit was reached (and pruned) more than once */
    cr_assert_lt(max_count, (uint64_t)N / 4, "never pruned?");
    /* freed pages are reused: the map does not keep growing (without reuse
     * N messages of SIZE would take over 3 MB) */
    cr_assert_lt(u.map_used, (uint64_t)LIMIT * 5, "map grew to %llu bytes",
                 (unsigned long long)u.map_used);

    pps_test_sink *got = pps_test_sink_new();
    size_t n = pps_test_drain(a, got);
    cr_assert_eq((uint64_t)n, u.count);
    cr_assert_geq(n, 2u);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(got->lens[k], (size_t)SIZE);
        size_t idx = idx_of(got, k);
        if (k > 0) {
            size_t prev = idx_of(got, k - 1);
            cr_assert_gt(idx, prev, "out of order");
            cr_assert_gt(got->ids[k], got->ids[k - 1]);
            if (!prune_last) {
                /* prune_first keeps a contiguous run of the newest */
                cr_assert_eq(idx, prev + 1);
            }
        }
    }
    /* the newest always survives; prune_last never removes the oldest */
    cr_assert_eq(idx_of(got, n - 1), (size_t)N - 1);
    if (prune_last) {
        cr_assert_eq(idx_of(got, 0), 0u);
    } else {
        cr_assert_gt(idx_of(got, 0), 0u);
    }
    pps_test_sink_del(got);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hwm, size_limit_prune_first, .timeout = 120)
{
    run_size_limit(false);
}

Test(hwm, size_limit_prune_last, .timeout = 120)
{
    run_size_limit(true);
}

/* ---- MSG_TIMEOUT_SECS --------------------------------------------------- */

Test(hwm, expired_messages_pruned_by_send, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, SUB_A, "{\"MSG_TIMEOUT_SECS\": 1}", NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    /* one transaction: no send in between could prune an early one, however
     * slow the machine */
    send_many_idx(pub, 0, 3);
    cr_assert_eq(pps_test_queue_usage(cfg).count, 3u);
    pps_test_sleep_ms(2200);
    send_idx(pub, 3, 0);
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1u);
    pps_test_sink *got = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, got), 1u);
    cr_assert_eq(idx_of(got, 0), 3u);
    pps_test_sink_del(got);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hwm, ctl_prune_removes_expired_messages, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, SUB_A, "{\"MSG_TIMEOUT_SECS\": 1}", NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    /* young messages are left alone: young for certain in a queue whose
     * messages dangle only after an hour, however slow the machine */
    char *ydir = pps_test_tmpdir();
    pps_config *ycfg =
        pps_test_simple(ydir, SUB_A, "{\"MSG_TIMEOUT_SECS\": 3600}", NULL);
    pps_pub *ypub = pps_test_pub_open(ycfg, "pub");
    send_many_idx(ypub, 0, 2);
    cr_assert_eq(pps_ctl_prune(ycfg), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_test_queue_usage(ycfg).count, 2u);
    pps_pub_close(ypub);
    pps_config_free(ycfg);
    pps_test_cleanup(ydir);

    /* messages older than MSG_TIMEOUT_SECS are removed */
    send_many_idx(pub, 0, 2);
    pps_test_sleep_ms(2200);
    cr_assert_eq(pps_ctl_prune(cfg), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0u);
    pps_test_expect_empty(a);
    /* the queue works on */
    send_idx(pub, 2, 0);
    pps_test_sink *got = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, got), 1u);
    cr_assert_eq(idx_of(got, 0), 2u);
    pps_test_sink_del(got);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hwm, ctl_prune_applies_count_limit, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *big =
        pps_test_simple(dir, SUB_A, "{\"MAX_MSGS_NUM\": 100}", NOSYNC);
    pps_pub *pub = pps_test_pub_open(big, "pub");
    for (size_t i = 0; i < 10; i++) {
        send_idx(pub, i, 0);
    }
    pps_pub_close(pub);
    /* lower the limit: nothing happens until a send or a prune */
    pps_config *small =
        pps_test_simple(dir, SUB_A, "{\"MAX_MSGS_NUM\": 4}", NOSYNC);
    cr_assert_eq(pps_test_queue_usage(small).count, 10u);
    cr_assert_eq(pps_ctl_prune(small), PPS_OK, "%s", pps_last_error());
    /* one prune removes half (the oldest) */
    cr_assert_eq(pps_test_queue_usage(small).count, 5u);
    pps_sub *a = pps_test_sub_open(small, "a");
    sim want = {.idx = {5, 6, 7, 8, 9}, .n = 5};
    expect_sim(a, &want);
    pps_sub_close(a);
    pps_config_free(big);
    pps_config_free(small);
    pps_test_cleanup(dir);
}

/* ---- clear -------------------------------------------------------------- */

Test(hwm, ctl_clear_drops_messages_keeps_subscribers, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_ABC, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_sub *c = pps_test_sub_open(cfg, "c");
    for (size_t i = 0; i < 5; i++) {
        send_idx(pub, i, 100);
    }
    pps_test_sink *ra = pps_test_sink_new();
    cr_assert_eq(pps_sub_receive(a, 0, pps_test_collect, ra), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, pps_test_collect, ra), PPS_OK);
    pps_test_sink *rc = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(c, rc), 5u);
    uint64_t last_id = rc->ids[4];

    cr_assert_eq(pps_ctl_clear(cfg), PPS_OK, "%s", pps_last_error());
    pps_test_usage u = pps_test_queue_usage(cfg);
    cr_assert_eq(u.count, 0u);
    pps_test_expect_empty(a);
    pps_test_expect_empty(b);
    pps_test_expect_empty(c);
    /* clearing an empty queue is fine too */
    cr_assert_eq(pps_ctl_clear(cfg), PPS_OK, "%s", pps_last_error());

    /* subscribers are kept, ids go on */
    send_idx(pub, 100, 0);
    pps_pub *pub2 = pps_test_pub_open(cfg, "pub");
    send_idx(pub2, 101, 0);
    pps_sub *subs[3] = {a, b, c};
    for (int s = 0; s < 3; s++) {
        pps_test_sink *got = pps_test_sink_new();
        cr_assert_eq(pps_test_drain(subs[s], got), 2u);
        cr_assert_eq(idx_of(got, 0), 100u);
        cr_assert_eq(idx_of(got, 1), 101u);
        cr_assert_gt(got->ids[0], last_id, "id reused after clear");
        cr_assert_gt(got->ids[1], got->ids[0]);
        pps_test_sink_del(got);
    }
    pps_test_sink_del(ra);
    pps_test_sink_del(rc);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_sub_close(c);
    pps_pub_close(pub);
    pps_pub_close(pub2);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- init and uninitialized queues -------------------------------------- */

Test(hwm, ctl_on_uninitialized_queue, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(
        dir, "{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"q\", "
             "\"subscribers\": [\"a\"]}}}");
    char *qdir = pps_test_path_in(dir, "q");
    int rc = pps_ctl_prune(cfg);
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), qdir), "%s", pps_last_error());
    rc = pps_ctl_clear(cfg);
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    struct stat st;
    cr_assert_neq(stat(qdir, &st), 0, "prune or clear created %s", qdir);
    /* after init both work */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_ctl_prune(cfg), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_ctl_clear(cfg), PPS_OK, "%s", pps_last_error());
    free(qdir);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hwm, init_idempotent_and_updates_settings, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *c100 =
        pps_test_simple(dir, SUB_A, "{\"MAX_MSGS_NUM\": 100}", NOSYNC);
    pps_pub *pub = pps_test_pub_open(c100, "pub");
    sim *want = calloc(1, sizeof(*want));
    cr_assert_not_null(want);
    size_t idx = 0;
    for (; idx < 7; idx++) {
        send_idx(pub, idx, 0);
        sim_send(want, 100, false, idx);
    }
    /* init twice more: nothing changes, nothing is lost */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pps_ctl_init(c100), PPS_OK, "%s", pps_last_error());
        cr_assert_eq(pps_test_queue_usage(c100).count, 7u);
    }
    /* a lower limit from a new config reaches the publisher already open */
    pps_config *c5 =
        pps_test_simple(dir, SUB_A, "{\"MAX_MSGS_NUM\": 5}", NOSYNC);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pps_ctl_init(c5), PPS_OK, "%s", pps_last_error());
    }
    cr_assert_eq(pps_test_queue_usage(c5).count, 7u);
    for (; idx < 20; idx++) {
        send_idx(pub, idx, 0);
        sim_send(want, 5, false, idx);
        pps_test_usage u = pps_test_queue_usage(c5);
        cr_assert_leq(u.count, 5u);
        cr_assert_eq(u.count, (uint64_t)want->n, "after send %zu", idx);
    }
    /* back to 100: no more pruning */
    cr_assert_eq(pps_ctl_init(c100), PPS_OK, "%s", pps_last_error());
    for (; idx < 30; idx++) {
        send_idx(pub, idx, 0);
        sim_send(want, 100, false, idx);
    }
    cr_assert_eq(pps_test_queue_usage(c100).count, (uint64_t)want->n);
    pps_sub *a = pps_test_sub_open(c100, "a");
    expect_sim(a, want);
    free(want);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(c100);
    pps_config_free(c5);
    pps_test_cleanup(dir);
}

/* ---- a full LMDB map ---------------------------------------------------- */

static const char *FULL_JSON =
    "{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},\n"
    " \"b\": {\"in_queue\": \"q\"},\n"
    " \"queues\": {\"q\": {\"path\": \"q\", \"max_db_size_bytes\": 1048576,\n"
    "   \"subscribers\": [\"a\", \"b\"], \"durability\": \"nosync\",\n"
    "   \"high-water-mark\": {\"MAX_MSGS_NUM\": 1000000,\n"
    "     \"HWM_LMDB_SIZE_BYTES\": 1000000000}}}}\n";

Test(hwm, full_map_is_efull_and_recoverable, .timeout = 60)
{
    enum { SIZE = 65536, MAX_TRIES = 100 };
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue(dir, FULL_JSON);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    char *buf = malloc(SIZE);
    cr_assert_not_null(buf);
    int rc = PPS_OK;
    size_t ok = 0;
    for (; ok < MAX_TRIES; ok++) {
        memset(buf, (int)('A' + ok % 26), SIZE);
        snprintf(buf, 32, "i%zu", ok);
        rc = pps_pub_send(pub, buf, SIZE);
        if (rc != PPS_OK) {
            break;
        }
    }
    cr_assert_eq(rc, PPS_EFULL, "after %zu sends: %s: %s", ok,
                 pps_status_name(rc), pps_last_error());
    cr_assert_gt(ok, 0u);
    cr_assert_lt(ok, 16u, "1 MiB cannot hold %zu messages of 64 KiB", ok);
    cr_assert(strstr(pps_last_error(), "max_db_size_bytes") != NULL,
              "detail should name max_db_size_bytes: %s", pps_last_error());
    /* nothing of the failed send was stored */
    cr_assert_eq(pps_test_queue_usage(cfg).count, (uint64_t)ok);
    /* a second attempt fails the same way, cleanly */
    rc = pps_pub_send(pub, buf, SIZE);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    /* a batch whose last entry does not fit stores none of its entries */
    pps_buf batch[2] = {{"tiny", 4}, {buf, SIZE}};
    rc = pps_pub_send_many(pub, batch, 2);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(pps_test_queue_usage(cfg).count, (uint64_t)ok);

    /* a receives exactly the successful sends, intact */
    pps_test_sink *ra = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), ok);
    for (size_t k = 0; k < ok; k++) {
        char head[32];
        snprintf(head, sizeof(head), "i%zu", k);
        cr_assert_eq(ra->lens[k], (size_t)SIZE);
        cr_assert_str_eq(ra->data[k], head);
        for (size_t j = 32; j < SIZE; j++) {
            cr_assert_eq(ra->data[k][j], (char)('A' + k % 26));
        }
        if (k > 0) {
            cr_assert_gt(ra->ids[k], ra->ids[k - 1]);
        }
    }
    /* b still pends on everything: the map is still full; clear frees it */
    rc = pps_ctl_clear(cfg);
    cr_assert_eq(rc, PPS_OK, "clear of a full queue: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_test_expect_empty(b);
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0u);
    for (size_t k = 0; k < 4; k++) {
        memset(buf, 'z', SIZE);
        snprintf(buf, 32, "again%zu", k);
        rc = pps_pub_send(pub, buf, SIZE);
        cr_assert_eq(rc, PPS_OK, "send %zu after clear: %s: %s", k,
                     pps_status_name(rc), pps_last_error());
    }
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(b, rb), 4u);
    cr_assert_str_eq(rb->data[0], "again0");
    cr_assert_str_eq(rb->data[3], "again3");
    cr_assert_gt(rb->ids[0], ra->ids[ok - 1]);
    free(buf);
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
