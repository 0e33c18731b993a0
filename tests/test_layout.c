/*
 * The storage layout (src/layout.c) through its internal API: every record
 * round-trips (format, settings, sequence, subscriber list, messages and
 * their metadata), registration beyond the limit writes nothing, malformed
 * keys and values are PPS_ESTORAGE, and the format probe tells a queue that
 * never finished its init (PPS_ENOTINIT), another application's databases
 * (PPS_EFOREIGN) and a newer format (PPS_EVERSION) apart.
 *
 * The environment comes from pps__env_acquire(create) without an init: the
 * internal databases exist, nothing is in them.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture {
    char *dir;
    pps_config *cfg;
    pps__env *e;
} fixture;

/* A queue directory with its environment open, never initialized. */
static void
fixture_open(fixture *f)
{
    f->dir = pps_test_tmpdir();
    f->cfg = pps_test_config(
        f->dir, "{\"queues\": {\"q\": {\"path\": \"q\", "
                "\"max_db_size_bytes\": 4194304}}}");
    int rc = pps__env_acquire(&f->e, &f->cfg->queues[0], true);
    cr_assert_eq(rc, PPS_OK, "acquire: %s: %s", pps_status_name(rc),
                 pps_last_error());
}

static void
fixture_close(fixture *f)
{
    pps__env_release(f->e);
    pps_config_free(f->cfg);
    pps_test_cleanup(f->dir);
}

static MDB_txn *
begin_write(pps__env *e)
{
    MDB_txn *txn = NULL;
    int rc = pps__txn_begin_write(e, &txn);
    cr_assert_eq(rc, PPS_OK, "begin write: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return txn;
}

static void
commit(pps__env *e, MDB_txn *txn)
{
    int rc = pps__txn_commit(e, txn, PPS__NOSYNC, "test commit");
    cr_assert_eq(rc, PPS_OK, "commit: %s: %s", pps_status_name(rc),
                 pps_last_error());
}

static uint64_t
last_txnid(pps__env *e)
{
    MDB_envinfo info;
    cr_assert_eq(mdb_env_info(e->env, &info), 0);
    return (uint64_t)info.me_last_txnid;
}

/* ---- format, settings, sequence ----------------------------------------- */

Test(layout, format_settings_and_seq_round_trip, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    MDB_txn *txn = begin_write(f.e);

    /* Nothing yet: no format, no settings, the sequence starts at 1. */
    pps__err_begin();
    cr_assert_eq(pps__layout_check_format(f.e, txn), PPS_ENOTINIT);
    pps_test_expect_detail(f.e->path, "no format");
    pps__settings s;
    pps__err_begin();
    cr_assert_eq(pps__layout_read_settings(f.e, txn, &s), PPS_ENOTINIT);
    pps_test_expect_detail(f.e->path, "no settings");
    pps__seq seq = {99, 99};
    cr_assert_eq(pps__layout_read_seq(f.e, txn, &seq), PPS_OK);
    cr_assert_eq(seq.next_id, 1);
    cr_assert_eq(seq.gen, 0);

    /* Written once, then found equal. */
    bool changed = false;
    cr_assert_eq(pps__layout_init_format(f.e, txn, &changed), PPS_OK);
    cr_assert(changed);
    changed = false;
    cr_assert_eq(pps__layout_init_format(f.e, txn, &changed), PPS_OK);
    cr_assert_not(changed);
    cr_assert_eq(pps__layout_check_format(f.e, txn), PPS_OK);

    const pps__settings want = {.msg_timeout_secs = 600,
                                .max_msgs_num = 10000,
                                .hwm_lmdb_size_bytes = 1000000,
                                .strategy = PPS__PRUNE_LAST,
                                .durability = PPS__NOMETASYNC};
    changed = false;
    cr_assert_eq(pps__layout_write_settings(f.e, txn, &want, &changed),
                 PPS_OK);
    cr_assert(changed);
    changed = false;
    cr_assert_eq(pps__layout_write_settings(f.e, txn, &want, &changed),
                 PPS_OK);
    cr_assert_not(changed, "equal settings were written again");

    const pps__seq wseq = {.next_id = 42, .gen = 7};
    cr_assert_eq(pps__layout_write_seq(f.e, txn, &wseq), PPS_OK);
    commit(f.e, txn);

    /* Read back in a transaction of its own. */
    cr_assert_eq(pps__txn_begin_read(f.e, &txn), PPS_OK);
    cr_assert_eq(pps__layout_check_format(f.e, txn), PPS_OK);
    memset(&s, 0xff, sizeof(s));
    cr_assert_eq(pps__layout_read_settings(f.e, txn, &s), PPS_OK);
    cr_assert_eq(memcmp(&s, &want, sizeof(s)), 0);
    cr_assert_eq(pps__layout_read_seq(f.e, txn, &seq), PPS_OK);
    cr_assert_eq(seq.next_id, 42);
    cr_assert_eq(seq.gen, 7);
    mdb_txn_abort(txn);
    fixture_close(&f);
}

Test(layout, malformed_settings_are_estorage_and_rewritten, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    MDB_txn *txn = begin_write(f.e);
    /* A settings record of the wrong size, as a bug or a foreign tool
     * could leave. */
    MDB_val k = {8, "settings"}, v = {3, "bad"};
    cr_assert_eq(mdb_put(txn, f.e->dbs.meta, &k, &v, 0), 0);
    MDB_val ks = {3, "seq"};
    cr_assert_eq(mdb_put(txn, f.e->dbs.meta, &ks, &v, 0), 0);
    pps__settings s;
    pps__err_begin();
    cr_assert_eq(pps__layout_read_settings(f.e, txn, &s), PPS_ESTORAGE);
    pps_test_expect_detail(f.e->path, "malformed settings");
    cr_assert_not_null(strstr(pps_last_error(), "settings"), "%s",
                       pps_last_error());
    pps__seq seq;
    cr_assert_eq(pps__layout_read_seq(f.e, txn, &seq), PPS_ESTORAGE);

    /* init's write replaces it. */
    const pps__settings want = {1, 2, 3, PPS__PRUNE_FIRST, PPS__SYNC};
    bool changed = false;
    cr_assert_eq(pps__layout_write_settings(f.e, txn, &want, &changed),
                 PPS_OK, "%s", pps_last_error());
    cr_assert(changed);
    cr_assert_eq(pps__layout_read_settings(f.e, txn, &s), PPS_OK);
    cr_assert_eq(memcmp(&s, &want, sizeof(s)), 0);
    mdb_txn_abort(txn);
    fixture_close(&f);
}

/* ---- subscribers -------------------------------------------------------- */

Test(layout, subscriber_registration_round_trips, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    MDB_txn *txn = begin_write(f.e);
    pps__subs subs = {0};
    cr_assert_eq(pps__subs_open(f.e, txn, &subs), PPS_OK);
    cr_assert_eq(subs.n, 0);
    cr_assert_eq(pps__subs_find(&subs, "a"), -1);

    /* Ids like internal names are names of their own. */
    char *ab[] = {"a", "pps.meta"};
    bool changed = false;
    cr_assert_eq(pps__subs_register(f.e, txn, ab, 2, 10, &changed), PPS_OK,
                 "%s", pps_last_error());
    cr_assert(changed);
    char *bc[] = {"pps.meta", "c"};
    changed = false;
    cr_assert_eq(pps__subs_register(f.e, txn, bc, 2, 10, &changed), PPS_OK);
    cr_assert(changed);
    char *a[] = {"a"};
    changed = false;
    cr_assert_eq(pps__subs_register(f.e, txn, a, 1, 10, &changed), PPS_OK);
    cr_assert_not(changed, "a registered subscriber was registered again");
    commit(f.e, txn);

    txn = begin_write(f.e);
    cr_assert_eq(pps__subs_open(f.e, txn, &subs), PPS_OK);
    cr_assert_eq(subs.n, 3);
    cr_assert_eq(pps__subs_find(&subs, "a"), 0);
    cr_assert_eq(pps__subs_find(&subs, "pps.meta"), 1);
    cr_assert_eq(pps__subs_find(&subs, "c"), 2);
    cr_assert_eq(pps__subs_find(&subs, "b"), -1);
    /* Their pending databases are apart from the internal ones. */
    cr_assert_neq(subs.dbis[1], f.e->dbs.meta);
    MDB_dbi one;
    cr_assert_eq(pps__subs_open_one(f.e, txn, "c", &one, NULL), PPS_OK);
    cr_assert_eq(one, subs.dbis[2]);
    pps__err_begin();
    cr_assert_eq(pps__subs_open_one(f.e, txn, "b", &one, NULL), PPS_ENOTINIT);
    pps_test_expect_detail(f.e->path, "unregistered subscriber");
    cr_assert_not_null(strstr(pps_last_error(), "\"b\""), "%s",
                       pps_last_error());
    mdb_txn_abort(txn);

    char name[PPS__SUB_NAME_MAX];
    pps__layout_sub_name(name, "pps.meta");
    cr_assert_str_eq(name, "sub:pps.meta");
    char longest[256];
    memset(longest, 'x', 255);
    longest[255] = '\0';
    pps__layout_sub_name(name, longest);
    cr_assert_eq(strlen(name), PPS__SUB_NAME_MAX - 1);

    pps__subs_free(&subs);
    pps__subs_free(&subs); /* freed twice: a no-op */
    fixture_close(&f);
}

Test(layout, registration_beyond_the_limit_is_efull_and_writes_nothing,
     .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    MDB_txn *txn = begin_write(f.e);
    char *ab[] = {"a", "b"};
    bool changed = false;
    cr_assert_eq(pps__subs_register(f.e, txn, ab, 2, 3, &changed), PPS_OK);
    commit(f.e, txn);
    uint64_t before = last_txnid(f.e);

    /* b is registered already: c and d would make four, room for three. */
    txn = begin_write(f.e);
    char *bcd[] = {"b", "c", "d"};
    changed = false;
    pps__err_begin();
    int rc = pps__subs_register(f.e, txn, bcd, 3, 3, &changed);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not(changed);
    pps_test_expect_detail(f.e->path, "registration beyond the limit");
    cr_assert_not_null(strstr(pps_last_error(), "max_db_num"), "%s",
                       pps_last_error());
    /* Nothing was written: the transaction has no change to commit (LMDB
     * then commits nothing and the transaction id stays). */
    commit(f.e, txn);
    cr_assert_eq(last_txnid(f.e), before, "the refused registration wrote");

    txn = begin_write(f.e);
    pps__subs subs = {0};
    cr_assert_eq(pps__subs_open(f.e, txn, &subs), PPS_OK);
    cr_assert_eq(subs.n, 2);
    MDB_dbi dbi;
    cr_assert_eq(pps__subs_open_one(f.e, txn, "c", &dbi, NULL), PPS_ENOTINIT);
    cr_assert_eq(pps__subs_open_one(f.e, txn, "d", &dbi, NULL), PPS_ENOTINIT);
    /* Exactly at the limit is fine. */
    char *c[] = {"c"};
    cr_assert_eq(pps__subs_register(f.e, txn, c, 1, 3, &changed), PPS_OK);
    cr_assert(changed);
    mdb_txn_abort(txn);
    pps__subs_free(&subs);
    fixture_close(&f);
}

Test(layout, corrupt_subscriber_list_is_estorage, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    MDB_txn *txn = begin_write(f.e);
    MDB_val k = {11, "subscribers"}, v = {3, "abc"}; /* no final NUL */
    cr_assert_eq(mdb_put(txn, f.e->dbs.meta, &k, &v, 0), 0);
    pps__subs subs = {0};
    pps__err_begin();
    cr_assert_eq(pps__subs_open(f.e, txn, &subs), PPS_ESTORAGE);
    pps_test_expect_detail(f.e->path, "corrupt subscriber list");
    cr_assert_eq(subs.n, 0);
    char *a[] = {"a"};
    bool changed = false;
    cr_assert_eq(pps__subs_register(f.e, txn, a, 1, 10, &changed),
                 PPS_ESTORAGE);
    mdb_txn_abort(txn);
    fixture_close(&f);
}

/* ---- messages ----------------------------------------------------------- */

/* A write transaction on a queue with subscribers a and b registered. */
static MDB_txn *
with_two_subscribers(fixture *f, pps__subs *subs)
{
    MDB_txn *txn = begin_write(f->e);
    char *ab[] = {"a", "b"};
    bool changed = false;
    cr_assert_eq(pps__subs_register(f->e, txn, ab, 2, 10, &changed), PPS_OK);
    cr_assert_eq(pps__subs_open(f->e, txn, subs), PPS_OK);
    cr_assert_eq(subs->n, 2);
    return txn;
}

static void
append(fixture *f, MDB_txn *txn, const pps__subs *subs, uint64_t id,
       const char *text, int64_t ns)
{
    pps_buf b = {text, strlen(text)};
    int rc = pps__layout_append(f->e, txn, id, &b, ns, subs->dbis, subs->n);
    cr_assert_eq(rc, PPS_OK, "append %llu: %s: %s", (unsigned long long)id,
                 pps_status_name(rc), pps_last_error());
}

static pps__msg_meta
meta_of(fixture *f, MDB_txn *txn, uint64_t id)
{
    MDB_val k = {sizeof(id), &id}, v;
    cr_assert_eq(mdb_get(txn, f->e->dbs.msg, &k, &v), 0, "no metadata of %llu",
                 (unsigned long long)id);
    pps__msg_meta m;
    cr_assert_eq(pps__layout_decode_meta(f->e, id, &v, &m), PPS_OK);
    return m;
}

static bool
pends(MDB_txn *txn, MDB_dbi sub, uint64_t id)
{
    MDB_val k = {sizeof(id), &id}, v;
    return mdb_get(txn, sub, &k, &v) == 0;
}

Test(layout, messages_append_read_consume_remove_clear, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    pps__subs subs = {0};
    MDB_txn *txn = with_two_subscribers(&f, &subs);
    MDB_dbi a = subs.dbis[0], b = subs.dbis[1];

    uint64_t count = 99, bytes = 99;
    cr_assert_eq(pps__layout_usage(f.e, txn, &count, &bytes), PPS_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(bytes, 0);
    uint64_t id = 0;
    pps__msg_meta m;
    bool found = true;
    cr_assert_eq(pps__layout_end_msg(f.e, txn, false, &id, &m, &found),
                 PPS_OK);
    cr_assert_not(found);
    found = true;
    cr_assert_eq(pps__layout_first_id(f.e, txn, a, &id, &found), PPS_OK);
    cr_assert_not(found);

    append(&f, txn, &subs, 1, "one", 1000);
    append(&f, txn, &subs, 2, "two", 2000);
    append(&f, txn, &subs, 3, "three", 3000);
    /* Ids must increase. */
    pps_buf again = {"x", 1};
    pps__err_begin();
    cr_assert_eq(pps__layout_append(f.e, txn, 2, &again, 1, subs.dbis, 2),
                 PPS_ESTORAGE);
    pps_test_expect_detail(f.e->path, "append of a lower id");

    cr_assert_eq(pps__layout_usage(f.e, txn, &count, &bytes), PPS_OK);
    cr_assert_eq(count, 3);
    cr_assert_gt(bytes, 0);
    cr_assert_eq(meta_of(&f, txn, 2).pending, 2);
    cr_assert_eq(meta_of(&f, txn, 2).published_ns, 2000);
    cr_assert_eq(pps__layout_published(f.e, txn, 3), 3000);
    cr_assert_eq(pps__layout_published(f.e, txn, 99), 0);

    uint64_t key_id = 1;
    MDB_val key = {sizeof(key_id), &key_id};
    pps_message msg = {0};
    bool orphan = true;
    cr_assert_eq(pps__layout_read_msg(f.e, txn, &key, &msg, &orphan), PPS_OK);
    cr_assert_not(orphan);
    cr_assert_eq(msg.id, 1);
    cr_assert_eq(msg.len, 3);
    cr_assert_eq(memcmp(msg.data, "one", 3), 0);
    cr_assert_eq(msg.published_ns, 1000);

    /* Consumed by a: still pending for b; by b too: gone. */
    cr_assert_eq(pps__layout_consume(f.e, txn, a, 1), PPS_OK);
    cr_assert_not(pends(txn, a, 1));
    cr_assert(pends(txn, b, 1));
    cr_assert_eq(meta_of(&f, txn, 1).pending, 1);
    cr_assert_eq(pps__layout_consume(f.e, txn, b, 1), PPS_OK);
    cr_assert_eq(pps__layout_read_msg(f.e, txn, &key, &msg, &orphan), PPS_OK);
    cr_assert(orphan, "message 1 outlived its last consumer");
    /* Consuming what is no longer pending is no error. */
    cr_assert_eq(pps__layout_consume(f.e, txn, a, 1), PPS_OK);
    cr_assert_eq(pps__layout_consume(f.e, txn, b, 77), PPS_OK);

    cr_assert_eq(pps__layout_first_id(f.e, txn, a, &id, &found), PPS_OK);
    cr_assert(found);
    cr_assert_eq(id, 2);
    cr_assert_eq(pps__layout_first_id(f.e, txn, f.e->dbs.msg, &id, &found),
                 PPS_OK);
    cr_assert_eq(id, 2);
    cr_assert_eq(pps__layout_end_msg(f.e, txn, false, &id, &m, &found),
                 PPS_OK);
    cr_assert(found);
    cr_assert_eq(id, 2);
    cr_assert_eq(m.published_ns, 2000);
    cr_assert_eq(pps__layout_end_msg(f.e, txn, true, &id, &m, &found),
                 PPS_OK);
    cr_assert_eq(id, 3);
    cr_assert_eq(m.pending, 2);

    /* check's repair: the count is set, the rest of the record kept. */
    cr_assert_eq(pps__layout_set_pending(f.e, txn, 3, 5), PPS_OK);
    cr_assert_eq(meta_of(&f, txn, 3).pending, 5);
    cr_assert_eq(meta_of(&f, txn, 3).published_ns, 3000);

    /* remove_msg: payload, metadata and every pending id. */
    pps__removed removed = {0};
    cr_assert_eq(pps__layout_remove_msg(f.e, txn, 2, subs.dbis, 2, &removed),
                 PPS_OK);
    cr_assert_eq(removed.messages, 1);
    cr_assert_eq(removed.bytes, 3);
    cr_assert_not(pends(txn, a, 2));
    cr_assert_not(pends(txn, b, 2));
    cr_assert_eq(pps__layout_published(f.e, txn, 2), 0);
    cr_assert_eq(pps__layout_remove_msg(f.e, txn, 2, subs.dbis, 2, NULL),
                 PPS_OK, "a second removal");

    /* clear: everything, counted. */
    append(&f, txn, &subs, 4, "four", 4000);
    removed = (pps__removed){0};
    cr_assert_eq(pps__layout_clear(f.e, txn, &subs, &removed), PPS_OK);
    cr_assert_eq(removed.messages, 2);
    cr_assert_gt(removed.bytes, 0);
    cr_assert_eq(pps__layout_usage(f.e, txn, &count, &bytes), PPS_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(bytes, 0);
    cr_assert_eq(pps__layout_first_id(f.e, txn, b, &id, &found), PPS_OK);
    cr_assert_not(found);
    cr_assert_eq(pps__layout_end_msg(f.e, txn, true, &id, &m, &found),
                 PPS_OK);
    cr_assert_not(found);
    /* The subscribers stay, and the next id goes on. */
    append(&f, txn, &subs, 5, "five", 5000);
    cr_assert(pends(txn, a, 5));
    commit(f.e, txn);
    pps__subs_free(&subs);
    fixture_close(&f);
}

Test(layout, decode_of_malformed_keys_and_values, .timeout = 30)
{
    fixture f;
    fixture_open(&f);
    uint64_t id = 0;
    uint32_t small = 7;
    MDB_val k4 = {sizeof(small), &small};
    cr_assert_not(pps__layout_decode_id(&k4, &id));
    MDB_val k0 = {0, NULL};
    cr_assert_not(pps__layout_decode_id(&k0, &id));
    uint64_t big = 0x0123456789abcdefull;
    MDB_val k8 = {sizeof(big), &big};
    cr_assert(pps__layout_decode_id(&k8, &id));
    cr_assert_eq(id, big);

    pps__msg_meta m = {.published_ns = 5, .pending = 2};
    pps__msg_meta out;
    MDB_val good = {sizeof(m), &m};
    cr_assert_eq(pps__layout_decode_meta(f.e, 9, &good, &out), PPS_OK);
    cr_assert_eq(out.published_ns, 5);
    cr_assert_eq(out.pending, 2);
    const char shorter[sizeof(m) - 1] = {0};
    MDB_val bad = {sizeof(shorter), pps__unconst(shorter)};
    pps__err_begin();
    cr_assert_eq(pps__layout_decode_meta(f.e, 9, &bad, &out), PPS_ESTORAGE);
    pps_test_expect_detail(f.e->path, "short metadata");
    cr_assert_not_null(strstr(pps_last_error(), "message 9"), "%s",
                       pps_last_error());
    cr_assert_eq(out.pending, 0, "a malformed record leaves zeros");

    /* The same through the functions that read stored records. */
    pps__subs subs = {0};
    MDB_txn *txn = with_two_subscribers(&f, &subs);
    append(&f, txn, &subs, 1, "one", 1);
    uint64_t one = 1;
    MDB_val k = {sizeof(one), &one};
    cr_assert_eq(mdb_put(txn, f.e->dbs.msg, &k, &bad, 0), 0);
    pps_message msg;
    bool orphan;
    cr_assert_eq(pps__layout_read_msg(f.e, txn, &k, &msg, &orphan),
                 PPS_ESTORAGE);
    cr_assert_eq(pps__layout_consume(f.e, txn, subs.dbis[0], 1),
                 PPS_ESTORAGE);
    bool found;
    cr_assert_eq(pps__layout_end_msg(f.e, txn, false, &id, &m, &found),
                 PPS_ESTORAGE);
    cr_assert_eq(pps__layout_published(f.e, txn, 1), 0);
    /* A pending key that is no message id. */
    pps__err_begin();
    cr_assert_eq(pps__layout_read_msg(f.e, txn, &k4, &msg, &orphan),
                 PPS_ESTORAGE);
    pps_test_expect_detail(f.e->path, "a key that is no id");
    mdb_txn_abort(txn);
    pps__subs_free(&subs);
    fixture_close(&f);
}

/* ---- the format probe --------------------------------------------------- */

enum probe_case {
    PROBE_NO_META,       /* no pps.meta, another application's table */
    PROBE_EMPTY,         /* no database at all: an init never committed */
    PROBE_NO_FORMAT,     /* pps.meta without a format record */
    PROBE_OURS,          /* format 1 */
    PROBE_NEWER,         /* format 2 */
    PROBE_ODD_FORMAT,    /* a format record that is not 4 bytes */
    PROBE_META_IS_VALUE, /* "pps.meta" is a plain key of the main database */
};

/* Builds an LMDB environment in DIR/env as `c` says (plain LMDB, as
 * another program would), then probes it read-only. */
static int
probe(const char *dir, enum probe_case c, char **path_out)
{
    char *path = pps_test_path_in(dir, "env");
    cr_assert_eq(mkdir(path, 0700), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 1 * PPS_TEST_MIB), 0);
    cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    MDB_val fk = {6, "format"};
    uint32_t version = c == PROBE_NEWER ? 2 : PPS__FORMAT_VERSION;
    MDB_val fv = {sizeof(version), &version};
    uint64_t odd = 1;
    switch (c) {
    case PROBE_NO_META:
        cr_assert_eq(mdb_dbi_open(txn, "app.table", MDB_CREATE, &dbi), 0);
        cr_assert_eq(mdb_put(txn, dbi, &fk, &fv, 0), 0);
        break;
    case PROBE_EMPTY:
        break;
    case PROBE_META_IS_VALUE: {
        MDB_val mk = {8, "pps.meta"};
        cr_assert_eq(mdb_put(txn, 1 /* MAIN_DBI */, &mk, &fv, 0), 0);
        break;
    }
    case PROBE_ODD_FORMAT:
        fv = (MDB_val){sizeof(odd), &odd};
        /* fall through */
    case PROBE_OURS:
    case PROBE_NEWER:
    case PROBE_NO_FORMAT:
        cr_assert_eq(mdb_dbi_open(txn, PPS__DB_META, MDB_CREATE, &dbi), 0);
        if (c != PROBE_NO_FORMAT) {
            cr_assert_eq(mdb_put(txn, dbi, &fk, &fv, 0), 0);
        }
        break;
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    pps_test_snap *before = pps_test_snap_take(path);
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    pps__err_begin();
    int rc = pps__layout_probe(txn, path);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    pps_test_expect_untouched(path, before, "the format probe");
    free(before);
    *path_out = path;
    return rc;
}

static void
expect_probe(enum probe_case c, int want, const char *what)
{
    char *dir = pps_test_tmpdir();
    char *path = NULL;
    int rc = probe(dir, c, &path);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", what,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    if (want != PPS_OK) {
        pps_test_expect_detail(path, what);
    }
    free(path);
    pps_test_cleanup(dir);
}

Test(layout, probe_accepts_this_format, .timeout = 30)
{
    expect_probe(PROBE_OURS, PPS_OK, "format 1");
}

Test(layout, probe_of_another_applications_tables_is_eforeign,
     .timeout = 30)
{
    expect_probe(PROBE_NO_META, PPS_EFOREIGN, "no pps.meta, app.table");
}

Test(layout, probe_of_an_empty_environment_is_enotinit, .timeout = 30)
{
    expect_probe(PROBE_EMPTY, PPS_ENOTINIT, "no database at all");
}

Test(layout, probe_without_format_is_enotinit, .timeout = 30)
{
    expect_probe(PROBE_NO_FORMAT, PPS_ENOTINIT, "no format record");
}

Test(layout, probe_of_a_newer_format_is_eversion, .timeout = 30)
{
    expect_probe(PROBE_NEWER, PPS_EVERSION, "format 2");
}

Test(layout, probe_of_a_foreign_format_record_is_eforeign, .timeout = 30)
{
    expect_probe(PROBE_ODD_FORMAT, PPS_EFOREIGN, "an 8-byte format record");
}

Test(layout, probe_of_a_foreign_meta_is_eforeign, .timeout = 30)
{
    expect_probe(PROBE_META_IS_VALUE, PPS_EFOREIGN,
                 "pps.meta a plain value of another application");
}
