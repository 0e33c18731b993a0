/*
 * Crash tests: publishers and subscribers killed with a real SIGKILL at
 * chosen and at random points, then the queue reopened and checked: nothing
 * committed is lost, nothing half-sent is seen, a message whose receiver
 * died is delivered again, reader slots of dead processes are reclaimed, and
 * the queue stays consistent (pps_ctl_check, a second pps_ctl_init,
 * pps_ctl_prune).
 *
 * Every child loads its own configuration and opens its own handles, and
 * leaves with _exit() or by the signal; it never returns into Criterion.
 * The parent checks every child's wait status: the killed ones must have
 * died of SIGKILL, not of a failure of their own (exit codes
 * PPS_TEST_CHILD_* and CHILD_*).
 *
 * Every test runs in each durability mode ("sync", "nometasync",
 * "nosync"): a process crash must lose nothing in any of them. A publisher
 * child writes each batch it was acknowledged (PPS_OK) to a pipe, and what
 * the subscribers get is compared with that: nothing acknowledged lost,
 * nothing unacknowledged beyond the batch in flight when it died, order
 * kept.
 *
 * Random delays come from a seed printed at the start of each test; set
 * PPS_TEST_SEED to replay one.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exit codes of the children beyond the shared PPS_TEST_CHILD_* ones. */
enum {
    /* the expected message did not come */
    CHILD_ENOMSG = PPS_TEST_CHILD_ELOCAL,
};

static const pps_test_code CHILD_CODES[] = {
    {CHILD_ENOMSG, "the expected message did not come"},
    {0, NULL},
};

/* The seed of this test's random choices, logged so a failure can be
 * replayed with PPS_TEST_SEED. */
static unsigned
test_seed(void)
{
    const char *env = getenv("PPS_TEST_SEED");
    unsigned seed = env != NULL && env[0] != '\0'
                        ? (unsigned)strtoul(env, NULL, 10)
                        : (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
    cr_log_info("PPS_TEST_SEED=%u", seed);
    srand(seed);
    return seed;
}

static int
rand_between(int lo, int hi)
{
    return lo + rand() % (hi - lo + 1);
}

/* Kills a child (if still there) and fails the test unless it died of that
 * SIGKILL: a child that ended on its own has failed. */
static void
kill_and_reap(pid_t pid, const char *what)
{
    kill(pid, SIGKILL);
    int st = pps_test_wait(pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "%s (pid %d) did not die of SIGKILL: %s %d (%s)", what, (int)pid,
              WIFEXITED(st) ? "exit" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
              WIFEXITED(st)
                  ? pps_test_child_code_name(WEXITSTATUS(st), CHILD_CODES)
                  : "");
}

/* ---- a subscriber killed inside its callback ---------------------------- */

/* What a child reports from inside its callback. */
typedef struct report {
    uint64_t id;
    uint32_t len;
    char text[32];
} report;

typedef struct reporter {
    int fd;
    int count;    /* messages reported so far */
    int pause_at; /* after reporting this many, sleep until killed */
} reporter;

static int
report_cb(const pps_message *msg, void *user)
{
    reporter *r = user;
    report rep = {.id = msg->id, .len = (uint32_t)msg->len};
    memcpy(rep.text, msg->data,
           msg->len < sizeof(rep.text) ? msg->len : sizeof(rep.text) - 1);
    if (write(r->fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    if (++r->count >= r->pause_at) {
        for (;;) {
            pause(); /* killed in here, the message not consumed */
        }
    }
    return 0;
}

/* Opens subscriber s1 and receives (in batches of batch_max if non-zero),
 * reporting every message, until it pauses after pause_at of them. */
static void
reporting_subscriber(const char *path, int fd, int pause_at, size_t batch_max)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_sub *sub = pps_test_child_sub(cfg, "s1");
    reporter r = {.fd = fd, .pause_at = pause_at};
    for (;;) {
        int rc = batch_max > 0 ? pps_sub_receive_batch(sub, batch_max, 10000,
                                                       report_cb, &r)
                               : pps_sub_receive(sub, 10000, report_cb, &r);
        if (rc < 0) {
            pps_test_child_fail(rc == PPS_ETIMEDOUT ? CHILD_ENOMSG
                                                    : PPS_TEST_CHILD_ERECEIVE,
                                "s1", rc);
        }
    }
}

static void
send_texts(pps_pub *pub, int n)
{
    for (int i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "msg-%02d", i);
        cr_assert_eq(pps_pub_send(pub, text, strlen(text)), PPS_OK, "%s",
                     pps_last_error());
    }
}

static void
subscriber_killed_in_callback_gets_the_message_again(const char *durability)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", NULL};
    /* Few reader slots: if a dead process's slot were not reclaimed, the
     * cycles below would run out of them. */
    char extra[96];
    snprintf(extra, sizeof(extra),
             "\"max_reader_num\": 8, \"durability\": \"%s\"", durability);
    pps_config *cfg = pps_test_simple(dir, subs, NULL, extra);
    char *path = pps_test_config_path(dir);
    enum { MESSAGES = 30, CYCLES = 20 };

    /* The publisher stays open all along, so this process keeps the
     * environment open and the children never open it first (a first
     * opener resets LMDB's reader table, which would hide stale slots). */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    send_texts(pub, MESSAGES);

    uint64_t first_id = 0;
    int next = 0; /* index of the oldest message not consumed yet */
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        int fd;
        pid_t pid = pps_test_fork_piped(&fd);
        if (pid == 0) {
            reporting_subscriber(path, fd, 1, 0);
        }
        report rep;
        bool got = pps_test_read_within(fd, &rep, sizeof(rep), 30000);
        if (!got) {
            kill_and_reap(pid, "subscriber"); /* names its failure */
        }
        cr_assert(got, "cycle %d: the subscriber reported nothing", cycle);
        kill_and_reap(pid, "subscriber");
        close(fd);

        char want[32];
        snprintf(want, sizeof(want), "msg-%02d", next);
        if (cycle == 0) {
            first_id = rep.id;
        }
        cr_assert_eq(rep.id, first_id + (uint64_t)next,
                     "cycle %d: the child got id %llu, expected %llu", cycle,
                     (unsigned long long)rep.id,
                     (unsigned long long)(first_id + (uint64_t)next));
        cr_assert_str_eq(rep.text, want, "cycle %d", cycle);

        /* On even cycles this process takes the message the dead child
         * left: the same id and payload. On odd cycles it leaves it, and
         * the next child must get it again. */
        if (cycle % 2 == 0) {
            pps_sub *sub = NULL;
            cr_assert_eq(pps_sub_open(&sub, cfg, "s1"), PPS_OK, "cycle %d: %s",
                         cycle, pps_last_error());
            pps_test_sink sink = {0};
            int rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
            cr_assert_eq(rc, PPS_OK, "cycle %d: %s: %s", cycle,
                         pps_status_name(rc), pps_last_error());
            cr_assert_eq(sink.n, 1);
            cr_assert_eq(sink.ids[0], rep.id,
                         "cycle %d: redelivered id %llu, the dead child had "
                         "%llu",
                         cycle, (unsigned long long)sink.ids[0],
                         (unsigned long long)rep.id);
            cr_assert_eq(sink.lens[0], rep.len);
            cr_assert_str_eq(sink.data[0], rep.text);
            pps_test_sink_free(&sink);
            pps_sub_close(sub);
            next++;
        }
    }

    /* The rest comes in order, once. */
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink sink = {0};
    cr_assert_eq(pps_test_drain(sub, &sink), (size_t)(MESSAGES - next));
    for (size_t i = 0; i < sink.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "msg-%02d", next + (int)i);
        cr_assert_str_eq(sink.data[i], want);
        cr_assert_eq(sink.ids[i], first_id + (uint64_t)next + i);
    }
    pps_test_sink_free(&sink);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_test_expect_consistent(cfg);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(crash, subscriber_killed_in_callback_gets_the_message_again_sync,
     .timeout = 120)
{
    subscriber_killed_in_callback_gets_the_message_again("sync");
}

Test(crash, subscriber_killed_in_callback_gets_the_message_again_nometasync,
     .timeout = 120)
{
    subscriber_killed_in_callback_gets_the_message_again("nometasync");
}

Test(crash, subscriber_killed_in_callback_gets_the_message_again_nosync,
     .timeout = 120)
{
    subscriber_killed_in_callback_gets_the_message_again("nosync");
}

static void
reader_slots_of_killed_processes_are_reclaimed_on_open(const char *durability)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", NULL};
    enum { READERS = 8 };
    char extra[96];
    snprintf(extra, sizeof(extra),
             "\"max_reader_num\": 8, \"durability\": \"%s\"", durability);
    pps_config *cfg = pps_test_simple(dir, subs, NULL, extra);
    char *path = pps_test_config_path(dir);

    /* This process keeps the queue open (a publisher uses no reader slot)
     * while READERS subscriber processes take every slot and are killed
     * inside their callbacks. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "only", 4), PPS_OK, "%s", pps_last_error());
    pid_t pids[READERS];
    int fds[READERS];
    for (int i = 0; i < READERS; i++) {
        pids[i] = pps_test_fork_piped(&fds[i]);
        if (pids[i] == 0) {
            reporting_subscriber(path, fds[i], 1, 0);
        }
    }
    for (int i = 0; i < READERS; i++) {
        report rep;
        bool got = pps_test_read_within(fds[i], &rep, sizeof(rep), 30000);
        if (!got) {
            kill_and_reap(pids[i], "subscriber");
        }
        cr_assert(got, "subscriber %d reported nothing", i);
        cr_assert_str_eq(rep.text, "only");
    }
    for (int i = 0; i < READERS; i++) {
        kill_and_reap(pids[i], "subscriber");
        close(fds[i]);
    }

    /* Every slot now belongs to a dead process. Opening a subscriber must
     * clear them, also in this process, whose environment is already open. */
    pps_sub *sub = NULL;
    int rc = pps_sub_open(&sub, cfg, "s1");
    cr_assert_eq(rc, PPS_OK,
                 "opening a subscriber after %d readers were killed: %s: %s",
                 READERS, pps_status_name(rc), pps_last_error());
    pps_test_sink sink = {0};
    rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(sink.n, 1);
    cr_assert_str_eq(sink.data[0], "only");
    pps_test_sink_free(&sink);
    pps_sub_close(sub);
    pps_pub_close(pub);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(crash, reader_slots_of_killed_processes_are_reclaimed_on_open_sync,
     .timeout = 120)
{
    reader_slots_of_killed_processes_are_reclaimed_on_open("sync");
}

Test(crash, reader_slots_of_killed_processes_are_reclaimed_on_open_nometasync,
     .timeout = 120)
{
    reader_slots_of_killed_processes_are_reclaimed_on_open("nometasync");
}

Test(crash, reader_slots_of_killed_processes_are_reclaimed_on_open_nosync,
     .timeout = 120)
{
    reader_slots_of_killed_processes_are_reclaimed_on_open("nosync");
}

/* ---- what children report through pipes --------------------------------- */

/* The 64-bit numbers a child wrote to a pipe before it was killed: the ids
 * a subscriber took, or the batches a publisher was acknowledged. */
typedef struct idlog {
    int fd; /* -1 once at EOF */
    uint64_t *ids;
    size_t n, cap;
    unsigned char carry[8];
    size_t ncarry;
} idlog;

static void
idlog_feed(idlog *l, const unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        l->carry[l->ncarry++] = buf[i];
        if (l->ncarry < sizeof(l->carry)) {
            continue;
        }
        l->ncarry = 0;
        if (l->n == l->cap) {
            l->cap = l->cap == 0 ? 4096 : l->cap * 2;
            l->ids = realloc(l->ids, l->cap * sizeof(*l->ids));
            cr_assert_not_null(l->ids);
        }
        memcpy(&l->ids[l->n++], l->carry, sizeof(uint64_t));
    }
}

/* Reads what the logs' pipes bring for ms milliseconds, or until every one
 * is at EOF when ms is negative (up to 4 logs). */
static void
pump(idlog *logs, int n, int ms)
{
    int64_t deadline =
        pps_test_mono_ns() + (int64_t)(ms < 0 ? 30000 : ms) * 1000000;
    for (;;) {
        struct pollfd p[4];
        int open = 0;
        for (int i = 0; i < n; i++) {
            p[i].fd = logs[i].fd;
            p[i].events = POLLIN;
            p[i].revents = 0;
            open += logs[i].fd >= 0;
        }
        int64_t left = (deadline - pps_test_mono_ns()) / 1000000;
        if (open == 0 || left <= 0) {
            cr_assert(ms >= 0 || open == 0, "pipes still open after 30 s");
            return;
        }
        int r = poll(p, (nfds_t)n, (int)left);
        if (r < 0) {
            cr_assert_eq(errno, EINTR, "poll: %s", strerror(errno));
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (p[i].fd < 0 || (p[i].revents & (POLLIN | POLLHUP)) == 0) {
                continue;
            }
            unsigned char buf[4096];
            ssize_t k = read(p[i].fd, buf, sizeof(buf));
            if (k > 0) {
                idlog_feed(&logs[i], buf, (size_t)k);
            } else if (k == 0) {
                close(logs[i].fd);
                logs[i].fd = -1;
            }
        }
    }
}

/* Reads from one log until it holds `want` numbers, never more than it
 * needs; false if the pipe ends or timeout_ms passes first. */
static bool
pump_until(idlog *l, size_t want, int timeout_ms)
{
    while (l->n < want) {
        unsigned char buf[4096];
        size_t need = (want - l->n) * sizeof(uint64_t) - l->ncarry;
        if (need > sizeof(buf)) {
            need = sizeof(buf);
        }
        if (l->fd < 0 || !pps_test_read_within(l->fd, buf, need, timeout_ms)) {
            return false;
        }
        idlog_feed(l, buf, need);
    }
    return true;
}

/* ---- batches: all or nothing, in order ---------------------------------- */

#define PAY_MAGIC 0x70707321u
#define PAY_FILL 496

/* The payload of a batched message. */
typedef struct payload {
    uint32_t magic;
    uint32_t round;
    uint32_t batch;
    uint32_t index;
    char fill[PAY_FILL]; /* a byte pattern of (batch, index): no torn copy */
} payload;

static int
fill_byte(uint32_t batch, uint32_t index)
{
    return 'a' + (int)((batch + index) % 26);
}

/* The most rounds a test runs (batches of the last one included). */
#define MAX_ROUNDS 16

/* Verifies, message by message, that a drain shows whole batches of
 * batch_len with consecutive ids, in order: by round, and within a round by
 * batch number from 0 up with none missing. What it cannot see alone (a
 * lost trailing batch or round) expect_acked() compares with what the
 * publisher was told. */
typedef struct batch_check {
    uint32_t batch_len;
    uint32_t per_round[MAX_ROUNDS]; /* batches begun, per round */
    bool started;
    uint64_t last_id;
    uint32_t round, batch, index; /* index: next expected in the batch */
    size_t messages, batches;
    uint64_t *ids; /* every id seen */
    size_t cap;
    char error[256];
} batch_check;

static int
batch_check_cb(const pps_message *msg, void *user)
{
    batch_check *c = user;
    payload p;
    if (c->error[0] != '\0') {
        return 1;
    }
    if (msg->len != sizeof(p)) {
        snprintf(c->error, sizeof(c->error), "id %llu: %zu bytes",
                 (unsigned long long)msg->id, msg->len);
        return 1;
    }
    memcpy(&p, msg->data, sizeof(p));
    bool torn = p.magic != PAY_MAGIC || p.round >= MAX_ROUNDS;
    for (size_t i = 0; i < sizeof(p.fill) && !torn; i++) {
        torn = p.fill[i] != fill_byte(p.batch, p.index);
    }
    if (torn) {
        snprintf(c->error, sizeof(c->error), "id %llu: corrupt payload",
                 (unsigned long long)msg->id);
        return 1;
    }
    if (c->started && msg->id <= c->last_id) {
        snprintf(c->error, sizeof(c->error), "id %llu after id %llu",
                 (unsigned long long)msg->id, (unsigned long long)c->last_id);
        return 1;
    }
    bool ok;
    if (c->started && c->index < c->batch_len) {
        /* Inside a batch: the next message of the same one. */
        ok = p.round == c->round && p.batch == c->batch &&
             p.index == c->index && msg->id == c->last_id + 1;
    } else if (!c->started) {
        ok = p.index == 0 && p.batch == 0;
    } else {
        /* A new batch: the next of this round or the first of a later one. */
        ok = p.index == 0 &&
             ((p.round == c->round && p.batch == c->batch + 1) ||
              (p.round > c->round && p.batch == 0));
    }
    if (!ok) {
        snprintf(c->error, sizeof(c->error),
                 "id %llu is (round %u, batch %u, index %u) after id %llu "
                 "(round %u, batch %u, next index %u)",
                 (unsigned long long)msg->id, p.round, p.batch, p.index,
                 (unsigned long long)c->last_id, c->round, c->batch, c->index);
        return 1;
    }
    if (p.index == 0) {
        c->batches++;
        c->per_round[p.round]++;
    }
    c->started = true;
    c->round = p.round;
    c->batch = p.batch;
    c->index = p.index + 1;
    c->last_id = msg->id;
    if (c->messages == c->cap) {
        c->cap = c->cap == 0 ? 4096 : c->cap * 2;
        c->ids = realloc(c->ids, c->cap * sizeof(*c->ids));
        if (c->ids == NULL) {
            snprintf(c->error, sizeof(c->error), "out of memory");
            return 1;
        }
    }
    c->ids[c->messages++] = msg->id;
    return 0;
}

/* Drains subscriber sub_id through the batch check; fails the test on any
 * violation or an incomplete last batch. */
static void
drain_batches(const pps_config *cfg, const char *sub_id, batch_check *c)
{
    pps_sub *sub = pps_test_sub_open(cfg, sub_id);
    int rc;
    do {
        rc = pps_sub_receive_batch(sub, 500, 0, batch_check_cb, c);
        cr_assert(c->error[0] == '\0', "%s: %s", sub_id, c->error);
    } while (rc > 0);
    cr_assert_eq(rc, PPS_ETIMEDOUT, "%s: %s: %s", sub_id, pps_status_name(rc),
                 pps_last_error());
    cr_assert(!c->started || c->index == c->batch_len,
              "%s: the last batch (round %u, batch %u) stops at index %u",
              sub_id, c->round, c->batch, c->index);
    pps_sub_close(sub);
}

static void
fill_batch(payload *p, pps_buf *bufs, uint32_t n, uint32_t round,
           uint32_t batch)
{
    for (uint32_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].magic = PAY_MAGIC;
        p[i].round = round;
        p[i].batch = batch;
        p[i].index = i;
        memset(p[i].fill, fill_byte(batch, i), sizeof(p[i].fill));
        bufs[i].data = &p[i];
        bufs[i].len = sizeof(p[i]);
    }
}

/* Sends batches of batch_len numbered from 0 until killed (or, after
 * max_batches, waits to be killed); after each PPS_OK it writes the batch's
 * number (a uint64_t) to ack_fd: what the publisher was told, the only
 * thing a crash must not take back. */
static void
batch_publisher(const char *path, uint32_t round, uint32_t batch_len,
                uint32_t max_batches, int ack_fd)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_pub *pub = pps_test_child_pub(cfg, "pub");
    int rc;
    payload *p = calloc(batch_len, sizeof(*p));
    pps_buf *bufs = calloc(batch_len, sizeof(*bufs));
    if (p == NULL || bufs == NULL) {
        _exit(PPS_TEST_CHILD_ESEND);
    }
    for (uint32_t b = 0; b < max_batches; b++) {
        fill_batch(p, bufs, batch_len, round, b);
        rc = pps_pub_send_many(pub, bufs, batch_len);
        if (rc != PPS_OK) {
            pps_test_child_fail(PPS_TEST_CHILD_ESEND, "pub", rc);
        }
        uint64_t ack = b;
        if (write(ack_fd, &ack, sizeof(ack)) != (ssize_t)sizeof(ack)) {
            _exit(PPS_TEST_CHILD_EPIPE);
        }
    }
    for (;;) {
        pause();
    }
}

/* The acknowledgements acks->ids[from..to) of one publisher process must
 * be its batches 0, 1, 2, ... in order; returns how many there are. */
static uint32_t
acked_batches(const idlog *acks, size_t from, size_t to, uint32_t round)
{
    for (size_t i = from; i < to; i++) {
        cr_assert_eq(acks->ids[i], (uint64_t)(i - from),
                     "round %u: acknowledgement %zu is batch %llu", round,
                     i - from, (unsigned long long)acks->ids[i]);
    }
    return (uint32_t)(to - from);
}

/* What a subscriber holds of round `round` against what its publisher was
 * told: every acknowledged batch (the check saw batches 0 .. n-1 without a
 * gap), and beyond them at most the batch in flight when the publisher
 * died (committed, not yet acknowledged), whole. */
static void
expect_acked(const batch_check *c, uint32_t round, uint32_t acked,
             const char *who)
{
    uint32_t got = c->per_round[round];
    cr_assert(got >= acked,
              "%s: round %u: %u acknowledged batches, %u delivered: an "
              "acknowledged batch was lost",
              who, round, acked, got);
    cr_assert(got <= acked + 1,
              "%s: round %u: %u acknowledged batches, %u delivered: more "
              "than the one batch in flight",
              who, round, acked, got);
}

/* Limits far above what the tests send: nothing is pruned. */
#define NO_PRUNING                                                            \
    "{\"MSG_TIMEOUT_SECS\": 36000, \"MAX_MSGS_NUM\": 100000000, "             \
    "\"HWM_LMDB_SIZE_BYTES\": 1000000000000}"

/* Ten rounds: a publisher sends batches and is killed, then both
 * subscribers are drained and compared with what it was acknowledged. In
 * even rounds the kill comes after a random 10 to 300 ms (at most
 * MAX_BATCHES batches, which bounds the volume of a fast queue), in odd
 * rounds after a random number of acknowledgements and a few microseconds:
 * the publisher is inside send_many nearly all the time, so that is where
 * the kill lands. */
static void
publisher_killed_in_send_many(const char *durability)
{
    unsigned seed = test_seed();
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", "s2", NULL};
    char extra[64];
    snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", durability);
    pps_config *cfg = pps_test_simple(dir, subs, NO_PRUNING, extra);
    char *path = pps_test_config_path(dir);
    enum { ROUNDS = 10, BATCH = 100, MAX_BATCHES = 400 };

    /* Both subscribers are drained after every round (keeping the queue
     * small); their checks carry over from round to round. */
    batch_check c1 = {.batch_len = BATCH}, c2 = {.batch_len = BATCH};
    for (uint32_t round = 0; round < ROUNDS; round++) {
        idlog acks = {.fd = -1};
        pid_t pid = pps_test_fork_piped(&acks.fd);
        if (pid == 0) {
            batch_publisher(path, round, BATCH, MAX_BATCHES, acks.fd);
        }
        if (round % 2 == 0) {
            pump(&acks, 1, rand_between(10, 300));
        } else {
            size_t want = (size_t)rand_between(0, 150);
            bool ok = pump_until(&acks, want, 30000);
            if (!ok) {
                kill_and_reap(pid, "publisher"); /* names its failure */
            }
            cr_assert(ok, "round %u: the publisher stalled after %zu of %zu "
                      "acknowledgements", round, acks.n, want);
            struct timespec ts = {.tv_nsec = rand_between(0, 2000) * 1000L};
            nanosleep(&ts, NULL);
        }
        kill_and_reap(pid, "publisher");
        pump(&acks, 1, -1); /* every acknowledgement, to EOF */
        uint32_t acked = acked_batches(&acks, 0, acks.n, round);
        drain_batches(cfg, "s1", &c1);
        drain_batches(cfg, "s2", &c2);
        expect_acked(&c1, round, acked, "s1");
        expect_acked(&c2, round, acked, "s2");
        free(acks.ids);
    }

    /* Whatever the last writer left behind, the next one commits. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    payload p[BATCH];
    pps_buf bufs[BATCH];
    fill_batch(p, bufs, BATCH, ROUNDS, 0);
    cr_assert_eq(pps_pub_send_many(pub, bufs, BATCH), PPS_OK, "%s",
                 pps_last_error());
    pps_pub_close(pub);

    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "second init: %s",
                 pps_last_error());
    cr_assert_eq(pps_ctl_prune(cfg), PPS_OK, "prune: %s", pps_last_error());
    pps_test_expect_consistent(cfg);
    drain_batches(cfg, "s1", &c1);
    drain_batches(cfg, "s2", &c2);
    expect_acked(&c1, ROUNDS, 1, "s1");
    expect_acked(&c2, ROUNDS, 1, "s2");
    cr_log_info("%s: seed %u: %zu complete batches in %d rounds", durability,
                seed, c1.batches, ROUNDS);
    cr_assert_eq(c1.round, ROUNDS,
                 "the batch sent after the kills is not "
                 "the last one");
    cr_assert_eq(c1.per_round[ROUNDS], 1);
    cr_assert_gt(c1.batches, 1);
    cr_assert_eq(c1.messages, c1.batches * BATCH);
    cr_assert_eq(c2.messages, c1.messages);
    cr_assert_eq(memcmp(c1.ids, c2.ids, c1.messages * sizeof(*c1.ids)), 0,
                 "the subscribers got different ids");
    pps_test_expect_consistent(cfg);
    free(c1.ids);
    free(c2.ids);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(crash, publisher_killed_in_send_many_sync, .timeout = 180)
{
    publisher_killed_in_send_many("sync");
}

Test(crash, publisher_killed_in_send_many_nometasync, .timeout = 180)
{
    publisher_killed_in_send_many("nometasync");
}

Test(crash, publisher_killed_in_send_many_nosync, .timeout = 180)
{
    publisher_killed_in_send_many("nosync");
}

/* ---- a subscriber killed in the middle of a batch ----------------------- */

static int
accept_two(const pps_message *msg, void *user)
{
    int *n = user;
    (void)msg;
    return (*n)++ < 2 ? 0 : 1;
}

static void
subscriber_killed_in_receive_batch_gets_the_batch_again(const char *durability)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", NULL};
    char extra[64];
    snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", durability);
    pps_config *cfg = pps_test_simple(dir, subs, NULL, extra);
    char *path = pps_test_config_path(dir);
    enum { MESSAGES = 10, KILL_AFTER = 4 };

    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    send_texts(pub, MESSAGES);
    pps_pub_close(pub);

    /* A batch that refuses its third message consumes the first two. */
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    int seen = 0;
    int rc = pps_sub_receive_batch(sub, MESSAGES, 0, accept_two, &seen);
    cr_assert_eq(rc, 2, "%s", pps_status_name(rc));
    pps_sub_close(sub);

    /* A child's batch dies inside the callback of its fourth message. */
    int fd;
    pid_t pid = pps_test_fork_piped(&fd);
    if (pid == 0) {
        reporting_subscriber(path, fd, KILL_AFTER, MESSAGES);
    }
    report reps[KILL_AFTER];
    for (int i = 0; i < KILL_AFTER; i++) {
        bool got = pps_test_read_within(fd, &reps[i], sizeof(reps[i]), 30000);
        if (!got) {
            kill_and_reap(pid, "subscriber");
        }
        cr_assert(got, "the subscriber reported %d messages of %d", i,
                  KILL_AFTER);
        char want[32];
        snprintf(want, sizeof(want), "msg-%02d", 2 + i);
        cr_assert_str_eq(reps[i].text, want);
    }
    kill_and_reap(pid, "subscriber");
    close(fd);

    /* The whole batch comes again, from its first message, in order. */
    sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink sink = {0};
    rc = pps_sub_receive_batch(sub, 100, 0, pps_test_collect, &sink);
    cr_assert_eq(rc, MESSAGES - 2, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(sink.n, (size_t)(MESSAGES - 2));
    for (size_t i = 0; i < sink.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "msg-%02d", 2 + (int)i);
        cr_assert_str_eq(sink.data[i], want);
        if (i < KILL_AFTER) {
            cr_assert_eq(sink.ids[i], reps[i].id);
        }
        if (i > 0) {
            cr_assert_eq(sink.ids[i], sink.ids[i - 1] + 1);
        }
    }
    pps_test_sink_free(&sink);
    rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
    cr_assert_eq(rc, PPS_ETIMEDOUT, "%s", pps_status_name(rc));
    pps_sub_close(sub);
    pps_test_expect_consistent(cfg);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(crash, subscriber_killed_in_receive_batch_gets_the_batch_again_sync,
     .timeout = 120)
{
    subscriber_killed_in_receive_batch_gets_the_batch_again("sync");
}

Test(crash, subscriber_killed_in_receive_batch_gets_the_batch_again_nometasync,
     .timeout = 120)
{
    subscriber_killed_in_receive_batch_gets_the_batch_again("nometasync");
}

Test(crash, subscriber_killed_in_receive_batch_gets_the_batch_again_nosync,
     .timeout = 120)
{
    subscriber_killed_in_receive_batch_gets_the_batch_again("nosync");
}

/* ---- random kills of everybody ------------------------------------------ */

static int
report_id_cb(const pps_message *msg, void *user)
{
    int fd = *(int *)user;
    if (write(fd, &msg->id, sizeof(msg->id)) != (ssize_t)sizeof(msg->id)) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    return 0;
}

/* Receives forever (batches of batch_max if non-zero), reporting each id
 * before consuming it. */
static void
looping_subscriber(const char *path, const char *sub_id, int fd,
                   size_t batch_max)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_sub *sub = pps_test_child_sub(cfg, sub_id);
    for (;;) {
        int rc = batch_max > 0 ? pps_sub_receive_batch(sub, batch_max, 1000,
                                                       report_id_cb, &fd)
                               : pps_sub_receive(sub, 1000, report_id_cb, &fd);
        if (rc < 0 && rc != PPS_ETIMEDOUT) {
            pps_test_child_fail(PPS_TEST_CHILD_ERECEIVE, sub_id, rc);
        }
    }
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The lowest id a subscriber may restart from after reporting ids[0..end)
 * and dying: a receive consumes at most `window` messages per transaction,
 * so only the last `window` reported ones can come again. */
static uint64_t
restart_floor(const idlog *seen, size_t end, size_t window)
{
    if (end == 0) {
        return 0;
    }
    return seen->ids[end > window ? end - window : 0];
}

/* The ids of a subscriber that took part in the kills. Each of its
 * processes (one per round; seg_end[r] is where round r's reports end)
 * reported strictly increasing ids and restarted no further back than the
 * batch the one before died in; the ids reported and those left for the
 * drain cover every committed id (all, sorted) and nothing else; the
 * drained ones strictly increase. */
static void
check_no_loss(const char *sub_id, const idlog *seen, const size_t *seg_end,
              size_t rounds, size_t window, const batch_check *all,
              const pps_config *cfg)
{
    size_t start = 0;
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = start; i < seg_end[r]; i++) {
            if (i > start) {
                cr_assert_gt(seen->ids[i], seen->ids[i - 1],
                             "%s: round %zu reported id %llu after %llu",
                             sub_id, r, (unsigned long long)seen->ids[i],
                             (unsigned long long)seen->ids[i - 1]);
            } else {
                uint64_t floor = restart_floor(seen, start, window);
                cr_assert_geq(seen->ids[i], floor,
                              "%s: round %zu restarted at id %llu, below "
                              "%llu",
                              sub_id, r, (unsigned long long)seen->ids[i],
                              (unsigned long long)floor);
            }
        }
        start = seg_end[r];
    }
    uint64_t floor = restart_floor(seen, seen->n, window);
    pps_sub *sub = pps_test_sub_open(cfg, sub_id);
    size_t n = seen->n, cap = seen->n + 1024;
    uint64_t *u = malloc(cap * sizeof(*u));
    cr_assert_not_null(u);
    memcpy(u, seen->ids, seen->n * sizeof(*u));
    pps_test_sink sink = {0};
    uint64_t last = 0;
    for (;;) {
        int rc = pps_sub_receive_batch(sub, 1000, 0, pps_test_collect, &sink);
        if (rc == PPS_ETIMEDOUT) {
            break;
        }
        cr_assert_gt(rc, 0, "%s: %s: %s", sub_id, pps_status_name(rc),
                     pps_last_error());
        for (size_t i = 0; i < sink.n; i++) {
            cr_assert_geq(sink.ids[i], floor,
                          "%s: drain starts at id %llu, "
                          "below %llu",
                          sub_id, (unsigned long long)sink.ids[i],
                          (unsigned long long)floor);
            cr_assert_gt(sink.ids[i], last, "%s: drained id %llu after %llu",
                         sub_id, (unsigned long long)sink.ids[i],
                         (unsigned long long)last);
            last = sink.ids[i];
            if (n == cap) {
                cap *= 2;
                u = realloc(u, cap * sizeof(*u));
                cr_assert_not_null(u);
            }
            u[n++] = sink.ids[i];
        }
        pps_test_sink_free(&sink);
    }
    pps_sub_close(sub);
    qsort(u, n, sizeof(*u), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || u[k - 1] != u[i]) {
            u[k++] = u[i];
        }
    }
    for (size_t i = 0; i < k && i < all->messages; i++) {
        cr_assert_eq(u[i], all->ids[i],
                     "%s: %s id %llu (the %zu-th committed id is %llu)",
                     sub_id, u[i] < all->ids[i] ? "unknown" : "lost",
                     (unsigned long long)u[i], i,
                     (unsigned long long)all->ids[i]);
    }
    cr_assert_eq(k, all->messages, "%s: %zu distinct ids, %zu committed",
                 sub_id, k, all->messages);
    free(u);
}

/* Rounds in which a publisher and two receiving subscribers are killed in
 * a random order at random moments; then a third subscriber, which never
 * received, must hold exactly what the publisher was acknowledged (plus at
 * most the batch in flight per round), and the two others together with
 * what is left for them must cover the same. */
static void
random_kills(const char *durability)
{
    unsigned seed = test_seed();
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", "s2", "s3", NULL};
    char extra[64];
    snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", durability);
    pps_config *cfg = pps_test_simple(dir, subs, NO_PRUNING, extra);
    char *path = pps_test_config_path(dir);
    enum { ROUNDS = 6, BATCH = 10, MAX_BATCHES = 5000, S2_BATCH = 16 };
    /* s1 receives one by one, s2 in batches; s3 never receives and so
     * keeps every committed message. logs[2] holds the publisher's
     * acknowledgements. */
    idlog logs[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    size_t seg_end[2][ROUNDS];
    uint32_t acked[ROUNDS];

    for (uint32_t round = 0; round < ROUNDS; round++) {
        pid_t pids[3];
        const char *names[3] = {"publisher", "s1", "s2"};
        for (int i = 0; i < 2; i++) {
            int fd;
            pids[1 + i] = pps_test_fork_piped(&fd);
            if (pids[1 + i] == 0) {
                for (int j = 0; j < i; j++) {
                    close(logs[j].fd);
                }
                looping_subscriber(path, subs[i], fd, i == 0 ? 0 : S2_BATCH);
            }
            logs[i].fd = fd;
        }
        size_t acks_from = logs[2].n;
        pids[0] = pps_test_fork_piped(&logs[2].fd);
        if (pids[0] == 0) {
            close(logs[0].fd);
            close(logs[1].fd);
            batch_publisher(path, round, BATCH, MAX_BATCHES, logs[2].fd);
        }
        pump(logs, 3, rand_between(50, 400));
        /* Kill all three in a random order, at random moments. */
        int order[3] = {0, 1, 2};
        for (int i = 2; i > 0; i--) {
            int j = rand_between(0, i);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < 3; i++) {
            kill_and_reap(pids[order[i]], names[order[i]]);
            pump(logs, 3, rand_between(0, 50));
        }
        pump(logs, 3, -1);
        acked[round] = acked_batches(&logs[2], acks_from, logs[2].n, round);
        seg_end[0][round] = logs[0].n;
        seg_end[1][round] = logs[1].n;
    }

    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "second init: %s",
                 pps_last_error());
    cr_assert_eq(pps_ctl_prune(cfg), PPS_OK, "prune: %s", pps_last_error());
    pps_test_expect_consistent(cfg);

    batch_check all = {.batch_len = BATCH};
    drain_batches(cfg, "s3", &all);
    cr_log_info("%s: seed %u: %zu batches acknowledged, %zu committed, s1 "
                "saw %zu, s2 saw %zu",
                durability, seed, logs[2].n, all.batches, logs[0].n,
                logs[1].n);
    cr_assert_gt(all.batches, 0, "no batch was ever committed");
    for (uint32_t round = 0; round < ROUNDS; round++) {
        expect_acked(&all, round, acked[round], "s3");
    }
    check_no_loss("s1", &logs[0], seg_end[0], ROUNDS, 1, &all, cfg);
    check_no_loss("s2", &logs[1], seg_end[1], ROUNDS, S2_BATCH, &all, cfg);
    pps_test_expect_consistent(cfg);

    /* And the queue still works for everybody. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "after", 5), PPS_OK, "%s",
                 pps_last_error());
    pps_pub_close(pub);
    for (int i = 0; subs[i] != NULL; i++) {
        pps_sub *sub = pps_test_sub_open(cfg, subs[i]);
        pps_test_sink sink = {0};
        cr_assert_eq(pps_sub_receive(sub, 0, pps_test_collect, &sink), PPS_OK,
                     "%s: %s", subs[i], pps_last_error());
        cr_assert_str_eq(sink.data[0], "after");
        cr_assert_gt(sink.ids[0], all.last_id);
        pps_test_sink_free(&sink);
        pps_sub_close(sub);
    }
    free(logs[0].ids);
    free(logs[1].ids);
    free(logs[2].ids);
    free(all.ids);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(crash, queue_consistent_after_random_kills_sync, .timeout = 180)
{
    random_kills("sync");
}

Test(crash, queue_consistent_after_random_kills_nometasync, .timeout = 180)
{
    random_kills("nometasync");
}

Test(crash, queue_consistent_after_random_kills_nosync, .timeout = 180)
{
    random_kills("nosync");
}
