/*
 * Subscribing through the public API (src/subscriber.c): pending messages
 * survive closing the handles, a refused message stays, timeouts and
 * waiting receives woken by a send from a thread or another process,
 * receive_to_top, receive_batch, subscriber ids like internal names or
 * odd, a subscriber unknown to the queue, handles after fork, and reader
 * slots released by handle churn.
 *
 * Each test has its own queue directory; children of fork() report through
 * their exit code (never through Criterion's asserts) and leave with _exit().
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOSYNC "\"durability\": \"nosync\""

static const char *const SUB_A[] = {"a", NULL};
static const char *const SUB_AB[] = {"a", "b", NULL};

/* ---- helpers ------------------------------------------------------------ */

/* ---- persistence -------------------------------------------------------- */

Test(subscriber, pending_messages_survive_reopen, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    unsigned char buf[128];
    for (size_t i = 0; i < 10; i++) {
        pps_test_pattern_fill(buf, i, pps_test_pattern_len(i));
        cr_assert_eq(pps_pub_send(pub, buf, pps_test_pattern_len(i)), PPS_OK);
    }
    pps_test_sink *first = pps_test_sink_new();
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pps_sub_receive(a, 0, pps_test_collect, first), PPS_OK);
    }
    uint64_t first_id = first->ids[0];
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);

    /* A fresh config object from the same file, fresh handles. */
    char *file = pps_test_config_path(dir);
    cfg = NULL;
    int rc = pps_config_load(&cfg, file);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    free(file);
    a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_sink *ra = pps_test_sink_new();
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), 7u);
    cr_assert_eq(pps_test_drain(b, rb), 10u);
    for (size_t k = 0; k < 7; k++) {
        pps_test_check_pattern(ra, k, k + 3);
        cr_assert_eq(ra->ids[k], first_id + 3 + k);
    }
    for (size_t k = 0; k < 10; k++) {
        pps_test_check_pattern(rb, k, k);
        cr_assert_eq(rb->ids[k], first_id + k);
    }
    /* The sequence continues after reopening: no id is reused. */
    pub = pps_test_pub_open(cfg, "pub");
    pps_test_send_str(pub, "after");
    pps_test_sink *rc2 = pps_test_sink_new();
    cr_assert_eq(pps_sub_receive(a, 0, pps_test_collect, rc2), PPS_OK);
    cr_assert_gt(rc2->ids[0], rb->ids[9]);
    cr_assert_str_eq(rc2->data[0], "after");
    pps_test_sink_del(first);
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_test_sink_del(rc2);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- callback refusal --------------------------------------------------- */

Test(subscriber, callback_refusal_keeps_message, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_send_str(pub, "first");
    pps_test_send_str(pub, "second");

    pps_test_sink *ra = pps_test_sink_new();
    ra->refuse = 42;
    for (int i = 0; i < 3; i++) {
        int rc = pps_sub_receive(a, 0, pps_test_collect, ra);
        cr_assert_eq(rc, PPS_ECALLBACK, "got %s", pps_status_name(rc));
        cr_assert_not_null(strstr(pps_last_error(), "refused"), "%s",
                           pps_last_error());
    }
    cr_assert_eq(ra->n, 0u);

    /* b is unaffected by a's refusals. */
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(b, rb), 2u);
    cr_assert_str_eq(rb->data[0], "first");
    cr_assert_str_eq(rb->data[1], "second");

    /* a gets the same message, with the same id, once it accepts. */
    ra->refuse = 0;
    cr_assert_eq(pps_test_drain(a, ra), 2u);
    cr_assert_str_eq(ra->data[0], "first");
    cr_assert_str_eq(ra->data[1], "second");
    cr_assert_eq(ra->ids[0], rb->ids[0]);
    cr_assert_eq(ra->ids[1], rb->ids[1]);
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- timeouts ----------------------------------------------------------- */

Test(subscriber, timeout_zero_on_empty, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_sub *a = pps_test_sub_open(cfg, "a");
    int calls = 0;
    int64_t t0 = pps_test_mono_ms();
    cr_assert_eq(pps_sub_receive(a, 0, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    cr_assert_eq(pps_sub_receive_batch(a, 10, 0, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    cr_assert_eq(pps_sub_receive_to_top(a, 0, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    int64_t t1 = pps_test_mono_ms();
    cr_assert_eq(calls, 0);
    cr_assert_lt(t1 - t0, 3000, "timeout 0 should not wait (%lld ms)",
                 (long long)(t1 - t0));
    cr_assert_neq(pps_last_error()[0], '\0');
    pps_sub_close(a);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, positive_timeout_on_empty, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_sub *a = pps_test_sub_open(cfg, "a");
    int calls = 0;
    int64_t t0 = pps_test_mono_ms();
    cr_assert_eq(pps_sub_receive(a, 200, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    int64_t t1 = pps_test_mono_ms();
    cr_assert_geq(t1 - t0, 180, "returned after %lld ms",
                  (long long)(t1 - t0));
    cr_assert_lt(t1 - t0, 5000, "returned after %lld ms",
                 (long long)(t1 - t0));
    t0 = pps_test_mono_ms();
    cr_assert_eq(
        pps_sub_receive_batch(a, 5, 200, pps_test_count_calls, &calls),
        PPS_ETIMEDOUT);
    t1 = pps_test_mono_ms();
    cr_assert_geq(t1 - t0, 180);
    cr_assert_lt(t1 - t0, 5000);
    cr_assert_eq(calls, 0);
    pps_sub_close(a);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

typedef struct waiter {
    pps_sub *sub;
    pps_test_sink *sink;
    int rc;
} waiter;

static void *
wait_forever(void *arg)
{
    waiter *w = arg;
    w->rc = pps_sub_receive(w->sub, -1, pps_test_collect, w->sink);
    return NULL;
}

Test(subscriber, wait_forever_in_thread_wakes_on_send, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    waiter w = {pps_test_sub_open(cfg, "a"), pps_test_sink_new(), 1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, wait_forever, &w), 0);
    /* Send once the thread sleeps in the kernel (counted in pps.wake). */
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert(pps_test_wait_for_waiters(qpath, 0, 20000),
              "the receiving thread never went to sleep");
    free(qpath);
    pps_test_send_str(pub, "wake up");
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(w.rc, PPS_OK, "%s", pps_status_name(w.rc));
    cr_assert_eq(w.sink->n, 1u);
    cr_assert_str_eq(w.sink->data[0], "wake up");
    pps_test_sink_del(w.sink);
    pps_sub_close(w.sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, wait_forever_in_child_process_wakes_on_send, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent); /* dies with the test */
        pps_sub *sub = NULL;
        if (pps_sub_open(&sub, cfg, "a") != PPS_OK) {
            _exit(10);
        }
        pps_test_sink s = {0};
        if (pps_sub_receive(sub, -1, pps_test_collect, &s) != PPS_OK) {
            _exit(11);
        }
        if (s.n != 1 || strcmp(s.data[0], "across processes") != 0) {
            _exit(12);
        }
        pps_test_sink_free(&s);
        pps_sub_close(sub);
        _exit(0);
    }
    /* Send once the child sleeps in the kernel (counted in pps.wake). */
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert(pps_test_wait_for_waiters(qpath, 0, 20000),
              "the receiving child never went to sleep");
    free(qpath);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_test_send_str(pub, "across processes");
    pps_test_wait_ok(pid);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- receive_to_top ----------------------------------------------------- */

Test(subscriber, receive_to_top_delivers_newest_only, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    char text[32];
    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        pps_test_send_str(pub, text);
    }
    pps_test_sink *ra = pps_test_sink_new();
    int rc = pps_sub_receive_to_top(a, 0, pps_test_collect, ra);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    cr_assert_eq(ra->n, 1u);
    cr_assert_str_eq(ra->data[0], "m9");
    pps_test_expect_empty(a);
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(b, rb), 10u);
    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        cr_assert_str_eq(rb->data[i], text);
    }
    cr_assert_eq(rb->ids[9], ra->ids[0]);

    /* Refusing the newest keeps it (and only it). */
    for (int i = 10; i < 13; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        pps_test_send_str(pub, text);
    }
    ra->refuse = 1;
    cr_assert_eq(pps_sub_receive_to_top(a, 0, pps_test_collect, ra),
                 PPS_ECALLBACK);
    ra->refuse = 0;
    cr_assert_eq(pps_test_drain(a, ra), 1u);
    cr_assert_str_eq(ra->data[1], "m12");
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, receive_to_top_on_empty_times_out, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_sub *a = pps_test_sub_open(cfg, "a");
    int calls = 0;
    cr_assert_eq(pps_sub_receive_to_top(a, 0, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    cr_assert_eq(calls, 0);
    /* A single pending message is the newest: delivered. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_test_send_str(pub, "only");
    pps_test_sink *s = pps_test_sink_new();
    cr_assert_eq(pps_sub_receive_to_top(a, 0, pps_test_collect, s), PPS_OK);
    cr_assert_str_eq(s->data[0], "only");
    pps_test_expect_empty(a);
    pps_test_sink_del(s);
    pps_pub_close(pub);
    pps_sub_close(a);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- receive_batch ------------------------------------------------------ */

typedef struct picky {
    int calls;
    int refuse_at; /* 1-based call number to refuse; 0: never */
    pps_test_sink *sink;
} picky;

static int
picky_cb(const pps_message *msg, void *user)
{
    picky *p = user;
    p->calls++;
    if (p->calls == p->refuse_at) {
        return 3;
    }
    return pps_test_collect(msg, p->sink);
}

Test(subscriber, receive_batch_semantics, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_test_sink *s = pps_test_sink_new();
    int calls = 0;

    /* max 0 is invalid, whether or not something is pending */
    int rc = pps_sub_receive_batch(a, 0, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_EINVAL);
    cr_assert_not_null(strstr(pps_last_error(), "max"), "%s",
                       pps_last_error());
    pps_test_send_numbered(pub, 0, 5);
    cr_assert_eq(pps_sub_receive_batch(a, 0, 0, pps_test_count_calls, &calls),
                 PPS_EINVAL);
    cr_assert_eq(calls, 0);

    /* returns how many were consumed */
    picky p = {0, 0, s};
    cr_assert_eq(pps_sub_receive_batch(a, 2, 0, picky_cb, &p), 2);
    pps_test_expect_numbered(s, 0, 0);
    pps_test_expect_numbered(s, 1, 1);

    /* a batch larger than what is pending returns what is there */
    cr_assert_eq(pps_sub_receive_batch(a, 100, 0, picky_cb, &p), 3);
    for (int i = 2; i < 5; i++) {
        pps_test_expect_numbered(s, (size_t)i, i);
    }
    pps_test_check_ids_increasing(s);
    cr_assert_eq(pps_sub_receive_batch(a, 100, 0, picky_cb, &p),
                 PPS_ETIMEDOUT);
    pps_test_sink_free(s);

    /* refusing the 3rd of 5 consumes 2 and keeps the rest in order */
    pps_test_send_numbered(pub, 10, 15);
    picky q = {0, 3, s};
    cr_assert_eq(pps_sub_receive_batch(a, 5, 0, picky_cb, &q), 2);
    cr_assert_eq(q.calls, 3);
    cr_assert_eq(s->n, 2u);
    pps_test_expect_numbered(s, 0, 10);
    pps_test_expect_numbered(s, 1, 11);
    picky r = {0, 0, s};
    cr_assert_eq(pps_sub_receive_batch(a, 5, 0, picky_cb, &r), 3);
    for (int i = 0; i < 5; i++) {
        pps_test_expect_numbered(s, (size_t)i, 10 + i);
    }
    pps_test_check_ids_increasing(s);
    for (size_t k = 1; k < 5; k++) {
        cr_assert_eq(s->ids[k], s->ids[0] + k);
    }
    pps_test_sink_free(s);

    /* refusing the first is PPS_ECALLBACK and consumes nothing */
    pps_test_send_numbered(pub, 20, 23);
    picky f = {0, 1, s};
    rc = pps_sub_receive_batch(a, 10, 0, picky_cb, &f);
    cr_assert_eq(rc, PPS_ECALLBACK, "got %d", rc);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(s->n, 0u);
    cr_assert_eq(pps_sub_receive_batch(a, 10, 0, pps_test_collect, s), 3);
    for (int i = 0; i < 3; i++) {
        pps_test_expect_numbered(s, (size_t)i, 20 + i);
    }

    /* a batch waits for the first message like receive does */
    int64_t t0 = pps_test_mono_ms();
    cr_assert_eq(pps_sub_receive_batch(a, 10, 150, pps_test_collect, s),
                 PPS_ETIMEDOUT);
    cr_assert_geq(pps_test_mono_ms() - t0, 135);
    pps_test_sink_del(s);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- subscriber ids that look like internal names ----------------------- */

static const char *const INTERNAL_NAMES[] = {
    "data_db", "pps.meta", "pps.data",    "pps.msg", "meta_db", "sub:x",
    "format",  "settings", "subscribers", "seq",     NULL};

Test(subscriber, subscriber_ids_like_internal_names, .timeout = 60)
{
    enum { N = 20, S = 10 };
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, INTERNAL_NAMES, NULL, NOSYNC);
    /* init again: still fine, nothing clashes */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *subs[S];
    for (int s = 0; s < S; s++) {
        subs[s] = pps_test_sub_open(cfg, INTERNAL_NAMES[s]);
    }
    pps_test_send_numbered(pub, 0, N);
    cr_assert_eq(pps_test_queue_usage(cfg).count, (uint64_t)N);
    uint64_t ids0[N];
    for (int s = 0; s < S; s++) {
        pps_test_sink *sink = pps_test_sink_new();
        cr_assert_eq(pps_test_drain(subs[s], sink), (size_t)N, "subscriber %s",
                     INTERNAL_NAMES[s]);
        for (int i = 0; i < N; i++) {
            pps_test_expect_numbered(sink, (size_t)i, i);
            if (s == 0) {
                ids0[i] = sink->ids[i];
            } else {
                cr_assert_eq(sink->ids[i], ids0[i]);
            }
        }
        pps_test_check_ids_increasing(sink);
        pps_test_sink_del(sink);
        /* payloads stay until the last subscriber consumed them */
        cr_assert_eq(pps_test_queue_usage(cfg).count,
                     s == S - 1 ? 0u : (uint64_t)N, "after %s",
                     INTERNAL_NAMES[s]);
    }
    /* the queue still works: settings, sequence and list intact */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *pub2 = pps_test_pub_open(cfg, "pub");
    pps_test_send_str(pub2, "again");
    for (int s = 0; s < S; s++) {
        pps_test_sink *sink = pps_test_sink_new();
        cr_assert_eq(pps_test_drain(subs[s], sink), 1u);
        cr_assert_str_eq(sink->data[0], "again");
        cr_assert_gt(sink->ids[0], ids0[N - 1]);
        pps_test_sink_del(sink);
    }
    for (int s = 0; s < S; s++) {
        pps_sub_close(subs[s]);
    }
    pps_pub_close(pub);
    pps_pub_close(pub2);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- subscribers unknown to the queue ------------------------------------ */

Test(subscriber, subscriber_added_after_init_is_enotinit, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *old = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(old, "pub");
    pps_test_send_str(pub, "before b");
    pps_pub_close(pub);
    pps_config *cfg = pps_test_config(
        dir, "{\"pub\": {\"out_queue\": \"q\"},\n"
             " \"to_b\": {\"out_queue\": \"q\", \"subscribers\": [\"b\"]},\n"
             " \"a\": {\"in_queue\": \"q\"}, \"b\": {\"in_queue\": \"q\"},\n"
             " \"queues\": {\"q\": {\"path\": \"q\", "
             "\"max_db_size_bytes\": 268435456, "
             "\"subscribers\": [\"a\", \"b\"]}}}\n");
    pps_sub *s = (pps_sub *)(uintptr_t)1;
    int rc = pps_sub_open(&s, cfg, "b");
    cr_assert_eq(rc, PPS_ENOTINIT, "sub_open of an unregistered subscriber: "
                 "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_null(s);
    cr_assert_not_null(strstr(pps_last_error(), "b"), "%s", pps_last_error());
    pps_pub *p = (pps_pub *)(uintptr_t)1;
    rc = pps_pub_open(&p, cfg, "to_b");
    cr_assert_eq(rc, PPS_ENOTINIT, "pub_open naming an unregistered "
                 "subscriber: %s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_null(p);
    /* The registered one is not affected. */
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_test_sink *got = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, got), 1u);
    cr_assert_str_eq(got->data[0], "before b");

    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_expect_empty(b); /* nothing from before it was added */
    p = pps_test_pub_open(cfg, "to_b");
    pps_test_send_str(p, "for b");
    pps_test_sink_free(got);
    cr_assert_eq(pps_test_drain(b, got), 1u);
    cr_assert_str_eq(got->data[0], "for b");
    pps_test_expect_empty(a); /* to_b sends to b only */
    pps_test_sink_del(got);
    pps_pub_close(p);
    pps_sub_close(b);
    pps_sub_close(a);
    pps_config_free(cfg);
    pps_config_free(old);
    pps_test_cleanup(dir);
}

/* ---- fork --------------------------------------------------------------- */

Test(subscriber, handles_after_fork, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_test_send_str(pub, "from parent");

    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent); /* dies with the test */
        int calls = 0;
        pps_buf one = {"x", 1};
        if (pps_pub_send(pub, "x", 1) != PPS_EFORKED) {
            _exit(10);
        }
        if (strstr(pps_last_error(), "fork") == NULL) {
            _exit(11);
        }
        if (pps_pub_send_many(pub, &one, 1) != PPS_EFORKED) {
            _exit(12);
        }
        if (pps_sub_receive(a, 0, pps_test_count_calls, &calls) !=
            PPS_EFORKED) {
            _exit(13);
        }
        if (pps_sub_receive_to_top(a, 0, pps_test_count_calls, &calls) !=
            PPS_EFORKED) {
            _exit(14);
        }
        if (pps_sub_receive_batch(a, 4, 0, pps_test_count_calls, &calls) !=
            PPS_EFORKED) {
            _exit(15);
        }
        if (calls != 0) {
            _exit(16);
        }
        /* new handles in the child work */
        pps_pub *cp = NULL;
        pps_sub *cb = NULL;
        if (pps_pub_open(&cp, cfg, "pub") != PPS_OK) {
            _exit(17);
        }
        if (pps_pub_send(cp, "from child", 10) != PPS_OK) {
            _exit(18);
        }
        if (pps_sub_open(&cb, cfg, "b") != PPS_OK) {
            _exit(19);
        }
        pps_test_sink s = {0};
        if (pps_sub_receive(cb, 0, pps_test_collect, &s) != PPS_OK ||
            s.n != 1 || strcmp(s.data[0], "from parent") != 0) {
            _exit(20);
        }
        pps_test_sink_free(&s);
        /* closing the parent's handles here is harmless */
        pps_pub_close(pub);
        pps_sub_close(a);
        pps_sub_close(cb);
        pps_pub_close(cp);
        _exit(0);
    }
    pps_test_wait_ok(pid);

    /* the parent's handles still work and see the child's message */
    pps_test_sink *ra = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), 2u);
    cr_assert_str_eq(ra->data[0], "from parent");
    cr_assert_str_eq(ra->data[1], "from child");
    pps_test_check_ids_increasing(ra);
    pps_test_send_str(pub, "parent again");
    cr_assert_eq(pps_test_drain(a, ra), 1u);
    cr_assert_str_eq(ra->data[2], "parent again");
    cr_assert_gt(ra->ids[2], ra->ids[1]);

    /* b: the child consumed "from parent" */
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(b, rb), 2u);
    cr_assert_str_eq(rb->data[0], "from child");
    cr_assert_str_eq(rb->data[1], "parent again");
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(b);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- odd ids, handle churn, one environment per directory --------------- */

Test(subscriber, long_and_odd_subscriber_ids, .timeout = 30)
{
    char longest[256];
    memset(longest, 'x', 255);
    longest[255] = '\0';
    const char *const ids[] = {longest, "a b", "sub:sub:", "/etc/passwd",
                               "..",    "-",   "*",        "~!@#$%^&()",
                               NULL};
    enum { S = 8 };
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, ids, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_test_send_numbered(pub, 0, 3);
    for (int s = 0; s < S; s++) {
        pps_sub *sub = pps_test_sub_open(cfg, ids[s]);
        pps_test_sink *r = pps_test_sink_new();
        cr_assert_eq(pps_test_drain(sub, r), 3u, "subscriber '%s'", ids[s]);
        for (int i = 0; i < 3; i++) {
            pps_test_expect_numbered(r, (size_t)i, i);
        }
        pps_test_sink_del(r);
        pps_sub_close(sub);
    }
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0u);
    /* nothing was created outside the queue directory */
    cr_assert_eq(pps_test_dir_entries(dir), 2u, "expected config.json and q/");
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, handle_churn_releases_reader_slots, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, SUB_A, NULL, "\"max_reader_num\": 8, " NOSYNC);
    /* keeps the environment open, so leaked slots would accumulate */
    pps_pub *keep = pps_test_pub_open(cfg, "pub");
    for (int i = 0; i < 200; i++) {
        pps_pub *p = pps_test_pub_open(cfg, "pub");
        pps_sub *s = pps_test_sub_open(cfg, "a");
        char text[32];
        snprintf(text, sizeof(text), "n%d", i);
        pps_test_send_str(p, text);
        pps_test_sink *r = pps_test_sink_new();
        int rc = pps_sub_receive(s, 0, pps_test_collect, r);
        cr_assert_eq(rc, PPS_OK, "round %d: %s: %s", i, pps_status_name(rc),
                     pps_last_error());
        cr_assert_str_eq(r->data[0], text);
        pps_test_sink_del(r);
        pps_sub_close(s);
        pps_pub_close(p);
    }
    /* several subscriber handles at once (each holds a reader slot) */
    pps_sub *many[4];
    for (int i = 0; i < 4; i++) {
        many[i] = pps_test_sub_open(cfg, "a");
    }
    for (int i = 0; i < 4; i++) {
        pps_sub_close(many[i]);
    }
    pps_pub_close(keep);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}


/* ---- every documented status of a receive (docs/reliability.rst) -------- */

/* A receive callback that notes the id in the uint64_t at user and keeps
 * the message. */
static int
note_id_and_refuse(const pps_message *msg, void *user)
{
    *(uint64_t *)user = msg->id;
    return 1;
}

Test(subscriber, receive_of_damaged_metadata_is_estorage, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_test_send_str(pub, "damaged");
    uint64_t id = 0; /* learn its id, keep it */
    cr_assert_eq(pps_sub_receive(a, 0, note_id_and_refuse, &id),
                 PPS_ECALLBACK);
    cr_assert_neq(id, 0);
    /* 3 bytes where 16 are expected. */
    pps_test_put_raw(cfg, PPS__DB_MSG, PPS__ID_KEYED, &id, sizeof(id), "bad",
                     3);
    int calls = 0;
    int rc = pps_sub_receive(a, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_ESTORAGE, "receive: %s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_expect_detail(NULL, "receive of damaged metadata");
    rc = pps_sub_receive_to_top(a, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_ESTORAGE, "receive_to_top: %s: %s",
                 pps_status_name(rc), pps_last_error());
    rc = pps_sub_receive_batch(a, 4, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_ESTORAGE, "receive_batch: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(calls, 0, "a damaged message was handed to the callback");
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, receive_batch_of_a_removed_subscriber_is_enotinit,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_send_str(pub, "one");
    /* The same queue DIR/q, without b. */
    char *path = pps_test_write(
        dir, "without.json",
        "{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},"
        " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\"]}}}");
    pps_config *without = NULL;
    cr_assert_eq(pps_config_load(&without, path), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(pps_ctl_remove_subscriber(without, "q", "b"), PPS_OK, "%s",
                 pps_last_error());
    int calls = 0;
    int rc = pps_sub_receive_batch(b, 4, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_ENOTINIT, "receive_batch: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "\"b\" is not registered"),
                       "%s", pps_last_error());
    cr_assert_eq(calls, 0);
    pps_config_free(without);
    free(path);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(subscriber, consumption_on_a_map_filled_to_the_last_page_is_efull,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_test_send_str(pub, "one");
    pps_test_send_str(pub, "two");
    /* Somebody else took every page, the room kept for consumption too. */
    unsigned fill = pps_test_fill_map_raw(cfg);
    int calls = 0;
    int rc = pps_sub_receive(s1, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_EFULL, "receive: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(calls, 1, "the message was not handed before its commit");
    /* Each later call first owes that consumption: nothing is handed. */
    rc = pps_sub_receive(s1, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_EFULL, "receive again: %s: %s", pps_status_name(rc),
                 pps_last_error());
    rc = pps_sub_receive_to_top(s1, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_EFULL, "receive_to_top: %s: %s",
                 pps_status_name(rc), pps_last_error());
    rc = pps_sub_receive_batch(s1, 4, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_EFULL, "receive_batch: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(calls, 1, "a message was handed while one was owed");
    /* With room again, the owed consumption commits first: "one" never
     * comes again. */
    pps_test_unfill_map_raw(cfg, fill);
    pps_test_sink *s = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(s1, s), 1);
    cr_assert_str_eq(s->data[0], "two");
    pps_test_sink_del(s);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
