/*
 * Out of memory: for every n, the n-th allocation of a call fails, and the
 * call must return PPS_ENOMEM (or PPS_OK if it could do without), never
 * crash, leak, or leave half a commit behind: after each failure the queue
 * is consistent (pps_ctl_check finds nothing), it holds what it held before,
 * and the same call made again succeeds. The calls: config load, init of a
 * new queue and of a changed one, publisher open and send, a send that
 * reloads the queue's settings, subscriber open and receive, receive_batch,
 * status, check, and check with repair.
 *
 * The failing allocator (pps_alloc.c) wraps malloc, calloc, realloc, strdup
 * and strndup at link time (-Wl,--wrap): that reaches every allocation of
 * the library (linked statically into this test), not those of the shared
 * libraries it uses. LMDB's own allocations (mdb_env_create, transactions,
 * cursors) and those libc makes inside fopen() and realpath() are not
 * failed here; jansson's are, for the config load, through
 * json_set_alloc_funcs(), but jansson turns some of its failures into
 * syntax errors: there PPS_ECONFIG is accepted (see oom::config_load). Under AddressSanitizer __real_malloc is ASan's,
 * and after each call's sweep LeakSanitizer looks for unreachable blocks.
 */
#include "internal.h"
#include "pps_alloc.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No call here makes anywhere near this many allocations. */
#define MAX_N 5000

static const char *const subs_s1[] = {"s1", NULL};
static const char *const subs_s1_s2[] = {"s1", "s2", NULL};

/* The status of call number n must be PPS_OK or PPS_ENOMEM, with a detail
 * on failure. Returns whether the n-th allocation was reached. */
static bool
expect_ok_or_enomem(const char *what, long n, int rc, long seen)
{
    cr_assert(rc == PPS_OK || rc == PPS_ENOMEM,
              "%s with allocation %ld failing: %s (%s), expected PPS_OK or "
              "PPS_ENOMEM",
              what, n, pps_status_name(rc), pps_last_error());
    if (rc == PPS_ENOMEM) {
        cr_assert(seen >= n, "%s: PPS_ENOMEM though no allocation failed",
                  what);
        cr_assert(strstr(pps_last_error(), "out of memory") != NULL ||
                      strstr(pps_last_error(), "Cannot allocate memory") !=
                          NULL,
                  "%s: PPS_ENOMEM with the detail \"%s\"", what,
                  pps_last_error());
    }
    return seen >= n;
}

/* After a call's sweep: every n was tried, and nothing leaked. */
static void
swept(const char *what, long n)
{
    cr_assert(n > 1, "%s allocated nothing: this sweep proves nothing",
              what);
    cr_assert(n < MAX_N, "%s: still allocating after %d failures", what,
              MAX_N);
    cr_assert(!pps_alloc_leaked(), "%s leaked on a failure path (see the "
              "LeakSanitizer report above)", what);
    cr_log_info("%s: each of its %ld allocations failed in turn", what,
                n - 1);
}

static pps_test_qstat
qstat(const pps_config *cfg)
{
    return pps_test_queue_status(cfg);
}

/* Sends one message and checks that each subscriber named gets it. */
static void
expect_usable(const pps_config *cfg, const char *const *subs)
{
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "usable", 6), PPS_OK, "%s",
                 pps_last_error());
    pps_pub_close(pub);
    for (size_t i = 0; subs[i] != NULL; i++) {
        pps_sub *sub = pps_test_sub_open(cfg, subs[i]);
        pps_test_sink *sink = pps_test_sink_new();
        pps_test_drain(sub, sink);
        cr_assert(sink->n >= 1 &&
                      memcmp(sink->data[sink->n - 1], "usable", 6) == 0,
                  "%s did not get the message sent after the failures",
                  subs[i]);
        pps_test_sink_del(sink);
        pps_sub_close(sub);
    }
}

/* ---- config load -------------------------------------------------------- */

static const char config_json[] =
    "{\"pub\": {\"out_queue\": \"q\", \"subscribers\": [\"s1\"]},"
    " \"pub2\": {\"out_queue\": \"r\"},"
    " \"s1\": {\"in_queue\": \"q\"}, \"s2\": {\"in_queue\": \"q\"},"
    " \"s3\": {\"in_queue\": \"r\"},"
    " \"queues\": {"
    "  \"q\": {\"path\": \"q\", \"subscribers\": [\"s1\", \"s2\"],"
    "   \"durability\": \"nosync\", \"mode\": \"0640\","
    "   \"high-water-mark\": {\"MAX_MSGS_NUM\": 100,"
    "    \"strategy\": \"prune_last\"}},"
    "  \"r\": {\"path\": \"sub/dir/r\", \"subscribers\": [\"s3\"]}}}";

Test(oom, config_load, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    char *path = pps_test_write(dir, "config.json", config_json);
    json_set_alloc_funcs(pps_alloc_json_malloc, pps_alloc_json_free);
    long n;
    for (n = 1; n < MAX_N; n++) {
        pps_config *cfg = NULL;
        pps_alloc_arm(n);
        int rc = pps_config_load(&cfg, path);
        long seen = pps_alloc_disarm();
        if (rc == PPS_ECONFIG && pps_alloc_failed_in_json()) {
            /* jansson 2.14 reports a failed allocation in its lexer as a
             * syntax error ("string or '}' expected near ..."), which the
             * library cannot tell from a real one (src/config.c). Only the
             * library's own allocations must give PPS_ENOMEM. */
            cr_assert_null(cfg);
            continue;
        }
        bool reached = expect_ok_or_enomem("pps_config_load", n, rc, seen);
        if (rc == PPS_OK) {
            /* Whole, not a part of it. */
            cr_assert_eq(cfg->n_queues, 2);
            cr_assert_eq(cfg->n_components, 5);
            cr_assert_eq(cfg->queues[0].n_subscribers, 2);
            cr_assert_str_eq(cfg->queues[0].subscribers[1], "s2");
            cr_assert_eq(cfg->queues[0].hwm.max_msgs_num, 100);
            cr_assert_not_null(strstr(cfg->queues[1].path, "sub/dir/r"));
            const pps__component *c = pps__config_component(cfg, "pub");
            cr_assert(c != NULL && c->n_subscribers == 1);
        } else {
            cr_assert_null(cfg);
        }
        pps_config_free(cfg);
        if (!reached) {
            break;
        }
    }
    json_set_alloc_funcs(malloc, free);
    swept("pps_config_load", n);
    free(path);
    pps_test_cleanup(dir);
}

/* ---- init --------------------------------------------------------------- */

static pps_config *
load(const char *dir, const char *name, const char *json)
{
    char *path = pps_test_write(dir, name, json);
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, path);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    free(path);
    return cfg;
}

static void
remove_queue(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/q'", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char one_sub_json[] =
    "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"s1\"],"
    " \"durability\": \"nosync\"}}}";
static const char two_subs_json[] =
    "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
    " \"s2\": {\"in_queue\": \"q\"},"
    " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"s1\", \"s2\"],"
    " \"durability\": \"nosync\","
    " \"high-water-mark\": {\"MAX_MSGS_NUM\": 1000}}}}";

Test(oom, init_of_a_new_queue, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = load(dir, "one.json", one_sub_json);
    long n;
    for (n = 1; n < MAX_N; n++) {
        remove_queue(dir);
        pps_alloc_arm(n);
        int rc = pps_ctl_init(cfg);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_ctl_init", n, rc, seen);
        if (rc == PPS_ENOMEM) {
            /* An interrupted init is resumed by the next one. */
            cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "init after a failed "
                         "one (allocation %ld): %s", n, pps_last_error());
        }
        pps_test_expect_consistent(cfg);
        expect_usable(cfg, subs_s1);
        if (!reached) {
            break;
        }
    }
    swept("pps_ctl_init (new queue)", n);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(oom, init_of_a_changed_queue, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *one = load(dir, "one.json", one_sub_json);
    pps_config *two = load(dir, "two.json", two_subs_json);
    long n;
    for (n = 1; n < MAX_N; n++) {
        remove_queue(dir);
        cr_assert_eq(pps_ctl_init(one), PPS_OK, "%s", pps_last_error());
        pps_pub *pub = pps_test_pub_open(one, "pub");
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(pps_pub_send(pub, "old", 3), PPS_OK);
        }
        pps_pub_close(pub);
        pps_alloc_arm(n);
        int rc = pps_ctl_init(two);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_ctl_init", n, rc, seen);
        pps_test_expect_consistent(one);
        pps_test_qstat st = qstat(one);
        cr_assert_eq(st.messages, 3, "init (allocation %ld failing) changed "
                     "the messages: %llu", n,
                     (unsigned long long)st.messages);
        if (rc == PPS_ENOMEM) {
            /* Nothing of it committed: s2 is not registered. */
            pps_sub *sub = NULL;
            cr_assert_eq(pps_sub_open(&sub, two, "s2"), PPS_ENOTINIT,
                         "s2 registered by an init that failed at "
                         "allocation %ld",
                         n);
            cr_assert_eq(pps_ctl_init(two), PPS_OK, "%s", pps_last_error());
        }
        pps_test_expect_consistent(two);
        expect_usable(two, subs_s1_s2);
        if (!reached) {
            break;
        }
    }
    swept("pps_ctl_init (changed queue)", n);
    pps_config_free(one);
    pps_config_free(two);
    pps_test_cleanup(dir);
}

/* ---- send --------------------------------------------------------------- */

Test(oom, pub_open_and_send, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1_s2, NULL, "\"durability\": \"nosync\"");
    long n;
    for (n = 1; n < MAX_N; n++) {
        pps_test_qstat before = qstat(cfg);
        pps_pub *pub = NULL;
        pps_alloc_arm(n);
        int rc = pps_pub_open(&pub, cfg, "pub");
        if (rc == PPS_OK) {
            rc = pps_pub_send(pub, "m", 1);
        }
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_pub_open + send", n, rc, seen);
        pps_pub_close(pub);
        pps_test_qstat after = qstat(cfg);
        cr_assert_eq(after.messages, before.messages + (rc == PPS_OK),
                     "allocation %ld failing: %llu messages, expected %llu",
                     n, (unsigned long long)after.messages,
                     (unsigned long long)before.messages + (rc == PPS_OK));
        cr_assert_eq(after.pending[1], after.messages);
        pps_test_expect_consistent(cfg);
        if (!reached) {
            break;
        }
    }
    swept("pps_pub_open + pps_pub_send", n);
    expect_usable(cfg, subs_s1_s2);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A send that finds the queue's settings changed reloads them (and its
 * subscriber handles) inside its own transaction. */
Test(oom, send_that_reloads_the_settings, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *a = pps_test_simple(dir, subs_s1_s2,
                                    "{\"MAX_MSGS_NUM\": 100000}",
                                    "\"durability\": \"nosync\"");
    pps_config *b = pps_test_simple(dir, subs_s1_s2,
                                    "{\"MAX_MSGS_NUM\": 100001}",
                                    "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(a, "pub");
    const pps_config *now = b; /* the settings the queue has */
    long n;
    for (n = 1; n < MAX_N; n++) {
        /* A new generation: the next send reloads. */
        now = now == a ? b : a;
        cr_assert_eq(pps_ctl_init(now), PPS_OK);
        pps_test_qstat before = qstat(a);
        pps_alloc_arm(n);
        int rc = pps_pub_send(pub, "m", 1);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_pub_send", n, rc, seen);
        pps_test_qstat after = qstat(a);
        cr_assert_eq(after.messages, before.messages + (rc == PPS_OK),
                     "allocation %ld failing: %llu messages, expected %llu",
                     n, (unsigned long long)after.messages,
                     (unsigned long long)before.messages + (rc == PPS_OK));
        pps_test_expect_consistent(a);
        if (rc == PPS_ENOMEM) {
            cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK, "send after a "
                         "failed one (allocation %ld): %s", n,
                         pps_last_error());
            cr_assert_eq(qstat(a).messages, before.messages + 1);
        }
        if (!reached) {
            break;
        }
    }
    swept("pps_pub_send (reload)", n);
    pps_pub_close(pub);
    expect_usable(a, subs_s1_s2);
    pps_config_free(a);
    pps_config_free(b);
    pps_test_cleanup(dir);
}

/* ---- receive ------------------------------------------------------------ */

/* Tops the queue up to `want` messages pending for s1. */
static void
top_up(const pps_config *cfg, uint64_t want)
{
    pps_test_qstat st = qstat(cfg);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    for (uint64_t i = st.pending[0]; i < want; i++) {
        cr_assert_eq(pps_pub_send(pub, "r", 1), PPS_OK);
    }
    pps_pub_close(pub);
}

Test(oom, sub_open_and_receive, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1, NULL, "\"durability\": \"nosync\"");
    long n;
    for (n = 1; n < MAX_N; n++) {
        top_up(cfg, 2);
        pps_sub *sub = NULL;
        int calls = 0;
        pps_alloc_arm(n);
        int rc = pps_sub_open(&sub, cfg, "s1");
        if (rc == PPS_OK) {
            rc = pps_sub_receive(sub, 0, pps_test_count_calls, &calls);
        }
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_sub_open + receive", n, rc,
                                           seen);
        pps_sub_close(sub);
        pps_test_qstat st = qstat(cfg);
        /* Consumed exactly when it says so; a failure keeps the message. */
        cr_assert_eq(st.pending[0], rc == PPS_OK ? 1u : 2u,
                     "allocation %ld failing: %s, %llu pending", n,
                     pps_status_name(rc), (unsigned long long)st.pending[0]);
        cr_assert_eq(calls, rc == PPS_OK ? 1 : calls);
        pps_test_expect_consistent(cfg);
        if (!reached) {
            break;
        }
    }
    swept("pps_sub_open + pps_sub_receive", n);
    expect_usable(cfg, subs_s1);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(oom, sub_open_and_receive_batch, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1, NULL, "\"durability\": \"nosync\"");
    long n;
    for (n = 1; n < MAX_N; n++) {
        /* 40 ids: the handle's batch buffer grows 16, 32, 64. */
        top_up(cfg, 40);
        pps_sub *sub = NULL;
        int calls = 0;
        pps_alloc_arm(n);
        int rc = pps_sub_open(&sub, cfg, "s1");
        if (rc == PPS_OK) {
            rc = pps_sub_receive_batch(sub, 40, 0, pps_test_count_calls,
                                       &calls);
        }
        long seen = pps_alloc_disarm();
        pps_sub_close(sub);
        cr_assert(rc == 40 || rc == PPS_ENOMEM,
                  "receive_batch with allocation %ld failing: %d (%s)", n, rc,
                  rc < 0 ? pps_last_error() : "a part of the batch");
        bool reached = seen >= n;
        cr_assert(rc != PPS_ENOMEM || reached);
        /* Whatever the callback accepted is consumed, and nothing else
         * (what a failure stopped short of stays pending). */
        pps_test_qstat st = qstat(cfg);
        cr_assert_eq(st.pending[0], 40u - (uint64_t)calls,
                     "allocation %ld failing: %d accepted, %llu of 40 still "
                     "pending",
                     n, calls, (unsigned long long)st.pending[0]);
        pps_test_expect_consistent(cfg);
        if (!reached) {
            break;
        }
    }
    swept("pps_sub_open + pps_sub_receive_batch", n);
    expect_usable(cfg, subs_s1);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- status and check --------------------------------------------------- */

Test(oom, status, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1_s2, NULL, "\"durability\": \"nosync\"");
    top_up(cfg, 5);
    long n;
    for (n = 1; n < MAX_N; n++) {
        pps_test_qstat q = {0};
        pps_alloc_arm(n);
        int rc = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_ctl_status", n, rc, seen);
        if (rc == PPS_OK) {
            cr_assert_eq(q.messages, 5);
            cr_assert_eq(q.pending[0], 5);
            cr_assert_eq(q.pending[1], 5);
        }
        if (!reached) {
            break;
        }
    }
    swept("pps_ctl_status", n);
    pps_test_expect_consistent(cfg);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* Damages the queue DIR/q with plain LMDB (as test_inspect.c does): four
 * problems, each repairable. */
static void
damage(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/q", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi data, msg, sub;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    cr_assert_eq(mdb_env_open(env, path, MDB_WRITEMAP | MDB_NOTLS, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, PPS__DB_DATA, MDB_INTEGERKEY, &data), 0);
    cr_assert_eq(mdb_dbi_open(txn, PPS__DB_MSG, MDB_INTEGERKEY, &msg), 0);
    cr_assert_eq(mdb_dbi_open(txn, "sub:s1", MDB_INTEGERKEY, &sub), 0);
    uint64_t id = 1;
    MDB_val k = {sizeof(id), &id}, v;
    cr_assert_eq(mdb_del(txn, data, &k, NULL), 0); /* payload gone */
    id = 2;
    pps__msg_meta m;
    cr_assert_eq(mdb_get(txn, msg, &k, &v), 0);
    memcpy(&m, v.mv_data, sizeof(m));
    m.pending = 7; /* a wrong pending count */
    v.mv_data = &m;
    v.mv_size = sizeof(m);
    cr_assert_eq(mdb_put(txn, msg, &k, &v, 0), 0);
    id = 99; /* a pending id of a message that never existed */
    v.mv_size = 0;
    cr_assert_eq(mdb_put(txn, sub, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
ignore_problem(const char *queue, const char *problem, int repaired,
               void *user)
{
    (void)queue;
    (void)problem;
    (void)repaired;
    (void)user;
}

static size_t
problems_now(const pps_config *cfg)
{
    size_t problems = 0;
    int rc = pps_ctl_check(cfg, NULL, 0, ignore_problem, NULL, &problems);
    cr_assert(rc == PPS_OK || rc == PPS_ECORRUPT, "%s", pps_last_error());
    return problems;
}

Test(oom, check_of_a_clean_queue, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1_s2, NULL, "\"durability\": \"nosync\"");
    top_up(cfg, 5);
    long n;
    for (n = 1; n < MAX_N; n++) {
        size_t problems = 99;
        pps_alloc_arm(n);
        int rc = pps_ctl_check(cfg, NULL, n % 2, ignore_problem, NULL,
                               &problems);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_ctl_check", n, rc, seen);
        cr_assert(rc != PPS_OK || problems == 0);
        if (!reached) {
            break;
        }
    }
    swept("pps_ctl_check (clean)", n);
    pps_test_expect_consistent(cfg);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(oom, check_with_repair_of_a_damaged_queue, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = load(dir, "two.json", two_subs_json);
    long n;
    for (n = 1; n < MAX_N; n++) {
        remove_queue(dir);
        cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
        top_up(cfg, 4);
        damage(dir);
        cr_assert_eq(problems_now(cfg), 4);
        size_t problems = 0;
        pps_alloc_arm(n);
        int rc = pps_ctl_check(cfg, NULL, 1, ignore_problem, NULL, &problems);
        long seen = pps_alloc_disarm();
        bool reached = expect_ok_or_enomem("pps_ctl_check (repair)", n, rc,
                                           seen);
        /* A repair commits whole or not at all. */
        size_t left = problems_now(cfg);
        cr_assert(rc == PPS_OK ? left == 0 : left == 4,
                  "repair with allocation %ld failing: %s, %zu of 4 "
                  "problems left",
                  n, pps_status_name(rc), left);
        if (rc == PPS_ENOMEM) {
            cr_assert_eq(pps_ctl_check(cfg, NULL, 1, ignore_problem, NULL,
                                       &problems),
                         PPS_OK, "%s", pps_last_error());
            cr_assert_eq(problems_now(cfg), 0);
        }
        expect_usable(cfg, subs_s1_s2);
        if (!reached) {
            break;
        }
    }
    swept("pps_ctl_check (repair)", n);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- exactly PPS_ENOMEM (docs/reliability.rst, every documented status) -- */

/* Runs `call` with the first allocation of this thread failing: the status
 * must be exactly PPS_ENOMEM, with a detail saying so. */
#define EXPECT_FIRST_ALLOCATION_ENOMEM(call)                                   \
    do {                                                                       \
        pps_alloc_arm(1);                                                      \
        int rc_ = (call);                                                      \
        long seen_ = pps_alloc_disarm();                                       \
        cr_assert_eq(rc_, PPS_ENOMEM,                                          \
                     "%s with its first allocation failing: %s (%s), %ld "     \
                     "allocation(s) attempted",                                \
                     #call, pps_status_name(rc_), pps_last_error(), seen_);    \
        cr_assert_geq(seen_, 1);                                               \
        cr_assert(strstr(pps_last_error(), "out of memory") != NULL ||         \
                      strstr(pps_last_error(), "Cannot allocate memory") !=    \
                          NULL,                                                \
                  "%s: the detail \"%s\"", #call, pps_last_error());           \
    } while (0)

Test(oom, config_load_is_enomem, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    char *path = pps_test_write(dir, "config.json", config_json);
    pps_config *cfg = (pps_config *)&cfg; /* must become NULL */
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_config_load(&cfg, path));
    cr_assert_null(cfg);
    free(path);
    pps_test_cleanup(dir);
}

Test(oom, control_calls_are_enomem, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *two = load(dir, "two.json", two_subs_json);
    pps_config *one = load(dir, "one.json", one_sub_json);
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_init(two));
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_init_queue(two, "q"));
    cr_assert_eq(pps_ctl_init(two), PPS_OK, "%s", pps_last_error());
    top_up(two, 3);
    pps_removed removed;
    pps_test_qstat q;
    size_t problems;
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_prune(two));
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_prune_queue(two, "q", &removed));
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_clear(two));
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_clear_queue(two, "q", &removed));
    EXPECT_FIRST_ALLOCATION_ENOMEM(
        pps_ctl_status(two, NULL, pps_test_qstat_cb, &q));
    EXPECT_FIRST_ALLOCATION_ENOMEM(
        pps_ctl_check(two, NULL, 0, NULL, NULL, &problems));
    /* Nothing was removed by the failed calls. */
    cr_assert_eq(qstat(two).messages, 3);
    /* "one" no longer lists s2: it may be removed. */
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_ctl_remove_subscriber(one, "q", "s2"));
    cr_assert_eq(qstat(two).pending[1], 3, "the failed removal changed s2");
    cr_assert_eq(pps_ctl_remove_subscriber(one, "q", "s2"), PPS_OK, "%s",
                 pps_last_error());
    pps_test_expect_consistent(one);
    pps_config_free(one);
    pps_config_free(two);
    pps_test_cleanup(dir);
}

Test(oom, publisher_calls_are_enomem, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *a = pps_test_simple(dir, subs_s1_s2,
                                    "{\"MAX_MSGS_NUM\": 100000}",
                                    "\"durability\": \"nosync\"");
    pps_config *b = pps_test_simple(dir, subs_s1_s2,
                                    "{\"MAX_MSGS_NUM\": 100001}",
                                    "\"durability\": \"nosync\"");
    pps_pub *pub = (pps_pub *)&pub; /* must become NULL */
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_pub_open(&pub, a, "pub"));
    cr_assert_null(pub);
    pub = pps_test_pub_open(a, "pub");
    /* A send that finds a new generation (the queue has b's settings now)
     * reloads the settings: it allocates. */
    cr_assert_eq(pps_ctl_init(a), PPS_OK);
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_pub_send(pub, "m", 1));
    cr_assert_eq(pps_ctl_init(b), PPS_OK);
    pps_buf two[2] = {{"m", 1}, {"n", 1}};
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_pub_send_many(pub, two, 2));
    cr_assert_eq(qstat(a).messages, 0, "a failed send wrote");
    cr_assert_eq(pps_pub_send_many(pub, two, 2), PPS_OK, "%s",
                 pps_last_error());
    pps_pub_close(pub);
    pps_config_free(a);
    pps_config_free(b);
    pps_test_cleanup(dir);
}

Test(oom, subscriber_calls_are_enomem, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs_s1, NULL, "\"durability\": \"nosync\"");
    top_up(cfg, 40);
    pps_sub *sub = (pps_sub *)&sub; /* must become NULL */
    EXPECT_FIRST_ALLOCATION_ENOMEM(pps_sub_open(&sub, cfg, "s1"));
    cr_assert_null(sub);
    int calls = 0;
    /* A fresh handle's first receive of each kind sets up its buffers. */
    sub = pps_test_sub_open(cfg, "s1");
    EXPECT_FIRST_ALLOCATION_ENOMEM(
        pps_sub_receive(sub, 0, pps_test_count_calls, &calls));
    pps_sub_close(sub);
    sub = pps_test_sub_open(cfg, "s1");
    EXPECT_FIRST_ALLOCATION_ENOMEM(
        pps_sub_receive_to_top(sub, 0, pps_test_count_calls, &calls));
    pps_sub_close(sub);
    sub = pps_test_sub_open(cfg, "s1");
    EXPECT_FIRST_ALLOCATION_ENOMEM(
        pps_sub_receive_batch(sub, 40, 0, pps_test_count_calls, &calls));
    pps_sub_close(sub);
    cr_assert_eq(calls, 0, "a failed receive called the callback");
    pps_test_expect_consistent(cfg);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
