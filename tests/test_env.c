/*
 * The registry of open queues (src/env.c): one environment per queue
 * directory per process, shared by every handle and found under any
 * spelling of its path; two threads opening the same queue at once get the
 * same environment; a thread opening one queue is not held up by a thread
 * stuck opening another; after fork() a child gets environments of its own
 * and its parent's handles answer PPS_EFORKED.
 *
 * An open is made to block deterministically: a child process holds LMDB's
 * writer lock of the queue (a write transaction), and the opening thread
 * needs one to open the internal databases. A thread is known to be
 * blocked when Linux shows it inside the futex system call.
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Two queues, A and B, with subscriber s, initialized. */
static pps_config *
two_queues(const char *dir)
{
    return pps_test_queue(
        dir, "{\"pub\": {\"out_queue\": \"a\"},\n"
             " \"s\": {\"in_queue\": \"a\"},\n"
             " \"queues\": {\n"
             "  \"a\": {\"path\": \"qa\", \"subscribers\": [\"s\"],\n"
             "         \"max_db_size_bytes\": 4194304},\n"
             "  \"b\": {\"path\": \"qb\", \"subscribers\": [\"s\"],\n"
             "         \"max_db_size_bytes\": 4194304}}}\n");
}

/* ---- one environment per directory -------------------------------------- */

Test(env, one_environment_per_directory_shared_by_handles, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = two_queues(dir);
    /* The same directory through a symbolic link. */
    char *qa = pps_test_path_in(dir, "qa");
    char *link = pps_test_path_in(dir, "link");
    cr_assert_eq(symlink(qa, link), 0);
    pps_config *alias = pps_test_config(
        dir, "{\"queues\": {\"l\": {\"path\": \"link\", "
             "\"subscribers\": [\"s\"], \"max_db_size_bytes\": 4194304}}}");

    pps__env *e1, *e2, *e3, *eb;
    cr_assert_eq(pps__env_acquire(&e1, &cfg->queues[0], false), PPS_OK);
    cr_assert_eq(pps__env_acquire(&e2, &cfg->queues[0], false), PPS_OK);
    /* A symbolic link at the queue's own name is never followed. */
    cr_assert_eq(pps__env_acquire(&e3, &alias->queues[0], false),
                 PPS_EFOREIGN, "%s", pps_last_error());
    cr_assert_null(e3);
    /* Another spelling of the same directory is the same environment. */
    pps_config *spelled = pps_test_config(
        dir, "{\"queues\": {\"l\": {\"path\": \"./qa/\", "
             "\"subscribers\": [\"s\"], \"max_db_size_bytes\": 4194304}}}");
    cr_assert_eq(pps__env_acquire(&e3, &spelled->queues[0], false), PPS_OK,
                 "%s", pps_last_error());
    cr_assert_eq(pps__env_acquire(&eb, &cfg->queues[1], false), PPS_OK);
    cr_assert_eq(e1, e2, "two environments of one queue in one process");
    cr_assert_eq(e1, e3, "the queue under another spelling got an "
                 "environment of its own");
    cr_assert_neq(e1, eb);
    cr_assert_eq(e1->refs, 3);
    cr_assert_eq(e1->pid, getpid());

    /* Handles share it too, and keep it open when the others let go. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps__env_release(e1);
    pps__env_release(e2);
    pps__env_release(e3);
    cr_assert_eq(pps_pub_send(pub, "still open", 10), PPS_OK, "%s",
                 pps_last_error());
    pps__env *again;
    cr_assert_eq(pps__env_acquire(&again, &cfg->queues[0], false), PPS_OK);
    cr_assert_eq(again->refs, 2, "the publisher's reference and this one");
    pps__env_release(again);
    pps_pub_close(pub);
    pps__env_release(eb);
    pps__env_release(NULL);

    /* Closed with its last reference; opened again on demand. */
    cr_assert_eq(pps__env_acquire(&again, &cfg->queues[0], false), PPS_OK);
    cr_assert_eq(again->refs, 1);
    pps__env_release(again);
    cr_assert_eq(pps_test_queue_usage(cfg).count, 1);

    /* Without create, a missing queue is not made. */
    pps_config *missing = pps_test_config(
        dir, "{\"queues\": {\"m\": {\"path\": \"missing\"}}}");
    pps__env *none = (pps__env *)&none;
    char *mpath = pps_test_path_in(dir, "missing");
    pps__err_begin();
    cr_assert_eq(pps__env_acquire(&none, &missing->queues[0], false),
                 PPS_ENOTINIT);
    cr_assert_null(none);
    pps_test_expect_detail(mpath, "a missing queue");
    cr_assert_neq(access(mpath, F_OK), 0);
    free(mpath);
    pps_config_free(missing);
    free(link);
    free(qa);
    pps_config_free(alias);
    pps_config_free(spelled);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- opens that block ----------------------------------------------------- */

/* A child holding the writer lock of queue `index`; returns when it holds
 * it. Release it with release_writer(). */
typedef struct writer {
    pid_t pid;
    int held;    /* read end: 'H' once the lock is held */
    int release; /* write end: any byte ends the transaction */
} writer;

enum {
    CHILD_ACQUIRE = PPS_TEST_CHILD_ELOCAL,
    CHILD_BEGIN,
};
static const pps_test_code writer_codes[] = {
    {CHILD_ACQUIRE, "the writer child could not open the queue"},
    {CHILD_BEGIN, "the writer child could not begin a write transaction"},
    {0, NULL},
};

static writer
hold_writer(const pps_config *cfg, size_t index)
{
    int rel[2];
    cr_assert_eq(pipe(rel), 0);
    writer w = {0};
    int fd;
    w.pid = pps_test_fork_piped(&fd);
    if (w.pid == 0) {
        close(rel[1]);
        pps__env *e;
        if (pps__env_acquire(&e, &cfg->queues[index], false) != PPS_OK) {
            _exit(CHILD_ACQUIRE);
        }
        MDB_txn *txn;
        if (pps__txn_begin_write(e, &txn) != PPS_OK) {
            _exit(CHILD_BEGIN);
        }
        char c = 'H';
        if (write(fd, &c, 1) != 1) {
            _exit(PPS_TEST_CHILD_EPIPE);
        }
        /* Until released (or the parent is gone: EOF). */
        ssize_t n;
        while ((n = read(rel[0], &c, 1)) < 0 && errno == EINTR) {
        }
        mdb_txn_abort(txn);
        pps__env_release(e);
        _exit(0);
    }
    close(rel[0]);
    w.held = fd;
    w.release = rel[1];
    char c;
    if (!pps_test_read_within(w.held, &c, 1, 30000)) {
        int st = pps_test_wait(w.pid);
        cr_assert_fail("the writer child never held the lock: %s",
                       WIFEXITED(st) ? pps_test_child_code_name(
                                           WEXITSTATUS(st), writer_codes)
                                     : "killed");
    }
    return w;
}

static void
release_writer(writer *w)
{
    cr_assert_eq(write(w->release, "R", 1), 1);
    close(w->release);
    close(w->held);
    int st = pps_test_wait(w->pid);
    cr_assert(WIFEXITED(st), "writer child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "writer child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), writer_codes));
}

/* A thread opening one queue. */
typedef struct opener {
    const pps__queue_cfg *q;
    pthread_t thread;
    _Atomic pid_t tid;
    _Atomic bool done;
    int status;
    pps__env *e;
    int done_pipe[2]; /* a byte when done */
} opener;

static void *
open_thread(void *arg)
{
    opener *o = arg;
    o->tid = (pid_t)syscall(SYS_gettid);
    o->status = pps__env_acquire(&o->e, o->q, false);
    o->done = true;
    ssize_t w = write(o->done_pipe[1], "D", 1);
    (void)w;
    return NULL;
}

static void
start_opener(opener *o, const pps__queue_cfg *q)
{
    memset(o, 0, sizeof(*o));
    o->q = q;
    cr_assert_eq(pipe(o->done_pipe), 0);
    cr_assert_eq(pthread_create(&o->thread, NULL, open_thread, o), 0);
}

/* Is thread tid of this process inside the futex system call (waiting for
 * a lock or a condition)? */
static bool
in_futex(pid_t tid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", (long)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    bool yes = fgets(line, sizeof(line), f) != NULL &&
               strtol(line, NULL, 10) == SYS_futex;
    fclose(f);
    return yes;
}

/* Waits (polling /proc every millisecond, up to 30 s) until the opener is
 * blocked in the futex system call without having finished. */
static void
wait_until_blocked(opener *o, const char *what)
{
    int64_t deadline = pps_test_mono_ms() + 30000;
    while (!(o->tid != 0 && in_futex(o->tid)) && !o->done &&
           pps_test_mono_ms() < deadline) {
        pps_test_sleep_ms(1);
    }
    cr_assert_not(o->done, "%s: the open finished while another process "
                  "held the queue's writer lock: %s",
                  what, pps_status_name(o->status));
    cr_assert(o->tid != 0 && in_futex(o->tid),
              "%s: the opening thread never blocked", what);
}

static void
join_opener(opener *o, const char *what)
{
    char c;
    cr_assert(pps_test_read_within(o->done_pipe[0], &c, 1, 30000),
              "%s: the open never finished", what);
    cr_assert_eq(pthread_join(o->thread, NULL), 0);
    close(o->done_pipe[0]);
    close(o->done_pipe[1]);
    cr_assert_eq(o->status, PPS_OK, "%s: %s", what,
                 pps_status_name(o->status));
}

Test(env, opening_one_queue_is_not_blocked_by_another_being_opened,
     .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = two_queues(dir);
    writer w = hold_writer(cfg, 1);

    /* B's open blocks on B's writer lock... */
    opener b;
    start_opener(&b, &cfg->queues[1]);
    wait_until_blocked(&b, "queue B");

    /* ...and meanwhile A opens, and is used, in another thread. */
    opener a;
    start_opener(&a, &cfg->queues[0]);
    join_opener(&a, "queue A while B's open is blocked");
    cr_assert_not(b.done, "B's open finished while its writer lock was "
                  "held");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "A works", 7), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_not(b.done);

    /* Released, B's open completes. */
    release_writer(&w);
    join_opener(&b, "queue B once released");
    cr_assert_neq(a.e, b.e);
    pps__env_release(a.e);
    pps__env_release(b.e);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(env, two_threads_opening_one_queue_at_once_share_it, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = two_queues(dir);
    writer w = hold_writer(cfg, 1);

    /* The first blocks in the open itself, the second waits for it. */
    opener t1, t2;
    start_opener(&t1, &cfg->queues[1]);
    wait_until_blocked(&t1, "the first thread");
    start_opener(&t2, &cfg->queues[1]);
    wait_until_blocked(&t2, "the second thread");

    release_writer(&w);
    join_opener(&t1, "the first thread");
    join_opener(&t2, "the second thread");
    cr_assert_eq(t1.e, t2.e, "two environments of one queue in one "
                 "process");
    cr_assert_eq(t1.e->refs, 2);
    pps__env_release(t1.e);
    pps__env_release(t2.e);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- fork ------------------------------------------------------------------ */

enum {
    CHILD_PUB_NOT_FORKED = PPS_TEST_CHILD_ELOCAL, /* a parent's handle worked */
    CHILD_SUB_NOT_FORKED,
    CHILD_SAME_ENV,     /* the child got its parent's environment */
    CHILD_REFS_CHANGED, /* releasing the parent's environment did something */
    CHILD_OWN_FAILED,   /* the child's own handle failed */
};
static const pps_test_code fork_codes[] = {
    {CHILD_PUB_NOT_FORKED, "the parent's publisher did not answer "
                           "PPS_EFORKED"},
    {CHILD_SUB_NOT_FORKED, "the parent's subscriber did not answer "
                           "PPS_EFORKED"},
    {CHILD_SAME_ENV, "the child was handed its parent's environment"},
    {CHILD_REFS_CHANGED, "releasing the parent's environment in the child "
                         "changed it"},
    {CHILD_OWN_FAILED, "the child's own environment or handle failed"},
    {0, NULL},
};

Test(env, a_child_gets_environments_of_its_own, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = two_queues(dir);
    pps__env *parent_env;
    cr_assert_eq(pps__env_acquire(&parent_env, &cfg->queues[0], false),
                 PPS_OK);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *sub = pps_test_sub_open(cfg, "s");
    cr_assert_eq(pps_pub_send(pub, "from parent", 11), PPS_OK);
    unsigned refs = parent_env->refs;

    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        int calls = 0;
        if (pps_pub_send(pub, "x", 1) != PPS_EFORKED) {
            _exit(CHILD_PUB_NOT_FORKED);
        }
        if (pps_sub_receive(sub, 0, pps_test_count_calls, &calls) !=
                PPS_EFORKED ||
            calls != 0) {
            _exit(CHILD_SUB_NOT_FORKED);
        }
        pps__env *mine;
        if (pps__env_acquire(&mine, &cfg->queues[0], false) != PPS_OK) {
            _exit(CHILD_OWN_FAILED);
        }
        if (mine == parent_env || mine->pid != getpid() || mine->refs != 1) {
            _exit(CHILD_SAME_ENV);
        }
        /* The parent's references are not the child's to drop. */
        pps__env_release(parent_env);
        pps_pub_close(pub);
        pps_sub_close(sub);
        if (parent_env->refs != refs) {
            _exit(CHILD_REFS_CHANGED);
        }
        pps_pub *own = NULL;
        if (pps_pub_open(&own, cfg, "pub") != PPS_OK ||
            pps_pub_send(own, "from child", 10) != PPS_OK) {
            _exit(CHILD_OWN_FAILED);
        }
        pps_pub_close(own);
        pps__env_release(mine);
        _exit(0);
    }
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), fork_codes));

    /* The parent's environment and handles are intact. */
    cr_assert_eq(parent_env->refs, refs);
    cr_assert_eq(pps_pub_send(pub, "parent again", 12), PPS_OK, "%s",
                 pps_last_error());
    pps_test_sink *sink = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(sub, sink), 3);
    cr_assert_str_eq(sink->data[0], "from parent");
    cr_assert_str_eq(sink->data[1], "from child");
    cr_assert_str_eq(sink->data[2], "parent again");
    pps_test_sink_del(sink);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps__env_release(parent_env);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- a nosync queue lost in an OS crash (PPS_ELOST) --------------------- */

/* The boot mark of pps.wake (src/wakeup.c): bytes 32..71 hold the boot id
 * of the last boot whose commits skipped their flushes, cleared by the
 * last process to close the queue after a full flush. */
#define WAKE_BOOT_OFFSET 32
#define WAKE_BOOT_SIZE 40

/* Every call that opens the queue answers exactly `want`. */
static void
expect_every_open(const pps_config *cfg, int want, const char *what)
{
    pps_pub *pub = NULL;
    pps_sub *sub = NULL;
    pps_test_qstat q;
    size_t problems;
    pps_removed removed;
    /* One statement each: initializers are evaluated in no set order. */
    int rc[9];
    rc[0] = pps_pub_open(&pub, cfg, "pub");
    rc[1] = pps_sub_open(&sub, cfg, "s1");
    rc[2] = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
    rc[3] = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
    rc[4] = pps_ctl_prune(cfg);
    rc[5] = pps_ctl_clear(cfg);
    rc[6] = pps_ctl_prune_queue(cfg, "q", &removed);
    rc[7] = pps_ctl_clear_queue(cfg, "q", &removed);
    rc[8] = pps_ctl_remove_subscriber(cfg, "q", "gone");
    static const char *const names[9] = {
        "pps_pub_open",        "pps_sub_open",       "pps_ctl_status",
        "pps_ctl_check",       "pps_ctl_prune",      "pps_ctl_clear",
        "pps_ctl_prune_queue", "pps_ctl_clear_queue",
        "pps_ctl_remove_subscriber"};
    for (size_t i = 0; i < 9; i++) {
        cr_assert_eq(rc[i], want, "%s: %s: %s (expected %s)", what, names[i],
                     pps_status_name(rc[i]), pps_status_name(want));
    }
    cr_assert_null(pub);
    cr_assert_null(sub);
}

Test(env, nosync_queue_written_in_an_earlier_boot_is_elost, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    const char *const subs[] = {"s1", NULL};
    pps_config *cfg =
        pps_test_simple(dir, subs, NULL, "\"durability\": \"nosync\"");
    /* A child sends without flushing and dies before it closes the queue:
     * the mark stays. This process holds no handle. */
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        pps_pub *pub = pps_test_child_pub(cfg, "pub");
        if (pps_pub_send(pub, "unflushed", 9) != PPS_OK) {
            pps_test_child_fail(PPS_TEST_CHILD_ESEND, "send", -1);
        }
        raise(SIGKILL);
        _exit(PPS_TEST_CHILD_ELOCAL);
    }
    int st = pps_test_wait(pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "the child was not killed: status %d", st);
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    int fd = open(wake, O_RDWR);
    cr_assert_geq(fd, 0, "%s: %s", wake, strerror(errno));
    char mark[WAKE_BOOT_SIZE];
    cr_assert_eq(pread(fd, mark, sizeof(mark), WAKE_BOOT_OFFSET),
                 (ssize_t)sizeof(mark));
    cr_assert_neq(mark[0], '\0', "no boot mark after an unflushed send");
    /* As after a reboot: the mark names a boot that is not this one. */
    char other[WAKE_BOOT_SIZE] = "00000000-0000-0000-0000-000000000000";
    cr_assert_eq(pwrite(fd, other, sizeof(other), WAKE_BOOT_OFFSET),
                 (ssize_t)sizeof(other));
    close(fd);

    expect_every_open(cfg, PPS_ELOST, "a nosync queue of an earlier boot");
    cr_assert_not_null(strstr(pps_last_error(), "init"), "%s",
                       pps_last_error());
    /* init recreates it, empty. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps_test_queue_status(cfg).messages, 0);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "fresh", 5), PPS_OK);
    pps_pub_close(pub);
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink *s = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(sub, s), 1);
    cr_assert_str_eq(s->data[0], "fresh");
    pps_test_sink_del(s);
    pps_sub_close(sub);
    pps_test_expect_consistent(cfg);
    free(wake);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
