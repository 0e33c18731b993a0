/*
 * The unsynced state of crashfs: per backing file, the pages written since
 * the file was last synced, each with a mask of the bytes written, and the
 * file's logical size. A sync writes the pages to the backing file; a crash
 * writes what its model lets survive and forgets the rest.
 */
#ifndef CRASHFS_OVERLAY_H
#define CRASHFS_OVERLAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CFS_PAGE 4096

typedef struct cfs_page {
    uint64_t idx; /* page number: offset / CFS_PAGE */
    unsigned char data[CFS_PAGE];
    unsigned char mask[CFS_PAGE / 8]; /* bit set: byte written */
} cfs_page;

typedef struct cfs_file {
    dev_t dev;
    ino_t ino;
    int fd;         /* our own descriptor of the backing inode */
    off_t size;     /* logical size: backing size or more */
    cfs_page **slots; /* open addressing on idx; NULL: free */
    size_t cap;     /* power of two, 0 before the first page */
    size_t used;
    struct cfs_file *next;
} cfs_file;

typedef struct cfs_stats {
    uint64_t writes;         /* write requests that reached the overlay */
    uint64_t write_bytes;
    uint64_t syncs;          /* fsync/fdatasync requests */
    uint64_t synced_pages;   /* pages written to backing files by syncs */
    uint64_t crash_pages;    /* unsynced pages at the crash */
    uint64_t crash_kept;     /* of those, written to the backing files */
    uint64_t dropped_writes; /* writes after the crash */
} cfs_stats;

enum cfs_model { CFS_LOSE_ALL, CFS_TORN };

typedef struct cfs_overlay {
    cfs_file *files;
    enum cfs_model model;
    double p;      /* torn: probability that an unsynced page survives */
    uint64_t rng;  /* splitmix64 state, from --seed */
    int crashed;
    cfs_stats stats;
} cfs_overlay;

/* The file of backing descriptor fd, or NULL if it has no unsynced data. */
cfs_file *cfs_find(cfs_overlay *o, int fd);

/* Like cfs_find() by inode number. */
cfs_file *cfs_find_ino(cfs_overlay *o, dev_t dev, ino_t ino);

/* Records a write; returns 0 or -errno. */
int cfs_write(cfs_overlay *o, int fd, const char *buf, size_t len, off_t off);

/* Reads the merged view; returns bytes read or -errno. */
ssize_t cfs_read(cfs_overlay *o, int fd, char *buf, size_t len, off_t off);

/* After the backing file (descriptor fd) was truncated to size. */
void cfs_truncated(cfs_overlay *o, int fd, off_t size);

/* After the backing file grew (fallocate) to at least size. */
void cfs_grown(cfs_overlay *o, int fd);

/* Writes the file's pages to the backing file; returns 0 or -errno. */
int cfs_sync(cfs_overlay *o, int fd);

/* Applies the crash model to every file and forgets all unsynced data. */
void cfs_crash(cfs_overlay *o);

/* A clean shutdown: writes every file's pages to the backing files. */
void cfs_shutdown(cfs_overlay *o);

/* Frees everything (unsynced data is lost, as at a crash). */
void cfs_free(cfs_overlay *o);

#endif
