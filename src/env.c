/*
 * The environment registry: one MDB_env per queue directory per process.
 *
 * LMDB forbids opening the same environment twice in one process (its locks
 * are per process), so every handle on a queue shares one pps__env, found by
 * the directory's device and inode and reference-counted. The registry is
 * the library's only mutable global and is guarded by one mutex.
 *
 * Environments are opened with MDB_WRITEMAP (commits write through the
 * shared map: fewer copies, and the fastest relaxed durability) and
 * MDB_NOTLS (read transactions are not tied to threads, so a handle may move
 * between threads and keep one reusable read transaction). Durability is
 * chosen per commit by pps__txn_commit().
 *
 * After fork() a child must not touch its parent's MDB_env (LMDB's locks
 * and reader slots belong to the parent's pid). Entries of another pid are
 * skipped and never closed from the child.
 *
 * All mdb_dbi_open() calls of the library happen inside write transactions,
 * which LMDB serializes across threads and processes; that satisfies LMDB's
 * rule that handle-opening transactions must not run concurrently.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pps__env {
    pps__env *next;
    dev_t dev;
    ino_t ino;
    pid_t pid;
    unsigned refs;
    char *path;
    pps__env_view view;
    pps__wake *wake;
    /* Touched only inside write transactions; atomic for TSan's sake (see
     * pps__space). */
    _Atomic int64_t readers_checked_ns;
    pps__space space;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

/* getpid() is a system call (glibc stopped caching it): the hot paths ask
 * pps__pid(), which caches it and forgets it in a fork()ed child. */
static _Atomic pid_t cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
forget_pid(void)
{
    cached_pid = 0;
}

static void
register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

pid_t
pps__pid(void)
{
    pid_t pid = cached_pid;
    if (pid == 0) {
        pthread_once(&atfork_once, register_atfork);
        pid = getpid();
        cached_pid = pid;
    }
    return pid;
}
static pps__env *registry;

static unsigned
dir_mode(unsigned file_mode)
{
    /* Directories get the search bit wherever the files get read. */
    return file_mode | ((file_mode & 0444) >> 2);
}

/* mkdir -p: parents get the default mode, the queue directory its own. */
static int
make_dirs(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        return pps__err(PPS_EINVAL, "%s: invalid queue path", path);
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            return pps__err_lmdb(errno, "cannot create directory", buf);
        }
        *p = '/';
    }
    if (mkdir(buf, mode) != 0) {
        if (errno != EEXIST) {
            return pps__err_lmdb(errno, "cannot create queue directory", buf);
        }
    } else if (chmod(buf, mode) != 0) { /* the umask may have masked it */
        return pps__err_lmdb(errno, "cannot set mode of", buf);
    }
    return PPS_OK;
}

static int
open_internal_dbs(pps__env *e, bool create)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(e->view.env, NULL, 0, &txn);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot begin transaction", e->path);
    }
    unsigned c = create ? MDB_CREATE : 0;
    const char *name = PPS__DB_META;
    rc = mdb_dbi_open(txn, name, c, &e->view.meta);
    if (rc == 0) {
        name = PPS__DB_DATA;
        rc = mdb_dbi_open(txn, name, c | MDB_INTEGERKEY, &e->view.data);
    }
    if (rc == 0) {
        name = PPS__DB_MSG;
        rc = mdb_dbi_open(txn, name, c | MDB_INTEGERKEY, &e->view.msg);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        if (rc == MDB_NOTFOUND) {
            return pps__err(PPS_ENOTINIT,
                            "%s: queue not initialized (no database %s); run "
                            "persipubsub-ctl init",
                            e->path, name);
        }
        if (rc == MDB_INCOMPATIBLE) {
            return pps__err(PPS_ENOTINIT,
                            "%s: not a persipubsub queue (%s is not a "
                            "database of the expected kind)",
                            e->path, name);
        }
        return pps__err_lmdb(rc, "cannot open internal database", e->path);
    }
    return pps__txn_commit(e, txn, create ? PPS__SYNC : PPS__NOSYNC,
                           "cannot create internal databases");
}

/* Creates e->view.env with the queue's limits and opens it. */
static int
lmdb_open(pps__env *e, const pps__queue_cfg *q, size_t mapsize,
          unsigned flags)
{
    int rc = mdb_env_create(&e->view.env);
    if (rc != 0) {
        e->view.env = NULL;
        return pps__err_lmdb(rc, "cannot create LMDB environment", e->path);
    }
    rc = mdb_env_set_maxreaders(e->view.env, (unsigned)q->max_reader_num);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(e->view.env, (MDB_dbi)q->max_db_num);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(e->view.env, mapsize);
    }
    if (rc == 0) {
        rc = mdb_env_open(e->view.env, e->path, flags | MDB_NOTLS,
                          (mdb_mode_t)q->file_mode);
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        return pps__err(PPS_ESTORAGE,
                        "%s: data.mdb is not a valid LMDB file: %s", e->path,
                        mdb_strerror(rc));
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot open LMDB environment", e->path);
    }
    return PPS_OK;
}

/* Checks the format of an existing queue through a read-only environment
 * before anything is written to it: opening with MDB_WRITEMAP alone would
 * resize data.mdb (and so touch a queue of another format version). With
 * `create`, a queue whose init was interrupted (no internal databases or no
 * format record yet) is fine. */
static int
probe_format(pps__env *e, const pps__queue_cfg *q, size_t size, bool create)
{
    int status = lmdb_open(e, q, size, MDB_RDONLY);
    MDB_txn *txn = NULL;
    if (status == PPS_OK) {
        int dead = 0;
        mdb_reader_check(e->view.env, &dead);
        int rc = mdb_txn_begin(e->view.env, NULL, MDB_RDONLY, &txn);
        if (rc == 0) {
            rc = mdb_dbi_open(txn, PPS__DB_META, 0, &e->view.meta);
        }
        if (rc == MDB_NOTFOUND) {
            status = create ? PPS_OK
                            : pps__err(PPS_ENOTINIT,
                                       "%s: queue not initialized (no "
                                       "database %s); run persipubsub-ctl "
                                       "init",
                                       e->path, PPS__DB_META);
        } else if (rc == MDB_INCOMPATIBLE) {
            status = pps__err(PPS_ENOTINIT,
                              "%s: not a persipubsub queue (%s is not a "
                              "database of the expected kind)",
                              e->path, PPS__DB_META);
        } else if (rc != 0) {
            status = pps__err_lmdb(rc, "cannot read internal database",
                                   e->path);
        } else {
            status = pps__layout_check(e, txn);
            if (status == PPS_ENOTINIT && create) {
                pps__err_begin();
                status = PPS_OK;
            }
        }
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (e->view.env != NULL) {
        mdb_env_close(e->view.env);
        e->view.env = NULL;
    }
    return status;
}

static int
env_open(pps__env *e, const pps__queue_cfg *q, bool create)
{
    char file[PATH_MAX];
    int rc;

    /* Never hand LMDB the directory of another application: without the
     * wake-up file this is no queue of ours (see wakeup.c), and init
     * creates that file before data.mdb. */
    snprintf(file, sizeof(file), "%s/data.mdb", e->path);
    bool exists = access(file, F_OK) == 0;
    char wake[PATH_MAX];
    snprintf(wake, sizeof(wake), "%s/%s", e->path, PPS__WAKE_FILE);
    if (exists && access(wake, F_OK) != 0 && errno == ENOENT) {
        return pps__err(PPS_ENOTINIT,
                        "%s: LMDB files without %s: another application's "
                        "database, not a persipubsub queue (left untouched)",
                        e->path, PPS__WAKE_FILE);
    }
    rc = pps__wake_open(&e->wake, e->path, create && !exists, q->file_mode);
    if (rc != PPS_OK) {
        return rc;
    }
    if (!exists && !create) {
        return pps__err(PPS_ENOTINIT,
                        "%s: queue not initialized (no data.mdb); run "
                        "persipubsub-ctl init",
                        e->path);
    }
    /* An existing file is checked with plain reads, then read-only at its
     * own size, and only once it proved to be a queue this library reads
     * opened for writing, which grows it to the configured map. Its map is
     * never shrunk: other processes may map all of it. */
    size_t mapsize = (size_t)q->max_db_size_bytes;
    if (exists) {
        int64_t size = 0;
        rc = pps__datafile_check(e->path, &size);
        if (rc == PPS_OK) {
            rc = probe_format(e, q, (size_t)size, create);
        }
        if (rc != PPS_OK) {
            return rc;
        }
        if ((uint64_t)size > mapsize) {
            mapsize = (size_t)size;
        }
    }
    rc = lmdb_open(e, q, mapsize, MDB_WRITEMAP | MDB_NOSYNC);
    if (rc != PPS_OK) {
        return rc;
    }
    int dead = 0;
    rc = mdb_reader_check(e->view.env, &dead);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot clear stale readers", e->path);
    }
    if (create) {
        const char *names[] = {"data.mdb", "lock.mdb", PPS__WAKE_FILE};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(file, sizeof(file), "%s/%s", e->path, names[i]);
            if (chmod(file, q->file_mode) != 0) {
                return pps__err_lmdb(errno, "cannot set mode of", file);
            }
        }
    }
    return open_internal_dbs(e, create);
}

static void
env_free(pps__env *e)
{
    if (e->view.env != NULL) {
        mdb_env_close(e->view.env);
    }
    pps__wake_close(e->wake);
    free(e->path);
    free(e);
}

int
pps__env_acquire(pps__env **out, const pps__queue_cfg *q, bool create)
{
    struct stat st;
    pps__env *e = NULL;
    int status;
    pid_t pid = pps__pid();

    *out = NULL;
    pthread_mutex_lock(&registry_lock);
    if (create) {
        status = make_dirs(q->path, dir_mode(q->file_mode));
        if (status != PPS_OK) {
            goto fail;
        }
    }
    if (stat(q->path, &st) != 0) {
        if (errno == ENOENT) {
            status = pps__err(PPS_ENOTINIT,
                              "%s: queue directory does not exist; run "
                              "persipubsub-ctl init",
                              q->path);
        } else {
            status = pps__err_lmdb(errno, "cannot stat queue directory",
                                   q->path);
        }
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        status = pps__err(PPS_ENOTINIT, "%s: not a directory", q->path);
        goto fail;
    }
    for (pps__env **pp = &registry; *pp != NULL;) {
        pps__env *it = *pp;
        if (it->pid != pid) {
            /* Inherited through fork(): forget it without closing it. */
            *pp = it->next;
            continue;
        }
        if (it->dev == st.st_dev && it->ino == st.st_ino) {
            /* Processes may have died since this process opened the
             * environment: reclaim their reader slots on every open. */
            int dead = 0;
            mdb_reader_check(it->view.env, &dead);
            it->refs++;
            pthread_mutex_unlock(&registry_lock);
            *out = it;
            return PPS_OK;
        }
        pp = &it->next;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->path = strdup(q->path)) == NULL) {
        status = pps__err(PPS_ENOMEM, "out of memory");
        goto fail;
    }
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->pid = pid;
    e->refs = 1;
    status = env_open(e, q, create);
    if (status != PPS_OK) {
        goto fail;
    }
    e->next = registry;
    registry = e;
    pthread_mutex_unlock(&registry_lock);
    *out = e;
    return PPS_OK;

fail:
    pthread_mutex_unlock(&registry_lock);
    if (e != NULL) {
        env_free(e);
    }
    return status;
}

void
pps__env_release(pps__env *e)
{
    if (e == NULL || e->pid != pps__pid()) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    if (--e->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (pps__env **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    env_free(e);
}

const pps__env_view *
pps__env_get(const pps__env *e)
{
    return &e->view;
}

const char *
pps__env_path(const pps__env *e)
{
    return e->path;
}

void
pps__env_notify(pps__env *e)
{
    pps__wake_notify(e->wake);
}

uint32_t
pps__env_wake_seq(pps__env *e)
{
    return pps__wake_seq(e->wake);
}

void
pps__env_wait(pps__env *e, uint32_t seen, int64_t deadline_ns)
{
    pps__wake_wait(e->wake, seen, deadline_ns);
}

pps__space *
pps__env_space(pps__env *e)
{
    return &e->space;
}

bool
pps__env_reclaim_readers(pps__env *e)
{
    int dead = 0;
    return mdb_reader_check(e->view.env, &dead) == 0 && dead > 0;
}

int
pps__txn_write(pps__env *e, MDB_txn **txn)
{
    int rc = mdb_txn_begin(e->view.env, NULL, 0, txn);
    if (rc == 0) {
        /* A process killed inside a read transaction leaves its reader slot
         * behind, and the snapshot it names keeps every page freed after it
         * from being reused: the file would grow with every commit until the
         * map is full. Reclaim such slots every few milliseconds; the page
         * allocator consults the reader table when it needs pages, so this
         * transaction already profits. */
        int64_t now = pps__now_coarse_ns();
        if (now - e->readers_checked_ns >= PPS__READER_CHECK_NS) {
            e->readers_checked_ns = now;
            pps__env_reclaim_readers(e);
        }
        int status = pps__space_for_write(e, &e->space);
        if (status != PPS_OK) {
            mdb_txn_abort(*txn);
            *txn = NULL;
            return status;
        }
    }
    if (rc != 0) {
        *txn = NULL;
        if (rc == MDB_MAP_RESIZED) {
            return pps__err(PPS_ESTORAGE,
                            "%s: the queue's map was grown by another process "
                            "(init with a larger max_db_size_bytes); reopen "
                            "the handle",
                            e->path);
        }
        return pps__err_lmdb(rc, "cannot begin write transaction", e->path);
    }
    return PPS_OK;
}

int
pps__txn_commit(pps__env *e, MDB_txn *txn, int durability, const char *what)
{
    /* Sync flags are per environment in LMDB 0.9 (per-transaction flags are
     * ignored); changing them here is safe because only the thread holding
     * the write transaction commits, and LMDB serializes writers. */
    MDB_env *env = e->view.env;
    mdb_env_set_flags(env, MDB_NOSYNC | MDB_NOMETASYNC, 0);
    if (durability == PPS__NOSYNC) {
        mdb_env_set_flags(env, MDB_NOSYNC, 1);
    } else if (durability == PPS__NOMETASYNC) {
        mdb_env_set_flags(env, MDB_NOMETASYNC, 1);
    }
    int rc = mdb_txn_commit(txn);
    if (rc != 0) {
        /* mdb_txn_commit() frees the transaction even when it fails. */
        return pps__err_lmdb(rc, what, e->path);
    }
    return PPS_OK;
}

int
pps__txn_read(pps__env *e, MDB_txn **txn)
{
    int rc = mdb_txn_begin(e->view.env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_READERS_FULL) {
        /* Slots of killed processes may be what fills the table. */
        int dead = 0;
        if (mdb_reader_check(e->view.env, &dead) == 0 && dead > 0) {
            rc = mdb_txn_begin(e->view.env, NULL, MDB_RDONLY, txn);
        }
    }
    if (rc != 0) {
        *txn = NULL;
        return pps__err_lmdb(rc, "cannot begin read transaction", e->path);
    }
    return PPS_OK;
}

int
pps__txn_renew(pps__env *e, MDB_txn *txn)
{
    int rc = mdb_txn_renew(txn);
    if (rc == MDB_READERS_FULL) {
        int dead = 0;
        if (mdb_reader_check(e->view.env, &dead) == 0 && dead > 0) {
            rc = mdb_txn_renew(txn);
        }
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot begin read transaction", e->path);
    }
    return PPS_OK;
}
