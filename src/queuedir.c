/*
 * The queue directory: creating it, telling a queue's directory from
 * whatever else may stand at its path, and flushing it.
 *
 * A queue is one directory holding data.mdb and lock.mdb (LMDB's) and
 * pps.wake (wakeup.c). Its mode follows the configured file mode: the
 * directory gets the search bit wherever the files get read.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned
dir_mode(unsigned file_mode)
{
    return file_mode | ((file_mode & 0444) >> 2);
}

int
pps__qdir_create(const char *path, unsigned file_mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        return pps__err(PPS_EINVAL, "%.64s...: queue path of %zu bytes (at "
                        "most %d)", path, len, PATH_MAX - 1);
    }
    memcpy(buf, path, len + 1);
    /* Parents get the default mode, the queue directory its own. */
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
    unsigned mode = dir_mode(file_mode);
    if (mkdir(buf, mode) != 0) {
        if (errno != EEXIST) {
            return pps__err_rc(errno, "cannot create queue directory", buf);
        }
        return PPS_OK;
    }
    if (chmod(buf, mode) != 0) { /* the umask may have masked it */
        return pps__err_rc(errno, "cannot set mode of", buf);
    }
    /* The new directory's entry must survive a power cut too. */
    char *slash = strrchr(buf, '/');
    if (slash == NULL) {
        return pps__qdir_sync(".");
    }
    *slash = '\0';
    return pps__qdir_sync(slash == buf ? "/" : buf);
}

int
pps__qdir_stat(const char *path, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            return pps__err_notinit(path, "queue directory does not exist");
        }
        return pps__err_rc(errno, "cannot stat queue directory", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        return pps__err_foreign(path, "not a directory");
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return PPS_OK;
}

bool
pps__qdir_has(const char *path, const char *name)
{
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/%s", path, name);
    return access(file, F_OK) == 0 || errno != ENOENT;
}

int
pps__qdir_chmod_files(const char *path, unsigned file_mode)
{
    static const char *const names[] = {"data.mdb", "lock.mdb",
                                        PPS__WAKE_FILE};
    char file[PATH_MAX];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(file, sizeof(file), "%s/%s", path, names[i]);
        if (chmod(file, file_mode) != 0) {
            return pps__err_rc(errno, "cannot set mode of", file);
        }
    }
    return PPS_OK;
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
