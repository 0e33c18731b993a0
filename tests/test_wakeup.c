/*
 * The wake-up file (src/wakeup.c): creating it, repairing one that an
 * interrupted init or a power cut left empty or zero-filled, refusing one
 * of other content (PPS_EFOREIGN) or of another version (PPS_EVERSION)
 * without writing to it, and notify/wait across processes.
 *
 * The waiting child is known to sleep when the file's waiter count says
 * so; nothing here is synchronised by sleeping.
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <unistd.h>

/* pps__wake_open() on directory dir, through a descriptor of it. */
static int
wake_open_in(pps__wake **w, const char *dir, bool create, unsigned mode)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s", dir);
    int rc = pps__wake_open(w, fd, dir, create, mode);
    close(fd);
    return rc;
}

#define MAGIC "persipubsub-wake"

/* Writes `len` bytes to DIR/pps.wake: `head` (hlen bytes), then `fill`. */
static char *
write_wake(const char *dir, const void *head, size_t hlen, size_t len,
           int fill)
{
    char *path = pps_test_path_in(dir, PPS__WAKE_FILE);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < len; i++) {
        int c = i < hlen ? ((const unsigned char *)head)[i] : fill;
        cr_assert_eq(fputc(c, f), c);
    }
    cr_assert_eq(fclose(f), 0);
    return path;
}

/* A fresh page: our magic and version, 4096 bytes. */
static void
expect_fresh(const char *dir)
{
    char *path = pps_test_path_in(dir, PPS__WAKE_FILE);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(st.st_size, 4096);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    unsigned char buf[24];
    cr_assert_eq(fread(buf, sizeof(buf), 1, f), 1);
    fclose(f);
    cr_assert_eq(memcmp(buf, MAGIC, 16), 0, "no magic in %s", path);
    uint32_t version;
    memcpy(&version, buf + 16, sizeof(version));
    cr_assert_eq(version, 1);
    free(path);
}

Test(wakeup, create_writes_a_fresh_file, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps__wake *w = NULL;
    pps__err_begin();
    cr_assert_eq(wake_open_in(&w, dir, false, 0600), PPS_ENOTINIT);
    cr_assert_null(w);
    pps_test_expect_detail(dir, "no wake-up file");
    cr_assert_eq(pps_test_dir_entries(dir), 0, "a refused open created it");

    cr_assert_eq(wake_open_in(&w, dir, true, 0600), PPS_OK, "%s",
                 pps_last_error());
    cr_assert_not_null(w);
    expect_fresh(dir);
    cr_assert_eq(pps__wake_seq(w), 0);
    pps__wake_close(w);
    /* Opened again, with or without create: as it is. */
    cr_assert_eq(wake_open_in(&w, dir, false, 0600), PPS_OK);
    pps__wake_notify(w);
    cr_assert_eq(pps__wake_seq(w), 1);
    pps__wake_close(w);
    cr_assert_eq(wake_open_in(&w, dir, true, 0600), PPS_OK);
    cr_assert_eq(pps__wake_seq(w), 1, "create rewrote a good file");
    pps__wake_close(w);
    pps__wake_close(NULL);
    pps_test_cleanup(dir);
}

/* A file left `what` by an interrupted init: not a queue yet without
 * create (and untouched), repaired with it. */
static void
expect_repaired(const char *dir, const char *what)
{
    pps__wake *w = NULL;
    pps_test_snap *before = pps_test_snap_take(dir);
    pps__err_begin();
    int rc = wake_open_in(&w, dir, false, 0600);
    cr_assert_eq(rc, PPS_ENOTINIT, "%s without create: %s: %s", what,
                 pps_status_name(rc), pps_last_error());
    cr_assert_null(w);
    pps_test_expect_detail(dir, what);
    pps_test_expect_untouched(dir, before, what);
    free(before);
    rc = wake_open_in(&w, dir, true, 0600);
    cr_assert_eq(rc, PPS_OK, "%s with create: %s: %s", what,
                 pps_status_name(rc), pps_last_error());
    expect_fresh(dir);
    pps__wake_close(w);
}

Test(wakeup, empty_file_is_repaired_by_create, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_wake(dir, NULL, 0, 0, 0));
    expect_repaired(dir, "an empty pps.wake");
    pps_test_cleanup(dir);
}

Test(wakeup, zero_filled_file_is_repaired_by_create, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_wake(dir, NULL, 0, 4096, 0));
    expect_repaired(dir, "a zero-filled pps.wake");
    free(write_wake(dir, NULL, 0, 100, 0));
    expect_repaired(dir, "a short zero-filled pps.wake");
    pps_test_cleanup(dir);
}

Test(wakeup, short_file_with_our_header_is_repaired_by_create,
     .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    unsigned char head[32] = {0};
    memcpy(head, MAGIC, 16);
    uint32_t one = 1;
    memcpy(head + 16, &one, sizeof(one));
    free(write_wake(dir, head, sizeof(head), sizeof(head), 0));
    expect_repaired(dir, "a pps.wake cut after its header");
    pps_test_cleanup(dir);
}

/* A file of `what`: refused with `want` with and without create, and
 * never written. */
static void
expect_refused(const char *dir, int want, const char *what)
{
    pps_test_snap *before = pps_test_snap_take(dir);
    for (int create = 0; create < 2; create++) {
        pps__wake *w = (pps__wake *)&w;
        pps__err_begin();
        int rc = wake_open_in(&w, dir, create, 0600);
        cr_assert_eq(rc, want, "%s (create %d): %s (expected %s): %s", what,
                     create, pps_status_name(rc), pps_status_name(want),
                     pps_last_error());
        cr_assert_null(w);
        pps_test_expect_detail(dir, what);
    }
    pps_test_expect_untouched(dir, before, what);
    free(before);
}

Test(wakeup, foreign_content_is_eforeign_untouched, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    free(write_wake(dir, "hello", 5, 5, 0));
    expect_refused(dir, PPS_EFOREIGN, "a 5-byte text");
    free(write_wake(dir, NULL, 0, 4096, 'J'));
    expect_refused(dir, PPS_EFOREIGN, "a page of junk");
    /* Zeros, then something: not an interrupted init. */
    free(write_wake(dir, NULL, 0, 4096, 0));
    char *path = write_wake(dir, "\0\0\0x", 4, 4096, 0);
    expect_refused(dir, PPS_EFOREIGN, "zeros and a byte");
    free(path);
    pps_test_cleanup(dir);
}

Test(wakeup, other_version_is_eversion_untouched, .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    unsigned char head[32] = {0};
    memcpy(head, MAGIC, 16);
    uint32_t two = 2;
    memcpy(head + 16, &two, sizeof(two));
    free(write_wake(dir, head, sizeof(head), 4096, 0));
    expect_refused(dir, PPS_EVERSION, "a pps.wake of version 2");
    cr_assert_not_null(strstr(pps_last_error(), "version 2"), "%s",
                       pps_last_error());
    pps_test_cleanup(dir);
}

/* ---- notify and wait across processes ------------------------------------ */

enum {
    CHILD_OPEN = PPS_TEST_CHILD_ELOCAL, /* pps__wake_open failed */
    CHILD_NOT_WOKEN, /* the word never changed */
};
static const pps_test_code codes[] = {
    {CHILD_OPEN, "the child could not open the wake-up file"},
    {CHILD_NOT_WOKEN, "the waiting child never saw the word change"},
    {0, NULL},
};

Test(wakeup, notify_wakes_a_waiter_in_another_process, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps__wake *w = NULL;
    cr_assert_eq(wake_open_in(&w, dir, true, 0600), PPS_OK);
    /* Nobody waits: a notify only moves the word. */
    uint32_t seen = pps__wake_seq(w);
    pps__wake_notify(w);
    cr_assert_eq(pps__wake_seq(w), seen + 1);
    seen = pps__wake_seq(w);
    cr_assert_eq(pps_test_waiters(dir), 0);

    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        pps__wake *cw = NULL;
        if (wake_open_in(&cw, dir, false, 0600) != PPS_OK) {
            _exit(CHILD_OPEN);
        }
        /* Waits, without a deadline of its own, until the word moves (a
         * safety interval may end a wait early: it waits again). */
        int64_t stop = pps__now_monotonic_ns() + (int64_t)50 * 1000000000;
        while (pps__wake_seq(cw) == seen && pps__now_monotonic_ns() < stop) {
            pps__wake_wait(cw, seen, -1);
        }
        _exit(pps__wake_seq(cw) != seen ? 0 : CHILD_NOT_WOKEN);
    }
    /* The child counts itself in just before it sleeps. */
    cr_assert(pps_test_wait_for_waiters(dir, 0, 30000),
              "the child never waited");
    pps__wake_notify(w);
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), codes));
    cr_assert_eq(pps__wake_seq(w), seen + 1);
    /* A waiter that returned counts itself out. */
    cr_assert_eq(pps_test_waiters(dir), 0);

    /* A wait for a word that moved already, or past its deadline, returns
     * without counting anyone in for good. */
    pps__wake_wait(w, seen, -1);
    pps__wake_wait(w, pps__wake_seq(w), 0);
    cr_assert_eq(pps_test_waiters(dir), 0);
    pps__wake_close(w);
    pps_test_cleanup(dir);
}

/* The slots of handed-over consumptions (handoff.c): "applied" names the
 * posting a commit applied by its nonce, so that a writer that stores it
 * late, after the slot changed owner, makes no posting of the new owner
 * count as applied (whatever the numbers' order). */
Test(wakeup, a_late_applied_mark_names_no_posting_of_the_new_owner,
     .timeout = 30)
{
    char *dir = pps_test_tmpdir();
    pps__wake *w = NULL;
    cr_assert_eq(wake_open_in(&w, dir, true, 0600), PPS_OK);
    const uint64_t a = pps__wake_tag("a"), b = pps__wake_tag("b");
    const uint64_t boot = 77, nonce_a = 900, nonce_b = 500;
    uint64_t from = 0, through = 0, nonce = 0;

    pps__wake_post(w, 0, a, boot, 1, 10, nonce_a);
    cr_assert(pps__wake_posted(w, 0, a, boot, &from, &through, &nonce));
    cr_assert_eq(from, 1);
    cr_assert_eq(through, 10);
    cr_assert_eq(nonce, nonce_a);
    cr_assert_not(pps__wake_posted(w, 0, a, boot + 1, &from, &through,
                                   &nonce),
                  "a posting of another boot");
    cr_assert_not(pps__wake_posted(w, 0, b, boot, &from, &through, &nonce),
                  "a posting of another subscriber");

    /* The list changed: slot 0 is b's now, and b posts. */
    pps__wake_post(w, 0, b, boot, 5, 6, nonce_b);
    /* A writer that applied a's posting records it late, having checked
     * the tag before b took the slot: b's posting is still pending. */
    pps__wake_applied(w, 0, b, nonce_a);
    cr_assert_not(pps__wake_is_applied(w, 0, b, nonce_b));
    cr_assert(pps__wake_posted(w, 0, b, boot, &from, &through, &nonce));
    cr_assert_eq(nonce, nonce_b);
    pps__wake_applied(w, 0, b, nonce_b);
    cr_assert(pps__wake_is_applied(w, 0, b, nonce_b));
    cr_assert_not(pps__wake_posted(w, 0, b, boot, &from, &through, &nonce),
                  "an applied posting is offered again");

    pps__wake_clear_slots(w);
    cr_assert_not(pps__wake_is_applied(w, 0, b, nonce_b));
    pps__wake_close(w);
    pps_test_cleanup(dir);
}
