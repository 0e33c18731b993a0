/*
 * The kernel's floor for W3: the same 128-byte messages, at the same pace,
 * written into a pipe by one process and read by another that blocks in
 * read(). What is left of persipubsub's latency above this is the cost of
 * the queue itself.
 */
#include "bench.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef struct floor_ctx {
    const bench_flow *f;
    int fds[2];
} floor_ctx;

static int
writer(const floor_ctx *c)
{
    const bench_flow *f = c->f;
    unsigned char buf[BENCH_MSG_SIZE];
    close(c->fds[0]);
    bench_child_ready();
    int64_t next = bench_now_ns();
    bench_shm_get()->pub_start_ns[0] = next;
    for (size_t i = 0; i < f->n; i++) {
        if (f->interval_ns > 0) {
            bench_sleep_until(next);
            next += f->interval_ns;
        }
        int64_t ts = bench_now_ns();
        bench_payload(buf, 0, i, ts);
        if (write(c->fds[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            bench_fail("pipe: write: %s", strerror(errno));
            return -1;
        }
        if (i < bench_shm_get()->cap_samples) {
            bench_shm_get()->sends[i] = bench_now_ns() - ts;
            bench_shm_get()->n_sends = i + 1;
        }
    }
    bench_shm_get()->pub_end_ns[0] = bench_now_ns();
    close(c->fds[1]);
    return 0;
}

static int
reader(const floor_ctx *c)
{
    bench_shm *shm = bench_shm_get();
    unsigned char buf[BENCH_MSG_SIZE];
    close(c->fds[1]);
    bench_child_ready();
    for (size_t i = 0; i < c->f->n; i++) {
        size_t got = 0;
        while (got < sizeof(buf)) {
            ssize_t r = read(c->fds[0], buf + got, sizeof(buf) - got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR) {
                    continue;
                }
                bench_fail("pipe: read: %s", r == 0 ? "end of file"
                                                    : strerror(errno));
                return -1;
            }
            got += (size_t)r;
        }
        int64_t now = bench_now_ns();
        if (bench_payload_seq(buf) != i) {
            bench_fail("pipe: message out of order");
            return -1;
        }
        if (i < shm->cap_samples) {
            shm->samples[i] = now - bench_payload_ts(buf);
        }
    }
    shm->sub_end_ns[0] = bench_now_ns();
    shm->sub_count[0] = c->f->n;
    shm->n_samples = c->f->n < shm->cap_samples ? c->f->n : shm->cap_samples;
    return 0;
}

static int
role(int r, void *arg)
{
    const floor_ctx *c = arg;
    return r == 0 ? writer(c) : reader(c);
}

int
floor_flow(const bench_flow *f)
{
    floor_ctx c = {.f = f};
    if (f->n_pubs != 1) {
        /* Writes of several processes into one pipe would be a different
         * floor (their order is the kernel's): the pipe has one writer. */
        bench_fail("pipe: one publisher only");
        return -1;
    }
    if (pipe(c.fds) != 0) {
        bench_fail("pipe: %s", strerror(errno));
        return -1;
    }
    int rc = bench_run(2, role, &c, 900);
    close(c.fds[0]);
    close(c.fds[1]);
    return rc;
}
