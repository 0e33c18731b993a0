/*
 * Status and consistency check, including queues damaged on purpose with
 * plain LMDB calls (as a bug or a foreign tool could).
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const subs2[] = {"a", "b", NULL};

typedef struct seen {
    int calls;
    pps_queue_status st;
    pps_subscriber_status subs[4];
    char ids[4][32];
} seen;

static int
remember(const pps_queue_status *st, void *user)
{
    seen *s = user;
    s->calls++;
    s->st = *st;
    for (size_t i = 0; i < st->n_subscribers && i < 4; i++) {
        s->subs[i] = st->subscribers[i];
        snprintf(s->ids[i], sizeof(s->ids[i]), "%s", st->subscribers[i].id);
        s->subs[i].id = s->ids[i];
    }
    s->st.subscribers = NULL;
    return 0;
}

static int
consume(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

Test(inspect, status_reports_counts_limits_and_subscribers, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(
        dir, subs2, "{\"MAX_MSGS_NUM\": 100, \"strategy\": \"prune_last\"}",
        "\"durability\": \"nosync\"");
    pps_pub *pub;
    pps_sub *a;
    cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(pps_pub_send(pub, "12345678", 8), PPS_OK);
    }
    cr_assert_eq(pps_sub_open(&a, cfg, "a"), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, consume, NULL), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, consume, NULL), PPS_OK);

    seen s = {0};
    cr_assert_eq(pps_ctl_status(cfg, NULL, remember, &s), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.st.messages, 5);
    cr_assert_gt(s.st.bytes, 0);
    cr_assert_eq(s.st.next_id, 6);
    cr_assert_eq(s.st.max_msgs_num, 100);
    cr_assert_eq(s.st.msg_timeout_secs, 500);
    cr_assert_str_eq(s.st.strategy, "prune_last");
    cr_assert_str_eq(s.st.durability, "nosync");
    cr_assert_eq(s.st.map_size, 268435456);
    cr_assert_gt(s.st.map_used, 0);
    cr_assert_gt(s.st.oldest_ns, 0);
    cr_assert_eq(s.st.n_subscribers, 2);
    cr_assert_str_eq(s.subs[0].id, "a");
    cr_assert_eq(s.subs[0].pending, 3);
    cr_assert_str_eq(s.subs[1].id, "b");
    cr_assert_eq(s.subs[1].pending, 5);
    cr_assert_geq(s.subs[0].oldest_ns, s.subs[1].oldest_ns);

    /* One queue by key and by path; an unknown one. */
    s.calls = 0;
    cr_assert_eq(pps_ctl_status(cfg, "q", remember, &s), PPS_OK);
    cr_assert_eq(pps_ctl_status(cfg, s.st.path, remember, &s), PPS_OK);
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(pps_ctl_status(cfg, "nope", remember, &s), PPS_ENOTFOUND);
    cr_assert(strstr(pps_last_error(), "nope") != NULL);
    cr_assert_eq(pps_ctl_status(cfg, NULL, NULL, NULL), PPS_EINVAL);

    pps_removed r = {0};
    cr_assert_eq(pps_ctl_clear_queue(cfg, "q", &r), PPS_OK);
    cr_assert_eq(r.messages, 5);
    cr_assert_gt(r.bytes, 0);
    cr_assert_eq(pps_ctl_status(cfg, NULL, remember, &s), PPS_OK);
    cr_assert_eq(s.st.messages, 0);
    cr_assert_eq(s.st.oldest_ns, 0);
    cr_assert_eq(s.subs[1].pending, 0);
    cr_assert_eq(pps_ctl_prune_queue(cfg, "q", &r), PPS_OK);
    cr_assert_eq(r.messages, 0);

    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
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

Test(inspect, check_finds_and_repairs_damage, .timeout = 30)
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
    seen s = {0};
    cr_assert_eq(pps_ctl_status(cfg, NULL, remember, &s), PPS_OK);
    cr_assert_eq(s.st.next_id, 101);

    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(inspect, check_of_an_uninitialized_queue, .timeout = 30)
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

Test(inspect, config_queue_listing_and_init_of_one_queue, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(
        dir, "{\"queues\": {\"q1\": {\"path\": \"one\"}, "
             "\"q2\": {\"path\": \"two\"}}}");
    cr_assert_eq(pps_config_queue_count(cfg), 2);
    cr_assert_eq(pps_config_queue_count(NULL), 0);
    cr_assert_str_eq(pps_config_queue_key(cfg, 1), "q2");
    cr_assert(strstr(pps_config_queue_path(cfg, 0), "/one") != NULL);
    cr_assert_null(pps_config_queue_key(cfg, 2));
    cr_assert_null(pps_config_queue_path(cfg, 2));
    size_t i = 9;
    cr_assert_eq(pps_config_queue_find(cfg, "q2", &i), PPS_OK);
    cr_assert_eq(i, 1);
    cr_assert_eq(pps_config_queue_find(cfg, pps_config_queue_path(cfg, 0), &i),
                 PPS_OK);
    cr_assert_eq(i, 0);
    cr_assert_eq(pps_config_queue_find(cfg, "q3", &i), PPS_ENOTFOUND);
    cr_assert_eq(pps_config_queue_find(cfg, NULL, &i), PPS_EINVAL);

    /* init of one queue creates that one only */
    cr_assert_eq(pps_ctl_init_queue(cfg, "q2"), PPS_OK, "%s",
                 pps_last_error());
    char path[4096];
    snprintf(path, sizeof(path), "%s/two/pps.wake", dir);
    cr_assert_eq(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/one", dir);
    cr_assert_neq(access(path, F_OK), 0);
    cr_assert_eq(pps_ctl_init_queue(cfg, "nope"), PPS_ENOTFOUND);
    cr_assert_eq(pps_ctl_init_queue(cfg, NULL), PPS_EINVAL);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- statuses of the control functions ---------------------------------- */

static int
stop_at_first(const pps_queue_status *st, void *user)
{
    (void)st;
    (*(int *)user)++;
    return 7; /* any non-zero value stops the report */
}

Test(inspect, status_callback_refusal_is_ecallback, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue(
        dir, "{\"queues\": {\"q1\": {\"path\": \"one\"}, "
             "\"q2\": {\"path\": \"two\"}}}");
    int calls = 0;
    int rc = pps_ctl_status(cfg, NULL, stop_at_first, &calls);
    cr_assert_eq(rc, PPS_ECALLBACK, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(calls, 1, "the report went on after a refusal: %d calls",
                 calls);
    cr_assert_neq(pps_last_error()[0], '\0');
    /* A callback that accepts sees both queues. */
    pps_test_qstat q;
    cr_assert_eq(pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q), PPS_OK,
                 "%s", pps_last_error());
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(inspect, unknown_queue_is_enotfound, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"a", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "kept", 4), PPS_OK);
    pps_removed removed = {99, 99};
    int rc = pps_ctl_prune_queue(cfg, "nope", &removed);
    cr_assert_eq(rc, PPS_ENOTFOUND, "prune_queue: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "nope"), "%s",
                       pps_last_error());
    rc = pps_ctl_clear_queue(cfg, "nope", &removed);
    cr_assert_eq(rc, PPS_ENOTFOUND, "clear_queue: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_test_qstat q;
    rc = pps_ctl_status(cfg, "nope", pps_test_qstat_cb, &q);
    cr_assert_eq(rc, PPS_ENOTFOUND, "status: %s: %s", pps_status_name(rc),
                 pps_last_error());
    size_t n = 99;
    rc = pps_ctl_check(cfg, "nope", 0, NULL, NULL, &n);
    cr_assert_eq(rc, PPS_ENOTFOUND, "check: %s: %s", pps_status_name(rc),
                 pps_last_error());
    /* Nothing was pruned or cleared. */
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1u);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
