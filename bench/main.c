/*
 * pps-bench: the driver. Parses the options, runs every selected workload
 * against each implementation (persipubsub, the plain LMDB baseline, the
 * peers SQLite and Redis, and for W3 the pipe) for the requested
 * repetitions (rotating which one goes first, so a drift in the machine's
 * load favours none), and prints the medians as a table on stdout and as
 * JSON. "sync" runs the peers durable (SQLite synchronous=FULL, Redis
 * appendfsync always), every other workload relaxed (NORMAL, everysec).
 *
 *   W1  fan-out: 1 publisher, 2 subscribers, 128-byte messages one per send,
 *       sync and nosync; publish rate and end-to-end rate.
 *   W2  batched: as W1 nosync, sends of 100, receive_batch of up to 1000.
 *   W3  latency: 1,000 msgs/s to one waiting subscriber; p50, p99, max.
 *   W4  backlog: a single send into an empty queue and into one holding
 *       1,000,000 undelivered messages.
 *   W5  4 publishers: as W1 sync, but 4 publisher processes send at once,
 *       each its share; aggregate publish rate and end-to-end rate.
 */
#include "bench.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REPS BENCH_MAX_REPS

const char *const bench_impl_name[N_IMPL] = {"persipubsub", "baseline",
                                             "pipe", "sqlite", "redis"};
const char *const bench_impl_short[N_IMPL] = {"pps", "base", "pipe",
                                             "sqlite", "redis"};

enum {
    M_W1S_PUB, M_W1S_E2E, M_W1N_PUB, M_W1N_E2E, M_W2_PUB, M_W2_E2E,
    M_W3_P50, M_W3_P99, M_W3_MAX, M_W3_SEND, M_W4_EMPTY, M_W4_FULL, M_W4_GROWTH,
    M_W4_FILL, M_W5_PUB, M_W5_E2E, N_METRICS
};

/* How the runs of a metric are aggregated. */
enum { MEDIAN = 0, WORST = 1 };

/* A metric and its targets (at least one: NO_TARGET if it has none). */
#define M(w, n, u, agg, ...)                                                   \
    {.workload = (w), .name = (n), .unit = (u), .worst_of_runs = (agg),        \
     .goals = {__VA_ARGS__}}
#define NO_TARGET {.kind = T_NONE}
#define RATIO_GE(impl, v) {.kind = T_RATIO_GE, .against = (impl), .value = (v)}
#define RATIO_LE(impl, v) {.kind = T_RATIO_LE, .against = (impl), .value = (v)}
#define VALUE_LE(v) {.kind = T_VALUE_LE, .value = (v)}
#define SELF_GE(metric, v)                                                     \
    {.kind = T_SELF_GE, .against = (metric), .value = (v)}

/* The speed issue's targets: durable single sends must beat the peers one
 * would otherwise pick, relaxed ones must not lose to raw LMDB, and several
 * durable publishers must share what a commit costs (W5 against W1 sync of
 * the same run). */
static bench_metric metrics[N_METRICS] = {
    [M_W1S_PUB] = M("W1 sync", "publish", "msgs/s", MEDIAN,
                    RATIO_GE(IMPL_SQLITE, 1.0), RATIO_GE(IMPL_REDIS, 1.5)),
    [M_W1S_E2E] = M("W1 sync", "end-to-end", "msgs/s", MEDIAN,
                    RATIO_GE(IMPL_SQLITE, 1.2), RATIO_GE(IMPL_REDIS, 1.5)),
    [M_W1N_PUB] = M("W1 nosync", "publish", "msgs/s", MEDIAN,
                    RATIO_GE(IMPL_BASE, 1.0)),
    [M_W1N_E2E] = M("W1 nosync", "end-to-end", "msgs/s", MEDIAN,
                    RATIO_GE(IMPL_BASE, 1.0)),
    [M_W2_PUB] = M("W2 batch", "publish", "msgs/s", MEDIAN,
                   RATIO_GE(IMPL_BASE, 1.0)),
    [M_W2_E2E] = M("W2 batch", "end-to-end", "msgs/s", MEDIAN,
                   RATIO_GE(IMPL_BASE, 8.0)),
    [M_W3_P50] = M("W3 latency", "p50", "us", MEDIAN,
                   RATIO_LE(IMPL_BASE, 0.5)),
    [M_W3_P99] = M("W3 latency", "p99", "us", MEDIAN,
                   RATIO_LE(IMPL_BASE, 1.0)),
    [M_W3_MAX] = M("W3 latency", "max", "us", WORST, NO_TARGET),
    /* Diagnostic: how much of the latency is the publisher's own call. */
    [M_W3_SEND] = M("W3 latency", "send call p50", "us", MEDIAN, NO_TARGET),
    [M_W4_EMPTY] = M("W4 backlog", "send, empty", "us", MEDIAN, NO_TARGET),
    [M_W4_FULL] = M("W4 backlog", "send, backlog", "us", MEDIAN, NO_TARGET),
    [M_W4_GROWTH] = M("W4 backlog", "backlog/empty", "x", MEDIAN,
                      VALUE_LE(1.3)),
    [M_W4_FILL] = M("W4 backlog", "fill (batches)", "msgs/s", MEDIAN,
                    NO_TARGET),
    [M_W5_PUB] = M("W5 4 pubs sync", "publish", "msgs/s", MEDIAN,
                   SELF_GE(M_W1S_PUB, 2.5)),
    [M_W5_E2E] = M("W5 4 pubs sync", "end-to-end", "msgs/s", MEDIAN,
                   NO_TARGET),
};

/* The workloads in the order they run; only[] and --only follow it. */
enum { W_1SYNC, W_1NOSYNC, W_2, W_3, W_4, W_5, N_WORKLOADS };
static const char *const workload_name[N_WORKLOADS] = {
    "W1 sync", "W1 nosync", "W2", "W3", "W4", "W5"};
#define W5_PUBS 4

typedef struct options {
    size_t n;          /* W1 nosync and W2 messages */
    size_t n_sync;     /* W1 sync messages */
    size_t n_batch;    /* W2 messages */
    size_t n_w5;       /* W5 messages, all publishers together */
    double w3_secs;
    size_t backlog;
    size_t w4_sends;
    int reps;
    int only[N_WORKLOADS];
    int impls[N_IMPL];
    const char *dir;
    const char *json;
    int quick;
    double quiet_wait; /* seconds to wait for a quiet machine before a run */
} options;

static const char *root;
static unsigned run_counter;

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: pps-bench [OPTIONS]\n"
        "Measures persipubsub against a plain LMDB baseline, SQLite (WAL),\n"
        "Redis Streams (its own redis-server) and, for latency, a pipe.\n"
        "  --n N          messages of W1 nosync (default 20000)\n"
        "  --n-sync N     messages of W1 sync (default 3000)\n"
        "  --n-batch N    messages of W2 (default 5 x --n)\n"
        "  --n-w5 N       messages of W5, of its 4 publishers together\n"
        "                 (default 3000)\n"
        "  --w3-secs S    duration of W3 at 1,000 msgs/s (default 3)\n"
        "  --backlog N    undelivered messages of W4 (default 1000000)\n"
        "  --w4-sends N   timed single sends per W4 state (default 2000)\n"
        "  --reps R       repetitions; medians are reported (default 3)\n"
        "  --only LIST    W1,W1sync,W1nosync,W2,W3,W4,W5 (default all)\n"
        "  --impl LIST    pps,base,pipe,sqlite,redis (default all)\n"
        "  --dir DIR      where the queues go (default: a new /tmp/pps-bench-*\n"
        "                 directory, removed afterwards)\n"
        "  --json PATH    also write the results as JSON to PATH\n"
        "  --quick        tiny sizes, one repetition: a smoke test\n"
        "  --quiet-wait S before each run, wait up to S seconds until other\n"
        "                 programs use under 0.1 CPU (default 0: no wait)\n"
        "  --help\n");
}

static int
parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0) {
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int
parse_list(const char *s, const char *const *names, int n_names, int *flags,
           const int *map)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (int i = 0; i < n_names; i++) {
        flags[map[i]] = 0;
    }
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < n_names; i++) {
            if (strcasecmp(t, names[i]) == 0) {
                flags[map[i]] = 1;
                found = 1;
                /* "W1" selects both of its variants */
                if (strcasecmp(t, "W1") == 0) {
                    flags[W_1NOSYNC] = 1;
                }
            }
        }
        if (!found) {
            bench_fail("unknown name in list: %s", t);
            return -1;
        }
    }
    return 0;
}

static int
parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"n", required_argument, NULL, 'n'},
        {"n-sync", required_argument, NULL, 's'},
        {"n-batch", required_argument, NULL, 'b'},
        {"n-w5", required_argument, NULL, '5'},
        {"w3-secs", required_argument, NULL, 'l'},
        {"backlog", required_argument, NULL, 'k'},
        {"w4-sends", required_argument, NULL, 'w'},
        {"reps", required_argument, NULL, 'r'},
        {"only", required_argument, NULL, 'o'},
        {"impl", required_argument, NULL, 'i'},
        {"dir", required_argument, NULL, 'd'},
        {"json", required_argument, NULL, 'j'},
        {"quick", no_argument, NULL, 'q'},
        {"quiet-wait", required_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const char *const wl_names[] = {"W1", "W1sync", "W1nosync", "W2",
                                           "W3", "W4", "W5"};
    static const int wl_map[] = {W_1SYNC, W_1SYNC, W_1NOSYNC, W_2,
                                 W_3, W_4, W_5};
    enum { N_WL_NAMES = sizeof(wl_names) / sizeof(wl_names[0]) };
    static const int impl_map[] = {IMPL_PPS, IMPL_BASE, IMPL_PIPE,
                                   IMPL_SQLITE, IMPL_REDIS};
    *o = (options){.n = 20000, .n_sync = 3000, .n_w5 = 3000, .w3_secs = 3.0,
                   .backlog = 1000000, .w4_sends = 2000, .reps = 3,
                   .only = {1, 1, 1, 1, 1, 1}, .impls = {1, 1, 1, 1, 1}};
    int quick = 0, set_n = 0, set_sync = 0, set_reps = 0, set_w3 = 0;
    int set_w5 = 0;
    int set_backlog = 0, set_sends = 0;
    int c, li = 0;
    while ((c = getopt_long(argc, argv, "", longs, &li)) != -1) {
        int bad = 0;
        size_t v = 0;
        switch (c) {
        case 'n': bad = parse_size(optarg, &o->n); set_n = 1; break;
        case 's': bad = parse_size(optarg, &o->n_sync); set_sync = 1; break;
        case 'b': bad = parse_size(optarg, &o->n_batch); break;
        case '5': bad = parse_size(optarg, &o->n_w5); set_w5 = 1; break;
        case 'k': bad = parse_size(optarg, &o->backlog); set_backlog = 1; break;
        case 'w': bad = parse_size(optarg, &o->w4_sends); set_sends = 1; break;
        case 'l':
            o->w3_secs = atof(optarg);
            bad = !(o->w3_secs > 0 && o->w3_secs <= 600);
            set_w3 = 1;
            break;
        case 'r':
            bad = parse_size(optarg, &v) || v > MAX_REPS;
            o->reps = (int)v;
            set_reps = 1;
            break;
        case 'o':
            bad = parse_list(optarg, wl_names, N_WL_NAMES, o->only, wl_map);
            break;
        case 'i':
            bad = parse_list(optarg, bench_impl_short, N_IMPL, o->impls,
                             impl_map);
            break;
        case 'd': o->dir = optarg; break;
        case 'j': o->json = optarg; break;
        case 'q': quick = 1; break;
        case 'Q':
            o->quiet_wait = atof(optarg);
            bad = !(o->quiet_wait >= 0 && o->quiet_wait <= 3600);
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            bench_fail("bad value for --%s: %s", longs[li].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return -1;
    }
    o->quick = quick;
    if (quick) {
        o->n = set_n ? o->n : 2000;
        o->n_sync = set_sync ? o->n_sync : 200;
        o->n_w5 = set_w5 ? o->n_w5 : 200;
        o->reps = set_reps ? o->reps : 1;
        o->w3_secs = set_w3 ? o->w3_secs : 0.3;
        o->backlog = set_backlog ? o->backlog : 20000;
        o->w4_sends = set_sends ? o->w4_sends : 200;
    }
    if (o->n_batch == 0) {
        o->n_batch = 5 * o->n;
    }
    return 0;
}

static void
record(int id, int impl, double value)
{
    bench_metric *m = &metrics[id];
    if (m->n_runs[impl] < MAX_REPS) {
        m->runs[impl][m->n_runs[impl]++] = value;
    }
}

/* A fresh directory for one run. */
static int
run_dir(char *buf, size_t cap, const char *what, int impl)
{
    snprintf(buf, cap, "%s/%s-%s-%u", root, what, bench_impl_short[impl],
             run_counter++);
    return bench_mkdir(buf);
}

static int
run_flow(int impl, bench_flow *f, const char *what, int m_pub, int m_e2e)
{
    char dir[PATH_MAX];
    if (run_dir(dir, sizeof(dir), what, impl) != 0) {
        return -1;
    }
    f->dir = dir;
    bench_shm_reset();
    static int (*const flow[N_IMPL])(const bench_flow *) = {
        [IMPL_PPS] = pps_flow, [IMPL_BASE] = base_flow,
        [IMPL_PIPE] = floor_flow, [IMPL_SQLITE] = sqlite_flow,
        [IMPL_REDIS] = redis_flow};
    int rc = flow[impl](f);
    bench_rmtree(dir);
    if (rc != 0) {
        bench_fail("%s failed for %s", what, bench_impl_name[impl]);
        return -1;
    }
    bench_shm *shm = bench_shm_get();
    /* Several publishers: from the first one's start to the last one's
     * end, the time the queue took to take all of their messages. */
    int64_t first = INT64_MAX, pub_end = 0;
    for (int p = 0; p < f->n_pubs; p++) {
        if (shm->pub_end_ns[p] == 0) {
            bench_fail("%s: %s publisher %d recorded no end", what,
                       bench_impl_name[impl], p);
            return -1;
        }
        first = shm->pub_start_ns[p] < first ? shm->pub_start_ns[p] : first;
        pub_end = shm->pub_end_ns[p] > pub_end ? shm->pub_end_ns[p] : pub_end;
    }
    int64_t last = 0;
    for (int i = 0; i < f->n_subs; i++) {
        if (shm->sub_count[i] != f->n) {
            bench_fail("%s: %s subscriber %d got %llu of %zu messages", what,
                       bench_impl_name[impl], i,
                       (unsigned long long)shm->sub_count[i], f->n);
            return -1;
        }
        last = shm->sub_end_ns[i] > last ? shm->sub_end_ns[i] : last;
    }
    if (f->latency) {
        size_t n = shm->n_samples;
        int64_t *s = shm->samples;
        record(M_W3_P50, impl, (double)bench_percentile(s, n, 50) / 1e3);
        record(M_W3_P99, impl, (double)bench_percentile(s, n, 99) / 1e3);
        record(M_W3_MAX, impl, (double)bench_percentile(s, n, 100) / 1e3);
        record(M_W3_SEND, impl,
               (double)bench_percentile(shm->sends, shm->n_sends, 50) / 1e3);
        return 0;
    }
    double pub_s = (double)(pub_end - first) / 1e9;
    double e2e_s = (double)(last - first) / 1e9;
    record(m_pub, impl, (double)f->n / pub_s);
    record(m_e2e, impl, (double)f->n / e2e_s);
    return 0;
}

static int
run_backlog(int impl, const options *o)
{
    char dir[PATH_MAX];
    if (run_dir(dir, sizeof(dir), "w4", impl) != 0) {
        return -1;
    }
    bench_backlog b = {.dir = dir, .backlog = o->backlog,
                       .sends = o->w4_sends};
    bench_shm_reset();
    static int (*const backlog[N_IMPL])(const bench_backlog *) = {
        [IMPL_PPS] = pps_backlog, [IMPL_BASE] = base_backlog,
        [IMPL_SQLITE] = sqlite_backlog, [IMPL_REDIS] = redis_backlog};
    int rc = backlog[impl](&b);
    bench_rmtree(dir);
    if (rc != 0) {
        bench_fail("W4 failed for %s", bench_impl_name[impl]);
        return -1;
    }
    bench_shm *shm = bench_shm_get();
    double empty = (double)bench_percentile(shm->samples, b.sends, 50) / 1e3;
    double full = (double)bench_percentile(shm->samples + b.sends, b.sends,
                                           50) / 1e3;
    record(M_W4_EMPTY, impl, empty);
    record(M_W4_FULL, impl, full);
    record(M_W4_GROWTH, impl, full / empty);
    record(M_W4_FILL, impl, (double)b.backlog / ((double)shm->fill_ns / 1e9));
    return 0;
}

/* Waits until other programs leave the CPUs alone for a quarter second,
 * at most max_s seconds. */
static void
wait_quiet(double max_s)
{
    int64_t until = bench_now_ns() + (int64_t)(max_s * 1e9);
    while (bench_now_ns() < until) {
        bench_cpu a, b;
        bench_cpu_snapshot(&a);
        bench_sleep_ns(250000000);
        bench_cpu_snapshot(&b);
        if (bench_cpu_foreign(&a, &b) < 0.1) {
            return;
        }
    }
}

static int
run_all(const options *o)
{
    int failed = 0;
    for (int rep = 0; rep < o->reps; rep++) {
        for (int w = 0; w < N_WORKLOADS; w++) {
            if (!o->only[w]) {
                continue;
            }
            /* Rotate which implementation runs first. */
            for (int k = 0; k < N_IMPL; k++) {
                int impl = (k + rep) % N_IMPL;
                if (!o->impls[impl] || (impl == IMPL_PIPE && w != W_3)) {
                    continue;
                }
                bench_flow f = {.pub_batch = 1, .sub_batch = 1, .n_pubs = 1,
                                .n_subs = 2};
                int rc = 0;
                if (o->quiet_wait > 0) {
                    wait_quiet(o->quiet_wait);
                }
                fprintf(stderr, "pps-bench: rep %d/%d: %s %s\n", rep + 1,
                        o->reps, workload_name[w], bench_impl_name[impl]);
                switch (w) {
                case W_1SYNC:
                    f.n = o->n_sync;
                    f.durable = 1;
                    rc = run_flow(impl, &f, "w1sync", M_W1S_PUB, M_W1S_E2E);
                    break;
                case W_1NOSYNC:
                    f.n = o->n;
                    rc = run_flow(impl, &f, "w1nosync", M_W1N_PUB, M_W1N_E2E);
                    break;
                case W_2:
                    f.n = o->n_batch;
                    f.pub_batch = 100;
                    f.sub_batch = 1000;
                    rc = run_flow(impl, &f, "w2", M_W2_PUB, M_W2_E2E);
                    break;
                case W_3:
                    f.n = (size_t)(o->w3_secs * 1000.0);
                    f.n_subs = 1;
                    f.interval_ns = 1000000;
                    f.latency = 1;
                    rc = run_flow(impl, &f, "w3", 0, 0);
                    break;
                case W_4:
                    rc = run_backlog(impl, o);
                    break;
                default:
                    /* W1 sync's durability and subscribers, with several
                     * publishers committing at once: what a queue gains
                     * (or loses) when writers contend for its lock and its
                     * flushes. */
                    f.n = o->n_w5;
                    f.durable = 1;
                    f.n_pubs = W5_PUBS;
                    rc = run_flow(impl, &f, "w5", M_W5_PUB, M_W5_E2E);
                    break;
                }
                failed |= rc != 0;
            }
        }
    }
    return failed ? -1 : 0;
}

int
main(int argc, char **argv)
{
    options o;
    char tmpl[] = "/tmp/pps-bench-XXXXXX";
    int created = 0;
    if (parse_options(argc, argv, &o) != 0) {
        return 2;
    }
    if (o.impls[IMPL_REDIS] && !redis_available()) {
        return 1;
    }
    if (o.dir != NULL) {
        if (bench_mkdir(o.dir) != 0) {
            return 1;
        }
        root = o.dir;
    } else {
        root = mkdtemp(tmpl);
        if (root == NULL) {
            bench_fail("cannot create a directory in /tmp");
            return 1;
        }
        created = 1;
    }
    static char backlog_name[48];
    snprintf(backlog_name, sizeof(backlog_name), "send, %zu queued",
             o.backlog);
    metrics[M_W4_FULL].name = backlog_name;
    size_t cap = (size_t)(o.w3_secs * 1000.0) + 2 * o.w4_sends + 16;
    if (bench_shm_init(cap) != 0) {
        return 1;
    }
    bench_report r = {.n = o.n, .n_sync = o.n_sync, .n_batch = o.n_batch,
                      .n_w5 = o.n_w5,
                      .backlog = o.backlog, .w4_sends = o.w4_sends,
                      .w3_secs = o.w3_secs, .reps = o.reps, .quick = o.quick};
    bench_cpu c0, c1;
    bench_load(r.load_before);
    bench_cpu_snapshot(&c0);
    int rc = run_all(&o);
    bench_cpu_snapshot(&c1);
    bench_load(r.load_after);
    r.seconds = (double)(c1.wall_ns - c0.wall_ns) / 1e9;
    r.foreign_cpus = bench_cpu_foreign(&c0, &c1);
    if (created) {
        bench_rmtree(root);
    }
    bench_print_table(metrics, N_METRICS, &r);
    if (o.json != NULL &&
        bench_write_json(o.json, metrics, N_METRICS, &r) != 0) {
        rc = -1;
    }
    return rc == 0 ? 0 : 1;
}
