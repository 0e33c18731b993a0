#define _XOPEN_SOURCE 700
#include "pps_test.h"
#include "internal.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
    while (waitpid(pid, &st, 0) < 0) {
        /* Only a signal may interrupt the wait; ECHILD (not our child, or
         * reaped already) would otherwise loop forever. */
        cr_assert_eq(errno, EINTR, "waitpid %d: %s", (int)pid,
                     strerror(errno));
    }
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

void
pps_test_put_raw(const pps_config *cfg, const char *db, unsigned flags,
                 const void *key, size_t klen, const void *val, size_t vlen)
{
    pps__env *e = NULL;
    cr_assert_eq(pps__env_acquire(&e, &cfg->queues[0], false), PPS_OK, "%s",
                 pps_last_error());
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
    int rc = mdb_dbi_open(txn, db, flags, &dbi);
    cr_assert_eq(rc, 0, "%s: %s", db, mdb_strerror(rc));
    MDB_val k = {klen, pps__unconst(key)}, v = {vlen, pps__unconst(val)};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    cr_assert_eq(rc, 0, "%s: %s", db, mdb_strerror(rc));
    cr_assert_eq(mdb_txn_commit(txn), 0);
    pps__env_release(e);
}

/* Puts "pps-test-fill-N" records of `size` bytes into pps.meta, each in a
 * transaction of its own, halving the size on MDB_MAP_FULL; returns the
 * next N. */
static unsigned
fill_meta(MDB_env *env, MDB_dbi dbi, size_t size, unsigned n)
{
    char *junk = calloc(1, size);
    cr_assert_not_null(junk);
    while (size >= 8) {
        char key[32];
        snprintf(key, sizeof(key), "pps-test-fill-%u", n);
        MDB_txn *txn = NULL;
        cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
        MDB_val k = {strlen(key), key}, v = {size, junk};
        int rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
            if (rc == 0) {
                n++;
                continue;
            }
        } else {
            mdb_txn_abort(txn);
        }
        cr_assert_eq(rc, MDB_MAP_FULL, "filling the map: %s",
                     mdb_strerror(rc));
        size /= 2;
    }
    free(junk);
    return n;
}

unsigned
pps_test_fill_map_raw(const pps_config *cfg)
{
    pps__env *e = NULL;
    cr_assert_eq(pps__env_acquire(&e, &cfg->queues[0], false), PPS_OK, "%s",
                 pps_last_error());
    unsigned n = fill_meta(e->env, e->dbs.meta, 256 * 1024, 0);
    pps__env_release(e);
    return n;
}

void
pps_test_unfill_map_raw(const pps_config *cfg, unsigned n)
{
    pps__env *e = NULL;
    cr_assert_eq(pps__env_acquire(&e, &cfg->queues[0], false), PPS_OK, "%s",
                 pps_last_error());
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
    for (unsigned i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "pps-test-fill-%u", i);
        MDB_val k = {strlen(key), key};
        int rc = mdb_del(txn, e->dbs.meta, &k, NULL);
        cr_assert_eq(rc, 0, "%s: %s", key, mdb_strerror(rc));
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    /* LMDB reuses the pages a commit freed only two commits later. */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
        MDB_val k = {14, "pps-test-fill-"}, v = {1, "x"};
        cr_assert_eq(mdb_put(txn, e->dbs.meta, &k, &v, 0), 0);
        cr_assert_eq(mdb_del(txn, e->dbs.meta, &k, NULL), 0);
        cr_assert_eq(mdb_txn_commit(txn), 0);
    }
    pps__env_release(e);
}

void
pps_test_bump_generation(const pps_config *cfg)
{
    pps__env *e = NULL;
    cr_assert_eq(pps__env_acquire(&e, &cfg->queues[0], false), PPS_OK, "%s",
                 pps_last_error());
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
    pps__seq seq;
    cr_assert_eq(pps__layout_read_seq(e, txn, &seq), PPS_OK);
    seq.gen++;
    cr_assert_eq(pps__layout_write_seq(e, txn, &seq), PPS_OK);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    pps__env_release(e);
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

/* ---- the wake-up file --------------------------------------------------- */

/* The layout of pps.wake (src/wakeup.c), read-only here. */
typedef struct wake_view {
    char magic[16];
    uint32_t version;
    uint32_t reserved;
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
} wake_view;

uint32_t
pps_test_waiters(const char *qdir)
{
    char *path = pps_test_path_in(qdir, "pps.wake");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert(map != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
    close(fd);
    uint32_t n = atomic_load(&((wake_view *)map)->waiters);
    munmap(map, 4096);
    free(path);
    return n;
}

bool
pps_test_wait_for_waiters(const char *qdir, uint32_t more_than,
                          int timeout_ms)
{
    char *path = pps_test_path_in(qdir, "pps.wake");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert(map != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
    close(fd);
    free(path);
    const wake_view *w = map;
    int64_t deadline = pps_test_mono_ms() + timeout_ms;
    bool ok;
    /* A receiver counts itself in just before it sleeps in the kernel; a
     * poll of the shared word every millisecond sees it. */
    while (!(ok = atomic_load(&w->waiters) > more_than) &&
           pps_test_mono_ms() < deadline) {
        pps_test_sleep_ms(1);
    }
    munmap(map, 4096);
    return ok;
}

/* ---- configs with a small map ------------------------------------------- */

pps_config *
pps_test_small_config(const char *dir, uint64_t map_bytes, const char *extra)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"},\n"
             " \"s1\": {\"in_queue\": \"q\"},\n"
             " \"s2\": {\"in_queue\": \"q\"},\n"
             " \"queues\": {\"q\": {\"path\": \"q\",\n"
             "   \"max_db_size_bytes\": %llu,\n"
             "   \"subscribers\": [\"s1\", \"s2\"]%s%s}}}\n",
             (unsigned long long)map_bytes, extra != NULL ? ", " : "",
             extra != NULL ? extra : "");
    return pps_test_config(dir, json);
}

pps_config *
pps_test_small_queue(const char *dir, uint64_t map_bytes, const char *extra)
{
    pps_config *cfg = pps_test_small_config(dir, map_bytes, extra);
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, PPS_OK, "init: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return cfg;
}

pps_config *
pps_test_queue_with_messages(const char *dir)
{
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    unsigned char buf[3000];
    for (uint32_t i = 0; i < 40; i++) {
        pps_test_payload(buf, sizeof(buf), i);
        cr_assert_eq(pps_pub_send(pub, buf, sizeof(buf)), PPS_OK);
    }
    pps_pub_close(pub);
    return cfg;
}

void
pps_test_expect_detail(const char *path, const char *what)
{
    const char *e = pps_last_error();
    cr_assert(e[0] != '\0', "%s: empty pps_last_error()", what);
    cr_assert_null(strchr(e, '\n'), "%s: detail is not one line: %s", what,
                   e);
    if (path != NULL) {
        cr_assert_not_null(strstr(e, path),
                           "%s: detail does not name %s: %s", what, path, e);
    }
}

int
pps_test_qstat_cb(const pps_queue_status *st, void *user)
{
    pps_test_qstat *q = user;
    q->messages = st->messages;
    q->map_size = st->map_size;
    q->map_used = st->map_used;
    q->next_id = st->next_id;
    for (size_t i = 0; i < st->n_subscribers && i < 4; i++) {
        q->pending[i] = st->subscribers[i].pending;
    }
    return 0;
}

pps_test_qstat
pps_test_queue_status(const pps_config *cfg)
{
    pps_test_qstat q = {0};
    int rc = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
    cr_assert_eq(rc, PPS_OK, "status: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return q;
}

/* ---- numbered payloads ------------------------------------------------- */

void
pps_test_payload(unsigned char *buf, size_t len, uint32_t i)
{
    for (size_t k = 0; k < len; k++) {
        buf[k] = (unsigned char)((i * 31u + (uint32_t)k) & 0xff);
    }
    if (len >= 16) {
        snprintf((char *)buf, 16, "m%014u", (unsigned)i);
    }
}

int
pps_test_expect_cb(const pps_message *msg, void *user)
{
    pps_test_seq *x = user;
    if (msg->len != x->len || msg->id <= x->last_id) {
        return -1;
    }
    pps_test_payload(x->want, x->len, x->next);
    if (memcmp(msg->data, x->want, x->len) != 0) {
        return -2;
    }
    x->next++;
    x->last_id = msg->id;
    return 0;
}

void
pps_test_receive_expected(pps_sub *sub, pps_test_seq *x, size_t n,
                          const char *who)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pps_sub_receive(sub, 0, pps_test_expect_cb, x);
        cr_assert_eq(rc, PPS_OK, "%s: message %zu of %zu (payload %u): %s: %s",
                     who, i, n, (unsigned)x->next, pps_status_name(rc),
                     pps_last_error());
    }
}

int
pps_test_ignore(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

int
pps_test_fill(pps_pub *pub, size_t len, uint32_t *next, size_t cap,
              size_t *sent)
{
    unsigned char *buf = malloc(len > 0 ? len : 1);
    cr_assert_not_null(buf);
    int rc = PPS_OK;
    *sent = 0;
    while (*sent < cap) {
        pps_test_payload(buf, len, *next);
        rc = pps_pub_send(pub, buf, len);
        if (rc != PPS_OK) {
            break;
        }
        (*next)++;
        (*sent)++;
    }
    free(buf);
    return rc;
}

/* ---- snapshots of a directory tree: "untouched" ------------------------- */

static uint64_t
hash_file(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    unsigned char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < k; i++) {
            h = (h ^ buf[i]) * 1099511628211ull;
        }
    }
    cr_assert(k == 0, "read %s: %s", path, strerror(errno));
    close(fd);
    return h;
}

static void
snap_walk(pps_test_snap *s, const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s: %s", path, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        cr_assert_lt(s->n, PPS_TEST_SNAP_MAX, "too many files under %s",
                     root);
        pps_test_snap_file *f = &s->f[s->n++];
        snprintf(f->name, sizeof(f->name), "%s%s%s", rel, rel[0] ? "/" : "",
                 de->d_name);
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", root, f->name);
        struct stat st;
        cr_assert_eq(lstat(full, &st), 0, "lstat %s: %s", full,
                     strerror(errno));
        f->mode = st.st_mode;
        f->size = S_ISREG(st.st_mode) ? st.st_size : 0;
        f->mtime = S_ISREG(st.st_mode) ? st.st_mtim : (struct timespec){0};
        f->hash = S_ISREG(st.st_mode) ? hash_file(full) : 0;
        if (S_ISDIR(st.st_mode)) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s", f->name);
            snap_walk(s, root, sub);
        }
    }
    closedir(d);
}

static int
snap_cmp(const void *a, const void *b)
{
    return strcmp(((const pps_test_snap_file *)a)->name,
                  ((const pps_test_snap_file *)b)->name);
}

pps_test_snap *
pps_test_snap_take(const char *root)
{
    pps_test_snap *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    snap_walk(s, root, "");
    qsort(s->f, s->n, sizeof(s->f[0]), snap_cmp);
    return s;
}

void
pps_test_expect_untouched(const char *root, const pps_test_snap *before,
                          const char *what)
{
    pps_test_snap *after = pps_test_snap_take(root);
    for (size_t i = 0; i < before->n || i < after->n; i++) {
        cr_assert(i < before->n, "%s: new file %s", what, after->f[i].name);
        cr_assert(i < after->n, "%s: file %s vanished", what,
                  before->f[i].name);
        const pps_test_snap_file *a = &before->f[i], *b = &after->f[i];
        cr_assert_str_eq(a->name, b->name, "%s: files differ: %s vs %s",
                         what, a->name, b->name);
        cr_assert_eq(a->mode, b->mode, "%s: mode of %s changed: %o -> %o",
                     what, a->name, (unsigned)a->mode, (unsigned)b->mode);
        const char *base = strrchr(a->name, '/');
        if (strcmp(base != NULL ? base + 1 : a->name, "lock.mdb") == 0) {
            /* LMDB's lock file is its run-time state (reader table,
             * mutexes): every opener of an environment rewrites it, by
             * LMDB's design. Only its existence and mode count. */
            continue;
        }
        cr_assert_eq(a->size, b->size, "%s: size of %s changed: %lld -> %lld",
                     what, a->name, (long long)a->size, (long long)b->size);
        cr_assert(a->mtime.tv_sec == b->mtime.tv_sec &&
                      a->mtime.tv_nsec == b->mtime.tv_nsec,
                  "%s: modification time of %s changed", what, a->name);
        cr_assert_eq(a->hash, b->hash, "%s: bytes of %s changed", what,
                     a->name);
    }
    free(after);
}

void
pps_test_expect_same_content(const char *root, const pps_test_snap *before,
                             const char *what)
{
    pps_test_snap *after = pps_test_snap_take(root);
    for (size_t i = 0; i < before->n || i < after->n; i++) {
        cr_assert(i < before->n, "%s: new file %s", what, after->f[i].name);
        cr_assert(i < after->n, "%s: file %s vanished", what,
                  before->f[i].name);
        const pps_test_snap_file *a = &before->f[i], *b = &after->f[i];
        cr_assert_str_eq(a->name, b->name, "%s: files differ: %s vs %s",
                         what, a->name, b->name);
        cr_assert_eq(a->mode, b->mode, "%s: mode of %s changed: %o -> %o",
                     what, a->name, (unsigned)a->mode, (unsigned)b->mode);
        const char *base = strrchr(a->name, '/');
        if (strcmp(base != NULL ? base + 1 : a->name, "lock.mdb") == 0) {
            continue; /* LMDB's run-time state, see above */
        }
        cr_assert_eq(a->size, b->size, "%s: size of %s changed: %lld -> %lld",
                     what, a->name, (long long)a->size, (long long)b->size);
        cr_assert_eq(a->hash, b->hash, "%s: bytes of %s changed", what,
                     a->name);
    }
    free(after);
}

/* ---- another user ------------------------------------------------------- */

int
pps_test_run_as_nobody(void (*fn)(void *), void *arg)
{
    if (geteuid() != 0) {
        fn(arg); /* already unprivileged: permission bits apply */
        return 0;
    }
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
            setuid(65534) != 0) {
            _exit(77);
        }
        fn(arg);
        _exit(0);
    }
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* ---- payloads of the publisher and subscriber tests ------------------- */

void
pps_test_send_str(pps_pub *p, const char *text)
{
    int rc = pps_pub_send(p, text, strlen(text));
    cr_assert_eq(rc, PPS_OK, "send %s: %s: %s", text, pps_status_name(rc),
                 pps_last_error());
}

void
pps_test_send_numbered(pps_pub *pub, int from, int to)
{
    char text[32];
    for (int i = from; i < to; i++) {
        snprintf(text, sizeof(text), "n%d", i);
        pps_test_send_str(pub, text);
    }
}

void
pps_test_expect_numbered(const pps_test_sink *s, size_t k, int i)
{
    char text[32];
    snprintf(text, sizeof(text), "n%d", i);
    cr_assert_str_eq(s->data[k], text);
}

/* A deterministic binary payload for message i (zero bytes included). */
size_t
pps_test_pattern_len(size_t i)
{
    return i % 97 + 1;
}

unsigned char
pps_test_pattern_byte(size_t i, size_t j)
{
    return (unsigned char)((i * 31u + j * 7u) & 0xffu);
}

void
pps_test_pattern_fill(unsigned char *buf, size_t i, size_t len)
{
    for (size_t j = 0; j < len; j++) {
        buf[j] = pps_test_pattern_byte(i, j);
    }
}

void
pps_test_check_pattern(const pps_test_sink *s, size_t k, size_t i)
{
    cr_assert_eq(s->lens[k], pps_test_pattern_len(i), "message %zu: length %zu", i,
                 s->lens[k]);
    for (size_t j = 0; j < s->lens[k]; j++) {
        cr_assert_eq((unsigned char)s->data[k][j], pps_test_pattern_byte(i, j),
                     "message %zu byte %zu differs", i, j);
    }
}

void
pps_test_check_ids_increasing(const pps_test_sink *s)
{
    for (size_t k = 1; k < s->n; k++) {
        cr_assert_gt(s->ids[k], s->ids[k - 1], "ids not increasing at %zu", k);
    }
}

