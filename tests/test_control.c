/*
 * Control (src/control.c): init creates what is missing and is idempotent,
 * init of one queue, prune and clear with what they removed, the statuses
 * of the control functions, and an init that would register more
 * subscribers than max_db_num allows: PPS_EFULL with nothing changed.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(control, init_of_one_queue_creates_that_one_only, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_config(
        dir, "{\"queues\": {\"q1\": {\"path\": \"one\"}, "
             "\"q2\": {\"path\": \"two\"}}}");
    /* init of one queue creates that one only */
    cr_assert_eq(pps_ctl_init_queue(cfg, "q2"), PPS_OK, "%s",
                 pps_last_error());
    char path[4096];
    snprintf(path, sizeof(path), "%s/two/pps.wake", dir);
    cr_assert_eq(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/one", dir);
    cr_assert_neq(access(path, F_OK), 0);
    cr_assert_eq(pps_ctl_init_queue(cfg, "nope"), PPS_ENOTFOUND);
    cr_assert_eq(pps_ctl_init_queue(cfg, NULL), PPS_EINVAL);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}


Test(control, unknown_queue_is_enotfound, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"a", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "kept", 4), PPS_OK);
    pps_removed removed = {99, 99};
    int rc = pps_ctl_prune_queue(cfg, "nope", &removed);
    cr_assert_eq(rc, PPS_ENOTFOUND, "prune_queue: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "nope"), "%s",
                       pps_last_error());
    rc = pps_ctl_clear_queue(cfg, "nope", &removed);
    cr_assert_eq(rc, PPS_ENOTFOUND, "clear_queue: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_test_qstat q;
    rc = pps_ctl_status(cfg, "nope", pps_test_qstat_cb, &q);
    cr_assert_eq(rc, PPS_ENOTFOUND, "status: %s: %s", pps_status_name(rc),
                 pps_last_error());
    size_t n = 99;
    rc = pps_ctl_check(cfg, "nope", 0, NULL, NULL, &n);
    cr_assert_eq(rc, PPS_ENOTFOUND, "check: %s: %s", pps_status_name(rc),
                 pps_last_error());
    /* Nothing was pruned or cleared. */
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1u);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- init --------------------------------------------------------------- */

Test(control, init_creates_the_queue_files_and_is_idempotent, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"a", "b", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    static const char *const files[] = {"q/data.mdb", "q/lock.mdb",
                                        "q/pps.wake"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *f = pps_test_path_in(dir, files[i]);
        cr_assert_eq(access(f, F_OK), 0, "init did not create %s", f);
        free(f);
    }
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "kept", 4), PPS_OK);
    pps_pub_close(pub);

    /* A second init of the same config finds nothing to do and keeps the
     * message. */
    char *qpath = pps_test_path_in(dir, "q");
    pps_test_snap *before = pps_test_snap_take(qpath);
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_test_expect_same_content(qpath, before, "a second init");
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1);
    free(before);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A config of queue "q" with max_db_num `max_dbs` and subscribers
 * s<first>..s<last>, each a component. */
static pps_config *
config_with_subscribers(const char *dir, unsigned max_dbs, unsigned first,
                        unsigned last)
{
    char json[4096];
    size_t off = (size_t)snprintf(json, sizeof(json),
                                  "{\"pub\": {\"out_queue\": \"q\"},\n");
    for (unsigned i = first; i <= last; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                " \"s%u\": {\"in_queue\": \"q\"},\n", i);
    }
    off += (size_t)snprintf(json + off, sizeof(json) - off,
                                  " \"queues\": {\"q\": {\"path\": \"q\",\n"
                                  "   \"max_db_num\": %u,\n"
                                  "   \"max_db_size_bytes\": 1048576,\n"
                                  "   \"subscribers\": [",
                                  max_dbs);
    for (unsigned i = first; i <= last; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"s%u\"",
                                i > first ? ", " : "", i);
    }
    snprintf(json + off, sizeof(json) - off, "]}}}\n");
    return pps_test_config(dir, json);
}

Test(control, init_beyond_max_db_num_is_efull_and_changes_nothing,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    /* max_db_num 5: three internal databases, room for two subscribers.
     * s1 and s2 are registered; a config naming only s3 is valid on its
     * own, but s1 and s2 stay registered (init never drops a subscriber),
     * so s3 would be a third. */
    pps_config *two = config_with_subscribers(dir, 5, 1, 2);
    cr_assert_eq(pps_ctl_init(two), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = pps_test_pub_open(two, "pub");
    cr_assert_eq(pps_pub_send(pub, "kept", 4), PPS_OK);
    pps_pub_close(pub);

    pps_config *third = config_with_subscribers(dir, 5, 3, 3);
    char *qpath = pps_test_path_in(dir, "q");
    pps_test_snap *before = pps_test_snap_take(dir);
    int rc = pps_ctl_init(third);
    cr_assert_eq(rc, PPS_EFULL, "init of a third subscriber with room for "
                 "two: %s: %s", pps_status_name(rc), pps_last_error());
    pps_test_expect_detail(qpath, "init beyond max_db_num");
    cr_assert_not_null(strstr(pps_last_error(), "max_db_num"), "%s",
                       pps_last_error());
    /* Names, modes, sizes and bytes; not data.mdb's modification time:
     * opening LMDB for writing (MDB_WRITEMAP) ftruncate()s data.mdb to its
     * own size, and the library fallocate()s its used part, before the
     * transaction finds it has nothing to write; ext4 counts both as a
     * modification. */
    pps_test_expect_same_content(dir, before, "init beyond max_db_num");
    free(before);

    /* Nothing was registered: s3 is unknown to the queue, the others and
     * the message are as they were. */
    pps_sub *s3 = NULL;
    rc = pps_sub_open(&s3, third, "s3");
    cr_assert_eq(rc, PPS_ENOTINIT, "s3: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_null(s3);
    pps_test_qstat q = pps_test_queue_status(two);
    cr_assert_eq(q.messages, 1);
    cr_assert_eq(q.pending[0], 1);
    cr_assert_eq(q.pending[1], 1);
    pps_test_expect_consistent(two);

    /* Room made by max_db_num: the same init goes through. */
    pps_config *roomy = config_with_subscribers(dir, 6, 3, 3);
    cr_assert_eq(pps_ctl_init(roomy), PPS_OK, "%s", pps_last_error());
    pps_sub *s = pps_test_sub_open(roomy, "s3");
    pps_test_expect_empty(s); /* registered now: no earlier message */
    pps_sub_close(s);
    pps_config_free(roomy);
    free(qpath);
    pps_config_free(third);
    pps_config_free(two);
    pps_test_cleanup(dir);
}

/* ---- prune and clear ---------------------------------------------------- */

Test(control, prune_and_clear_report_what_they_removed, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue(
        dir, "{\"pub1\": {\"out_queue\": \"q1\"},\n"
             " \"pub2\": {\"out_queue\": \"q2\"},\n"
             " \"a\": {\"in_queue\": \"q1\"},\n"
             " \"b\": {\"in_queue\": \"q2\"},\n"
             " \"queues\": {\n"
             "  \"q1\": {\"path\": \"one\", \"subscribers\": [\"a\"],\n"
             "          \"max_db_size_bytes\": 4194304,\n"
             "          \"high-water-mark\": {\"MAX_MSGS_NUM\": 1000}},\n"
             "  \"q2\": {\"path\": \"two\", \"subscribers\": [\"b\"],\n"
             "          \"max_db_size_bytes\": 4194304}}}\n");
    pps_pub *p1 = pps_test_pub_open(cfg, "pub1");
    pps_pub *p2 = pps_test_pub_open(cfg, "pub2");
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(pps_pub_send(p1, "0123456789", 10), PPS_OK);
        cr_assert_eq(pps_pub_send(p2, "01234", 5), PPS_OK);
    }
    pps_pub_close(p1);
    pps_pub_close(p2);

    /* Nothing is dangling: prune removes nothing. */
    pps_removed r = {99, 99};
    cr_assert_eq(pps_ctl_prune_queue(cfg, "q1", &r), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(r.messages, 0);
    cr_assert_eq(r.bytes, 0);
    cr_assert_eq(pps_ctl_prune(cfg), PPS_OK, "%s", pps_last_error());

    /* clear of one queue: that one's ten messages and their bytes. */
    cr_assert_eq(pps_ctl_clear_queue(cfg, "q1", &r), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(r.messages, 10);
    cr_assert_gt(r.bytes, 0);
    pps_sub *a = pps_test_sub_open(cfg, "a");
    pps_sub *b = pps_test_sub_open(cfg, "b");
    pps_test_expect_empty(a);
    int got = 0;
    cr_assert_eq(pps_sub_receive(b, 0, pps_test_count_calls, &got), PPS_OK);

    /* clear of every queue: the other nine; subscribers stay registered. */
    cr_assert_eq(pps_ctl_clear(cfg), PPS_OK, "%s", pps_last_error());
    pps_test_expect_empty(b);
    p1 = pps_test_pub_open(cfg, "pub1");
    cr_assert_eq(pps_pub_send(p1, "after", 5), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, pps_test_count_calls, &got), PPS_OK);
    cr_assert_eq(got, 2);
    pps_pub_close(p1);
    pps_sub_close(a);
    pps_sub_close(b);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(control, null_config_is_einval, .timeout = 10)
{
    cr_assert_eq(pps_ctl_init(NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_prune(NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_clear(NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_init_queue(NULL, "q"), PPS_EINVAL);
    cr_assert_eq(pps_ctl_prune_queue(NULL, "q", NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_clear_queue(NULL, "q", NULL), PPS_EINVAL);
}
