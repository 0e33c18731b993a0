/*
 * The subscriber: a durable subscription read zero-copy.
 *
 * A receive looks at the front of the subscriber's pending database in a
 * read transaction and hands the payload to the callback straight from the
 * memory map (layout.c reads it). Only after the callback accepted it does
 * a short write transaction consume the message (txn.c). That commit
 * flushes its data but not its meta page (pps__txn_consume_durability()):
 * after an OS crash a consumed message may come again, but none is lost
 * and the queue stays whole. The callback therefore never runs under
 * LMDB's write lock: a slow subscriber does not hold up publishers, and a
 * subscriber killed inside its callback has consumed nothing. In a queue
 * whose consumptions flush, while a publisher is sending, that commit is
 * the next send's: the receive posts the consumption and waits for it
 * (handoff.c), and commits it itself only if no send came in time.
 *
 * Each handle keeps one read transaction and one cursor, reset between
 * calls and renewed for the next (MDB_NOTLS makes that legal across
 * threads), so a receive allocates nothing.
 *
 * A full map: every commit copies the pages it changes, and the pages a
 * commit frees are reusable only two commits later, so consuming a large
 * batch in one transaction may not fit into the room a full map has left.
 * The consumption is then committed in parts that fit (halving the part
 * until it does, down to one message, which the slack that sends leave
 * always holds); what the callback accepted is never handed again by this
 * handle: ids accepted but not yet committed are remembered (`owed`) and
 * consumed first by the handle's next call, before anything is delivered.
 *
 * Removal (pps_ctl_remove_subscriber()): the handle remembers the
 * generation of the queue's sequence record at which it opened its
 * pending database. Every look at the queue reads the generation first, in
 * the same snapshot; when it changed, the database is opened again by name
 * in a write transaction (LMDB reuses the handle of a dropped database for
 * the next one opened), and a subscriber no longer registered gets
 * PPS_ENOTINIT.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct pps_sub {
    pid_t pid;
    pps__env *env;
    char *id;
    MDB_dbi dbi;
    MDB_txn *rtxn;    /* reset between calls */
    MDB_cursor *rcur; /* on dbi, renewed with rtxn */
    uint64_t gen;     /* the generation dbi was opened at (STALE_GEN) */
    size_t slot;      /* its place in the list at gen (handoff.c) */
    uint64_t tag;     /* pps__wake_tag(id) */
    uint32_t last_seq; /* the wake-up word at the previous look */
    bool flushes;      /* the queue's consumptions flush (not nosync) */
    uint64_t *ids;    /* accepted ids of a batch */
    size_t ids_cap;
    size_t owed;      /* ids[0..owed): accepted, not yet committed */
};

#define STALE_GEN UINT64_MAX

/* What one look at the queue gives when nothing is pending. */
enum { NOTHING_PENDING = 0 };

/* Opens the subscriber's pending database (a body of pps__txn_run()). */
static int
open_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    pps_sub *sub = ctx;
    pps__seq seq = {0, 0};
    pps__settings s;
    int status = pps__layout_check_format(e, txn);
    if (status == PPS_OK) {
        status = pps__layout_read_seq(e, txn, &seq);
    }
    if (status == PPS_OK) {
        status = pps__layout_read_settings(e, txn, &s);
        sub->flushes = s.durability != PPS__NOSYNC;
    }
    if (status == PPS_OK) {
        status = pps__subs_open_one(e, txn, sub->id, &sub->dbi, &sub->slot);
    }
    sub->gen = status == PPS_OK ? seq.gen : STALE_GEN;
    return status;
}

/* Opens the pending database again after the generation changed (a
 * subscriber was removed or registered); the cursor follows the handle. */
static int
refresh(pps_sub *sub)
{
    MDB_dbi before = sub->dbi;
    /* Nothing is written: the durability does not matter. */
    int status = pps__txn_run(sub->env, PPS__NOMETASYNC, open_body, sub,
                              "cannot open subscriber");
    if (status != PPS_OK) {
        sub->gen = STALE_GEN; /* a handle opened in a failed txn is gone */
    }
    if ((status != PPS_OK || sub->dbi != before) && sub->rcur != NULL) {
        mdb_cursor_close(sub->rcur);
        sub->rcur = NULL;
    }
    return status;
}

/* The handle's read transaction and cursor, reset until used. */
static int
open_reader(pps_sub *sub)
{
    int status = pps__txn_begin_read(sub->env, &sub->rtxn);
    if (status != PPS_OK) {
        return status;
    }
    int rc = mdb_cursor_open(sub->rtxn, sub->dbi, &sub->rcur);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot open cursor", sub->env->path);
    }
    mdb_txn_reset(sub->rtxn);
    return PPS_OK;
}

int
pps_sub_open(pps_sub **out, const pps_config *cfg, const char *sub_id)
{
    pps_sub *sub = NULL;
    int status;

    pps__err_begin();
    const pps__component *c;
    if (out == NULL) {
        return pps__err(PPS_EINVAL, "pps_sub_open: out is NULL");
    }
    *out = NULL;
    status = pps__config_handle_role(cfg, sub_id, false, &c, "pps_sub_open");
    if (status != PPS_OK) {
        return status;
    }
    sub = calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->id = strdup(sub_id)) == NULL) {
        status = pps__err_nomem();
        goto fail;
    }
    sub->pid = pps__pid();
    sub->tag = pps__wake_tag(sub_id);
    status = pps__env_acquire(&sub->env, &cfg->queues[c->in_queue], false);
    if (status != PPS_OK) {
        goto fail;
    }
    /* Nothing is written: the durability does not matter. */
    status = pps__txn_run(sub->env, PPS__NOMETASYNC, open_body, sub,
                          "cannot open subscriber");
    if (status == PPS_OK) {
        status = open_reader(sub);
        /* Sends before the handle existed are no sign of a publisher
         * sending now. */
        sub->last_seq = pps__wake_seq(sub->env->wake);
    }
    if (status != PPS_OK) {
        goto fail;
    }
    *out = sub;
    return PPS_OK;

fail:
    pps_sub_close(sub);
    return status;
}

static int consume_owed(pps_sub *sub);

void
pps_sub_close(pps_sub *sub)
{
    if (sub == NULL) {
        return;
    }
    if (sub->pid == pps__pid()) {
        if (sub->owed > 0 && sub->gen != STALE_GEN) {
            /* Best effort: if it fails, the messages come again. */
            int status = consume_owed(sub);
            (void)status;
        }
        if (sub->rcur != NULL) {
            mdb_cursor_close(sub->rcur);
        }
        if (sub->rtxn != NULL) {
            mdb_txn_abort(sub->rtxn);
        }
        pps__env_release(sub->env);
    }
    free(sub->ids);
    free(sub->id);
    free(sub);
}

static int
check_handle(const pps_sub *sub, pps_receive_fn fn, const char *what)
{
    if (sub == NULL || fn == NULL) {
        return pps__err(PPS_EINVAL, "%s: %s is NULL", what,
                        sub == NULL ? "sub" : "fn");
    }
    return pps__check_pid(sub->pid, "subscriber");
}

/* The commit of a consumption: flushed data, unflushed meta page, unless
 * the queue is nosync. */
static int
consume_durability(pps__env *e, MDB_txn *txn, int *durability)
{
    pps__settings s;
    int status = pps__layout_read_settings(e, txn, &s);
    if (status == PPS_OK) {
        *durability = pps__txn_consume_durability((int)s.durability);
    }
    return status;
}

/* The subscriber's pending database as of write transaction txn. */
typedef struct sub_view {
    MDB_dbi dbi;
    uint64_t gen;
    size_t slot;
    bool reopened; /* the generation changed: dbi was opened again */
} sub_view;

static int
current_view(pps_sub *sub, MDB_txn *txn, sub_view *v)
{
    pps__seq seq;
    int status = pps__layout_read_seq(sub->env, txn, &seq);
    v->dbi = sub->dbi;
    v->gen = sub->gen;
    v->slot = sub->slot;
    v->reopened = false;
    if (status == PPS_OK && seq.gen != sub->gen) {
        v->gen = seq.gen;
        v->reopened = true;
        status = pps__subs_open_one(sub->env, txn, sub->id, &v->dbi,
                                    &v->slot);
    }
    return status;
}

/* After a committed transaction that used view v. */
static void
adopt_view(pps_sub *sub, const sub_view *v)
{
    if (!v->reopened) {
        return;
    }
    if (v->dbi != sub->dbi && sub->rcur != NULL) {
        mdb_cursor_close(sub->rcur);
        sub->rcur = NULL;
    }
    sub->dbi = v->dbi;
    sub->gen = v->gen;
    sub->slot = v->slot;
}

typedef struct consume_job {
    pps_sub *sub;
    const uint64_t *ids;
    size_t n;
    sub_view view;
} consume_job;

static int
consume_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    consume_job *job = ctx;
    int status = consume_durability(e, txn, durability);
    if (status == PPS_OK) {
        status = current_view(job->sub, txn, &job->view);
    }
    for (size_t i = 0; i < job->n && status == PPS_OK; i++) {
        status = pps__layout_consume(e, txn, job->view.dbi, job->ids[i]);
    }
    return status;
}

/* Consumes ids[0..n) in one write transaction. */
static int
consume_part(pps_sub *sub, const uint64_t *ids, size_t n)
{
    consume_job job = {sub, ids, n, {0, 0, 0, false}};
    int status = pps__txn_run(sub->env, PPS__NOMETASYNC, consume_body, &job,
                              "cannot commit consumption");
    if (status == PPS_OK) {
        adopt_view(sub, &job.view);
    }
    return status;
}

/* Consumes the first n ids of sub->ids: in one transaction if it fits,
 * else in parts that fit (a part that finds the map full is halved, and
 * grows again after a success). The ids it could not consume stay at the
 * front of sub->ids as owed. */
static int
consume(pps_sub *sub, size_t n)
{
    size_t done = 0, part = n;
    int status = PPS_OK;
    while (done < n) {
        if (part > n - done) {
            part = n - done;
        }
        status = consume_part(sub, sub->ids + done, part);
        if (status == PPS_EFULL && part > 1) {
            pps__err_begin(); /* a smaller part may fit */
            part /= 2;
            continue;
        }
        if (status != PPS_OK) {
            break;
        }
        done += part;
        part = part <= (SIZE_MAX / 2) ? part * 2 : part;
    }
    if (done > 0 && done < n) {
        memmove(sub->ids, sub->ids + done, (n - done) * sizeof(*sub->ids));
    }
    sub->owed = n - done;
    return status;
}

static int
consume_owed(pps_sub *sub)
{
    return consume(sub, sub->owed);
}

/* Makes room for one more id in the batch buffer; grows geometrically, so a
 * handle stops allocating once it has seen its largest batch. */
static int
reserve_ids(pps_sub *sub, size_t n)
{
    if (n <= sub->ids_cap) {
        return PPS_OK;
    }
    size_t cap = sub->ids_cap < 16 ? 16 : sub->ids_cap * 2;
    if (cap < n) {
        cap = n;
    }
    uint64_t *ids = realloc(sub->ids, cap * sizeof(*ids));
    if (ids == NULL) {
        return pps__err_nomem();
    }
    sub->ids = ids;
    sub->ids_cap = cap;
    return PPS_OK;
}

/* Renews the handle's read transaction on a snapshot in which its pending
 * database is the one it has open (the generation is the one it opened it
 * at), and its cursor. */
static int
begin_look(pps_sub *sub)
{
    for (;;) {
        if (sub->gen == STALE_GEN) {
            int status = refresh(sub);
            if (status != PPS_OK) {
                return status;
            }
        }
        int status = pps__txn_renew(sub->env, sub->rtxn);
        if (status != PPS_OK) {
            return status;
        }
        pps__seq seq;
        status = pps__layout_read_seq(sub->env, sub->rtxn, &seq);
        if (status != PPS_OK) {
            mdb_txn_reset(sub->rtxn);
            return status;
        }
        if (seq.gen != sub->gen) {
            mdb_txn_reset(sub->rtxn);
            sub->gen = STALE_GEN;
            continue;
        }
        int rc = sub->rcur != NULL
                     ? mdb_cursor_renew(sub->rtxn, sub->rcur)
                     : mdb_cursor_open(sub->rtxn, sub->dbi, &sub->rcur);
        if (rc != 0) {
            mdb_txn_reset(sub->rtxn);
            return pps__err_rc(rc, "cannot renew cursor", sub->env->path);
        }
        return PPS_OK;
    }
}

/*
 * One look at the queue: hands up to max messages to fn and consumes the
 * accepted ones. Returns the number delivered and consumed (> 0),
 * NOTHING_PENDING, or a negative status.
 */
static int
deliver(pps_sub *sub, size_t max, pps_receive_fn fn, void *user)
{
    /* What an earlier call accepted but could not commit goes first, and
     * is never handed again. */
    int status = sub->owed > 0 ? consume_owed(sub) : PPS_OK;
    /* Another process sent since the previous look: a publisher is
     * sending. (A send of this process is no sign: the thread that
     * receives may be the one that sends.) */
    uint32_t seq = pps__wake_seq(sub->env->wake);
    bool sending = seq != sub->last_seq && !pps__wake_own(sub->env->wake, seq);
    sub->last_seq = seq;
    if (status == PPS_OK) {
        status = begin_look(sub);
    }
    if (status != PPS_OK) {
        return status;
    }
    size_t n_ids = 0;     /* ids to consume: delivered ones and orphans */
    size_t delivered = 0; /* messages the callback accepted */
    bool refused = false;
    uint64_t refused_id = 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(sub->rcur, &k, &v, MDB_FIRST);
    while (rc == 0 && delivered < max) {
        pps_message msg;
        bool orphan;
        status = pps__layout_read_msg(sub->env, sub->rtxn, &k, &msg, &orphan);
        if (status == PPS_OK) {
            status = reserve_ids(sub, n_ids + 1);
        }
        if (status != PPS_OK) {
            break;
        }
        /* An orphan (a pending id whose message is gone) is consumed
         * silently: there is nothing to deliver. */
        if (!orphan) {
            if (fn(&msg, user) != 0) {
                refused = true;
                refused_id = msg.id;
                break;
            }
            delivered++;
        }
        sub->ids[n_ids++] = msg.id;
        rc = mdb_cursor_get(sub->rcur, &k, &v, MDB_NEXT);
    }
    mdb_txn_reset(sub->rtxn);
    if (status == PPS_OK && rc != 0 && rc != MDB_NOTFOUND) {
        status = pps__err_rc(rc, "cannot read pending messages",
                             sub->env->path);
    }
    /* A consumption that would flush, while a publisher sends: the next
     * send is likely to come soon, and carries the consumption
     * (handoff.c), and publishers need not wait for this subscriber's
     * flush. In a nosync queue a commit of its own costs less than
     * waiting for the next send. */
    uint64_t nonce = 0;
    if (status == PPS_OK && !refused && delivered > 0 && sending &&
        sub->flushes &&
        pps__handoff_consume(sub->env, sub->slot, sub->tag, sub->ids[0],
                             sub->ids[n_ids - 1], &nonce)) {
        return delivered > (size_t)INT32_MAX ? INT32_MAX : (int)delivered;
    }
    /* Consume what was accepted even if something after it failed: the
     * callback has seen those messages. What cannot be committed now is
     * owed, and consumed before anything else by the next call. */
    if (n_ids > 0) {
        int consumed = consume(sub, n_ids);
        if (consumed != PPS_OK) {
            return consumed;
        }
        pps__handoff_settled(sub->env, sub->slot, sub->tag, nonce);
    }
    if (status != PPS_OK) {
        return status;
    }
    if (refused && delivered == 0) {
        return pps__err(PPS_ECALLBACK, "%s: the callback of \"%s\" refused "
                        "message %llu; it was kept",
                        sub->env->path, sub->id,
                        (unsigned long long)refused_id);
    }
    if (delivered == 0) {
        return NOTHING_PENDING;
    }
    return delivered > (size_t)INT32_MAX ? INT32_MAX : (int)delivered;
}

/* Waits as timeout_ms says for messages, then delivers up to max. */
static int
receive(pps_sub *sub, size_t max, int timeout_ms, pps_receive_fn fn,
        void *user)
{
    int64_t deadline = -1;
    if (timeout_ms > 0) {
        deadline = pps__now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    }
    for (;;) {
        uint32_t seen = pps__wake_seq(sub->env->wake);
        int got = deliver(sub, max, fn, user);
        if (got != NOTHING_PENDING) {
            return got;
        }
        if (timeout_ms == 0 ||
            (deadline >= 0 && pps__now_monotonic_ns() >= deadline)) {
            return pps__err(PPS_ETIMEDOUT, "%s: no message for \"%s\" within "
                            "%d ms", sub->env->path, sub->id, timeout_ms);
        }
        pps__wake_wait(sub->env->wake, seen, deadline);
    }
}

int
pps_sub_receive(pps_sub *sub, int timeout_ms, pps_receive_fn fn, void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive");
    if (status == PPS_OK) {
        status = receive(sub, 1, timeout_ms, fn, user);
    }
    return status > 0 ? PPS_OK : status;
}

int
pps_sub_receive_batch(pps_sub *sub, size_t max, int timeout_ms,
                      pps_receive_fn fn, void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive_batch");
    if (status == PPS_OK && max == 0) {
        status = pps__err(PPS_EINVAL, "pps_sub_receive_batch: max is 0");
    }
    if (status == PPS_OK) {
        status = receive(sub, max, timeout_ms, fn, user);
    }
    return status;
}

/* What receive_to_top skips: the pending ids below `until`, at most
 * `limit` of them per transaction. */
typedef struct skip_job {
    pps_sub *sub;
    sub_view view;
    uint64_t until; /* 0: not known yet (the newest pending id) */
    size_t limit;
    bool done;
} skip_job;

/* Consumes pending messages below job->until (a body of pps__txn_run()). */
static int
skip_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    skip_job *job = ctx;
    job->done = false;
    int status = consume_durability(e, txn, durability);
    if (status == PPS_OK) {
        status = current_view(job->sub, txn, &job->view);
    }
    if (status == PPS_OK) {
        status = pps__layout_consume_below(e, txn, job->view.dbi, &job->until,
                                           job->limit, &job->done);
    }
    return status;
}

/* Consumes every pending message but the newest: in one transaction if it
 * fits, else (a full map) in parts that fit, as consume() does. */
static int
skip_to_top(pps_sub *sub)
{
    skip_job job = {.sub = sub, .limit = SIZE_MAX};
    int status = sub->owed > 0 ? consume_owed(sub) : PPS_OK;
    while (status == PPS_OK) {
        status = pps__txn_run(sub->env, PPS__NOMETASYNC, skip_body, &job,
                              "cannot commit consumption");
        if (status == PPS_EFULL && job.limit > 1) {
            pps__err_begin(); /* a smaller part may fit */
            job.limit = job.limit == SIZE_MAX ? 1024 : job.limit / 2;
            status = PPS_OK;
            continue;
        }
        if (status != PPS_OK) {
            break;
        }
        adopt_view(sub, &job.view);
        if (job.done) {
            break;
        }
    }
    return status;
}

int
pps_sub_receive_to_top(pps_sub *sub, int timeout_ms, pps_receive_fn fn,
                       void *user)
{
    pps__err_begin();
    int status = check_handle(sub, fn, "pps_sub_receive_to_top");
    if (status == PPS_OK) {
        status = skip_to_top(sub);
    }
    if (status == PPS_OK) {
        status = receive(sub, 1, timeout_ms, fn, user);
    }
    return status > 0 ? PPS_OK : status;
}
