/*
 * The queue directory (src/queuedir.c): mkdir -p with the queue
 * directory's mode whatever the umask, telling a missing directory and a
 * non-directory apart, the files' modes, and flushing the directory.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
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

/* Creates DIR/a/b/q under `mask` and checks every mode: the parents get
 * 0777 less the umask, the queue directory the mode its files imply. */
static void
create_under_umask(mode_t mask, unsigned file_mode, mode_t want_dir)
{
    char *dir = pps_test_tmpdir();
    char *q = pps_test_path_in(dir, "a/b/q");
    mode_t old = umask(mask);
    int rc = pps__qdir_create(q, file_mode);
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

    /* Existing: fine, and left as it is. */
    cr_assert_eq(chmod(q, 0700), 0);
    cr_assert_eq(pps__qdir_create(q, file_mode), PPS_OK);
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
    create_under_umask(077, 0660, 0770);
    create_under_umask(077, 0640, 0750);
}

Test(queuedir, create_group_modes_under_umask_022, .timeout = 30)
{
    create_under_umask(022, 0644, 0755);
}

Test(queuedir, create_refuses_bad_paths, .timeout = 30)
{
    pps__err_begin();
    cr_assert_eq(pps__qdir_create("", 0600), PPS_EINVAL);
    char *longest = malloc(PATH_MAX + 10);
    cr_assert_not_null(longest);
    memset(longest, 'x', PATH_MAX + 9);
    longest[0] = '/';
    longest[PATH_MAX + 9] = '\0';
    pps__err_begin();
    cr_assert_eq(pps__qdir_create(longest, 0600), PPS_EINVAL);
    pps_test_expect_detail(NULL, "a path too long");
    free(longest);

    /* A parent that is a file. */
    char *dir = pps_test_tmpdir();
    char *file = pps_test_write(dir, "file", "x");
    char *q = pps_test_path_in(dir, "file/q");
    pps__err_begin();
    int rc = pps__qdir_create(q, 0600);
    cr_assert_eq(rc, PPS_ESTORAGE, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_expect_detail(file, "a parent that is a file");
    free(q);
    free(file);
    pps_test_cleanup(dir);
}

Test(queuedir, stat_tells_missing_from_not_a_directory, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    char *q = pps_test_path_in(dir, "q");
    dev_t dev = 0;
    ino_t ino = 0;
    pps__err_begin();
    cr_assert_eq(pps__qdir_stat(q, &dev, &ino), PPS_ENOTINIT);
    pps_test_expect_detail(q, "a missing directory");

    char *f = pps_test_write(dir, "q", "not a directory");
    pps__err_begin();
    cr_assert_eq(pps__qdir_stat(q, &dev, &ino), PPS_EFOREIGN);
    pps_test_expect_detail(q, "a plain file");
    cr_assert_eq(unlink(f), 0);

    cr_assert_eq(mkdir(q, 0700), 0);
    cr_assert_eq(pps__qdir_stat(q, &dev, &ino), PPS_OK);
    struct stat st;
    cr_assert_eq(stat(q, &st), 0);
    cr_assert_eq(dev, st.st_dev);
    cr_assert_eq(ino, st.st_ino);
    /* The same directory under another spelling is the same identity. */
    char *alias = pps_test_path_in(dir, "./q/");
    dev_t dev2;
    ino_t ino2;
    cr_assert_eq(pps__qdir_stat(alias, &dev2, &ino2), PPS_OK);
    cr_assert_eq(dev2, dev);
    cr_assert_eq(ino2, ino);

    cr_assert(pps__qdir_has(dir, "q"));
    cr_assert_not(pps__qdir_has(q, "data.mdb"));
    free(alias);
    free(f);
    free(q);
    pps_test_cleanup(dir);
}

Test(queuedir, chmod_gives_the_files_their_mode, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    static const char *const names[] = {"data.mdb", "lock.mdb", "pps.wake"};
    for (size_t i = 0; i < 3; i++) {
        char *f = pps_test_write(dir, names[i], "x");
        cr_assert_eq(chmod(f, 0600), 0);
        free(f);
    }
    cr_assert_eq(pps__qdir_chmod_files(dir, 0640), PPS_OK, "%s",
                 pps_last_error());
    for (size_t i = 0; i < 3; i++) {
        char *f = pps_test_path_in(dir, names[i]);
        cr_assert_eq(mode_of(f), 0640, "%s: %o", names[i],
                     (unsigned)mode_of(f));
        free(f);
    }
    /* A missing file is an error naming it. */
    char *wake = pps_test_path_in(dir, "pps.wake");
    cr_assert_eq(unlink(wake), 0);
    pps__err_begin();
    cr_assert_eq(pps__qdir_chmod_files(dir, 0600), PPS_ESTORAGE);
    pps_test_expect_detail(wake, "a missing file");
    free(wake);
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
