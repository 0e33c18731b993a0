/*
 * A full LMDB map, a full file system and oversized or malformed sends
 * (issue 4; docs/reliability.rst, "A full map" and "A full file system"):
 * a send that does not fit is PPS_EFULL with nothing written and no id
 * used, subscribers go on consuming from a full map, and space comes back
 * when messages are consumed, cleared or pruned; a reader killed inside
 * its read transaction does not pin the map.
 *
 * Queues here use small maps (1 to 4 MiB) and "nosync" durability where
 * the test is not about durability, so the suite stays fast on a loaded
 * machine.
 */
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS; implies _XOPEN_SOURCE 700 */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#endif

/* ---- a full map --------------------------------------------------------- */

#define FULL_MSG 2000

/* Fills a 1 MiB map with messages of `len` bytes, then both subscribers
 * drain it one message (one commit) at a time: consumption copies pages
 * too, so a map filled to its last page could not be drained. */
static void
map_full_receivers_go_on(size_t len)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    char *qpath = pps_test_path_in(dir, "q");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_sub *s2 = pps_test_sub_open(cfg, "s2");

    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, len, &next, 100000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "a 1 MiB map took %zu messages of %zu bytes "
                 "and then: %s: %s", sent, len, pps_status_name(rc),
                 pps_last_error());
    cr_assert_gt(sent, 50, "only %zu messages fit into 1 MiB", sent);
    pps_test_expect_detail(qpath, "send into a full map");
    cr_assert_not_null(strstr(pps_last_error(), "max_db_size_bytes"),
                       "the detail does not say what to do: %s",
                       pps_last_error());
    cr_log_info("1 MiB map full after %zu messages of %zu bytes: %s", sent,
                len, pps_last_error());

    /* Nothing of the failed send is stored, and nothing else broke. */
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_eq(st.messages, sent);
    cr_assert_eq(st.next_id, sent + 1, "the failed send used an id");
    cr_assert_eq(st.pending[0], sent);
    cr_assert_eq(st.pending[1], sent);
    pps_test_expect_consistent(cfg);
    /* Whether a 1-byte message still fits after the last `len` one depends
     * on where the map's pages ended up: send 1-byte messages until one
     * does not fit (that many may, 0 included), then a 1-byte send is
     * PPS_EFULL for certain: nothing changed in between. */
    unsigned char one = 'x';
    size_t tiny = 0;
    while ((rc = pps_pub_send(pub, &one, 1)) == PPS_OK) {
        tiny++;
        cr_assert_lt(tiny, 100000, "a full map took 100000 1-byte messages");
    }
    cr_assert_eq(rc, PPS_EFULL, "1-byte send %zu into a full map: %s: %s",
                 tiny, pps_status_name(rc), pps_last_error());
    rc = pps_pub_send(pub, &one, 1);
    cr_assert_eq(rc, PPS_EFULL, "a 1-byte send right after a refused one: "
                 "%s: %s", pps_status_name(rc), pps_last_error());
    pps_test_expect_detail(qpath, "1-byte send into a full map");
    st = pps_test_queue_status(cfg);
    cr_assert_eq(st.messages, sent + tiny);
    cr_assert_eq(st.next_id, sent + tiny + 1, "a refused send used an id");

    /* Receivers go on while the map is full. s1 takes everything; the
     * payloads stay for s2, so the map is still full. */
    pps_test_seq x1 = {.len = len, .want = malloc(len)};
    pps_test_receive_expected(s1, &x1, sent, "s1 on a full map");
    for (size_t i = 0; i < tiny; i++) {
        cr_assert_eq(pps_sub_receive(s1, 0, pps_test_ignore, NULL), PPS_OK,
                     "s1, 1-byte message %zu: %s", i, pps_last_error());
    }
    cr_assert_eq(pps_sub_receive(s1, 0, pps_test_ignore, NULL),
                 PPS_ETIMEDOUT);
    /* s2 takes half; then all. */
    pps_test_seq x2 = {.len = len, .want = malloc(len)};
    pps_test_receive_expected(s2, &x2, sent / 2, "s2 on a full map");
    pps_test_receive_expected(s2, &x2, sent - sent / 2, "s2, second half");
    for (size_t i = 0; i < tiny; i++) {
        cr_assert_eq(pps_sub_receive(s2, 0, pps_test_ignore, NULL), PPS_OK,
                     "s2, 1-byte message %zu: %s", i, pps_last_error());
    }
    cr_assert_eq(pps_sub_receive(s2, 0, pps_test_ignore, NULL),
                 PPS_ETIMEDOUT);
    pps_test_expect_consistent(cfg);

    /* Everything consumed: the space is free again. */
    size_t again = 0;
    uint32_t before = next;
    rc = pps_test_fill(pub, len, &next, sent / 2, &again);
    cr_assert_eq(rc, PPS_OK, "after consuming everything, send %zu: %s: %s",
                 again, pps_status_name(rc), pps_last_error());
    x1.next = before;
    pps_test_receive_expected(s1, &x1, again, "s1 after the map emptied");
    x2.next = before;
    pps_test_receive_expected(s2, &x2, again, "s2 after the map emptied");
    pps_test_expect_consistent(cfg);

    free(x1.want);
    free(x2.want);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(full, map_full_send_efull_receivers_go_on, .timeout = 120)
{
    map_full_receivers_go_on(FULL_MSG);
}

Test(full, map_full_of_small_messages_receivers_go_on, .timeout = 120)
{
    map_full_receivers_go_on(16);
}

Test(full, map_full_then_clear_sends_again, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, FULL_MSG, &next, 5000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_removed removed = {0};
    rc = pps_ctl_clear_queue(cfg, NULL, &removed);
    cr_assert_eq(rc, PPS_OK, "clear on a full map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(removed.messages, sent);
    pps_test_expect_consistent(cfg);
    size_t again = 0;
    rc = pps_test_fill(pub, FULL_MSG, &next, sent / 2, &again);
    cr_assert_eq(rc, PPS_OK, "after clear, send %zu: %s: %s", again,
                 pps_status_name(rc), pps_last_error());
    /* And it fills up again to about the same point. */
    size_t more = 0;
    rc = pps_test_fill(pub, FULL_MSG, &next, 5000, &more);
    cr_assert_eq(rc, PPS_EFULL);
    cr_assert_geq(again + more + 8, sent, "a cleared map took only %zu "
                  "messages, %zu before", again + more, sent);
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_test_seq x = {.len = FULL_MSG, .want = malloc(FULL_MSG),
                    .next = next - (uint32_t)(again + more)};
    pps_test_receive_expected(s1, &x, again + more, "s1 after clear");
    free(x.want);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(full, map_full_then_prune_sends_again, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    /* Messages dangle after 2 s; 8000-byte messages fill 1 MiB in about
     * 120 sends, far faster than that even under load. */
    pps_config *cfg = pps_test_small_queue(
        dir, 1 * PPS_TEST_MIB,
        "\"durability\": \"nosync\", \"high-water-mark\": "
        "{\"MSG_TIMEOUT_SECS\": 2}");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    uint32_t next = 0;
    size_t sent = 0;
    int rc = pps_test_fill(pub, 8000, &next, 5000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    sleep(3);
    pps_removed removed = {0};
    rc = pps_ctl_prune_queue(cfg, NULL, &removed);
    cr_assert_eq(rc, PPS_OK, "prune on a full map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_gt(removed.messages, 0, "prune removed nothing");
    pps_test_expect_consistent(cfg);
    size_t again = 0;
    rc = pps_test_fill(pub, 8000, &next, 20, &again);
    cr_assert_eq(rc, PPS_OK, "after prune, send %zu: %s: %s", again,
                 pps_status_name(rc), pps_last_error());
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(full, hwm_size_below_map_prunes_before_the_map_fills, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(
        dir, 1 * PPS_TEST_MIB,
        "\"durability\": \"nosync\", \"high-water-mark\": "
        "{\"HWM_LMDB_SIZE_BYTES\": 262144, \"strategy\": \"prune_first\"}");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    uint32_t next = 0;
    size_t sent = 0;
    /* 4 MB through a 1 MiB map, nobody consuming: only the mark keeps it
     * from filling. */
    int rc = pps_test_fill(pub, FULL_MSG, &next, 2000, &sent);
    cr_assert_eq(rc, PPS_OK, "send %zu with a 256 KiB mark in a 1 MiB map: "
                 "%s: %s", sent, pps_status_name(rc), pps_last_error());
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_assert_lt(st.messages, 200, "%llu messages kept under a 256 KiB mark",
                 (unsigned long long)st.messages);
    cr_assert_gt(st.messages, 0);
    pps_test_expect_consistent(cfg);
    /* What is left is the newest, in order, and ends with the last sent. */
    pps_test_seq x = {.len = FULL_MSG, .want = malloc(FULL_MSG),
                    .next = next - (uint32_t)st.messages};
    pps_test_receive_expected(s1, &x, st.messages, "s1 after pruning");
    cr_assert_eq(x.next, next);
    free(x.want);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- oversized and malformed sends -------------------------------------- */

Test(full, oversized_message_is_efull_and_nothing_is_written,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    char *qpath = pps_test_path_in(dir, "q");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    pps_test_qstat st0 = pps_test_queue_status(cfg);

    size_t big = 2 * PPS_TEST_MIB;
    unsigned char *buf = malloc(big);
    cr_assert_not_null(buf);
    memset(buf, 'B', big);
    int rc = pps_pub_send(pub, buf, big);
    cr_assert_eq(rc, PPS_EFULL, "a 2 MiB message into a 1 MiB map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    pps_test_expect_detail(qpath, "oversized send");
    /* Just under the map: still too big, once it counts its pages. */
    rc = pps_pub_send(pub, buf, 1 * PPS_TEST_MIB - 4096);
    cr_assert_eq(rc, PPS_EFULL, "a message of the map's size: %s: %s",
                 pps_status_name(rc), pps_last_error());
    /* A batch with one oversized entry: none of it. */
    pps_buf batch[3] = {{"a", 1}, {buf, big}, {"c", 1}};
    rc = pps_pub_send_many(pub, batch, 3);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    free(buf);

    pps_test_qstat st1 = pps_test_queue_status(cfg);
    cr_assert_eq(st1.messages, st0.messages, "a failed send left messages");
    cr_assert_eq(st1.next_id, st0.next_id, "a failed send used ids");
    pps_test_expect_consistent(cfg);
    cr_assert_eq(pps_pub_send(pub, "after", 5), PPS_OK, "%s",
                 pps_last_error());
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_test_sink sink = {0};
    while (pps_sub_receive(s1, 0, pps_test_collect, &sink) == PPS_OK) {
    }
    cr_assert_eq(sink.n, 2);
    cr_assert_str_eq(sink.data[0], "before");
    cr_assert_str_eq(sink.data[1], "after");
    cr_assert_eq(sink.ids[1], sink.ids[0] + 1, "ids skipped over the "
                 "failed sends: %llu, %llu", (unsigned long long)sink.ids[0],
                 (unsigned long long)sink.ids[1]);
    pps_test_sink_free(&sink);
    pps_sub_close(s1);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(full, send_many_with_a_null_entry_is_einval_and_nothing_is_written,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_test_qstat st0 = pps_test_queue_status(cfg);
    pps_buf batch[4] = {{"a", 1}, {"b", 1}, {NULL, 3}, {"d", 1}};
    int rc = pps_pub_send_many(pub, batch, 4);
    cr_assert_eq(rc, PPS_EINVAL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_test_expect_detail(NULL, "send_many with a NULL entry");
    cr_assert_not_null(strstr(pps_last_error(), "2"),
                       "the detail does not name entry 2: %s",
                       pps_last_error());
    rc = pps_pub_send_many(pub, NULL, 2);
    cr_assert_eq(rc, PPS_EINVAL);
    rc = pps_pub_send(pub, NULL, 5);
    cr_assert_eq(rc, PPS_EINVAL);
    /* A NULL entry of length 0 is an empty message, as for send. */
    pps_buf ok[2] = {{NULL, 0}, {"z", 1}};
    cr_assert_eq(pps_pub_send_many(pub, ok, 2), PPS_OK, "%s",
                 pps_last_error());
    pps_test_qstat st1 = pps_test_queue_status(cfg);
    cr_assert_eq(st1.messages, st0.messages + 2);
    cr_assert_eq(st1.next_id, st0.next_id + 2);
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_test_sink sink = {0};
    while (pps_sub_receive(s1, 0, pps_test_collect, &sink) == PPS_OK) {
    }
    cr_assert_eq(sink.n, 2);
    cr_assert_eq(sink.lens[0], 0);
    cr_assert_str_eq(sink.data[1], "z");
    pps_test_sink_free(&sink);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- a reader killed inside its read transaction ------------------------ */

static int
block_forever_cb(const pps_message *msg, void *user)
{
    (void)msg;
    int fd = *(int *)user;
    char c = 'r';
    if (write(fd, &c, 1) != 1) {
        _exit(PPS_TEST_CHILD_EPIPE);
    }
    for (;;) {
        pause(); /* SIGKILLed here, holding the read transaction */
    }
    return 0;
}

Test(full, reader_killed_holding_a_read_txn_does_not_pin_the_map,
     .timeout = 180)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 4 * PPS_TEST_MIB,
                                           "\"durability\": \"nosync\"");
    char *path = pps_test_path_in(dir, "config.json");
    /* This process's handles are opened before the reader dies and kept:
     * a long-running publisher and subscriber. */
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_sub *s1 = pps_test_sub_open(cfg, "s1");
    pps_sub *s2 = pps_test_sub_open(cfg, "s2");
    cr_assert_eq(pps_pub_send(pub, "held", 4), PPS_OK);
    int fd;
    pid_t pid = pps_test_fork_piped(&fd);
    if (pid == 0) {
        pps_config *c = pps_test_child_config(path);
        pps_sub *sub = pps_test_child_sub(c, "s2");
        pps_sub_receive(sub, 30000, block_forever_cb, &fd);
        _exit(PPS_TEST_CHILD_ERECEIVE);
    }
    char c = 0;
    cr_assert(pps_test_read_within(fd, &c, 1, 60000),
              "the reader did not start");
    close(fd);
    kill(pid, SIGKILL);
    int ws = pps_test_wait(pid);
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL,
              "reader exited on its own: 0x%x", ws);

    /* The dead reader's slot pins the snapshot it read: no page freed
     * after it can be reused while the slot stands. Pass 24 MB through the
     * 4 MiB map with the handles opened before the kill (a long-running
     * publisher and subscriber, which open nothing more): if the slot were
     * never reclaimed, sends and even consuming would fail with
     * PPS_EFULL on an almost empty queue. */
    enum { ROUNDS = 60, PER_ROUND = 100, LEN = 4000 };
    unsigned char buf[LEN];
    cr_assert_eq(pps_sub_receive(s1, 0, pps_test_ignore, NULL), PPS_OK);
    cr_assert_eq(pps_sub_receive(s2, 0, pps_test_ignore, NULL), PPS_OK);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            pps_test_payload(buf, LEN, (uint32_t)(r * PER_ROUND + i));
            int rc = pps_pub_send(pub, buf, LEN);
            cr_assert_eq(rc, PPS_OK,
                         "send %d after %d MB passed through a 4 MiB map with "
                         "a dead reader: %s: %s",
                         r * PER_ROUND + i,
                         (r * PER_ROUND + i) * LEN / 1000000,
                         pps_status_name(rc), pps_last_error());
        }
        for (int i = 0; i < PER_ROUND; i++) {
            int rc = pps_sub_receive(s1, 0, pps_test_ignore, NULL);
            if (rc == PPS_OK) {
                rc = pps_sub_receive(s2, 0, pps_test_ignore, NULL);
            }
            cr_assert_eq(rc, PPS_OK,
                         "receive %d after %d MB passed through a 4 MiB map "
                         "with a dead reader: %s: %s",
                         r * PER_ROUND + i,
                         (r * PER_ROUND + i) * LEN / 1000000,
                         pps_status_name(rc), pps_last_error());
        }
    }
    pps_test_qstat st = pps_test_queue_status(cfg);
    cr_log_info("after %d MB: map used %llu of %llu bytes",
                ROUNDS * PER_ROUND * LEN / 1000000,
                (unsigned long long)st.map_used,
                (unsigned long long)st.map_size);
    cr_assert_eq(st.messages, 0);
    cr_assert_leq(st.map_used, st.map_size);
    pps_test_expect_consistent(cfg);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(pub);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
/* A file system that fills up before the map does. The queue's data.mdb is
 * a sparse file the size of the map (MDB_WRITEMAP); writing into its holes
 * on a full file system must give PPS_EFULL, not a SIGBUS. Runs in a child
 * with its own mount namespace and a 2 MiB tmpfs; skipped where mounting is
 * not allowed. */
static void
on_sigbus(int sig)
{
    (void)sig;
    static const char text[] = "SIGBUS: a write into the memory map hit a "
                               "hole the file system could not fill\n";
    ssize_t w = write(2, text, sizeof(text) - 1);
    (void)w;
    _exit(86);
}

static int
full_fs_cb(const pps_message *msg, void *user)
{
    (void)user;
    return msg->len == 8000 ? 0 : 1;
}

static void
full_fs_child(const char *mnt)
{
    /* Report a SIGBUS by an exit code (also under AddressSanitizer, which
     * otherwise turns it into a report and exit code 1). */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
#ifdef __linux__
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
        _exit(77);
    }
#else
    _exit(77);
#endif
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\","
             " \"max_db_size_bytes\": 16777216, \"subscribers\": [\"s1\"],"
             " \"durability\": \"nosync\"}}}",
             mnt);
    char cfgpath[4096];
    snprintf(cfgpath, sizeof(cfgpath), "%s/../full.json", mnt);
    FILE *f = fopen(cfgpath, "w");
    if (f == NULL) {
        _exit(20);
    }
    fputs(json, f);
    fclose(f);
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, cfgpath) != PPS_OK) {
        _exit(21);
    }
    int rc = pps_ctl_init(cfg);
    if (rc != PPS_OK) {
        /* Refusing a map larger than the free space is a clear error too. */
        fprintf(stderr, "init on a 2 MiB file system: %s: %s\n",
                pps_status_name(rc), pps_last_error());
        _exit(rc == PPS_EFULL ? 0 : 22);
    }
    pps_pub *pub = NULL;
    if (pps_pub_open(&pub, cfg, "pub") != PPS_OK) {
        _exit(23);
    }
    unsigned char buf[8000];
    memset(buf, 'F', sizeof(buf));
    for (int i = 0; i < 4000; i++) {
        rc = pps_pub_send(pub, buf, sizeof(buf));
        if (rc != PPS_OK) {
            fprintf(stderr, "full file system after %d sends: %s: %s\n", i,
                    pps_status_name(rc), pps_last_error());
            if (rc != PPS_EFULL) {
                _exit(24);
            }
            /* The subscriber goes on: consuming writes pages too. */
            pps_sub *sub = NULL;
            if (pps_sub_open(&sub, cfg, "s1") != PPS_OK) {
                _exit(26);
            }
            for (int j = 0; j < i; j++) {
                rc = pps_sub_receive(sub, 0, full_fs_cb, NULL);
                if (rc != PPS_OK) {
                    fprintf(stderr, "receive %d of %d on a full file system: "
                            "%s: %s\n", j, i, pps_status_name(rc),
                            pps_last_error());
                    _exit(27);
                }
            }
            pps_sub_close(sub);
            _exit(0);
        }
    }
    _exit(25); /* 32 MB into 2 MiB? */
}

Test(full, full_file_system_is_efull_not_a_crash, .timeout = 60)
{
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
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        cr_skip_test("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN "
                     "and unshare)");
    }
    cr_assert(!WIFSIGNALED(st),
              "a send on a full file system killed the process with signal "
              "%d (%s)",
              WTERMSIG(st), strsignal(WTERMSIG(st)));
    cr_assert_neq(WEXITSTATUS(st), 86,
                  "a send on a full file system died of SIGBUS (MDB_WRITEMAP "
                  "over a sparse data.mdb): it must fail with PPS_EFULL");
    cr_assert_eq(WEXITSTATUS(st), 0, "child failed with %d",
                 WEXITSTATUS(st));
    free(mnt);
    pps_test_cleanup(dir);
}


/* Every call that opens a queue on a full file system answers exactly
 * PPS_EFULL (docs/reliability.rst, "Every documented status, tested"): the
 * queue's lock.mdb is gone (LMDB recreates it at the next open), and the
 * library allocates its blocks before LMDB maps it. Runs in a child with
 * its own mount namespace and a 2 MiB tmpfs; skipped where mounting is not
 * allowed. */
static int
full_fs_expect(const char *what, int rc)
{
    if (rc == PPS_EFULL) {
        return 0;
    }
    fprintf(stderr, "%s on a full file system: %s (expected PPS_EFULL): %s\n",
            what, pps_status_name(rc), pps_last_error());
    return 1;
}

static pps_config *
full_fs_config(const char *mnt, const char *name, const char *subs)
{
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\","
             " \"max_db_size_bytes\": 1048576, \"subscribers\": [%s],"
             " \"durability\": \"nosync\"}}}",
             mnt, subs);
    char path[4096];
    snprintf(path, sizeof(path), "%s/../%s", mnt, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        _exit(20);
    }
    fputs(json, f);
    fclose(f);
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, path) != PPS_OK) {
        _exit(21);
    }
    return cfg;
}

static void
full_fs_every_call_child(const char *mnt)
{
#ifdef __linux__
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
        _exit(77);
    }
#else
    _exit(77);
#endif
    pps_config *cfg = full_fs_config(mnt, "both.json", "\"s1\", \"s2\"");
    pps_config *only_s1 = full_fs_config(mnt, "s1.json", "\"s1\"");
    if (pps_ctl_init(cfg) != PPS_OK) {
        _exit(22);
    }
    pps_pub *pub = NULL;
    if (pps_pub_open(&pub, cfg, "pub") != PPS_OK ||
        pps_pub_send(pub, "kept", 4) != PPS_OK) {
        _exit(23);
    }
    pps_pub_close(pub); /* the last handle: LMDB closes the environment */
    char path[4096];
    snprintf(path, sizeof(path), "%s/q/lock.mdb", mnt);
    if (unlink(path) != 0) {
        _exit(24);
    }
    /* Fill the file system to the last byte. */
    snprintf(path, sizeof(path), "%s/fill", mnt);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        _exit(25);
    }
    static char block[65536];
    for (size_t chunk = sizeof(block); chunk > 0; chunk /= 2) {
        while (write(fd, block, chunk) == (ssize_t)chunk) {
        }
    }
    if (errno != ENOSPC) {
        _exit(26);
    }
    close(fd);

    int bad = 0;
    pps_removed removed;
    pps_test_qstat q;
    size_t problems;
    pps_sub *sub = NULL;
    bad += full_fs_expect("pps_ctl_init", pps_ctl_init(cfg));
    bad += full_fs_expect("pps_ctl_init_queue", pps_ctl_init_queue(cfg, "q"));
    bad += full_fs_expect("pps_ctl_prune", pps_ctl_prune(cfg));
    bad += full_fs_expect("pps_ctl_prune_queue",
                          pps_ctl_prune_queue(cfg, "q", &removed));
    bad += full_fs_expect("pps_ctl_clear", pps_ctl_clear(cfg));
    bad += full_fs_expect("pps_ctl_clear_queue",
                          pps_ctl_clear_queue(cfg, "q", &removed));
    bad += full_fs_expect("pps_ctl_status",
                          pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q));
    bad += full_fs_expect("pps_ctl_check",
                          pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems));
    bad += full_fs_expect("pps_ctl_remove_subscriber",
                          pps_ctl_remove_subscriber(only_s1, "q", "s2"));
    bad += full_fs_expect("pps_pub_open", pps_pub_open(&pub, cfg, "pub"));
    bad += full_fs_expect("pps_sub_open", pps_sub_open(&sub, cfg, "s1"));
    if (pub != NULL || sub != NULL) {
        _exit(27);
    }
    if (bad > 0) {
        _exit(28);
    }
    /* With room again, everything works and nothing was lost. */
    snprintf(path, sizeof(path), "%s/fill", mnt);
    unlink(path);
    q = (pps_test_qstat){0};
    if (pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q) != PPS_OK ||
        q.messages != 1) {
        _exit(29);
    }
    pps_config_free(only_s1);
    pps_config_free(cfg);
    _exit(0);
}

Test(full, full_file_system_every_call_is_efull, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    char *mnt = pps_test_path_in(dir, "mnt");
    cr_assert_eq(mkdir(mnt, 0700), 0);
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        full_fs_every_call_child(mnt);
    }
    int st = pps_test_wait(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        cr_skip_test("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN "
                     "and unshare)");
    }
    cr_assert(WIFEXITED(st), "the child died of signal %d (%s)",
              WTERMSIG(st), strsignal(WTERMSIG(st)));
    cr_assert_eq(WEXITSTATUS(st), 0,
                 "child failed with %d (28: a call did not answer PPS_EFULL, "
                 "see its stderr)",
                 WEXITSTATUS(st));
    free(mnt);
    pps_test_cleanup(dir);
}
