/*
 * Room in the map and on the disk.
 *
 * Two ways a queue can run out of space, and what the library does so that
 * neither becomes a crash or a stuck queue:
 *
 * The map (max_db_size_bytes). Every commit copies the pages it changes,
 * consumption included, so a map filled to its last page could not even be
 * drained. A send therefore leaves a slack at the end of the map for the
 * subscribers: when the pages past LMDB's last used page cannot hold the
 * message plus that slack, it counts the free pages (only then: the walk
 * over LMDB's free list is proportional to its length), and answers
 * PPS_EFULL rather than take the subscribers' pages.
 *
 * The disk. With MDB_WRITEMAP, data.mdb is a sparse file of the map's size
 * written through a shared mapping; a store into a hole when the file system
 * is full kills the process with SIGBUS. Every write transaction therefore
 * first allocates (fallocate()) the blocks past the last used page that it
 * may write: a send its message plus the slack, anything else a smaller
 * margin that the publishers' slack has already allocated. A file system
 * without fallocate() (EOPNOTSUPP) keeps the sparse file, as LMDB does.
 *
 * fallocate() needs _GNU_SOURCE, which CMake defines for this file alone.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define KIB 1024ull
#define MIB (1024ull * 1024)

/* What a transaction other than a send may write past the last used page,
 * and the least of it that must be there. */
#define WRITE_MARGIN (256 * KIB)
#define WRITE_MARGIN_MIN (32 * KIB)

static uint64_t
slack_of(const pps__space *sp, uint64_t map)
{
    uint64_t s = map / 32;
    if (s > MIB) {
        s = MIB;
    }
    if (s < 16 * (uint64_t)sp->psize) {
        s = 16 * (uint64_t)sp->psize;
    }
    return s;
}

/* Reads the page size, the map size and the end of the last used page. */
static void
map_usage(pps__env *e, uint64_t *used_end, uint64_t *map)
{
    pps__space *sp = &e->space;
    MDB_env *env = e->env;
    if (sp->psize == 0) {
        MDB_stat st;
        mdb_env_stat(env, &st);
        sp->psize = st.ms_psize;
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    *used_end = ((uint64_t)info.me_last_pgno + 1) * sp->psize;
    *map = info.me_mapsize;
}

/* Allocates the blocks of data.mdb up to `end`, and ahead of it (an eighth
 * more, at least 1 MiB, at most up to `cap`: growth costs one fallocate()
 * per step, not one per commit); on a full file system settles for `end`,
 * then for `min_end`, before giving up. */
static int
allocate(pps__env *e, uint64_t from, uint64_t end, uint64_t min_end,
         uint64_t cap)
{
    pps__space *sp = &e->space;
    if (sp->no_fallocate || end <= sp->allocated) {
        return PPS_OK;
    }
    int fd = -1;
    if (mdb_env_get_fd(e->env, &fd) != 0 || fd < 0) {
        return PPS_OK;
    }
    if (from > sp->allocated) {
        from = sp->allocated; /* this process knows nothing past there */
    }
    uint64_t ahead = end / 8 > MIB ? end / 8 : MIB;
    uint64_t tries[3] = {end + ahead < cap ? end + ahead : cap, end, min_end};
    int rc = -1;
    for (int i = 0; i < 3 && rc != 0; i++) {
        if (i > 0 && (errno != ENOSPC || tries[i] >= tries[i - 1])) {
            break;
        }
        end = tries[i];
        rc = end <= sp->allocated
                 ? 0
                 : fallocate(fd, 0, (off_t)from, (off_t)(end - from));
    }
    if (rc == 0) {
        sp->allocated = end;
        return PPS_OK;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
        sp->no_fallocate = true;
        return PPS_OK;
    }
    if (errno == ENOSPC || errno == EDQUOT) {
        return pps__err(PPS_EFULL,
                        "%s/data.mdb: the file system is full: cannot "
                        "allocate %llu more bytes (free disk space, or prune "
                        "or clear the queue)",
                        e->path, (unsigned long long)(end - from));
    }
    return pps__err_rc(errno, "cannot allocate disk space for",
                         e->path);
}

int
pps__space_for_write(pps__env *e)
{
    uint64_t used_end, map;
    map_usage(e, &used_end, &map);
    uint64_t end = used_end + WRITE_MARGIN;
    uint64_t min_end = used_end + WRITE_MARGIN_MIN;
    return allocate(e, used_end, end < map ? end : map,
                    min_end < map ? min_end : map, map);
}

/* Free pages in LMDB's free list as last committed (some may still be held
 * by readers). LMDB allows no cursor on its free list inside a write
 * transaction, so this reads it in a read transaction of its own. */
static uint64_t
free_pages(pps__env *e)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t n = 0;
    if (mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn) != 0) {
        return 0;
    }
    if (mdb_cursor_open(txn, 0 /* FREE_DBI */, &cur) == 0) {
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            size_t count;
            if (v.mv_size >= sizeof(count)) {
                memcpy(&count, v.mv_data, sizeof(count));
                n += count;
            }
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return n;
}

/* What a send of msgs[0..n) to `targets` subscribers may add to the map:
 * *stored the pages of its records, *copies the pages its commit may copy
 * or split along the way (a few per database), a bound, not a need. */
static void
send_estimate(uint64_t psize, const pps_buf *msgs, size_t n, size_t targets,
              uint64_t *stored, uint64_t *copies)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t len = msgs[i].len;
        /* Large values go to overflow pages of their own. */
        bytes += len > psize / 4 ? (len + 16 + psize - 1) / psize * psize
                                 : len + 32;
        /* Its metadata record and one key per target subscriber. */
        bytes += 40 + 24 * (uint64_t)targets;
    }
    *stored = bytes;
    *copies = (4 + (uint64_t)targets) * 2 * psize;
}

int
pps__space_for_send(pps__env *e, const pps_buf *msgs, size_t n,
                    size_t targets)
{
    const pps__space *sp = &e->space;
    uint64_t used_end, map, stored, copies;
    map_usage(e, &used_end, &map);
    send_estimate(sp->psize, msgs, n, targets, &stored, &copies);
    uint64_t slack = slack_of(sp, map);
    uint64_t end = used_end + stored + copies + slack;
    if (end > map) {
        uint64_t reusable = free_pages(e) * sp->psize;
        if (end > map + reusable) {
            return pps__err(PPS_EFULL,
                            "%s: the map is full: %llu of %llu bytes in use "
                            "(%llu of them free for reuse); the send stores "
                            "about %llu bytes, its commit may copy up to "
                            "%llu bytes of pages, and the last %llu bytes "
                            "are kept for the subscribers to consume (raise "
                            "max_db_size_bytes, or prune or clear the queue)",
                            e->path, (unsigned long long)used_end,
                            (unsigned long long)map,
                            (unsigned long long)reusable,
                            (unsigned long long)stored,
                            (unsigned long long)copies,
                            (unsigned long long)slack);
        }
        end = map; /* it goes into reused pages */
    }
    return allocate(e, used_end, end, end, map);
}

static int
cmp_pgno(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The longest run of consecutive page numbers in LMDB's free list as last
 * committed, and how many pages it holds in all. */
static int
free_runs(pps__env *e, uint64_t *longest, uint64_t *total)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t *pg = NULL;
    size_t n = 0, cap = 0;
    int status = PPS_OK;
    *longest = 0;
    *total = 0;
    int rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = mdb_cursor_open(txn, 0 /* FREE_DBI */, &cur);
    }
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        /* A record: a count, then that many page numbers (MDB_IDL). */
        size_t count;
        if (v.mv_size < sizeof(count)) {
            continue;
        }
        memcpy(&count, v.mv_data, sizeof(count));
        if (count > v.mv_size / sizeof(count) - 1) {
            continue;
        }
        if (n + count > cap) {
            size_t c = (n + count) * 2;
            uint64_t *p = realloc(pg, c * sizeof(*p));
            if (p == NULL) {
                status = pps__err_nomem();
                goto fail;
            }
            pg = p;
            cap = c;
        }
        for (size_t i = 0; i < count; i++) {
            size_t id;
            memcpy(&id, (const char *)v.mv_data + (i + 1) * sizeof(id),
                   sizeof(id));
            pg[n++] = id;
        }
    }
    if (rc != MDB_NOTFOUND) {
        status = pps__err_rc(rc, "cannot read the free list", e->path);
        goto fail;
    }
    if (n > 0) {
        qsort(pg, n, sizeof(*pg), cmp_pgno);
    }
    uint64_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run = i > 0 && pg[i] == pg[i - 1] + 1 ? run + 1 : 1;
        if (run > *longest) {
            *longest = run;
        }
    }
    *total = n;
fail:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    free(pg);
    return status;
}

int
pps__space_explain_full(pps__env *e, const pps_buf *msgs, size_t n)
{
    const pps__space *sp = &e->space;
    uint64_t used_end, map, longest, total, largest = 0;
    map_usage(e, &used_end, &map);
    for (size_t i = 0; i < n; i++) {
        largest = msgs[i].len > largest ? msgs[i].len : largest;
    }
    pps__err_begin(); /* this says more than LMDB's MDB_MAP_FULL */
    int status = free_runs(e, &longest, &total);
    if (status != PPS_OK) {
        return status;
    }
    uint64_t psize = sp->psize;
    uint64_t slack = slack_of(sp, map);
    uint64_t tail = map > used_end + slack ? map - used_end - slack : 0;
    /* The commit that stores the message rewrites the free list's record
     * (a page number per free page) and copies a few pages more, taking
     * them from the lowest run that holds them, which may be this one. */
    uint64_t margin = 2 * ((total + 1) * sizeof(size_t) / psize + 1) + 16;
    uint64_t run = longest * psize;
    uint64_t in_all = total * psize;
    uint64_t usable = longest > margin ? (longest - margin) * psize : 0;
    uint64_t best = usable > tail ? usable : tail;
    return pps__err(PPS_EFULL,
                    "%s: the map is full for this send: its largest message "
                    "has %llu bytes and LMDB stores a large message in "
                    "consecutive pages, but the longest run of free pages "
                    "holds %llu bytes (%llu free for reuse in all) and "
                    "%llu bytes are left at the end of the map after the "
                    "subscribers' %llu: a message of up to %llu bytes fits "
                    "now (consume, prune or clear the queue, or raise "
                    "max_db_size_bytes)",
                    e->path, (unsigned long long)largest,
                    (unsigned long long)run,
                    (unsigned long long)in_all,
                    (unsigned long long)tail, (unsigned long long)slack,
                    (unsigned long long)(best > psize ? best - psize : 0));
}
