/*
 * The open queues of the process: one MDB_env per queue directory.
 *
 * LMDB forbids opening the same environment twice in one process (its locks
 * are per process), so every handle on a queue shares one pps__env, found by
 * the directory's device and inode and reference-counted. The registry is
 * the library's only mutable global, guarded by one mutex that is never
 * held over I/O: an environment being opened stays in the registry marked
 * `opening`, and other threads wanting the same queue wait for it on a
 * condition variable while threads opening other queues go on.
 *
 * Environments are opened with MDB_WRITEMAP (commits write through the
 * shared map: fewer copies, and the fastest relaxed durability) and
 * MDB_NOTLS (read transactions are not tied to threads, so a handle may move
 * between threads and keep one reusable read transaction). Durability is
 * chosen per commit (txn.c).
 *
 * After fork() a child must not touch its parent's MDB_env (LMDB's locks
 * and reader slots belong to the parent's pid). Entries of another pid are
 * dropped from the registry and never closed from the child.
 *
 * All mdb_dbi_open() calls of the library happen inside write transactions,
 * which LMDB serializes across threads and processes; that satisfies LMDB's
 * rule that handle-opening transactions must not run concurrently.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_opened = PTHREAD_COND_INITIALIZER;
static pps__env *registry;

/* Creates e->env with the queue's limits and opens it at `path` (the
 * queue directory as pps__qdir_lmdb_path() names it). */
static int
lmdb_open(pps__env *e, const pps__queue_cfg *q, const char *path,
          size_t mapsize, unsigned flags)
{
    int rc = mdb_env_create(&e->env);
    if (rc != 0) {
        e->env = NULL;
        return pps__err_rc(rc, "cannot create LMDB environment", e->path);
    }
    rc = mdb_env_set_maxreaders(e->env, (unsigned)q->max_reader_num);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(e->env, (MDB_dbi)q->max_db_num);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(e->env, mapsize);
    }
    if (rc == 0) {
        rc = mdb_env_open(e->env, path, flags | MDB_NOTLS,
                          (mdb_mode_t)q->file_mode);
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        return pps__err(PPS_ESTORAGE,
                        "%s: data.mdb is not a valid LMDB file: %s", e->path,
                        mdb_strerror(rc));
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot open LMDB environment", e->path);
    }
    return PPS_OK;
}

/* Maps data.mdb's two meta pages, for the flushes of sync commits
 * (pps__txn_commit()). */
static int
map_metas(pps__env *e)
{
    MDB_stat st;
    mdb_filehandle_t fd;
    int rc = mdb_env_stat(e->env, &st);
    if (rc == 0) {
        rc = mdb_env_get_fd(e->env, &fd);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot map the meta pages of", e->path);
    }
    size_t len = 2 * (size_t)st.ms_psize;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        return pps__err_rc(errno, "cannot map the meta pages of", e->path);
    }
    e->metas = m;
    e->metas_len = len;
    return PPS_OK;
}

static void
lmdb_close(pps__env *e)
{
    if (e->metas != NULL) {
        munmap(e->metas, e->metas_len);
        e->metas = NULL;
    }
    if (e->env != NULL) {
        mdb_env_close(e->env);
        e->env = NULL;
    }
}

/* Checks the format of an existing queue through a read-only environment
 * at the file's own size, before anything is written to it: opening with
 * MDB_WRITEMAP alone would resize data.mdb (and so touch a queue of another
 * format version). With `create`, a queue whose init never finished (no
 * format record yet) is fine. */
static int
probe_format(pps__env *e, const pps__queue_cfg *q, const char *path,
             size_t size, bool create)
{
    MDB_txn *txn = NULL;
    int status = lmdb_open(e, q, path, size, MDB_RDONLY);
    if (status != PPS_OK) {
        goto done;
    }
    int dead = 0;
    mdb_reader_check(e->env, &dead);
    status = pps__txn_begin_read(e, &txn);
    if (status != PPS_OK) {
        goto done;
    }
    status = pps__layout_probe(txn, e->path);
    if (status == PPS_ENOTINIT && create) {
        pps__err_begin(); /* init finishes what an earlier one began */
        status = PPS_OK;
    }
done:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    lmdb_close(e);
    return status;
}

/* Opens the internal databases (a body of pps__txn_run()). */
static int
open_dbs(pps__env *e, MDB_txn *txn, void *create, int *durability)
{
    (void)durability;
    return pps__layout_open(e, txn, *(bool *)create);
}

/* Empties a data.mdb that was never committed, so that LMDB initializes
 * it as new (it refuses a file whose meta pages are zeros). */
static int
restart_datafile(int dirfd, const char *dir)
{
    int fd;
    pps__err_begin(); /* the check's detail is moot: init repairs it */
    int status = pps__qdir_open_file(dirfd, dir, "data.mdb", O_RDWR, false,
                                     0, &fd);
    if (status != PPS_OK) {
        return status;
    }
    int rc = ftruncate(fd, 0) == 0 ? 0 : errno;
    close(fd);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot start data.mdb afresh in", dir);
    }
    return PPS_OK;
}

/* The queue was written without flushes in an earlier boot and not
 * closed cleanly since (wakeup.c): an OS crash may have lost or torn those
 * commits, and LMDB, which has no checksums, cannot tell. It is PPS_ELOST;
 * init starts it afresh (*size = 0). */
static int
lost_in_crash(pps__env *e, int dirfd, bool create, int64_t *size)
{
    if (!create) {
        return pps__err(PPS_ELOST,
                        "%s: this nosync queue was written without flushes "
                        "before the operating system restarted, and not "
                        "closed cleanly: its messages may be lost or "
                        "damaged, so it is not served (run persipubsub-ctl "
                        "init to recreate it empty)",
                        e->path);
    }
    *size = 0;
    return restart_datafile(dirfd, e->path);
}

/* Everything between "this directory" and "an environment to use". */
static int
env_open(pps__env *e, const pps__queue_cfg *q, int dirfd, bool create,
         bool reader)
{
    char lmdb_path[PATH_MAX];
    /* Never hand LMDB the directory of another application: without the
     * wake-up file this is no queue of ours, and init creates and flushes
     * that file before data.mdb. */
    bool exists = pps__qdir_has(dirfd, "data.mdb");
    if (exists && !pps__qdir_has(dirfd, PPS__WAKE_FILE)) {
        return pps__err_foreign(e->path, "LMDB files without " PPS__WAKE_FILE
                                         ": another application's");
    }
    /* A caller that may read the queue but not write it (a member of a
     * group it is shared with for reading) opens it read-only. */
    bool writable = create || !exists || pps__qdir_writable(dirfd);
    e->read_only = !writable || (reader && exists);
    e->read_only_by_choice = writable && e->read_only;
    /* An existing queue's empty or zero-filled pps.wake (an interrupted
     * init) is rewritten only once data.mdb proved to be ours. */
    int status =
        e->read_only
            ? pps__wake_open_readonly(&e->wake, dirfd, e->path, q->file_mode)
            : pps__wake_open(&e->wake, dirfd, e->path, create && !exists,
                             q->file_mode);
    bool repair_wake = status == PPS_ENOTINIT && create && exists;
    if (repair_wake) {
        pps__err_begin();
        status = PPS_OK;
    }
    if (status != PPS_OK) {
        return status;
    }
    pps__boot_id(e->boot_id);
    e->boot_hash = e->boot_id[0] != '\0' ? pps__wake_tag(e->boot_id) : 0;
    if (!exists && !create) {
        return pps__err_notinit(e->path,
                                "queue not initialized (no data.mdb)");
    }
    status = pps__qdir_prepare_lmdb(dirfd, e->path, q, create, e->read_only);
    if (status != PPS_OK) {
        return status;
    }
    pps__qdir_lmdb_path(dirfd, e->path, lmdb_path);
    /* An existing file is checked with plain reads, then read-only at its
     * own size, and only once it proved to be a queue this library reads
     * opened for writing, which grows it to the configured map. Its map is
     * never shrunk: other processes may map all of it. */
    size_t mapsize = (size_t)q->max_db_size_bytes;
    bool fresh = !exists; /* data.mdb begins: its txnids start over */
    if (exists) {
        int64_t size = 0;
        status = e->wake != NULL &&
                         pps__wake_unsynced_before(e->wake, e->boot_id)
                     ? lost_in_crash(e, dirfd, create, &size)
                     : pps__datafile_examine(dirfd, e->path, &size);
        if (status == PPS_ENOTINIT && create) {
            /* Never committed: an init killed before LMDB wrote its first
             * meta pages. Nothing is lost by starting it afresh. */
            status = restart_datafile(dirfd, e->path);
            size = 0;
        }
        fresh = size == 0;
        if (status == PPS_OK && !fresh) {
            status = probe_format(e, q, lmdb_path, (size_t)size, create);
        }
        if (status == PPS_OK && repair_wake) {
            status = pps__wake_open(&e->wake, dirfd, e->path, true,
                                    q->file_mode);
        }
        if (status != PPS_OK) {
            return status;
        }
        if ((uint64_t)size > mapsize) {
            mapsize = (size_t)size;
        }
    }
    status = lmdb_open(e, q, lmdb_path, mapsize,
                       e->read_only ? MDB_RDONLY : MDB_WRITEMAP | MDB_NOSYNC);
    if (status != PPS_OK) {
        return status;
    }
    if (!e->read_only) {
        status = map_metas(e);
        if (status != PPS_OK) {
            return status;
        }
    }
    int dead = 0;
    int rc = mdb_reader_check(e->env, &dead);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot clear stale readers", e->path);
    }
    if (status == PPS_OK) {
        /* Creating the databases is flushed; opening them writes
         * nothing. */
        status = create ? pps__txn_run(e, PPS__SYNC, open_dbs, &create,
                                       "cannot create internal databases")
                        : pps__txn_open_handles(
                              e, open_dbs, &create,
                              "cannot open internal databases");
    }
    if (status == PPS_OK && create) {
        status = pps__qdir_apply_modes(dirfd, e->path, q->file_mode);
    }
    if (status == PPS_OK && create && !exists && fsync(dirfd) != 0) {
        status = pps__err_rc(errno, "cannot flush", e->path); /* data.mdb's
                                                                  entry */
    }
    if (status == PPS_OK && fresh && !e->read_only) {
        /* Ids start over: what was posted for the old file means nothing
         * (handoff.c). */
        pps__wake_clear_slots(e->wake);
    }
    if (status == PPS_OK && fresh && pps__wake_marked(e->wake)) {
        status = pps__wake_forget_unsynced(e->wake, e->path);
    }
    return status;
}

/* The last process to close a queue written without flushes in this boot
 * flushes everything and forgets the mark: a clean shutdown leaves a nosync
 * queue that the next boot trusts. */
static void
close_cleanly(pps__env *e)
{
    if (e->read_only || !pps__wake_marked(e->wake) ||
        pps__wake_unsynced_before(e->wake, e->boot_id) ||
        !pps__wake_sole_user(e->wake)) {
        return;
    }
    if (mdb_env_sync(e->env, 1) == 0) {
        pps__wake_forget_unsynced(e->wake, e->path);
    }
}

static void
env_free(pps__env *e)
{
    if (e->env != NULL && e->wake != NULL) {
        close_cleanly(e);
    }
    lmdb_close(e);
    pps__wake_close(e->wake);
    pthread_mutex_destroy(&e->dbi_lock);
    free(e->path);
    free(e);
}

/* Finds this process's entry for (dev, ino), waiting while another thread
 * opens it; drops entries inherited through fork(). Under the lock. */
static pps__env *
find_locked(dev_t dev, ino_t ino, pid_t pid, bool write)
{
    for (;;) {
        pps__env *found = NULL;
        for (pps__env **pp = &registry; *pp != NULL;) {
            pps__env *it = *pp;
            if (it->pid != pid) {
                *pp = it->next; /* the parent's: forget, never close */
                continue;
            }
            if (it->dev == dev && it->ino == ino) {
                found = it;
            }
            pp = &it->next;
        }
        /* An environment a reader opened read-only although it could
         * write (to change nothing: pps__env_acquire_reader()) is given up
         * when the reader is done; a writer waits for that. */
        if (found == NULL ||
            !(found->opening || (write && found->read_only_by_choice))) {
            return found;
        }
        pthread_cond_wait(&registry_opened, &registry_lock);
    }
}

static void
unlink_locked(pps__env *e)
{
    for (pps__env **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            return;
        }
    }
}

/* pps__env_acquire() and pps__env_acquire_reader(). */
static int
acquire(pps__env **out, const pps__queue_cfg *q, bool create, bool reader)
{
    dev_t dev;
    ino_t ino;
    int dirfd;
    pid_t pid = pps__pid();

    *out = NULL;
    int status = pps__qdir_open(q, create, &dirfd, &dev, &ino);
    if (status != PPS_OK) {
        return status;
    }
    pthread_mutex_lock(&registry_lock);
    pps__env *e = find_locked(dev, ino, pid, !reader);
    if (e != NULL) {
        e->refs++;
        pthread_mutex_unlock(&registry_lock);
        close(dirfd);
        /* Processes may have died since this one opened the queue. */
        pps__txn_reclaim_readers(e);
        *out = e;
        return PPS_OK;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->path = strdup(q->path)) == NULL) {
        pthread_mutex_unlock(&registry_lock);
        close(dirfd);
        free(e);
        return pps__err_nomem();
    }
    pthread_mutex_init(&e->dbi_lock, NULL);
    e->dev = dev;
    e->ino = ino;
    e->pid = pid;
    e->refs = 1;
    e->opening = true;
    e->next = registry;
    registry = e;
    pthread_mutex_unlock(&registry_lock);

    status = env_open(e, q, dirfd, create, reader);
    close(dirfd);

    pthread_mutex_lock(&registry_lock);
    e->opening = false;
    if (status != PPS_OK) {
        unlink_locked(e);
    }
    pthread_cond_broadcast(&registry_opened);
    pthread_mutex_unlock(&registry_lock);
    if (status != PPS_OK) {
        env_free(e);
        return status;
    }
    *out = e;
    return PPS_OK;
}

int
pps__env_acquire(pps__env **out, const pps__queue_cfg *q, bool create)
{
    return acquire(out, q, create, false);
}

int
pps__env_acquire_reader(pps__env **out, const pps__queue_cfg *q)
{
    return acquire(out, q, false, true);
}

void
pps__env_release(pps__env *e)
{
    if (e == NULL || e->pid != pps__pid()) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    bool last = --e->refs == 0;
    if (last) {
        unlink_locked(e);
        pthread_cond_broadcast(&registry_opened); /* writers may wait */
    }
    pthread_mutex_unlock(&registry_lock);
    if (last) {
        env_free(e);
    }
}
