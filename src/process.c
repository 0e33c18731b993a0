/*
 * The process as the library sees it: its clocks and its identity.
 *
 * Handles remember the pid that opened them: LMDB's locks and reader slots
 * belong to a process, so a handle used in a fork()ed child answers
 * PPS_EFORKED. getpid() is a system call (glibc stopped caching it), so
 * the hot paths ask pps__pid(), which caches it and forgets it in a child.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static _Atomic pid_t cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
forget_pid(void)
{
    cached_pid = 0;
}

static void
register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

pid_t
pps__pid(void)
{
    pid_t pid = cached_pid;
    if (pid == 0) {
        pthread_once(&atfork_once, register_atfork);
        pid = getpid();
        cached_pid = pid;
    }
    return pid;
}

int
pps__check_pid(pid_t opener, const char *kind)
{
    pid_t now = pps__pid();
    if (opener == now) {
        return PPS_OK;
    }
    return pps__err(PPS_EFORKED,
                    "%s handle opened by process %ld used in process %ld "
                    "after fork(); open a new one",
                    kind, (long)opener, (long)now);
}

void
pps__boot_id(char out[PPS__BOOT_ID_SIZE])
{
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    ssize_t n = read(fd, out, PPS__BOOT_ID_SIZE - 1);
    close(fd);
    n = n < 0 ? 0 : n;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) {
        n--;
    }
    out[n] = '\0';
}

static int64_t
clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
pps__now_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t
pps__now_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t
pps__now_coarse_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC_COARSE);
}
