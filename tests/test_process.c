/*
 * The process as the library sees it (src/process.c): the cached pid is
 * forgotten in a fork()ed child (whether or not the parent had cached it),
 * pps__check_pid() tells the opener from everybody else, and the clocks.
 *
 * Children report through their exit code and leave with _exit().
 */
#include "internal.h"
#include "pps_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    CHILD_WRONG_PID = PPS_TEST_CHILD_ELOCAL, /* pps__pid() is not getpid() */
    CHILD_OPENER_OK,      /* the parent's pid passed pps__check_pid() */
    CHILD_OWN_REFUSED,    /* the child's own pid failed pps__check_pid() */
    CHILD_NO_DETAIL,      /* PPS_EFORKED without a detail naming the kind */
    CHILD_GRANDCHILD,     /* a grandchild failed */
};
static const pps_test_code codes[] = {
    {CHILD_WRONG_PID, "pps__pid() is not the child's getpid()"},
    {CHILD_OPENER_OK, "the parent's pid passed pps__check_pid() in a child"},
    {CHILD_OWN_REFUSED, "the child's own pid failed pps__check_pid()"},
    {CHILD_NO_DETAIL, "PPS_EFORKED without a detail naming the handle"},
    {CHILD_GRANDCHILD, "a grandchild failed"},
    {0, NULL},
};

/* In a child: its pid is its own, its parent's handles are refused. */
static int
child_checks(pid_t opener, int depth)
{
    if (pps__pid() != getpid()) {
        return CHILD_WRONG_PID;
    }
    if (pps__check_pid(pps__pid(), "publisher") != PPS_OK) {
        return CHILD_OWN_REFUSED;
    }
    pps__err_begin();
    if (pps__check_pid(opener, "subscriber") != PPS_EFORKED) {
        return CHILD_OPENER_OK;
    }
    if (strstr(pps_last_error(), "subscriber") == NULL ||
        strstr(pps_last_error(), "fork") == NULL) {
        return CHILD_NO_DETAIL;
    }
    if (depth > 0) {
        pid_t me = pps__pid();
        pid_t pid = fork();
        if (pid == 0) {
            _exit(child_checks(me, depth - 1));
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            return CHILD_GRANDCHILD;
        }
    }
    return 0;
}

static void
fork_and_check(pid_t opener)
{
    pid_t parent = getpid();
    pid_t pid = pps_test_fork();
    if (pid == 0) {
        pps_test_child_begin(parent);
        _exit(child_checks(opener, 1));
    }
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "child: %s",
                 pps_test_child_code_name(WEXITSTATUS(st), codes));
}

Test(process, pid_cache_is_forgotten_in_a_child, .timeout = 30)
{
    /* Before this process asked for its pid... */
    fork_and_check(getpid());
    /* ...and after it cached it. */
    cr_assert_eq(pps__pid(), getpid());
    fork_and_check(pps__pid());
    /* The parent's cache is still its own. */
    cr_assert_eq(pps__pid(), getpid());
}

Test(process, check_pid_tells_the_opener_from_others, .timeout = 10)
{
    cr_assert_eq(pps__check_pid(pps__pid(), "publisher"), PPS_OK);
    pps__err_begin();
    pid_t other = pps__pid() + 1;
    cr_assert_eq(pps__check_pid(other, "publisher"), PPS_EFORKED);
    const char *e = pps_last_error();
    char want[64];
    snprintf(want, sizeof(want), "%ld", (long)other);
    cr_assert_not_null(strstr(e, "publisher"), "%s", e);
    cr_assert_not_null(strstr(e, want), "%s", e);
    pps_test_expect_detail(NULL, "EFORKED");
}

Test(process, clocks, .timeout = 10)
{
    int64_t real = pps__now_realtime_ns();
    int64_t t = (int64_t)time(NULL);
    /* The clock of published_ns: the wall clock in nanoseconds. */
    cr_assert_leq(real / 1000000000 - t, 1);
    cr_assert_leq(t - real / 1000000000, 1);
    int64_t m1 = pps__now_monotonic_ns(), c1 = pps__now_coarse_ns();
    int64_t m2 = pps__now_monotonic_ns(), c2 = pps__now_coarse_ns();
    cr_assert_geq(m2, m1);
    cr_assert_geq(c2, c1);
    cr_assert_gt(m1, 0);
    cr_assert_gt(c1, 0);
}
