/*
 * Room in the map and on the disk (src/space.c): a send that would take the
 * subscribers' slack at the end of the map is PPS_EFULL and leaves the map
 * as it was, the subscribers can then consume everything; a send on a full
 * file system is PPS_EFULL (never a SIGBUS from a hole in the sparse
 * data.mdb), and sends go on once there is room again.
 *
 * The full file system is a 4 MiB tmpfs mounted in a private mount
 * namespace of a child; the test skips, saying why, where that is not
 * allowed (it needs root, or rather CAP_SYS_ADMIN).
 */
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif

/* What a send may not take: the slack space.c keeps for the subscribers
 * of a map of map_bytes (at least 16 pages, a thirty-second of the map, at
 * most 1 MiB). */
static uint64_t
slack_of(uint64_t map_bytes, uint64_t psize)
{
    uint64_t s = map_bytes / 32;
    s = s > PPS_TEST_MIB ? PPS_TEST_MIB : s;
    return s < 16 * psize ? 16 * psize : s;
}

static void
used_and_map(pps__env *e, uint64_t *used_end, uint64_t *map, uint64_t *psize)
{
    MDB_envinfo info;
    MDB_stat st;
    cr_assert_eq(mdb_env_info(e->env, &info), 0);
    cr_assert_eq(mdb_env_stat(e->env, &st), 0);
    *psize = st.ms_psize;
    *used_end = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    *map = info.me_mapsize;
}

Test(space, send_into_the_slack_is_efull_and_leaves_the_map_untouched,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    pps__env *e;
    cr_assert_eq(pps__env_acquire(&e, &cfg->queues[0], false), PPS_OK, "%s",
                 pps_last_error());
    uint64_t used_end, map, psize;
    used_and_map(e, &used_end, &map, &psize);
    uint64_t slack = slack_of(map, psize);
    cr_assert_gt(map - used_end, slack + 32 * psize, "the test's map is too "
                 "small for its own arithmetic");

    /* Fits into the free part of the map, but not with the slack left. */
    size_t eats_slack = (size_t)(map - used_end - slack / 2);
    unsigned char *buf = calloc(1, eats_slack);
    cr_assert_not_null(buf);
    pps_buf b = {buf, eats_slack};
    pps__err_begin();
    int rc = pps__space_for_send(e, &b, 1, 2);
    cr_assert_eq(rc, PPS_EFULL, "a send into the slack: %s",
                 pps_status_name(rc));
    pps_test_expect_detail(e->path, "a send into the slack");
    cr_assert_not_null(strstr(pps_last_error(), "subscribers"), "%s",
                       pps_last_error());

    /* Leaving the slack (and the estimate's allowance for page splits)
     * free, it is fine. */
    b.len = (size_t)(map - used_end - slack - 16 * psize);
    rc = pps__space_for_send(e, &b, 1, 2);
    cr_assert_eq(rc, PPS_OK, "a send that leaves the slack: %s: %s",
                 pps_status_name(rc), pps_last_error());

    /* Through the public API: refused, the map as it was. */
    pps_test_snap *before = pps_test_snap_take(dir);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    rc = pps_pub_send(pub, buf, eats_slack);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_expect_same_content(dir, before, "a refused send");
    free(before);
    free(buf);

    /* Fill the map with small messages: the last send is refused, and
     * both subscribers consume everything in the slack that was kept. */
    uint32_t next = 0;
    size_t sent = 0;
    rc = pps_test_fill(pub, 3000, &next, 100000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "filling the map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_gt(sent, 10u);
    const char *ids[] = {"s1", "s2"};
    for (int i = 0; i < 2; i++) {
        pps_sub *s = pps_test_sub_open(cfg, ids[i]);
        unsigned char want[3000];
        pps_test_seq x = {.len = sizeof(want), .want = want};
        pps_test_receive_expected(s, &x, sent, ids[i]);
        pps_test_expect_empty(s);
        pps_sub_close(s);
    }
    cr_assert_eq(pps_test_queue_usage(cfg).count, 0);
    /* And the map takes messages again. */
    rc = pps_pub_send(pub, "again", 5);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    pps_pub_close(pub);
    pps__env_release(e);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- a full file system ------------------------------------------------- */

/* Exit codes of the child on the small file system. */
enum {
    CHILD_NO_MOUNT = 77,
    CHILD_SIGBUS = 86,
    CHILD_SETUP = PPS_TEST_CHILD_ELOCAL,
    CHILD_FILL,          /* could not fill the file system */
    CHILD_NOT_EFULL,     /* a send on a full file system was not EFULL */
    CHILD_NO_DETAIL,     /* ...or its detail did not say why */
    CHILD_WRITE_EFULL,   /* a write transaction within allocated room failed */
    CHILD_NOT_AGAIN,     /* no send once there was room again */
};
static const pps_test_code child_codes[] = {
    {CHILD_SIGBUS, "SIGBUS: a write into the map hit a hole the file system "
                   "could not fill"},
    {CHILD_SETUP, "setting up the queue on the small file system failed"},
    {CHILD_FILL, "could not fill the file system"},
    {CHILD_NOT_EFULL, "a send on a full file system was not PPS_EFULL"},
    {CHILD_NO_DETAIL, "PPS_EFULL without \"file system is full\" in its "
                      "detail"},
    {CHILD_WRITE_EFULL, "a write transaction within allocated room failed"},
    {CHILD_NOT_AGAIN, "sends did not go on once there was room again"},
    {0, NULL},
};

static void
on_sigbus(int sig)
{
    (void)sig;
    _exit(CHILD_SIGBUS);
}

/* Fills the file system of dir with a file, up to the last block. */
static bool
fill_fs(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return false;
    }
    static char chunk[4096];
    memset(chunk, 'Z', sizeof(chunk));
    for (;;) {
        ssize_t n = write(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == ENOSPC) {
            break;
        }
        if (n <= 0) {
            close(fd);
            return false;
        }
    }
    close(fd);
    return true;
}

static void
full_fs_child(const char *mnt)
{
    /* A SIGBUS becomes an exit code (also under AddressSanitizer). */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
#ifdef __linux__
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0) {
        fprintf(stderr, "mount a tmpfs in a private namespace: %s\n",
                strerror(errno));
        _exit(CHILD_NO_MOUNT);
    }
#else
    _exit(CHILD_NO_MOUNT);
#endif
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\","
             " \"max_db_size_bytes\": 16777216, \"subscribers\": [\"s1\"],"
             " \"durability\": \"nosync\"}}}",
             mnt);
    pps_config *cfg = NULL;
    pps__env *e = NULL;
    pps_pub *pub = NULL;
    if (pps__config_parse(&cfg, json, strlen(json), "<string>", NULL) !=
            PPS_OK ||
        pps_ctl_init(cfg) != PPS_OK ||
        pps__env_acquire(&e, &cfg->queues[0], false) != PPS_OK ||
        pps_pub_open(&pub, cfg, "pub") != PPS_OK ||
        pps_pub_send(pub, "first", 5) != PPS_OK) {
        pps_test_child_fail(CHILD_SETUP, "setup", PPS_ESTORAGE);
    }
    char filler[4096];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    if (!fill_fs(filler)) {
        _exit(CHILD_FILL);
    }

    /* 2 MiB more than the blocks allocated so far. */
    size_t big_len = 2 * PPS_TEST_MIB;
    unsigned char *big = calloc(1, big_len);
    pps_buf b = {big, big_len};
    pps__err_begin();
    int rc = pps__space_for_send(e, &b, 1, 1);
    if (rc != PPS_EFULL) {
        pps_test_child_fail(CHILD_NOT_EFULL, "space_for_send", rc);
    }
    if (strstr(pps_last_error(), "file system is full") == NULL) {
        pps_test_child_fail(CHILD_NO_DETAIL, "space_for_send", rc);
    }
    rc = pps_pub_send(pub, big, big_len);
    if (rc != PPS_EFULL) {
        pps_test_child_fail(CHILD_NOT_EFULL, "pps_pub_send", rc);
    }
    /* A write transaction that stays within the room allocated so far
     * (a consumption) goes on. */
    MDB_txn *txn;
    rc = pps__txn_begin_write(e, &txn);
    if (rc != PPS_OK) {
        pps_test_child_fail(CHILD_WRITE_EFULL, "begin write", rc);
    }
    mdb_txn_abort(txn);
    pps_sub *sub = NULL;
    int calls = 0;
    if (pps_sub_open(&sub, cfg, "s1") != PPS_OK ||
        (rc = pps_sub_receive(sub, 0, pps_test_count_calls, &calls)) !=
            PPS_OK) {
        pps_test_child_fail(CHILD_WRITE_EFULL, "receive", rc);
    }

    /* Room again: the same send goes through. */
    unlink(filler);
    rc = pps__space_for_send(e, &b, 1, 1);
    if (rc != PPS_OK || (rc = pps_pub_send(pub, big, big_len)) != PPS_OK) {
        pps_test_child_fail(CHILD_NOT_AGAIN, "send with room", rc);
    }
    free(big);
    pps_sub_close(sub);
    pps_pub_close(pub);
    pps__env_release(e);
    pps_config_free(cfg);
    _exit(0);
}

Test(space, full_file_system_is_efull_then_sends_go_on, .timeout = 60)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root: the full file system is a small tmpfs "
                     "mounted in a private mount namespace");
    }
    char *dir = pps_test_tmpdir();
    char *mnt = pps_test_path_in(dir, "mnt");
    cr_assert_eq(mkdir(mnt, 0700), 0);
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        full_fs_child(mnt);
    }
    int st = pps_test_wait(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_NO_MOUNT) {
        free(mnt);
        pps_test_cleanup(dir);
        cr_skip_test("cannot mount a small tmpfs in a private mount "
                     "namespace here (needs CAP_SYS_ADMIN and unshare)");
    }
    cr_assert(WIFEXITED(st), "the child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), child_codes));
    free(mnt);
    pps_test_cleanup(dir);
}
