/*
 * The deterministic promises of docs/performance.rst, as counts (never
 * times):
 *
 * - no allocation per send or receive in steady state: the library's
 *   malloc, calloc, realloc, strdup and strndup calls are counted through
 *   the link-time wrap of tests/pps_alloc.c (LMDB's own, inside the shared
 *   liblmdb, are not: the promise is "beyond LMDB's");
 * - no cursor opened per send or receive, and per send, receive and status
 *   the same LMDB calls whether the queue holds 10 messages or 5,000
 *   (counts and sizes from LMDB's statistics, no scan): the library's calls
 *   of mdb_cursor_open, mdb_cursor_get, mdb_get, mdb_put, mdb_del,
 *   mdb_cursor_put, mdb_cursor_del, mdb_stat and mdb_dbi_open are counted
 *   through the same kind of wrap;
 * - no system call on a send or receive of a nosync queue but the futex
 *   wake-up when a receiver sleeps: strace counts them in
 *   pps-prop-syscalls (tests/prop_syscalls.c). That test has a ctest entry
 *   of its own and is skipped (visibly) without strace.
 */
#include "internal.h"
#include "pps_alloc.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- counted LMDB calls ------------------------------------------------- */

enum {
    C_CURSOR_OPEN,
    C_CURSOR_GET,
    C_GET,
    C_PUT,
    C_DEL,
    C_CURSOR_PUT,
    C_CURSOR_DEL,
    C_STAT,
    C_DBI_OPEN,
    C_N
};
static const char *const call_names[C_N] = {
    "mdb_cursor_open", "mdb_cursor_get", "mdb_get",
    "mdb_put",         "mdb_del",        "mdb_cursor_put",
    "mdb_cursor_del",  "mdb_stat",       "mdb_dbi_open"};

typedef struct calls {
    long n[C_N];
} calls;

static _Thread_local bool counting;
static _Thread_local calls counted;

static void
count(int which)
{
    if (counting) {
        counted.n[which]++;
    }
}

static void
count_start(void)
{
    memset(&counted, 0, sizeof(counted));
    counting = true;
}

static calls
count_stop(void)
{
    counting = false;
    return counted;
}

static long
total(const calls *c)
{
    long t = 0;
    for (int i = 0; i < C_N; i++) {
        t += c->n[i];
    }
    return t;
}

/* Fails unless two counts are equal call by call. */
static void
expect_same_calls(const char *what, const calls *small, const calls *big)
{
    for (int i = 0; i < C_N; i++) {
        cr_assert_eq(small->n[i], big->n[i],
                     "%s: %ld calls of %s with 10 messages queued, %ld with "
                     "5,000: the cost grows with the queue",
                     what, small->n[i], call_names[i], big->n[i]);
    }
}

int __real_mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor);
int __real_mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                          MDB_cursor_op op);
int __real_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __real_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data,
                   unsigned int flags);
int __real_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __real_mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                          unsigned int flags);
int __real_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags);
int __real_mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat);
int __real_mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags,
                        MDB_dbi *dbi);

int __wrap_mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor);
int __wrap_mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                          MDB_cursor_op op);
int __wrap_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data,
                   unsigned int flags);
int __wrap_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __wrap_mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                          unsigned int flags);
int __wrap_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags);
int __wrap_mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat);
int __wrap_mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags,
                        MDB_dbi *dbi);

int
__wrap_mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor)
{
    count(C_CURSOR_OPEN);
    return __real_mdb_cursor_open(txn, dbi, cursor);
}

int
__wrap_mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                      MDB_cursor_op op)
{
    count(C_CURSOR_GET);
    return __real_mdb_cursor_get(cursor, key, data, op);
}

int
__wrap_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    count(C_GET);
    return __real_mdb_get(txn, dbi, key, data);
}

int
__wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data,
               unsigned int flags)
{
    count(C_PUT);
    return __real_mdb_put(txn, dbi, key, data, flags);
}

int
__wrap_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    count(C_DEL);
    return __real_mdb_del(txn, dbi, key, data);
}

int
__wrap_mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data,
                      unsigned int flags)
{
    count(C_CURSOR_PUT);
    return __real_mdb_cursor_put(cursor, key, data, flags);
}

int
__wrap_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags)
{
    count(C_CURSOR_DEL);
    return __real_mdb_cursor_del(cursor, flags);
}

int
__wrap_mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat)
{
    count(C_STAT);
    return __real_mdb_stat(txn, dbi, stat);
}

int
__wrap_mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags,
                    MDB_dbi *dbi)
{
    count(C_DBI_OPEN);
    return __real_mdb_dbi_open(txn, name, flags, dbi);
}

/* ---- the workloads ------------------------------------------------------ */

static const char *const subs2[] = {"s1", "s2", NULL};
static const char payload[] = "0123456789abcdef0123456789abcdef";

static void
send_n(pps_pub *pub, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(pps_pub_send(pub, payload, sizeof(payload)), PPS_OK,
                     "%s", pps_last_error());
    }
}

static void
receive_n(pps_sub *sub, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(pps_sub_receive(sub, 0, pps_test_ignore, NULL), PPS_OK,
                     "%s", pps_last_error());
    }
}

static void
send_many_n(pps_pub *pub, int batches, size_t per)
{
    pps_buf b[64];
    cr_assert(per <= 64);
    for (size_t i = 0; i < per; i++) {
        b[i] = (pps_buf){payload, sizeof(payload)};
    }
    for (int i = 0; i < batches; i++) {
        cr_assert_eq(pps_pub_send_many(pub, b, per), PPS_OK, "%s",
                     pps_last_error());
    }
}

static void
receive_batch_n(pps_sub *sub, int batches, size_t per)
{
    for (int i = 0; i < batches; i++) {
        int rc = pps_sub_receive_batch(sub, per, 0, pps_test_ignore, NULL);
        cr_assert_eq(rc, (int)per, "receive_batch: %d (%s)", rc,
                     rc < 0 ? pps_last_error() : "short");
    }
}

/* One round of everything a steady publisher and two subscribers do. */
static void
round_trip(pps_pub *pub, pps_sub *s1, pps_sub *s2, int n)
{
    send_n(pub, n);
    receive_n(s1, n);
    receive_n(s2, n);
    send_many_n(pub, n / 50, 50);
    receive_batch_n(s1, n / 50, 50);
    receive_batch_n(s2, n / 25, 25);
    cr_assert_eq(pps_sub_receive(s1, 0, pps_test_ignore, NULL),
                 PPS_ETIMEDOUT);
}

Test(properties, no_allocation_per_send_or_receive_after_warm_up,
     .timeout = 120)
{
    const char *const modes[] = {"nosync", "sync"};
    for (int m = 0; m < 2; m++) {
        char *dir = pps_test_tmpdir();
        char extra[64];
        snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", modes[m]);
        pps_config *cfg = pps_test_simple(dir, subs2, NULL, extra);
        pps_pub *pub = pps_test_pub_open(cfg, "pub");
        pps_sub *s1 = pps_test_sub_open(cfg, "s1");
        pps_sub *s2 = pps_test_sub_open(cfg, "s2");
        int n = m == 0 ? 500 : 50; /* sync flushes twice per send */
        round_trip(pub, s1, s2, n);

        pps_alloc_arm(0);
        round_trip(pub, s1, s2, n);
        long allocs = pps_alloc_disarm();
        cr_assert_eq(allocs, 0,
                     "%s: %ld allocations by the library in %d sends, %d "
                     "batches sent and their receives, after warm-up",
                     modes[m], allocs, n, n / 50);
        cr_log_info("%s: %d sends, %d batches, their receives: 0 "
                    "allocations", modes[m], 2 * n, n / 50);
        pps_sub_close(s2);
        pps_sub_close(s1);
        pps_pub_close(pub);
        pps_config_free(cfg);
        pps_test_cleanup(dir);
    }
}

Test(properties, no_cursor_opened_per_send_or_receive, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs2, NULL, "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_sub *s2 = pps_test_sub_open(cfg, "s2");
    round_trip(pub, s1, s2, 200);

    count_start();
    round_trip(pub, s1, s2, 200);
    calls c = count_stop();
    cr_assert_eq(c.n[C_CURSOR_OPEN], 0,
                 "%ld cursors opened in 200 sends, 4 batches and their "
                 "receives",
                 c.n[C_CURSOR_OPEN]);
    cr_assert_eq(c.n[C_DBI_OPEN], 0, "%ld databases opened after warm-up",
                 c.n[C_DBI_OPEN]);
    cr_assert_gt(total(&c), 0, "no LMDB call counted: the wrap is not in "
                 "place");
    pps_sub_close(s2);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* The LMDB calls of 100 sends, 100 receives of s1, 2 receive_batch of 50
 * and one status, on the queue as it is (each phase starts with the same
 * backlog). */
typedef struct costs {
    calls send, receive, batch, status;
} costs;

static costs
measure(const pps_config *cfg, pps_pub *pub, pps_sub *s1)
{
    costs k;
    count_start();
    send_n(pub, 100);
    k.send = count_stop();
    count_start();
    receive_n(s1, 100);
    k.receive = count_stop();
    send_n(pub, 100);
    count_start();
    receive_batch_n(s1, 2, 50);
    k.batch = count_stop();
    pps_test_qstat q = {0};
    count_start();
    cr_assert_eq(pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q), PPS_OK);
    k.status = count_stop();
    return k;
}

Test(properties, lmdb_calls_do_not_grow_with_the_queue, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, subs2, NULL, "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_sub *s2 = pps_test_sub_open(cfg, "s2");
    round_trip(pub, s1, s2, 100);
    /* 10 queued for s1 (s2 never consumes here): each phase takes back
     * what it added, so s1 finds the same backlog before each. */
    send_n(pub, 10);
    costs small = measure(cfg, pub, s1);

    send_many_n(pub, 100, 50);
    costs big = measure(cfg, pub, s1);
    expect_same_calls("100 sends", &small.send, &big.send);
    expect_same_calls("100 receives", &small.receive, &big.receive);
    expect_same_calls("2 receive_batch of 50", &small.batch, &big.batch);
    expect_same_calls("status", &small.status, &big.status);
    cr_log_info("LMDB calls with 10 and with 5,000 queued: 100 sends %ld, "
                "100 receives %ld, 2 batches %ld, status %ld",
                total(&big.send), total(&big.receive), total(&big.batch),
                total(&big.status));
    pps_sub_close(s2);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- system calls ------------------------------------------------------- */

/* Counts by phase of the system calls strace logged. */
typedef struct phase {
    char name[32];
    long total;
    long futex_wake;
    char first[8][160]; /* the first few other calls, for the message */
    int n_first;
} phase;

/* Under AddressSanitizer, LMDB's own malloc() calls go to ASan's
 * allocator, whose quarantine maps fresh anonymous memory now and then
 * where glibc's malloc would reuse a block: those calls are the
 * sanitizer's, not the library's, and are not counted there. */
static bool
sanitizer_memory(const char *call)
{
#ifdef __SANITIZE_ADDRESS__
    return (strncmp(call, "mmap(", 5) == 0 &&
            strstr(call, "MAP_ANONYMOUS") != NULL) ||
           strncmp(call, "munmap(", 7) == 0 ||
           strncmp(call, "madvise(", 8) == 0;
#else
    (void)call;
    return false;
#endif
}

static void
parse_log(const char *path, phase *phases, int *n_phases)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no strace log %s", path);
    char line[4096];
    phase *cur = NULL;
    *n_phases = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        /* "PID call(...) = result", or a call resumed after another
         * process's (counted when it began). */
        const char *call = line;
        while (isdigit((unsigned char)*call) || *call == ' ') {
            call++;
        }
        if (strncmp(call, "<...", 4) == 0) {
            continue;
        }
        const char *mark = strstr(call, "\"pps-mark:");
        if (mark != NULL && strncmp(call, "write(-1,", 9) == 0) {
            if (strncmp(mark + 10, "end\"", 4) == 0) {
                cur = NULL;
                continue;
            }
            cr_assert_lt(*n_phases, 8);
            cur = &phases[(*n_phases)++];
            memset(cur, 0, sizeof(*cur));
            sscanf(mark + 10, "%31[a-z_]", cur->name);
            continue;
        }
        /* Every other line is a call; strace -qq prints no "exited". */
        if (cur == NULL || strncmp(call, "+++", 3) == 0 ||
            strncmp(call, "---", 3) == 0 || sanitizer_memory(call)) {
            continue;
        }
        cur->total++;
        if (strncmp(call, "futex(", 6) == 0 &&
            strstr(call, "FUTEX_WAKE") != NULL) {
            cur->futex_wake++;
        } else if (cur->n_first < 8) {
            snprintf(cur->first[cur->n_first++], 160, "%.150s", call);
        }
    }
    fclose(f);
}

static const phase *
find_phase(const phase *phases, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(phases[i].name, name) == 0) {
            return &phases[i];
        }
    }
    cr_assert_fail("phase %s missing from the strace log", name);
    return NULL;
}

static void
expect_calls(const phase *p, long futex_wakes, int n)
{
    cr_assert_eq(p->futex_wake, futex_wakes,
                 "%s: %ld futex wake-ups in %d operations, expected %ld",
                 p->name, p->futex_wake, n, futex_wakes);
    cr_assert_eq(p->total, futex_wakes,
                 "%s: %ld system calls in %d operations (%ld futex "
                 "wake-ups); the first others: %s%s%s",
                 p->name, p->total, n, p->futex_wake,
                 p->n_first > 0 ? p->first[0] : "",
                 p->n_first > 1 ? p->first[1] : "",
                 p->n_first > 2 ? p->first[2] : "");
}

Test(properties, system_calls_of_send_and_receive, .timeout = 120)
{
    if (system("command -v strace >/dev/null 2>&1") != 0) {
        cr_skip_test("strace is not installed (Debian: strace)");
    }
    char *dir = pps_test_tmpdir();
    pps_config *cfg =
        pps_test_simple(dir, (const char *const[]){"s1", NULL}, NULL,
                        "\"durability\": \"nosync\"");
    char *config = pps_test_config_path(dir);
    char *qdir = pps_test_path_in(dir, "q");
    char *log = pps_test_path_in(dir, "strace.log");
    const int n = 1000;
    char count[16];
    snprintf(count, sizeof(count), "%d", n);
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        /* strace's own output (and the helper's stderr) stays visible.
         * LeakSanitizer cannot work under ptrace: off in the helper. */
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        execlp("strace", "strace", "-f", "-qq", "-o", log, PPS_PROP_SYSCALLS,
               config, qdir, count, (char *)NULL);
        _exit(127);
    }
    int st = pps_test_wait(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        /* strace fails before the helper runs where ptrace is denied. */
        FILE *f = fopen(log, "r");
        if (f == NULL) {
            cr_skip_test("strace could not trace the helper (exit %d; "
                         "ptrace not allowed here?)",
                         WEXITSTATUS(st));
        }
        fclose(f);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "strace pps-prop-syscalls failed: status %#x", st);
    phase phases[8];
    int n_phases = 0;
    parse_log(log, phases, &n_phases);
    expect_calls(find_phase(phases, n_phases, "send"), 0, n);
    expect_calls(find_phase(phases, n_phases, "receive"), 0, n);
    expect_calls(find_phase(phases, n_phases, "send_waiter"), n, n);
    expect_calls(find_phase(phases, n_phases, "batch"), 0, n / 5);
    cr_log_info("nosync, after warm-up: %d sends, %d receives, %d batch "
                "sends and receives: no system call; %d sends to a "
                "sleeping receiver: %d futex wake-ups and nothing else",
                n, n, n / 5, n, n);
    free(log);
    free(qdir);
    free(config);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
