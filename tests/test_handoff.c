/*
 * Consumptions handed to the next writer (src/handoff.c): while a
 * publisher sends, a receive in a queue whose consumptions flush posts
 * what it consumed in its subscriber's slot of pps.wake, and the next send
 * commits it. The receive still returns only once the consumption is
 * committed (by the send, or by itself when no send came in time), and a
 * slot of another subscriber or of an earlier boot is never applied.
 *
 * This executable counts its own flushes (flush_count.h).
 */
#include "flush_count.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const char *const subs1[] = {"a", NULL};

/* The last id the callback saw. */
static int
note_id(const pps_message *msg, void *user)
{
    *(uint64_t *)user = msg->id;
    return 0;
}

static uint64_t
pending_of_a(const pps_config *cfg)
{
    return pps_test_queue_status(cfg).pending[0];
}

/* The child: sends one message per byte read from `cmd`, 0.3 ms after it
 * (so that the parent's receive posted its consumption and waits; sends
 * this close together are what a receive hands its consumption to), and
 * acknowledges each send on `ack`. */
static void
paced_publisher(const char *path, int cmd, int ack)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_pub *pub = pps_test_child_pub(cfg, "pub");
    char c;
    while (read(cmd, &c, 1) == 1) {
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
        int rc = pps_pub_send(pub, "m", 1);
        if (rc != PPS_OK) {
            pps_test_child_fail(PPS_TEST_CHILD_ESEND, "send", rc);
        }
        if (write(ack, "k", 1) != 1) {
            pps_test_child_fail(PPS_TEST_CHILD_EPIPE, "ack", PPS_OK);
        }
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

/* The callback of the parent: notes the id and asks for the next send
 * while the receive is still running. */
typedef struct pacer {
    uint64_t id;
    int cmd;
    bool more;
} pacer;

static int
note_and_ask(const pps_message *msg, void *user)
{
    pacer *p = user;
    p->id = msg->id;
    if (p->more && write(p->cmd, "s", 1) != 1) {
        return -1;
    }
    return 0;
}

static void post_raw(const char *dir, uint64_t tag, uint64_t boot,
                     uint64_t from, uint64_t through);
static void poison_applied(const char *dir);

/* With `poisoned`, slot 0 ("a"'s) starts with an "applied" a writer left
 * behind (a late writer of a posting of the slot's former owner): "a"
 * hands over and consumes as if it were not there. (That such a mark
 * never counts as a posting of the new owner is test_wakeup.c's
 * wakeup::a_late_applied_mark_names_no_posting_of_the_new_owner: here the
 * send the test waits for would hide a receive that returned early.) */
static void
paced_round(bool poisoned)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs1, NULL, NULL); /* sync */
    if (poisoned) {
        poison_applied(dir);
    }
    char *path = pps_test_config_path(dir);
    int cmd[2], ack[2];
    cr_assert_eq(pipe(cmd), 0);
    cr_assert_eq(pipe(ack), 0);
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        close(cmd[1]);
        close(ack[0]);
        paced_publisher(path, cmd[0], ack[1]);
    }
    close(cmd[0]);
    close(ack[1]);
    pps_sub *a = pps_test_sub_open(cfg, "a");

    const int n = 40;
    char k;
    cr_assert_eq(write(cmd[1], "s", 1), 1);
    cr_assert(pps_test_read_within(ack[0], &k, 1, 10000));
    atomic_store(&pps_test_flushes, 0);
    for (int i = 0; i < n; i++) {
        pacer p = {0, cmd[1], i + 1 < n};
        cr_assert_eq(pps_sub_receive(a, 5000, note_and_ask, &p), PPS_OK,
                     "receive %d: %s", i, pps_last_error());
        cr_assert_eq(p.id, (uint64_t)i + 1, "receive %d got message %llu",
                     i, (unsigned long long)p.id);
        /* Message i is consumed when the receive returns, whoever
         * committed it: once the send the callback asked for is done,
         * exactly that one message pends. */
        if (p.more) {
            cr_assert(pps_test_read_within(ack[0], &k, 1, 10000));
        }
        uint64_t pending = pending_of_a(cfg);
        cr_assert_eq(pending, p.more ? 1 : 0,
                     "after receive %d, %llu messages pend", i,
                     (unsigned long long)pending);
    }
    int own = atomic_load(&pps_test_flushes);
    close(cmd[1]);
    pps_test_wait_ok(pid);
    close(ack[0]);
    /* How many receives a send carried depends on timing (a receive
     * hands over only while sends come close together, and one
     * preempted between its callback and its posting misses the send the
     * callback asked for); a_fast_publisher_carries_consumptions checks
     * that sends do carry them. */
    cr_log_info("the subscriber flushed %d times in %d receives", own, n);

    pps_sub_close(a);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(handoff, a_send_commits_the_consumption_the_receive_waits_for,
     .timeout = 120)
{
    paced_round(false);
}

Test(handoff, receives_hand_over_past_a_stale_applied_mark,
     .timeout = 120)
{
    paced_round(true);
}

/* The child: sends n messages as fast as it can. */
static void
fast_publisher(const char *path, int n)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_pub *pub = pps_test_child_pub(cfg, "pub");
    for (int i = 0; i < n; i++) {
        int rc = pps_pub_send(pub, "m", 1);
        if (rc != PPS_OK) {
            pps_test_child_fail(PPS_TEST_CHILD_ESEND, "send", rc);
        }
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

Test(handoff, a_fast_publisher_carries_consumptions, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs1, NULL, NULL); /* sync */
    char *path = pps_test_config_path(dir);
    pps_sub *a = pps_test_sub_open(cfg, "a");
    const int n = 400;
    pid_t parent = getpid();
    atomic_store(&pps_test_flushes, 0);
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        fast_publisher(path, n);
    }
    for (int i = 0; i < n; i++) {
        uint64_t id = 0;
        cr_assert_eq(pps_sub_receive(a, 10000, note_id, &id), PPS_OK,
                     "receive %d: %s", i, pps_last_error());
        cr_assert_eq(id, (uint64_t)i + 1, "receive %d got message %llu", i,
                     (unsigned long long)id);
    }
    int own = atomic_load(&pps_test_flushes);
    pps_test_wait_ok(pid);
    cr_assert_eq(pending_of_a(cfg), 0);
    pps_test_expect_consistent(cfg);
    /* Each receive that committed its consumption itself flushed once. */
    cr_assert(own < n, "the subscriber flushed %d times in %d receives: "
                       "no send carried a consumption",
              own, n);
    cr_log_info("the subscriber flushed %d times in %d receives", own, n);
    pps_sub_close(a);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- the slots in pps.wake (docs/format.rst) ---------------------------- */

#define SLOTS_AT 80
#define SLOT_SIZE 48

static uint64_t
fnv(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return h != 0 ? h : 1;
}

static void
boot_id(char out[40])
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(out, 40, f));
    fclose(f);
    out[strcspn(out, "\n ")] = '\0';
}

/* Writes slot 0 as a receiving handle would: tag, boot, from, through,
 * a nonce (applied: none). */
static void
post_raw(const char *dir, uint64_t tag, uint64_t boot, uint64_t from,
         uint64_t through)
{
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    int fd = open(wake, O_RDWR);
    cr_assert_geq(fd, 0, "%s: %s", wake, strerror(errno));
    static uint64_t nonce = 1000;
    uint64_t slot[6] = {tag, boot, from, through, ++nonce, 0};
    cr_assert_eq(pwrite(fd, slot, sizeof(slot), SLOTS_AT), SLOT_SIZE);
    close(fd);
    free(wake);
}

/* Slot 0 as "a"'s in this boot, no posting, and an "applied" of some
 * other posting. */
static void
poison_applied(const char *dir)
{
    char boot[40];
    boot_id(boot);
    post_raw(dir, fnv("a"), fnv(boot), 0, 0);
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    int fd = open(wake, O_RDWR);
    cr_assert_geq(fd, 0, "%s: %s", wake, strerror(errno));
    uint64_t none = 0, applied = 0x123456789abcdefu;
    cr_assert_eq(pwrite(fd, &none, 8, SLOTS_AT + 32), 8);    /* nonce */
    cr_assert_eq(pwrite(fd, &applied, 8, SLOTS_AT + 40), 8); /* applied */
    close(fd);
    free(wake);
}

Test(handoff, a_slot_of_another_subscriber_or_boot_is_never_applied,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    static const char *const subs2[] = {"a", "b", NULL};
    pps_config *cfg = pps_test_simple(dir, subs2, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    char boot[40];
    boot_id(boot);

    cr_assert_eq(pps_pub_send(pub, "1", 1), PPS_OK); /* id 1 */
    /* Slot 0 is "a"'s (the first registered). */
    post_raw(dir, fnv("a"), fnv("an earlier boot"), 1, 1);
    cr_assert_eq(pps_pub_send(pub, "2", 1), PPS_OK);
    cr_assert_eq(pending_of_a(cfg), 2, "a posting of another boot applied");

    post_raw(dir, fnv("b"), fnv(boot), 1, 1);
    cr_assert_eq(pps_pub_send(pub, "3", 1), PPS_OK);
    cr_assert_eq(pending_of_a(cfg), 3,
                 "another subscriber's posting applied to \"a\"");

    /* The same, but "a"'s and this boot's: the next send consumes 1 and
     * 2 for "a", and "b" still has everything. */
    post_raw(dir, fnv("a"), fnv(boot), 1, 2);
    cr_assert_eq(pps_pub_send(pub, "4", 1), PPS_OK);
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_eq(st.pending[0], 2, "\"a\" pends on %llu",
                 (unsigned long long)st.pending[0]);
    cr_assert_eq(st.pending[1], 4);
    pps_test_expect_consistent(cfg);

    /* Applied once: sends after it change nothing more. */
    cr_assert_eq(pps_pub_send(pub, "5", 1), PPS_OK);
    cr_assert_eq(pending_of_a(cfg), 3);

    pps_sub *a = pps_test_sub_open(cfg, "a");
    uint64_t id = 0;
    cr_assert_eq(pps_sub_receive(a, 0, note_id, &id), PPS_OK);
    cr_assert_eq(id, 3, "\"a\" got %llu first", (unsigned long long)id);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(handoff, an_init_that_starts_data_mdb_afresh_forgets_the_slots,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs1, NULL, NULL);
    char boot[40];
    boot_id(boot);
    /* A posting left from a data.mdb that is gone: ids start over. */
    char *data = pps_test_path_in(dir, "q/data.mdb");
    char *lock = pps_test_path_in(dir, "q/lock.mdb");
    cr_assert_eq(unlink(data), 0);
    cr_assert_eq(unlink(lock), 0);
    post_raw(dir, fnv("a"), fnv(boot), 1, 1);
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());

    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "1", 1), PPS_OK);
    cr_assert_eq(pps_pub_send(pub, "2", 1), PPS_OK);
    cr_assert_eq(pending_of_a(cfg), 2, "a stale posting consumed a new "
                                       "message");
    pps_pub_close(pub);
    free(lock);
    free(data);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* Slot 0's tag as pps.wake holds it. */
static uint64_t
slot0_tag(const char *dir)
{
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    int fd = open(wake, O_RDONLY);
    cr_assert_geq(fd, 0, "%s: %s", wake, strerror(errno));
    uint64_t tag = 0;
    cr_assert_eq(pread(fd, &tag, sizeof(tag), SLOTS_AT), sizeof(tag));
    close(fd);
    free(wake);
    return tag;
}

Test(handoff, a_send_of_the_receiving_process_is_no_sign_of_a_publisher,
     .timeout = 60)
{
    /* The thread that receives may be the one that sent: waiting for
     * the next send would wait for itself. Its receive commits at once
     * and posts nothing. */
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_simple(dir, subs1, NULL, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *a = pps_test_sub_open(cfg, "a");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
        uint64_t id = 0;
        cr_assert_eq(pps_sub_receive(a, 0, note_id, &id), PPS_OK);
        cr_assert_eq(id, (uint64_t)i + 1);
        cr_assert_eq(pending_of_a(cfg), 0);
    }
    cr_assert_eq(slot0_tag(dir), 0, "a receive posted its consumption");
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
