/*
 * The report of pps-bench: a table on stdout (every figure with its ratio
 * persipubsub/peer to the baseline, SQLite and Redis, and for latencies to
 * the pipe, then each of its targets and whether it was met) and the same
 * figures, with every single run, as JSON.
 */
#include "bench.h"

#include <lmdb.h>
#include <persipubsub/persipubsub.h>
#include <hiredis.h>
#include <sqlite3.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double
bench_metric_value(const bench_metric *m, int impl)
{
    double v[BENCH_MAX_REPS];
    size_t n = m->n_runs[impl];
    if (n == 0) {
        return NAN;
    }
    memcpy(v, m->runs[impl], n * sizeof(double));
    if (m->worst_of_runs) {
        double w = v[0];
        for (size_t i = 1; i < n; i++) {
            w = v[i] > w ? v[i] : w;
        }
        return w;
    }
    return bench_median(v, n);
}

void
bench_load(double out[3])
{
    out[0] = out[1] = out[2] = NAN;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp == NULL) {
        return;
    }
    if (fscanf(fp, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3) {
        out[0] = out[1] = out[2] = NAN;
    }
    fclose(fp);
}

void
bench_cpu_snapshot(bench_cpu *out)
{
    unsigned long long v[8] = {0};
    out->busy_s = -1;
    out->wall_ns = bench_now_ns();
    FILE *fp = fopen("/proc/stat", "r");
    if (fp != NULL) {
        if (fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
            /* user nice system idle iowait irq softirq steal */
            unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6];
            out->busy_s = (double)busy / (double)sysconf(_SC_CLK_TCK);
        }
        fclose(fp);
    }
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    out->own_s = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                          kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
                 (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec +
                          kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) /
                     1e6;
}

double
bench_cpu_foreign(const bench_cpu *a, const bench_cpu *b)
{
    double wall = (double)(b->wall_ns - a->wall_ns) / 1e9;
    if (a->busy_s < 0 || b->busy_s < 0 || wall <= 0) {
        return NAN;
    }
    double f = ((b->busy_s - a->busy_s) - (b->own_s - a->own_s)) / wall;
    return f < 0 ? 0 : f;
}

/* Room for a metric's targets as text. */
#define TARGET_CAP 128

/* Whether any implementation has a run of this figure. */
static int
measured(const bench_metric *m)
{
    for (int k = 0; k < N_IMPL; k++) {
        if (m->n_runs[k] > 0) {
            return 1;
        }
    }
    return 0;
}

static double
ratio(const bench_metric *m, int impl)
{
    double a = bench_metric_value(m, IMPL_PPS);
    double b = bench_metric_value(m, impl);
    return isnan(a) || isnan(b) || b == 0 ? NAN : a / b;
}

static size_t
n_goals(const bench_metric *m)
{
    size_t k = 0;
    while (k < BENCH_MAX_GOALS && m->goals[k].kind != T_NONE) {
        k++;
    }
    return k;
}

/* The other metric a T_SELF_GE goal names; NULL if there is none. */
static const bench_metric *
self_other(const bench_metric *ms, size_t n, const bench_goal *g)
{
    return g->against >= 0 && (size_t)g->against < n ? &ms[g->against]
                                                      : NULL;
}

/* The figure a goal judges: a ratio, or persipubsub's own value (NAN if
 * not measured). */
static double
goal_figure(const bench_metric *ms, size_t n, const bench_metric *m,
            const bench_goal *g)
{
    double v = bench_metric_value(m, IMPL_PPS);
    switch (g->kind) {
    case T_RATIO_GE:
    case T_RATIO_LE:
        return g->against >= 0 && g->against < N_IMPL ? ratio(m, g->against)
                                                       : NAN;
    case T_VALUE_LE:
        return v;
    case T_SELF_GE: {
        const bench_metric *o = self_other(ms, n, g);
        double b = o != NULL ? bench_metric_value(o, IMPL_PPS) : NAN;
        return isnan(v) || isnan(b) || b == 0 ? NAN : v / b;
    }
    default:
        return NAN;
    }
}

/* 1: met, 0: missed, -1: not measured. */
static int
goal_met(const bench_metric *ms, size_t n, const bench_metric *m,
         const bench_goal *g)
{
    double f = goal_figure(ms, n, m, g);
    if (isnan(f)) {
        return -1;
    }
    return g->kind == T_RATIO_GE || g->kind == T_SELF_GE ? f >= g->value
                                                         : f <= g->value;
}

/* All of a metric's goals: 1 if every one is met, 0 if any is missed, -1
 * if it has none or some could not be judged and none was missed. */
static int
met_all(const bench_metric *ms, size_t n, const bench_metric *m)
{
    int all = n_goals(m) > 0 ? 1 : -1;
    for (size_t k = 0; k < n_goals(m); k++) {
        int ok = goal_met(ms, n, m, &m->goals[k]);
        if (ok == 0) {
            return 0;
        }
        if (ok < 0) {
            all = -1;
        }
    }
    return all;
}

/* A factor with one decimal at least, so that a target reads ">= 1.0x",
 * never ">= 1x", and 1.25 stays 1.25. */
static void
fmt_factor(char *buf, size_t cap, double v)
{
    snprintf(buf, cap, v == floor(v) ? "%.1f" : "%g", v);
}

/* One goal as text: ">= 1.5x redis", "<= 1.3", ">= 2.5x W1 sync publish". */
static void
goal_text(const bench_metric *ms, size_t n, const bench_goal *g, char *buf,
          size_t cap)
{
    char v[32];
    fmt_factor(v, sizeof(v), g->value);
    const bench_metric *o = self_other(ms, n, g);
    switch (g->kind) {
    case T_RATIO_GE:
    case T_RATIO_LE:
        snprintf(buf, cap, "%s %sx %s", g->kind == T_RATIO_GE ? ">=" : "<=",
                 v,
                 g->against >= 0 && g->against < N_IMPL
                     ? bench_impl_short[g->against]
                     : "?");
        break;
    case T_VALUE_LE:
        snprintf(buf, cap, "<= %s", v);
        break;
    case T_SELF_GE:
        snprintf(buf, cap, ">= %sx %s %s", v, o != NULL ? o->workload : "?",
                 o != NULL ? o->name : "");
        break;
    default:
        snprintf(buf, cap, "-");
        break;
    }
}

/* Every goal of a metric, joined by ", " ("-" if none). */
static void
target_text(const bench_metric *ms, size_t n, const bench_metric *m,
            char *buf, size_t cap)
{
    size_t used = 0;
    snprintf(buf, cap, "-");
    for (size_t k = 0; k < n_goals(m) && used < cap; k++) {
        char one[96];
        goal_text(ms, n, &m->goals[k], one, sizeof(one));
        int w = snprintf(buf + used, cap - used, "%s%s", k > 0 ? ", " : "",
                         one);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* Whether each goal was met, in the order of target_text, joined by "/":
 * "NO/yes"; "-" for a goal that could not be judged, or for no goal. */
static void
met_text(const bench_metric *ms, size_t n, const bench_metric *m, char *buf,
         size_t cap)
{
    size_t used = 0;
    snprintf(buf, cap, "-");
    for (size_t k = 0; k < n_goals(m) && used < cap; k++) {
        int ok = goal_met(ms, n, m, &m->goals[k]);
        int w = snprintf(buf + used, cap - used, "%s%s", k > 0 ? "/" : "",
                         ok < 0 ? "-" : ok ? "yes" : "NO");
        used += w > 0 ? (size_t)w : 0;
    }
}

/* A value in the unit's natural precision; thousands separated. */
static void
fmt_value(char *buf, size_t cap, double v, const char *unit)
{
    if (isnan(v)) {
        snprintf(buf, cap, "-");
        return;
    }
    if (strcmp(unit, "msgs/s") != 0) {
        snprintf(buf, cap, v < 10 ? "%.2f" : "%.1f", v);
        return;
    }
    char digits[32];
    snprintf(digits, sizeof(digits), "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            buf[o++] = ',';
        }
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void
fmt_ratio(char *buf, size_t cap, double r)
{
    if (isnan(r)) {
        snprintf(buf, cap, "-");
    } else {
        snprintf(buf, cap, "%.2fx", r);
    }
}

void
bench_print_table(const bench_metric *ms, size_t n, const bench_report *r)
{
    struct utsname u;
    if (uname(&u) != 0) {
        memset(&u, 0, sizeof(u));
    }
    printf("pps-bench: persipubsub %s vs plain LMDB (%s), SQLite %s (WAL), "
           "Redis %s (hiredis %d.%d.%d); %ld CPUs; %s %s\n",
           pps_version(), mdb_version(NULL, NULL, NULL), sqlite3_libversion(),
           redis_bench_version[0] != '\0' ? redis_bench_version : "-",
           HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
           sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
    printf("%s%d repetition(s), medians; %.0f s; load average %.2f before, "
           "%.2f after; other programs used %.2f CPUs meanwhile\n",
           r->quick ? "QUICK smoke run; " : "", r->reps, r->seconds,
           r->load_before[0], r->load_after[0], r->foreign_cpus);
    if (!(r->foreign_cpus < 0.1)) {
        printf("NOTE: the machine was not quiet: these figures are "
               "preliminary\n");
    }
    printf("W1 sync %zu msgs, W1 nosync %zu, W2 %zu (batches of 100), W3 %.1f "
           "s at 1,000/s, W4 %zu backlog, %zu sends, W5 %zu (4 publishers)"
           "\n\n",
           r->n_sync, r->n, r->n_batch, r->w3_secs, r->backlog, r->w4_sends,
           r->n_w5);
    printf("peers: \"sync\" (W1 sync, W5) = SQLite synchronous=FULL, Redis "
           "appendfsync always; otherwise NORMAL, everysec. "
           "x base/sqlite/redis/pipe = persipubsub / that peer\n\n");
    /* The target column is as wide as its longest text: a metric with two
     * targets (">= 1.0x sqlite, >= 1.5x redis") must not push its "met"
     * out of line. */
    int twidth = (int)strlen("target");
    for (size_t i = 0; i < n; i++) {
        char t[TARGET_CAP];
        if (measured(&ms[i])) {
            target_text(ms, n, &ms[i], t, sizeof(t));
            twidth = (int)strlen(t) > twidth ? (int)strlen(t) : twidth;
        }
    }
    printf("%-14s %-19s %-6s %11s %11s %7s %11s %7s %11s %7s %8s %7s  "
           "%-*s %s\n",
           "workload", "metric", "unit", "persipubsub", "baseline", "x base",
           "sqlite", "x sqlite", "redis", "x redis", "pipe", "x pipe",
           twidth, "target", "met");
    for (size_t i = 0; i < n; i++) {
        const bench_metric *m = &ms[i];
        if (!measured(m)) {
            continue;
        }
        static const int cols[] = {IMPL_BASE, IMPL_SQLITE, IMPL_REDIS,
                                   IMPL_PIPE};
        char v[N_IMPL][32], rt[N_IMPL][16], t[TARGET_CAP], ok[32];
        for (int k = 0; k < N_IMPL; k++) {
            fmt_value(v[k], sizeof(v[k]), bench_metric_value(m, k), m->unit);
            fmt_ratio(rt[k], sizeof(rt[k]), ratio(m, k));
        }
        target_text(ms, n, m, t, sizeof(t));
        met_text(ms, n, m, ok, sizeof(ok));
        printf("%-14s %-19s %-6s %11s", m->workload, m->name, m->unit,
               v[IMPL_PPS]);
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
            printf(cols[k] == IMPL_PIPE ? " %8s %7s" : " %11s %7s",
                   v[cols[k]], rt[cols[k]]);
        }
        printf("  %-*s %s\n", twidth, t, ok);
    }
    fflush(stdout);
}

static void
json_number(FILE *fp, double v)
{
    if (isnan(v) || isinf(v)) {
        fputs("null", fp);
    } else {
        fprintf(fp, "%.6g", v);
    }
}

static void
json_metric(FILE *fp, const bench_metric *ms, size_t n, const bench_metric *m)
{
    char t[TARGET_CAP];
    target_text(ms, n, m, t, sizeof(t));
    int ok = met_all(ms, n, m);
    fprintf(fp, "    {\"workload\": \"%s\", \"metric\": \"%s\", "
                "\"unit\": \"%s\",\n     ",
            m->workload, m->name, m->unit);
    for (int k = 0; k < N_IMPL; k++) {
        fprintf(fp, "\"%s\": ", bench_impl_name[k]);
        json_number(fp, bench_metric_value(m, k));
        fputs(", ", fp);
    }
    fputs("\"ratio\": ", fp);
    json_number(fp, ratio(m, IMPL_BASE));
    for (int k = 0; k < N_IMPL; k++) {
        if (k != IMPL_PPS && k != IMPL_BASE) {
            fprintf(fp, ", \"ratio_%s\": ", bench_impl_name[k]);
            json_number(fp, ratio(m, k));
        }
    }
    /* "met": all targets together; "targets": each one, as the table's
     * columns show them. */
    fprintf(fp, ",\n     \"aggregate\": \"%s\", \"target\": \"%s\", "
                "\"met\": %s,\n     \"targets\": [",
            m->worst_of_runs ? "max" : "median", t,
            ok < 0 ? "null" : ok ? "true" : "false");
    for (size_t k = 0; k < n_goals(m); k++) {
        const bench_goal *g = &m->goals[k];
        char one[96];
        goal_text(ms, n, g, one, sizeof(one));
        int gok = goal_met(ms, n, m, g);
        fprintf(fp, "%s{\"target\": \"%s\", \"figure\": ", k > 0 ? ", " : "",
                one);
        json_number(fp, goal_figure(ms, n, m, g));
        fprintf(fp, ", \"met\": %s}",
                gok < 0 ? "null" : gok ? "true" : "false");
    }
    fputs("],\n     \"runs\": {", fp);
    for (int k = 0; k < N_IMPL; k++) {
        fprintf(fp, "%s\"%s\": [", k > 0 ? ", " : "", bench_impl_name[k]);
        for (size_t i = 0; i < m->n_runs[k]; i++) {
            if (i > 0) {
                fputs(", ", fp);
            }
            json_number(fp, m->runs[k][i]);
        }
        fputs("]", fp);
    }
    fputs("}}", fp);
}

int
bench_write_json(const char *path, const bench_metric *ms, size_t n,
                 const bench_report *r)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        bench_fail("cannot write %s", path);
        return -1;
    }
    struct utsname u;
    if (uname(&u) != 0) {
        memset(&u, 0, sizeof(u));
    }
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(fp, "{\n  \"tool\": \"pps-bench\",\n  \"date\": \"%s\",\n"
                "  \"persipubsub\": \"%s\",\n  \"lmdb\": \"%s\",\n"
                "  \"sqlite\": \"%s\",\n  \"redis\": \"%s\",\n"
                "  \"hiredis\": \"%d.%d.%d\",\n"
                "  \"peers\": {\"sqlite\": \"WAL; W1 sync and W5 "
                "synchronous=FULL, otherwise NORMAL; subscribers poll every "
                "50 us\", \"redis\": \"Streams, a consumer group per "
                "subscriber; appendonly, W1 sync and W5 appendfsync always, "
                "otherwise everysec\"},\n"
                "  \"system\": \"%s %s %s\",\n  \"cpus\": %ld,\n",
            date, pps_version(), mdb_version(NULL, NULL, NULL),
            sqlite3_libversion(), redis_bench_version, HIREDIS_MAJOR,
            HIREDIS_MINOR, HIREDIS_PATCH, u.sysname, u.release, u.machine,
            sysconf(_SC_NPROCESSORS_ONLN));
    fputs("  \"load_before\": [", fp);
    for (int i = 0; i < 3; i++) {
        fputs(i > 0 ? ", " : "", fp);
        json_number(fp, r->load_before[i]);
    }
    fputs("],\n  \"load_after\": [", fp);
    for (int i = 0; i < 3; i++) {
        fputs(i > 0 ? ", " : "", fp);
        json_number(fp, r->load_after[i]);
    }
    fputs("],\n  \"foreign_cpus\": ", fp);
    json_number(fp, r->foreign_cpus);
    fprintf(fp, ",\n  \"seconds\": %.1f,\n"
                "  \"options\": {\"n\": %zu, \"n_sync\": %zu, "
                "\"n_batch\": %zu, \"w3_secs\": %g, \"backlog\": %zu, "
                "\"w4_sends\": %zu, \"n_w5\": %zu, \"w5_publishers\": 4, "
                "\"reps\": %d, \"quick\": %s,\n"
                "              \"msg_size\": %d, \"subscribers\": %d, "
                "\"pub_batch\": 100, \"sub_batch\": 1000, "
                "\"baseline_poll_us\": 50},\n  \"metrics\": [\n",
            r->seconds, r->n, r->n_sync, r->n_batch, r->w3_secs, r->backlog,
            r->w4_sends, r->n_w5, r->reps, r->quick ? "true" : "false",
            BENCH_MSG_SIZE,
            BENCH_MAX_SUBS);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const bench_metric *m = &ms[i];
        if (!measured(m)) {
            continue;
        }
        fputs(first ? "" : ",\n", fp);
        first = 0;
        json_metric(fp, ms, n, m);
    }
    fputs("\n  ]\n}\n", fp);
    if (fclose(fp) != 0) {
        bench_fail("cannot write %s", path);
        return -1;
    }
    return 0;
}
