/*
 * Counting the flushes a test process asks the kernel for: an executable
 * linking flush_count.c defines msync(), fdatasync() and fsync(); liblmdb's
 * calls resolve to these first (the executable comes first in symbol
 * lookup), which count and then call the C library's own.
 */
#ifndef PPS_FLUSH_COUNT_H
#define PPS_FLUSH_COUNT_H

#include <stdatomic.h>

/* msync(MS_SYNC), fdatasync() and fsync() calls of this process since the
 * test last stored 0 here. */
extern atomic_int pps_test_flushes;

#endif
