/*
 * Durability modes, checked by counting the flushes LMDB asks the kernel
 * for (flush_count.h).
 *
 *   sync        two flushes per send (data, then the meta page)
 *   nometasync  one flush per send (data; the meta page goes with the next)
 *   consuming   one flush per commit in both (data, never the meta page)
 *   nosync      none, consuming included (but for the one flush of the
 *               boot's mark in pps.wake before the first commit)
 */
#include "flush_count.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int
consume(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

/* Flushes per send and per consume for a queue of the given durability. */
static void
measure(const char *durability, int per_send, const char *durability_key)
{
    char *dir = pps_test_tmpdir();
    static const char *const subs[] = {"a", "b", NULL};
    char extra[64];
    snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", durability_key);
    pps_config *cfg = pps_test_simple(dir, subs, NULL,
                                      durability_key != NULL ? extra : NULL);
    pps_pub *pub;
    pps_sub *a, *b;
    cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
    cr_assert_eq(pps_sub_open(&a, cfg, "a"), PPS_OK);
    cr_assert_eq(pps_sub_open(&b, cfg, "b"), PPS_OK);

    /* The first commit of a nosync queue in a boot flushes one page: the
     * boot's mark in pps.wake, which lets the next boot notice an OS crash
     * (docs/reliability.rst). Later ones flush nothing. */
    atomic_store(&pps_test_flushes, 0);
    cr_assert_eq(pps_pub_send(pub, "w", 1), PPS_OK);
    cr_assert_eq(atomic_load(&pps_test_flushes), per_send > 0 ? per_send : 1,
                 "%s: the first send flushed %d times", durability,
                 atomic_load(&pps_test_flushes));

    const int n = 20;
    atomic_store(&pps_test_flushes, 0);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    }
    int sent = atomic_load(&pps_test_flushes);
    cr_assert_eq(sent, n * per_send, "%s: %d flushes for %d sends",
                 durability, sent, n);

    pps_buf batch[5] = {{"1", 1}, {"2", 1}, {"3", 1}, {"4", 1}, {"5", 1}};
    atomic_store(&pps_test_flushes, 0);
    cr_assert_eq(pps_pub_send_many(pub, batch, 5), PPS_OK);
    cr_assert_eq(atomic_load(&pps_test_flushes), per_send,
                 "%s: a batch is one commit", durability);

    atomic_store(&pps_test_flushes, 0);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(pps_sub_receive(a, 0, consume, NULL), PPS_OK);
    }
    cr_assert_eq(pps_sub_receive_batch(b, 100, 0, consume, NULL), 1 + n + 5);
    /* A consumption commit flushes its data pages before its meta page is
     * written (never MDB_NOSYNC in a sync or nometasync queue: a power cut
     * could then find a meta page naming unwritten pages), but does not
     * flush the meta page: one flush per consuming commit, none in nosync
     * queues. n receives and one batch are n + 1 commits. */
    int per_consume = per_send > 0 ? 1 : 0;
    cr_assert_eq(atomic_load(&pps_test_flushes), (n + 1) * per_consume,
                 "%s: consuming flushed %d times", durability,
                 atomic_load(&pps_test_flushes));

    pps_sub_close(b);
    pps_sub_close(a);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(durability, sync_is_the_default_and_flushes_twice_per_send,
     .timeout = 60)
{
    measure("default", 2, NULL);
}

Test(durability, sync_flushes_twice_per_send, .timeout = 60)
{
    measure("sync", 2, "sync");
}

Test(durability, nometasync_flushes_once_per_send, .timeout = 60)
{
    measure("nometasync", 1, "nometasync");
}

Test(durability, nosync_never_flushes, .timeout = 60)
{
    measure("nosync", 0, "nosync");
}

Test(durability, messages_survive_reopening_in_every_mode, .timeout = 60)
{
    const char *modes[] = {"sync", "nometasync", "nosync"};
    for (size_t m = 0; m < 3; m++) {
        char *dir = pps_test_tmpdir();
        static const char *const subs[] = {"a", NULL};
        char extra[64];
        snprintf(extra, sizeof(extra), "\"durability\": \"%s\"", modes[m]);
        pps_config *cfg = pps_test_simple(dir, subs, NULL, extra);
        pps_pub *pub;
        cr_assert_eq(pps_pub_open(&pub, cfg, "pub"), PPS_OK);
        cr_assert_eq(pps_pub_send(pub, modes[m], strlen(modes[m])), PPS_OK);
        pps_pub_close(pub);
        pps_config_free(cfg);

        /* A new configuration and environment: what was committed is read
         * back from the files. */
        cfg = pps_test_config(dir, "{\"a\": {\"in_queue\": \"q\"}, \"queues\": "
                                   "{\"q\": {\"path\": \"q\", \"subscribers\": "
                                   "[\"a\"]}}}");
        pps_sub *a;
        pps_test_sink sink = {0};
        cr_assert_eq(pps_sub_open(&a, cfg, "a"), PPS_OK);
        cr_assert_eq(pps_sub_receive(a, 0, pps_test_collect, &sink), PPS_OK);
        cr_assert_str_eq(sink.data[0], modes[m]);
        pps_test_sink_free(&sink);
        pps_sub_close(a);
        pps_config_free(cfg);
        pps_test_cleanup(dir);
    }
}

/* The boot id a nosync queue's first commit without flushes writes into
 * pps.wake (bytes 32..71), and that the last handle to close clears after
 * flushing everything: a clean shutdown leaves a queue the next boot
 * trusts, a crash one it refuses (PPS_ELOST, test_env.c). */
static void
read_mark(const char *dir, char mark[40])
{
    char *wake = pps_test_path_in(dir, "q/pps.wake");
    FILE *f = fopen(wake, "rb");
    cr_assert_not_null(f, "%s", wake);
    cr_assert_eq(fseek(f, 32, SEEK_SET), 0);
    cr_assert_eq(fread(mark, 1, 40, f), 40);
    fclose(f);
    free(wake);
    mark[39] = '\0';
}

Test(durability, nosync_mark_is_set_by_a_commit_and_cleared_by_a_clean_close,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    static const char *const subs[] = {"a", NULL};
    pps_config *cfg =
        pps_test_simple(dir, subs, NULL, "\"durability\": \"nosync\"");
    char mark[40];
    read_mark(dir, mark);
    cr_assert_str_empty(mark, "marked before any unflushed commit");
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_pub *second = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    read_mark(dir, mark);
    char boot[64] = {0};
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f != NULL) {
        cr_assert_not_null(fgets(boot, sizeof(boot), f));
        fclose(f);
        boot[strcspn(boot, "\n")] = '\0';
        cr_assert_str_eq(mark, boot, "the mark is not this boot's id");
    }
    /* One handle of the process still open: the queue stays marked. */
    pps_pub_close(pub);
    read_mark(dir, mark);
    cr_assert_str_eq(mark, boot);
    pps_pub_close(second);
    read_mark(dir, mark);
    cr_assert_str_empty(mark, "a clean close left the mark");
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}
