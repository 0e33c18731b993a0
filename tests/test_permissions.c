/*
 * Permissions (issue 4; docs/reliability.rst, "Security" and "Faults and
 * hostile inputs"): the modes of a queue's files whatever the umask, group
 * sharing through "mode", and a queue that this user may only read.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- a queue this user may only read ------------------------------------ */

/* Root ignores permission bits: the read-only case runs as user "nobody"
 * (pps_test_run_as_nobody()). */
typedef struct ro_case {
    const pps_config *cfg;
    const char *qpath;
} ro_case;

static void
ro_child(void *arg)
{
    const ro_case *c = arg;
    pps_pub *pub = NULL;
    pps_sub *sub = NULL;
    int rc = pps_pub_open(&pub, c->cfg, "pub");
    if (rc == PPS_OK || pub != NULL) {
        fprintf(stderr, "pub_open on a read-only queue: %s\n",
                pps_status_name(rc));
        _exit(10);
    }
    if (rc != PPS_ESTORAGE || strstr(pps_last_error(), c->qpath) == NULL) {
        fprintf(stderr, "pub_open: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(11);
    }
    rc = pps_sub_open(&sub, c->cfg, "s1");
    if (rc != PPS_ESTORAGE || sub != NULL ||
        strstr(pps_last_error(), c->qpath) == NULL) {
        fprintf(stderr, "sub_open: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(12);
    }
    if (strstr(pps_last_error(), "ermission") == NULL) {
        fprintf(stderr, "the detail does not say why: %s\n",
                pps_last_error());
        _exit(13);
    }
    pps_test_qstat q;
    rc = pps_ctl_status(c->cfg, NULL, pps_test_qstat_cb, &q);
    if (rc != PPS_ESTORAGE) {
        fprintf(stderr, "status: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(14);
    }
    rc = pps_ctl_init(c->cfg);
    if (rc != PPS_ESTORAGE) {
        fprintf(stderr, "init: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(15);
    }
}

Test(permissions, read_only_queue_directory_is_a_clear_error, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *qpath = pps_test_path_in(dir, "q");
    const char *files[] = {"data.mdb", "lock.mdb", "pps.wake"};
    cr_assert_eq(chmod(dir, 0755), 0);
    for (size_t i = 0; i < 3; i++) {
        char *f = pps_test_path_in(qpath, files[i]);
        cr_assert_eq(chmod(f, 0444), 0);
        free(f);
    }
    cr_assert_eq(chmod(qpath, 0555), 0);
    pps_test_snap *before = pps_test_snap_take(dir);
    ro_case c = {cfg, qpath};
    int code = pps_test_run_as_nobody(ro_child, &c);
    if (code == 77) {
        cr_skip_test("running as root and cannot switch to user nobody: "
                     "root ignores permission bits");
    }
    cr_assert_eq(code, 0, "read-only queue: child failed with %d (see its "
                 "stderr)", code);
    pps_test_expect_untouched(dir, before, "a read-only queue");
    free(before);
    cr_assert_eq(chmod(qpath, 0700), 0);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
/* ---- file modes --------------------------------------------------------- */

static void
expect_modes(const char *qpath, unsigned dir_mode, unsigned file_mode,
             const char *what)
{
    struct stat st;
    cr_assert_eq(stat(qpath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, dir_mode,
                 "%s: queue directory mode %o, expected %o", what,
                 (unsigned)(st.st_mode & 07777), dir_mode);
    const char *files[] = {"data.mdb", "lock.mdb", "pps.wake"};
    for (size_t i = 0; i < 3; i++) {
        char *f = pps_test_path_in(qpath, files[i]);
        /* LMDB's lock file holds the reader slots: whoever may read the
         * queue may write it (the group, where it may read). */
        unsigned want = i == 1 ? file_mode | ((file_mode & 0040) >> 1)
                               : file_mode;
        cr_assert_eq(stat(f, &st), 0, "%s", f);
        cr_assert_eq(st.st_mode & 07777, want,
                     "%s: %s mode %o, expected %o", what, files[i],
                     (unsigned)(st.st_mode & 07777), want);
        free(f);
    }
}

static void
modes_with_umask(mode_t mask, const char *extra, unsigned dmode,
                 unsigned fmode)
{
    char *dir = pps_test_tmpdir();
    mode_t old = umask(mask);
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, extra);
    umask(old);
    char *qpath = pps_test_path_in(dir, "q");
    char what[64];
    snprintf(what, sizeof(what), "umask %03o", (unsigned)mask);
    expect_modes(qpath, dmode, fmode, what);
    /* A publisher and a subscriber opened later change nothing. */
    umask(mask);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    umask(old);
    cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    expect_modes(qpath, dmode, fmode, what);
    pps_sub_close(sub);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(permissions, default_modes_are_owner_only_with_umask_0, .timeout = 60)
{
    modes_with_umask(0, NULL, 0700, 0600);
}

Test(permissions, default_modes_are_owner_only_with_umask_022, .timeout = 60)
{
    modes_with_umask(022, NULL, 0700, 0600);
}

Test(permissions, mode_0660_gives_group_access, .timeout = 60)
{
    /* The sticky bit: a group member cannot replace files it does not
     * own. */
    modes_with_umask(022, "\"mode\": \"0660\"", 01770, 0660);
    modes_with_umask(0, "\"mode\": \"0660\"", 01770, 0660);
}

Test(permissions, mode_0640_gives_group_read, .timeout = 60)
{
    modes_with_umask(077, "\"mode\": \"0640\"", 0750, 0640);
}

