/*
 * The publisher: one write transaction per send (or per batch).
 *
 * A send reads the queue's sequence record, applies the high-water mark
 * (hwm.c), appends the payload, its metadata and the id of every target
 * subscriber (layout.c), advances the sequence, applies the consumptions
 * subscribers handed over (handoff.c) and commits with the queue's
 * durability (txn.c); then it wakes waiting receivers (wakeup.c), and a
 * sync send flushes its meta page last, so that the subscribers read the
 * message while it goes to the disk. The id is
 * thus assigned inside the transaction, which LMDB serializes across
 * processes: ids are strictly increasing per queue, and every key is
 * appended (MDB_APPEND: no search, pages filled completely).
 *
 * The publisher caches the queue's settings and subscriber handles. The
 * sequence record carries a generation that pps_ctl_init() bumps whenever it
 * changes either; a send that sees a new generation reloads them inside its
 * own transaction, so a subscriber registered meanwhile receives every
 * message committed after its registration.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALE_GEN UINT64_MAX

struct pps_pub {
    pid_t pid;
    pps__env *env;
    const pps__component *comp;
    pps__settings settings;
    uint64_t gen;
    pps__subs all;    /* every registered subscriber (pruning) */
    uint64_t *tags;   /* pps__wake_tag() of each of `all` (handoff.c) */
    MDB_dbi *targets; /* the ones this publisher sends to */
    size_t n_targets;
    int64_t front_ns; /* see pps__hwm_enforce(); 0: unknown */
    pps__handoff handoff; /* what the last send's transaction applied */
};

/* Reloads settings and subscribers, inside the send's transaction. */
static int
reload(pps_pub *pub, MDB_txn *txn, uint64_t gen)
{
    const pps__component *c = pub->comp;
    int status = pps__layout_check_format(pub->env, txn);
    if (status == PPS_OK) {
        status = pps__layout_read_settings(pub->env, txn, &pub->settings);
    }
    if (status == PPS_OK) {
        status = pps__subs_open(pub->env, txn, &pub->all);
    }
    if (status != PPS_OK) {
        return status;
    }
    size_t n = c->has_subscribers ? c->n_subscribers : pub->all.n;
    MDB_dbi *t = realloc(pub->targets, (n > 0 ? n : 1) * sizeof(*t));
    if (t == NULL) {
        return pps__err_nomem();
    }
    pub->targets = t;
    uint64_t *tags = realloc(pub->tags, (pub->all.n > 0 ? pub->all.n : 1) *
                                            sizeof(*tags));
    if (tags == NULL) {
        return pps__err_nomem();
    }
    pub->tags = tags;
    const char *id = pub->all.ids;
    for (size_t i = 0; i < pub->all.n; i++, id += strlen(id) + 1) {
        tags[i] = pps__wake_tag(id);
    }
    pub->n_targets = 0;
    for (size_t i = 0; i < n; i++) {
        long k = (long)i;
        if (c->has_subscribers) {
            k = pps__subs_find(&pub->all, c->subscribers[i]);
            if (k < 0) {
                char what[512];
                snprintf(what, sizeof(what),
                         "subscriber \"%s\" of publisher \"%s\" is not "
                         "registered",
                         c->subscribers[i], c->id);
                return pps__err_notinit(pub->env->path, what);
            }
        }
        t[pub->n_targets++] = pub->all.dbis[k];
    }
    pub->gen = gen;
    return PPS_OK;
}

/* What one send hands its transaction, and what it learns. */
typedef struct send_job {
    pps_pub *pub;
    const pps_buf *msgs;
    size_t n;
    bool pruned; /* the high-water mark removed messages */
    bool stored; /* the messages were written (someone will get them) */
    bool fitted; /* the room check passed: a PPS_EFULL after it is LMDB's */
    bool flush_meta;     /* committed nometasync; the meta page is due */
    size_t txn_id;       /* of the transaction (its meta page) */
    bool no_handoff;     /* leave posted consumptions alone (a retry) */
    bool handoff_failed; /* applying them failed the transaction */
} send_job;

/* Reloads what a new generation changed. */
static int
current(pps_pub *pub, MDB_txn *txn, pps__seq *seq)
{
    int status = pps__layout_read_seq(pub->env, txn, seq);
    if (status == PPS_OK && seq->gen != pub->gen) {
        status = reload(pub, txn, seq->gen);
    }
    return status;
}

static int
send_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    send_job *job = ctx;
    pps_pub *pub = job->pub;
    pps__seq seq;
    pps__removed removed = {0};
    job->pruned = false;
    job->stored = false;
    job->fitted = false;
    job->handoff_failed = false;
    job->flush_meta = false;
    pub->handoff.n = 0;
    int status = current(pub, txn, &seq);
    if (status != PPS_OK || pub->n_targets == 0) {
        return status; /* with no target nobody would ever receive it */
    }
    /* A sync send's meta page is flushed after the subscribers were
     * woken (send_all()): they read the message while it goes to the
     * disk, and their consumptions catch the next send. */
    job->flush_meta = pub->settings.durability == PPS__SYNC;
    job->txn_id = mdb_txn_id(txn);
    *durability = job->flush_meta ? PPS__NOMETASYNC
                                  : (int)pub->settings.durability;
    int64_t now = pps__now_realtime_ns();
    status = pps__hwm_enforce(e, txn, &pub->settings, &pub->all, now,
                              &removed, &pub->front_ns);
    job->pruned = removed.messages > 0;
    if (status == PPS_OK) {
        status = pps__space_for_send(e, job->msgs, job->n, pub->n_targets);
        job->fitted = status == PPS_OK;
    }
    for (size_t i = 0; i < job->n && status == PPS_OK; i++) {
        status = pps__layout_append(e, txn, seq.next_id++, &job->msgs[i], now,
                                    pub->targets, pub->n_targets);
    }
    if (status == PPS_OK && job->n > 1) {
        status = pps__hwm_enforce_batch(e, txn, &pub->settings, &pub->all,
                                        &removed);
    }
    if (status == PPS_OK) {
        status = pps__layout_write_seq(e, txn, &seq);
    }
    job->stored = status == PPS_OK;
    if (status == PPS_OK && !job->no_handoff) {
        /* The subscribers' consumptions ride along (handoff.c). */
        status = pps__handoff_apply(e, txn, &pub->all, pub->tags,
                                    &pub->handoff);
        job->handoff_failed = status != PPS_OK;
        job->stored = status == PPS_OK;
    }
    return status;
}

/* Commits the high-water mark's pruning on its own. */
static int
prune_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    pps_pub *pub = ctx;
    pps__seq seq;
    int status = current(pub, txn, &seq);
    if (status == PPS_OK) {
        *durability =
            pps__txn_consume_durability((int)pub->settings.durability);
        status = pps__hwm_enforce(e, txn, &pub->settings, &pub->all,
                                  pps__now_realtime_ns(), NULL, NULL);
    }
    return status;
}

/* One send, committed or not; a failure forgets the cached state (the
 * handles opened in an aborted transaction are gone). */
static int
run(pps_pub *pub, pps__txn_body body, void *ctx, const char *what)
{
    int status = pps__txn_run(pub->env, (int)pub->settings.durability, body,
                              ctx, what);
    if (status != PPS_OK) {
        pub->gen = STALE_GEN;
        pub->front_ns = 0;
    }
    return status;
}

/* Settles and sends again, once. */
static int
settle_and_send(pps_pub *pub, send_job *job)
{
    int status = pps__txn_recycle_freed(
        pub->env, pps__txn_consume_durability((int)pub->settings.durability));
    if (status == PPS_OK) {
        status = run(pub, send_body, job, "cannot commit message");
    }
    if (status == PPS_EFULL && job->fitted) {
        /* The free list holds the room, but not in one run of pages. */
        status = pps__space_explain_full(pub->env, job->msgs, job->n);
    }
    return status;
}

static int
send_all(pps_pub *pub, const pps_buf *msgs, size_t n)
{
    int status = pps__check_pid(pub->pid, "publisher");
    if (status != PPS_OK || n == 0) {
        return status;
    }
    send_job job = {.pub = pub, .msgs = msgs, .n = n};
    status = run(pub, send_body, &job, "cannot commit message");
    if (status != PPS_OK && job.handoff_failed) {
        /* The subscribers commit their consumptions themselves. */
        pps__err_begin();
        job.no_handoff = true;
        status = run(pub, send_body, &job, "cannot commit message");
    }
    if (status == PPS_EFULL && (job.pruned || job.fitted)) {
        /* Pages freed by a commit are reusable only two commits later
         * (readers of the one before may still see them), and not at all
         * by the transaction that frees them: what the mark prunes, or
         * what the last consumption freed (a large message needs its
         * pages in one run), is not there for this send yet. Prune in a
         * commit of its own, settle, and retry once. */
        pps__err_begin();
        if (job.pruned) {
            status = run(pub, prune_body, pub, "cannot commit pruning");
        } else {
            status = PPS_OK;
        }
        if (status == PPS_OK) {
            status = settle_and_send(pub, &job);
        }
    }
    if (status == PPS_OK && job.stored) {
        /* The new messages first: a subscriber woken by the second finds
         * the wake-up word moved, the sign that a publisher is sending. */
        pps__wake_notify(pub->env->wake);
        pps__handoff_committed(pub->env, &pub->handoff);
    }
    if (status == PPS_OK && job.flush_meta) {
        /* sync: on disk now */
        status = pps__txn_flush_meta(pub->env, job.txn_id);
    }
    return status;
}

/* Opens the publisher's view of the queue (a body of pps__txn_run()). */
static int
open_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)e;
    (void)durability;
    pps__seq seq;
    return current(ctx, txn, &seq);
}

int
pps_pub_open(pps_pub **out, const pps_config *cfg, const char *pub_id)
{
    pps_pub *pub = NULL;
    int status;

    pps__err_begin();
    const pps__component *c;
    if (out == NULL) {
        return pps__err(PPS_EINVAL, "pps_pub_open: out is NULL");
    }
    *out = NULL;
    status = pps__config_handle_role(cfg, pub_id, true, &c, "pps_pub_open");
    if (status != PPS_OK) {
        return status;
    }
    pub = calloc(1, sizeof(*pub));
    if (pub == NULL) {
        return pps__err_nomem();
    }
    pub->pid = pps__pid();
    pub->comp = c;
    pub->gen = STALE_GEN;
    status = pps__env_acquire(&pub->env, &cfg->queues[c->out_queue], false);
    if (status != PPS_OK) {
        goto fail;
    }
    /* Nothing is written: the durability does not matter. */
    status = pps__txn_run(pub->env, PPS__NOMETASYNC, open_body, pub,
                          "cannot open publisher");
    if (status != PPS_OK) {
        goto fail;
    }
    *out = pub;
    return PPS_OK;

fail:
    pps_pub_close(pub);
    return status;
}

void
pps_pub_close(pps_pub *pub)
{
    if (pub == NULL) {
        return;
    }
    pps__env_release(pub->env);
    pps__subs_free(&pub->all);
    free(pub->tags);
    free(pub->targets);
    free(pub);
}

int
pps_pub_send(pps_pub *pub, const void *data, size_t len)
{
    pps__err_begin();
    if (pub == NULL || (data == NULL && len > 0)) {
        return pps__err(PPS_EINVAL, "pps_pub_send: %s is NULL",
                        pub == NULL ? "pub" : "data");
    }
    pps_buf one = {data, len};
    return send_all(pub, &one, 1);
}

int
pps_pub_send_many(pps_pub *pub, const pps_buf *msgs, size_t n)
{
    pps__err_begin();
    if (pub == NULL || (msgs == NULL && n > 0)) {
        return pps__err(PPS_EINVAL, "pps_pub_send_many: %s is NULL",
                        pub == NULL ? "pub" : "msgs");
    }
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].data == NULL && msgs[i].len > 0) {
            return pps__err(PPS_EINVAL,
                            "pps_pub_send_many: message %zu has NULL data "
                            "and length %zu; nothing was sent",
                            i, msgs[i].len);
        }
    }
    return send_all(pub, msgs, n);
}
