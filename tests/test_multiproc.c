/*
 * Multi-process tests: real processes (fork()) publishing to and receiving
 * from one queue, the cross-process wake-up of a waiting subscriber, the CPU
 * an idle waiting subscriber uses, and many handles on one queue inside one
 * process (one LMDB environment per queue per process).
 *
 * Every child loads its own configuration and opens its own handles (a
 * handle never crosses fork()), reports through its exit status (the shared
 * PPS_TEST_CHILD_* codes and the CHILD_* ones below, named in the parent's
 * failure message) or a pipe, and always leaves with _exit(): it never
 * returns into Criterion. The parent checks the wait status of every child.
 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit codes of the children beyond the shared PPS_TEST_CHILD_* ones. */
enum {
    /* not every message arrived in time */
    CHILD_EDEADLINE = PPS_TEST_CHILD_ELOCAL,
    CHILD_EPAYLOAD,    /* a payload of the wrong size or content */
    CHILD_EID,         /* an id not above the one before */
    CHILD_EORDER,      /* a publisher's messages out of order, repeated or
                          missing */
    CHILD_EEXTRA,      /* a message after the expected last one */
    CHILD_ESLOW,       /* a wait-up took longer than allowed */
    CHILD_EEARLY,      /* a timed receive returned before its timeout */
    CHILD_ESTEP = 100, /* 100 + n: step n of a scripted child failed */
};

static const pps_test_code CHILD_CODES[] = {
    {CHILD_EDEADLINE, "messages missing at the deadline"},
    {CHILD_EPAYLOAD, "bad payload"},
    {CHILD_EID, "ids not strictly increasing"},
    {CHILD_EORDER, "a publisher's messages out of order, repeated or missing"},
    {CHILD_EEXTRA, "more messages than were sent"},
    {CHILD_ESLOW, "wake-up too slow"},
    {CHILD_EEARLY, "timed receive returned early"},
    {0, NULL},
};

static const char *
child_code_name(int code)
{
    return code >= CHILD_ESTEP ? "a scripted step failed (see stderr)"
                               : pps_test_child_code_name(code, CHILD_CODES);
}

/* Waits for a child and fails the test, naming the child's failure, unless
 * it exited with 0. */
static void
expect_child_ok(pid_t pid, const char *what)
{
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "%s (pid %d) did not exit normally (status 0x%x)",
              what, (int)pid, st);
    cr_assert_eq(WEXITSTATUS(st), 0, "%s (pid %d) exited with %d: %s", what,
                 (int)pid, WEXITSTATUS(st), child_code_name(WEXITSTATUS(st)));
}

/* ---- many publishers and subscribers ------------------------------------ */

#define FANIN_PUBS 2
#define FANIN_PER_PUB 3000
#define FANIN_TOTAL (FANIN_PUBS * FANIN_PER_PUB)
#define FANIN_SUBS 3

/* The payload: which publisher, and its sequence number. */
typedef struct fanin_payload {
    uint64_t pub;
    uint64_t seq;
} fanin_payload;

typedef struct fanin_state {
    size_t got;
    uint64_t last_id;
    uint64_t next_seq[FANIN_PUBS];
    int error; /* a CHILD_* code, 0 while all is well */
} fanin_state;

static int
fanin_check(const pps_message *msg, void *user)
{
    fanin_state *s = user;
    fanin_payload p;
    if (s->error != 0) {
        return 1; /* keep it: the child is about to fail anyway */
    }
    if (msg->len != sizeof(p)) {
        s->error = CHILD_EPAYLOAD;
        return 0;
    }
    memcpy(&p, msg->data, sizeof(p));
    if (msg->id <= s->last_id) {
        s->error = CHILD_EID;
    } else if (p.pub >= FANIN_PUBS) {
        s->error = CHILD_EPAYLOAD;
    } else if (p.seq != s->next_seq[p.pub]) {
        s->error = CHILD_EORDER;
    } else if (s->got >= FANIN_TOTAL) {
        s->error = CHILD_EEXTRA;
    } else {
        s->next_seq[p.pub]++;
        s->last_id = msg->id;
        s->got++;
    }
    return 0;
}

static void
fanin_subscriber(const char *path, const char *sub_id, bool batch)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_sub *sub = pps_test_child_sub(cfg, sub_id);
    int rc;
    fanin_state s = {0};
    int64_t deadline = pps_test_mono_ns() + (int64_t)90 * 1000000000;
    while (s.got < FANIN_TOTAL && s.error == 0) {
        if (pps_test_mono_ns() > deadline) {
            fprintf(stderr, "%s: %zu of %d messages at the deadline\n", sub_id,
                    s.got, FANIN_TOTAL);
            _exit(CHILD_EDEADLINE);
        }
        if (batch) {
            rc = pps_sub_receive_batch(sub, 64, 1000, fanin_check, &s);
        } else {
            rc = pps_sub_receive(sub, 1000, fanin_check, &s);
        }
        if (rc < 0 && rc != PPS_ETIMEDOUT && s.error == 0) {
            pps_test_child_fail(PPS_TEST_CHILD_ERECEIVE, sub_id, rc);
        }
    }
    if (s.error != 0) {
        fprintf(stderr, "%s: failure %d after %zu messages\n", sub_id, s.error,
                s.got);
        _exit(s.error);
    }
    for (int p = 0; p < FANIN_PUBS; p++) {
        if (s.next_seq[p] != FANIN_PER_PUB) {
            _exit(CHILD_EORDER);
        }
    }
    /* Nothing may be left: every message came exactly once. */
    rc = pps_sub_receive(sub, 0, fanin_check, &s);
    if (rc != PPS_ETIMEDOUT) {
        _exit(s.error != 0 ? s.error : CHILD_EEXTRA);
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

static void
fanin_publisher(const char *path, uint64_t pub_no)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_pub *pub = pps_test_child_pub(cfg, "pub");
    /* Publisher 0 sends one message per transaction, publisher 1 batches
     * of 7, so single sends and batches interleave. */
    size_t chunk = pub_no == 0 ? 1 : 7;
    fanin_payload p[7];
    pps_buf bufs[7];
    for (uint64_t seq = 0; seq < FANIN_PER_PUB;) {
        size_t n = 0;
        while (n < chunk && seq < FANIN_PER_PUB) {
            p[n].pub = pub_no;
            p[n].seq = seq++;
            bufs[n].data = &p[n];
            bufs[n].len = sizeof(p[n]);
            n++;
        }
        int rc = n == 1 ? pps_pub_send(pub, &p[0], sizeof(p[0]))
                        : pps_pub_send_many(pub, bufs, n);
        if (rc != PPS_OK) {
            pps_test_child_fail(PPS_TEST_CHILD_ESEND, "pub", rc);
        }
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

Test(multiproc, two_publishers_three_subscribers_every_message_once,
     .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", "s2", "s3", NULL};
    pps_config *cfg =
        pps_test_simple(dir, subs, NULL, "\"durability\": \"nosync\"");
    char *path = pps_test_config_path(dir);
    pid_t parent = getpid();
    pid_t sub_pids[FANIN_SUBS], pub_pids[FANIN_PUBS];

    for (int i = 0; i < FANIN_SUBS; i++) {
        sub_pids[i] = pps_test_fork();
        if (sub_pids[i] == 0) {
            pps_test_child_begin(parent);
            /* The last one receives in batches. */
            fanin_subscriber(path, subs[i], i == FANIN_SUBS - 1);
        }
    }
    for (int i = 0; i < FANIN_PUBS; i++) {
        pub_pids[i] = pps_test_fork();
        if (pub_pids[i] == 0) {
            pps_test_child_begin(parent);
            fanin_publisher(path, (uint64_t)i);
        }
    }
    for (int i = 0; i < FANIN_PUBS; i++) {
        expect_child_ok(pub_pids[i], "publisher");
    }
    for (int i = 0; i < FANIN_SUBS; i++) {
        expect_child_ok(sub_pids[i], subs[i]);
    }
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- wake-up across processes ------------------------------------------- */

static int
latency_cb(const pps_message *msg, void *user)
{
    int64_t *lat = user;
    *lat = pps_test_real_ns() - msg->published_ns;
    return 0;
}

/* Waits for a message `rounds` times; before each wait it tells the parent
 * it is about to wait, after each it reports the latency (receipt time
 * minus publish time). */
static void
waiting_subscriber(const char *path, int ready_fd, int result_fd,
                   const int *timeouts, int rounds)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_sub *sub = pps_test_child_sub(cfg, "s1");
    for (int i = 0; i < rounds; i++) {
        int64_t lat = -1;
        if (write(ready_fd, "r", 1) != 1) {
            _exit(PPS_TEST_CHILD_EPIPE);
        }
        int64_t t0 = pps_test_mono_ns();
        int rc = pps_sub_receive(sub, timeouts[i], latency_cb, &lat);
        int64_t took = pps_test_mono_ns() - t0;
        if (rc != PPS_OK || lat < 0) {
            pps_test_child_fail(PPS_TEST_CHILD_ERECEIVE, "s1", rc);
        }
        if (took > (int64_t)5 * 1000000000) {
            fprintf(stderr, "round %d: receive took %lld ms\n", i,
                    (long long)(took / 1000000));
            _exit(CHILD_ESLOW);
        }
        if (write(result_fd, &lat, sizeof(lat)) != (ssize_t)sizeof(lat)) {
            _exit(PPS_TEST_CHILD_EPIPE);
        }
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

static void
send_one(const char *path, const char *text)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_pub *pub = pps_test_child_pub(cfg, "pub");
    int rc = pps_pub_send(pub, text, strlen(text));
    if (rc != PPS_OK) {
        pps_test_child_fail(PPS_TEST_CHILD_ESEND, "pub", rc);
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

Test(multiproc, waiting_subscriber_is_woken_by_another_process, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    char *path = pps_test_config_path(dir);
    pid_t parent = getpid();
    /* Waits of 10 s, forever, 10 s: each must end with the message. */
    const int timeouts[] = {10000, -1, 10000};
    enum { ROUNDS = 3 };
    char *qpath = pps_test_path_in(dir, "q");
    int ready[2], result[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(result), 0);

    pid_t sub = pps_test_fork();
    if (sub == 0) {
        pps_test_child_begin(parent);
        close(ready[0]);
        close(result[0]);
        waiting_subscriber(path, ready[1], result[1], timeouts, ROUNDS);
    }
    close(ready[1]);
    close(result[1]);

    int64_t best = INT64_MAX;
    for (int i = 0; i < ROUNDS; i++) {
        char c;
        cr_assert(pps_test_read_within(ready[0], &c, 1, 30000),
                  "round %d: the subscriber never started waiting", i);
        /* Publish from another process once the subscriber sleeps in the
         * kernel: it has counted itself in pps.wake's waiters. */
        cr_assert(pps_test_wait_for_waiters(qpath, 0, 30000),
                  "round %d: the subscriber never went to sleep", i);
        int64_t t0 = pps_test_mono_ns();
        pid_t pub = pps_test_fork();
        if (pub == 0) {
            pps_test_child_begin(parent);
            send_one(path, "wake up");
        }
        expect_child_ok(pub, "publisher");
        int64_t lat;
        cr_assert(pps_test_read_within(result[0], &lat, sizeof(lat), 15000),
                  "round %d: the subscriber did not report a message", i);
        int64_t took = pps_test_mono_ns() - t0;
        cr_assert_lt(took, (int64_t)5 * 1000000000,
                     "round %d: the message took %lld ms to arrive", i,
                     (long long)(took / 1000000));
        if (lat < best) {
            best = lat;
        }
    }
    expect_child_ok(sub, "subscriber");
    cr_log_info("best wake-up latency of %d rounds: %.1f ms", ROUNDS,
                (double)best / 1e6);
    /* Without a cross-process wake-up the receiver, asleep before the send,
     * would see the message only at its next 1-second safety poll; a woken
     * one sees it within a millisecond or two. The bound is a sanity bound
     * (over 100 times the expected latency), and the best of three rounds
     * leaves room for a noisy machine. */
    cr_assert_lt(best, (int64_t)250 * 1000000,
                 "best wake-up latency %lld ms: receivers are not woken by "
                 "publishers of other processes",
                 (long long)(best / 1000000));
    close(ready[0]);
    close(result[0]);
    free(qpath);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- an idle waiting subscriber uses no CPU ----------------------------- */

/* CPU time (user + system) in milliseconds. */
static int64_t
cpu_ms(const struct rusage *ru)
{
    return (int64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
           (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

/* A timed receive on an empty queue; the CPU time of the wait alone (not
 * of loading and opening) goes to cpu_fd. */
static void
idle_subscriber(const char *path, int timeout_ms, int cpu_fd)
{
    pps_config *cfg = pps_test_child_config(path);
    pps_sub *sub = pps_test_child_sub(cfg, "s1");
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    int64_t t0 = pps_test_mono_ns();
    int rc = pps_sub_receive(sub, timeout_ms, latency_cb, &(int64_t){0});
    int64_t took = pps_test_mono_ns() - t0;
    getrusage(RUSAGE_SELF, &r1);
    if (rc != PPS_ETIMEDOUT) {
        pps_test_child_fail(PPS_TEST_CHILD_ERECEIVE, "s1", rc);
    }
    if (took < (int64_t)timeout_ms * 1000000) {
        fprintf(stderr, "timed out after %lld ms of %d\n",
                (long long)(took / 1000000), timeout_ms);
        _exit(CHILD_EEARLY);
    }
    int64_t used = cpu_ms(&r1) - cpu_ms(&r0);
    if (write(cpu_fd, &used, sizeof(used)) != (ssize_t)sizeof(used)) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    _exit(PPS_TEST_CHILD_OK);
}

/* The CPU time a live process has used so far, in milliseconds, from
 * /proc/PID/stat (utime and stime, fields 14 and 15). */
static int64_t
proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name */
    cr_assert_not_null(p, "%s: %s", path, buf);
    unsigned long long utime = 0, stime = 0;
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &utime, &stime);
    cr_assert_eq(got, 2, "%s: %s", path, buf);
    return (int64_t)(utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

Test(multiproc, idle_waiting_subscriber_uses_almost_no_cpu, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    char *path = pps_test_config_path(dir);
    char *qpath = pps_test_path_in(dir, "q");

    /* A timed wait on an empty queue: 2 s of sleep. A busy poll would burn
     * up to 2000 ms of CPU; a sleeping wait a millisecond or so. The bound,
     * 10% of the wait, is a sanity bound far above that. */
    int fd;
    pid_t pid = pps_test_fork_piped(&fd);
    if (pid == 0) {
        idle_subscriber(path, 2000, fd);
    }
    int64_t used = -1;
    bool got = pps_test_read_within(fd, &used, sizeof(used), 60000);
    close(fd);
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "idle subscriber failed (status 0x%x: %s)", st,
              WIFEXITED(st) ? child_code_name(WEXITSTATUS(st)) : "signal");
    cr_assert(got, "the idle subscriber did not report its CPU time");
    cr_log_info("an idle subscriber waiting 2 s used %lld ms of CPU",
                (long long)used);
    cr_assert_lt(used, 200,
                 "an idle subscriber waiting 2 s used %lld ms of CPU",
                 (long long)used);

    /* A wait forever, measured from the moment it sleeps (counted in
     * pps.wake's waiters) for 1.5 s, then ended by SIGKILL. */
    pid = pps_test_fork_piped(&fd);
    if (pid == 0) {
        idle_subscriber(path, -1, fd);
    }
    close(fd);
    cr_assert(pps_test_wait_for_waiters(qpath, 0, 30000),
              "the subscriber never went to sleep");
    int64_t before = proc_cpu_ms(pid);
    pps_test_sleep_ms(1500); /* the span measured, not a synchronisation */
    used = proc_cpu_ms(pid) - before;
    cr_assert_eq(kill(pid, SIGKILL), 0);
    st = pps_test_wait(pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "the subscriber waiting forever ended by itself "
              "(status 0x%x: %s)",
              st, WIFEXITED(st) ? child_code_name(WEXITSTATUS(st)) : "?");
    cr_log_info("a subscriber waiting forever used %lld ms of CPU in 1.5 s",
                (long long)used);
    cr_assert_lt(used, 150,
                 "a subscriber waiting forever used %lld ms of CPU in 1.5 s",
                 (long long)used);

    /* The receiver killed while waiting leaves nothing behind that stops
     * the queue from working. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "x", 1), PPS_OK, "%s", pps_last_error());
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink sink = {0};
    cr_assert_eq(pps_sub_receive(sub, 5000, pps_test_collect, &sink), PPS_OK,
                 "%s", pps_last_error());
    cr_assert_eq(sink.n, 1);
    cr_assert_str_eq(sink.data[0], "x");
    pps_test_sink_free(&sink);
    pps_sub_close(sub);
    pps_pub_close(pub);
    free(qpath);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- many handles on one queue in one process --------------------------- */

static int step; /* the step of the scripted child, for its exit code */

#define STEP(cond)                                                            \
    do {                                                                      \
        step++;                                                               \
        if (!(cond)) {                                                        \
            fprintf(stderr,                                                   \
                    "step %d (line %d) failed: %s (last error: %s)\n", step,  \
                    __LINE__, #cond, pps_last_error());                       \
            _exit(CHILD_ESTEP + (step < 150 ? step : 150));                   \
        }                                                                     \
    } while (0)

/* Receives one message with timeout 0 and checks its text and that its id
 * is above *last. */
static bool
got_text(pps_sub *sub, const char *want, uint64_t *last)
{
    pps_test_sink sink = {0};
    int rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
    bool ok = rc == PPS_OK && sink.n == 1 && strcmp(sink.data[0], want) == 0 &&
              sink.ids[0] > *last;
    if (!ok) {
        fprintf(stderr, "wanted \"%s\", got %s \"%s\"\n", want,
                pps_status_name(rc), sink.n == 1 ? sink.data[0] : "");
    } else {
        *last = sink.ids[0];
    }
    pps_test_sink_free(&sink);
    return ok;
}

static bool
empty(pps_sub *sub)
{
    pps_test_sink sink = {0};
    int rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
    pps_test_sink_free(&sink);
    return rc == PPS_ETIMEDOUT;
}

/* How many mappings of the queue's file `name` this process has: one per
 * LMDB environment open on it (-1 where /proc is missing). The small
 * mapping of data.mdb's two meta pages that a writable environment keeps
 * beside LMDB's map (for the flushes of sync commits) is not counted. */
static int
mappings(const char *dir, const char *name)
{
    char want[4200];
    snprintf(want, sizeof(want), "%s/q/%s", strrchr(dir, '/') + 1, name);
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) {
        return -1;
    }
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        size_t ll = strlen(line), wl = strlen(want);
        unsigned long long lo = 0, hi = 0;
        bool metas = sscanf(line, "%llx-%llx", &lo, &hi) == 2 &&
                     hi - lo <= 2 * (unsigned long long)sysconf(_SC_PAGESIZE);
        if (ll >= wl && strcmp(line + ll - wl, want) == 0 && !metas) {
            n++;
        }
    }
    fclose(f);
    return n;
}

static bool
one_env(const char *dir, int want)
{
    int d = mappings(dir, "data.mdb");
    int l = mappings(dir, "lock.mdb");
    if (d < 0) {
        return true; /* no /proc: nothing to count */
    }
    if (d != want || l != want) {
        fprintf(stderr,
                "%d mappings of data.mdb and %d of lock.mdb, "
                "expected %d\n",
                d, l, want);
    }
    return d == want && l == want;
}

static void
many_handles_child(const char *dir, const char *path, const char *path2)
{
    uint64_t last1 = 0, last2 = 0;
    pps_config *cfg1 = pps_test_child_config(path);
    pps_config *cfg2 = pps_test_child_config(path); /* the same file again */
    pps_config *cfg3 =
        pps_test_child_config(path2); /* another file, same queue */
    pps_pub *p1 = NULL, *p2 = NULL, *p3 = NULL;
    pps_sub *s1 = NULL, *s2 = NULL;

    STEP(one_env(dir, 0));
    STEP(pps_pub_open(&p1, cfg1, "pub") == PPS_OK);
    STEP(pps_pub_open(&p2, cfg2, "pub") == PPS_OK);
    STEP(pps_pub_open(&p3, cfg3, "pub") == PPS_OK);
    STEP(pps_sub_open(&s1, cfg1, "s1") == PPS_OK);
    STEP(pps_sub_open(&s2, cfg3, "s2") == PPS_OK);
    STEP(one_env(dir, 1));

    STEP(pps_pub_send(p1, "a", 1) == PPS_OK);
    STEP(got_text(s1, "a", &last1));
    STEP(pps_pub_send(p2, "b", 1) == PPS_OK);
    STEP(pps_pub_send(p3, "c", 1) == PPS_OK);
    STEP(got_text(s2, "a", &last2));
    STEP(got_text(s1, "b", &last1));
    pps_pub_close(p2);
    STEP(got_text(s2, "b", &last2));
    pps_sub_close(s1);
    STEP(pps_pub_send(p1, "d", 1) == PPS_OK);
    pps_pub_close(p1);
    STEP(got_text(s2, "c", &last2));
    STEP(pps_sub_open(&s1, cfg2, "s1") == PPS_OK); /* reopened elsewhere */
    STEP(got_text(s1, "c", &last1));
    STEP(got_text(s1, "d", &last1));
    STEP(pps_pub_send(p3, "e", 1) == PPS_OK);
    pps_sub_close(s2);
    pps_pub_close(p3);
    STEP(one_env(dir, 1)); /* s1 still holds it */
    STEP(got_text(s1, "e", &last1));
    STEP(empty(s1));
    pps_sub_close(s1);
    STEP(one_env(dir, 0)); /* the last handle closed the environment */

    /* Everything closed: the environment opens afresh. */
    STEP(pps_pub_open(&p1, cfg3, "pub") == PPS_OK);
    STEP(pps_sub_open(&s2, cfg1, "s2") == PPS_OK);
    STEP(pps_sub_open(&s1, cfg3, "s1") == PPS_OK);
    STEP(one_env(dir, 1));
    STEP(pps_pub_send(p1, "f", 1) == PPS_OK);
    STEP(got_text(s2, "d", &last2));
    STEP(got_text(s2, "e", &last2));
    STEP(got_text(s2, "f", &last2));
    STEP(got_text(s1, "f", &last1));
    STEP(empty(s1));
    STEP(empty(s2));
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(p1);
    STEP(one_env(dir, 0));
    pps_config_free(cfg1);
    pps_config_free(cfg2);
    pps_config_free(cfg3);
    _exit(PPS_TEST_CHILD_OK);
}

Test(multiproc, many_handles_on_one_queue_in_one_process, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    const char *subs[] = {"s1", "s2", NULL};
    pps_config *cfg = pps_test_simple(dir, subs, NULL, NULL);
    char *path = pps_test_config_path(dir);
    /* A second config in a subdirectory names the same queue "../q". */
    char sub_dir[4096];
    snprintf(sub_dir, sizeof(sub_dir), "%s/other", dir);
    cr_assert_eq(mkdir(sub_dir, 0700), 0);
    char *path2 = pps_test_write(
        sub_dir, "config.json",
        "{\"pub\": {\"out_queue\": \"q\"},\n"
        " \"s1\": {\"in_queue\": \"q\"},\n"
        " \"s2\": {\"in_queue\": \"q\"},\n"
        " \"queues\": {\"q\": {\"path\": \"../q\", "
        "\"max_db_size_bytes\": 268435456, \"subscribers\": [\"s1\", "
        "\"s2\"]}}}\n");
    pid_t parent = getpid();

    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        many_handles_child(dir, path, path2);
    }
    expect_child_ok(pid, "the child with many handles");
    free(path);
    free(path2);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
