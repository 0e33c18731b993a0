/*
 * The queue directory (src/queuedir.c): mkdir -p with the queue
 * directory's mode whatever the umask, telling a missing directory, a
 * non-directory and a symbolic link apart, opening files in it without
 * following links and with their modes, and flushing the directory.
 * (Other owners and group sharing with a second user: test_deploy.c.)
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t
mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* pps__qdir_open() of path with file mode file_mode; *fd (may be NULL:
 * closed) gets the directory. */
static int
open_q(const char *path, unsigned file_mode, bool create, int *fd)
{
    pps__queue_cfg q = {.path = pps__unconst(path), .file_mode = file_mode,
                        .max_reader_num = 126};
    dev_t dev;
    ino_t ino;
    int dirfd = -1;
    int rc = pps__qdir_open(&q, create, &dirfd, &dev, &ino);
    if (fd != NULL) {
        *fd = dirfd;
    } else if (dirfd >= 0) {
        close(dirfd);
    }
    return rc;
}

/* Creates DIR/a/b/q under `mask` and checks every mode: the parents get
 * 0777 less the umask, the queue directory the mode its files imply. */
static void
create_under_umask(mode_t mask, unsigned file_mode, mode_t want_dir)
{
    char *dir = pps_test_tmpdir();
    char *q = pps_test_path_in(dir, "a/b/q");
    mode_t old = umask(mask);
    int rc = open_q(q, file_mode, true, NULL);
    umask(old);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    char *a = pps_test_path_in(dir, "a");
    char *ab = pps_test_path_in(dir, "a/b");
    cr_assert_eq(mode_of(a), 0777 & ~mask, "a: %o under umask %03o",
                 (unsigned)mode_of(a), (unsigned)mask);
    cr_assert_eq(mode_of(ab), 0777 & ~mask);
    cr_assert_eq(mode_of(q), want_dir, "queue directory: %o, expected %o "
                 "(file mode %o, umask %03o)",
                 (unsigned)mode_of(q), (unsigned)want_dir, file_mode,
                 (unsigned)mask);

    /* Existing and owned by the caller: init gives it its mode again. */
    cr_assert_eq(chmod(q, 0700), 0);
    cr_assert_eq(open_q(q, file_mode, true, NULL), PPS_OK);
    cr_assert_eq(mode_of(q), want_dir);
    /* An open without create changes nothing. */
    cr_assert_eq(chmod(q, 0700), 0);
    cr_assert_eq(open_q(q, file_mode, false, NULL), PPS_OK);
    cr_assert_eq(mode_of(q), 0700);
    free(a);
    free(ab);
    free(q);
    pps_test_cleanup(dir);
}

Test(queuedir, create_owner_only_under_umask_022, .timeout = 30)
{
    create_under_umask(022, 0600, 0700);
}

Test(queuedir, create_owner_only_under_umask_077, .timeout = 30)
{
    create_under_umask(077, 0600, 0700);
}

Test(queuedir, create_group_modes_survive_umask_077, .timeout = 30)
{
    /* Group-writable: the sticky bit too. */
    create_under_umask(077, 0660, 01770);
    create_under_umask(077, 0640, 0750);
}

Test(queuedir, create_group_modes_under_umask_022, .timeout = 30)
{
    create_under_umask(022, 0644, 0755);
}

Test(queuedir, create_refuses_bad_paths, .timeout = 30)
{
    pps__err_begin();
    cr_assert_eq(open_q("", 0600, true, NULL), PPS_EINVAL);
    char *longest = malloc(PATH_MAX + 10);
    cr_assert_not_null(longest);
    memset(longest, 'x', PATH_MAX + 9);
    longest[0] = '/';
    longest[PATH_MAX + 9] = '\0';
    pps__err_begin();
    cr_assert_eq(open_q(longest, 0600, true, NULL), PPS_EINVAL);
    pps_test_expect_detail(NULL, "a path too long");
    free(longest);

    /* A parent that is a file. */
    char *dir = pps_test_tmpdir();
    char *file = pps_test_write(dir, "file", "x");
    char *q = pps_test_path_in(dir, "file/q");
    pps__err_begin();
    int rc = open_q(q, 0600, true, NULL);
    cr_assert_eq(rc, PPS_ESTORAGE, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_expect_detail(file, "a parent that is a file");
    free(q);
    free(file);
    pps_test_cleanup(dir);
}

Test(queuedir, open_tells_missing_from_not_a_directory_and_links,
     .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    char *q = pps_test_path_in(dir, "q");
    pps__err_begin();
    cr_assert_eq(open_q(q, 0600, false, NULL), PPS_ENOTINIT);
    pps_test_expect_detail(q, "a missing directory");

    char *f = pps_test_write(dir, "q", "not a directory");
    pps__err_begin();
    cr_assert_eq(open_q(q, 0600, false, NULL), PPS_EFOREIGN);
    pps_test_expect_detail(q, "a plain file");
    cr_assert_eq(unlink(f), 0);

    char *real = pps_test_path_in(dir, "real");
    cr_assert_eq(mkdir(real, 0700), 0);
    cr_assert_eq(symlink(real, q), 0);
    pps__err_begin();
    cr_assert_eq(open_q(q, 0600, true, NULL), PPS_EFOREIGN);
    pps_test_expect_detail(q, "a symbolic link");
    cr_assert_eq(unlink(q), 0);

    cr_assert_eq(mkdir(q, 0700), 0);
    int fd;
    cr_assert_eq(open_q(q, 0600, false, &fd), PPS_OK);
    struct stat st, fst;
    cr_assert_eq(stat(q, &st), 0);
    cr_assert_eq(fstat(fd, &fst), 0);
    cr_assert_eq(fst.st_dev, st.st_dev);
    cr_assert_eq(fst.st_ino, st.st_ino);
    cr_assert_not(pps__qdir_has(fd, "data.mdb"));
    char *lock = pps_test_write(q, "lock.mdb", "");
    cr_assert(pps__qdir_has(fd, "lock.mdb"));
    close(fd);
    free(lock);
    free(real);
    free(f);
    free(q);
    pps_test_cleanup(dir);
}

Test(queuedir, open_file_creates_with_its_mode_and_refuses_links,
     .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(dirfd, 0);
    int fd = -1;
    mode_t old = umask(077);
    int rc = pps__qdir_open_file(dirfd, dir, "data.mdb", O_RDWR, true, 0640,
                                 &fd);
    umask(old);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    close(fd);
    char *data = pps_test_path_in(dir, "data.mdb");
    cr_assert_eq(mode_of(data), 0640);

    /* Missing without create: PPS_ENOTINIT naming it. */
    char *wake = pps_test_path_in(dir, "pps.wake");
    pps__err_begin();
    cr_assert_eq(pps__qdir_open_file(dirfd, dir, "pps.wake", O_RDWR, false,
                                     0600, &fd),
                 PPS_ENOTINIT);
    pps_test_expect_detail(wake, "a missing file");

    /* A link is never followed, dangling or not; nothing is created. */
    char *victim = pps_test_write(dir, "victim", "v");
    cr_assert_eq(symlink(victim, wake), 0);
    pps__err_begin();
    cr_assert_eq(pps__qdir_open_file(dirfd, dir, "pps.wake", O_RDWR, true,
                                     0600, &fd),
                 PPS_EFOREIGN);
    pps_test_expect_detail(wake, "a symbolic link");

    /* Not a regular file. */
    char *sub = pps_test_path_in(dir, "lock.mdb");
    cr_assert_eq(mkdir(sub, 0700), 0);
    pps__err_begin();
    cr_assert_eq(pps__qdir_open_file(dirfd, dir, "lock.mdb", O_RDONLY, true,
                                     0600, &fd),
                 PPS_EFOREIGN);
    close(dirfd);
    free(sub);
    free(victim);
    free(wake);
    free(data);
    pps_test_cleanup(dir);
}

Test(queuedir, sync_flushes_a_directory_and_names_a_missing_one,
     .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    cr_assert_eq(pps__qdir_sync(dir), PPS_OK, "%s", pps_last_error());
    char *missing = pps_test_path_in(dir, "missing");
    pps__err_begin();
    cr_assert_eq(pps__qdir_sync(missing), PPS_ESTORAGE);
    pps_test_expect_detail(missing, "flush of a missing directory");
    free(missing);
    pps_test_cleanup(dir);
}
