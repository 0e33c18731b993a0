/*
 * Consumptions handed to the next writer.
 *
 * A receive that accepted messages must have their consumption committed
 * before it returns (the design's contract), and a commit of its own costs
 * a hand-over of LMDB's write lock and, in a sync or nometasync queue, a
 * flush of the pages it changed. While publishers send often (one woke
 * receivers within the last 2 ms, and within 2 ms of the send before), the
 * next send is near; so the receive posts "consumed ids F..X" in its
 * subscriber's slot of pps.wake and waits,
 * at most HANDOFF_WAIT_NS, for a writer to apply it inside its own
 * transaction: every send applies what is posted before it commits, and
 * records it as applied once the commit succeeded. If nobody did in time,
 * the receive commits the consumption itself, as it always did; the
 * consumption is idempotent (an id no longer pending is skipped), so a
 * writer and the subscriber applying the same one do no harm.
 *
 * A posting is a range of ids, "consumed the pending ids from F through
 * X": a receive hands messages from the front of the pending database, so
 * what it consumed is all that pends in [F, X] (accepted messages and the
 * orphans among them, never one the callback refused, which would end the
 * range), and ids only grow, so no id in it can become pending later. A
 * writer deletes the ids of the range one by one (an id no longer pending
 * is skipped), without a cursor. Each posting has a nonce, unique among
 * the live processes, and "applied" records the nonce a commit applied:
 * a writer that records it late, in a slot that has changed owner since,
 * cannot make the new owner believe its own posting was committed. A
 * subscriber posts again only after its previous posting was committed,
 * by a writer or by itself; a writer that reads one posting's nonce with
 * the next posting's range (the words are not written at once) applies
 * ids the subscriber consumed all the same.
 *
 * What a slot may never cause is the consumption of a message its
 * subscriber did not accept. Hence: a slot names its subscriber by a hash
 * of its id (after the list changed, slot i may be another subscriber's:
 * the tag differs and nothing is applied), and the boot it was posted in
 * (after an OS crash the last sends of a nometasync queue may be gone, and
 * their ids handed out again; a slot of an earlier boot is ignored). A
 * queue whose data.mdb starts over forgets every slot (env.c). A posting
 * killed before a writer applied it is applied later or not at all: the
 * message was accepted, and at-least-once allows either (even after a new
 * handle of that subscriber opened, which may then see it consumed).
 *
 * The applied consumption has the durability of the commit that carries
 * it, never less than a consumption's own (its data flushed in sync and
 * nometasync queues).
 */
#include "internal.h"

/* How long a receive waits for a writer to carry its consumption before
 * it commits the consumption itself. */
#define HANDOFF_WAIT_NS 5000000
/* Handed over only while publishers woke receivers within this long, and
 * that long after the send before: a next send is then near. A publisher
 * sending now and then (a receive would wait for nothing) is left alone. */
#define HANDOFF_SENDING_NS 2000000
/* The most pending ids a posting names: a send stays a small
 * transaction; a larger consumption is committed by its subscriber. */
#define HANDOFF_MAX_APPLY 1024

/* A number for one posting, unique among the live processes: the pid and
 * a counter of the process. */
static uint64_t
next_nonce(void)
{
    static _Atomic uint64_t counter;
    uint64_t n = atomic_fetch_add(&counter, 1) + 1;
    return ((uint64_t)(uint32_t)pps__pid() << 32) | (n & 0xffffffffu);
}

bool
pps__handoff_consume(pps__env *e, size_t slot, uint64_t tag, uint64_t from,
                     uint64_t through, uint64_t *nonce)
{
    uint64_t boot = e->boot_hash; /* 0: no boot id, no handing over */
    int64_t now = pps__now_monotonic_ns();
    *nonce = 0;
    if (e->read_only || boot == 0 || slot >= PPS__WAKE_SLOTS ||
        through < from || through - from >= HANDOFF_MAX_APPLY ||
        !pps__wake_sends_often(e->wake, now, HANDOFF_SENDING_NS)) {
        return false;
    }
    uint64_t n = next_nonce();
    if (n == 0) {
        n = 1;
    }
    int64_t deadline = now + HANDOFF_WAIT_NS;
    pps__wake_post(e->wake, slot, tag, boot, from, through, n);
    *nonce = n;
    for (;;) {
        uint32_t seen = pps__wake_applied_seq(e->wake);
        if (pps__wake_is_applied(e->wake, slot, tag, n)) {
            return true;
        }
        if (pps__now_monotonic_ns() >= deadline) {
            return false;
        }
        pps__wake_wait_applied(e->wake, seen, deadline);
    }
}

void
pps__handoff_settled(pps__env *e, size_t slot, uint64_t tag, uint64_t nonce)
{
    /* Committed by the poster itself: writers need not try again. */
    if (nonce != 0) {
        pps__wake_applied(e->wake, slot, tag, nonce);
    }
}

int
pps__handoff_apply(pps__env *e, MDB_txn *txn, const pps__subs *subs,
                   const uint64_t *tags, pps__handoff *h)
{
    uint64_t boot = e->boot_hash; /* 0: no boot id, no handing over */
    h->n = 0;
    if (boot == 0) {
        return PPS_OK;
    }
    size_t n = subs->n < PPS__WAKE_SLOTS ? subs->n : PPS__WAKE_SLOTS;
    for (size_t i = 0; i < n; i++) {
        uint64_t from, through, nonce;
        if (!pps__wake_posted(e->wake, i, tags[i], boot, &from, &through,
                              &nonce)) {
            continue;
        }
        /* An id of the range no longer pending (consumed by the subscriber
         * itself, pruned) is skipped; a range that is not one (`from` of a
         * later posting) is empty. */
        for (uint64_t id = from; id <= through && id - from < HANDOFF_MAX_APPLY;
             id++) {
            int status = pps__layout_consume(e, txn, subs->dbis[i], id);
            if (status != PPS_OK) {
                return status;
            }
        }
        h->done[h->n].slot = i;
        h->done[h->n].tag = tags[i];
        h->done[h->n].nonce = nonce;
        h->n++;
    }
    return PPS_OK;
}

void
pps__handoff_committed(pps__env *e, const pps__handoff *h)
{
    for (size_t i = 0; i < h->n; i++) {
        pps__wake_applied(e->wake, h->done[i].slot, h->done[i].tag,
                          h->done[i].nonce);
    }
    if (h->n > 0) {
        pps__wake_applied_notify(e->wake);
    }
}
