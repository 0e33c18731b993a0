/*
 * Cross-process wake-up: a small shared file in the queue directory.
 *
 * The file holds a 32-bit sequence word that publishers bump after every
 * commit that adds messages, and a count of waiting receivers. A receiver
 * reads the word, looks for a message, and if there is none sleeps in the
 * kernel (a futex on the shared mapping) until the word changes. Reading the
 * word before looking means a commit between the look and the sleep makes the
 * futex call return at once: no wake-up is missed. Publishers make the wake
 * system call only when the waiter count is non-zero, so nobody pays for it
 * when no one waits. The count is only a hint: a receiver killed while
 * waiting leaves it too high, which costs publishers a cheap system call and
 * nothing else.
 *
 * The file doubles as the mark of a queue: LMDB files without it are
 * another application's (PPS_EFOREIGN), which keeps the library from
 * opening (and, with MDB_WRITEMAP, resizing) them. It is created, written
 * and flushed with its directory before data.mdb exists; a file that an
 * interrupted init or a power cut left empty or zero-filled holds nothing
 * worth keeping and is rewritten by init.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define WAKE_MAGIC "persipubsub-wake"
#define WAKE_VERSION 1u
#define WAKE_SIZE 4096

/* The page, version 1 (docs/format.rst). The fields after `waiters` were
 * added later in what every version-1 file holds as zeros, which mean
 * "none": readers that do not know them lose nothing by ignoring them. */
struct wake_page {
    char magic[16];
    uint32_t version;
    uint32_t reserved;
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    /* The boot id of the last boot in which a commit skipped its flushes
     * (MDB_NOSYNC), written and flushed before that commit; "" if none. */
    char unsynced_boot[PPS__BOOT_ID_SIZE];
    /* Consumptions handed to the next writer (handoff.c): bumped after a
     * commit applied some, and how many wait for that. */
    _Atomic uint32_t applied_seq;
    _Atomic uint32_t applied_waiters;
    struct wake_slot {
        _Atomic uint64_t tag;     /* the subscriber's (pps__wake_tag()) */
        _Atomic uint64_t boot;    /* the boot it was posted in (hash) */
        _Atomic uint64_t from;    /* consumed the pending ids from this */
        _Atomic uint64_t through; /* through this one, */
        _Atomic uint64_t nonce;   /* in the posting so numbered (0: none) */
        _Atomic uint64_t applied; /* the nonce a commit applied last */
    } slots[PPS__WAKE_SLOTS];
    /* When a publisher last woke receivers, and how long after the send
     * before (CLOCK_MONOTONIC ns): whether a next send is near. */
    _Atomic int64_t last_send_ns;
    _Atomic int64_t send_gap_ns;
};

struct pps__wake {
    struct wake_page *page;
    int fd; /* kept open for its shared lock: "this process uses it" */
    _Atomic uint32_t own_seq; /* the sequence word after this process's
                                 last notify */
};

_Static_assert(sizeof(struct wake_page) <= WAKE_SIZE, "wake page too large");

/* Writes a fresh page (header, zero counters) and flushes it with its
 * directory: a queue created just before a power cut must come back with
 * a wake-up file it can open. */
static int
write_fresh(int fd, int dirfd, const char *path)
{
    static _Alignas(struct wake_page) unsigned char buf[WAKE_SIZE];
    struct wake_page *page = (struct wake_page *)buf;
    memcpy(page->magic, WAKE_MAGIC, sizeof(page->magic));
    page->version = WAKE_VERSION;
    ssize_t n = pwrite(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        return pps__err_rc(errno, "cannot write wake-up file", path);
    }
    if (n != (ssize_t)sizeof(buf)) {
        return pps__err(PPS_EFULL, "%s: the file system is full", path);
    }
    if (fsync(fd) != 0) {
        return pps__err_rc(errno, "cannot flush wake-up file", path);
    }
    if (fsync(dirfd) != 0) {
        return pps__err_rc(errno, "cannot flush the directory of", path);
    }
    return PPS_OK;
}

static bool
all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Checks the file's content before it is mapped; rewrites a file that an
 * interrupted init or a power cut left empty or zero-filled if `create`. */
static int
check_content(int fd, int dirfd, const char *dir, const char *path,
              bool create)
{
    unsigned char buf[WAKE_SIZE];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        return pps__err_rc(errno, "cannot read wake-up file", path);
    }
    const struct wake_page *page = (const struct wake_page *)buf;
    if ((size_t)n >= offsetof(struct wake_page, reserved) &&
        memcmp(page->magic, WAKE_MAGIC, sizeof(page->magic)) == 0) {
        uint32_t version;
        memcpy(&version, &page->version, sizeof(version));
        if (version != WAKE_VERSION) {
            return pps__err(PPS_EVERSION,
                            "%s: wake-up file version %u, this library "
                            "knows %u",
                            path, (unsigned)version, WAKE_VERSION);
        }
        if (n == WAKE_SIZE) {
            return PPS_OK;
        }
    } else if (!all_zero(buf, (size_t)n)) {
        return pps__err_foreign(dir, PPS__WAKE_FILE " is not ours");
    }
    if (!create) {
        return pps__err_notinit(path, "wake-up file empty or short (an "
                                      "init was interrupted)");
    }
    return write_fresh(fd, dirfd, path);
}

/* pps__wake_open() and pps__wake_open_readonly(). */
static int
open_mapped(pps__wake **out, int dirfd, const char *dir, bool create,
            unsigned mode, bool read_only)
{
    char path[PATH_MAX];
    void *map = MAP_FAILED;
    int status;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, PPS__WAKE_FILE) >=
        (int)sizeof(path)) {
        return pps__err(PPS_EINVAL, "%s: path too long", dir);
    }
    if (!create && !pps__qdir_has(dirfd, PPS__WAKE_FILE)) {
        return pps__err_notinit(dir, "queue not initialized (no "
                                     PPS__WAKE_FILE ")");
    }
    int fd;
    status = pps__qdir_open_file(dirfd, dir, PPS__WAKE_FILE,
                                 read_only ? O_RDONLY : O_RDWR, create, mode,
                                 &fd);
    if (status != PPS_OK) {
        return status;
    }
    status = check_content(fd, dirfd, dir, path, create);
    if (status != PPS_OK) {
        goto fail;
    }
    map = mmap(NULL, WAKE_SIZE, PROT_READ | (read_only ? 0 : PROT_WRITE),
               MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        status = pps__err_rc(errno, "cannot map wake-up file", path);
        goto fail;
    }
    pps__wake *w = malloc(sizeof(*w));
    if (w == NULL) {
        status = pps__err_nomem();
        goto fail;
    }
    /* Exclusive locks are only ever tried (LOCK_NB), by a process closing
     * the queue; this waits at most while such a one flushes. */
    if (flock(fd, LOCK_SH) != 0) {
        free(w);
        status = pps__err_rc(errno, "cannot lock", path);
        goto fail;
    }
    w->page = map;
    w->fd = fd;
    *out = w;
    return PPS_OK;

fail:
    if (map != MAP_FAILED) {
        munmap(map, WAKE_SIZE);
    }
    close(fd);
    return status;
}

int
pps__wake_open(pps__wake **out, int dirfd, const char *dir, bool create,
               unsigned mode)
{
    return open_mapped(out, dirfd, dir, create, mode, false);
}

int
pps__wake_open_readonly(pps__wake **out, int dirfd, const char *dir,
                        unsigned mode)
{
    return open_mapped(out, dirfd, dir, false, mode, true);
}

/* Flushes the page: what it says must survive a power cut. */
static int
flush_page(pps__wake *w, const char *dir)
{
    if (msync(w->page, WAKE_SIZE, MS_SYNC) != 0) {
        return pps__err_rc(errno, "cannot flush " PPS__WAKE_FILE " in", dir);
    }
    return PPS_OK;
}

int
pps__wake_mark_unsynced(pps__wake *w, const char *dir, const char *boot_id)
{
    char *mark = w->page->unsynced_boot;
    if (boot_id[0] == '\0' || strncmp(mark, boot_id, PPS__BOOT_ID_SIZE) == 0) {
        return PPS_OK;
    }
    strncpy(mark, boot_id, PPS__BOOT_ID_SIZE - 1);
    mark[PPS__BOOT_ID_SIZE - 1] = '\0';
    return flush_page(w, dir);
}

bool
pps__wake_unsynced_before(const pps__wake *w, const char *boot_id)
{
    const char *mark = w->page->unsynced_boot;
    return mark[0] != '\0' && boot_id[0] != '\0' &&
           strncmp(mark, boot_id, PPS__BOOT_ID_SIZE) != 0;
}

int
pps__wake_forget_unsynced(pps__wake *w, const char *dir)
{
    memset(w->page->unsynced_boot, 0, PPS__BOOT_ID_SIZE);
    return flush_page(w, dir);
}

bool
pps__wake_marked(const pps__wake *w)
{
    return w->page->unsynced_boot[0] != '\0';
}

bool
pps__wake_sole_user(pps__wake *w)
{
    /* Every process with the queue open holds a shared lock on pps.wake
     * (taken at open, dropped by the kernel when it dies). */
    return flock(w->fd, LOCK_EX | LOCK_NB) == 0;
}

void
pps__wake_close(pps__wake *w)
{
    if (w == NULL) {
        return;
    }
    munmap(w->page, WAKE_SIZE);
    close(w->fd);
    free(w);
}

uint32_t
pps__wake_seq(const pps__wake *w)
{
    return atomic_load(&w->page->seq);
}

/* Wakes whoever waits on `word` (if `waiters` says anyone does). */
static void
wake_all(_Atomic uint32_t *word, _Atomic uint32_t *waiters)
{
    atomic_fetch_add(word, 1);
    if (atomic_load(waiters) == 0) {
        return;
    }
#ifdef __linux__
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
}

/* Sleeps until `word` differs from `seen`, deadline_ns passes or a
 * safety interval elapses. */
static void
wait_on(_Atomic uint32_t *word, _Atomic uint32_t *waiters, uint32_t seen,
        int64_t deadline_ns)
{
    /* Sleep at most this long per call even without a wake-up, so that a
     * publisher killed between its commit and its wake-up delays a waiting
     * receiver by at most this much. */
    const int64_t max_sleep_ns = 1000000000;
    int64_t now = pps__now_monotonic_ns();
    int64_t until = now + max_sleep_ns;
    if (deadline_ns >= 0 && deadline_ns < until) {
        until = deadline_ns;
    }
    if (until <= now) {
        return;
    }
    atomic_fetch_add(waiters, 1);
    if (atomic_load(word) == seen) {
#ifdef __linux__
        struct timespec ts = {.tv_sec = until / 1000000000,
                              .tv_nsec = until % 1000000000};
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
         * Spurious returns (EINTR, EAGAIN) are fine: the caller loops. */
        syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seen, &ts, NULL,
                FUTEX_BITSET_MATCH_ANY);
#else
        /* Portable fallback: short sleeps. */
        int64_t step = until - now < 1000000 ? until - now : 1000000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step};
        nanosleep(&ts, NULL);
#endif
    }
    atomic_fetch_sub(waiters, 1);
}

void
pps__wake_notify(pps__wake *w)
{
    int64_t now = pps__now_monotonic_ns();
    atomic_store(&w->page->send_gap_ns,
                 now - atomic_exchange(&w->page->last_send_ns, now));
    atomic_store(&w->own_seq, atomic_load(&w->page->seq) + 1);
    wake_all(&w->page->seq, &w->page->waiters);
}

bool
pps__wake_sends_often(const pps__wake *w, int64_t now_ns, int64_t within_ns)
{
    int64_t last = atomic_load(&w->page->last_send_ns);
    int64_t gap = atomic_load(&w->page->send_gap_ns);
    return now_ns - last < within_ns && gap >= 0 && gap < within_ns;
}

bool
pps__wake_own(const pps__wake *w, uint32_t seq)
{
    return atomic_load(&w->own_seq) == seq;
}

void
pps__wake_wait(pps__wake *w, uint32_t seen, int64_t deadline_ns)
{
    wait_on(&w->page->seq, &w->page->waiters, seen, deadline_ns);
}

uint64_t
pps__wake_tag(const char *sub_id)
{
    /* FNV-1a; never 0, which marks a slot nobody posted in. */
    uint64_t h = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)sub_id; *p; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return h != 0 ? h : 1;
}

void
pps__wake_post(pps__wake *w, size_t slot, uint64_t tag, uint64_t boot,
               uint64_t from, uint64_t through, uint64_t nonce)
{
    struct wake_slot *s = &w->page->slots[slot];
    if (atomic_load(&s->tag) != tag || atomic_load(&s->boot) != boot) {
        /* Another subscriber's slot before (the list changed), or an
         * earlier boot's: start it over. */
        atomic_store(&s->tag, 0);
        atomic_store(&s->nonce, 0);
        atomic_store(&s->boot, boot);
        atomic_store(&s->tag, tag);
    }
    /* The nonce last: a writer that saw it reads this range or a later
     * posting's (pps__wake_posted()). */
    atomic_store(&s->from, from);
    atomic_store(&s->through, through);
    atomic_store(&s->nonce, nonce);
}

bool
pps__wake_posted(const pps__wake *w, size_t slot, uint64_t tag,
                 uint64_t boot, uint64_t *from, uint64_t *through,
                 uint64_t *nonce)
{
    struct wake_slot *s = &w->page->slots[slot];
    uint64_t n = atomic_load(&s->nonce);
    if (n == 0 || n == atomic_load(&s->applied) ||
        atomic_load(&s->tag) != tag || atomic_load(&s->boot) != boot) {
        return false;
    }
    *from = atomic_load(&s->from);
    *through = atomic_load(&s->through);
    *nonce = n;
    /* Still the same owner: the range is one it posted (this one or, if
     * it posted again meanwhile, the next; both consumed what it took). */
    return atomic_load(&s->tag) == tag;
}

void
pps__wake_applied(pps__wake *w, size_t slot, uint64_t tag, uint64_t nonce)
{
    /* A nonce names one posting of one handle: a writer that stores it
     * late, into a slot that changed owner meanwhile, makes nobody
     * believe that a posting of theirs was applied. */
    struct wake_slot *s = &w->page->slots[slot];
    if (atomic_load(&s->tag) == tag) {
        atomic_store(&s->applied, nonce);
    }
}

bool
pps__wake_is_applied(const pps__wake *w, size_t slot, uint64_t tag,
                     uint64_t nonce)
{
    struct wake_slot *s = &w->page->slots[slot];
    return atomic_load(&s->applied) == nonce && atomic_load(&s->tag) == tag;
}

void
pps__wake_applied_notify(pps__wake *w)
{
    wake_all(&w->page->applied_seq, &w->page->applied_waiters);
}

uint32_t
pps__wake_applied_seq(const pps__wake *w)
{
    return atomic_load(&w->page->applied_seq);
}

void
pps__wake_wait_applied(pps__wake *w, uint32_t seen, int64_t deadline_ns)
{
    wait_on(&w->page->applied_seq, &w->page->applied_waiters, seen,
            deadline_ns);
}

void
pps__wake_clear_slots(pps__wake *w)
{
    for (size_t i = 0; i < PPS__WAKE_SLOTS; i++) {
        atomic_store(&w->page->slots[i].tag, 0);
    }
}
