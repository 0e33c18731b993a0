/*
 * A look at data.mdb before LMDB opens it.
 *
 * With MDB_WRITEMAP, mdb_env_open() extends data.mdb to the map size, and
 * LMDB trusts the meta page it picks: a file cut short below the pages that
 * meta page names would be "repaired" by growing it with zeros, and then
 * read as trees of zeros. A queue must never be touched that way, so the
 * two meta pages are read here with pread() first: the file must be an
 * LMDB file and long enough for its newest committed state.
 *
 * The layout read is LMDB 0.9's (data version 1) on a 64-bit machine:
 *
 *     page header   16 bytes: pgno (8), pad (2), flags (2), lower/upper (4)
 *     meta          magic (4), version (4), address (8), mapsize (8),
 *                   free and main MDB_db (2 x 48), last_pg (8), txnid (8)
 *
 * The free database's md_pad holds the page size. Elsewhere (32-bit) the
 * check is skipped and LMDB's own validation is all there is.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define PAGE_HEADER 16
#define META_SIZE 136
#define META_MAPSIZE 16
#define META_PAGESIZE 24 /* mm_dbs[FREE_DBI].md_pad */
#define META_LAST_PG 120
#define META_TXNID 128

typedef struct meta {
    bool valid;
    bool zero; /* missing or all zeros: never written */
    uint32_t psize;
    uint64_t last_pg;
    uint64_t txnid;
} meta;

static uint32_t
u32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t
u64_at(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Reads the meta page at `offset`; false on a read error (errno set). */
static bool
read_meta(int fd, off_t offset, meta *m)
{
    unsigned char buf[PAGE_HEADER + META_SIZE];
    ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0) {
        return false;
    }
    memset(m, 0, sizeof(*m));
    m->zero = true;
    for (ssize_t i = 0; i < n; i++) {
        m->zero = m->zero && buf[i] == 0;
    }
    if ((size_t)n < sizeof(buf)) {
        return true; /* too short: not valid */
    }
    const unsigned char *mm = buf + PAGE_HEADER;
    m->valid = u32_at(mm) == LMDB_MAGIC && u32_at(mm + 4) == LMDB_DATA_VERSION;
    m->psize = u32_at(mm + META_PAGESIZE);
    m->last_pg = u64_at(mm + META_LAST_PG);
    m->txnid = u64_at(mm + META_TXNID);
    if (m->psize < 512 || m->psize > 65536 ||
        (m->psize & (m->psize - 1)) != 0) {
        m->valid = false;
    }
    return true;
}

int
pps__datafile_examine(int dirfd, const char *dir, int64_t *size)
{
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/data.mdb", dir);
    int fd = openat(dirfd, "data.mdb", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return pps__err_rc(errno, "cannot open", file);
    }
    struct stat st;
    meta m0, m1 = {0};
    bool ok = fstat(fd, &st) == 0 && read_meta(fd, 0, &m0);
    if (ok && (m0.valid || m0.zero)) {
        /* A zero first page is a never-committed file only if the second
         * one (at LMDB's page size, the system's) is zeros too. */
        off_t second = m0.valid ? (off_t)m0.psize : sysconf(_SC_PAGESIZE);
        ok = read_meta(fd, second, &m1);
        m0.zero = m0.zero && m1.zero;
    }
    int err = errno;
    close(fd);
    if (!ok) {
        return pps__err_rc(err, "cannot read", file);
    }
    *size = (int64_t)st.st_size;
    if (sizeof(size_t) != 8) {
        return PPS_OK;
    }
    if (!m0.valid && m0.zero) {
        return pps__err_notinit(file, "never committed: empty, or its meta "
                                      "pages are zeros (an init was "
                                      "interrupted)");
    }
    if (!m0.valid) {
        return pps__err(PPS_ESTORAGE,
                        "%s: not an LMDB data file of a known version (bad "
                        "first meta page); the file was left untouched",
                        file);
    }
    /* LMDB uses the meta page of the newest transaction. */
    const meta *m = m1.valid && m1.txnid > m0.txnid ? &m1 : &m0;
    uint64_t need = (m->last_pg + 1) * (uint64_t)m->psize;
    if ((uint64_t)st.st_size < need) {
        return pps__err(PPS_ESTORAGE,
                        "%s: truncated: %lld bytes, but its last committed "
                        "transaction uses %llu; the file was left untouched "
                        "(restore it from a backup)",
                        file, (long long)st.st_size, (unsigned long long)need);
    }
    return PPS_OK;
}
