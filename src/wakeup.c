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
 * The file doubles as the mark of an initialized queue: opening a queue
 * without it is PPS_ENOTINIT, which keeps the library from opening (and, with
 * MDB_WRITEMAP, resizing) the LMDB files of some other application.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct wake_page {
    char magic[16];
    uint32_t version;
    uint32_t reserved;
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
};

struct pps__wake {
    struct wake_page *page;
};

_Static_assert(sizeof(struct wake_page) <= WAKE_SIZE, "wake page too large");

int
pps__wake_open(pps__wake **out, const char *dir, bool create, unsigned mode)
{
    char path[PATH_MAX];
    int fd = -1;
    void *map = MAP_FAILED;
    int status;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, PPS__WAKE_FILE) >=
        (int)sizeof(path)) {
        return pps__err(PPS_EINVAL, "%s: path too long", dir);
    }
    fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), mode);
    if (fd < 0) {
        if (errno == ENOENT && !create) {
            return pps__err(PPS_ENOTINIT,
                            "%s: not a persipubsub queue (no %s); run "
                            "persipubsub-ctl init",
                            dir, PPS__WAKE_FILE);
        }
        return pps__err_lmdb(errno, "cannot open wake-up file", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = pps__err_lmdb(errno, "cannot stat wake-up file", path);
        goto fail;
    }
    if (st.st_size < WAKE_SIZE) {
        if (!create) {
            status = pps__err(PPS_ENOTINIT, "%s: not a persipubsub wake-up "
                              "file (too short); run persipubsub-ctl init",
                              path);
            goto fail;
        }
        /* Written, not just sized: a store into a hole of a shared
         * mapping on a full file system would be a SIGBUS. */
        static const char zeros[WAKE_SIZE];
        off_t at = st.st_size;
        ssize_t n = pwrite(fd, zeros, (size_t)(WAKE_SIZE - at), at);
        if (n != (ssize_t)(WAKE_SIZE - at)) {
            status = n < 0 ? pps__err_lmdb(errno, "cannot write wake-up file",
                                           path)
                           : pps__err(PPS_EFULL,
                                      "%s: the file system is full", path);
            goto fail;
        }
    }
    map = mmap(NULL, WAKE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        status = pps__err_lmdb(errno, "cannot map wake-up file", path);
        goto fail;
    }
    struct wake_page *page = map;
    if (memcmp(page->magic, WAKE_MAGIC, sizeof(page->magic)) != 0) {
        static const char zero[sizeof(page->magic)];
        if (!create || memcmp(page->magic, zero, sizeof(zero)) != 0) {
            status = pps__err(PPS_ENOTINIT,
                              "%s: not a persipubsub wake-up file", path);
            goto fail;
        }
        page->version = WAKE_VERSION;
        memcpy(page->magic, WAKE_MAGIC, sizeof(page->magic));
    }
    if (page->version != WAKE_VERSION) {
        status = pps__err(PPS_EVERSION,
                          "%s: wake-up file version %u, this library knows %u",
                          path, (unsigned)page->version, WAKE_VERSION);
        goto fail;
    }
    pps__wake *w = malloc(sizeof(*w));
    if (w == NULL) {
        status = pps__err(PPS_ENOMEM, "out of memory");
        goto fail;
    }
    close(fd);
    w->page = page;
    *out = w;
    return PPS_OK;

fail:
    if (map != MAP_FAILED) {
        munmap(map, WAKE_SIZE);
    }
    close(fd);
    return status;
}

void
pps__wake_close(pps__wake *w)
{
    if (w == NULL) {
        return;
    }
    munmap(w->page, WAKE_SIZE);
    free(w);
}

uint32_t
pps__wake_seq(const pps__wake *w)
{
    return atomic_load(&w->page->seq);
}

void
pps__wake_notify(pps__wake *w)
{
    atomic_fetch_add(&w->page->seq, 1);
    if (atomic_load(&w->page->waiters) == 0) {
        return;
    }
#ifdef __linux__
    syscall(SYS_futex, &w->page->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
}

void
pps__wake_wait(pps__wake *w, uint32_t seen, int64_t deadline_ns)
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
    atomic_fetch_add(&w->page->waiters, 1);
    if (atomic_load(&w->page->seq) == seen) {
#ifdef __linux__
        struct timespec ts = {.tv_sec = until / 1000000000,
                              .tv_nsec = until % 1000000000};
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
         * Spurious returns (EINTR, EAGAIN) are fine: the caller loops. */
        syscall(SYS_futex, &w->page->seq, FUTEX_WAIT_BITSET, seen, &ts, NULL,
                FUTEX_BITSET_MATCH_ANY);
#else
        /* Portable fallback: short sleeps. */
        int64_t step = until - now < 1000000 ? until - now : 1000000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step};
        nanosleep(&ts, NULL);
#endif
    }
    atomic_fetch_sub(&w->page->waiters, 1);
}
