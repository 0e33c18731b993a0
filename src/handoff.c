/*
 * Consumptions handed to the next writer.
 *
 * A receive that accepted messages must have their consumption committed
 * before it returns (the design's contract), and a commit of its own costs
 * a hand-over of LMDB's write lock and, in a sync or nometasync queue, a
 * flush of the pages it changed. When the subscriber is caught up (nothing
 * else pending), a publisher is usually about to commit anyway; so the
 * receive posts "consumed through id X" in its slot of pps.wake and waits,
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
 * is skipped), without a cursor. A subscriber posts again only after its
 * previous posting was committed, by a writer or by itself; so a writer
 * that reads a posting's X with the next posting's F (the two words are
 * not written at once) sees an empty range and records an X that is
 * committed already.
 *
 * What a slot may never cause is the consumption of a message its
 * subscriber did not accept. Hence: a slot names its subscriber by a hash
 * of its id (after the list changed, slot i may be another subscriber's:
 * the tag differs and nothing is applied), and the boot it was posted in
 * (after an OS crash the last sends of a nometasync queue may be gone, and
 * their ids handed out again; a slot of an earlier boot is ignored). A
 * queue whose data.mdb starts over forgets every slot (env.c). A posting
 * killed before a writer applied it is applied later or not at all: the
 * message was accepted, and at-least-once allows either.
 *
 * The applied consumption has the durability of the commit that carries
 * it, never less than a consumption's own (its data flushed in sync and
 * nometasync queues).
 */
#include "internal.h"

/* How long a caught-up receive waits for a writer to carry its
 * consumption before it commits the consumption itself. */
#define HANDOFF_WAIT_NS 5000000
/* The most pending ids a writer consumes for one slot in one commit: a
 * send stays a small transaction; a larger posting is finished by its
 * subscriber. */
#define HANDOFF_MAX_APPLY 1024

/* The slots' boot: a hash of the boot id; 0 (no handing over) without
 * one. */
static uint64_t
boot_hash(const pps__env *e)
{
    return e->boot_id[0] != '\0' ? pps__wake_tag(e->boot_id) : 0;
}

bool
pps__handoff_consume(pps__env *e, size_t slot, uint64_t tag, uint64_t from,
                     uint64_t through)
{
    uint64_t boot = boot_hash(e);
    if (e->read_only || boot == 0 || slot >= PPS__WAKE_SLOTS ||
        through < from || through - from >= HANDOFF_MAX_APPLY) {
        return false;
    }
    int64_t deadline = pps__now_monotonic_ns() + HANDOFF_WAIT_NS;
    pps__wake_post(e->wake, slot, tag, boot, from, through);
    for (;;) {
        uint32_t seen = pps__wake_applied_seq(e->wake);
        if (pps__wake_is_applied(e->wake, slot, tag, through)) {
            return true;
        }
        if (pps__now_monotonic_ns() >= deadline) {
            return false;
        }
        pps__wake_wait_applied(e->wake, seen, deadline);
    }
}

int
pps__handoff_apply(pps__env *e, MDB_txn *txn, const pps__subs *subs,
                   const uint64_t *tags, pps__handoff *h)
{
    uint64_t boot = boot_hash(e);
    h->n = 0;
    if (boot == 0) {
        return PPS_OK;
    }
    size_t n = subs->n < PPS__WAKE_SLOTS ? subs->n : PPS__WAKE_SLOTS;
    for (size_t i = 0; i < n; i++) {
        uint64_t from, through;
        if (!pps__wake_posted(e->wake, i, tags[i], boot, &from, &through)) {
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
        h->done[h->n].through = through;
        h->n++;
    }
    return PPS_OK;
}

void
pps__handoff_committed(pps__env *e, const pps__handoff *h)
{
    for (size_t i = 0; i < h->n; i++) {
        pps__wake_applied(e->wake, h->done[i].slot, h->done[i].tag,
                          h->done[i].through);
    }
    if (h->n > 0) {
        pps__wake_applied_notify(e->wake);
    }
}
