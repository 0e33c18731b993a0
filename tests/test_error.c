/* Status codes, their texts and the thread-local error detail. */
#include "internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

static const int codes[] = {
    PPS_OK,      PPS_EINVAL,  PPS_ECONFIG,   PPS_ENOTFOUND, PPS_ENOTINIT,
    PPS_ETIMEDOUT, PPS_ECALLBACK, PPS_EFULL, PPS_ESTORAGE,  PPS_ENOMEM,
    PPS_EFORKED, PPS_EDECODE, PPS_EVERSION,
};

Test(error, every_code_has_a_distinct_text_and_name, .timeout = 10)
{
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        cr_assert(codes[i] <= 0);
        cr_assert_str_neq(pps_strerror(codes[i]), "unknown status");
        cr_assert_str_neq(pps_status_name(codes[i]), "PPS_UNKNOWN");
        for (size_t j = i + 1; j < n; j++) {
            cr_assert_neq(codes[i], codes[j]);
            cr_assert_str_neq(pps_strerror(codes[i]), pps_strerror(codes[j]));
        }
    }
    cr_assert_str_eq(pps_status_name(PPS_EFULL), "PPS_EFULL");
    cr_assert_str_eq(pps_strerror(12345), "unknown status");
    cr_assert_str_eq(pps_status_name(-12345), "PPS_UNKNOWN");
    cr_assert_str_eq(pps_version(), "0.1.0");
}

Test(error, first_cause_wins_within_a_call, .timeout = 10)
{
    pps__err_begin();
    cr_assert_eq(pps__err(PPS_ESTORAGE, "inner %d", 1), PPS_ESTORAGE);
    pps__err(PPS_ENOMEM, "outer");
    cr_assert_str_eq(pps_last_error(), "inner 1");
    /* A new call that fails replaces it; one that succeeds leaves it. */
    pps__err_begin();
    cr_assert_str_eq(pps_last_error(), "inner 1");
    pps__err(PPS_EINVAL, "next");
    cr_assert_str_eq(pps_last_error(), "next");
}

Test(error, lmdb_codes_are_translated, .timeout = 10)
{
    pps__err_begin();
    cr_assert_eq(pps__err_rc(MDB_MAP_FULL, "put", "/q"), PPS_EFULL);
    cr_assert(strstr(pps_last_error(), "/q: put: ") == pps_last_error());
    cr_assert(strstr(pps_last_error(), "max_db_size_bytes") != NULL);
    pps__err_begin();
    cr_assert_eq(pps__err_rc(MDB_CORRUPTED, "get", NULL), PPS_ESTORAGE);
    pps__err_begin();
    cr_assert_eq(pps__err_rc(ENOMEM, "get", NULL), PPS_ENOMEM);
}

static void *
fail_in_thread(void *arg)
{
    (void)arg;
    pps__err_begin();
    pps__err(PPS_EINVAL, "from another thread");
    return NULL;
}

Test(error, detail_is_per_thread, .timeout = 10)
{
    pps__err_begin();
    pps__err(PPS_ESTORAGE, "main thread");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    pthread_join(t, NULL);
    cr_assert_str_eq(pps_last_error(), "main thread");
}
