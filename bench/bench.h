/*
 * pps-bench: what the files of bench/ share.
 *
 * The benchmark runs every workload in separate processes (one publisher,
 * or four in W5, and one or two subscribers, forked from the driver), once
 * against
 * persipubsub's public API (pps_side.c), once against a plain LMDB design
 * written here (baseline.c), once against each peer (SQLite in WAL mode,
 * sqlite_side.c; Redis Streams, redis_side.c), and for the latency workload
 * also through a pipe (floor.c), the kernel's floor for one process telling
 * another.
 *
 * Children report through one anonymous shared mapping (bench_shm) created
 * before the first fork: times are CLOCK_MONOTONIC, which is system-wide, so
 * a publisher's start and a subscriber's end can be subtracted.
 */
#ifndef PPS_BENCH_H
#define PPS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_SUBS 2
#define BENCH_MAX_PUBS 4
#define BENCH_MSG_SIZE 128
/* How long a subscriber waits for the next message before it gives up. */
#define BENCH_RECV_TIMEOUT_MS 30000

/* Written by the children, read by the driver after they exited. */
typedef struct bench_shm {
    /* One slot per publisher: each writes only its own, so several
     * publishers need no lock; the driver takes the earliest start and the
     * latest end. */
    int64_t pub_start_ns[BENCH_MAX_PUBS];
    int64_t pub_end_ns[BENCH_MAX_PUBS];
    int64_t sub_end_ns[BENCH_MAX_SUBS];
    uint64_t sub_count[BENCH_MAX_SUBS];
    int64_t fill_ns; /* W4: time to fill the backlog */
    size_t n_samples;
    size_t cap_samples;
    size_t n_sends;
    int64_t *sends;    /* W3: the publisher's send calls, ns (cap_samples) */
    int64_t samples[]; /* latencies (W3) or single-send times (W4), ns */
} bench_shm;

/* One flow of messages: W1, W2, W3 and W5. */
typedef struct bench_flow {
    const char *dir;      /* a fresh, empty directory for the queue */
    size_t n;             /* messages to send, by all publishers together */
    int n_pubs;           /* publisher processes, each sending its share */
    size_t pub_batch;     /* 1: one send per message; else send_many */
    size_t sub_batch;     /* 1: receive; else receive_batch with this max */
    int durable;          /* 1: sync per commit, 0: no sync */
    int n_subs;           /* 1 or 2 subscriber processes */
    int64_t interval_ns;  /* pace of the publisher; 0: as fast as it can */
    int latency;          /* 1: subscriber 0 records one-way latencies */
} bench_flow;

/* W4: single sends into an empty queue and into a deep backlog. */
typedef struct bench_backlog {
    const char *dir;
    size_t backlog; /* undelivered messages to fill in before the 2nd round */
    size_t sends;   /* timed single sends per round */
} bench_backlog;

/* ---- results (main.c measures, report.c prints) ------------------------- */

enum bench_impl {
    IMPL_PPS, IMPL_BASE, IMPL_PIPE, IMPL_SQLITE, IMPL_REDIS, N_IMPL
};
/* What persipubsub's figure of a metric must reach. */
enum bench_target {
    T_NONE,     /* no target (ends a metric's list) */
    T_RATIO_GE, /* persipubsub / implementation `against` >= value */
    T_RATIO_LE, /* persipubsub / implementation `against` <= value */
    T_VALUE_LE, /* persipubsub's own figure <= value */
    T_SELF_GE   /* persipubsub / its own figure of metric `against` >= value:
                   for what one workload must gain over another (W5 over W1
                   sync), where no other implementation is the measure */
};
typedef struct bench_goal {
    enum bench_target kind;
    int against;  /* T_RATIO_*: an enum bench_impl; T_SELF_GE: a metric's
                     index in the array handed to the report */
    double value;
} bench_goal;
/* A metric may have to beat several peers at once (W1 sync: SQLite and
 * Redis), each by its own factor: every one is shown and judged. */
#define BENCH_MAX_GOALS 2
#define BENCH_MAX_REPS 15

/* One figure: its runs per implementation and its targets. */
typedef struct bench_metric {
    const char *workload;
    const char *name;
    const char *unit;
    bench_goal goals[BENCH_MAX_GOALS]; /* the first T_NONE ends the list */
    int worst_of_runs; /* aggregate by the maximum instead of the median */
    double runs[N_IMPL][BENCH_MAX_REPS];
    size_t n_runs[N_IMPL];
} bench_metric;

/* What the report says about the run itself. */
typedef struct bench_report {
    size_t n, n_sync, n_batch, n_w5, backlog, w4_sends;
    double w3_secs;
    int reps;
    int quick;
    double seconds;
    double load_before[3], load_after[3];
    /* CPUs kept busy by other programs during the run, on average: the
     * machine's busy time (/proc/stat) minus this program's own. */
    double foreign_cpus;
} bench_report;

/* A snapshot of the machine's and this program's CPU time. */
typedef struct bench_cpu {
    double busy_s; /* all CPUs, from /proc/stat; negative if unknown */
    double own_s;  /* this process and its waited-for children */
    int64_t wall_ns;
} bench_cpu;
void bench_cpu_snapshot(bench_cpu *out);
/* Average CPUs used by other programs between two snapshots. */
double bench_cpu_foreign(const bench_cpu *a, const bench_cpu *b);

extern const char *const bench_impl_name[N_IMPL];
/* The short names of --impl and of the ratio columns ("base", "sqlite"). */
extern const char *const bench_impl_short[N_IMPL];

/* The median of the runs (or their maximum); NAN if there are none. */
double bench_metric_value(const bench_metric *m, int impl);
/* Reads the load average into r->load_before / load_after. */
void bench_load(double out[3]);
void bench_print_table(const bench_metric *ms, size_t n,
                       const bench_report *r);
int bench_write_json(const char *path, const bench_metric *ms, size_t n,
                     const bench_report *r);

/* ---- util.c --------------------------------------------------------------- */

int64_t bench_now_ns(void);
/* Sleeps until the CLOCK_MONOTONIC time `at_ns`. */
void bench_sleep_until(int64_t at_ns);
void bench_sleep_ns(int64_t ns);
/* A polling subscriber found nothing: sleeps poll_ns and returns 0, or,
 * after BENCH_RECV_TIMEOUT_MS without a message since *idle_since (0: none
 * yet, set here), fails naming `who` and returns -1. */
int bench_idle_wait(int64_t *idle_since, int64_t poll_ns, const char *who);
/* A subscriber received all: records its end, its count and (latency) the
 * number of samples in the shared page; fails naming `who` if it saw a
 * message out of order (bad). 0 or -1. */
int bench_sub_done(int idx, uint64_t count, int latency, int bad,
                   const char *who);
/* Prints "pps-bench: " and the message to stderr. */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The shared mapping, created once by bench_shm_init(). */
bench_shm *bench_shm_get(void);
int bench_shm_init(size_t cap_samples);
void bench_shm_reset(void);

/*
 * Forks n children running fn(role, arg) with role 0..n-1. Each child calls
 * bench_child_ready() once it has opened what it needs; that returns when
 * every child is ready, so timing starts with all of them in place. A child
 * returns 0 on success. Waits for all of them (killing them after
 * timeout_s); returns 0 if every child exited with status 0.
 */
typedef int (*bench_child_fn)(int role, void *arg);
int bench_run(int n, bench_child_fn fn, void *arg, int timeout_s);
void bench_child_ready(void);

/* Creates dir (and its parents' last component only) with mode 0700. */
int bench_mkdir(const char *dir);
/* rm -rf: removes dir and everything below it. */
int bench_rmtree(const char *dir);

/* Statistics on plain arrays (the arrays get sorted). */
double bench_median(double *v, size_t n);
int64_t bench_percentile(int64_t *v, size_t n, double p);

/* Fills a 128-byte payload: the sequence number (per publisher, from 0),
 * a timestamp, then the publisher's index, so that a subscriber can check
 * the order of each publisher's messages when several publish at once. */
void bench_payload(unsigned char *buf, int pub, uint64_t seq, int64_t ts_ns);
uint64_t bench_payload_seq(const void *buf);
int64_t bench_payload_ts(const void *buf);
int bench_payload_pub(const void *buf);

/* How many of the flow's n messages publisher p sends: an even share, the
 * first n % n_pubs publishers one more. */
size_t bench_pub_share(const bench_flow *f, int p);

/* Sends k payloads of BENCH_MSG_SIZE bytes back to back in bufs, as one
 * send (k == 1) or one batch; 0 or -1 (having said why). */
typedef int (*bench_send_fn)(void *ctx, const unsigned char *bufs, size_t k);
/* A publisher child's part of a flow, once it has opened what it needs:
 * says it is ready, then sends its share of the messages (paced, stamped
 * and batched as the flow says) through send, recording its start, its
 * end and (latency) each send call's time in the shared page. bufs holds
 * f->pub_batch payloads. 0, or -1 if a send failed. */
int bench_publish(const bench_flow *f, int idx, unsigned char *bufs,
                  bench_send_fn send, void *ctx);

/* A subscriber's order check. The queue orders the messages of several
 * publishers among each other as their commits happen to interleave, so
 * only each publisher's own order is promised: its sequence numbers must
 * come 0, 1, 2, ... without gap or repetition. */
typedef struct bench_order {
    int n_pubs;
    uint64_t next[BENCH_MAX_PUBS];
} bench_order;
void bench_order_init(bench_order *o, int n_pubs);
/* 1 if data (len bytes) is the next message of its publisher, else 0. */
int bench_order_next(bench_order *o, const void *data, size_t len);

/* ---- the implementations ------------------------------------------- */

/* persipubsub (pps_side.c), through its public API only. */
int pps_flow(const bench_flow *f);
int pps_backlog(const bench_backlog *b);

/* The plain LMDB design (baseline.c). */
int base_flow(const bench_flow *f);
int base_backlog(const bench_backlog *b);

/* The pipe between two processes (floor.c): latency only. */
int floor_flow(const bench_flow *f);

/* The SQLite peer (sqlite_side.c): WAL, synchronous FULL or NORMAL. */
int sqlite_flow(const bench_flow *f);
int sqlite_backlog(const bench_backlog *b);

/* The Redis Streams peer (redis_side.c): each run starts its own
 * redis-server; appendfsync always or everysec. redis_available() says
 * (with a message) whether redis-server is in PATH. */
int redis_available(void);
int redis_flow(const bench_flow *f);
int redis_backlog(const bench_backlog *b);
/* The server's version, once a run has asked it ("" before). */
extern char redis_bench_version[32];

#endif /* PPS_BENCH_H */
