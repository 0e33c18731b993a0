/*
 * A counting, failing allocator for the tests that link with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * (pps_add_alloc_test() in tests/CMakeLists.txt). The wrap reaches every
 * call of those functions in the executable's own objects, which include the
 * static library's: the library's allocations. It does not reach the shared
 * libraries: LMDB's and jansson's allocations, and those libc makes inside
 * fopen() or realpath(), are not counted (jansson's are when the test hands
 * it pps_alloc_json_malloc() through json_set_alloc_funcs()).
 *
 * Counting is per thread and only between pps_alloc_arm() and
 * pps_alloc_disarm(), so Criterion's and other threads' allocations never
 * count. Works under AddressSanitizer: __real_malloc is then ASan's.
 */
#ifndef PPS_ALLOC_H
#define PPS_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Starts counting this thread's allocations; the fail_at-th one (1-based)
 * returns NULL, as do none when fail_at is 0. */
void pps_alloc_arm(long fail_at);

/* Stops counting; returns how many allocations were attempted since
 * pps_alloc_arm(), the failed one included. */
long pps_alloc_disarm(void);

/* Whether the allocation that failed since pps_alloc_arm() was one of
 * jansson's (through pps_alloc_json_malloc()). */
bool pps_alloc_failed_in_json(void);

/* For json_set_alloc_funcs(): counted and failed like the others. */
void *pps_alloc_json_malloc(size_t size);
void pps_alloc_json_free(void *p);

/* Under LeakSanitizer: true if the heap holds unreachable blocks now (they
 * are reported on stderr). Always false in a build without it. */
bool pps_alloc_leaked(void);

#endif
