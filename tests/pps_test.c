#define _XOPEN_SOURCE 700
#include "pps_test.h"
#include "internal.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

char *
pps_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/pps-test-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    char *dir = mkdtemp(buf);
    cr_assert_not_null(dir, "mkdtemp failed");
    char *copy = strdup(dir);
    cr_assert_not_null(copy);
    return copy;
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

void
pps_test_cleanup(char *dir)
{
    if (dir == NULL) {
        return;
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *
pps_test_write(const char *dir, const char *name, const char *json)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(json, f);
    fclose(f);
    char *copy = strdup(path);
    cr_assert_not_null(copy);
    return copy;
}

pps_config *
pps_test_config(const char *dir, const char *json)
{
    char *path = pps_test_write(dir, "config.json", json);
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, path);
    cr_assert_eq(rc, PPS_OK, "config: %s: %s", pps_status_name(rc),
                 pps_last_error());
    free(path);
    return cfg;
}

pps_config *
pps_test_queue(const char *dir, const char *json)
{
    pps_config *cfg = pps_test_config(dir, json);
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, PPS_OK, "init: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return cfg;
}

pps_config *
pps_test_simple(const char *dir, const char *const *subs, const char *hwm,
                const char *extra)
{
    char json[16384];
    size_t off = 0;
    off += (size_t)snprintf(json + off, sizeof(json) - off,
                            "{\"pub\": {\"out_queue\": \"q\"},\n");
    for (size_t i = 0; subs[i] != NULL; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                "\"%s\": {\"in_queue\": \"q\"},\n", subs[i]);
    }
    off += (size_t)snprintf(json + off, sizeof(json) - off,
                            "\"queues\": {\"q\": {\"path\": \"q\", "
                            "\"max_db_size_bytes\": 268435456, "
                            "\"subscribers\": [");
    for (size_t i = 0; subs[i] != NULL; i++) {
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%s\"",
                                i > 0 ? ", " : "", subs[i]);
    }
    off += (size_t)snprintf(json + off, sizeof(json) - off, "]");
    if (hwm != NULL) {
        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                ", \"high-water-mark\": %s", hwm);
    }
    if (extra != NULL) {
        off += (size_t)snprintf(json + off, sizeof(json) - off, ", %s",
                                extra);
    }
    snprintf(json + off, sizeof(json) - off, "}}}\n");
    return pps_test_queue(dir, json);
}

int
pps_test_wait(pid_t pid)
{
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0);
    return st;
}

void
pps_test_wait_ok(pid_t pid)
{
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child %d did not exit normally (status 0x%x)",
              (int)pid, st);
    cr_assert_eq(WEXITSTATUS(st), 0, "child %d exited with %d", (int)pid,
                 WEXITSTATUS(st));
}

int
pps_test_collect(const pps_message *msg, void *user)
{
    pps_test_sink *s = user;
    if (s->refuse != 0) {
        return s->refuse;
    }
    if (s->n >= sizeof(s->ids) / sizeof(s->ids[0])) {
        return -1;
    }
    s->ids[s->n] = msg->id;
    s->lens[s->n] = msg->len;
    s->data[s->n] = malloc(msg->len + 1);
    if (s->data[s->n] == NULL) {
        return -1;
    }
    if (msg->len > 0) {
        memcpy(s->data[s->n], msg->data, msg->len);
    }
    s->data[s->n][msg->len] = '\0';
    s->n++;
    return 0;
}

void
pps_test_sink_free(pps_test_sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->data[i]);
    }
    s->n = 0;
}

pps_test_sink *
pps_test_sink_new(void)
{
    pps_test_sink *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    return s;
}

void
pps_test_sink_del(pps_test_sink *s)
{
    if (s != NULL) {
        pps_test_sink_free(s);
        free(s);
    }
}

/* ---- clocks ------------------------------------------------------------- */

int64_t
pps_test_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
pps_test_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
pps_test_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
pps_test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- files -------------------------------------------------------------- */

char *
pps_test_path_in(const char *dir, const char *name)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    char *p = strdup(buf);
    cr_assert_not_null(p);
    return p;
}

char *
pps_test_config_path(const char *dir)
{
    return pps_test_path_in(dir, "config.json");
}

size_t
pps_test_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* ---- handles and receiving ---------------------------------------------- */

pps_pub *
pps_test_pub_open(const pps_config *cfg, const char *id)
{
    pps_pub *p = NULL;
    int rc = pps_pub_open(&p, cfg, id);
    cr_assert_eq(rc, PPS_OK, "pub_open %s: %s: %s", id, pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(p);
    return p;
}

pps_sub *
pps_test_sub_open(const pps_config *cfg, const char *id)
{
    pps_sub *s = NULL;
    int rc = pps_sub_open(&s, cfg, id);
    cr_assert_eq(rc, PPS_OK, "sub_open %s: %s: %s", id, pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(s);
    return s;
}

size_t
pps_test_drain(pps_sub *sub, pps_test_sink *sink)
{
    size_t before = sink->n;
    for (;;) {
        int rc = pps_sub_receive(sub, 0, pps_test_collect, sink);
        if (rc == PPS_ETIMEDOUT) {
            break;
        }
        cr_assert_eq(rc, PPS_OK, "receive: %s: %s", pps_status_name(rc),
                     pps_last_error());
    }
    return sink->n - before;
}

int
pps_test_count_calls(const pps_message *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
    return 0;
}

void
pps_test_expect_empty(pps_sub *sub)
{
    int calls = 0;
    int rc = pps_sub_receive(sub, 0, pps_test_count_calls, &calls);
    cr_assert_eq(rc, PPS_ETIMEDOUT, "expected nothing pending, got %s",
                 pps_status_name(rc));
    cr_assert_eq(calls, 0);
}

pps_test_usage
pps_test_queue_usage(const pps_config *cfg)
{
    /* Values no queue can have: a count or size left unset fails here. */
    pps_test_usage u = {UINT64_MAX, UINT64_MAX, 0};
    pps__env *e = NULL;
    int rc = pps__env_acquire(&e, &cfg->queues[0], false);
    cr_assert_eq(rc, PPS_OK, "%s", pps_last_error());
    MDB_env *env = e->env;
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(pps__layout_usage(e, txn, &u.count, &u.bytes), PPS_OK);
    mdb_txn_abort(txn);
    cr_assert_neq(u.count, UINT64_MAX, "no message count");
    cr_assert_neq(u.bytes, UINT64_MAX, "no size");
    MDB_envinfo info;
    MDB_stat st;
    cr_assert_eq(mdb_env_info(env, &info), 0);
    cr_assert_eq(mdb_env_stat(env, &st), 0);
    u.map_used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    pps__env_release(e);
    return u;
}

static void
log_problem(const char *queue_path, const char *problem, int repaired,
            void *user)
{
    (void)user;
    cr_log_error("check: %s: %s%s", queue_path, problem,
                 repaired != 0 ? " (repaired)" : "");
}

void
pps_test_expect_consistent(const pps_config *cfg)
{
    size_t problems = 99;
    int rc = pps_ctl_check(cfg, NULL, 0, log_problem, NULL, &problems);
    cr_assert_eq(rc, PPS_OK, "check: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(problems, 0, "check found %zu problem(s)", problems);
}

/* ---- children of fork() ------------------------------------------------- */

static const pps_test_code shared_codes[] = {
    {PPS_TEST_CHILD_OK, "ok"},
    {PPS_TEST_CHILD_ECONFIG, "config load failed"},
    {PPS_TEST_CHILD_EOPEN, "open failed"},
    {PPS_TEST_CHILD_ESEND, "send failed"},
    {PPS_TEST_CHILD_ERECEIVE, "receive failed"},
    {PPS_TEST_CHILD_EPIPE, "cannot report to the parent"},
    {0, NULL},
};

const char *
pps_test_child_code_name(int code, const pps_test_code *local)
{
    for (const pps_test_code *c = shared_codes; c->name != NULL; c++) {
        if (c->code == code) {
            return c->name;
        }
    }
    for (const pps_test_code *c = local; c != NULL && c->name != NULL; c++) {
        if (c->code == code) {
            return c->name;
        }
    }
    return "unknown";
}

pid_t
pps_test_fork(void)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    return pid;
}

void
pps_test_child_begin(pid_t parent)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    alarm(100);
}

pid_t
pps_test_fork_piped(int *fd)
{
    pid_t parent = getpid();
    int p[2];
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        close(p[0]);
        *fd = p[1];
    } else {
        close(p[1]);
        *fd = p[0];
    }
    return pid;
}

_Noreturn void
pps_test_child_fail(int code, const char *what, int rc)
{
    fprintf(stderr, "child %ld: %s: %s: %s\n", (long)getpid(), what,
            pps_status_name(rc), pps_last_error());
    _exit(code);
}

pps_config *
pps_test_child_config(const char *path)
{
    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, path);
    if (rc != PPS_OK) {
        pps_test_child_fail(PPS_TEST_CHILD_ECONFIG, path, rc);
    }
    return cfg;
}

pps_pub *
pps_test_child_pub(const pps_config *cfg, const char *id)
{
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, id);
    if (rc != PPS_OK) {
        pps_test_child_fail(PPS_TEST_CHILD_EOPEN, id, rc);
    }
    return pub;
}

pps_sub *
pps_test_child_sub(const pps_config *cfg, const char *id)
{
    pps_sub *sub = NULL;
    int rc = pps_sub_open(&sub, cfg, id);
    if (rc != PPS_OK) {
        pps_test_child_fail(PPS_TEST_CHILD_EOPEN, id, rc);
    }
    return sub;
}

bool
pps_test_read_within(int fd, void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = pps_test_mono_ns() + (int64_t)timeout_ms * 1000000;
    size_t got = 0;
    while (got < n) {
        int64_t left = (deadline - pps_test_mono_ns()) / 1000000;
        if (left <= 0) {
            return false;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return false;
        }
        got += (size_t)k;
    }
    return true;
}
