/*
 * The baseline: the plain design a user would write directly against LMDB,
 * with the same layout as persipubsub and one transaction per operation.
 *
 *   meta    "seq" -> next id (uint64)
 *   data    id -> payload                       (MDB_INTEGERKEY)
 *   msg     id -> {publish time, pending count}  (MDB_INTEGERKEY)
 *   sub:N   id -> "" per undelivered message     (MDB_INTEGERKEY)
 *
 * A send is one write transaction: read the sequence, put the payload, the
 * metadata and the id into every subscriber database (plain puts), write the
 * sequence, commit. A batch is the same with many messages in the
 * transaction. A subscriber polls: one write transaction per attempt takes
 * the first id of its database, reads payload and metadata, hands the
 * payload to the callback, deletes the id and decrements the pending count
 * (deleting the message at zero), and commits; when the database is empty
 * it aborts and sleeps 50 us. The environment is opened with MDB_WRITEMAP,
 * as persipubsub's is ("raw LMDB + MDB_WRITEMAP, same layout": the speed
 * issue's definition of the baseline), so that the comparison measures the
 * design and not the write path: commits write through the shared map
 * instead of copying dirty pages. Durable is MDB_WRITEMAP alone, LMDB's
 * default sync (every commit msyncs its data pages, then its meta page);
 * relaxed adds MDB_NOSYNC (no commit flushes).
 */
#include "bench.h"

#include <lmdb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_NS 50000

typedef struct base_env {
    MDB_env *env;
    MDB_dbi meta, data, msg;
    MDB_dbi subs[BENCH_MAX_SUBS];
    int n_subs;
} base_env;

typedef struct base_meta {
    int64_t published_ns;
    uint32_t pending;
    uint32_t reserved;
} base_meta;

typedef struct base_sub {
    uint64_t count;
    int bad;
    int latency;
    bench_order order;
} base_sub;

static const char seq_key[] = "seq";

static int
lmdb_fail(const char *what, int rc)
{
    bench_fail("baseline: %s: %s", what, mdb_strerror(rc));
    return -1;
}

static void
base_close(base_env *b)
{
    if (b->env != NULL) {
        mdb_env_close(b->env);
        b->env = NULL;
    }
}

static int
base_open(base_env *b, const char *dir, int durable, size_t mapsize,
          int n_subs)
{
    MDB_txn *txn;
    memset(b, 0, sizeof(*b));
    b->n_subs = n_subs;
    int rc = mdb_env_create(&b->env);
    if (rc != 0) {
        b->env = NULL;
        return lmdb_fail("mdb_env_create", rc);
    }
    rc = mdb_env_set_maxdbs(b->env, 8);
    if (rc == 0) {
        rc = mdb_env_set_mapsize(b->env, mapsize);
    }
    if (rc == 0) {
        rc = mdb_env_open(b->env, dir,
                          durable ? MDB_WRITEMAP : MDB_WRITEMAP | MDB_NOSYNC,
                          0600);
    }
    if (rc == 0) {
        rc = mdb_txn_begin(b->env, NULL, 0, &txn);
    }
    if (rc != 0) {
        base_close(b);
        return lmdb_fail("open environment", rc);
    }
    const unsigned ik = MDB_CREATE | MDB_INTEGERKEY;
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &b->meta);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "data", ik, &b->data);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "msg", ik, &b->msg);
    }
    for (int i = 0; i < n_subs && rc == 0; i++) {
        char name[16];
        snprintf(name, sizeof(name), "sub:%d", i);
        rc = mdb_dbi_open(txn, name, ik, &b->subs[i]);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        base_close(b);
        return lmdb_fail("open databases", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        base_close(b);
        return lmdb_fail("commit databases", rc);
    }
    return 0;
}

static int64_t
realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Publishes bufs[0..k) (BENCH_MSG_SIZE each) in one transaction. */
static int
base_send(base_env *b, const unsigned char *bufs, size_t k)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(b->env, NULL, 0, &txn);
    if (rc != 0) {
        return lmdb_fail("begin send", rc);
    }
    uint64_t next = 1;
    MDB_val sk = {sizeof(seq_key) - 1, (void *)(uintptr_t)seq_key};
    MDB_val sv;
    rc = mdb_get(txn, b->meta, &sk, &sv);
    if (rc == 0 && sv.mv_size == sizeof(next)) {
        memcpy(&next, sv.mv_data, sizeof(next));
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    base_meta meta = {.published_ns = realtime_ns(),
                      .pending = (uint32_t)b->n_subs};
    for (size_t j = 0; j < k && rc == 0; j++) {
        uint64_t id = next++;
        MDB_val key = {sizeof(id), &id};
        MDB_val val = {BENCH_MSG_SIZE,
                       (void *)(uintptr_t)(bufs + j * BENCH_MSG_SIZE)};
        MDB_val mv = {sizeof(meta), &meta};
        MDB_val empty = {0, NULL};
        rc = mdb_put(txn, b->data, &key, &val, 0);
        if (rc == 0) {
            rc = mdb_put(txn, b->msg, &key, &mv, 0);
        }
        for (int s = 0; s < b->n_subs && rc == 0; s++) {
            rc = mdb_put(txn, b->subs[s], &key, &empty, 0);
        }
    }
    if (rc == 0) {
        sv.mv_size = sizeof(next);
        sv.mv_data = &next;
        rc = mdb_put(txn, b->meta, &sk, &sv, 0);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_fail("send", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : lmdb_fail("commit send", rc);
}

static void
on_message(base_sub *s, const MDB_val *data)
{
    int64_t now = bench_now_ns(); /* first thing: the "callback" is entered */
    bench_shm *shm = bench_shm_get();
    if (!bench_order_next(&s->order, data->mv_data, data->mv_size)) {
        s->bad = 1; /* counted: the subscriber ends after n and reports it */
        s->count++;
        return;
    }
    if (s->latency && s->count < shm->cap_samples) {
        shm->samples[s->count] = now - bench_payload_ts(data->mv_data);
    }
    s->count++;
}

/* One poll: consumes the first pending message of subscriber idx, if any,
 * in one write transaction. *got says whether there was one. */
static int
base_take(base_env *b, int idx, base_sub *s, int *got)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val key, val, data, mv;
    *got = 0;
    int rc = mdb_txn_begin(b->env, NULL, 0, &txn);
    if (rc != 0) {
        return lmdb_fail("begin receive", rc);
    }
    rc = mdb_cursor_open(txn, b->subs[idx], &cur);
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    }
    if (rc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc == 0) {
        rc = mdb_get(txn, b->data, &key, &data);
    }
    if (rc == 0) {
        rc = mdb_get(txn, b->msg, &key, &mv);
    }
    base_meta meta;
    if (rc == 0 && mv.mv_size == sizeof(meta)) {
        memcpy(&meta, mv.mv_data, sizeof(meta));
        on_message(s, &data);
        uint64_t id;
        memcpy(&id, key.mv_data, sizeof(id));
        MDB_val k = {sizeof(id), &id};
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0 && --meta.pending > 0) {
            mv.mv_size = sizeof(meta);
            mv.mv_data = &meta;
            rc = mdb_put(txn, b->msg, &k, &mv, 0);
        } else if (rc == 0) {
            rc = mdb_del(txn, b->msg, &k, NULL);
            if (rc == 0) {
                rc = mdb_del(txn, b->data, &k, NULL);
            }
        }
    } else if (rc == 0) {
        rc = MDB_CORRUPTED;
    }
    mdb_cursor_close(cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_fail("receive", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return lmdb_fail("commit receive", rc);
    }
    *got = 1;
    return 0;
}

static int
send_cb(void *ctx, const unsigned char *bufs, size_t k)
{
    return base_send(ctx, bufs, k);
}

static int
flow_publisher(const bench_flow *f, int idx)
{
    base_env b;
    unsigned char *bufs = malloc(f->pub_batch * BENCH_MSG_SIZE);
    if (bufs == NULL) {
        bench_fail("baseline: out of memory");
        return -1;
    }
    if (base_open(&b, f->dir, f->durable, (size_t)1 << 30, f->n_subs) != 0) {
        free(bufs);
        return -1;
    }
    int rc = bench_publish(f, idx, bufs, send_cb, &b);
    base_close(&b);
    free(bufs);
    return rc;
}

static int
flow_subscriber(const bench_flow *f, int idx)
{
    base_env b;
    base_sub s = {.latency = f->latency && idx == 0};
    bench_order_init(&s.order, f->n_pubs);
    if (base_open(&b, f->dir, f->durable, (size_t)1 << 30, f->n_subs) != 0) {
        return -1;
    }
    bench_child_ready();
    int64_t idle_since = 0;
    char who[32];
    snprintf(who, sizeof(who), "baseline: sub%d", idx);
    int rc = 0;
    while (rc == 0 && s.count < f->n) {
        int got;
        rc = base_take(&b, idx, &s, &got);
        if (rc == 0 && got == 0) {
            rc = bench_idle_wait(&idle_since, POLL_NS, who);
        } else if (rc == 0) {
            idle_since = 0;
        }
    }
    if (rc == 0) {
        rc = bench_sub_done(idx, s.count, s.latency, s.bad, who);
    }
    base_close(&b);
    return rc;
}

static int
flow_role(int role, void *arg)
{
    const bench_flow *f = arg;
    return role < f->n_pubs ? flow_publisher(f, role)
                            : flow_subscriber(f, role - f->n_pubs);
}

int
base_flow(const bench_flow *f)
{
    base_env b;
    /* Create the environment and its databases before the roles start. */
    if (base_open(&b, f->dir, f->durable, (size_t)1 << 30, f->n_subs) != 0) {
        return -1;
    }
    base_close(&b);
    return bench_run(f->n_pubs + f->n_subs, flow_role, (void *)(uintptr_t)f,
                     900);
}

static int
timed_sends(base_env *b, const bench_backlog *bl, size_t from, uint64_t *seq)
{
    bench_shm *shm = bench_shm_get();
    unsigned char buf[BENCH_MSG_SIZE];
    for (size_t i = 0; i < bl->sends; i++) {
        bench_payload(buf, 0, (*seq)++, 0);
        int64_t t0 = bench_now_ns();
        int rc = base_send(b, buf, 1);
        shm->samples[from + i] = bench_now_ns() - t0;
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

static int
backlog_role(int role, void *arg)
{
    const bench_backlog *bl = arg;
    bench_shm *shm = bench_shm_get();
    enum { BATCH = 1000 };
    base_env b;
    uint64_t seq = 0;
    int rc = -1;
    (void)role;
    unsigned char *bufs = malloc((size_t)BATCH * BENCH_MSG_SIZE);
    if (bufs == NULL) {
        return -1;
    }
    if (base_open(&b, bl->dir, 0, (size_t)4 << 30, 2) != 0) {
        free(bufs);
        return -1;
    }
    bench_child_ready();
    if (timed_sends(&b, bl, 0, &seq) != 0) {
        goto done;
    }
    int64_t t0 = bench_now_ns();
    for (size_t i = 0; i < bl->backlog; i += BATCH) {
        size_t k = bl->backlog - i < BATCH ? bl->backlog - i : BATCH;
        for (size_t j = 0; j < k; j++) {
            bench_payload(bufs + j * BENCH_MSG_SIZE, 0, seq++, 0);
        }
        if (base_send(&b, bufs, k) != 0) {
            goto done;
        }
    }
    shm->fill_ns = bench_now_ns() - t0;
    if (timed_sends(&b, bl, bl->sends, &seq) != 0) {
        goto done;
    }
    shm->n_samples = 2 * bl->sends;
    rc = 0;
done:
    base_close(&b);
    free(bufs);
    return rc;
}

int
base_backlog(const bench_backlog *bl)
{
    return bench_run(1, backlog_role, (void *)(uintptr_t)bl, 900);
}
