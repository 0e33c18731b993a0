/*
 * Criterion report hooks linked into every test binary (pps_add_test()).
 * They make two things visible to ctest that Criterion alone hides:
 *
 * Skips. A test that calls cr_skip_test() is counted as passed in
 * Criterion's exit status, so ctest would show a test whose precondition
 * was missing as "Passed". Each skip is printed as
 * "pps-test: SKIPPED suite::name: reason", and when tests were skipped and
 * none failed the binary exits with 77, which ctest reports as "Skipped"
 * (SKIP_RETURN_CODE). A test whose precondition may be missing gets a ctest
 * entry of its own (pps_add_test(... ISOLATE suite/name)), so that its
 * skip does not hide that the rest of the binary ran.
 *
 * Leaks. The tests run in worker processes, where LeakSanitizer checks the
 * heap when the worker exits; the runner process only schedules them.
 * Criterion's runner leaks a few blocks of its own, so leak checking is
 * switched off in the runner before any test starts (__lsan_disable() in a
 * PRE_ALL hook, which runs in the runner only: workers are new processes
 * (BoxFort executes the binary afresh), with leak checking on). What a
 * worker reports does not change Criterion's exit status, so ctest fails a
 * test whose output holds "ERROR: LeakSanitizer" (FAIL_REGULAR_EXPRESSION).
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>
#include <stdlib.h>

/* Weak: present only in a sanitized build. */
void __lsan_disable(void) __attribute__((weak));

static unsigned pps_test_skipped;
static unsigned pps_test_not_passed;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    if (__lsan_disable != NULL) {
        __lsan_disable();
    }
}

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
    if (stats->test_status == CR_STATUS_SKIPPED) {
        pps_test_skipped++;
        fprintf(stderr, "pps-test: SKIPPED %s::%s: %s\n",
                stats->test->category, stats->test->name,
                stats->message != NULL ? stats->message : "(no reason)");
    } else if (stats->test_status != CR_STATUS_PASSED) {
        pps_test_not_passed++;
    }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    if (pps_test_skipped == 0 || pps_test_not_passed > 0 ||
        stats->tests_failed > 0 || stats->tests_crashed > 0) {
        return; /* Criterion's own status says it all */
    }
    fprintf(stderr, "pps-test: %u test%s skipped, none failed: exit 77\n",
            pps_test_skipped, pps_test_skipped == 1 ? "" : "s");
    fflush(NULL);
    exit(77);
}
