/*
 * The queue directory: creating it, telling a queue's directory from
 * whatever else may stand at its path, and opening its files safely.
 *
 * A queue is one directory holding data.mdb and lock.mdb (LMDB's) and
 * pps.wake (wakeup.c). Whoever can write into the directory can replace
 * its files, for instance with a symbolic link to a file of the user who
 * runs persipubsub-ctl next (root, say), which LMDB would then truncate
 * and overwrite. So:
 *
 * - the directory is opened once, without following a symbolic link at
 *   its own name, and every file in it is opened relative to that
 *   descriptor with O_NOFOLLOW, and must be a regular file;
 * - the directory and its files must belong to the caller or root, or,
 *   where the queue's mode shares it with a group, to a group the caller
 *   is in; a directory writable by others is refused;
 * - a directory writable by its group gets the sticky bit, so that a
 *   group member cannot rename or remove files it does not own;
 * - the files LMDB opens by name are created and checked here first, and
 *   LMDB is handed /proc/self/fd/N, the directory already opened.
 *
 * The directory's mode follows the configured file mode (the search bit
 * wherever the files get read), keeping a set-group-ID bit it inherited.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LMDB's lock file: a header and one 64-byte slot per reader (lmdb.h's
 * MDB_txninfo and MDB_reader on 64-bit Linux; more is harmless: LMDB then
 * has slots to spare). */
#define LOCK_HEADER 192
#define LOCK_SLOT 64

static unsigned
dir_mode(unsigned file_mode)
{
    unsigned mode = file_mode | ((file_mode & 0444) >> 2);
    return (mode & 0020) ? mode | S_ISVTX : mode;
}

static bool
in_group(gid_t gid)
{
    if (gid == getegid()) {
        return true;
    }
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++) {
        if (groups[i] == gid) {
            return true;
        }
    }
    return false;
}

/* May the caller trust st, a file or directory of the queue at `path`? */
static int
check_owner(const struct stat *st, unsigned file_mode, const char *path)
{
    uid_t me = geteuid();
    if (st->st_uid != me && st->st_uid != 0 &&
        !((file_mode & 0060) != 0 && in_group(st->st_gid))) {
        char what[160];
        snprintf(what, sizeof(what),
                 "owned by uid %u, neither you (uid %u) nor root, and the "
                 "queue's mode shares it with no group of yours",
                 (unsigned)st->st_uid, (unsigned)me);
        return pps__err_foreign(path, what);
    }
    return PPS_OK;
}

/* mkdir -p: parents get the default mode, the queue directory its own. */
static int
make_dirs(const char *path, unsigned file_mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        return pps__err(PPS_EINVAL, "%.64s...: queue path of %zu bytes (at "
                        "most %d)", path, len, PATH_MAX - 1);
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            return pps__err_rc(errno, "cannot create directory", buf);
        }
        *p = '/';
    }
    if (mkdir(buf, dir_mode(file_mode) & 0777) != 0) {
        return errno == EEXIST
                   ? PPS_OK
                   : pps__err_rc(errno, "cannot create queue directory", buf);
    }
    /* The new directory's entry must survive a power cut too. */
    char *slash = strrchr(buf, '/');
    if (slash == NULL) {
        return pps__qdir_sync(".");
    }
    *slash = '\0';
    return pps__qdir_sync(slash == buf ? "/" : buf);
}

/* Gives a directory the caller owns its mode: the umask may have masked
 * it, and chmod() would drop an inherited set-group-ID bit. */
static int
set_dir_mode(int fd, const struct stat *st, unsigned file_mode,
             const char *path)
{
    mode_t want = (mode_t)dir_mode(file_mode) | (st->st_mode & S_ISGID);
    if ((st->st_mode & 07777) == want || st->st_uid != geteuid()) {
        return PPS_OK;
    }
    if (fchmod(fd, want) != 0) {
        return pps__err_rc(errno, "cannot set mode of", path);
    }
    return PPS_OK;
}

int
pps__qdir_open(const pps__queue_cfg *q, bool create, int *dirfd, dev_t *dev,
               ino_t *ino)
{
    struct stat st;
    int status = PPS_OK;
    *dirfd = -1;
    if (create) {
        status = make_dirs(q->path, q->file_mode);
        if (status != PPS_OK) {
            return status;
        }
    }
    int fd = open(q->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) {
            return pps__err_notinit(q->path, "queue directory does not "
                                             "exist");
        }
        if (err == ELOOP) {
            return pps__err_foreign(q->path, "a symbolic link: name the "
                                             "queue's real directory");
        }
        if (err == ENOTDIR) {
            return pps__err_foreign(q->path, "not a directory");
        }
        return pps__err_rc(err, "cannot open queue directory", q->path);
    }
    if (fstat(fd, &st) != 0) {
        status = pps__err_rc(errno, "cannot stat queue directory", q->path);
        goto fail;
    }
    status = check_owner(&st, q->file_mode, q->path);
    if (status == PPS_OK && (st.st_mode & S_IWOTH) != 0) {
        status = pps__err_foreign(q->path, "writable by others: anyone "
                                           "could replace its files");
    }
    if (status == PPS_OK && create) {
        status = set_dir_mode(fd, &st, q->file_mode, q->path);
        if (status == PPS_OK && fstat(fd, &st) != 0) {
            status = pps__err_rc(errno, "cannot stat", q->path);
        }
    }
    if (status == PPS_OK && (st.st_mode & S_IWGRP) != 0 &&
        (st.st_mode & S_ISVTX) == 0) {
        status = pps__err_foreign(q->path, "writable by its group without "
                                           "the sticky bit: a group member "
                                           "could replace its files (init, "
                                           "run by its owner, sets it)");
    }
    if (status != PPS_OK) {
        goto fail;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    *dirfd = fd;
    return PPS_OK;

fail:
    close(fd);
    return status;
}

bool
pps__qdir_has(int dirfd, const char *name)
{
    return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
           errno != ENOENT;
}

int
pps__qdir_open_file(int dirfd, const char *dir, const char *name, int flags,
                    bool create, unsigned file_mode, int *out)
{
    char path[PATH_MAX];
    struct stat st;
    int status;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    flags |= O_NOFOLLOW | O_CLOEXEC;
    /* Created here, or there before: only a file created here gets its
     * mode now (pps__qdir_apply_modes() gives the others theirs once the
     * queue proved to be one). */
    bool created = false;
    int fd = create ? openat(dirfd, name, flags | O_CREAT | O_EXCL,
                             (mode_t)file_mode)
                    : -1;
    if (fd >= 0) {
        created = true;
    } else if (!create || errno == EEXIST) {
        fd = openat(dirfd, name, flags);
    }
    *out = -1;
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP) {
            return pps__err_foreign(path, "a symbolic link");
        }
        if (err == EISDIR) {
            return pps__err_foreign(path, "not a regular file");
        }
        return err == ENOENT && !create
                   ? pps__err_notinit(path, "missing")
                   : pps__err_rc(err, "cannot open", path);
    }
    if (fstat(fd, &st) != 0) {
        status = pps__err_rc(errno, "cannot stat", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        status = pps__err_foreign(path, "not a regular file");
        goto fail;
    }
    status = check_owner(&st, file_mode, path);
    if (status == PPS_OK && created && (st.st_mode & 07777) != file_mode &&
        fchmod(fd, file_mode) != 0) { /* the umask may have masked it */
        status = pps__err_rc(errno, "cannot set mode of", path);
    }
    if (status != PPS_OK) {
        goto fail;
    }
    *out = fd;
    return PPS_OK;

fail:
    close(fd);
    return status;
}

unsigned
pps__qdir_lock_mode(unsigned file_mode)
{
    return file_mode | ((file_mode & 0040) >> 1);
}

bool
pps__qdir_writable(int dirfd)
{
    return faccessat(dirfd, "data.mdb", W_OK, AT_EACCESS) == 0 ||
           errno != EACCES;
}

int
pps__qdir_prepare_lmdb(int dirfd, const char *dir, const pps__queue_cfg *q,
                       bool create, bool read_only)
{
    int fd = -1;
    int status = pps__qdir_open_file(dirfd, dir, "data.mdb",
                                     read_only ? O_RDONLY : O_RDWR, create,
                                     q->file_mode, &fd);
    if (status == PPS_ENOTINIT) {
        return status;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (status == PPS_OK) {
        /* LMDB creates it too, when missing. */
        status = pps__qdir_open_file(dirfd, dir, "lock.mdb", O_RDWR,
                                     !read_only,
                                     pps__qdir_lock_mode(q->file_mode), &fd);
    }
    if (status == PPS_ESTORAGE && read_only) {
        char cause[256];
        snprintf(cause, sizeof(cause), "%s", pps_last_error());
        pps__err_begin(); /* this detail says more than the open's */
        return pps__err(PPS_ESTORAGE,
                        "%s: a reader of a queue needs write access to "
                        "LMDB's lock file (init gives it to the group where "
                        "the queue's mode lets the group read)",
                        cause);
    }
    if (status != PPS_OK) {
        return status;
    }
    /* LMDB maps the lock file and writes its reader table through the map:
     * a hole on a full file system would be a SIGBUS there. */
    off_t size = (off_t)(LOCK_HEADER + q->max_reader_num * LOCK_SLOT);
    size = (size + 4095) / 4096 * 4096;
    int rc = posix_fallocate(fd, 0, size);
    close(fd);
    if (rc == ENOSPC || rc == EDQUOT) {
        return pps__err(PPS_EFULL,
                        "%s/lock.mdb: the file system is full: cannot "
                        "allocate its %lld bytes",
                        dir, (long long)size);
    }
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
        return pps__err_rc(rc, "cannot allocate", dir);
    }
    return PPS_OK;
}

int
pps__qdir_apply_modes(int dirfd, const char *dir, unsigned file_mode)
{
    static const char *const names[] = {"data.mdb", "lock.mdb",
                                        PPS__WAKE_FILE};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int fd;
        struct stat st;
        unsigned mode =
            i == 1 ? pps__qdir_lock_mode(file_mode) : file_mode;
        int status = pps__qdir_open_file(dirfd, dir, names[i], O_RDONLY,
                                         false, file_mode, &fd);
        if (status == PPS_OK && fstat(fd, &st) == 0 &&
            st.st_uid == geteuid() && (st.st_mode & 07777) != mode &&
            fchmod(fd, mode) != 0) {
            status = pps__err_rc(errno, "cannot set mode of", dir);
        }
        if (fd >= 0) {
            close(fd);
        }
        if (status != PPS_OK) {
            return status;
        }
    }
    return PPS_OK;
}

void
pps__qdir_lmdb_path(int dirfd, const char *dir, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "/proc/self/fd/%d", dirfd);
    struct stat a, b;
    if (stat(out, &a) != 0 || fstat(dirfd, &b) != 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        snprintf(out, PATH_MAX, "%s", dir); /* no /proc: the path, then */
    }
}

int
pps__qdir_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return pps__err_rc(errno, "cannot open directory to flush it", path);
    }
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot flush directory", path);
    }
    return PPS_OK;
}
