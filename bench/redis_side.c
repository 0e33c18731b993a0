/*
 * The Redis Streams peer, with the same processes as the other
 * implementations.
 *
 * Each run starts its own redis-server (from PATH) on a free port of
 * 127.0.0.1 with its files in the run's directory, append-only file on and
 * no snapshots: "appendfsync always" (the AOF is flushed before the replies
 * of each event-loop round) for durable, "everysec" for relaxed; it is
 * stopped when the run ends, also when the run failed (and it dies with the
 * benchmark: PR_SET_PDEATHSIG). One stream "q"; every subscriber is its own
 * consumer group "gN" (created at id 0 before the roles start), so each sees
 * every message. A send is XADD (a batch: MULTI, XADDs, EXEC in one
 * pipeline); a receive is XREADGROUP ... BLOCK (COUNT 1, or the workload's
 * receive batch) followed by XACK of what it handed to the callback. Redis
 * notifies a blocked reader itself: no polling. Acknowledged entries stay
 * in the stream (trimming is a separate XTRIM a user would schedule).
 */
#include "bench.h"

#include <hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#define STREAM "q"
#define SERVER "redis-server"

char redis_bench_version[32] = "";

/* The server of the current run (the driver's; one at a time). */
static pid_t server_pid;
static int server_port;
static int atexit_set;

static int
redis_fail(const redisContext *c, const redisReply *r, const char *what)
{
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        bench_fail("redis: %s: %s", what, r->str);
    } else if (c != NULL && c->err) {
        bench_fail("redis: %s: %s", what, c->errstr);
    } else {
        bench_fail("redis: %s: unexpected reply", what);
    }
    return -1;
}

int
redis_available(void)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    if (path == NULL) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        if ((size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path,
                             SERVER) < sizeof(buf) &&
            access(buf, X_OK) == 0) {
            return 1;
        }
        path += len + (path[len] == ':');
    }
    bench_fail("the Redis peer needs %s in PATH: install the Debian package "
               "redis-server (bash scripts/run bench does), or leave the "
               "peer out with --impl pps,base,pipe,sqlite", SERVER);
    return 0;
}

static void
server_stop(void)
{
    if (server_pid <= 0) {
        return;
    }
    kill(server_pid, SIGTERM);
    int64_t deadline = bench_now_ns() + 10000000000LL;
    for (;;) {
        int st;
        pid_t p = waitpid(server_pid, &st, WNOHANG);
        if (p == server_pid || (p < 0 && errno == ECHILD)) {
            break;
        }
        if (bench_now_ns() > deadline) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, &st, 0);
            break;
        }
        bench_sleep_ns(2000000);
    }
    server_pid = 0;
}

/* A port of 127.0.0.1 that nobody listens on now. */
static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (port < 0) {
        bench_fail("redis: no free port on 127.0.0.1: %s", strerror(errno));
    }
    return port;
}

static void
show_log(const char *dir)
{
    char path[PATH_MAX], buf[2048];
    /* Checked: a truncated name would open some other file (and an
     * unchecked snprintf fails the release build's -Wformat-truncation). */
    if ((size_t)snprintf(path, sizeof(path), "%s/redis.log", dir) >=
        sizeof(path)) {
        return;
    }
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    fprintf(stderr, "pps-bench: %s:\n%s\n", path, buf);
}

static redisContext *
connect_server(void)
{
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", server_port, tv);
    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }
        return NULL;
    }
    return c;
}

/* Starts redis-server in dir; waits until it answers PING. */
static int
server_start(const char *dir, int durable)
{
    char port[16], logfile[PATH_MAX], abs[PATH_MAX];
    /* redis-server changes into --dir before it opens --logfile: both
     * absolute. */
    if (realpath(dir, abs) == NULL) {
        bench_fail("redis: %s: %s", dir, strerror(errno));
        return -1;
    }
    dir = abs;
    server_port = free_port();
    if (server_port < 0) {
        return -1;
    }
    if (!atexit_set) {
        atexit(server_stop);
        atexit_set = 1;
    }
    snprintf(port, sizeof(port), "%d", server_port);
    if ((size_t)snprintf(logfile, sizeof(logfile), "%s/redis.log", dir) >=
        sizeof(logfile)) {
        bench_fail("redis: path too long: %s", dir);
        return -1;
    }
    fflush(NULL);
    pid_t p = fork();
    if (p < 0) {
        bench_fail("fork: %s", strerror(errno));
        return -1;
    }
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execlp(SERVER, SERVER, "--port", port, "--bind", "127.0.0.1",
               "--protected-mode", "yes", "--save", "", "--appendonly", "yes",
               "--appendfsync", durable ? "always" : "everysec", "--dir", dir,
               "--logfile", logfile, "--daemonize", "no", (char *)NULL);
        fprintf(stderr, "pps-bench: cannot run %s: %s\n", SERVER,
                strerror(errno));
        _exit(127);
    }
    server_pid = p;
    int64_t deadline = bench_now_ns() + 10000000000LL;
    while (bench_now_ns() < deadline) {
        int st;
        if (waitpid(p, &st, WNOHANG) == p) {
            server_pid = 0;
            bench_fail("redis: %s exited at start", SERVER);
            show_log(dir);
            return -1;
        }
        redisContext *c = connect_server();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok) {
                return 0;
            }
        }
        bench_sleep_ns(10000000);
    }
    bench_fail("redis: %s did not answer on port %d", SERVER, server_port);
    show_log(dir);
    server_stop();
    return -1;
}

/* In the driver: one consumer group per subscriber, and the version. */
static int
create_groups(int n_subs)
{
    redisContext *c = connect_server();
    int rc = 0;
    if (c == NULL) {
        bench_fail("redis: cannot connect to port %d", server_port);
        return -1;
    }
    for (int i = 0; i < n_subs && rc == 0; i++) {
        redisReply *r = redisCommand(c, "XGROUP CREATE " STREAM " g%d 0 "
                                        "MKSTREAM", i);
        if (r == NULL || r->type != REDIS_REPLY_STATUS) {
            rc = redis_fail(c, r, "XGROUP CREATE");
        }
        freeReplyObject(r);
    }
    if (rc == 0 && redis_bench_version[0] == '\0') {
        redisReply *r = redisCommand(c, "INFO server");
        const char *v = r != NULL && r->type == REDIS_REPLY_STRING
                            ? strstr(r->str, "redis_version:")
                            : NULL;
        if (v != NULL) {
            v += strlen("redis_version:");
            snprintf(redis_bench_version, sizeof(redis_bench_version), "%.*s",
                     (int)strcspn(v, "\r\n"), v);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return rc;
}

/* Publishes bufs[0..k): one XADD, or MULTI/XADD.../EXEC in one pipeline. */
static int
rsend(redisContext *c, const unsigned char *bufs, size_t k)
{
    redisReply *r = NULL;
    if (k == 1) {
        r = redisCommand(c, "XADD " STREAM " * p %b", bufs,
                         (size_t)BENCH_MSG_SIZE);
        int ok = r != NULL && r->type == REDIS_REPLY_STRING;
        if (!ok) {
            redis_fail(c, r, "XADD");
        }
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
    redisAppendCommand(c, "MULTI");
    for (size_t j = 0; j < k; j++) {
        redisAppendCommand(c, "XADD " STREAM " * p %b",
                           bufs + j * BENCH_MSG_SIZE, (size_t)BENCH_MSG_SIZE);
    }
    redisAppendCommand(c, "EXEC");
    int ok = 1;
    for (size_t j = 0; j < k + 2; j++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) {
            return redis_fail(c, NULL, "XADD batch");
        }
        r = reply;
        if (r->type == REDIS_REPLY_ERROR ||
            (j == k + 1 && (r->type != REDIS_REPLY_ARRAY || r->elements != k))) {
            if (ok) {
                redis_fail(c, r, "XADD batch");
            }
            ok = 0;
        }
        freeReplyObject(r);
    }
    return ok ? 0 : -1;
}

typedef struct rsub {
    int idx;
    int latency;
    int bad;
    uint64_t count;
    bench_order order;
} rsub;

static void
on_message(rsub *s, const redisReply *fields)
{
    int64_t now = bench_now_ns(); /* first thing: the "callback" is entered */
    bench_shm *shm = bench_shm_get();
    const redisReply *v = fields->type == REDIS_REPLY_ARRAY &&
                                  fields->elements == 2
                              ? fields->element[1]
                              : NULL;
    if (v == NULL || v->type != REDIS_REPLY_STRING ||
        !bench_order_next(&s->order, v->str, v->len)) {
        s->bad = 1; /* counted: the subscriber ends after n and reports it */
        s->count++;
        return;
    }
    if (s->latency && s->count < shm->cap_samples) {
        shm->samples[s->count] = now - bench_payload_ts(v->str);
    }
    s->count++;
}

/* One XREADGROUP of up to max entries, then one XACK of them. */
static int
rtake(redisContext *c, rsub *s, size_t max, const char **argv, size_t *lens)
{
    /* hiredis 0.14 knows no %zu: the numbers go in as strings. */
    char count[24], block[24];
    snprintf(count, sizeof(count), "%zu", max);
    snprintf(block, sizeof(block), "%d", BENCH_RECV_TIMEOUT_MS);
    redisReply *r = redisCommand(c, "XREADGROUP GROUP g%d c COUNT %s BLOCK "
                                    "%s STREAMS " STREAM " >",
                                 s->idx, count, block);
    int rc = 0;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        rc = redis_fail(c, r, "XREADGROUP");
        goto done;
    }
    if (r->type == REDIS_REPLY_NIL) {
        bench_fail("redis: sub%d got no message for %d ms", s->idx,
                   BENCH_RECV_TIMEOUT_MS);
        rc = -1;
        goto done;
    }
    /* [[stream, [[id, [field, value]], ...]]] */
    const redisReply *entries = r->type == REDIS_REPLY_ARRAY &&
                                        r->elements == 1 &&
                                        r->element[0]->elements == 2
                                    ? r->element[0]->element[1]
                                    : NULL;
    if (entries == NULL || entries->type != REDIS_REPLY_ARRAY ||
        entries->elements > max) {
        rc = redis_fail(c, r, "XREADGROUP");
        goto done;
    }
    size_t n = entries->elements;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) {
            rc = redis_fail(c, r, "XREADGROUP entry");
            goto done;
        }
        on_message(s, e->element[1]);
        argv[3 + i] = e->element[0]->str;
        lens[3 + i] = e->element[0]->len;
    }
    char group[16];
    snprintf(group, sizeof(group), "g%d", s->idx);
    argv[0] = "XACK";
    argv[1] = STREAM;
    argv[2] = group;
    lens[0] = 4;
    lens[1] = strlen(STREAM);
    lens[2] = strlen(group);
    redisReply *a = redisCommandArgv(c, (int)(3 + n), argv, lens);
    if (a == NULL || a->type != REDIS_REPLY_INTEGER ||
        a->integer != (long long)n) {
        rc = redis_fail(c, a, "XACK");
    }
    freeReplyObject(a);
done:
    freeReplyObject(r);
    return rc;
}

static int
send_cb(void *ctx, const unsigned char *bufs, size_t k)
{
    return rsend(ctx, bufs, k);
}

static int
flow_publisher(const bench_flow *f, int idx)
{
    unsigned char *bufs = malloc(f->pub_batch * BENCH_MSG_SIZE);
    redisContext *c = connect_server();
    int rc = -1;
    if (bufs == NULL || c == NULL) {
        bench_fail("redis: publisher: cannot connect or out of memory");
        goto done;
    }
    rc = bench_publish(f, idx, bufs, send_cb, c);
done:
    if (c != NULL) {
        redisFree(c);
    }
    free(bufs);
    return rc;
}

static int
flow_subscriber(const bench_flow *f, int idx)
{
    rsub s = {.idx = idx, .latency = f->latency && idx == 0};
    bench_order_init(&s.order, f->n_pubs);
    const char **argv = malloc((3 + f->sub_batch) * sizeof(*argv));
    size_t *lens = malloc((3 + f->sub_batch) * sizeof(*lens));
    redisContext *c = connect_server();
    int rc = -1;
    if (argv == NULL || lens == NULL || c == NULL) {
        bench_fail("redis: sub%d: cannot connect or out of memory", idx);
        goto done;
    }
    bench_child_ready();
    while (s.count < f->n) {
        if (rtake(c, &s, f->sub_batch, argv, lens) != 0) {
            goto done;
        }
    }
    char who[32];
    snprintf(who, sizeof(who), "redis: sub%d", idx);
    rc = bench_sub_done(idx, s.count, s.latency, s.bad, who);
done:
    if (c != NULL) {
        redisFree(c);
    }
    free(lens);
    free(argv);
    return rc;
}

static int
flow_role(int role, void *arg)
{
    const bench_flow *f = arg;
    return role < f->n_pubs ? flow_publisher(f, role)
                            : flow_subscriber(f, role - f->n_pubs);
}

int
redis_flow(const bench_flow *f)
{
    if (server_start(f->dir, f->durable) != 0) {
        return -1;
    }
    int rc = create_groups(f->n_subs);
    if (rc == 0) {
        rc = bench_run(f->n_pubs + f->n_subs, flow_role,
                       (void *)(uintptr_t)f, 900);
    }
    server_stop();
    return rc;
}

static int
timed_sends(redisContext *c, const bench_backlog *bl, size_t from,
            uint64_t *seq)
{
    bench_shm *shm = bench_shm_get();
    unsigned char buf[BENCH_MSG_SIZE];
    for (size_t i = 0; i < bl->sends; i++) {
        bench_payload(buf, 0, (*seq)++, 0);
        int64_t t0 = bench_now_ns();
        int rc = rsend(c, buf, 1);
        shm->samples[from + i] = bench_now_ns() - t0;
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

static int
backlog_role(int role, void *arg)
{
    const bench_backlog *bl = arg;
    bench_shm *shm = bench_shm_get();
    enum { BATCH = 1000 };
    uint64_t seq = 0;
    int rc = -1;
    (void)role;
    unsigned char *bufs = malloc((size_t)BATCH * BENCH_MSG_SIZE);
    redisContext *c = connect_server();
    if (bufs == NULL || c == NULL) {
        bench_fail("redis: W4: cannot connect or out of memory");
        goto done;
    }
    bench_child_ready();
    if (timed_sends(c, bl, 0, &seq) != 0) {
        goto done;
    }
    int64_t t0 = bench_now_ns();
    for (size_t i = 0; i < bl->backlog; i += BATCH) {
        size_t k = bl->backlog - i < BATCH ? bl->backlog - i : BATCH;
        for (size_t j = 0; j < k; j++) {
            bench_payload(bufs + j * BENCH_MSG_SIZE, 0, seq++, 0);
        }
        if (rsend(c, bufs, k) != 0) {
            goto done;
        }
    }
    shm->fill_ns = bench_now_ns() - t0;
    if (timed_sends(c, bl, bl->sends, &seq) != 0) {
        goto done;
    }
    shm->n_samples = 2 * bl->sends;
    rc = 0;
done:
    if (c != NULL) {
        redisFree(c);
    }
    free(bufs);
    return rc;
}

int
redis_backlog(const bench_backlog *bl)
{
    if (server_start(bl->dir, 0) != 0) {
        return -1;
    }
    /* Two consumer groups that never read: every entry stays undelivered. */
    int rc = create_groups(2);
    if (rc == 0) {
        rc = bench_run(1, backlog_role, (void *)(uintptr_t)bl, 900);
    }
    server_stop();
    return rc;
}
