/*
 * What is not a queue (issue 4 and 13; docs/reliability.rst, "Faults and
 * hostile inputs"): a missing or empty directory, a plain file, another
 * application's LMDB environment (also with a file named pps.wake of its
 * own), a queue of a newer format version, a
 * truncated or garbage data.mdb, a garbage pps.wake, and a queue directory
 * removed while handles are open.
 *
 * Each case is checked through every entry point, each for exactly one
 * status: a missing or empty directory is PPS_ENOTINIT (init creates the
 * queue); what is somebody else's is PPS_EFOREIGN; a newer format is
 * PPS_EVERSION; a damaged data.mdb is PPS_ESTORAGE; init refuses the last
 * three the same way. Nothing is written: the tree is compared file by file
 * (names, modes, sizes, modification times, bytes) before and after.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- what is not a queue ------------------------------------------------ */

/* Every way in (open a publisher or subscriber, status, check with and
 * without repair, prune, clear, each for every queue and for queue "q",
 * and removing a subscriber)
 * refuses with exactly `want`, names qpath, and opens nothing. */
static void
expect_refused(const pps_config *cfg, const char *qpath, int want,
               const char *what)
{
    char label[256];
    pps_pub *pub = (pps_pub *)&pub;
    int rc = pps_pub_open(&pub, cfg, "pub");
    snprintf(label, sizeof(label), "%s: pps_pub_open", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    cr_assert_null(pub);
    pps_test_expect_detail(qpath, label);

    pps_sub *sub = (pps_sub *)&sub;
    rc = pps_sub_open(&sub, cfg, "s1");
    snprintf(label, sizeof(label), "%s: pps_sub_open", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    cr_assert_null(sub);
    pps_test_expect_detail(qpath, label);

    pps_test_qstat q;
    rc = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
    snprintf(label, sizeof(label), "%s: pps_ctl_status", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    size_t problems = 0;
    rc = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
    snprintf(label, sizeof(label), "%s: pps_ctl_check", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    rc = pps_ctl_check(cfg, NULL, 1, NULL, NULL, &problems);
    snprintf(label, sizeof(label), "%s: pps_ctl_check with repair", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    rc = pps_ctl_prune(cfg);
    snprintf(label, sizeof(label), "%s: pps_ctl_prune", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    rc = pps_ctl_clear(cfg);
    snprintf(label, sizeof(label), "%s: pps_ctl_clear", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    /* The same through the functions that name one queue. */
    rc = pps_ctl_status(cfg, "q", pps_test_qstat_cb, &q);
    snprintf(label, sizeof(label), "%s: pps_ctl_status of queue q", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    rc = pps_ctl_check(cfg, "q", 1, NULL, NULL, &problems);
    snprintf(label, sizeof(label), "%s: pps_ctl_check of queue q", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);

    pps_removed removed = {99, 99};
    rc = pps_ctl_prune_queue(cfg, "q", &removed);
    snprintf(label, sizeof(label), "%s: pps_ctl_prune_queue", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);
    cr_assert_eq(removed.messages, 0, "%s", label);

    removed = (pps_removed){99, 99};
    rc = pps_ctl_clear_queue(cfg, "q", &removed);
    snprintf(label, sizeof(label), "%s: pps_ctl_clear_queue", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);
    cr_assert_eq(removed.messages, 0, "%s", label);

    /* An id the configuration does not list, so only the queue is at
     * fault. */
    rc = pps_ctl_remove_subscriber(cfg, "q", "gone");
    snprintf(label, sizeof(label), "%s: pps_ctl_remove_subscriber", what);
    cr_assert_eq(rc, want, "%s: %s (expected %s): %s", label,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, label);
}

/* Runs expect_refused() and checks that the tree under dir is untouched. */
static void
expect_not_a_queue(const char *dir, const pps_config *cfg, int want,
                   const char *what)
{
    char *qpath = pps_test_path_in(dir, "q");
    pps_test_snap *before = pps_test_snap_take(dir);
    expect_refused(cfg, qpath, want, what);
    pps_test_expect_untouched(dir, before, what);
    free(before);
    free(qpath);
}

/* pps_ctl_init refuses with exactly `want`, names the queue and touches
 * nothing. */
static void
expect_init_refused(const char *dir, const pps_config *cfg, int want,
                    const char *what)
{
    char *qpath = pps_test_path_in(dir, "q");
    pps_test_snap *before = pps_test_snap_take(dir);
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, want, "%s: pps_ctl_init: %s (expected %s): %s", what,
                 pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, what);
    rc = pps_ctl_init_queue(cfg, "q");
    cr_assert_eq(rc, want, "%s: pps_ctl_init_queue: %s (expected %s): %s",
                 what, pps_status_name(rc), pps_status_name(want),
                 pps_last_error());
    pps_test_expect_detail(qpath, what);
    pps_test_expect_untouched(dir, before, what);
    free(before);
    free(qpath);
}

Test(foreign, empty_directory_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert_eq(mkdir(qpath, 0700), 0);
    expect_not_a_queue(dir, cfg, PPS_ENOTINIT, "an empty directory");
    /* init makes it one. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, missing_directory_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    expect_not_a_queue(dir, cfg, PPS_ENOTINIT, "a missing directory");
    /* init creates it. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, plain_file_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *f = pps_test_write(dir, "q", "not a queue\n");
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN, "a plain file");
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on a plain file");
    free(f);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A directory of another LMDB application: data.mdb and lock.mdb with a
 * database of its own, and no pps.wake. */
static void
make_foreign_lmdb(const char *qpath)
{
    cr_assert_eq(mkdir(qpath, 0700), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 256 * PPS_TEST_KIB), 0);
    int rc = mdb_env_open(env, qpath, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "app.table", MDB_CREATE, &dbi), 0);
    MDB_val k = {5, "hello"}, v = {5, "world"};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(foreign, other_lmdb_application_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    make_foreign_lmdb(qpath);
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN,
                       "another application's LMDB environment");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, init_refuses_other_lmdb_application, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    make_foreign_lmdb(qpath);
    /* init creates queues, but must not turn another application's LMDB
     * environment into one (nor grow its file to the map size). */
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on another application's LMDB environment");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* Another application's LMDB environment beside a file that happens to be
 * called pps.wake: neither is ours. */
static void
make_foreign_lmdb_with_wake(const char *qpath, const void *wake, size_t len)
{
    make_foreign_lmdb(qpath);
    char *path = pps_test_path_in(qpath, "pps.wake");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(wake, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(path);
}

Test(foreign, other_lmdb_application_with_a_foreign_pps_wake, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    static const char text[] = "wake me up at seven\n";
    make_foreign_lmdb_with_wake(qpath, text, sizeof(text) - 1);
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN,
                       "another application's LMDB environment with a "
                       "pps.wake of its own");
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on another application's LMDB environment "
                        "with a pps.wake of its own");
    /* A page of it, as long as ours. */
    char page[4096];
    memset(page, 'W', sizeof(page));
    pps_test_cleanup(pps_test_path_in(qpath, ""));
    make_foreign_lmdb_with_wake(qpath, page, sizeof(page));
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN,
                       "another application's LMDB environment with a "
                       "4096-byte pps.wake of its own");
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on another application's LMDB environment "
                        "with a 4096-byte pps.wake of its own");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, newer_format_version_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *qpath = pps_test_path_in(dir, "q");
    /* Rewrite "format" with plain LMDB, as a future version would. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 1 * PPS_TEST_MIB), 0);
    int rc = mdb_env_open(env, qpath, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "pps.meta", 0, &dbi), 0);
    uint32_t v2 = 2;
    MDB_val k = {6, "format"}, v = {sizeof(v2), &v2};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    /* A configuration with a larger map must not grow the file of a queue
     * it cannot read. */
    pps_config *bigger = pps_test_small_config(dir, 2 * PPS_TEST_MIB, NULL);
    expect_not_a_queue(dir, bigger, PPS_EVERSION,
                       "a queue of format version 2, config with a larger "
                       "map");
    cr_assert_not_null(strstr(pps_last_error(), "2"), "%s", pps_last_error());
    expect_init_refused(dir, bigger, PPS_EVERSION,
                        "init on a queue of format version 2 with a larger "
                        "map");
    pps_config_free(bigger);
    /* Nor touch it with the map size it was made with. */
    pps_config *same = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    expect_not_a_queue(dir, same, PPS_EVERSION,
                       "a queue of format version 2");
    expect_init_refused(dir, same, PPS_EVERSION,
                        "init on a queue of format version 2");
    pps_config_free(same);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, truncated_data_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *data = pps_test_path_in(dir, "q/data.mdb");
    /* Keep the two meta pages and a little more: the trees they point to
     * are cut off. */
    cr_assert_eq(truncate(data, 3 * 4096), 0);
    expect_not_a_queue(dir, cfg, PPS_ESTORAGE,
                       "a truncated data.mdb");
    expect_init_refused(dir, cfg, PPS_ESTORAGE,
                        "init on a truncated data.mdb");
    free(data);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, garbage_data_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *data = pps_test_path_in(dir, "q/data.mdb");
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    FILE *f = fopen(data, "r+b");
    cr_assert_not_null(f);
    uint64_t x = 88172645463325252ull;
    for (off_t i = 0; i < st.st_size; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        cr_assert_eq(fwrite(&x, 8, 1, f), 1);
    }
    cr_assert_eq(fclose(f), 0);
    expect_not_a_queue(dir, cfg, PPS_ESTORAGE,
                       "a garbage data.mdb");
    expect_init_refused(dir, cfg, PPS_ESTORAGE,
                        "init on a garbage data.mdb");
    free(data);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(foreign, garbage_wake_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue_with_messages(dir);
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    char junk[4096];
    memset(junk, 'J', sizeof(junk));
    FILE *f = fopen(wake, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(junk, sizeof(junk), 1, f), 1);
    cr_assert_eq(fclose(f), 0);
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN,
                       "a garbage pps.wake");
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on a garbage pps.wake");
    free(wake);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}


static int
rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return unlink(path);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        rm_tree(sub);
    }
    closedir(d);
    return rmdir(path);
}

Test(foreign, queue_directory_removed_while_open, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"sync\"");
    char *qpath = pps_test_path_in(dir, "q");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    cr_assert_eq(pps_pub_send(pub, "one", 3), PPS_OK);
    cr_assert_eq(rm_tree(qpath), 0, "rm -rf %s: %s", qpath, strerror(errno));

    /* Handles open on the removed files keep working on them: LMDB holds
     * the unlinked files open and mapped. Send and receive alternate, so
     * each receive finds the message before it. */
    pps_test_sink sink = {0};
    for (int i = 0; i < 20; i++) {
        int rc = pps_pub_send(pub, "two", 3);
        cr_assert_eq(rc, PPS_OK, "send %d after rm -rf: %s: %s", i,
                     pps_status_name(rc), pps_last_error());
        rc = pps_sub_receive(s1, 0, pps_test_collect, &sink);
        cr_assert_eq(rc, PPS_OK, "receive %d after rm -rf: %s: %s", i,
                     pps_status_name(rc), pps_last_error());
    }
    cr_assert_eq(sink.n, 20);
    cr_assert_str_eq(sink.data[0], "one");
    for (size_t i = 1; i < sink.n; i++) {
        cr_assert_str_eq(sink.data[i], "two");
        cr_assert_eq(sink.ids[i], sink.ids[i - 1] + 1);
    }
    pps_test_sink_free(&sink);

    /* New handles see that the queue is gone. */
    pps_pub *p2 = NULL;
    int rc = pps_pub_open(&p2, cfg, "pub");
    cr_assert_eq(rc, PPS_ENOTINIT, "pub_open after rm -rf: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_test_expect_detail(qpath, "pub_open after rm -rf");
    pps_test_qstat q;
    rc = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
    cr_assert_eq(rc, PPS_ENOTINIT, "status after rm -rf: %s: %s",
                 pps_status_name(rc), pps_last_error());

    /* init makes a new queue; the old handles still do not crash. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *fresh = pps_test_pub_open(cfg, "pub");
    pps_sub *fresh_sub = pps_test_sub_open(cfg, "s1");
    cr_assert_eq(pps_pub_send(fresh, "new", 3), PPS_OK, "%s",
                 pps_last_error());
    /* The old handle still writes to the removed files, not the new queue. */
    rc = pps_pub_send(pub, "old", 3);
    cr_assert_eq(rc, PPS_OK, "old handle after init: %s: %s",
                 pps_status_name(rc), pps_last_error());
    rc = pps_sub_receive(fresh_sub, 0, pps_test_collect, &sink);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_str_eq(sink.data[0], "new");
    pps_test_sink_free(&sink);
    pps_test_expect_empty(fresh_sub);
    pps_test_expect_consistent(cfg);
    pps_sub_close(fresh_sub);
    pps_pub_close(fresh);
    pps_sub_close(s1);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}


/* An empty pps.wake is what an init interrupted before its first write
 * leaves, and init repairs it; but such an init never committed a data.mdb
 * (pps.wake is written and flushed before data.mdb is created), let alone
 * one holding databases this library never makes. Init must not take that
 * environment over (rewrite pps.wake, grow data.mdb to the map, add its
 * databases): it is another application's. */
Test(foreign, other_lmdb_application_with_an_empty_pps_wake, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    make_foreign_lmdb_with_wake(qpath, "", 0);
    expect_init_refused(dir, cfg, PPS_EFOREIGN,
                        "init on another application's LMDB environment "
                        "with an empty pps.wake");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
