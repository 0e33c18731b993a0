/* Status codes, their texts and the thread-local error detail. */
#include "internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* Every status, generated from the header's one list (PPS_OK first). */
static const int codes[] = {
    PPS_OK,
#define PPS_TEST_CODE_(name, value, text) PPS_##name,
    PPS_STATUS_MAP(PPS_TEST_CODE_)
#undef PPS_TEST_CODE_
};

Test(error, every_code_has_a_distinct_text_and_name, .timeout = 10)
{
    size_t n = sizeof(codes) / sizeof(codes[0]);
    /* PPS_OK, then -1 .. -15 (PPS_ELOST) without a gap. */
    cr_assert_eq(n, 16u, "%zu statuses", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(codes[i], -(int)i);
        cr_assert_str_neq(pps_strerror(codes[i]), "unknown status");
        cr_assert_str_neq(pps_status_name(codes[i]), "PPS_UNKNOWN");
        for (size_t j = i + 1; j < n; j++) {
            cr_assert_neq(codes[i], codes[j]);
            cr_assert_str_neq(pps_strerror(codes[i]), pps_strerror(codes[j]));
            cr_assert_str_neq(pps_status_name(codes[i]),
                              pps_status_name(codes[j]));
        }
    }
    cr_assert_str_eq(pps_status_name(PPS_EFULL), "PPS_EFULL");
    cr_assert_str_eq(pps_status_name(PPS_EFOREIGN), "PPS_EFOREIGN");
    cr_assert_str_eq(pps_strerror(12345), "unknown status");
    cr_assert_str_eq(pps_status_name(-12345), "PPS_UNKNOWN");
    /* The first code after the list is unknown. */
    cr_assert_str_eq(pps_status_name(PPS_ELOST), "PPS_ELOST");
    cr_assert_str_eq(pps_strerror(-16), "unknown status");
    cr_assert_str_eq(pps_status_name(-16), "PPS_UNKNOWN");
    cr_assert_str_eq(pps_version(), "0.1.0");
}

/* pps_error_set: the public way to set the detail. */
Test(error, error_set_copies_truncates_and_accepts_null, .timeout = 10)
{
    cr_assert_eq(pps_error_set(PPS_EDECODE, "short detail"), PPS_EDECODE);
    cr_assert_str_eq(pps_last_error(), "short detail");
    /* NULL is "". */
    cr_assert_eq(pps_error_set(PPS_EINVAL, NULL), PPS_EINVAL);
    cr_assert_str_eq(pps_last_error(), "");
    /* Over 1023 bytes: the first 1023 are kept. */
    char big[2048];
    for (size_t i = 0; i < sizeof(big) - 1; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(pps_error_set(PPS_ESTORAGE, big), PPS_ESTORAGE);
    cr_assert_eq(strlen(pps_last_error()), 1023u, "%zu bytes kept",
                 strlen(pps_last_error()));
    cr_assert_eq(strncmp(pps_last_error(), big, 1023), 0);
    /* Exactly 1023 bytes fit whole. */
    big[1023] = '\0';
    cr_assert_eq(pps_error_set(PPS_ESTORAGE, big), PPS_ESTORAGE);
    cr_assert_str_eq(pps_last_error(), big);
    /* The detail is a copy: changing the caller's buffer changes nothing. */
    char mine[] = "mine";
    pps_error_set(PPS_EINVAL, mine);
    mine[0] = 'X';
    cr_assert_str_eq(pps_last_error(), "mine");
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

/* ---- the header's list, as a caller sees it ------------------------------ */

Test(error, status_strings_of_the_header_list, .timeout = 10)
{
    /* Every status of the header's one list, whatever it holds. */
    static const struct {
        int code;
        const char *name;
    } all[] = {{PPS_OK, "PPS_OK"},
#define ONE(name, value, text) {PPS_##name, "PPS_" #name},
               PPS_STATUS_MAP(ONE)
#undef ONE
    };
    size_t n = sizeof(all) / sizeof(all[0]);
    /* PPS_OK and PPS_EINVAL (-1) .. PPS_ELOST (-15), none missing. */
    cr_assert_eq(n, 16u, "%zu statuses", n);
    cr_assert_eq(PPS_EFOREIGN, -14);
    cr_assert_eq(PPS_ELOST, -15);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(all[i].code, -(int)i, "status %zu is %d", i,
                     all[i].code);
        const char *text = pps_strerror(all[i].code);
        cr_assert_not_null(text);
        cr_assert_neq(text[0], '\0');
        cr_assert_str_neq(text, pps_strerror(-12345), "%s has no text",
                          all[i].name);
        cr_assert_not_null(pps_status_name(all[i].code));
        cr_assert_str_eq(pps_status_name(all[i].code), all[i].name);
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(all[i].code, all[j].code);
            cr_assert_str_neq(text, pps_strerror(all[j].code));
        }
    }
    /* -16, the first code after the list, is unknown like the others. */
    const int unknown[] = {1, 42, -16, -1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        cr_assert_not_null(pps_strerror(unknown[i]));
        cr_assert_neq(pps_strerror(unknown[i])[0], '\0');
        cr_assert_str_eq(pps_strerror(unknown[i]), pps_strerror(-12345));
        cr_assert_not_null(pps_status_name(unknown[i]));
        cr_assert_neq(pps_status_name(unknown[i])[0], '\0');
        cr_assert_str_eq(pps_status_name(unknown[i]),
                         pps_status_name(-12345));
    }
}
