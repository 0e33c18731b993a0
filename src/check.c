/*
 * The consistency check of a queue (the invariants of docs/format.rst).
 *
 * The scan walks pps.data and pps.msg side by side (both are sorted by id),
 * probes every subscriber database for each message to recount its pending
 * count, then walks every subscriber database for ids without a message.
 * Each problem is reported as one line and, with repair, remembered as a
 * fix; the fixes are applied after the scan, in the same write transaction.
 * A repair never drops a message that a subscriber still pends on and that
 * still has its payload.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fix_kind {
    FIX_DROP_MSG,     /* delete payload, metadata and every pending id */
    FIX_SET_PENDING,  /* rewrite the metadata with pending = value */
    FIX_DROP_PENDING, /* delete id from subscriber database `sub` */
    FIX_DROP_KEY,     /* delete a malformed key from database `dbi` */
    FIX_SET_NEXT_ID,  /* move the sequence to value */
};

typedef struct fix {
    enum fix_kind kind;
    uint64_t id;
    uint64_t value;
    MDB_dbi dbi;
    MDB_val key; /* FIX_DROP_KEY only: points into the map */
} fix;

typedef struct checker {
    pps__env *e;
    MDB_txn *txn;
    const pps__subs *subs;
    pps_problem_fn fn;
    void *user;
    bool repair;
    size_t problems;
    size_t repaired;
    fix *fixes;
    size_t n_fixes, cap_fixes;
    uint64_t max_id;
    int status; /* first failure to record a fix */
} checker;

/* Records that fix f (NULL: none) would mend the problem, if repairing. */
static bool
add_fix(checker *c, const fix *f)
{
    if (f == NULL || !c->repair || c->status != PPS_OK) {
        return false;
    }
    if (c->n_fixes == c->cap_fixes) {
        size_t cap = c->cap_fixes < 64 ? 64 : c->cap_fixes * 2;
        fix *n = realloc(c->fixes, cap * sizeof(*n));
        if (n == NULL) {
            c->status = pps__err(PPS_ENOMEM, "out of memory");
            return false;
        }
        c->fixes = n;
        c->cap_fixes = cap;
    }
    c->fixes[c->n_fixes++] = *f;
    return true;
}

/* Reports one problem, mended by fix f (NULL: cannot be mended). */
static void
problem(checker *c, const fix *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(checker *c, const fix *f, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    c->problems++;
    bool repaired = add_fix(c, f);
    if (repaired) {
        c->repaired++;
    }
    if (c->fn != NULL) {
        c->fn(pps__env_path(c->e), text, repaired, c->user);
    }
}

static bool
key_id(checker *c, MDB_dbi dbi, const char *db, const MDB_val *k,
       uint64_t *id)
{
    if (k->mv_size != sizeof(*id)) {
        problem(c, &(fix){.kind = FIX_DROP_KEY, .dbi = dbi, .key = *k},
                "%s holds a key of %zu bytes, not a message id", db,
                k->mv_size);
        return false;
    }
    memcpy(id, k->mv_data, sizeof(*id));
    if (*id > c->max_id) {
        c->max_id = *id;
    }
    return true;
}

/* Counts the subscriber databases holding id. */
static uint64_t
holders(checker *c, uint64_t id)
{
    MDB_val k = {sizeof(id), &id}, v;
    uint64_t n = 0;
    for (size_t i = 0; i < c->subs->n; i++) {
        if (mdb_get(c->txn, c->subs->dbis[i], &k, &v) == 0) {
            n++;
        }
    }
    return n;
}

static void
check_message(checker *c, uint64_t id, const MDB_val *meta)
{
    pps__msg_meta m;
    uint64_t held = holders(c, id);
    if (meta->mv_size != sizeof(m)) {
        problem(c,
                &(fix){.kind = held > 0 ? FIX_SET_PENDING : FIX_DROP_MSG,
                       .id = id, .value = held},
                "message %llu: metadata of %zu bytes, expected %zu",
                (unsigned long long)id, meta->mv_size, sizeof(m));
        return;
    }
    memcpy(&m, meta->mv_data, sizeof(m));
    if (m.pending != held) {
        problem(c,
                &(fix){.kind = held > 0 ? FIX_SET_PENDING : FIX_DROP_MSG,
                       .id = id, .value = held},
                "message %llu: pending count %u, but %llu subscriber(s) "
                "hold it",
                (unsigned long long)id, (unsigned)m.pending,
                (unsigned long long)held);
    }
}

/* Walks pps.data and pps.msg side by side. */
static int
scan_messages(checker *c)
{
    const pps__env_view *v = pps__env_get(c->e);
    MDB_cursor *dc = NULL, *mc = NULL;
    MDB_val dk, dv, mk, mv;
    int rc = mdb_cursor_open(c->txn, v->data, &dc);
    if (rc == 0) {
        rc = mdb_cursor_open(c->txn, v->msg, &mc);
    }
    if (rc != 0) {
        goto done;
    }
    int drc = mdb_cursor_get(dc, &dk, &dv, MDB_FIRST);
    int mrc = mdb_cursor_get(mc, &mk, &mv, MDB_FIRST);
    while ((drc == 0 || mrc == 0) && c->status == PPS_OK) {
        uint64_t did = UINT64_MAX, mid = UINT64_MAX;
        if (drc == 0 && !key_id(c, v->data, PPS__DB_DATA, &dk, &did)) {
            drc = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT);
            continue;
        }
        if (mrc == 0 && !key_id(c, v->msg, PPS__DB_MSG, &mk, &mid)) {
            mrc = mdb_cursor_get(mc, &mk, &mv, MDB_NEXT);
            continue;
        }
        if (did < mid) {
            uint64_t held = holders(c, did);
            problem(c,
                    &(fix){.kind = held > 0 ? FIX_SET_PENDING : FIX_DROP_MSG,
                           .id = did, .value = held},
                    "message %llu: payload without metadata%s",
                    (unsigned long long)did,
                    held > 0 ? "" : " (and no subscriber pends on it)");
            drc = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT);
        } else if (mid < did) {
            problem(c, &(fix){.kind = FIX_DROP_MSG, .id = mid},
                    "message %llu: metadata without payload",
                    (unsigned long long)mid);
            mrc = mdb_cursor_get(mc, &mk, &mv, MDB_NEXT);
        } else {
            check_message(c, did, &mv);
            drc = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT);
            mrc = mdb_cursor_get(mc, &mk, &mv, MDB_NEXT);
        }
    }
    rc = (drc != 0 && drc != MDB_NOTFOUND) ? drc
         : (mrc != 0 && mrc != MDB_NOTFOUND) ? mrc
                                               : 0;
done:
    if (dc != NULL) {
        mdb_cursor_close(dc);
    }
    if (mc != NULL) {
        mdb_cursor_close(mc);
    }
    return rc == 0 ? c->status
                   : pps__err_lmdb(rc, "cannot scan messages",
                                   pps__env_path(c->e));
}

/* Walks every subscriber database for ids without a message. */
static int
scan_pending(checker *c)
{
    const pps__env_view *v = pps__env_get(c->e);
    const char *sid = c->subs->ids;
    int rc = 0;
    for (size_t i = 0; i < c->subs->n && rc == 0; i++) {
        MDB_cursor *cur;
        MDB_val k, val, mk, mv;
        char db[PPS__SUB_NAME_MAX];
        pps__layout_sub_name(db, sid);
        rc = mdb_cursor_open(c->txn, c->subs->dbis[i], &cur);
        if (rc != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST);
        while (rc == 0 && c->status == PPS_OK) {
            uint64_t id;
            if (key_id(c, c->subs->dbis[i], db, &k, &id)) {
                mk.mv_size = sizeof(id);
                mk.mv_data = &id;
                if (mdb_get(c->txn, v->msg, &mk, &mv) == MDB_NOTFOUND) {
                    MDB_val dv;
                    if (mdb_get(c->txn, v->data, &mk, &dv) == MDB_NOTFOUND) {
                        problem(c,
                                &(fix){.kind = FIX_DROP_PENDING, .id = id,
                                       .dbi = c->subs->dbis[i]},
                                "subscriber \"%s\" pends on message %llu, "
                                "which does not exist",
                                sid, (unsigned long long)id);
                    }
                    /* else: reported with its payload by scan_messages() */
                }
            }
            rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
        sid += strlen(sid) + 1;
    }
    return rc == 0 ? c->status
                   : pps__err_lmdb(rc, "cannot scan pending messages",
                                   pps__env_path(c->e));
}

static int
apply(checker *c, const fix *f)
{
    const pps__env_view *v = pps__env_get(c->e);
    uint64_t id = f->id;
    MDB_val k = {sizeof(id), &id};
    int rc = 0;
    switch (f->kind) {
    case FIX_DROP_MSG:
        return pps__layout_remove_msg(c->e, c->txn, id, c->subs->dbis,
                                      c->subs->n, NULL);
    case FIX_SET_PENDING: {
        MDB_val old;
        pps__msg_meta m = {.published_ns = pps__now_realtime_ns()};
        if (mdb_get(c->txn, v->msg, &k, &old) == 0 &&
            old.mv_size == sizeof(m)) {
            memcpy(&m, old.mv_data, sizeof(m));
        }
        m.pending = (uint32_t)f->value;
        MDB_val val = {sizeof(m), &m};
        rc = mdb_put(c->txn, v->msg, &k, &val, 0);
        break;
    }
    case FIX_DROP_PENDING:
        rc = mdb_del(c->txn, f->dbi, &k, NULL);
        break;
    case FIX_DROP_KEY: {
        MDB_val key = f->key;
        rc = mdb_del(c->txn, f->dbi, &key, NULL);
        break;
    }
    case FIX_SET_NEXT_ID: {
        pps__seq seq;
        int status = pps__layout_read_seq(c->e, c->txn, &seq);
        if (status == PPS_OK) {
            seq.next_id = f->value;
            status = pps__layout_write_seq(c->e, c->txn, &seq);
        }
        return status;
    }
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return pps__err_lmdb(rc, "cannot repair", pps__env_path(c->e));
    }
    return PPS_OK;
}

static int
check_seq(checker *c)
{
    pps__seq seq;
    int status = pps__layout_read_seq(c->e, c->txn, &seq);
    if (status == PPS_OK && c->max_id >= seq.next_id) {
        problem(c, &(fix){.kind = FIX_SET_NEXT_ID, .value = c->max_id + 1},
                "message %llu is not below the next id %llu",
                (unsigned long long)c->max_id,
                (unsigned long long)seq.next_id);
    }
    return status;
}

static int
check_queue(const pps__queue_cfg *q, bool repair, pps_problem_fn fn,
            void *user, size_t *problems)
{
    pps__env *e;
    MDB_txn *txn;
    pps__subs subs = {0};
    int status = pps__queue_open(q, &e, &txn, &subs);
    if (status != PPS_OK) {
        return status;
    }
    checker c = {.e = e, .txn = txn, .subs = &subs, .fn = fn, .user = user,
                 .repair = repair};
    MDB_txn *rtxn = NULL;
    pps__settings set;
    if (pps__layout_read_settings(e, txn, &set) != PPS_OK) {
        problem(&c, NULL,
                "settings unreadable (%s); run persipubsub-ctl init to "
                "rewrite them",
                pps_last_error());
        status = PPS_ECORRUPT;
    }
    if (status == PPS_OK && !repair) {
        /* Scan a snapshot: a long check must not hold up publishers. The
         * handles opened above stay valid once this commit ends. */
        status = pps__txn_commit(e, txn, PPS__NOSYNC, "cannot begin check");
        txn = NULL;
        if (status == PPS_OK) {
            status = pps__txn_read(e, &rtxn);
        }
        c.txn = rtxn;
    }
    if (status == PPS_OK) {
        status = scan_messages(&c);
    }
    if (status == PPS_OK) {
        status = scan_pending(&c);
    }
    if (status == PPS_OK) {
        status = check_seq(&c);
    }
    for (size_t i = 0; status == PPS_OK && i < c.n_fixes; i++) {
        status = apply(&c, &c.fixes[i]);
    }
    if (rtxn != NULL) {
        mdb_txn_abort(rtxn);
    }
    if (txn != NULL) {
        if (status == PPS_OK) {
            status = pps__txn_commit(e, txn, PPS__SYNC, "cannot commit repair");
        } else {
            mdb_txn_abort(txn);
        }
    }
    *problems += c.problems;
    if ((status == PPS_OK && c.problems > c.repaired) ||
        status == PPS_ECORRUPT) {
        status = pps__err(PPS_ECORRUPT, "%s: %zu problem(s) %s", q->path,
                          c.problems - c.repaired,
                          repair ? "could not be repaired" : "found");
    }
    free(c.fixes);
    pps__subs_free(&subs);
    pps__env_release(e);
    return status;
}

int
pps_ctl_check(const pps_config *cfg, const char *queue, int repair,
              pps_problem_fn fn, void *user, size_t *problems)
{
    pps__err_begin();
    size_t found = 0;
    if (problems != NULL) {
        *problems = 0;
    }
    if (cfg == NULL) {
        return pps__err(PPS_EINVAL, "pps_ctl_check: cfg is NULL");
    }
    size_t first, end;
    int result = pps__ctl_queue_range(cfg, queue, &first, &end);
    if (result != PPS_OK) {
        return result;
    }
    for (size_t i = first; i < end; i++) {
        int status = check_queue(&cfg->queues[i], repair != 0, fn, user,
                                 &found);
        if (status != PPS_OK && status != PPS_ECORRUPT) {
            result = status;
            break;
        }
        if (status == PPS_ECORRUPT) {
            result = PPS_ECORRUPT;
        }
    }
    if (problems != NULL) {
        *problems = found;
    }
    return result;
}
