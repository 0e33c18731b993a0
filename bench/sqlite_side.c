/*
 * The SQLite peer: the usual SQLite queue, in WAL mode, with the same
 * processes as the other implementations.
 *
 *   messages (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB)
 *   cursors  (sub INTEGER PRIMARY KEY, last_id INTEGER)  one row per subscriber
 *
 * A send is one transaction (BEGIN IMMEDIATE, INSERT per message, COMMIT);
 * a batch is the same with many INSERTs. A subscriber keeps its own cursor
 * in memory as well (it is the only writer of its row): a receive reads the
 * next message(s) after it (a read of the latest snapshot), hands each to
 * the callback, then in one write transaction moves its cursor and deletes
 * the messages every subscriber has passed (id <= MIN(last_id)), so the
 * table holds only undelivered messages, as the other designs do. SQLite
 * has no notification across processes: a subscriber that finds nothing
 * sleeps 50 us and polls again (as the LMDB baseline does); writers wait
 * for each other with busy_timeout. Durable is PRAGMA synchronous=FULL
 * (the WAL is flushed at every commit), relaxed is NORMAL (flushed at
 * checkpoints only); both keep WAL's default automatic checkpoint.
 */
#include "bench.h"

#include <sqlite3.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_NS 50000
#define BUSY_MS 30000

typedef struct lite {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *insert, *next, *advance, *prune;
} lite;

static int
lite_fail(const lite *l, const char *what)
{
    bench_fail("sqlite: %s: %s", what,
               l->db != NULL ? sqlite3_errmsg(l->db) : "out of memory");
    return -1;
}

static void
lite_close(lite *l)
{
    sqlite3_stmt *all[] = {l->begin, l->commit, l->insert,
                           l->next,  l->advance, l->prune};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        sqlite3_finalize(all[i]);
    }
    sqlite3_close(l->db);
    memset(l, 0, sizeof(*l));
}

static int
exec(lite *l, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(l->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        bench_fail("sqlite: %s: %s", sql, err != NULL ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int
prepare(lite *l, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(l->db, sql, -1, out, NULL) != SQLITE_OK) {
        return lite_fail(l, sql);
    }
    return 0;
}

/* Opens DIR/queue.db; create: makes the tables (in the driver). */
static int
lite_open(lite *l, const char *dir, int durable, int n_subs, int create)
{
    char path[PATH_MAX];
    memset(l, 0, sizeof(*l));
    snprintf(path, sizeof(path), "%s/queue.db", dir);
    if (sqlite3_open(path, &l->db) != SQLITE_OK) {
        lite_fail(l, path);
        lite_close(l);
        return -1;
    }
    sqlite3_busy_timeout(l->db, BUSY_MS);
    int rc = exec(l, "PRAGMA journal_mode=WAL");
    if (rc == 0) {
        rc = exec(l, durable ? "PRAGMA synchronous=FULL"
                             : "PRAGMA synchronous=NORMAL");
    }
    if (rc == 0 && create) {
        /* AUTOINCREMENT: without it an id is max(id) + 1, and a table
         * emptied by the subscribers would hand out an id again that they
         * have passed. */
        rc = exec(l, "CREATE TABLE messages (id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, payload BLOB NOT NULL);"
                     "CREATE TABLE cursors (sub INTEGER PRIMARY KEY, "
                     "last_id INTEGER NOT NULL)");
        for (int i = 0; i < n_subs && rc == 0; i++) {
            char sql[96];
            snprintf(sql, sizeof(sql), "INSERT INTO cursors VALUES (%d, 0)", i);
            rc = exec(l, sql);
        }
    }
    if (rc == 0) {
        rc = prepare(l, "BEGIN IMMEDIATE", &l->begin);
    }
    if (rc == 0) {
        rc = prepare(l, "COMMIT", &l->commit);
    }
    if (rc == 0) {
        rc = prepare(l, "INSERT INTO messages (payload) VALUES (?1)",
                     &l->insert);
    }
    if (rc == 0) {
        rc = prepare(l, "SELECT id, payload FROM messages WHERE id > ?1 "
                        "ORDER BY id LIMIT ?2", &l->next);
    }
    if (rc == 0) {
        rc = prepare(l, "UPDATE cursors SET last_id = ?1 WHERE sub = ?2",
                     &l->advance);
    }
    if (rc == 0) {
        rc = prepare(l, "DELETE FROM messages WHERE id <= "
                        "(SELECT MIN(last_id) FROM cursors)", &l->prune);
    }
    if (rc != 0) {
        lite_close(l);
    }
    return rc;
}

/* Runs a statement that returns no row, and resets it. */
static int
step_done(lite *l, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : lite_fail(l, what);
}

static void
rollback(lite *l)
{
    if (!sqlite3_get_autocommit(l->db)) {
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

static int
lite_send(lite *l, const unsigned char *bufs, size_t k)
{
    if (step_done(l, l->begin, "begin send") != 0) {
        return -1;
    }
    for (size_t j = 0; j < k; j++) {
        sqlite3_bind_blob(l->insert, 1, bufs + j * BENCH_MSG_SIZE,
                          BENCH_MSG_SIZE, SQLITE_STATIC);
        if (step_done(l, l->insert, "insert") != 0) {
            rollback(l);
            return -1;
        }
    }
    if (step_done(l, l->commit, "commit send") != 0) {
        rollback(l);
        return -1;
    }
    return 0;
}

typedef struct lite_sub {
    int idx;
    int latency;
    int bad;
    uint64_t count;
    int64_t last_id;
    bench_order order;
} lite_sub;

static void
on_message(lite_sub *s, const void *data, int len)
{
    int64_t now = bench_now_ns(); /* first thing: the "callback" is entered */
    bench_shm *shm = bench_shm_get();
    if (len < 0 || !bench_order_next(&s->order, data, (size_t)len)) {
        s->bad = 1; /* counted: the subscriber ends after n and reports it */
        s->count++;
        return;
    }
    if (s->latency && s->count < shm->cap_samples) {
        shm->samples[s->count] = now - bench_payload_ts(data);
    }
    s->count++;
}

/* One poll: up to max messages after the cursor; *got: how many. */
static int
lite_take(lite *l, lite_sub *s, size_t max, size_t *got)
{
    *got = 0;
    sqlite3_bind_int64(l->next, 1, s->last_id);
    sqlite3_bind_int64(l->next, 2, (sqlite3_int64)max);
    int rc;
    while ((rc = sqlite3_step(l->next)) == SQLITE_ROW) {
        s->last_id = sqlite3_column_int64(l->next, 0);
        on_message(s, sqlite3_column_blob(l->next, 1),
                   sqlite3_column_bytes(l->next, 1));
        (*got)++;
    }
    sqlite3_reset(l->next);
    if (rc != SQLITE_DONE) {
        return lite_fail(l, "select next");
    }
    if (*got == 0) {
        return 0;
    }
    if (step_done(l, l->begin, "begin receive") != 0) {
        return -1;
    }
    sqlite3_bind_int64(l->advance, 1, s->last_id);
    sqlite3_bind_int(l->advance, 2, s->idx);
    if (step_done(l, l->advance, "advance cursor") != 0 ||
        step_done(l, l->prune, "delete consumed") != 0 ||
        step_done(l, l->commit, "commit receive") != 0) {
        rollback(l);
        return -1;
    }
    return 0;
}

static int
send_cb(void *ctx, const unsigned char *bufs, size_t k)
{
    return lite_send(ctx, bufs, k);
}

static int
flow_publisher(const bench_flow *f, int idx)
{
    lite l;
    unsigned char *bufs = malloc(f->pub_batch * BENCH_MSG_SIZE);
    if (bufs == NULL) {
        bench_fail("sqlite: out of memory");
        return -1;
    }
    if (lite_open(&l, f->dir, f->durable, f->n_subs, 0) != 0) {
        free(bufs);
        return -1;
    }
    int rc = bench_publish(f, idx, bufs, send_cb, &l);
    lite_close(&l);
    free(bufs);
    return rc;
}

static int
flow_subscriber(const bench_flow *f, int idx)
{
    lite l;
    lite_sub s = {.idx = idx, .latency = f->latency && idx == 0};
    bench_order_init(&s.order, f->n_pubs);
    if (lite_open(&l, f->dir, f->durable, f->n_subs, 0) != 0) {
        return -1;
    }
    bench_child_ready();
    int64_t idle_since = 0;
    char who[32];
    snprintf(who, sizeof(who), "sqlite: sub%d", idx);
    int rc = 0;
    while (rc == 0 && s.count < f->n) {
        size_t got;
        rc = lite_take(&l, &s, f->sub_batch, &got);
        if (rc == 0 && got == 0) {
            rc = bench_idle_wait(&idle_since, POLL_NS, who);
        } else if (rc == 0) {
            idle_since = 0;
        }
    }
    if (rc == 0) {
        rc = bench_sub_done(idx, s.count, s.latency, s.bad, who);
    }
    lite_close(&l);
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
sqlite_flow(const bench_flow *f)
{
    lite l;
    /* Create the database, WAL mode and the tables before the roles start. */
    if (lite_open(&l, f->dir, f->durable, f->n_subs, 1) != 0) {
        return -1;
    }
    lite_close(&l);
    return bench_run(f->n_pubs + f->n_subs, flow_role, (void *)(uintptr_t)f,
                     900);
}

static int
timed_sends(lite *l, const bench_backlog *bl, size_t from, uint64_t *seq)
{
    bench_shm *shm = bench_shm_get();
    unsigned char buf[BENCH_MSG_SIZE];
    for (size_t i = 0; i < bl->sends; i++) {
        bench_payload(buf, 0, (*seq)++, 0);
        int64_t t0 = bench_now_ns();
        int rc = lite_send(l, buf, 1);
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
    lite l;
    uint64_t seq = 0;
    int rc = -1;
    (void)role;
    unsigned char *bufs = malloc((size_t)BATCH * BENCH_MSG_SIZE);
    if (bufs == NULL) {
        return -1;
    }
    if (lite_open(&l, bl->dir, 0, 2, 0) != 0) {
        free(bufs);
        return -1;
    }
    bench_child_ready();
    if (timed_sends(&l, bl, 0, &seq) != 0) {
        goto done;
    }
    int64_t t0 = bench_now_ns();
    for (size_t i = 0; i < bl->backlog; i += BATCH) {
        size_t k = bl->backlog - i < BATCH ? bl->backlog - i : BATCH;
        for (size_t j = 0; j < k; j++) {
            bench_payload(bufs + j * BENCH_MSG_SIZE, 0, seq++, 0);
        }
        if (lite_send(&l, bufs, k) != 0) {
            goto done;
        }
    }
    shm->fill_ns = bench_now_ns() - t0;
    if (timed_sends(&l, bl, bl->sends, &seq) != 0) {
        goto done;
    }
    shm->n_samples = 2 * bl->sends;
    rc = 0;
done:
    lite_close(&l);
    free(bufs);
    return rc;
}

int
sqlite_backlog(const bench_backlog *bl)
{
    lite l;
    /* Two subscribers (cursors at 0) that never receive. */
    if (lite_open(&l, bl->dir, 0, 2, 1) != 0) {
        return -1;
    }
    lite_close(&l);
    return bench_run(1, backlog_role, (void *)(uintptr_t)bl, 900);
}
