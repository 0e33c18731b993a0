/*
 * The status of a queue (src/status.c): what pps_ctl_status() reports, and
 * that its callback runs holding nothing: a callback that blocks in one
 * process stalls no publisher in another, and a callback may use the
 * library on the same queue in the same process.
 *
 * Children of fork() report through pipes and their exit code (never
 * through Criterion's asserts) and leave with _exit().
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const subs2[] = {"a", "b", NULL};

typedef struct seen {
    int calls;
    pps_queue_status st;
    pps_subscriber_status subs[4];
    char ids[4][32];
} seen;

static int
remember(const pps_queue_status *st, void *user)
{
    seen *s = user;
    s->calls++;
    s->st = *st;
    for (size_t i = 0; i < st->n_subscribers && i < 4; i++) {
        s->subs[i] = st->subscribers[i];
        snprintf(s->ids[i], sizeof(s->ids[i]), "%s", st->subscribers[i].id);
        s->subs[i].id = s->ids[i];
    }
    s->st.subscribers = NULL;
    return 0;
}

static int
consume(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

Test(status, status_reports_counts_limits_and_subscribers, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(
        dir, subs2, "{\"MAX_MSGS_NUM\": 100, \"strategy\": \"prune_last\"}",
        "\"durability\": \"nosync\"");
    pps_pub *pub;
    pps_sub *a;
    cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(pps_pub_send(pub, "12345678", 8), PPS_OK);
    }
    cr_assert_eq(pps_sub_open(&a, cfg, "a"), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, consume, NULL), PPS_OK);
    cr_assert_eq(pps_sub_receive(a, 0, consume, NULL), PPS_OK);

    seen s = {0};
    cr_assert_eq(pps_ctl_status(cfg, NULL, remember, &s), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.st.messages, 5);
    cr_assert_gt(s.st.bytes, 0);
    cr_assert_eq(s.st.next_id, 6);
    cr_assert_eq(s.st.max_msgs_num, 100);
    cr_assert_eq(s.st.msg_timeout_secs, 500);
    cr_assert_str_eq(s.st.strategy, "prune_last");
    cr_assert_str_eq(s.st.durability, "nosync");
    cr_assert_eq(s.st.map_size, 268435456);
    cr_assert_gt(s.st.map_used, 0);
    cr_assert_gt(s.st.oldest_ns, 0);
    cr_assert_eq(s.st.n_subscribers, 2);
    cr_assert_str_eq(s.subs[0].id, "a");
    cr_assert_eq(s.subs[0].pending, 3);
    cr_assert_str_eq(s.subs[1].id, "b");
    cr_assert_eq(s.subs[1].pending, 5);
    cr_assert_geq(s.subs[0].oldest_ns, s.subs[1].oldest_ns);

    /* One queue by key and by path; an unknown one. */
    s.calls = 0;
    cr_assert_eq(pps_ctl_status(cfg, "q", remember, &s), PPS_OK);
    cr_assert_eq(pps_ctl_status(cfg, s.st.path, remember, &s), PPS_OK);
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(pps_ctl_status(cfg, "nope", remember, &s), PPS_ENOTFOUND);
    cr_assert(strstr(pps_last_error(), "nope") != NULL);
    cr_assert_eq(pps_ctl_status(cfg, NULL, NULL, NULL), PPS_EINVAL);

    pps_removed r = {0};
    cr_assert_eq(pps_ctl_clear_queue(cfg, "q", &r), PPS_OK);
    cr_assert_eq(r.messages, 5);
    cr_assert_gt(r.bytes, 0);
    cr_assert_eq(pps_ctl_status(cfg, NULL, remember, &s), PPS_OK);
    cr_assert_eq(s.st.messages, 0);
    cr_assert_eq(s.st.oldest_ns, 0);
    cr_assert_eq(s.subs[1].pending, 0);
    cr_assert_eq(pps_ctl_prune_queue(cfg, "q", &r), PPS_OK);
    cr_assert_eq(r.messages, 0);

    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

static int
stop_at_first(const pps_queue_status *st, void *user)
{
    (void)st;
    (*(int *)user)++;
    return 7; /* any non-zero value stops the report */
}

Test(status, status_callback_refusal_is_ecallback, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_queue(
        dir, "{\"queues\": {\"q1\": {\"path\": \"one\"}, "
             "\"q2\": {\"path\": \"two\"}}}");
    int calls = 0;
    int rc = pps_ctl_status(cfg, NULL, stop_at_first, &calls);
    cr_assert_eq(rc, PPS_ECALLBACK, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(calls, 1, "the report went on after a refusal: %d calls",
                 calls);
    cr_assert_neq(pps_last_error()[0], '\0');
    /* A callback that accepts sees both queues. */
    pps_test_qstat q;
    cr_assert_eq(pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q), PPS_OK,
                 "%s", pps_last_error());
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- the callback holds nothing ----------------------------------------- */

enum { SENDS = 100 };

/* Exit codes of the status child. */
enum {
    CHILD_STATUS_FAILED = PPS_TEST_CHILD_ELOCAL, /* pps_ctl_status failed */
    CHILD_NOT_RELEASED,  /* the callback was never released */
    CHILD_NO_CALLBACK,   /* pps_ctl_status returned without a call */
};
static const pps_test_code child_codes[] = {
    {CHILD_STATUS_FAILED, "pps_ctl_status failed"},
    {CHILD_NOT_RELEASED, "the callback was not released: the sends did not "
                         "finish while it blocked"},
    {CHILD_NO_CALLBACK, "pps_ctl_status returned without calling back"},
    {0, NULL},
};

typedef struct blocker {
    int entered;  /* write end: "the callback runs" */
    int release;  /* read end: the parent's "return now" */
    int calls;
    bool released;
} blocker;

/* Tells the parent it runs, then blocks until the parent releases it (the
 * bound is only a safety net: 30 s, where 100 sends take well under 1). */
static int
block_until_released(const pps_queue_status *st, void *user)
{
    (void)st;
    blocker *b = user;
    b->calls++;
    char c = 'C';
    if (write(b->entered, &c, 1) != 1) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    b->released = pps_test_read_within(b->release, &c, 1, 30000);
    return 0;
}

Test(status, blocked_callback_in_one_process_stalls_no_sender_in_another,
     .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs2, NULL,
                                      "\"durability\": \"nosync\"");
    char *cfg_path = pps_test_config_path(dir);
    int release[2];
    cr_assert_eq(pipe(release), 0, "pipe: %s", strerror(errno));
    int entered;
    pid_t pid = pps_test_fork_piped(&entered);
    if (pid == 0) {
        close(release[1]);
        pps_config *ccfg = pps_test_child_config(cfg_path);
        blocker b = {.entered = entered, .release = release[0]};
        int rc = pps_ctl_status(ccfg, NULL, block_until_released, &b);
        if (rc != PPS_OK) {
            pps_test_child_fail(CHILD_STATUS_FAILED, "pps_ctl_status", rc);
        }
        pps_config_free(ccfg);
        _exit(b.calls != 1   ? CHILD_NO_CALLBACK
              : !b.released ? CHILD_NOT_RELEASED
                            : PPS_TEST_CHILD_OK);
    }
    /* The parent keeps release[0] open too: a write to it never raises
     * SIGPIPE, whatever the child did. */
    char c;
    cr_assert(pps_test_read_within(entered, &c, 1, 60000),
              "the status callback was never called");

    /* The callback now blocks in the child: every send must go through. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    for (int i = 0; i < SENDS; i++) {
        char text[16];
        int n = snprintf(text, sizeof(text), "m%d", i);
        int rc = pps_pub_send(pub, text, (size_t)n);
        cr_assert_eq(rc, PPS_OK, "send %d while a status callback blocks: "
                     "%s: %s", i, pps_status_name(rc), pps_last_error());
    }
    cr_assert_eq(write(release[1], "R", 1), 1);

    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "status child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "status child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), child_codes));
    cr_assert_eq(pps_test_queue_usage(cfg).count, SENDS);

    close(entered);
    close(release[0]);
    close(release[1]);
    pps_pub_close(pub);
    free(cfg_path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

typedef struct reentry {
    const pps_config *cfg;
    pps_pub *pub;
    int calls;
    int send_rc, open_rc, fresh_send_rc, receive_rc, nested_rc;
    int received;
} reentry;

static int
count_status(const pps_queue_status *st, void *user)
{
    (void)st;
    (*(int *)user)++;
    return 0;
}

/* Uses the library on the queue being reported: a send through a handle
 * opened before, a fresh publisher, a receive, a nested status. */
static int
use_the_queue(const pps_queue_status *st, void *user)
{
    (void)st;
    reentry *r = user;
    r->calls++;
    r->send_rc = pps_pub_send(r->pub, "in callback", 11);
    pps_pub *fresh = NULL;
    r->open_rc = pps_pub_open(&fresh, r->cfg, "pub");
    r->fresh_send_rc = fresh != NULL ? pps_pub_send(fresh, "fresh", 5)
                                     : r->open_rc;
    pps_pub_close(fresh);
    pps_sub *a = NULL;
    r->receive_rc = pps_sub_open(&a, r->cfg, "a");
    if (r->receive_rc == PPS_OK) {
        r->receive_rc = pps_sub_receive(a, 0, pps_test_count_calls,
                                        &r->received);
    }
    pps_sub_close(a);
    int nested = 0;
    r->nested_rc = pps_ctl_status(r->cfg, NULL, count_status, &nested);
    if (r->nested_rc == PPS_OK && nested != 1) {
        r->nested_rc = PPS_ECALLBACK;
    }
    return 0;
}

Test(status, callback_may_send_on_the_same_queue_in_the_same_process,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs2, NULL, NULL);
    reentry r = {.cfg = cfg, .pub = pps_test_pub_open(cfg, "pub")};
    cr_assert_eq(pps_pub_send(r.pub, "before", 6), PPS_OK);

    int rc = pps_ctl_status(cfg, NULL, use_the_queue, &r);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.send_rc, PPS_OK, "send in the callback: %s",
                 pps_status_name(r.send_rc));
    cr_assert_eq(r.open_rc, PPS_OK, "pub_open in the callback: %s",
                 pps_status_name(r.open_rc));
    cr_assert_eq(r.fresh_send_rc, PPS_OK, "fresh send in the callback: %s",
                 pps_status_name(r.fresh_send_rc));
    cr_assert_eq(r.receive_rc, PPS_OK, "receive in the callback: %s",
                 pps_status_name(r.receive_rc));
    cr_assert_eq(r.received, 1);
    cr_assert_eq(r.nested_rc, PPS_OK, "status in the callback: %s",
                 pps_status_name(r.nested_rc));

    /* b pends on all three; a consumed "before" in the callback. */
    pps_test_qstat q = pps_test_queue_status(cfg);
    cr_assert_eq(q.messages, 3);
    cr_assert_eq(q.pending[0], 2);
    cr_assert_eq(q.pending[1], 3);
    pps_test_expect_consistent(cfg);
    pps_pub_close(r.pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
