/*
 * The helper of properties::system_calls_of_send_and_receive
 * (tests/test_properties.c),
 * run under strace: sends and receives on a nosync queue in phases, each
 * between two markers that strace shows, so the test can count the system
 * calls of each phase:
 *
 *   pps-prop-syscalls CONFIG QUEUE_DIR N
 *
 * CONFIG names publisher "pub" and subscriber "s1" on the nosync queue in
 * QUEUE_DIR. After a warm-up (three rounds of what the phases do: the file
 * and LMDB's page lists reach their steady state), the phases are
 *
 *   send          N sends, no receiver waiting
 *   receive       N receives (timeout 0) of those messages
 *   send_waiter   N sends while pps.wake counts a sleeping receiver (set
 *                 by hand: no real sleeper, whose wake-ups would race)
 *   batch         N / 10 sends of 10 messages (pps_pub_send_many), then
 *                 N / 10 pps_sub_receive_batch of up to 10
 *
 * A marker is write(-1, "pps-mark:PHASE", ...), which fails with EBADF and
 * does nothing else. Exit 0, or 1 with the failing call on stderr.
 */
#include "persipubsub/persipubsub.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void
mark(const char *phase)
{
    char text[64];
    int len = snprintf(text, sizeof(text), "pps-mark:%s", phase);
    long r = syscall(SYS_write, -1, text, (size_t)len);
    (void)r;
}

static void
fail(const char *what, int rc)
{
    fprintf(stderr, "pps-prop-syscalls: %s: %s: %s\n", what,
            pps_status_name(rc), pps_last_error());
    exit(1);
}

static int
accept_all(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

static void
sends(pps_pub *pub, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = pps_pub_send(pub, "0123456789abcdef", 16);
        if (rc != PPS_OK) {
            fail("send", rc);
        }
    }
}

static void
receives(pps_sub *sub, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = pps_sub_receive(sub, 0, accept_all, NULL);
        if (rc != PPS_OK) {
            fail("receive", rc);
        }
    }
}

/* The waiter count of the queue's pps.wake (src/wakeup.c: byte 28). */
static _Atomic uint32_t *
waiters_of(const char *qdir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/pps.wake", qdir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return (_Atomic uint32_t *)((char *)map + 28);
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pps-prop-syscalls CONFIG QUEUE_DIR N\n");
        return 2;
    }
    int n = atoi(argv[3]);
    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    pps_sub *sub = NULL;
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc != PPS_OK) {
        fail("config", rc);
    }
    if ((rc = pps_pub_open(&pub, cfg, "pub")) != PPS_OK) {
        fail("pub open", rc);
    }
    if ((rc = pps_sub_open(&sub, cfg, "s1")) != PPS_OK) {
        fail("sub open", rc);
    }
    _Atomic uint32_t *waiters = waiters_of(argv[2]);
    pps_buf batch[10];
    for (int i = 0; i < 10; i++) {
        batch[i] = (pps_buf){"0123456789abcdef", 16};
    }
    for (int round = 0; round < 3; round++) {
        sends(pub, n);
        receives(sub, n);
        for (int i = 0; i < n / 10; i++) {
            if ((rc = pps_pub_send_many(pub, batch, 10)) != PPS_OK) {
                fail("send_many", rc);
            }
        }
        for (int i = 0; i < n / 10; i++) {
            rc = pps_sub_receive_batch(sub, 10, 0, accept_all, NULL);
            if (rc != 10) {
                fail("receive_batch", rc);
            }
        }
    }

    mark("send");
    sends(pub, n);
    mark("receive");
    receives(sub, n);
    atomic_store(waiters, 1);
    mark("send_waiter");
    sends(pub, n);
    mark("end");
    atomic_store(waiters, 0);
    receives(sub, n);
    mark("batch");
    for (int i = 0; i < n / 10; i++) {
        if ((rc = pps_pub_send_many(pub, batch, 10)) != PPS_OK) {
            fail("send_many", rc);
        }
    }
    for (int i = 0; i < n / 10; i++) {
        rc = pps_sub_receive_batch(sub, 10, 0, accept_all, NULL);
        if (rc != 10) {
            fail("receive_batch", rc);
        }
    }
    mark("end");

    pps_sub_close(sub);
    pps_pub_close(pub);
    pps_config_free(cfg);
    return 0;
}
