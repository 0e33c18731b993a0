/*
 * crashfs: a FUSE file system that simulates power cuts.
 *
 *   crashfs [--model lose-all|torn] [--p P] [--seed S] BACKING MOUNTPOINT
 *           [FUSE options, e.g. -f -o auto_unmount]
 *
 * It shows the directory BACKING at MOUNTPOINT. Metadata operations (create,
 * mkdir, unlink, rename, chmod, truncate, fallocate, ...) go straight to
 * BACKING. Data writes do not: they stay in memory, in a per-file overlay of
 * 4 KiB pages (overlay.c), until the file is synced (fsync, fdatasync, and
 * the FUSE_WRITE + FUSE_FSYNC requests that msync(MS_SYNC) of a shared
 * mapping produces). Reads and sizes show the overlay over the backing file.
 *
 * Control: the file MOUNTPOINT/.crashfs (not listed by readdir).
 *   - writing "crash" to it simulates the power cut: the crash model decides
 *     which unsynced pages reach BACKING, the rest is forgotten, and from
 *     then on every write is dropped and every change of metadata fails
 *     with EIO (so the dirty pages the kernel flushes at unmount never reach
 *     BACKING). The write returns once the crash is done.
 *   - reading it gives counters, one "name value" per line.
 * Unmounting without a crash is a clean shutdown: unsynced data is kept.
 * After a crash: kill the processes using the mount, unmount
 * (fusermount3 -u), and mount a new crashfs over BACKING: it shows only
 * what survived.
 *
 * Crash models:
 *   lose-all  every unsynced byte is lost (as LazyFS does).
 *   torn      each unsynced page is kept with probability P (default 0.5),
 *             independently: torn writeback, pages reaching the disk in any
 *             order. A kept page gets its latest version. Random choices
 *             come from --seed S (default 1).
 *
 * Kernel caching: no direct_io (LMDB maps files shared and writable), no
 * writeback cache (with it the kernel would hold written data and own the
 * file size; without it every write() reaches us at once, and dirty pages
 * of shared mappings reach us as writes whenever the kernel writes them
 * back: at msync, at munmap or process exit, and at unmount). Page cache
 * kept across opens (we are the only writer of BACKING) and no
 * invalidation on mtime changes (our mtimes change only at syncs). It runs
 * single-threaded (-s is always added): the overlay has no locks.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 31

#include "overlay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CONTROL "/.crashfs"

static int backing_fd = -1;
static cfs_overlay overlay;

/* The path relative to BACKING for the *at() functions. */
static const char *
rel(const char *path)
{
    while (*path == '/') {
        path++;
    }
    return *path ? path : ".";
}

static int
is_control(const char *path)
{
    return path != NULL && strcmp(path, CONTROL) == 0;
}

static int
neg_errno(int rc)
{
    return rc < 0 ? -errno : 0;
}

static void *
cfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    cfg->use_ino = 1;
    cfg->hard_remove = 1; /* a real unlink, not a rename to .fuse_hidden */
    cfg->nullpath_ok = 1; /* every handle op works from fi->fh */
    cfg->kernel_cache = 1;
    cfg->auto_cache = 0;
    cfg->direct_io = 0;
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE |
                              FUSE_CAP_AUTO_INVAL_DATA);
    return NULL;
}

static void
cfs_destroy(void *data)
{
    (void)data;
    /* An unmount without a crash is a clean shutdown: it keeps everything
     * (the kernel has handed us the dirty pages by now). */
    if (!overlay.crashed) {
        cfs_shutdown(&overlay);
    }
    cfs_free(&overlay);
}

static int
op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (is_control(path)) {
        memset(st, 0, sizeof(*st));
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_uid = getuid();
        st->st_gid = getgid();
        return 0;
    }
    int rc = fi != NULL ? fstat((int)fi->fh, st)
                        : fstatat(backing_fd, rel(path), st,
                                  AT_SYMLINK_NOFOLLOW);
    if (rc != 0) {
        return -errno;
    }
    cfs_file *f = S_ISREG(st->st_mode)
                      ? cfs_find_ino(&overlay, st->st_dev, st->st_ino)
                      : NULL;
    if (f != NULL) {
        st->st_size = f->size;
    }
    return 0;
}

static int
op_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(backing_fd, rel(path), buf, size - 1);
    if (n < 0) {
        return -errno;
    }
    buf[n] = '\0';
    return 0;
}

static int
op_mknod(const char *path, mode_t mode, dev_t dev)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(mknodat(backing_fd, rel(path), mode, dev));
}

static int
op_mkdir(const char *path, mode_t mode)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(mkdirat(backing_fd, rel(path), mode));
}

static int
op_unlink(const char *path)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(unlinkat(backing_fd, rel(path), 0));
}

static int
op_rmdir(const char *path)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(unlinkat(backing_fd, rel(path), AT_REMOVEDIR));
}

static int
op_symlink(const char *target, const char *path)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(symlinkat(target, backing_fd, rel(path)));
}

static int
op_rename(const char *from, const char *to, unsigned int flags)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(
        renameat2(backing_fd, rel(from), backing_fd, rel(to), flags));
}

static int
op_link(const char *from, const char *to)
{
    if (overlay.crashed) {
        return -EIO;
    }
    return neg_errno(linkat(backing_fd, rel(from), backing_fd, rel(to), 0));
}

static int
op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (overlay.crashed) {
        return -EIO;
    }
    if (fi != NULL) {
        return neg_errno(fchmod((int)fi->fh, mode));
    }
    return neg_errno(fchmodat(backing_fd, rel(path), mode, 0));
}

static int
op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (overlay.crashed) {
        return -EIO;
    }
    if (fi != NULL) {
        return neg_errno(fchown((int)fi->fh, uid, gid));
    }
    return neg_errno(
        fchownat(backing_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int
op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (overlay.crashed) {
        return -EIO;
    }
    int fd = fi != NULL ? (int)fi->fh
                        : openat(backing_fd, rel(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = neg_errno(ftruncate(fd, size));
    if (rc == 0) {
        cfs_truncated(&overlay, fd, size);
    }
    if (fi == NULL) {
        close(fd);
    }
    return rc;
}

static int
op_utimens(const char *path, const struct timespec tv[2],
           struct fuse_file_info *fi)
{
    if (overlay.crashed) {
        return -EIO;
    }
    if (fi != NULL) {
        return neg_errno(futimens((int)fi->fh, tv));
    }
    return neg_errno(
        utimensat(backing_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

/* Opens the backing file read-write whatever was asked (a handle may serve
 * reads of pages for a writer), never with O_APPEND: the kernel sends the
 * offset of every write. */
static int
open_backing(const char *path, struct fuse_file_info *fi, int extra,
             mode_t mode)
{
    int flags = fi->flags & ~(O_APPEND | O_ACCMODE | O_NOCTTY | O_DIRECT);
    if ((fi->flags & O_TRUNC) && overlay.crashed) {
        return -EIO;
    }
    int fd = openat(backing_fd, rel(path), flags | O_RDWR | O_CLOEXEC | extra,
                    mode);
    if (fd < 0 && errno == EACCES && (fi->flags & O_ACCMODE) == O_RDONLY) {
        fd = openat(backing_fd, rel(path),
                    (flags & ~O_TRUNC) | O_RDONLY | O_CLOEXEC, mode);
    }
    if (fd < 0) {
        return -errno;
    }
    if (fi->flags & O_TRUNC) {
        cfs_truncated(&overlay, fd, 0);
    }
    fi->fh = (uint64_t)fd;
    fi->keep_cache = 1;
    return 0;
}

static int
op_open(const char *path, struct fuse_file_info *fi)
{
    if (is_control(path)) {
        fi->fh = UINT64_MAX;
        fi->direct_io = 1; /* reads are not bounded by its size of 0 */
        return 0;
    }
    return open_backing(path, fi, 0, 0);
}

static int
op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (overlay.crashed || is_control(path)) {
        return -EIO;
    }
    return open_backing(path, fi, O_CREAT, mode);
}

static int
op_read(const char *path, char *buf, size_t size, off_t off,
        struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == UINT64_MAX) {
        const cfs_stats *s = &overlay.stats;
        char text[512];
        int n = snprintf(text, sizeof(text),
                         "crashed %d\nwrites %" PRIu64 "\nwrite_bytes %" PRIu64
                         "\nsyncs %" PRIu64 "\nsynced_pages %" PRIu64
                         "\ncrash_pages %" PRIu64 "\ncrash_kept %" PRIu64
                         "\ndropped_writes %" PRIu64 "\n",
                         overlay.crashed, s->writes, s->write_bytes, s->syncs,
                         s->synced_pages, s->crash_pages, s->crash_kept,
                         s->dropped_writes);
        if (off >= n) {
            return 0;
        }
        size_t len = (size_t)(n - off) < size ? (size_t)(n - off) : size;
        memcpy(buf, text + off, len);
        return (int)len;
    }
    ssize_t n = cfs_read(&overlay, (int)fi->fh, buf, size, off);
    return (int)n;
}

static int
op_write(const char *path, const char *buf, size_t size, off_t off,
         struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == UINT64_MAX) {
        if (size >= 5 && memcmp(buf, "crash", 5) == 0) {
            if (!overlay.crashed) {
                cfs_crash(&overlay);
                fprintf(stderr,
                        "crashfs: crash (%s): %" PRIu64 " unsynced pages, %"
                        PRIu64 " kept\n",
                        overlay.model == CFS_TORN ? "torn" : "lose-all",
                        overlay.stats.crash_pages, overlay.stats.crash_kept);
            }
            return (int)size;
        }
        return -EINVAL;
    }
    if (overlay.crashed) {
        overlay.stats.dropped_writes++;
        return (int)size;
    }
    int rc = cfs_write(&overlay, (int)fi->fh, buf, size, off);
    return rc < 0 ? rc : (int)size;
}

static int
op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return neg_errno(fstatvfs(backing_fd, st));
}

static int
op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh != UINT64_MAX) {
        close((int)fi->fh);
    }
    return 0;
}

static int
op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    if (fi->fh == UINT64_MAX || overlay.crashed) {
        return 0;
    }
    return cfs_sync(&overlay, (int)fi->fh);
}

static int
op_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(backing_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    return 0;
}

static int
op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
           struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        struct stat st = {.st_ino = e->d_ino, .st_mode = DTTOIF(e->d_type)};
        if (fill(buf, e->d_name, &st, 0, 0) != 0) {
            break;
        }
    }
    return 0;
}

static int
op_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int
op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    /* Metadata reached BACKING already. */
    (void)path;
    (void)datasync;
    (void)fi;
    return 0;
}

static int
op_access(const char *path, int mask)
{
    if (is_control(path)) {
        return 0;
    }
    return neg_errno(faccessat(backing_fd, rel(path), mask, 0));
}

static int
op_fallocate(const char *path, int mode, off_t off, off_t len,
             struct fuse_file_info *fi)
{
    (void)path;
    if (overlay.crashed) {
        return -EIO;
    }
    if ((mode & ~FALLOC_FL_KEEP_SIZE) != 0) {
        return -EOPNOTSUPP; /* would change data under the overlay */
    }
    if (fallocate((int)fi->fh, mode, off, len) != 0) {
        return -errno;
    }
    cfs_grown(&overlay, (int)fi->fh);
    return 0;
}

static const struct fuse_operations ops = {
    .init = cfs_init,
    .destroy = cfs_destroy,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .utimens = op_utimens,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .statfs = op_statfs,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .access = op_access,
    .fallocate = op_fallocate,
};

static int
usage(void)
{
    fprintf(stderr, "usage: crashfs [--model lose-all|torn] [--p P] "
                    "[--seed S] BACKING MOUNTPOINT [FUSE options]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    char **fargv = calloc((size_t)argc + 2, sizeof(*fargv));
    int fargc = 0;
    const char *backing = NULL;
    if (fargv == NULL) {
        return 1;
    }
    overlay.model = CFS_LOSE_ALL;
    overlay.p = 0.5;
    overlay.rng = 1;
    fargv[fargc++] = argv[0];
    fargv[fargc++] = "-s";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 && v != NULL) {
            if (strcmp(v, "lose-all") == 0) {
                overlay.model = CFS_LOSE_ALL;
            } else if (strcmp(v, "torn") == 0) {
                overlay.model = CFS_TORN;
            } else {
                free(fargv);
                return usage();
            }
            i++;
        } else if (strcmp(a, "--p") == 0 && v != NULL) {
            overlay.p = strtod(v, NULL);
            i++;
        } else if (strcmp(a, "--seed") == 0 && v != NULL) {
            overlay.rng = strtoull(v, NULL, 0);
            i++;
        } else if (a[0] != '-' && backing == NULL) {
            backing = a;
        } else {
            fargv[fargc++] = argv[i];
        }
    }
    if (backing == NULL || overlay.p < 0 || overlay.p > 1) {
        free(fargv);
        return usage();
    }
    backing_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (backing_fd < 0) {
        fprintf(stderr, "crashfs: %s: %s\n", backing, strerror(errno));
        free(fargv);
        return 1;
    }
    int rc = fuse_main(fargc, fargv, &ops, NULL);
    close(backing_fd);
    free(fargv);
    return rc;
}
