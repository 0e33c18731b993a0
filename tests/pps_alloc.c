/* See pps_alloc.h. */
#include "pps_alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Weak: present only under LeakSanitizer. */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static _Thread_local bool armed;
static _Thread_local long seen;
static _Thread_local long fail_at;
static _Thread_local bool failed_in_json;

void
pps_alloc_arm(long n)
{
    seen = 0;
    fail_at = n;
    failed_in_json = false;
    armed = true;
}

long
pps_alloc_disarm(void)
{
    armed = false;
    return seen;
}

/* Counts one allocation; true if it must fail. */
static bool
fails(void)
{
    if (!armed) {
        return false;
    }
    seen++;
    if (seen == fail_at) {
        errno = ENOMEM;
        return true;
    }
    return false;
}

void *
__wrap_malloc(size_t size)
{
    return fails() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
    return fails() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
    return fails() ? NULL : __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
    return fails() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
    return fails() ? NULL : __real_strndup(s, n);
}

bool
pps_alloc_failed_in_json(void)
{
    return failed_in_json;
}

void *
pps_alloc_json_malloc(size_t size)
{
    if (fails()) {
        failed_in_json = true;
        return NULL;
    }
    return __real_malloc(size);
}

void
pps_alloc_json_free(void *p)
{
    free(p);
}

bool
pps_alloc_leaked(void)
{
    return __lsan_do_recoverable_leak_check != NULL &&
           __lsan_do_recoverable_leak_check() != 0;
}
