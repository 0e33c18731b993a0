/*
 * Driving crashfs from a test: mount a daemon, crash it, unmount.
 */
#ifndef CRASHFS_MOUNT_H
#define CRASHFS_MOUNT_H

#include <stdint.h>
#include <sys/types.h>

/* The exit code ctest counts as "skipped". */
#define CFS_SKIP 77

typedef struct cfs_mount {
    char backing[4096];
    char mnt[4096];
    char log[4096];  /* the daemon's stderr */
    pid_t pid;       /* the daemon, 0 when not mounted */
} cfs_mount;

/* Why crashfs cannot run here (no /dev/fuse, no fusermount3), or NULL. */
const char *cfs_unavailable(void);

/* Starts the crashfs daemon `exe` over m->backing at m->mnt (both existing
 * directories) with the given model ("lose-all" or "torn"), p and seed, its
 * stderr appended to m->log, and waits until the mount is there. Returns 0,
 * or -1 with a reason in why (the daemon's log is in m->log). */
int cfs_mount_start(cfs_mount *m, const char *exe, const char *model,
                    double p, uint64_t seed, char *why, size_t why_len);

/* Crashes the mounted crashfs (see crashfs.c); returns 0 or -1. */
int cfs_mount_crash(const cfs_mount *m);

/* Reads one counter of the daemon (e.g. "crash_kept"); -1 on error. */
int64_t cfs_mount_stat(const cfs_mount *m, const char *name);

/* Unmounts (fusermount3 -u, else a lazy umount) and reaps the daemon;
 * returns 0, or -1 if the daemon did not exit cleanly. */
int cfs_mount_stop(cfs_mount *m);

#endif
