/*
 * pps-torture: the kill-anywhere torture test (issue 4).
 *
 * A controller runs rounds. In each round three publisher processes and
 * three subscriber processes share one fresh queue with three subscribers,
 * and the controller SIGKILLs a random one of them at random moments and
 * restarts it at once. At the end of the round it stops the survivors,
 * drains every subscriber itself, and checks from the processes' logs:
 *
 *   - every message whose send returned success was delivered to every
 *     subscriber (lost: 0);
 *   - nothing was delivered that was never sent: a delivered message is
 *     intact (length and checksum) and belongs to a logged send attempt; a
 *     send whose return was never logged (its publisher was killed inside
 *     it) is the last attempt of that publisher process, and is delivered
 *     to every subscriber entirely or not at all (batches all or nothing);
 *   - per subscriber, queue ids increase and so does each publisher's
 *     sequence; a batch has consecutive ids; the same id is the same
 *     message for every subscriber;
 *   - a message is delivered twice only if it was in flight when its
 *     subscriber process was killed: the restarted process starts by
 *     repeating the tail of what the killed one received (one message for
 *     pps_sub_receive, up to a batch for pps_sub_receive_batch);
 *   - pps_ctl_check() finds the queue consistent, also once in the middle
 *     of the round while everything runs, and the drained queue is empty.
 *
 * Publishers: p0 sends one message at a time, p1 sends batches of 1 to 20
 * with pps_pub_send_many(), p2 does both. Subscribers: s0 receives one at a
 * time and now and then refuses a message (it is kept and comes again), s1
 * receives one at a time with slow callbacks, s2 receives in batches of up
 * to 16 and now and then refuses one. A publisher logs an "attempt" record
 * before each send and an "ok" record after it returns success; a
 * subscriber logs every accepted message inside its callback, before
 * returning 0. Logs are plain files written with write() in 32-byte
 * records (only process crashes are simulated, so the page cache is
 * enough, and a record never straddles a page: it is never torn).
 *
 * Usage: pps-torture [--rounds N] [--kills N] [--round-ms MS] [--seed S]
 *                    [--dir DIR] [--durability nosync|nometasync|sync|cycle]
 *                    [--keep] [--verbose]
 *
 *   --rounds N       rounds, each on a fresh queue (default 3)
 *   --kills N        SIGKILLs in total, spread over the rounds (default 36)
 *   --round-ms MS    length of the kill phase of a round (default 2000)
 *   --seed S         seed of every random choice (default: time and pid;
 *                    printed, so a failing run can be replayed)
 *   --dir DIR        where the rounds' queues and logs go (default: a new
 *                    directory under $TMPDIR or /tmp, removed on success)
 *   --durability D   the queues' durability (default nosync); "cycle" goes
 *                    round by round through nosync, sync and nometasync
 *   --keep           keep the directory also on success
 *   --verbose        one line per kill
 *
 * Exit status: 0 if every round passed, 1 if a check failed, 2 for a usage
 * error. The last line is the summary, e.g.
 *   torture: 3 rounds, 36 kills, 41234 messages sent, 123702 delivered
 *   (7 duplicates), lost: 0
 */
#define _XOPEN_SOURCE 700 /* nftw() */
#include "persipubsub/persipubsub.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#define N_PUBS 3
#define N_SUBS 3
#define N_PROCS (N_PUBS + N_SUBS)
#define BATCH_MAX_SEND 20  /* p1, p2: batch sizes 1..BATCH_MAX_SEND */
#define BATCH_MAX_RECV 16  /* s2: pps_sub_receive_batch() max */
#define PUB_BUDGET 60000   /* messages per publisher per round at most */
#define PAY_MAGIC 0x54525455u

/* ---- shared by every process ----------------------------------------------- */

typedef struct options {
    unsigned rounds;
    unsigned kills;
    unsigned round_ms;
    uint64_t seed;
    const char *dir;
    const char *durability;
    bool keep;
    bool verbose;
} options;

/* One log record: 32 bytes, so records never straddle a page. */
enum rec_kind {
    REC_START = 'S',   /* a process started; qid holds its pid */
    REC_ATTEMPT = 'A', /* a publisher is about to send a batch */
    REC_OK = 'O',      /* ... and the send returned PPS_OK */
    REC_DELIVER = 'D', /* a subscriber accepted a message */
};

typedef struct rec {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t pub;   /* publisher index */
    uint32_t count; /* A, O: messages in the batch; D: index in it */
    uint32_t batch; /* the publisher's batch number */
    uint64_t seq;   /* A, O: first sequence number; D: its sequence */
    uint64_t qid;   /* D: the queue's message id; S: the pid */
} rec;

_Static_assert(sizeof(rec) == 32, "log records must be 32 bytes");

/* The head of every payload; the rest is a pattern of (pub, seq). */
typedef struct pay_hdr {
    uint32_t magic;
    uint32_t pub;
    uint64_t seq;
    uint32_t batch;
    uint32_t index;
    uint32_t count;
    uint32_t len;   /* the whole payload */
    uint32_t round;
    uint32_t check; /* FNV-1a of the payload with this field zero */
} pay_hdr;

static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* xorshift64*: every random choice, reproducible from the seed. */
static uint64_t
rnd_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static uint64_t
rnd_seed(uint64_t a, uint64_t b)
{
    uint64_t s = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
    for (int i = 0; i < 4; i++) {
        rnd_next(&s);
    }
    return s != 0 ? s : 1;
}

/* A uniform number in [lo, hi]. */
static uint64_t
rnd_between(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rnd_next(s) % (hi - lo + 1);
}

static void
sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
                          .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_flag) {
    }
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t
fnv1a(const unsigned char *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

/* The length of message (pub, seq): mostly small, sometimes several pages
 * (LMDB overflow pages), always at least the header. */
static uint32_t
pay_len(uint32_t round, uint32_t pub, uint64_t seq)
{
    uint64_t s = rnd_seed(((uint64_t)round << 40) ^ ((uint64_t)pub << 32),
                          seq);
    uint64_t r = rnd_next(&s) % 1000;
    if (r < 10) {
        return (uint32_t)(sizeof(pay_hdr) + 8000 + rnd_next(&s) % 12000);
    }
    return (uint32_t)(sizeof(pay_hdr) + rnd_next(&s) % 1500);
}

static void
pay_fill(unsigned char *buf, uint32_t round, uint32_t pub, uint64_t seq,
         uint32_t batch, uint32_t index, uint32_t count)
{
    pay_hdr h = {.magic = PAY_MAGIC, .pub = pub, .seq = seq, .batch = batch,
                 .index = index, .count = count,
                 .len = pay_len(round, pub, seq), .round = round};
    for (uint32_t i = sizeof(h); i < h.len; i++) {
        buf[i] = (unsigned char)(seq * 131 + pub * 7 + i);
    }
    memcpy(buf, &h, sizeof(h));
    h.check = fnv1a(buf, h.len, 2166136261u);
    memcpy(buf, &h, sizeof(h));
}

/* Checks a delivered payload; fills *h. */
static bool
pay_ok(const void *data, size_t len, uint32_t round, pay_hdr *h)
{
    if (len < sizeof(*h)) {
        return false;
    }
    memcpy(h, data, sizeof(*h));
    if (h->magic != PAY_MAGIC || h->len != len || h->round != round ||
        h->pub >= N_PUBS || h->len != pay_len(round, h->pub, h->seq)) {
        return false;
    }
    pay_hdr z = *h;
    z.check = 0;
    uint32_t c = fnv1a((const unsigned char *)&z, sizeof(z), 2166136261u);
    c = fnv1a((const unsigned char *)data + sizeof(z), len - sizeof(z), c);
    return c == h->check;
}

static void
die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A child's fatal error: one line on stderr, and an exit code. */
static void
die(int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "pps-torture[%ld]: %s\n", (long)getpid(), line);
    _exit(code);
}

static void
log_put(int fd, const rec *r)
{
    if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r)) {
        die(5, "cannot write log: %s", strerror(errno));
    }
}

/* Reads a whole log; *n receives the number of records. */
static rec *
log_read(const char *path, size_t *n)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    size_t count = (size_t)st.st_size / sizeof(rec);
    rec *r = malloc(count > 0 ? count * sizeof(rec) : 1);
    if (r == NULL) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < count * sizeof(rec)) {
        ssize_t k = read(fd, (char *)r + got, count * sizeof(rec) - got);
        if (k <= 0) {
            break;
        }
        got += (size_t)k;
    }
    close(fd);
    *n = got / sizeof(rec);
    return r;
}

/* ---- a round's files ------------------------------------------------------ */

typedef struct round_ctx {
    const options *opt;
    uint32_t round;
    uint64_t seed;
    char dir[1100];
    char config[1200];
    char pub_log[N_PUBS][1200];
    char sub_log[N_SUBS][1200];
} round_ctx;

static const char *const sub_ids[N_SUBS] = {"s0", "s1", "s2"};
static const char *const pub_ids[N_PUBS] = {"p0", "p1", "p2"};

static const char *
round_durability(const options *opt, uint32_t round)
{
    if (strcmp(opt->durability, "cycle") == 0) {
        static const char *const cycle[] = {"nosync", "sync", "nometasync"};
        return cycle[round % 3];
    }
    return opt->durability;
}

/* ---- child processes ------------------------------------------------------- */

static void
child_setup(pid_t parent)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) {
        _exit(6);
    }
    /* The controller keeps SIGUSR1 blocked, so a stop sent before this
     * handler exists stays pending until it does. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* A safety net: no child outlives a stuck controller for long. */
    alarm(900);
}

static pps_config *
child_config(const round_ctx *rc)
{
    pps_config *cfg = NULL;
    int st = pps_config_load(&cfg, rc->config);
    if (st != PPS_OK) {
        die(3, "config: %s: %s", pps_status_name(st), pps_last_error());
    }
    return cfg;
}

static void
publisher_main(const round_ctx *rc, uint32_t p, uint64_t seed)
{
    int fd = open(rc->pub_log[p], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0600);
    if (fd < 0) {
        die(5, "%s: %s", rc->pub_log[p], strerror(errno));
    }
    /* Continue after the last attempt of the previous process, which may
     * or may not have been committed: its numbers are never reused. */
    size_t n;
    rec *old = log_read(rc->pub_log[p], &n);
    uint64_t next_seq = 1;
    uint32_t next_batch = 1;
    for (size_t i = 0; i < n; i++) {
        if (old[i].kind == REC_ATTEMPT) {
            next_seq = old[i].seq + old[i].count;
            next_batch = old[i].batch + 1;
        }
    }
    free(old);
    rec start = {.kind = REC_START, .pub = p, .qid = (uint64_t)getpid()};
    log_put(fd, &start);

    pps_config *cfg = child_config(rc);
    pps_pub *pub = NULL;
    int st = pps_pub_open(&pub, cfg, pub_ids[p]);
    if (st != PPS_OK) {
        die(3, "pps_pub_open %s: %s: %s", pub_ids[p], pps_status_name(st),
            pps_last_error());
    }
    unsigned char *bufs = malloc((size_t)BATCH_MAX_SEND * 20100);
    pps_buf many[BATCH_MAX_SEND];
    if (bufs == NULL) {
        die(3, "out of memory");
    }
    while (!stop_flag) {
        if (next_seq > PUB_BUDGET) {
            sleep_us(5000);
            continue;
        }
        uint32_t count = 1;
        bool batch = p == 1 || (p == 2 && rnd_next(&seed) % 2 == 0);
        if (batch) {
            count = (uint32_t)rnd_between(&seed, 1, BATCH_MAX_SEND);
        }
        for (uint32_t i = 0; i < count; i++) {
            unsigned char *b = bufs + (size_t)i * 20100;
            pay_fill(b, rc->round, p, next_seq + i, next_batch, i, count);
            many[i].data = b;
            many[i].len = pay_len(rc->round, p, next_seq + i);
        }
        rec a = {.kind = REC_ATTEMPT, .pub = p, .count = count,
                 .batch = next_batch, .seq = next_seq};
        log_put(fd, &a);
        st = batch ? pps_pub_send_many(pub, many, count)
                   : pps_pub_send(pub, many[0].data, many[0].len);
        if (st != PPS_OK) {
            die(4, "%s: send of batch %u: %s: %s", pub_ids[p], next_batch,
                pps_status_name(st), pps_last_error());
        }
        a.kind = REC_OK;
        log_put(fd, &a);
        next_seq += count;
        next_batch++;
        sleep_us(rnd_between(&seed, 0, batch ? 6000 : 2000));
    }
    free(bufs);
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(0);
}

typedef struct sub_ctx {
    int fd;
    uint32_t round;
    uint32_t s;
    uint64_t seed;
    bool draining; /* the controller's final drain: no refusals, no pauses */
    bool bad;
    char why[256];
} sub_ctx;

static int
deliver_cb(const pps_message *msg, void *user)
{
    sub_ctx *c = user;
    pay_hdr h;
    if (!pay_ok(msg->data, msg->len, c->round, &h)) {
        snprintf(c->why, sizeof(c->why),
                 "%s: message %" PRIu64 " of %zu bytes is corrupt",
                 sub_ids[c->s], msg->id, msg->len);
        c->bad = true;
        if (!c->draining) {
            die(7, "%s", c->why);
        }
        return -1;
    }
    if (!c->draining && c->s != 1 && rnd_next(&c->seed) % 50 == 0) {
        return 1; /* refused: kept, and comes again; not logged */
    }
    rec d = {.kind = REC_DELIVER, .pub = h.pub, .count = h.index,
             .batch = h.batch, .seq = h.seq, .qid = msg->id};
    log_put(c->fd, &d);
    if (!c->draining) {
        uint64_t r = rnd_next(&c->seed) % 100;
        if (c->s == 1 && r < 30) {
            sleep_us(rnd_between(&c->seed, 100, 3000)); /* slow */
        } else if (c->s == 2 && r < 3) {
            sleep_us(rnd_between(&c->seed, 100, 2000));
        }
    }
    return 0;
}

static void
subscriber_main(const round_ctx *rc, uint32_t s, uint64_t seed)
{
    int fd = open(rc->sub_log[s], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0600);
    if (fd < 0) {
        die(5, "%s: %s", rc->sub_log[s], strerror(errno));
    }
    rec start = {.kind = REC_START, .qid = (uint64_t)getpid()};
    log_put(fd, &start);
    pps_config *cfg = child_config(rc);
    pps_sub *sub = NULL;
    int st = pps_sub_open(&sub, cfg, sub_ids[s]);
    if (st != PPS_OK) {
        die(3, "pps_sub_open %s: %s: %s", sub_ids[s], pps_status_name(st),
            pps_last_error());
    }
    sub_ctx c = {.fd = fd, .round = rc->round, .s = s, .seed = seed};
    while (!stop_flag) {
        st = s == 2 ? pps_sub_receive_batch(sub, BATCH_MAX_RECV, 100,
                                            deliver_cb, &c)
                    : pps_sub_receive(sub, 100, deliver_cb, &c);
        if (st < 0 && st != PPS_ETIMEDOUT && st != PPS_ECALLBACK) {
            die(4, "%s: receive: %s: %s", sub_ids[s], pps_status_name(st),
                pps_last_error());
        }
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    _exit(0);
}

/* ---- the controller -------------------------------------------------------- */

typedef struct proc {
    pid_t pid;
    unsigned restarts;
} proc;

typedef struct totals {
    uint64_t kills, sent, uncertain_committed, delivered, duplicates, lost;
} totals;

static int
fail(const round_ctx *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(const round_ctx *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pps-torture: round %u (seed %" PRIu64 "): FAILED: ",
            rc->round, rc->opt->seed);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static pid_t
spawn(const round_ctx *rc, int i, unsigned restarts)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    child_setup(parent);
    uint64_t seed = rnd_seed(rc->seed ^ ((uint64_t)i << 56), restarts + 1);
    if (i < N_PUBS) {
        publisher_main(rc, (uint32_t)i, seed);
    }
    subscriber_main(rc, (uint32_t)(i - N_PUBS), seed);
    return 0; /* not reached */
}

static const char *
proc_name(int i)
{
    return i < N_PUBS ? pub_ids[i] : sub_ids[i - N_PUBS];
}

/* A child that ended on its own during the kill phase has failed. */
static int
check_no_exit(const round_ctx *rc, proc *procs)
{
    for (int i = 0; i < N_PROCS; i++) {
        int st;
        pid_t r = waitpid(procs[i].pid, &st, WNOHANG);
        if (r == procs[i].pid) {
            return fail(rc, "%s (pid %d) ended on its own: %s %d", proc_name(i),
                        (int)r, WIFEXITED(st) ? "exit" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
    return 0;
}

static void
count_problem(const char *queue_path, const char *problem, int repaired,
              void *user)
{
    (void)user;
    (void)repaired;
    fprintf(stderr, "pps-torture: check: %s: %s\n", queue_path, problem);
}

static int
check_queue(const round_ctx *rc, const pps_config *cfg, const char *when)
{
    size_t problems = 0;
    int st = pps_ctl_check(cfg, NULL, 0, count_problem, NULL, &problems);
    if (st != PPS_OK || problems != 0) {
        return fail(rc, "pps_ctl_check %s: %s, %zu problem(s): %s", when,
                    pps_status_name(st), problems, pps_last_error());
    }
    return 0;
}

static int
write_config(round_ctx *rc)
{
    FILE *f = fopen(rc->config, "w");
    if (f == NULL) {
        return fail(rc, "%s: %s", rc->config, strerror(errno));
    }
    fprintf(f,
            "{\"p0\": {\"out_queue\": \"q\"}, \"p1\": {\"out_queue\": \"q\"},"
            " \"p2\": {\"out_queue\": \"q\"},\n"
            " \"s0\": {\"in_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
            " \"s2\": {\"in_queue\": \"q\"},\n"
            " \"queues\": {\"q\": {\"path\": \"q\",\n"
            "   \"max_db_size_bytes\": 1073741824,\n"
            "   \"subscribers\": [\"s0\", \"s1\", \"s2\"],\n"
            "   \"durability\": \"%s\",\n"
            "   \"high-water-mark\": {\"MSG_TIMEOUT_SECS\": 100000,\n"
            "     \"MAX_MSGS_NUM\": 1000000000,\n"
            "     \"HWM_LMDB_SIZE_BYTES\": 2147483648}}}}\n",
            round_durability(rc->opt, rc->round));
    return fclose(f) == 0 ? 0 : fail(rc, "%s: write failed", rc->config);
}

/* ---- verification ------------------------------------------------------------ */

typedef struct batch_info {
    uint64_t first_seq;
    uint32_t count;
    uint32_t batch;
    bool ok;        /* the send returned success */
    bool uncertain; /* attempted by a process killed before logging "ok" */
} batch_info;

typedef struct pub_info {
    batch_info *b;
    size_t n;
    uint64_t end_seq;  /* one past the last attempted sequence */
    uint64_t *qid;     /* by seq: the queue id it got (0: never seen) */
    uint8_t *mask;     /* by seq: which subscribers got it */
} pub_info;

static int
load_pub(const round_ctx *rc, uint32_t p, pub_info *pi)
{
    size_t n;
    rec *r = log_read(rc->pub_log[p], &n);
    memset(pi, 0, sizeof(*pi));
    pi->b = calloc(n + 1, sizeof(*pi->b));
    if (pi->b == NULL) {
        free(r);
        return fail(rc, "out of memory");
    }
    pi->end_seq = 1;
    /* The attempt not (yet) followed by its "ok": legitimate only if the
     * process died in it, i.e. a restart follows. */
    batch_info *open_attempt = NULL;
    int status = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        if (r[i].kind == REC_START) {
            open_attempt = NULL;
        } else if (r[i].kind == REC_ATTEMPT) {
            if (open_attempt != NULL) {
                status = fail(rc, "%s log: batch %u has no \"ok\" but its "
                              "process went on", pub_ids[p],
                              open_attempt->batch);
            } else if (r[i].seq != pi->end_seq) {
                status = fail(rc, "%s log: attempt at seq %" PRIu64
                              ", expected %" PRIu64, pub_ids[p], r[i].seq,
                              pi->end_seq);
            } else {
                batch_info *b = &pi->b[pi->n++];
                b->first_seq = r[i].seq;
                b->count = r[i].count;
                b->batch = r[i].batch;
                b->uncertain = true; /* until its "ok" */
                pi->end_seq = r[i].seq + r[i].count;
                open_attempt = b;
            }
        } else if (r[i].kind == REC_OK) {
            if (open_attempt == NULL || open_attempt->batch != r[i].batch) {
                status = fail(rc, "%s log: \"ok\" without its attempt",
                              pub_ids[p]);
            } else {
                open_attempt->ok = true;
                open_attempt->uncertain = false;
                open_attempt = NULL;
            }
        } else {
            status = fail(rc, "%s log: unknown record", pub_ids[p]);
        }
    }
    if (status == 0 && open_attempt != NULL) {
        status = fail(rc, "%s log: the last batch (%u) has no \"ok\", but "
                      "its process was stopped cleanly", pub_ids[p],
                      open_attempt->batch);
    }
    if (status != 0) {
        free(r);
        return status;
    }
    free(r);
    pi->qid = calloc(pi->end_seq + 1, sizeof(*pi->qid));
    pi->mask = calloc(pi->end_seq + 1, 1);
    if (pi->qid == NULL || pi->mask == NULL) {
        return fail(rc, "out of memory");
    }
    return 0;
}

static batch_info *
find_batch(pub_info *pi, uint64_t seq)
{
    size_t lo = 0, hi = pi->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pi->b[mid].first_seq + pi->b[mid].count <= seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < pi->n && pi->b[lo].first_seq <= seq) {
        return &pi->b[lo];
    }
    return NULL;
}

/* Checks one subscriber's log and marks what it received. */
static int
verify_sub(const round_ctx *rc, uint32_t s, pub_info *pubs, totals *t)
{
    size_t n;
    rec *r = log_read(rc->sub_log[s], &n);
    size_t max_redeliver = s == 2 ? BATCH_MAX_RECV : 1;
    /* The accepted messages in order, without redeliveries. */
    uint64_t *ids = malloc((n + 1) * sizeof(*ids));
    size_t n_ids = 0;
    uint64_t last_seq[N_PUBS] = {0};
    int status = 0;
    if (ids == NULL) {
        free(r);
        return fail(rc, "out of memory");
    }
    /* A restarted process may begin by receiving again the messages its
     * killed predecessor had been handed but not consumed: exactly the
     * tail of what was received so far, in order, at most one batch. */
    size_t seg_start = 0; /* n_ids when the current process started */
    size_t rep_next = 0;  /* index in ids of the next expected repeat */
    bool repeating = false;
    for (size_t i = 0; i < n && status == 0; i++) {
        if (r[i].kind == REC_START) {
            seg_start = n_ids;
            rep_next = SIZE_MAX;
            repeating = true;
            continue;
        }
        if (r[i].kind != REC_DELIVER) {
            status = fail(rc, "%s log: unknown record", sub_ids[s]);
            break;
        }
        t->delivered++;
        uint64_t qid = r[i].qid;
        if (n_ids > 0 && qid <= ids[n_ids - 1]) {
            bool ok = repeating;
            if (ok && rep_next == SIZE_MAX) {
                size_t lo = seg_start > max_redeliver
                                ? seg_start - max_redeliver
                                : 0;
                size_t j = seg_start;
                while (j > lo && ids[j - 1] != qid) {
                    j--;
                }
                ok = j > lo;
                rep_next = j; /* ids[j - 1] == qid */
            } else if (ok) {
                ok = rep_next < seg_start && ids[rep_next] == qid;
                rep_next++;
            }
            if (!ok) {
                status = fail(rc, "%s: message %" PRIu64 " delivered again "
                              "out of place (after %" PRIu64 ", log record "
                              "%zu): not the message in flight when a "
                              "process died",
                              sub_ids[s], qid, ids[n_ids - 1], i);
                break;
            }
            t->duplicates++;
            continue;
        }
        if (repeating && rep_next != SIZE_MAX && rep_next != seg_start) {
            status = fail(rc, "%s: after a restart, message %" PRIu64
                          " came again but %" PRIu64 " after it did not",
                          sub_ids[s], ids[rep_next - 1], ids[rep_next]);
            break;
        }
        repeating = false;
        uint32_t p = r[i].pub;
        if (p >= N_PUBS || r[i].seq == 0 || r[i].seq >= pubs[p].end_seq) {
            status = fail(rc, "%s: message %" PRIu64 " (%s seq %" PRIu64
                          ") was never sent", sub_ids[s], qid,
                          p < N_PUBS ? pub_ids[p] : "?", r[i].seq);
            break;
        }
        pub_info *pi = &pubs[p];
        batch_info *b = find_batch(pi, r[i].seq);
        if (b == NULL || b->batch != r[i].batch ||
            r[i].seq - b->first_seq != r[i].count) {
            status = fail(rc, "%s: message %" PRIu64 " claims %s batch %u "
                          "index %u, which does not match the send log",
                          sub_ids[s], qid, pub_ids[p], r[i].batch,
                          r[i].count);
            break;
        }
        if (r[i].seq <= last_seq[p]) {
            status = fail(rc, "%s: %s seq %" PRIu64 " after seq %" PRIu64
                          ": publish order broken", sub_ids[s], pub_ids[p],
                          r[i].seq, last_seq[p]);
            break;
        }
        last_seq[p] = r[i].seq;
        if (pi->qid[r[i].seq] == 0) {
            pi->qid[r[i].seq] = qid;
        } else if (pi->qid[r[i].seq] != qid) {
            status = fail(rc, "%s seq %" PRIu64 " is message %" PRIu64
                          " for one subscriber and %" PRIu64 " for %s",
                          pub_ids[p], r[i].seq, pi->qid[r[i].seq], qid,
                          sub_ids[s]);
            break;
        }
        pi->mask[r[i].seq] |= (uint8_t)(1u << s);
        ids[n_ids++] = qid;
    }
    free(ids);
    free(r);
    return status;
}

static int
verify_round(const round_ctx *rc, totals *t, uint64_t *sent_round)
{
    pub_info pubs[N_PUBS];
    int status = 0;
    memset(pubs, 0, sizeof(pubs));
    for (uint32_t p = 0; p < N_PUBS && status == 0; p++) {
        status = load_pub(rc, p, &pubs[p]);
    }
    for (uint32_t s = 0; s < N_SUBS && status == 0; s++) {
        status = verify_sub(rc, s, pubs, t);
    }
    uint8_t all = (1u << N_SUBS) - 1;
    uint64_t sent = 0;
    for (uint32_t p = 0; p < N_PUBS && status == 0; p++) {
        pub_info *pi = &pubs[p];
        for (size_t i = 0; i < pi->n && status == 0; i++) {
            batch_info *b = &pi->b[i];
            unsigned got = 0;
            for (uint32_t k = 0; k < b->count; k++) {
                uint8_t m = pi->mask[b->first_seq + k];
                got += (unsigned)__builtin_popcount(m);
            }
            if (b->ok && got != b->count * N_SUBS) {
                for (uint32_t k = 0; k < b->count; k++) {
                    uint8_t m = pi->mask[b->first_seq + k];
                    if (m != all) {
                        t->lost += (uint64_t)(N_SUBS -
                                              __builtin_popcount(m));
                        status = fail(rc, "LOST: %s seq %" PRIu64 " (batch "
                                      "%u) was sent successfully but "
                                      "subscribers 0x%x never got it",
                                      pub_ids[p], b->first_seq + k, b->batch,
                                      (unsigned)(all & ~m));
                    }
                }
                break;
            }
            if (b->uncertain && got != 0 && got != b->count * N_SUBS) {
                status = fail(rc, "%s batch %u (killed inside its send): "
                              "%u of %u deliveries: not all or nothing",
                              pub_ids[p], b->batch, got,
                              b->count * N_SUBS);
                break;
            }
            if (b->uncertain && got != 0) {
                t->uncertain_committed += b->count;
            }
            if (got != 0) {
                sent += b->count;
                /* A batch has consecutive ids. */
                uint64_t q0 = pi->qid[b->first_seq];
                for (uint32_t k = 1; k < b->count; k++) {
                    if (pi->qid[b->first_seq + k] != q0 + k) {
                        status = fail(rc, "%s batch %u: ids not consecutive",
                                      pub_ids[p], b->batch);
                        break;
                    }
                }
            }
        }
    }
    for (uint32_t p = 0; p < N_PUBS; p++) {
        free(pubs[p].b);
        free(pubs[p].qid);
        free(pubs[p].mask);
    }
    *sent_round = sent;
    t->sent += sent;
    return status;
}

/* The controller receives what is left for every subscriber, logging it
 * like a subscriber process would. */
static int
drain(const round_ctx *rc, const pps_config *cfg)
{
    for (uint32_t s = 0; s < N_SUBS; s++) {
        int fd = open(rc->sub_log[s], O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) {
            return fail(rc, "%s: %s", rc->sub_log[s], strerror(errno));
        }
        rec start = {.kind = REC_START, .qid = (uint64_t)getpid()};
        if (write(fd, &start, sizeof(start)) != (ssize_t)sizeof(start)) {
            close(fd);
            return fail(rc, "cannot write log");
        }
        pps_sub *sub = NULL;
        int st = pps_sub_open(&sub, cfg, sub_ids[s]);
        if (st != PPS_OK) {
            close(fd);
            return fail(rc, "drain: pps_sub_open %s: %s: %s", sub_ids[s],
                        pps_status_name(st), pps_last_error());
        }
        sub_ctx c = {.fd = fd, .round = rc->round, .s = s, .draining = true};
        do {
            st = pps_sub_receive_batch(sub, 256, 0, deliver_cb, &c);
        } while (st > 0);
        pps_sub_close(sub);
        close(fd);
        if (c.bad) {
            return fail(rc, "drain: %s", c.why);
        }
        if (st != PPS_ETIMEDOUT) {
            return fail(rc, "drain %s: %s: %s", sub_ids[s],
                        pps_status_name(st), pps_last_error());
        }
    }
    return 0;
}

typedef struct count_ctx {
    uint64_t messages;
    uint64_t pending;
    uint64_t map_used;
} count_ctx;

static int
count_cb(const pps_queue_status *st, void *user)
{
    count_ctx *c = user;
    c->messages = st->messages;
    c->map_used = st->map_used;
    for (size_t i = 0; i < st->n_subscribers; i++) {
        c->pending += st->subscribers[i].pending;
    }
    return 0;
}

/* Sleeps ms while watching the children. */
static int
watch(const round_ctx *rc, proc *procs, int64_t ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        if (check_no_exit(rc, procs) != 0) {
            return 1;
        }
        int64_t left = end - now_ms();
        if (left <= 0) {
            return 0;
        }
        sleep_us((uint64_t)(left < 20 ? left : 20) * 1000);
    }
}

static void
kill_all(proc *procs)
{
    for (int i = 0; i < N_PROCS; i++) {
        if (procs[i].pid > 0) {
            kill(procs[i].pid, SIGKILL);
            waitpid(procs[i].pid, NULL, 0);
            procs[i].pid = 0;
        }
    }
}

static int
run_round(round_ctx *rc, unsigned kills, totals *t)
{
    const options *opt = rc->opt;
    uint64_t rng = rnd_seed(rc->seed, 0xc0ffee);
    if (mkdir(rc->dir, 0700) != 0) {
        return fail(rc, "%s: %s", rc->dir, strerror(errno));
    }
    if (write_config(rc) != 0) {
        return 1;
    }
    pps_config *cfg = NULL;
    int st = pps_config_load(&cfg, rc->config);
    if (st == PPS_OK) {
        st = pps_ctl_init(cfg);
    }
    if (st != PPS_OK) {
        pps_config_free(cfg);
        return fail(rc, "init: %s: %s", pps_status_name(st),
                    pps_last_error());
    }
    proc procs[N_PROCS];
    memset(procs, 0, sizeof(procs));
    for (int i = 0; i < N_PROCS; i++) {
        procs[i].pid = spawn(rc, i, 0);
        if (procs[i].pid < 0) {
            kill_all(procs);
            pps_config_free(cfg);
            return fail(rc, "fork: %s", strerror(errno));
        }
    }
    int status = 0;
    uint64_t mean = kills > 0 ? opt->round_ms / kills : opt->round_ms;
    int64_t started = now_ms();
    for (unsigned k = 0; k < kills && status == 0; k++) {
        status = watch(rc, procs, (int64_t)rnd_between(&rng, 0, 2 * mean));
        if (status != 0) {
            break;
        }
        int i = (int)rnd_between(&rng, 0, N_PROCS - 1);
        pid_t victim = procs[i].pid;
        kill(victim, SIGKILL);
        int ws;
        waitpid(victim, &ws, 0);
        procs[i].pid = 0;
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
            status = fail(rc, "%s (pid %d) had ended on its own before the "
                          "kill: %s %d", proc_name(i), (int)victim,
                          WIFEXITED(ws) ? "exit" : "signal",
                          WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
            break;
        }
        t->kills++;
        if (opt->verbose) {
            printf("  round %u: kill %u: %s (pid %d) at %" PRId64 " ms\n",
                   rc->round, k + 1, proc_name(i), (int)victim,
                   now_ms() - started);
        }
        /* Restart at once, or after a short pause. */
        if (rnd_next(&rng) % 2 == 0) {
            sleep_us(rnd_between(&rng, 0, 20000));
        }
        procs[i].restarts++;
        procs[i].pid = spawn(rc, i, procs[i].restarts);
        if (procs[i].pid < 0) {
            status = fail(rc, "fork: %s", strerror(errno));
        }
        if (status == 0 && k == kills / 2) {
            /* Consistent also while everything runs. */
            status = check_queue(rc, cfg, "in the middle of the round");
        }
    }
    int64_t left = (int64_t)opt->round_ms - (now_ms() - started);
    if (status == 0 && left > 0) {
        status = watch(rc, procs, left);
    }
    /* Stop the survivors cleanly: each finishes its send or receive. */
    for (int i = 0; i < N_PROCS && status == 0; i++) {
        kill(procs[i].pid, SIGUSR1);
    }
    for (int i = 0; i < N_PROCS && status == 0; i++) {
        int64_t deadline = now_ms() + 120000;
        int ws = 0;
        pid_t r;
        while ((r = waitpid(procs[i].pid, &ws, WNOHANG)) == 0 &&
               now_ms() < deadline) {
            sleep_us(10000);
        }
        if (r != procs[i].pid) {
            status = fail(rc, "%s (pid %d) did not stop within 120 s",
                          proc_name(i), (int)procs[i].pid);
            break;
        }
        procs[i].pid = 0;
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            status = fail(rc, "%s ended with %s %d", proc_name(i),
                          WIFEXITED(ws) ? "exit" : "signal",
                          WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
        }
    }
    kill_all(procs);
    uint64_t sent = 0, delivered_before = t->delivered;
    uint64_t dups_before = t->duplicates;
    if (status == 0) {
        status = check_queue(rc, cfg, "after the kills");
    }
    if (status == 0) {
        status = drain(rc, cfg);
    }
    if (status == 0) {
        status = verify_round(rc, t, &sent);
    }
    if (status == 0) {
        status = check_queue(rc, cfg, "after the drain");
    }
    count_ctx cc = {0};
    if (status == 0) {
        st = pps_ctl_status(cfg, NULL, count_cb, &cc);
        if (st != PPS_OK) {
            status = fail(rc, "status: %s: %s", pps_status_name(st),
                          pps_last_error());
        } else if (cc.messages != 0 || cc.pending != 0) {
            status = fail(rc, "after the drain: %" PRIu64 " messages, %"
                          PRIu64 " pending", cc.messages, cc.pending);
        }
    }
    unsigned restarts = 0;
    for (int i = 0; i < N_PROCS; i++) {
        restarts += procs[i].restarts;
    }
    if (status == 0) {
        printf("round %u (%s): %u kills, %" PRIu64 " messages sent, %" PRIu64
               " delivered (%" PRIu64 " duplicates), map used %" PRIu64
               " KiB, lost: 0\n",
               rc->round, round_durability(opt, rc->round), restarts, sent,
               t->delivered - delivered_before,
               t->duplicates - dups_before, cc.map_used / 1024);
        fflush(stdout);
    }
    pps_config_free(cfg);
    return status;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf of a round's directory (ours: made by this program). */
static void
rm_tree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: pps-torture [--rounds N] [--kills N] [--round-ms MS] "
            "[--seed S]\n"
            "                   [--dir DIR] [--durability "
            "nosync|nometasync|sync|cycle]\n"
            "                   [--keep] [--verbose]\n");
}

static bool
parse_uint(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        return false;
    }
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    options opt = {.rounds = 3, .kills = 36, .round_ms = 2000,
                   .durability = "nosync"};
    bool have_seed = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        bool has_arg = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--keep") == 0) {
            opt.keep = true;
        } else if (strcmp(a, "--verbose") == 0) {
            opt.verbose = true;
        } else if (has_arg && strcmp(a, "--dir") == 0) {
            opt.dir = argv[++i];
        } else if (has_arg && strcmp(a, "--durability") == 0) {
            opt.durability = argv[++i];
            if (strcmp(opt.durability, "nosync") != 0 &&
                strcmp(opt.durability, "nometasync") != 0 &&
                strcmp(opt.durability, "sync") != 0 &&
                strcmp(opt.durability, "cycle") != 0) {
                usage(stderr);
                return 2;
            }
        } else if (has_arg && strcmp(a, "--seed") == 0 &&
                   parse_uint(argv[i + 1], &v)) {
            opt.seed = v;
            have_seed = true;
            i++;
        } else if (has_arg && strcmp(a, "--rounds") == 0 &&
                   parse_uint(argv[i + 1], &v) && v > 0 && v < 100000) {
            opt.rounds = (unsigned)v;
            i++;
        } else if (has_arg && strcmp(a, "--kills") == 0 &&
                   parse_uint(argv[i + 1], &v) && v < 10000000) {
            opt.kills = (unsigned)v;
            i++;
        } else if (has_arg && strcmp(a, "--round-ms") == 0 &&
                   parse_uint(argv[i + 1], &v) && v > 0 && v < 86400000) {
            opt.round_ms = (unsigned)v;
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        opt.seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^
                   (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    char base[1024];
    if (opt.dir != NULL) {
        if (mkdir(opt.dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "pps-torture: %s: %s\n", opt.dir,
                    strerror(errno));
            return 1;
        }
        snprintf(base, sizeof(base), "%s/torture-%" PRIu64, opt.dir,
                 opt.seed);
        if (mkdir(base, 0700) != 0) {
            fprintf(stderr, "pps-torture: %s: %s\n", base, strerror(errno));
            return 1;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/pps-torture-XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(base) == NULL) {
            fprintf(stderr, "pps-torture: mkdtemp %s: %s\n", base,
                    strerror(errno));
            return 1;
        }
    }
    printf("pps-torture: seed %" PRIu64 ", %u rounds, %u kills, %u ms per "
           "round, durability %s, in %s\n",
           opt.seed, opt.rounds, opt.kills, opt.round_ms, opt.durability,
           base);
    fflush(stdout);

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL); /* see child_setup() */
    totals t = {0};
    int status = 0;
    int64_t t0 = now_ms();
    for (unsigned r = 0; r < opt.rounds && status == 0; r++) {
        round_ctx rc = {.opt = &opt, .round = r,
                        .seed = rnd_seed(opt.seed, r)};
        snprintf(rc.dir, sizeof(rc.dir), "%s/round-%u", base, r);
        snprintf(rc.config, sizeof(rc.config), "%s/config.json", rc.dir);
        for (int i = 0; i < N_PUBS; i++) {
            snprintf(rc.pub_log[i], sizeof(rc.pub_log[i]), "%s/%s.log",
                     rc.dir, pub_ids[i]);
        }
        for (int i = 0; i < N_SUBS; i++) {
            snprintf(rc.sub_log[i], sizeof(rc.sub_log[i]), "%s/%s.log",
                     rc.dir, sub_ids[i]);
        }
        unsigned kills = opt.kills / opt.rounds +
                         (r < opt.kills % opt.rounds ? 1 : 0);
        status = run_round(&rc, kills, &t);
        if (status == 0 && !opt.keep) {
            rm_tree(rc.dir);
        }
    }
    double secs = (double)(now_ms() - t0) / 1000.0;
    if (status != 0) {
        printf("torture: FAILED (seed %" PRIu64 "; replay with --seed %" PRIu64
               "); files kept in %s\n",
               opt.seed, opt.seed, base);
        return 1;
    }
    if (!opt.keep) {
        rmdir(base);
    }
    printf("torture: %u rounds, %" PRIu64 " kills, %" PRIu64
           " messages sent (%" PRIu64 " of them by a send killed before it "
           "returned), %" PRIu64 " delivered (%" PRIu64
           " duplicates), lost: %" PRIu64 ", %.1f s\n",
           opt.rounds, t.kills, t.sent, t.uncertain_committed, t.delivered,
           t.duplicates, t.lost, secs);
    return 0;
}
