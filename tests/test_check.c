/*
 * The consistency check (src/check.c), on queues damaged on purpose with
 * plain LMDB calls (as a bug or a foreign tool could), and its problem
 * callback, which runs holding nothing: it may use the library on the same
 * queue.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const subs2[] = {"a", "b", NULL};

static int
next_id_of(const pps_queue_status *st, void *user)
{
    *(uint64_t *)user = st->next_id;
    return 0;
}

typedef struct problems {
    int n;
    int repaired;
    char text[16][512];
} problems;

static void
note(const char *path, const char *text, int repaired, void *user)
{
    problems *p = user;
    (void)path;
    p->repaired += repaired != 0;
    if (p->n < 16) {
        snprintf(p->text[p->n], sizeof(p->text[0]), "%s", text);
    }
    p->n++;
}

static bool
has(const problems *p, const char *needle)
{
    for (int i = 0; i < p->n && i < 16; i++) {
        if (strstr(p->text[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

/* Damages the queue DIR/q with plain LMDB, as another program could. */
static void
damage(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/q", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi data, msg, sub_a;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    cr_assert_eq(mdb_env_open(env, path, MDB_WRITEMAP | MDB_NOTLS, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, PPS__DB_DATA, MDB_INTEGERKEY, &data), 0);
    cr_assert_eq(mdb_dbi_open(txn, PPS__DB_MSG, MDB_INTEGERKEY, &msg), 0);
    cr_assert_eq(mdb_dbi_open(txn, "sub:a", MDB_INTEGERKEY, &sub_a), 0);
    uint64_t id = 1;
    MDB_val k = {sizeof(id), &id}, v;
    /* 1: payload gone, metadata and pending ids left */
    cr_assert_eq(mdb_del(txn, data, &k, NULL), 0);
    /* 2: pending count wrong */
    id = 2;
    pps__msg_meta m;
    cr_assert_eq(mdb_get(txn, msg, &k, &v), 0);
    memcpy(&m, v.mv_data, sizeof(m));
    m.pending = 7;
    v.mv_data = &m;
    v.mv_size = sizeof(m);
    cr_assert_eq(mdb_put(txn, msg, &k, &v, 0), 0);
    /* 99: a pending id of a message that never existed */
    id = 99;
    v.mv_size = 0;
    cr_assert_eq(mdb_put(txn, sub_a, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(check, check_finds_and_repairs_damage, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs2, NULL, NULL);
    pps_pub *pub;
    cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pps_pub_send(pub, "x", 1), PPS_OK);
    }
    pps_pub_close(pub);

    problems p = {0};
    size_t n = 99;
    cr_assert_eq(pps_ctl_check(cfg, NULL, 0, note, &p, &n), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(n, 0);
    cr_assert_eq(p.n, 0);

    damage(dir);
    cr_assert_eq(pps_ctl_check(cfg, NULL, 0, note, &p, &n), PPS_ECORRUPT);
    cr_assert_eq(n, 4, "problems: %zu", n);
    cr_assert_eq(p.repaired, 0);
    cr_assert(has(&p, "message 1: metadata without payload"));
    cr_assert(has(&p, "message 2: pending count 7, but 2 subscriber(s)"));
    cr_assert(has(&p, "pends on message 99, which does not exist"));
    cr_assert(has(&p, "message 99 is not below the next id 5"));

    memset(&p, 0, sizeof(p));
    cr_assert_eq(pps_ctl_check(cfg, "q", 1, note, &p, &n), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(n, 4);
    cr_assert_eq(p.repaired, 4);
    memset(&p, 0, sizeof(p));
    cr_assert_eq(pps_ctl_check(cfg, NULL, 0, note, &p, &n), PPS_OK, "%s",
                 p.text[0]);
    cr_assert_eq(n, 0);

    /* Nothing deliverable was lost: 2, 3, 4 for both subscribers. */
    const char *ids[] = {"a", "b"};
    for (int s = 0; s < 2; s++) {
        pps_sub *sub;
        pps_test_sink sink = {0};
        cr_assert_eq(pps_sub_open(&sub, cfg, ids[s]), PPS_OK);
        cr_assert_eq(pps_test_drain(sub, &sink), 3, "%s got %zu", ids[s],
                     sink.n);
        cr_assert_eq(sink.ids[0], 2);
        cr_assert_eq(sink.ids[2], 4);
        pps_test_sink_free(&sink);
        pps_sub_close(sub);
    }
    /* The next id moved past the damage. */
    cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
    cr_assert_eq(pps_pub_send(pub, "y", 1), PPS_OK);
    pps_pub_close(pub);
    uint64_t next_id = 0;
    cr_assert_eq(pps_ctl_status(cfg, NULL, next_id_of, &next_id), PPS_OK);
    cr_assert_eq(next_id, 101);

    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(check, check_of_an_uninitialized_queue, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(
        dir, "{\"queues\": {\"q\": {\"path\": \"q\"}}}");
    size_t n;
    cr_assert_eq(pps_ctl_check(cfg, NULL, 0, NULL, NULL, &n), PPS_ENOTINIT);
    cr_assert_eq(pps_ctl_check(NULL, NULL, 0, NULL, NULL, &n), PPS_EINVAL);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- the problem callback holds nothing --------------------------------- */

typedef struct reentry {
    const pps_config *cfg;
    pps_pub *pub;
    int calls;
    int send_rc, open_rc, receive_rc, status_rc, check_rc;
    size_t nested_problems;
} reentry;

static int
count_status(const pps_queue_status *st, void *user)
{
    (void)st;
    (*(int *)user)++;
    return 0;
}

/* Uses the library on the queue being checked (the first call only): a
 * send, a fresh subscriber's receive, a status and a nested check. */
static void
use_the_queue(const char *path, const char *text, int repaired, void *user)
{
    (void)path;
    (void)text;
    (void)repaired;
    reentry *r = user;
    if (r->calls++ > 0) {
        return;
    }
    r->send_rc = pps_pub_send(r->pub, "in callback", 11);
    pps_sub *b = NULL;
    r->open_rc = pps_sub_open(&b, r->cfg, "b");
    int got = 0;
    r->receive_rc = b != NULL ? pps_sub_receive(b, 0, pps_test_count_calls,
                                                &got)
                              : r->open_rc;
    pps_sub_close(b);
    int n = 0;
    r->status_rc = pps_ctl_status(r->cfg, NULL, count_status, &n);
    r->check_rc = pps_ctl_check(r->cfg, NULL, 0, NULL, NULL,
                                &r->nested_problems);
}

/* Damages the queue DIR/q with plain LMDB: message 2's pending count is
 * wrong (one problem, which leaves the queue usable). */
static void
damage_pending_count(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/q", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi msg;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    cr_assert_eq(mdb_env_open(env, path, MDB_WRITEMAP | MDB_NOTLS, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, PPS__DB_MSG, MDB_INTEGERKEY, &msg), 0);
    uint64_t id = 2;
    MDB_val k = {sizeof(id), &id}, v;
    pps__msg_meta m;
    cr_assert_eq(mdb_get(txn, msg, &k, &v), 0);
    memcpy(&m, v.mv_data, sizeof(m));
    m.pending = 7;
    v.mv_data = &m;
    v.mv_size = sizeof(m);
    cr_assert_eq(mdb_put(txn, msg, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
problem_callback_may_use_the_queue(int repair)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs2, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pps_pub_send(pub, "x", 1), PPS_OK);
    }
    /* damage() opens its own environment: none of ours may be open
     * meanwhile (LMDB allows one per process). */
    pps_pub_close(pub);
    damage_pending_count(dir);
    reentry r = {.cfg = cfg, .pub = pps_test_pub_open(cfg, "pub")};

    size_t n = 0;
    int rc = pps_ctl_check(cfg, NULL, repair, use_the_queue, &r, &n);
    cr_assert_eq(rc, repair ? PPS_OK : PPS_ECORRUPT, "check: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(n, 1);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.send_rc, PPS_OK, "send in the callback: %s",
                 pps_status_name(r.send_rc));
    cr_assert_eq(r.open_rc, PPS_OK, "sub_open in the callback: %s",
                 pps_status_name(r.open_rc));
    cr_assert_eq(r.receive_rc, PPS_OK, "receive in the callback: %s",
                 pps_status_name(r.receive_rc));
    cr_assert_eq(r.status_rc, PPS_OK, "status in the callback: %s",
                 pps_status_name(r.status_rc));
    /* The nested check sees the damage, or none once repaired. */
    cr_assert_eq(r.check_rc, repair ? PPS_OK : PPS_ECORRUPT,
                 "check in the callback: %s", pps_status_name(r.check_rc));
    cr_assert_eq(r.nested_problems, repair ? 0u : 1u);
    pps_pub_close(r.pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(check, problem_callback_may_use_the_queue, .timeout = 60)
{
    problem_callback_may_use_the_queue(0);
}

Test(check, problem_callback_of_a_repair_may_use_the_queue, .timeout = 60)
{
    problem_callback_may_use_the_queue(1);
}
