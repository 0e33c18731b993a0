/*
 * Transactions (src/txn.c) through the internal API: pps__txn_run()
 * commits what its body did and aborts it when the body fails; on
 * PPS_EFULL it runs the body once more, but only after reclaiming the
 * reader slot of a dead process (a child SIGKILLed inside a read
 * transaction); the durability of consumptions; and pps__txn_recycle_freed()
 * makes what the previous commit freed reusable by the very next one.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fixture {
    char *dir;
    pps_config *cfg;
    pps__env *e;
} fixture;

/* The environment of a fresh queue without subscribers. */
static void
fixture_open(fixture *f, uint64_t map_bytes)
{
    char json[512];
    f->dir = pps_test_tmpdir();
    snprintf(json, sizeof(json),
             "{\"queues\": {\"q\": {\"path\": \"q\", "
             "\"max_db_size_bytes\": %llu}}}",
             (unsigned long long)map_bytes);
    f->cfg = pps_test_queue(f->dir, json);
    int rc = pps__env_acquire(&f->e, &f->cfg->queues[0], false);
    cr_assert_eq(rc, PPS_OK, "acquire: %s: %s", pps_status_name(rc),
                 pps_last_error());
}

static void
fixture_close(fixture *f)
{
    pps__env_release(f->e);
    pps_config_free(f->cfg);
    pps_test_cleanup(f->dir);
}

static pps__seq
read_seq(pps__env *e)
{
    MDB_txn *txn;
    pps__seq seq;
    cr_assert_eq(pps__txn_begin_read(e, &txn), PPS_OK);
    cr_assert_eq(pps__layout_read_seq(e, txn, &seq), PPS_OK);
    mdb_txn_abort(txn);
    return seq;
}

/* ---- commit and abort --------------------------------------------------- */

typedef struct body_ctx {
    pps__seq write;
    int fail_with; /* returned after the write; 0: succeed */
    int fail_calls; /* how many calls fail with it (-1: all) */
    int calls;
} body_ctx;

static int
write_seq_body(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    body_ctx *b = ctx;
    int status = pps__layout_write_seq(e, txn, &b->write);
    b->calls++;
    if (status == PPS_OK && b->fail_with != 0 &&
        (b->fail_calls < 0 || b->calls <= b->fail_calls)) {
        return pps__err(b->fail_with, "the body fails on purpose");
    }
    return status;
}

Test(txn, run_commits_the_body_and_aborts_a_failing_one, .timeout = 30)
{
    fixture f;
    fixture_open(&f, 4 * PPS_TEST_MIB);
    body_ctx ok = {.write = {.next_id = 10, .gen = 1}};
    cr_assert_eq(pps__txn_run(f.e, PPS__SYNC, write_seq_body, &ok, "ok"),
                 PPS_OK, "%s", pps_last_error());
    cr_assert_eq(ok.calls, 1);
    cr_assert_eq(read_seq(f.e).next_id, 10);

    /* A body that fails after its change: nothing of it is committed, its
     * status and detail are the run's. */
    body_ctx bad = {.write = {.next_id = 20, .gen = 2},
                    .fail_with = PPS_EINVAL,
                    .fail_calls = -1};
    pps__err_begin();
    cr_assert_eq(pps__txn_run(f.e, PPS__SYNC, write_seq_body, &bad, "bad"),
                 PPS_EINVAL);
    cr_assert_eq(bad.calls, 1, "a failure other than PPS_EFULL was retried");
    cr_assert_not_null(strstr(pps_last_error(), "on purpose"), "%s",
                       pps_last_error());
    pps__seq seq = read_seq(f.e);
    cr_assert_eq(seq.next_id, 10, "an aborted body's change was committed");
    cr_assert_eq(seq.gen, 1);

    /* The environment is usable after the abort (the writer lock was
     * released). */
    cr_assert_eq(pps__txn_run(f.e, PPS__NOSYNC, write_seq_body, &ok, "ok"),
                 PPS_OK);
    fixture_close(&f);
}

Test(txn, efull_without_a_dead_reader_is_not_retried, .timeout = 30)
{
    fixture f;
    fixture_open(&f, 4 * PPS_TEST_MIB);
    body_ctx full = {.write = {.next_id = 5}, .fail_with = PPS_EFULL,
                     .fail_calls = -1};
    cr_assert_eq(pps__txn_run(f.e, PPS__SYNC, write_seq_body, &full, "full"),
                 PPS_EFULL);
    cr_assert_eq(full.calls, 1, "retried with no dead reader to reclaim");
    cr_assert_eq(read_seq(f.e).next_id, 1);
    fixture_close(&f);
}

/* Exit codes of the reader child. */
enum {
    CHILD_ACQUIRE = PPS_TEST_CHILD_ELOCAL,
    CHILD_READ_TXN,
};

Test(txn, efull_is_retried_once_after_reclaiming_a_dead_reader,
     .timeout = 60)
{
    fixture f;
    fixture_open(&f, 4 * PPS_TEST_MIB);
    int fd;
    pid_t pid = pps_test_fork_piped(&fd);
    if (pid == 0) {
        /* A process that dies inside a read transaction: its reader slot
         * stays taken. */
        pps__env *ce;
        if (pps__env_acquire(&ce, &f.cfg->queues[0], false) != PPS_OK) {
            _exit(CHILD_ACQUIRE);
        }
        MDB_txn *txn;
        if (pps__txn_begin_read(ce, &txn) != PPS_OK) {
            _exit(CHILD_READ_TXN);
        }
        if (write(fd, "R", 1) != 1) {
            _exit(PPS_TEST_CHILD_EPIPE);
        }
        for (;;) {
            pause();
        }
    }
    char c;
    bool ready = pps_test_read_within(fd, &c, 1, 30000);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st = pps_test_wait(pid);
    cr_assert(ready, "the reader child never began its transaction (exit "
              "0x%x)", st);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(fd);

    /* Keep the periodic reclaim of write transactions out of the way: the
     * retry's own reclaim must be the one that finds the dead slot. */
    f.e->readers_checked_ns = INT64_MAX / 2;
    body_ctx once = {.write = {.next_id = 30, .gen = 3},
                     .fail_with = PPS_EFULL,
                     .fail_calls = 1};
    int rc = pps__txn_run(f.e, PPS__SYNC, write_seq_body, &once, "retry");
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(once.calls, 2, "the body ran %d time(s), not twice",
                 once.calls);
    cr_assert_eq(read_seq(f.e).next_id, 30);

    /* The slot is free now: a second EFULL is not retried. */
    body_ctx again = {.write = {.next_id = 40}, .fail_with = PPS_EFULL,
                      .fail_calls = -1};
    cr_assert_eq(pps__txn_run(f.e, PPS__SYNC, write_seq_body, &again, "no"),
                 PPS_EFULL);
    cr_assert_eq(again.calls, 1);
    cr_assert_not(pps__txn_reclaim_readers(f.e));
    fixture_close(&f);
}

/* ---- durability --------------------------------------------------------- */

Test(txn, consumptions_never_commit_without_a_flush_in_flushed_queues,
     .timeout = 10)
{
    /* A sync queue's consumption flushes its data but not its meta page;
     * nometasync and nosync keep theirs. MDB_NOSYNC (PPS__NOSYNC) only
     * where the queue itself is nosync. */
    cr_assert_eq(pps__txn_consume_durability(PPS__SYNC), PPS__NOMETASYNC);
    cr_assert_eq(pps__txn_consume_durability(PPS__NOMETASYNC),
                 PPS__NOMETASYNC);
    cr_assert_eq(pps__txn_consume_durability(PPS__NOSYNC), PPS__NOSYNC);
}

/* ---- settle ------------------------------------------------------------- */

enum { BIG = 256 * 1024, BIGS = 8 };

static int
append_bigs(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)durability;
    uint64_t *next = ctx;
    static unsigned char payload[BIG];
    memset(payload, 'S', sizeof(payload));
    pps_buf b = {payload, sizeof(payload)};
    int status = PPS_OK;
    for (int i = 0; i < BIGS && status == PPS_OK; i++) {
        status = pps__layout_append(e, txn, (*next)++, &b, 1, NULL, 0);
    }
    return status;
}

static int
clear_all(pps__env *e, MDB_txn *txn, void *ctx, int *durability)
{
    (void)ctx;
    (void)durability;
    pps__subs none = {0};
    pps__removed removed = {0};
    return pps__layout_clear(e, txn, &none, &removed);
}

static uint64_t
last_pgno(pps__env *e)
{
    MDB_envinfo info;
    cr_assert_eq(mdb_env_info(e->env, &info), 0);
    return (uint64_t)info.me_last_pgno;
}

/* Appends 2 MiB, clears them, optionally settles, appends 2 MiB again;
 * returns how far the last used page moved in the second append. */
static uint64_t
growth_after_clear(bool settle)
{
    fixture f;
    fixture_open(&f, 32 * PPS_TEST_MIB);
    uint64_t next = 1;
    cr_assert_eq(pps__txn_run(f.e, PPS__NOSYNC, append_bigs, &next, "fill"),
                 PPS_OK, "%s", pps_last_error());
    cr_assert_eq(pps__txn_run(f.e, PPS__NOSYNC, clear_all, NULL, "clear"),
                 PPS_OK, "%s", pps_last_error());
    if (settle) {
        cr_assert_eq(pps__txn_recycle_freed(f.e, PPS__NOSYNC), PPS_OK, "%s",
                     pps_last_error());
    }
    uint64_t before = last_pgno(f.e);
    cr_assert_eq(pps__txn_run(f.e, PPS__NOSYNC, append_bigs, &next, "again"),
                 PPS_OK, "%s", pps_last_error());
    uint64_t growth = last_pgno(f.e) - before;
    fixture_close(&f);
    return growth;
}

Test(txn, settle_makes_freed_pages_reusable_by_the_next_commit,
     .timeout = 60)
{
    /* Without a settle the pages the clear freed are not reusable yet: the
     * second 2 MiB go past the end of the file's used part... */
    uint64_t pages = (uint64_t)BIG * BIGS / 4096;
    uint64_t unsettled = growth_after_clear(false);
    cr_assert_geq(unsettled, pages / 2,
                  "without a settle the map grew by only %llu pages: the "
                  "control case does not show what settle is for",
                  (unsigned long long)unsettled);
    /* ...after one, they go into the freed pages. */
    uint64_t settled = growth_after_clear(true);
    cr_assert_lt(settled, pages / 8,
                 "after a settle the map still grew by %llu pages (of %llu "
                 "written)",
                 (unsigned long long)settled, (unsigned long long)pages);
}
