/*
 * Helpers of pps-bench: clocks, the shared result mapping, the process
 * runner that starts every role of a workload at the same moment, and
 * statistics.
 */
#define _XOPEN_SOURCE 700 /* nftw() */
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bench_shm *shm;

/* The child's ends of the start pipes (see bench_run()). */
static int child_ready_fd = -1;
static int child_go_fd = -1;
static int child_was_ready;

int64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bench_sleep_until(int64_t at_ns)
{
    struct timespec ts = {.tv_sec = at_ns / 1000000000,
                          .tv_nsec = at_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void
bench_sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&ts, NULL);
}

int
bench_idle_wait(int64_t *idle_since, int64_t poll_ns, const char *who)
{
    int64_t now = bench_now_ns();
    if (*idle_since == 0) {
        *idle_since = now;
    } else if (now - *idle_since > (int64_t)BENCH_RECV_TIMEOUT_MS * 1000000) {
        bench_fail("%s got no message for %d ms", who, BENCH_RECV_TIMEOUT_MS);
        return -1;
    }
    bench_sleep_ns(poll_ns);
    return 0;
}

int
bench_sub_done(int idx, uint64_t count, int latency, int bad,
               const char *who)
{
    bench_shm *page = bench_shm_get();
    page->sub_end_ns[idx] = bench_now_ns();
    page->sub_count[idx] = count;
    if (latency) {
        page->n_samples = count < page->cap_samples ? count
                                                    : page->cap_samples;
    }
    if (bad) {
        bench_fail("%s got a message out of order or of the wrong size", who);
        return -1;
    }
    return 0;
}

void
bench_fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "pps-bench: %s\n", buf);
}

bench_shm *
bench_shm_get(void)
{
    return shm;
}

int
bench_shm_init(size_t cap_samples)
{
    size_t size = sizeof(bench_shm) + 2 * cap_samples * sizeof(int64_t);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        bench_fail("cannot map %zu bytes of shared memory: %s", size,
                   strerror(errno));
        return -1;
    }
    shm = p;
    shm->cap_samples = cap_samples;
    shm->sends = shm->samples + cap_samples;
    return 0;
}

void
bench_shm_reset(void)
{
    size_t cap = shm->cap_samples;
    memset(shm, 0, sizeof(*shm));
    shm->cap_samples = cap;
    shm->sends = shm->samples + cap;
}

void
bench_child_ready(void)
{
    char c = 'r';
    child_was_ready = 1;
    if (write(child_ready_fd, &c, 1) != 1) {
        _exit(3);
    }
    /* The driver closes its end of the go pipe when every child is ready:
     * read() then returns 0 in all of them at once. */
    while (read(child_go_fd, &c, 1) < 0 && errno == EINTR) {
    }
}

static void
kill_all(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
        }
    }
}

/* Waits for every child in pids; returns 0 if all exited with status 0. */
static int
reap(pid_t *pids, int n, int64_t deadline_ns)
{
    int failed = 0;
    int left = n;
    while (left > 0) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p < 0 && errno != EINTR) {
            bench_fail("waitpid: %s", strerror(errno));
            return -1;
        }
        if (p <= 0) {
            if (bench_now_ns() > deadline_ns) {
                bench_fail("workload timed out; killing its processes");
                kill_all(pids, n);
                deadline_ns = INT64_MAX;
                failed = 1;
            }
            bench_sleep_ns(1000000);
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (pids[i] != p) {
                continue;
            }
            pids[i] = 0;
            left--;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                if (WIFSIGNALED(st)) {
                    bench_fail("role %d (pid %ld) killed by signal %d", i,
                               (long)p, WTERMSIG(st));
                } else {
                    bench_fail("role %d (pid %ld) exited with status %d", i,
                               (long)p, WEXITSTATUS(st));
                }
                failed = 1;
            }
        }
    }
    return failed ? -1 : 0;
}

int
bench_run(int n, bench_child_fn fn, void *arg, int timeout_s)
{
    int ready[2], go[2];
    pid_t pids[8] = {0};
    if (n < 1 || n > 8) {
        return -1;
    }
    if (pipe(ready) != 0 || pipe(go) != 0) {
        bench_fail("pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            bench_fail("fork: %s", strerror(errno));
            kill_all(pids, i);
            close(go[1]);
            reap(pids, i, INT64_MAX);
            close(ready[0]);
            close(ready[1]);
            close(go[0]);
            return -1;
        }
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            child_ready_fd = ready[1];
            child_go_fd = go[0];
            int rc = fn(i, arg);
            if (!child_was_ready) {
                /* Failed while setting up: tell the driver not to wait. */
                char c = 'f';
                if (write(child_ready_fd, &c, 1) != 1) {
                    _exit(3);
                }
            }
            _exit(rc == 0 ? 0 : 1);
        }
        pids[i] = p;
    }
    close(ready[1]);
    close(go[0]);
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * 1000000000;
    int got = 0;
    while (got < n) {
        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        int rc = poll(&pfd, 1, 1000);
        if (rc < 0 && errno != EINTR) {
            break;
        }
        if (rc > 0) {
            char buf[8];
            ssize_t r = read(ready[0], buf, sizeof(buf));
            if (r <= 0) {
                break; /* every child is gone: some failed before ready */
            }
            if (memchr(buf, 'f', (size_t)r) != NULL) {
                break;
            }
            got += (int)r;
        }
        if (bench_now_ns() > deadline) {
            break;
        }
    }
    close(ready[0]);
    if (got < n) {
        bench_fail("only %d of %d processes got ready", got, n);
        kill_all(pids, n);
        close(go[1]);
        reap(pids, n, INT64_MAX);
        return -1;
    }
    close(go[1]); /* go */
    return reap(pids, n, deadline);
}

int
bench_mkdir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        bench_fail("cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT) {
        bench_fail("cannot remove %s: %s", path, strerror(errno));
    }
    return 0;
}

int
bench_rmtree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        return 0;
    }
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double
bench_median(double *v, size_t n)
{
    if (n == 0) {
        return 0.0;
    }
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int64_t
bench_percentile(int64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    /* Nearest rank: the smallest value with at least p % at or below it. */
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
}

/* Where the publisher's index sits: after the sequence and the stamp. */
#define PAYLOAD_PUB_AT (sizeof(uint64_t) + sizeof(int64_t))

void
bench_payload(unsigned char *buf, int pub, uint64_t seq, int64_t ts_ns)
{
    uint32_t p = (uint32_t)pub;
    memset(buf, 0x5a, BENCH_MSG_SIZE);
    memcpy(buf, &seq, sizeof(seq));
    memcpy(buf + sizeof(seq), &ts_ns, sizeof(ts_ns));
    memcpy(buf + PAYLOAD_PUB_AT, &p, sizeof(p));
}

uint64_t
bench_payload_seq(const void *buf)
{
    uint64_t seq;
    memcpy(&seq, buf, sizeof(seq));
    return seq;
}

int64_t
bench_payload_ts(const void *buf)
{
    int64_t ts;
    memcpy(&ts, (const unsigned char *)buf + sizeof(uint64_t), sizeof(ts));
    return ts;
}

int
bench_payload_pub(const void *buf)
{
    uint32_t p;
    memcpy(&p, (const unsigned char *)buf + PAYLOAD_PUB_AT, sizeof(p));
    return p < BENCH_MAX_PUBS ? (int)p : -1;
}

size_t
bench_pub_share(const bench_flow *f, int p)
{
    size_t k = (size_t)f->n_pubs;
    return f->n / k + ((size_t)p < f->n % k ? 1 : 0);
}

int
bench_publish(const bench_flow *f, int idx, unsigned char *bufs,
              bench_send_fn send, void *ctx)
{
    bench_shm *page = bench_shm_get();
    size_t n = bench_pub_share(f, idx);
    bench_child_ready();
    int64_t start = bench_now_ns();
    int64_t next = start;
    page->pub_start_ns[idx] = start;
    for (size_t i = 0; i < n; i += f->pub_batch) {
        size_t k = n - i < f->pub_batch ? n - i : f->pub_batch;
        if (f->interval_ns > 0) {
            bench_sleep_until(next);
            next += f->interval_ns;
        }
        int64_t ts = f->latency ? bench_now_ns() : 0;
        for (size_t j = 0; j < k; j++) {
            bench_payload(bufs + j * BENCH_MSG_SIZE, idx, i + j, ts);
        }
        if (send(ctx, bufs, k) != 0) {
            return -1;
        }
        if (f->latency && i < page->cap_samples) {
            page->sends[i] = bench_now_ns() - ts;
            page->n_sends = i + 1;
        }
    }
    page->pub_end_ns[idx] = bench_now_ns();
    return 0;
}

void
bench_order_init(bench_order *o, int n_pubs)
{
    memset(o, 0, sizeof(*o));
    o->n_pubs = n_pubs;
}

int
bench_order_next(bench_order *o, const void *data, size_t len)
{
    if (len != BENCH_MSG_SIZE) {
        return 0;
    }
    int p = bench_payload_pub(data);
    if (p < 0 || p >= o->n_pubs || bench_payload_seq(data) != o->next[p]) {
        return 0;
    }
    o->next[p]++;
    return 1;
}
