/*
 * Removing a subscriber (issue 10; pps_ctl_remove_subscriber(),
 * docs/reliability.rst "Subscribers that leave"): its slot under
 * max_db_num is freed, its pending messages are released, a running
 * publisher in another process goes on across the removal, and a handle of
 * the removed id, in this process or another, gets PPS_ENOTINIT and never
 * reads another subscriber's messages.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A config of queue "q" (path DIR/q), publisher "pub" and subscribers
 * `subs` (comma-separated: each a component and on the queue's list);
 * max_db_num as given. Written to DIR/NAME; returns its path. */
static char *
write_config(const char *dir, const char *name, const char *subs,
             int max_db_num)
{
    char comps[512] = "", list[256] = "", copy[256];
    snprintf(copy, sizeof(copy), "%s", subs);
    for (char *save = NULL, *id = strtok_r(copy, ",", &save); id != NULL;
         id = strtok_r(NULL, ",", &save)) {
        size_t c = strlen(comps), l = strlen(list);
        snprintf(comps + c, sizeof(comps) - c, " \"%s\": {\"in_queue\": "
                 "\"q\"},", id);
        snprintf(list + l, sizeof(list) - l, "%s\"%s\"", l > 0 ? ", " : "",
                 id);
    }
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"},%s\n"
             " \"queues\": {\"q\": {\"path\": \"q\", \"max_db_num\": %d,\n"
             "   \"max_db_size_bytes\": 8388608, \"durability\": \"nosync\",\n"
             "   \"subscribers\": [%s]}}}\n",
             comps, max_db_num, list);
    return pps_test_write(dir, name, json);
}

static pps_config *
load(const char *path)
{
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, path);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    return cfg;
}

static void
send_n(pps_pub *pub, uint32_t from, size_t n)
{
    unsigned char buf[64];
    for (size_t i = 0; i < n; i++) {
        pps_test_payload(buf, sizeof(buf), from + (uint32_t)i);
        int rc = pps_pub_send(pub, buf, sizeof(buf));
        cr_assert_eq(rc, PPS_OK, "send: %s: %s", pps_status_name(rc),
                     pps_last_error());
    }
}

Test(remove, frees_the_slot_and_releases_pending_messages, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    /* max_db_num 5: room for 2 subscribers. */
    char *p12 = write_config(dir, "a.json", "s1,s2", 5);
    char *p13 = write_config(dir, "b.json", "s1,s3", 5);
    pps_config *c12 = load(p12), *c13 = load(p13);
    cr_assert_eq(pps_ctl_init(c12), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = pps_test_pub_open(c12, "pub");
    send_n(pub, 0, 10);
    pps_sub *s1 = pps_test_sub_open(c12, "s1");
    pps_sub *s2 = pps_test_sub_open(c12, "s2");
    pps_test_seq x = {.len = 64, .want = malloc(64)};
    pps_test_receive_expected(s1, &x, 6, "s1"); /* s1 leaves 4 pending */
    x = (pps_test_seq){.len = 64, .want = x.want};
    pps_test_receive_expected(s2, &x, 2, "s2"); /* s2 leaves 8 pending */

    /* s3 does not fit beside s1 and s2: init refuses and changes nothing. */
    int rc = pps_ctl_init(c13);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    /* s2 is still listed by a.json: refused. */
    rc = pps_ctl_remove_subscriber(c12, "q", "s2");
    cr_assert_eq(rc, PPS_EINVAL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "still lists"), "%s",
                       pps_last_error());
    /* Bad arguments. */
    cr_assert_eq(pps_ctl_remove_subscriber(c13, "q", ""), PPS_EINVAL);
    cr_assert_eq(pps_ctl_remove_subscriber(c13, "q", NULL), PPS_EINVAL);
    cr_assert_eq(pps_ctl_remove_subscriber(c13, NULL, "s2"), PPS_EINVAL);
    cr_assert_eq(pps_ctl_remove_subscriber(c13, "nowhere", "s2"),
                 PPS_ENOTFOUND);
    cr_assert_eq(pps_ctl_remove_subscriber(c13, "q", "s4"), PPS_ENOTFOUND,
                 "a subscriber never registered");
    cr_assert_eq(pps_ctl_remove_subscriber(c13, "q", "s1"), PPS_EINVAL);
    pps_test_qstat st = pps_test_queue_status(c12);
    cr_assert_eq(st.messages, 8); /* 0 and 1 were consumed by both */

    /* With b.json, which no longer lists s2. */
    rc = pps_ctl_remove_subscriber(c13, "q", "s2");
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    /* Messages only s2 pended on (2..5) are gone, s1's 4 stay. */
    st = pps_test_queue_status(c12);
    cr_assert_eq(st.messages, 4, "%llu messages after the removal",
                 (unsigned long long)st.messages);
    pps_test_expect_consistent(c12);
    rc = pps_ctl_remove_subscriber(c13, "q", "s2");
    cr_assert_eq(rc, PPS_ENOTFOUND, "removed twice: %s", pps_status_name(rc));

    /* Its slot is free: s3 registers. */
    rc = pps_ctl_init(c13);
    cr_assert_eq(rc, PPS_OK, "init after the removal: %s: %s",
                 pps_status_name(rc), pps_last_error());
    /* The open handle of s2 (this process) is told, and reads nothing of
     * s3's, though LMDB may have given s3's database s2's old handle. */
    send_n(pub, 10, 3);
    rc = pps_sub_receive(s2, 0, pps_test_ignore, NULL);
    cr_assert_eq(rc, PPS_ENOTINIT, "receive of a removed subscriber: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "\"s2\" is not registered"),
                       "%s", pps_last_error());
    rc = pps_sub_receive_to_top(s2, 0, pps_test_ignore, NULL);
    cr_assert_eq(rc, PPS_ENOTINIT, "%s", pps_status_name(rc));
    pps_sub *s3 = pps_test_sub_open(c13, "s3");
    x = (pps_test_seq){.len = 64, .next = 10, .want = x.want};
    pps_test_receive_expected(s3, &x, 3, "s3");
    pps_test_expect_empty(s3);
    x = (pps_test_seq){.len = 64, .next = 6, .want = x.want};
    pps_test_receive_expected(s1, &x, 7, "s1 across the removal");
    pps_test_expect_empty(s1);

    /* Registered again (a.json lists it; max_db_num is full with s1 and s3,
     * so remove s3 first), the same handle receives what comes after. */
    char *p12b = write_config(dir, "c.json", "s1", 5);
    pps_config *c1 = load(p12b);
    cr_assert_eq(pps_ctl_remove_subscriber(c1, "q", "s3"), PPS_OK, "%s",
                 pps_last_error());
    rc = pps_sub_receive(s3, 0, pps_test_ignore, NULL);
    cr_assert_eq(rc, PPS_ENOTINIT, "%s", pps_status_name(rc));
    cr_assert_eq(pps_ctl_init(c12), PPS_OK, "%s", pps_last_error());
    send_n(pub, 13, 2);
    x = (pps_test_seq){.len = 64, .next = 13, .want = x.want};
    pps_test_receive_expected(s2, &x, 2, "s2 registered again");
    pps_test_expect_empty(s2);
    pps_test_expect_consistent(c12);

    free(x.want);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_sub_close(s3);
    pps_pub_close(pub);
    pps_config_free(c1);
    pps_config_free(c12);
    pps_config_free(c13);
    free(p12);
    free(p12b);
    free(p13);
    pps_test_cleanup(dir);
}

/* ---- across processes --------------------------------------------------- */

enum {
    CHILD_EWAIT = PPS_TEST_CHILD_ELOCAL, /* the parent's go did not come */
    CHILD_ENOTINIT,                      /* not PPS_ENOTINIT after removal */
};

static const pps_test_code child_codes[] = {
    {CHILD_EWAIT, "no go from the parent"},
    {CHILD_ENOTINIT, "no PPS_ENOTINIT after the removal"},
    {0, NULL},
};

static void
expect_child_ok(pid_t pid, const char *who)
{
    int ws = pps_test_wait(pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "%s: wait status 0x%x (%s)", who, ws,
              WIFEXITED(ws) ? pps_test_child_code_name(WEXITSTATUS(ws),
                                                       child_codes)
                            : "signal");
}

/* In a child: tells the parent (`up`) and waits for its go (`down`). */
static void
child_rendezvous(int up, int down)
{
    char c = 'r';
    if (write(up, &c, 1) != 1) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    if (!pps_test_read_within(down, &c, 1, 60000)) {
        _exit(CHILD_EWAIT);
    }
}

Test(remove, running_publisher_and_subscriber_processes, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    char *p12 = write_config(dir, "a.json", "s1,s2", 1024);
    char *p1 = write_config(dir, "b.json", "s1", 1024);
    pps_config *c12 = load(p12), *c1 = load(p1);
    cr_assert_eq(pps_ctl_init(c12), PPS_OK, "%s", pps_last_error());

    enum { BEFORE = 40, AFTER = 40 };
    int go_pub[2], go_sub[2];
    cr_assert_eq(pipe(go_pub), 0);
    cr_assert_eq(pipe(go_sub), 0);
    /* The publisher: sends before, waits, sends after, with one handle. */
    int pub_up;
    pid_t pub_pid = pps_test_fork_piped(&pub_up);
    if (pub_pid == 0) {
        pps_config *cfg = pps_test_child_config(p12);
        pps_pub *pub = pps_test_child_pub(cfg, "pub");
        unsigned char buf[64];
        for (uint32_t i = 0; i < BEFORE + AFTER; i++) {
            if (i == BEFORE) {
                child_rendezvous(pub_up, go_pub[0]);
            }
            pps_test_payload(buf, sizeof(buf), i);
            int rc = pps_pub_send(pub, buf, sizeof(buf));
            if (rc != PPS_OK) {
                pps_test_child_fail(PPS_TEST_CHILD_ESEND, "send", rc);
            }
        }
        pps_pub_close(pub);
        _exit(0);
    }
    /* The subscriber s2: consumes half of what came before, waits, then
     * its next receive must say it is no longer registered. */
    int sub_up;
    pid_t sub_pid = pps_test_fork_piped(&sub_up);
    if (sub_pid == 0) {
        pps_config *cfg = pps_test_child_config(p12);
        pps_sub *sub = pps_test_child_sub(cfg, "s2");
        for (int i = 0; i < BEFORE / 2; i++) {
            int rc = pps_sub_receive(sub, 30000, pps_test_ignore, NULL);
            if (rc != PPS_OK) {
                pps_test_child_fail(PPS_TEST_CHILD_ERECEIVE, "receive", rc);
            }
        }
        child_rendezvous(sub_up, go_sub[0]);
        int rc = pps_sub_receive(sub, 1000, pps_test_ignore, NULL);
        if (rc != PPS_ENOTINIT ||
            strstr(pps_last_error(), "not registered") == NULL) {
            pps_test_child_fail(CHILD_ENOTINIT, "receive after removal", rc);
        }
        pps_sub_close(sub);
        _exit(0);
    }
    char c;
    cr_assert(pps_test_read_within(pub_up, &c, 1, 60000), "publisher");
    cr_assert(pps_test_read_within(sub_up, &c, 1, 60000), "subscriber");
    int rc = pps_ctl_remove_subscriber(c1, "q", "s2");
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    c = 'g';
    cr_assert_eq(write(go_pub[1], &c, 1), 1);
    cr_assert_eq(write(go_sub[1], &c, 1), 1);
    expect_child_ok(pub_pid, "publisher");
    expect_child_ok(sub_pid, "removed subscriber");

    /* s1 got everything, in order; nothing pends for s2 any more. */
    pps_sub *s1 = pps_test_sub_open(c1, "s1");
    pps_test_seq x = {.len = 64, .want = malloc(64)};
    pps_test_receive_expected(s1, &x, BEFORE + AFTER, "s1");
    pps_test_expect_empty(s1);
    pps_test_qstat st = pps_test_queue_status(c1);
    cr_assert_eq(st.messages, 0, "%llu messages left",
                 (unsigned long long)st.messages);
    pps_test_expect_consistent(c1);
    free(x.want);
    pps_sub_close(s1);
    close(pub_up);
    close(sub_up);
    for (int i = 0; i < 2; i++) {
        close(go_pub[i]);
        close(go_sub[i]);
    }
    pps_config_free(c1);
    pps_config_free(c12);
    free(p1);
    free(p12);
    pps_test_cleanup(dir);
}
