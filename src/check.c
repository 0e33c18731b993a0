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

/* A problem found, told to the caller's callback once the scan is over. */
typedef struct report {
    char *text;
    bool repaired;
} report;

typedef struct checker {
    pps__env *e;
    MDB_txn *txn;
    pps__subs *subs;
    bool repair;
    report *reports;
    size_t n_reports, cap_reports;
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
            c->status = pps__err_nomem();
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
    if (c->n_reports == c->cap_reports && c->status == PPS_OK) {
        size_t cap = c->cap_reports < 16 ? 16 : c->cap_reports * 2;
        report *r = realloc(c->reports, cap * sizeof(*r));
        if (r == NULL) {
            c->status = pps__err_nomem();
            return;
        }
        c->reports = r;
        c->cap_reports = cap;
    }
    char *copy = c->status == PPS_OK ? strdup(text) : NULL;
    if (copy == NULL) {
        c->status = c->status != PPS_OK ? c->status : pps__err_nomem();
        return;
    }
    c->reports[c->n_reports++] = (report){copy, repaired};
}

/* Forgets what an earlier run of the scan found. */
static void
forget(checker *c)
{
    for (size_t i = 0; i < c->n_reports; i++) {
        free(c->reports[i].text);
    }
    c->n_reports = 0;
    c->n_fixes = 0;
    c->problems = 0;
    c->repaired = 0;
    c->max_id = 0;
    c->status = PPS_OK;
}

static bool
key_id(checker *c, MDB_dbi dbi, const char *db, const MDB_val *k,
       uint64_t *id)
{
    if (!pps__layout_decode_id(k, id)) {
        problem(c, &(fix){.kind = FIX_DROP_KEY, .dbi = dbi, .key = *k},
                "%s holds a key of %zu bytes, not a message id", db,
                k->mv_size);
        return false;
    }
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
    const pps__dbs *v = &c->e->dbs;
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
                   : pps__err_rc(rc, "cannot scan messages",
                                   c->e->path);
}

/* Walks every subscriber database for ids without a message. */
static int
scan_pending(checker *c)
{
    const pps__dbs *v = &c->e->dbs;
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
                   : pps__err_rc(rc, "cannot scan pending messages",
                                   c->e->path);
}

static int
mend(checker *c, const fix *f)
{
    switch (f->kind) {
    case FIX_DROP_MSG:
        return pps__layout_remove_msg(c->e, c->txn, f->id, c->subs->dbis,
                                      c->subs->n, NULL);
    case FIX_SET_PENDING:
        return pps__layout_set_pending(c->e, c->txn, f->id,
                                       (uint32_t)f->value);
    case FIX_DROP_PENDING:
        return pps__layout_consume(c->e, c->txn, f->dbi, f->id);
    case FIX_DROP_KEY: {
        MDB_val key = f->key;
        int rc = mdb_del(c->txn, f->dbi, &key, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return pps__err_rc(rc, "cannot repair", c->e->path);
        }
        return PPS_OK;
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

/* The whole check in c->txn: scans, then mends what it may. */
static int
scan(checker *c)
{
    pps__settings set;
    forget(c);
    if (pps__layout_read_settings(c->e, c->txn, &set) != PPS_OK) {
        problem(c, NULL,
                "settings unreadable (%s); run persipubsub-ctl init to "
                "rewrite them",
                pps_last_error());
        return PPS_ECORRUPT;
    }
    int status = scan_messages(c);
    if (status == PPS_OK) {
        status = scan_pending(c);
    }
    if (status == PPS_OK) {
        status = check_seq(c);
    }
    for (size_t i = 0; status == PPS_OK && i < c->n_fixes; i++) {
        status = mend(c, &c->fixes[i]);
    }
    return status;
}

/* The repairing check: one write transaction (a body of
 * pps__txn_run()); the subscribers are read again inside it. */
static int
repair_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)e;
    (void)durability;
    checker *c = ctx;
    c->txn = txn;
    int status = pps__subs_open(c->e, txn, c->subs);
    if (status == PPS_OK) {
        status = scan(c);
    }
    /* A check that found problems it could not mend still commits what it
     * mended. */
    return status == PPS_ECORRUPT ? PPS_OK : status;
}

static int
check_queue(const pps__queue_cfg *q, bool repair, pps_problem_fn fn,
            void *user, size_t *problems)
{
    pps__env *e;
    pps__subs subs = {0};
    MDB_txn *txn = NULL;
    int status = pps__ctl_open_queue(q, repair, &e, &subs);
    if (status != PPS_OK) {
        return status;
    }
    checker c = {.e = e, .subs = &subs, .repair = repair};
    if (repair) {
        status = pps__txn_run(e, PPS__SYNC, repair_body, &c,
                              "cannot commit repair");
    } else {
        /* A snapshot: a long check must not hold up publishers. */
        status = pps__txn_begin_read(e, &txn);
        if (status == PPS_OK) {
            c.txn = txn;
            status = scan(&c);
            mdb_txn_abort(txn);
        }
    }
    pps__env_release(e);
    bool unreadable = status == PPS_ECORRUPT;
    if (unreadable) {
        status = PPS_OK;
    }
    /* Told once nothing is held: fn may use the library. */
    for (size_t i = 0; i < c.n_reports && fn != NULL && status == PPS_OK;
         i++) {
        fn(q->path, c.reports[i].text, c.reports[i].repaired, user);
    }
    *problems += c.problems;
    if (status == PPS_OK && (c.problems > c.repaired || unreadable)) {
        status = pps__err(PPS_ECORRUPT, "%s: %zu problem(s) %s", q->path,
                          c.problems - c.repaired,
                          repair ? "could not be repaired" : "found");
    }
    forget(&c);
    free(c.reports);
    free(c.fixes);
    pps__subs_free(&subs);
    return status;
}

int
pps_ctl_check(const pps_config *cfg, const char *queue, int repair,
              pps_problem_fn fn, void *user, size_t *problems)
{
    size_t found = 0, first, end;
    int result;

    pps__err_begin();
    if (problems != NULL) {
        *problems = 0;
    }
    if (cfg == NULL) {
        return pps__err(PPS_EINVAL, "pps_ctl_check: cfg is NULL");
    }
    result = pps__config_find_queues(cfg, queue, &first, &end);
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
