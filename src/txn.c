/*
 * Transactions: the one place that begins, commits and retries them.
 *
 * Durability is chosen per commit (LMDB 0.9 keeps its sync flags per
 * environment and ignores per-transaction ones, so they are set just before
 * each commit; that is safe because only the thread holding the write
 * transaction commits, and LMDB serializes writers):
 *
 *   PPS__SYNC        data pages flushed, then the meta page written and,
 *                    once the write lock is released, flushed
 *   PPS__NOMETASYNC  data pages flushed, then the meta page written (it
 *                    reaches the disk with a later flush)
 *   PPS__NOSYNC      nothing flushed (nosync queues only); the boot is
 *                    marked in pps.wake first, so that the next boot
 *                    notices if an OS crash lost such commits
 *
 * A sync commit is a nometasync one followed by a flush of its meta page
 * alone (through a small mapping of the two, env.c), made after
 * LMDB released its write lock: the next writer (another publisher, a
 * subscriber consuming) commits while this one waits for the disk, and its
 * data flush carries this meta page too. The order LMDB relies on holds:
 * the data of every commit is on the disk before its meta page is written,
 * and the send returns only when its meta page is on the disk as well.

 * With MDB_WRITEMAP, MDB_NOSYNC leaves the kernel free to write the meta
 * page before the pages it names, and a power cut then corrupts the queue;
 * so a queue whose durability is sync or nometasync never commits anything
 * with it, consumptions included (pps__txn_consume_durability()).
 *
 * Dead readers: a process killed inside a read transaction leaves its
 * reader slot behind, and the snapshot it names keeps every page freed
 * after it from being reused. Write transactions reclaim such slots every
 * few milliseconds, and a transaction that found the map full is run once
 * more after a reclaim that found any (pps__txn_run()).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int
pps__txn_begin_write(pps__env *e, MDB_txn **txn)
{
    if (e->read_only) {
        *txn = NULL;
        return pps__err(PPS_ESTORAGE,
                        "%s: this process may read the queue but not write "
                        "it (data.mdb: Permission denied); status and check "
                        "without repair work, the rest needs write access",
                        e->path);
    }
    int rc = mdb_txn_begin(e->env, NULL, 0, txn);
    if (rc != 0) {
        *txn = NULL;
        if (rc == MDB_MAP_RESIZED) {
            return pps__err(PPS_ESTORAGE,
                            "%s: the queue's map was grown by another process "
                            "(init with a larger max_db_size_bytes); close "
                            "every handle of this queue in this process and "
                            "open them again",
                            e->path);
        }
        return pps__err_rc(rc, "cannot begin write transaction", e->path);
    }
    /* The page allocator consults the reader table when it needs pages,
     * so this transaction already profits from a reclaim. */
    int64_t now = pps__now_coarse_ns();
    if (now - e->readers_checked_ns >= PPS__READER_CHECK_NS) {
        e->readers_checked_ns = now;
        pps__txn_reclaim_readers(e);
    }
    int status = pps__space_for_write(e);
    if (status != PPS_OK) {
        mdb_txn_abort(*txn);
        *txn = NULL;
    }
    return status;
}

/* Begins or renews a read transaction, once more after reclaiming dead
 * readers' slots if the reader table is full. */
static int
read_txn(pps__env *e, MDB_txn **txn, bool renew)
{
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = renew ? mdb_txn_renew(*txn)
                   : mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn);
        if (rc != MDB_READERS_FULL || !pps__txn_reclaim_readers(e)) {
            break;
        }
    }
    if (rc != 0) {
        if (!renew) {
            *txn = NULL;
        }
        return pps__err_rc(rc, "cannot begin read transaction", e->path);
    }
    return PPS_OK;
}

int
pps__txn_begin_read(pps__env *e, MDB_txn **txn)
{
    return read_txn(e, txn, false);
}

int
pps__txn_renew(pps__env *e, MDB_txn *txn)
{
    return read_txn(e, &txn, true);
}

int
pps__txn_commit(pps__env *e, MDB_txn *txn, int durability, const char *what)
{
    MDB_env *env = e->env;
    if (durability == PPS__NOSYNC && !e->unsynced) {
        /* Before this boot's first commit without flushes: an OS crash
         * from here on may lose or tear what such commits wrote, and the
         * next boot must be able to tell (wakeup.c). */
        int status = pps__wake_mark_unsynced(e->wake, e->path, e->boot_id);
        if (status != PPS_OK) {
            mdb_txn_abort(txn);
            return status;
        }
        e->unsynced = true;
    }
    size_t id = mdb_txn_id(txn);
    mdb_env_set_flags(env, MDB_NOSYNC | MDB_NOMETASYNC, 0);
    if (durability == PPS__NOSYNC) {
        mdb_env_set_flags(env, MDB_NOSYNC, 1);
    } else {
        mdb_env_set_flags(env, MDB_NOMETASYNC, 1);
    }
    int rc = mdb_txn_commit(txn);
    if (rc != 0) {
        /* mdb_txn_commit() frees the transaction even when it fails. */
        return pps__err_rc(rc, what, e->path);
    }
    return durability == PPS__SYNC ? pps__txn_flush_meta(e, id) : PPS_OK;
}

int
pps__txn_flush_meta(pps__env *e, size_t txn_id)
{
    /* LMDB writes the meta page of transaction N into page N % 2; the
     * other one may be the next writer's, being written right now. */
    size_t page = e->metas_len / 2;
    char *meta = (char *)e->metas + (txn_id & 1) * page;
    if (msync(meta, page, MS_SYNC) != 0) {
        return pps__err(PPS_ESTORAGE,
                        "%s: the commit is done, but flushing it failed "
                        "(%s): it may be delivered, and may be lost if the "
                        "operating system crashes",
                        e->path, strerror(errno));
    }
    return PPS_OK;
}

int
pps__txn_consume_durability(int queue)
{
    return queue == PPS__SYNC ? PPS__NOMETASYNC : queue;
}

/* One attempt of pps__txn_run(). */
static int
run_once(pps__env *e, int durability, pps__txn_body body, void *ctx,
         const char *what)
{
    MDB_txn *txn;
    int status = pps__txn_begin_write(e, &txn);
    if (status != PPS_OK) {
        return status;
    }
    status = body(e, txn, ctx, &durability);
    if (status != PPS_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    return pps__txn_commit(e, txn, durability, what);
}

int
pps__txn_run(pps__env *e, int durability, pps__txn_body body, void *ctx,
             const char *what)
{
    int status = run_once(e, durability, body, ctx, what);
    if (status == PPS_EFULL && pps__txn_reclaim_readers(e)) {
        pps__err_begin(); /* the first attempt's detail is moot */
        status = run_once(e, durability, body, ctx, what);
    }
    return status;
}

int
pps__txn_open_handles(pps__env *e, pps__txn_body body, void *ctx,
                      const char *what)
{
    if (!e->read_only) {
        return pps__txn_run(e, PPS__NOMETASYNC, body, ctx, what);
    }
    /* LMDB: a transaction that opens handles must end before another may
     * open any; a read transaction's commit keeps them. */
    MDB_txn *txn;
    int durability = PPS__NOSYNC;
    pthread_mutex_lock(&e->dbi_lock);
    int status = pps__txn_begin_read(e, &txn);
    if (status == PPS_OK) {
        status = body(e, txn, ctx, &durability);
        int rc = status == PPS_OK ? mdb_txn_commit(txn) : 0;
        if (status != PPS_OK) {
            mdb_txn_abort(txn);
        } else if (rc != 0) {
            status = pps__err_rc(rc, what, e->path);
        }
    }
    pthread_mutex_unlock(&e->dbi_lock);
    return status;
}

bool
pps__txn_reclaim_readers(pps__env *e)
{
    int dead = 0;
    return mdb_reader_check(e->env, &dead) == 0 && dead > 0;
}

/* Rewrites the sequence record as it is: a change that commits nothing
 * new. */
static int
touch_seq(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)ctx;
    (void)durability;
    pps__seq seq;
    int status = pps__layout_read_seq(e, txn, &seq);
    if (status == PPS_OK) {
        status = pps__layout_write_seq(e, txn, &seq);
    }
    return status;
}

int
pps__txn_recycle_freed(pps__env *e, int durability)
{
    /* LMDB reuses pages freed by transaction N only from transaction N + 2
     * on (readers of N - 1 may still see them). One more commit that
     * changes something makes what a prune or clear freed usable by the
     * very next send. */
    return pps__txn_run(e, durability, touch_seq, NULL,
                        "cannot make freed pages reusable");
}
