/*
 * crashfs_selftest: a test built on a wrong simulator proves nothing, so
 * this checks crashfs itself against a model of what is durable.
 *
 * Each round mounts crashfs over a new directory and runs random operations
 * on a few files: pwrite (also past the end), ftruncate, fsync, fdatasync,
 * and stores through a MAP_SHARED mapping followed by msync(MS_SYNC) or by
 * a plain munmap (which hands the dirty pages to the daemon unsynced). The
 * model keeps, per file, the synced content, the current content, and every
 * version each page had since its last sync. Reads (with the page cache
 * dropped, so that they reach the daemon) must show the current content.
 * Then it crashes crashfs, writes on (those writes must vanish), remounts
 * and compares:
 *   lose-all: each file is exactly its synced state, size included;
 *   torn:     the size lies between the synced and the current size, and
 *             every 4 KiB page (zero-padded past the end) equals its synced
 *             state or one of its unsynced versions.
 * A truncate reaches the backing file at once (it is metadata), so the
 * model applies it to the synced state too.
 *
 *   crashfs_selftest [--rounds N] [--seed S]
 * Exit 0: every check passed; 1: a check failed; 77: FUSE unavailable.
 */
#define _GNU_SOURCE
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define NFILES 4
#define MAXSIZE (256 * 1024)

typedef struct version {
    size_t idx;
    unsigned char data[PAGE];
} version;

typedef struct model {
    unsigned char *synced, *cur; /* MAXSIZE each, zero past the sizes */
    size_t synced_size, cur_size;
    version *v;
    size_t nv, capv;
} model;

static uint64_t rng;
static int failures;

static uint64_t
rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t
below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static void
fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crashfs_selftest: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

static void
die(const char *what)
{
    fprintf(stderr, "crashfs_selftest: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Records the current content of every page in [from, to) as a version. */
static void
record(model *m, size_t from, size_t to)
{
    for (size_t idx = from / PAGE; idx * PAGE < to; idx++) {
        if (m->nv == m->capv) {
            m->capv = m->capv ? m->capv * 2 : 64;
            m->v = realloc(m->v, m->capv * sizeof(*m->v));
            if (m->v == NULL) {
                die("realloc");
            }
        }
        version *v = &m->v[m->nv++];
        v->idx = idx;
        memcpy(v->data, m->cur + idx * PAGE, PAGE);
    }
}

static void
synced(model *m)
{
    memcpy(m->synced, m->cur, MAXSIZE);
    m->synced_size = m->cur_size;
    m->nv = 0;
}

/* A truncate is metadata: it reaches the backing file at once. Versions of
 * the page holding the new end lose what lies past it. */
static void
truncated(model *m, size_t size)
{
    if (size < m->cur_size) {
        memset(m->cur + size, 0, m->cur_size - size);
    }
    if (size < m->synced_size) {
        memset(m->synced + size, 0, m->synced_size - size);
    }
    m->cur_size = size;
    m->synced_size = size;
    size_t kept = 0;
    for (size_t i = 0; i < m->nv; i++) {
        version *v = &m->v[i];
        if (v->idx * PAGE >= size) {
            continue;
        }
        if ((v->idx + 1) * PAGE > size) {
            memset(v->data + size % PAGE, 0, PAGE - size % PAGE);
        }
        m->v[kept++] = *v;
    }
    m->nv = kept;
}

static void
fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)rnd();
    }
}

static void
op_pwrite(int fd, model *m)
{
    size_t off = below(m->cur_size + 3 * PAGE);
    size_t len = 1 + below(3 * PAGE);
    if (off + len > MAXSIZE) {
        return;
    }
    unsigned char buf[3 * PAGE];
    fill_random(buf, len);
    if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
        die("pwrite");
    }
    memcpy(m->cur + off, buf, len);
    if (off + len > m->cur_size) {
        m->cur_size = off + len;
    }
    record(m, off, off + len);
}

static void
op_mmap(int fd, model *m)
{
    if (m->cur_size < PAGE) {
        return;
    }
    size_t len = m->cur_size;
    unsigned char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                              fd, 0);
    if (map == MAP_FAILED) {
        die("mmap");
    }
    if (memcmp(map, m->cur, len) != 0) {
        fail("a shared mapping does not show the latest writes");
    }
    for (int k = 1 + (int)below(4); k > 0; k--) {
        size_t off = below(len);
        size_t n = 1 + below(len - off < 2 * PAGE ? len - off : 2 * PAGE);
        fill_random(map + off, n);
        memcpy(m->cur + off, map + off, n);
        record(m, off, off + n);
    }
    if (below(2) == 0) {
        if (msync(map, len, MS_SYNC) != 0) {
            die("msync");
        }
        synced(m);
    }
    munmap(map, len); /* without msync: the pages reach crashfs unsynced */
}

/* Reads through crashfs itself (clean cached pages dropped) and compares
 * with the current content. */
static void
check_reads(int fd, const model *m, int file)
{
    static unsigned char buf[MAXSIZE + PAGE];
    struct stat st;
    if (fstat(fd, &st) != 0) {
        die("fstat");
    }
    if ((size_t)st.st_size != m->cur_size) {
        fail("file %d: size %lld before the crash, expected %zu", file,
             (long long)st.st_size, m->cur_size);
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n != (ssize_t)m->cur_size || memcmp(buf, m->cur, m->cur_size) != 0) {
        fail("file %d: reads before the crash do not show the latest writes",
             file);
    }
}

static bool
page_matches(const model *m, size_t idx, const unsigned char *page)
{
    if (memcmp(page, m->synced + idx * PAGE, PAGE) == 0) {
        return true;
    }
    for (size_t i = 0; i < m->nv; i++) {
        if (m->v[i].idx == idx && memcmp(page, m->v[i].data, PAGE) == 0) {
            return true;
        }
    }
    return false;
}

static void
check_after(const char *path, const model *m, bool torn, int file)
{
    static unsigned char buf[MAXSIZE + PAGE];
    memset(buf, 0, sizeof(buf));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("file %d: cannot open after the crash: %s", file, strerror(errno));
        return;
    }
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    if (n < 0 || (size_t)n > MAXSIZE) {
        fail("file %d: read after the crash: %zd", file, n);
        return;
    }
    size_t size = (size_t)n;
    if (!torn) {
        if (size != m->synced_size ||
            memcmp(buf, m->synced, m->synced_size) != 0) {
            fail("file %d: %zu bytes after the crash, not its %zu synced ones",
                 file, size, m->synced_size);
        }
        return;
    }
    if (size < m->synced_size || size > m->cur_size) {
        fail("file %d: size %zu after the crash, outside [%zu, %zu]", file,
             size, m->synced_size, m->cur_size);
    }
    for (size_t idx = 0; idx * PAGE < MAXSIZE; idx++) {
        if (!page_matches(m, idx, buf + idx * PAGE)) {
            fail("file %d: page %zu is neither synced nor a written version",
                 file, idx);
        }
    }
}

static int
round_run(const char *exe, const char *base, int r, bool torn, int64_t *kept,
          int64_t *lost)
{
    cfs_mount cm = {.pid = 0};
    char why[512], path[4200];
    snprintf(cm.backing, sizeof(cm.backing), "%s/backing%d", base, r);
    snprintf(cm.mnt, sizeof(cm.mnt), "%s/mnt", base);
    snprintf(cm.log, sizeof(cm.log), "%s/crashfs.log", base);
    if (mkdir(cm.backing, 0755) != 0) {
        die("mkdir");
    }
    /* lose-all must ignore p: give it one that would keep pages */
    double p = 0.25 + 0.25 * (double)below(3);
    if (cfs_mount_start(&cm, exe, torn ? "torn" : "lose-all", p, rnd(), why,
                        sizeof(why)) != 0) {
        fprintf(stderr, "crashfs_selftest: %s\n", why);
        return r == 0 ? CFS_SKIP : 1;
    }
    model m[NFILES];
    int fds[NFILES];
    for (int f = 0; f < NFILES; f++) {
        memset(&m[f], 0, sizeof(m[f]));
        m[f].synced = calloc(1, MAXSIZE);
        m[f].cur = calloc(1, MAXSIZE);
        snprintf(path, sizeof(path), "%s/f%d", cm.mnt, f);
        fds[f] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fds[f] < 0 || m[f].synced == NULL || m[f].cur == NULL) {
            die("open");
        }
    }
    for (int op = 0; op < 400; op++) {
        int f = (int)below(NFILES);
        size_t what = below(100);
        if (what < 45) {
            op_pwrite(fds[f], &m[f]);
        } else if (what < 65) {
            op_mmap(fds[f], &m[f]);
        } else if (what < 72) {
            size_t size = below(m[f].cur_size + 2 * PAGE);
            if (size > MAXSIZE) {
                size = MAXSIZE;
            }
            if (ftruncate(fds[f], (off_t)size) != 0) {
                die("ftruncate");
            }
            truncated(&m[f], size);
        } else if (what < 78) {
            if ((below(2) ? fsync(fds[f]) : fdatasync(fds[f])) != 0) {
                die("fsync");
            }
            synced(&m[f]);
        } else {
            check_reads(fds[f], &m[f], f);
        }
    }
    for (int f = 0; f < NFILES; f++) {
        check_reads(fds[f], &m[f], f);
    }
    if (cfs_mount_crash(&cm) != 0) {
        die("crash");
    }
    /* Writes after the crash, also of mapped pages at munmap and at close,
     * and metadata changes must not reach the backing directory. */
    for (int f = 0; f < NFILES; f++) {
        unsigned char junk[PAGE];
        fill_random(junk, sizeof(junk));
        if (pwrite(fds[f], junk, sizeof(junk), 0) != (ssize_t)sizeof(junk)) {
            fail("file %d: a write after the crash failed", f);
        }
        fsync(fds[f]);
        unsigned char *map = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                                  MAP_SHARED, fds[f], 0);
        if (map != MAP_FAILED) {
            memset(map, 0x5a, PAGE);
            munmap(map, PAGE);
        }
        close(fds[f]);
    }
    snprintf(path, sizeof(path), "%s/newdir", cm.mnt);
    if (mkdir(path, 0755) == 0) {
        fail("mkdir succeeded after the crash");
    }
    *kept += cfs_mount_stat(&cm, "crash_kept");
    *lost += cfs_mount_stat(&cm, "crash_pages") -
             cfs_mount_stat(&cm, "crash_kept");
    if (cfs_mount_stop(&cm) != 0) {
        fail("crashfs did not exit cleanly at unmount (see %s)", cm.log);
    }
    if (cfs_mount_start(&cm, exe, "lose-all", 0, 1, why, sizeof(why)) != 0) {
        fprintf(stderr, "crashfs_selftest: remount: %s\n", why);
        return 1;
    }
    for (int f = 0; f < NFILES; f++) {
        snprintf(path, sizeof(path), "%s/f%d", cm.mnt, f);
        check_after(path, &m[f], torn, f);
        snprintf(path, sizeof(path), "%s/f%d", cm.backing, f);
        check_after(path, &m[f], torn, f); /* the same, seen directly */
        free(m[f].synced);
        free(m[f].cur);
        free(m[f].v);
    }
    if (cfs_mount_stop(&cm) != 0) {
        fail("crashfs did not exit cleanly at the second unmount");
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int rounds = 8;
    rng = (uint64_t)time(NULL);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--seed") == 0) {
            rng = strtoull(argv[i + 1], NULL, 0);
        }
    }
    printf("crashfs_selftest: seed %" PRIu64 "\n", rng);
    const char *why = cfs_unavailable();
    if (why != NULL) {
        printf("crashfs_selftest: skipped: %s\n", why);
        return CFS_SKIP;
    }
    const char *tmp = getenv("TMPDIR");
    char base[2048];
    snprintf(base, sizeof(base), "%s/crashfs-selftest-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(base) == NULL) {
        die("mkdtemp");
    }
    char mnt[4200];
    snprintf(mnt, sizeof(mnt), "%s/mnt", base);
    if (mkdir(mnt, 0755) != 0) {
        die("mkdir");
    }
    int64_t kept = 0, lost = 0;
    for (int r = 0; r < rounds; r++) {
        int rc = round_run(CRASHFS_EXE, base, r, r % 2 == 1, &kept, &lost);
        if (rc == CFS_SKIP) {
            printf("crashfs_selftest: skipped: cannot mount (no privilege?)\n");
            return CFS_SKIP;
        }
        if (rc != 0) {
            failures++;
            break;
        }
    }
    if (kept == 0 || lost == 0) {
        fail("the torn rounds kept %" PRId64 " and lost %" PRId64
             " pages: the model was not exercised", kept, lost);
    }
    printf("crashfs_selftest: %d rounds, torn pages kept %" PRId64
           ", lost %" PRId64 ", %d failures\n", rounds, kept, lost, failures);
    if (failures == 0) {
        char cmd[4300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0) {
            fprintf(stderr, "crashfs_selftest: cannot remove %s\n", base);
        }
    } else {
        fprintf(stderr, "crashfs_selftest: kept %s\n", base);
    }
    return failures == 0 ? 0 : 1;
}
