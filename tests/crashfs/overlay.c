/*
 * The overlay of unsynced writes (see overlay.h).
 *
 * Files are keyed by the backing inode, not by path, so renames and unlinks
 * of a file with unsynced data need no bookkeeping; each keeps its own
 * descriptor of the inode, which also keeps the inode number from being
 * reused while we still hold data for it.
 *
 * A page remembers which of its bytes were written, so that persisting it
 * writes exactly those bytes over the backing file: the result is the
 * page's latest version (its unwritten bytes are the synced ones), and a
 * write never drags stale bytes of its page along. Syncs never fsync the
 * backing file: the simulation is about the mount; the backing directory
 * only ever sees processes being killed.
 */
#include "overlay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t
next_rand(cfs_overlay *o)
{
    uint64_t z = (o->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t
slot_of(const cfs_file *f, uint64_t idx)
{
    return (size_t)((idx * 0x9E3779B97F4A7C15ULL) >> 17) & (f->cap - 1);
}

static cfs_page *
page_get(const cfs_file *f, uint64_t idx)
{
    if (f->cap == 0) {
        return NULL;
    }
    for (size_t i = slot_of(f, idx);; i = (i + 1) & (f->cap - 1)) {
        if (f->slots[i] == NULL) {
            return NULL;
        }
        if (f->slots[i]->idx == idx) {
            return f->slots[i];
        }
    }
}

static void
slot_put(cfs_file *f, cfs_page *p)
{
    size_t i = slot_of(f, p->idx);
    while (f->slots[i] != NULL) {
        i = (i + 1) & (f->cap - 1);
    }
    f->slots[i] = p;
    f->used++;
}

/* Rehashes into cap slots, keeping only the pages that start below
 * `below` (the others are freed). */
static int
rehash(cfs_file *f, size_t cap, off_t below)
{
    cfs_page **old = f->slots;
    size_t old_cap = f->cap;
    cfs_page **slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    f->slots = slots;
    f->cap = cap;
    f->used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        cfs_page *p = old[i];
        if (p == NULL) {
            continue;
        }
        if ((off_t)(p->idx * CFS_PAGE) >= below) {
            free(p);
        } else {
            slot_put(f, p);
        }
    }
    free(old);
    return 0;
}

static cfs_page *
page_add(cfs_file *f, uint64_t idx)
{
    if ((f->used + 1) * 2 > f->cap) {
        if (rehash(f, f->cap ? f->cap * 2 : 64, INT64_MAX) != 0) {
            return NULL;
        }
    }
    cfs_page *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        p->idx = idx;
        slot_put(f, p);
    }
    return p;
}

cfs_file *
cfs_find_ino(cfs_overlay *o, dev_t dev, ino_t ino)
{
    for (cfs_file *f = o->files; f != NULL; f = f->next) {
        if (f->dev == dev && f->ino == ino) {
            return f;
        }
    }
    return NULL;
}

cfs_file *
cfs_find(cfs_overlay *o, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return NULL;
    }
    return cfs_find_ino(o, st.st_dev, st.st_ino);
}

static cfs_file *
file_get(cfs_overlay *o, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return NULL;
    }
    cfs_file *f = cfs_find_ino(o, st.st_dev, st.st_ino);
    if (f != NULL) {
        return f;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->fd = dup(fd);
    if (f->fd < 0) {
        free(f);
        return NULL;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->next = o->files;
    o->files = f;
    return f;
}

static void
file_free(cfs_file *f)
{
    for (size_t i = 0; i < f->cap; i++) {
        free(f->slots[i]);
    }
    free(f->slots);
    close(f->fd);
    free(f);
}

static void
file_unlink(cfs_overlay *o, cfs_file *f)
{
    for (cfs_file **pp = &o->files; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    file_free(f);
}

int
cfs_write(cfs_overlay *o, int fd, const char *buf, size_t len, off_t off)
{
    cfs_file *f = file_get(o, fd);
    if (f == NULL) {
        return -ENOMEM;
    }
    size_t done = 0;
    while (done < len) {
        off_t at = off + (off_t)done;
        uint64_t idx = (uint64_t)at / CFS_PAGE;
        size_t in = (size_t)at % CFS_PAGE;
        size_t n = CFS_PAGE - in < len - done ? CFS_PAGE - in : len - done;
        cfs_page *p = page_get(f, idx);
        if (p == NULL && (p = page_add(f, idx)) == NULL) {
            return -ENOMEM;
        }
        memcpy(p->data + in, buf + done, n);
        for (size_t b = in; b < in + n; b++) {
            p->mask[b / 8] |= (unsigned char)(1u << (b % 8));
        }
        done += n;
    }
    if (off + (off_t)len > f->size) {
        f->size = off + (off_t)len;
    }
    o->stats.writes++;
    o->stats.write_bytes += len;
    return 0;
}

ssize_t
cfs_read(cfs_overlay *o, int fd, char *buf, size_t len, off_t off)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return -errno;
    }
    cfs_file *f = cfs_find_ino(o, st.st_dev, st.st_ino);
    off_t size = f != NULL ? f->size : st.st_size;
    if (off >= size) {
        return 0;
    }
    if ((off_t)len > size - off) {
        len = (size_t)(size - off);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    memset(buf + got, 0, len - got); /* past the backing file: a hole */
    if (f == NULL) {
        return (ssize_t)len;
    }
    for (off_t at = off; at < off + (off_t)len;) {
        uint64_t idx = (uint64_t)at / CFS_PAGE;
        off_t end = (off_t)(idx + 1) * CFS_PAGE;
        if (end > off + (off_t)len) {
            end = off + (off_t)len;
        }
        const cfs_page *p = page_get(f, idx);
        for (; p != NULL && at < end; at++) {
            size_t b = (size_t)at % CFS_PAGE;
            if (p->mask[b / 8] & (1u << (b % 8))) {
                buf[at - off] = (char)p->data[b];
            }
        }
        at = end;
    }
    return (ssize_t)len;
}

void
cfs_truncated(cfs_overlay *o, int fd, off_t size)
{
    cfs_file *f = cfs_find(o, fd);
    if (f == NULL) {
        return;
    }
    /* Pages past the end go; the page holding the end forgets the bytes
     * past it, so that a later extension reads zeros there. */
    (void)rehash(f, f->cap ? f->cap : 64, size);
    cfs_page *p = page_get(f, (uint64_t)size / CFS_PAGE);
    if (p != NULL) {
        for (size_t b = (size_t)size % CFS_PAGE; b < CFS_PAGE; b++) {
            p->mask[b / 8] &= (unsigned char)~(1u << (b % 8));
        }
    }
    f->size = size;
}

void
cfs_grown(cfs_overlay *o, int fd)
{
    struct stat st;
    cfs_file *f = cfs_find(o, fd);
    if (f != NULL && fstat(fd, &st) == 0 && st.st_size > f->size) {
        f->size = st.st_size;
    }
}

/* Writes the written bytes of p, run by run, over the backing file. */
static int
persist(const cfs_file *f, const cfs_page *p)
{
    size_t b = 0;
    while (b < CFS_PAGE) {
        if (!(p->mask[b / 8] & (1u << (b % 8)))) {
            b++;
            continue;
        }
        size_t e = b;
        while (e < CFS_PAGE && (p->mask[e / 8] & (1u << (e % 8)))) {
            e++;
        }
        off_t at = (off_t)(p->idx * CFS_PAGE + b);
        if (pwrite(f->fd, p->data + b, e - b, at) != (ssize_t)(e - b)) {
            return -EIO;
        }
        b = e;
    }
    return 0;
}

int
cfs_sync(cfs_overlay *o, int fd)
{
    o->stats.syncs++;
    cfs_file *f = cfs_find(o, fd);
    if (f == NULL) {
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < f->cap && rc == 0; i++) {
        if (f->slots[i] != NULL) {
            rc = persist(f, f->slots[i]);
            o->stats.synced_pages++;
        }
    }
    struct stat st;
    if (rc == 0 && fstat(f->fd, &st) == 0 && st.st_size < f->size &&
        ftruncate(f->fd, f->size) != 0) {
        rc = -errno;
    }
    if (rc == 0) {
        file_unlink(o, f);
    }
    return rc;
}

void
cfs_shutdown(cfs_overlay *o)
{
    while (o->files != NULL) {
        if (cfs_sync(o, o->files->fd) != 0) {
            file_unlink(o, o->files); /* cannot write it: give it up */
        }
    }
}

void
cfs_crash(cfs_overlay *o)
{
    for (cfs_file *f = o->files; f != NULL; f = f->next) {
        for (size_t i = 0; i < f->cap; i++) {
            if (f->slots[i] == NULL) {
                continue;
            }
            o->stats.crash_pages++;
            /* Torn writeback: each page reached the disk, or did not,
             * independently of the others and of their order. */
            bool kept = o->model == CFS_TORN &&
                        (double)(next_rand(o) >> 11) * 0x1.0p-53 < o->p;
            if (kept && persist(f, f->slots[i]) == 0) {
                o->stats.crash_kept++;
            }
        }
    }
    cfs_free(o);
    o->crashed = 1;
}

void
cfs_free(cfs_overlay *o)
{
    while (o->files != NULL) {
        cfs_file *f = o->files;
        o->files = f->next;
        file_free(f);
    }
}
