/* The flush counter of flush_count.h. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "flush_count.h"

#include <dlfcn.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

atomic_int pps_test_flushes;

int
msync(void *addr, size_t len, int flags)
{
    static int (*real)(void *, size_t, int);
    if (real == NULL) {
        real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    }
    if (flags & MS_SYNC) {
        atomic_fetch_add(&pps_test_flushes, 1);
    }
    return real(addr, len, flags);
}

int
fdatasync(int fd)
{
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    atomic_fetch_add(&pps_test_flushes, 1);
    return real(fd);
}

int
fsync(int fd)
{
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    atomic_fetch_add(&pps_test_flushes, 1);
    return real(fd);
}
