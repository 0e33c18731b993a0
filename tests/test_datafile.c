/*
 * The look at data.mdb before LMDB opens it (src/datafile.c): an empty or
 * zero-filled file was never committed (PPS_ENOTINIT: an interrupted
 * init), a truncated, short or garbage one is PPS_ESTORAGE naming the file,
 * a queue's file is fine and its size reported; nothing is ever written.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <unistd.h>

/* pps__datafile_examine() on directory dir, through a descriptor of it. */
static int
examine_in(const char *dir, int64_t *size)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s", dir);
    int rc = pps__datafile_examine(fd, dir, size);
    close(fd);
    return rc;
}

/* Writes `len` bytes of `byte` to DIR/data.mdb. */
static char *
write_data(const char *dir, size_t len, int byte)
{
    char *path = pps_test_path_in(dir, "data.mdb");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < len; i++) {
        cr_assert_eq(fputc(byte, f), byte);
    }
    cr_assert_eq(fclose(f), 0);
    return path;
}

/* pps__datafile_examine() on dir returns `want`, names data.mdb (when it
 * fails) and writes nothing. */
static void
expect_check(const char *dir, int want, const char *what)
{
    char *path = pps_test_path_in(dir, "data.mdb");
    pps_test_snap *before = pps_test_snap_take(dir);
    int64_t size = -1;
    pps__err_begin();
    int rc = examine_in(dir, &size);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", what,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    if (want != PPS_OK) {
        pps_test_expect_detail(path, what);
    }
    pps_test_expect_untouched(dir, before, what);
    free(before);
    free(path);
}

Test(datafile, empty_file_was_never_committed, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_data(dir, 0, 0));
    expect_check(dir, PPS_ENOTINIT, "an empty data.mdb");
    cr_assert_not_null(strstr(pps_last_error(), "never committed"), "%s",
                       pps_last_error());
    pps_test_cleanup(dir);
}

Test(datafile, zero_filled_meta_pages_were_never_committed, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_data(dir, 64 * 1024, 0));
    expect_check(dir, PPS_ENOTINIT, "a zero-filled data.mdb");
    cr_assert_not_null(strstr(pps_last_error(), "never committed"), "%s",
                       pps_last_error());
    pps_test_cleanup(dir);
}

Test(datafile, zero_first_page_with_data_after_it_is_estorage, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    char *path = write_data(dir, 64 * 1024, 0);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, sysconf(_SC_PAGESIZE) + 40, SEEK_SET), 0);
    cr_assert_eq(fputc('D', f), 'D');
    cr_assert_eq(fclose(f), 0);
    expect_check(dir, PPS_ESTORAGE, "zeros, then data in the second page");
    free(path);
    pps_test_cleanup(dir);
}

Test(datafile, short_and_garbage_files_are_estorage, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_data(dir, 5, 'h'));
    expect_check(dir, PPS_ESTORAGE, "a 5-byte data.mdb");
    free(write_data(dir, 64 * 1024, 0xa5));
    expect_check(dir, PPS_ESTORAGE, "a garbage data.mdb");
    cr_assert_not_null(strstr(pps_last_error(), "untouched"), "%s",
                       pps_last_error());
    pps_test_cleanup(dir);
}

Test(datafile, missing_file_is_estorage_naming_it, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    expect_check(dir, PPS_ESTORAGE, "no data.mdb");
    pps_test_cleanup(dir);
}

Test(datafile, queue_file_is_fine_and_truncated_one_is_estorage,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *q = pps_test_path_in(dir, "q");
    char *data = pps_test_path_in(q, "data.mdb");
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    int64_t size = -1;
    cr_assert_eq(examine_in(q, &size), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(size, (int64_t)st.st_size);

    /* The two meta pages and a little more: the trees are cut off. */
    cr_assert_eq(truncate(data, 3 * 4096), 0);
    expect_check(q, PPS_ESTORAGE, "a truncated data.mdb");
    cr_assert_not_null(strstr(pps_last_error(), "truncated"), "%s",
                       pps_last_error());
    free(data);
    free(q);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
