/*
 * Publishing through the public API (src/publisher.c): FIFO order and
 * fan-out to every subscriber, publish times, send_many, payload sizes,
 * publishers in threads, subscribers joining and leaving (a publisher
 * reloads the list), unknown ids, uninitialized queues and NULL arguments
 * of both kinds of handle, one queue under two spellings of its path.
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
static const char *const SUB_ABC[] = {"a", "b", "c", NULL};

/* ---- FIFO, fan-out, persistence ----------------------------------------- */

Test(publisher, fifo_fanout_three_subscribers, .timeout = 120)
{
    enum { N = 1000 };
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_ABC, NULL, NOSYNC);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *subs[3] = {pps_test_sub_open(cfg, "a"),
                        pps_test_sub_open(cfg, "b"),
                        pps_test_sub_open(cfg, "c")};
    unsigned char buf[128];
    for (size_t i = 0; i < N; i++) {
        size_t len = pps_test_pattern_len(i);
        pps_test_pattern_fill(buf, i, len);
        int rc = pps_pub_send(pub, buf, len);
        cr_assert_eq(rc, PPS_OK, "send %zu: %s", i, pps_last_error());
    }
    for (int s = 0; s < 3; s++) {
        pps_test_sink *sink = pps_test_sink_new();
        /* a: one by one; b: batches; c: one by one with a waiting call */
        if (s == 1) {
            while (sink->n < N) {
                int got = pps_sub_receive_batch(subs[s], 64, 0,
                                                pps_test_collect, sink);
                cr_assert_gt(got, 0, "batch: %s: %s", pps_status_name(got),
                             pps_last_error());
                cr_assert_leq(got, 64);
            }
        } else {
            for (size_t i = 0; i < N; i++) {
                int rc = pps_sub_receive(subs[s], s == 2 ? 1000 : 0,
                                         pps_test_collect, sink);
                cr_assert_eq(rc, PPS_OK, "receive %zu: %s", i,
                             pps_last_error());
            }
        }
        cr_assert_eq(sink->n, (size_t)N);
        pps_test_expect_empty(subs[s]);
        pps_test_check_ids_increasing(sink);
        for (size_t i = 0; i < N; i++) {
            pps_test_check_pattern(sink, i, i);
        }
        pps_test_sink_del(sink);
    }
    for (int s = 0; s < 3; s++) {
        pps_sub_close(subs[s]);
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

typedef struct stamp_check {
    int64_t lo, hi;
    int64_t got;
    int calls;
} stamp_check;

static int
take_stamp(const pps_message *msg, void *user)
{
    stamp_check *c = user;
    c->got = msg->published_ns;
    c->calls++;
    return 0;
}

Test(publisher, published_ns_is_the_send_time, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *sub = pps_test_sub_open(cfg, "a");
    stamp_check c = {0};
    c.lo = pps_test_real_ns();
    pps_test_send_str(pub, "stamp");
    c.hi = pps_test_real_ns();
    cr_assert_eq(pps_sub_receive(sub, 0, take_stamp, &c), PPS_OK);
    cr_assert_eq(c.calls, 1);
    /* Allow a little slack for clock steps between the two readings. */
    cr_assert_geq(c.got, c.lo - 1000000000LL);
    cr_assert_leq(c.got, c.hi + 1000000000LL);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- send_many ---------------------------------------------------------- */

Test(publisher, send_many_order_and_ids, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");

    /* n == 0 sends nothing, also with a NULL array. */
    pps_buf none[1] = {{"x", 1}};
    cr_assert_eq(pps_pub_send_many(pub, none, 0), PPS_OK);
    cr_assert_eq(pps_pub_send_many(pub, NULL, 0), PPS_OK);
    pps_test_expect_empty(a);

    enum { N = 50 };
    unsigned char bufs[N][128];
    pps_buf msgs[N];
    for (size_t i = 0; i < N; i++) {
        pps_test_pattern_fill(bufs[i], i, pps_test_pattern_len(i));
        msgs[i].data = bufs[i];
        msgs[i].len = pps_test_pattern_len(i);
    }
    msgs[7].data = NULL; /* an empty entry is fine */
    msgs[7].len = 0;
    int rc = pps_pub_send_many(pub, msgs, N);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    pps_test_send_str(pub, "single");

    pps_test_sink *ra = pps_test_sink_new();
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), (size_t)N + 1);
    while (rb->n < N + 1) {
        int got = pps_sub_receive_batch(b, 1000, 0, pps_test_collect, rb);
        cr_assert_gt(got, 0, "%s", pps_status_name(got));
    }
    for (pps_test_sink *s = ra; s != NULL; s = s == ra ? rb : NULL) {
        for (size_t i = 0; i < N; i++) {
            if (i == 7) {
                cr_assert_eq(s->lens[i], 0u);
            } else {
                pps_test_check_pattern(s, i, i);
            }
            cr_assert_eq(s->ids[i], s->ids[0] + i, "ids not consecutive");
        }
        cr_assert_gt(s->ids[N], s->ids[N - 1]);
        cr_assert_str_eq(s->data[N], "single");
    }
    cr_assert_eq(ra->ids[0], rb->ids[0]);
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(publisher, send_many_null_entry_sends_nothing, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_buf msgs[4] = {{"one", 3}, {"two", 3}, {NULL, 5}, {"four", 4}};
    int rc = pps_pub_send_many(pub, msgs, 4);
    cr_assert_eq(rc, PPS_EINVAL, "got %s", pps_status_name(rc));
    cr_assert_neq(pps_last_error()[0], '\0');
    cr_assert_not_null(strstr(pps_last_error(), "2"),
                       "detail should name entry 2: %s", pps_last_error());
    int calls = 0;
    cr_assert_eq(pps_sub_receive(a, 100, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    cr_assert_eq(calls, 0);
    /* The handle is still fine. */
    cr_assert_eq(pps_pub_send_many(pub, msgs, 2), PPS_OK);
    pps_test_sink *s = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, s), 2u);
    cr_assert_str_eq(s->data[0], "one");
    cr_assert_str_eq(s->data[1], "two");
    pps_test_sink_del(s);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- unknown ids, uninitialized queues, NULL arguments ------------------ */

Test(publisher, unknown_component_ids, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *p = (pps_pub *)(uintptr_t)1;
    pps_sub *s = (pps_sub *)(uintptr_t)1;

    int rc = pps_pub_open(&p, cfg, "a");
    cr_assert_eq(rc, PPS_ENOTFOUND, "got %s", pps_status_name(rc));
    cr_assert_null(p);
    cr_assert_not_null(strstr(pps_last_error(), "\"a\""), "%s",
                       pps_last_error());

    rc = pps_sub_open(&s, cfg, "pub");
    cr_assert_eq(rc, PPS_ENOTFOUND, "got %s", pps_status_name(rc));
    cr_assert_null(s);
    cr_assert_not_null(strstr(pps_last_error(), "\"pub\""), "%s",
                       pps_last_error());

    p = (pps_pub *)(uintptr_t)1;
    rc = pps_pub_open(&p, cfg, "nobody");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_null(p);
    cr_assert_not_null(strstr(pps_last_error(), "nobody"), "%s",
                       pps_last_error());
    s = (pps_sub *)(uintptr_t)1;
    rc = pps_sub_open(&s, cfg, "nobody");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_null(s);
    cr_assert_not_null(strstr(pps_last_error(), "nobody"));

    /* "queues" is not a component */
    cr_assert_eq(pps_pub_open(&p, cfg, "queues"), PPS_ENOTFOUND);
    cr_assert_eq(pps_sub_open(&s, cfg, "queues"), PPS_ENOTFOUND);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

static const char *UNINIT_JSON =
    "{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},\n"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\"]}}}\n";

Test(publisher, uninitialized_queue_is_enotinit, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(dir, UNINIT_JSON);
    char *qdir = pps_test_path_in(dir, "q");

    pps_pub *p = (pps_pub *)(uintptr_t)1;
    int rc = pps_pub_open(&p, cfg, "pub");
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_null(p);
    cr_assert_not_null(strstr(pps_last_error(), qdir), "%s", pps_last_error());

    pps_sub *s = (pps_sub *)(uintptr_t)1;
    rc = pps_sub_open(&s, cfg, "a");
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_null(s);
    cr_assert_not_null(strstr(pps_last_error(), qdir), "%s", pps_last_error());

    /* nothing was created: no queue directory, only the config */
    struct stat st;
    cr_assert_neq(stat(qdir, &st), 0, "%s was created", qdir);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(pps_test_dir_entries(dir), 1u);

    /* an existing but empty directory is not a queue either, and stays
     * empty */
    cr_assert_eq(mkdir(qdir, 0700), 0);
    rc = pps_pub_open(&p, cfg, "pub");
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), qdir), "%s", pps_last_error());
    rc = pps_sub_open(&s, cfg, "a");
    cr_assert_eq(rc, PPS_ENOTINIT, "got %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(pps_test_dir_entries(qdir), 0u, "files were created in %s",
                 qdir);

    /* after init, both open */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    p = pps_test_pub_open(cfg, "pub");
    s = pps_test_sub_open(cfg, "a");
    pps_pub_close(p);
    pps_sub_close(s);
    free(qdir);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A subscriber added to the config after its queue was initialized is
 * not registered until the next init: opening it, or a publisher that
 * names it, is PPS_ENOTINIT; after init it receives what is sent from then
 * on. */
Test(publisher, null_arguments, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    char *file = pps_test_config_path(dir);
    int calls = 0;

    pps_config *c = (pps_config *)(uintptr_t)1;
    cr_assert_eq(pps_config_load(NULL, file), PPS_EINVAL);
    cr_assert_eq(pps_config_load(&c, NULL), PPS_EINVAL);
    cr_assert_null(c);
    cr_assert_neq(pps_last_error()[0], '\0');

    cr_assert_eq(pps_ctl_init(NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_prune(NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_clear(NULL), PPS_EINVAL);

    pps_pub *p = (pps_pub *)(uintptr_t)1;
    cr_assert_eq(pps_pub_open(NULL, cfg, "pub"), PPS_EINVAL);
    cr_assert_eq(pps_pub_open(&p, NULL, "pub"), PPS_EINVAL);
    cr_assert_null(p);
    p = (pps_pub *)(uintptr_t)1;
    cr_assert_eq(pps_pub_open(&p, cfg, NULL), PPS_EINVAL);
    cr_assert_null(p);
    cr_assert_not_null(strstr(pps_last_error(), "NULL"), "%s",
                       pps_last_error());

    pps_sub *s = (pps_sub *)(uintptr_t)1;
    cr_assert_eq(pps_sub_open(NULL, cfg, "a"), PPS_EINVAL);
    cr_assert_eq(pps_sub_open(&s, NULL, "a"), PPS_EINVAL);
    cr_assert_null(s);
    s = (pps_sub *)(uintptr_t)1;
    cr_assert_eq(pps_sub_open(&s, cfg, NULL), PPS_EINVAL);
    cr_assert_null(s);

    p = pps_test_pub_open(cfg, "pub");
    s = pps_test_sub_open(cfg, "a");
    pps_buf one = {"x", 1};
    cr_assert_eq(pps_pub_send(NULL, "x", 1), PPS_EINVAL);
    cr_assert_eq(pps_pub_send(p, NULL, 1), PPS_EINVAL);
    cr_assert_eq(pps_pub_send_many(NULL, &one, 1), PPS_EINVAL);
    cr_assert_eq(pps_pub_send_many(p, NULL, 1), PPS_EINVAL);

    cr_assert_eq(pps_sub_receive(NULL, 0, pps_test_count_calls, &calls),
                 PPS_EINVAL);
    cr_assert_eq(pps_sub_receive(s, 0, NULL, &calls), PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_to_top(NULL, 0, pps_test_count_calls, &calls),
                 PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_to_top(s, 0, NULL, &calls), PPS_EINVAL);
    cr_assert_eq(
        pps_sub_receive_batch(NULL, 1, 0, pps_test_count_calls, &calls),
        PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_batch(s, 1, 0, NULL, &calls), PPS_EINVAL);

    /* none of that sent anything or consumed anything */
    cr_assert_eq(pps_sub_receive(s, 0, pps_test_count_calls, &calls),
                 PPS_ETIMEDOUT);
    pps_test_send_str(p, "still here");
    /* a NULL callback does not consume a pending message either */
    cr_assert_eq(pps_sub_receive(s, 0, NULL, NULL), PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_to_top(s, 0, NULL, NULL), PPS_EINVAL);
    cr_assert_eq(pps_sub_receive_batch(s, 1, 0, NULL, NULL), PPS_EINVAL);
    cr_assert_eq(pps_sub_receive(s, 0, pps_test_count_calls, &calls), PPS_OK);
    cr_assert_eq(calls, 1);

    pps_pub_close(NULL);
    pps_sub_close(NULL);
    pps_config_free(NULL);
    pps_pub_close(p);
    pps_sub_close(s);
    free(file);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- payload sizes ------------------------------------------------------ */

Test(publisher, empty_messages, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    cr_assert_eq(pps_pub_send(pub, NULL, 0), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_pub_send(pub, "ignored", 0), PPS_OK, "%s",
                 pps_last_error());
    pps_test_send_str(pub, "x");
    for (pps_sub *s = a; s != NULL; s = s == a ? b : NULL) {
        pps_test_sink *r = pps_test_sink_new();
        cr_assert_eq(pps_test_drain(s, r), 3u);
        cr_assert_eq(r->lens[0], 0u);
        cr_assert_eq(r->lens[1], 0u);
        cr_assert_eq(r->lens[2], 1u);
        cr_assert_str_eq(r->data[2], "x");
        pps_test_check_ids_increasing(r);
        pps_test_sink_del(r);
    }
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0u);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

typedef struct big_check {
    size_t len;
    uint32_t seed;
    size_t bad; /* first differing byte + 1, 0 if none */
    size_t got_len;
    int calls;
} big_check;

static unsigned char
big_byte(uint32_t seed, size_t j)
{
    uint32_t x = (uint32_t)j * 2654435761u + seed;
    return (unsigned char)(x >> 13);
}

static int
check_big(const pps_message *msg, void *user)
{
    big_check *c = user;
    c->calls++;
    c->got_len = msg->len;
    c->bad = 0;
    if (msg->len != c->len) {
        return 0;
    }
    const unsigned char *d = msg->data;
    for (size_t j = 0; j < msg->len; j++) {
        if (d[j] != big_byte(c->seed, j)) {
            c->bad = j + 1;
            break;
        }
    }
    return 0;
}

Test(publisher, multi_megabyte_messages, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    const size_t sizes[] = {8u << 20, (3u << 20) + 17, 8u << 20};
    unsigned char *buf = malloc(8u << 20);
    cr_assert_not_null(buf);
    for (uint32_t m = 0; m < 3; m++) {
        for (size_t j = 0; j < sizes[m]; j++) {
            buf[j] = big_byte(m + 1, j);
        }
        int rc = pps_pub_send(pub, buf, sizes[m]);
        cr_assert_eq(rc, PPS_OK, "send %u: %s", m, pps_last_error());
    }
    free(buf);
    for (pps_sub *s = a; s != NULL; s = s == a ? b : NULL) {
        for (uint32_t m = 0; m < 3; m++) {
            big_check c = {sizes[m], m + 1, 0, 0, 0};
            cr_assert_eq(pps_sub_receive(s, 0, check_big, &c), PPS_OK);
            cr_assert_eq(c.calls, 1);
            cr_assert_eq(c.got_len, sizes[m]);
            cr_assert_eq(c.bad, 0u, "message %u differs at byte %zu", m,
                         c.bad - 1);
        }
        pps_test_expect_empty(s);
    }
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- threads ------------------------------------------------------------ */

enum { T_PUBS = 4, T_MSGS = 500, T_TOTAL = T_PUBS * T_MSGS };

typedef struct pub_job {
    const pps_config *cfg;
    int index;
    int rc;
    char err[256];
} pub_job;

static void *
pub_thread(void *arg)
{
    pub_job *j = arg;
    pps_pub *p = NULL;
    j->rc = pps_pub_open(&p, j->cfg, "pub");
    for (int i = 0; i < T_MSGS && j->rc == PPS_OK; i++) {
        char text[32];
        int n = snprintf(text, sizeof(text), "t%d:%d", j->index, i);
        j->rc = pps_pub_send(p, text, (size_t)n);
    }
    if (j->rc != PPS_OK) {
        snprintf(j->err, sizeof(j->err), "%s", pps_last_error());
    }
    pps_pub_close(p);
    return NULL;
}

typedef struct sub_job {
    const pps_config *cfg;
    const char *id;
    pps_test_sink *sink;
    int rc;
    char err[256];
} sub_job;

static void *
sub_thread(void *arg)
{
    sub_job *j = arg;
    pps_sub *s = NULL;
    j->rc = pps_sub_open(&s, j->cfg, j->id);
    int64_t deadline = pps_test_mono_ms() + 100000;
    while (j->rc == PPS_OK && j->sink->n < T_TOTAL &&
           pps_test_mono_ms() < deadline) {
        int got = pps_sub_receive_batch(s, 37, 200, pps_test_collect, j->sink);
        if (got < 0 && got != PPS_ETIMEDOUT) {
            j->rc = got;
        }
    }
    if (j->rc != PPS_OK) {
        snprintf(j->err, sizeof(j->err), "%s", pps_last_error());
    } else {
        /* nothing beyond the expected messages */
        int extra = 0;
        int rc = pps_sub_receive(s, 0, pps_test_count_calls, &extra);
        if (rc != PPS_ETIMEDOUT) {
            j->rc = rc == PPS_OK ? 1 : rc;
        }
    }
    pps_sub_close(s);
    return NULL;
}

Test(publisher, threads_publish_and_receive_concurrently, .timeout = 180)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_AB, NULL, NOSYNC);
    pthread_t pt[T_PUBS], st[2];
    pub_job pj[T_PUBS];
    sub_job sj[2] = {{cfg, "a", pps_test_sink_new(), 0, ""},
                     {cfg, "b", pps_test_sink_new(), 0, ""}};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&st[i], NULL, sub_thread, &sj[i]), 0);
    }
    for (int i = 0; i < T_PUBS; i++) {
        pj[i] = (pub_job){cfg, i, 0, ""};
        cr_assert_eq(pthread_create(&pt[i], NULL, pub_thread, &pj[i]), 0);
    }
    for (int i = 0; i < T_PUBS; i++) {
        pthread_join(pt[i], NULL);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(st[i], NULL);
    }
    for (int i = 0; i < T_PUBS; i++) {
        cr_assert_eq(pj[i].rc, PPS_OK, "publisher %d: %s: %s", i,
                     pps_status_name(pj[i].rc), pj[i].err);
    }
    for (int k = 0; k < 2; k++) {
        pps_test_sink *s = sj[k].sink;
        cr_assert_eq(sj[k].rc, PPS_OK, "subscriber %s: %d: %s", sj[k].id,
                     sj[k].rc, sj[k].err);
        cr_assert_eq(s->n, (size_t)T_TOTAL, "subscriber %s got %zu", sj[k].id,
                     s->n);
        pps_test_check_ids_increasing(s);
        int next[T_PUBS] = {0};
        for (size_t m = 0; m < s->n; m++) {
            int t = -1, i = -1;
            cr_assert_eq(sscanf(s->data[m], "t%d:%d", &t, &i), 2, "'%s'",
                         s->data[m]);
            cr_assert(t >= 0 && t < T_PUBS, "thread %d", t);
            cr_assert_eq(i, next[t], "publisher %d: got %d, expected %d", t, i,
                         next[t]);
            next[t]++;
        }
        for (int t = 0; t < T_PUBS; t++) {
            cr_assert_eq(next[t], T_MSGS);
        }
    }
    /* both subscribers saw the same ids for the same messages */
    for (size_t m = 0; m < T_TOTAL; m++) {
        cr_assert_eq(sj[0].sink->ids[m], sj[1].sink->ids[m]);
        cr_assert_str_eq(sj[0].sink->data[m], sj[1].sink->data[m]);
    }
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0u);
    pps_test_sink_del(sj[0].sink);
    pps_test_sink_del(sj[1].sink);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- subscribers joining and leaving ------------------------------------ */

Test(publisher, late_subscriber_gets_only_later_messages, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg1 = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg1, "pub");
    pps_test_send_numbered(pub, 0, 3);

    /* re-init with one more subscriber: a keeps its pending messages */
    pps_config *cfg2 = pps_test_simple(dir, SUB_AB, NULL, NULL);
    cr_assert_eq(pps_ctl_init(cfg2), PPS_OK, "%s", pps_last_error());
    /* the publisher opened before the change sends to b as well */
    pps_test_send_numbered(pub, 3, 5);

    pps_sub *a = pps_test_sub_open(cfg2, "a");
    pps_sub *b = pps_test_sub_open(cfg2, "b");
    pps_test_sink *ra = pps_test_sink_new();
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), 5u);
    cr_assert_eq(pps_test_drain(b, rb), 2u);
    for (int i = 0; i < 5; i++) {
        pps_test_expect_numbered(ra, (size_t)i, i);
    }
    pps_test_expect_numbered(rb, 0, 3);
    pps_test_expect_numbered(rb, 1, 4);
    cr_assert_eq(rb->ids[0], ra->ids[3]);
    cr_assert_eq(rb->ids[1], ra->ids[4]);
    cr_assert_eq(pps_test_queue_usage(cfg2).count, 0u);
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_pub_close(pub);
    pps_config_free(cfg1);
    pps_config_free(cfg2);
    pps_test_cleanup(dir);
}

Test(publisher, subscriber_removed_from_config_is_kept, .timeout = 60)
{
    static const char *const SUB_B[] = {"b", NULL};
    char *dir = pps_test_tmpdir();
    pps_config *cfg_ab = pps_test_simple(dir, SUB_AB, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg_ab, "pub");
    pps_test_send_numbered(pub, 0, 2);
    pps_pub_close(pub);

    /* a config without a: init keeps a registered */
    pps_config *cfg_b = pps_test_simple(dir, SUB_B, NULL, NULL);
    pps_sub *s = (pps_sub *)(uintptr_t)1;
    cr_assert_eq(pps_sub_open(&s, cfg_b, "a"), PPS_ENOTFOUND);
    cr_assert_null(s);
    pub = pps_test_pub_open(cfg_b, "pub");
    pps_test_send_numbered(pub, 2, 3);
    pps_pub_close(pub);

    /* with a config naming a, all its messages are there */
    pps_sub *a = pps_test_sub_open(cfg_ab, "a");
    pps_sub *b = pps_test_sub_open(cfg_b, "b");
    pps_test_sink *ra = pps_test_sink_new();
    pps_test_sink *rb = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(a, ra), 3u);
    cr_assert_eq(pps_test_drain(b, rb), 3u);
    for (int i = 0; i < 3; i++) {
        pps_test_expect_numbered(ra, (size_t)i, i);
        pps_test_expect_numbered(rb, (size_t)i, i);
    }
    pps_test_sink_del(ra);
    pps_test_sink_del(rb);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_config_free(cfg_ab);
    pps_config_free(cfg_b);
    pps_test_cleanup(dir);
}

/* ---- odd ids, handle churn, one environment per directory --------------- */

Test(publisher, one_queue_through_two_spellings_of_its_path, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg_a = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_config *cfg_b = pps_test_config(
        dir, "{\"pub\": {\"out_queue\": \"other\"},"
             " \"a\": {\"in_queue\": \"other\"},"
             " \"queues\": {\"other\": {\"path\": \"./q/\", "
             "\"max_db_size_bytes\": 268435456, \"subscribers\": [\"a\"]}}}");
    pps_pub *pub = pps_test_pub_open(cfg_b, "pub");
    pps_sub *sub = pps_test_sub_open(cfg_a, "a");
    pps_test_send_str(pub, "one");
    pps_test_sink *r = pps_test_sink_new();
    cr_assert_eq(pps_sub_receive(sub, 0, pps_test_collect, r), PPS_OK);
    /* closing the handle of one spelling leaves the other working */
    pps_pub_close(pub);
    pps_pub *pub2 = pps_test_pub_open(cfg_a, "pub");
    pps_test_send_str(pub2, "two");
    cr_assert_eq(pps_sub_receive(sub, 0, pps_test_collect, r), PPS_OK);
    pps_sub_close(sub);
    sub = pps_test_sub_open(cfg_b, "a");
    pps_test_send_str(pub2, "three");
    cr_assert_eq(pps_sub_receive(sub, 0, pps_test_collect, r), PPS_OK);
    cr_assert_eq(r->n, 3u);
    cr_assert_str_eq(r->data[0], "one");
    cr_assert_str_eq(r->data[1], "two");
    cr_assert_str_eq(r->data[2], "three");
    pps_test_check_ids_increasing(r);
    pps_test_sink_del(r);
    pps_sub_close(sub);
    pps_pub_close(pub2);
    pps_config_free(cfg_a);
    pps_config_free(cfg_b);
    pps_test_cleanup(dir);
}


/* ---- every documented status of a send (docs/reliability.rst) ----------- */

/* Expects send and send_many on pub to return exactly want, and the queue
 * to hold `messages` afterwards (nothing written). */
static void
expect_sends(const pps_config *cfg, pps_pub *pub, int want,
             uint64_t messages, const char *what)
{
    pps_buf two[2] = {{"x", 1}, {"y", 1}};
    int rc = pps_pub_send(pub, "x", 1);
    cr_assert_eq(rc, want, "%s: pps_pub_send: %s (expected %s): %s", what,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(NULL, what);
    rc = pps_pub_send_many(pub, two, 2);
    cr_assert_eq(rc, want, "%s: pps_pub_send_many: %s (expected %s): %s",
                 what, pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(NULL, what);
    cr_assert_eq(pps_test_queue_usage(cfg).count, messages, "%s", what);
}

static const char NAMED_SUBS_JSON[] =
    "{\"pub\": {\"out_queue\": \"q\", \"subscribers\": [\"a\", \"b\"]},"
    " \"a\": {\"in_queue\": \"q\"}, \"b\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\", \"b\"]}}}";
static const char WITHOUT_B_JSON[] =
    "{\"pub\": {\"out_queue\": \"q\", \"subscribers\": [\"a\"]},"
    " \"a\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\"]}}}";

Test(publisher, send_to_a_removed_named_subscriber_is_enotinit,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    /* Both configs name the same queue directory DIR/q. */
    pps_config *with = pps_test_queue(dir, NAMED_SUBS_JSON);
    char *path = pps_test_write(dir, "without.json", WITHOUT_B_JSON);
    pps_config *without = NULL;
    cr_assert_eq(pps_config_load(&without, path), PPS_OK, "%s",
                 pps_last_error());
    pps_pub *pub = pps_test_pub_open(with, "pub");
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    cr_assert_eq(pps_ctl_remove_subscriber(without, "q", "b"), PPS_OK, "%s",
                 pps_last_error());
    expect_sends(with, pub, PPS_ENOTINIT, 1,
                 "a subscriber the publisher names was removed");
    cr_assert_not_null(strstr(pps_last_error(), "\"b\""), "%s",
                       pps_last_error());
    /* Registered again, the same handle sends. */
    cr_assert_eq(pps_ctl_init(with), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_pub_send(pub, "after", 5), PPS_OK, "%s",
                 pps_last_error());
    pps_pub_close(pub);
    pps_config_free(without);
    pps_config_free(with);
    free(path);
    pps_test_cleanup(dir);
}

Test(publisher, send_to_a_queue_of_a_newer_format_is_eversion,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    /* A newer library rewrote the queue under the open handle. */
    uint32_t v2 = PPS__FORMAT_VERSION + 1;
    pps_test_put_raw(cfg, PPS__DB_META, 0, "format", 6, &v2, sizeof(v2));
    pps_test_bump_generation(cfg);
    expect_sends(cfg, pub, PPS_EVERSION, 1, "a queue of a newer format");
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(publisher, send_into_a_damaged_queue_is_estorage, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, SUB_A, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    /* A payload stored under the largest id: the next id is not above the
     * last stored one. */
    uint64_t top = UINT64_MAX;
    pps_test_put_raw(cfg, PPS__DB_DATA, PPS__ID_KEYED, &top, sizeof(top),
                     "z", 1);
    int rc = pps_pub_send(pub, "x", 1);
    cr_assert_eq(rc, PPS_ESTORAGE, "pps_pub_send: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_buf two[2] = {{"x", 1}, {"y", 1}};
    rc = pps_pub_send_many(pub, two, 2);
    cr_assert_eq(rc, PPS_ESTORAGE, "pps_pub_send_many: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
