/*
 * The workloads against persipubsub, through its public API only.
 *
 * Each run writes a JSON configuration into its own directory (one queue,
 * publishers "pub0" ... (one component each, as the configuration format
 * wants every publishing program to have its own id) and subscribers
 * "sub0", "sub1"), initializes the queue
 * with pps_ctl_init() in the driver, then forks the roles; every child loads
 * the configuration and opens its own handle, as separate programs would.
 * The high-water mark is set far above what a run stores, so nothing is
 * ever pruned and every subscriber must see every message, in order.
 */
#include "bench.h"

#include <persipubsub/persipubsub.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct flow_ctx {
    const bench_flow *f;
    char cfg[PATH_MAX];
} flow_ctx;

typedef struct backlog_ctx {
    const bench_backlog *b;
    char cfg[PATH_MAX];
} backlog_ctx;

typedef struct sub_state {
    uint64_t count;
    int bad;
    int latency;
    bench_shm *shm;
    bench_order order;
} sub_state;

static void
report(const char *what, int status)
{
    bench_fail("persipubsub: %s: %s (%s): %s", what, pps_status_name(status),
               pps_strerror(status), pps_last_error());
}

/* Writes DIR/bench.json: one queue "q", n_pubs publishers, n_subs
 * subscribers. */
static int
write_config(const char *dir, const char *durability, int n_pubs, int n_subs,
             uint64_t map_bytes, char *path, size_t cap)
{
    if ((size_t)snprintf(path, cap, "%s/bench.json", dir) >= cap) {
        bench_fail("path too long: %s", dir);
        return -1;
    }
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        bench_fail("cannot write %s", path);
        return -1;
    }
    fputs("{\n", fp);
    for (int i = 0; i < n_pubs; i++) {
        fprintf(fp, "  \"pub%d\": {\"out_queue\": \"q\"},\n", i);
    }
    for (int i = 0; i < n_subs; i++) {
        fprintf(fp, "  \"sub%d\": {\"in_queue\": \"q\"},\n", i);
    }
    fprintf(fp, "  \"queues\": {\n    \"q\": {\n      \"path\": \"q\",\n"
                "      \"max_db_size_bytes\": %llu,\n"
                "      \"subscribers\": [",
            (unsigned long long)map_bytes);
    for (int i = 0; i < n_subs; i++) {
        fprintf(fp, "%s\"sub%d\"", i > 0 ? ", " : "", i);
    }
    fprintf(fp, "],\n      \"high-water-mark\": {\n"
                "        \"MSG_TIMEOUT_SECS\": 86400,\n"
                "        \"MAX_MSGS_NUM\": 1000000000,\n"
                "        \"HWM_LMDB_SIZE_BYTES\": %llu,\n"
                "        \"strategy\": \"prune_first\"\n      },\n"
                "      \"durability\": \"%s\"\n    }\n  }\n}\n",
            (unsigned long long)map_bytes, durability);
    if (fclose(fp) != 0) {
        bench_fail("cannot write %s", path);
        return -1;
    }
    return 0;
}

/* Writes the configuration and initializes the queue (in the driver). */
static int
setup(const char *dir, const char *durability, int n_pubs, int n_subs,
      uint64_t map_bytes, char *path, size_t cap)
{
    pps_config *cfg;
    if (write_config(dir, durability, n_pubs, n_subs, map_bytes, path,
                     cap) != 0) {
        return -1;
    }
    int status = pps_config_load(&cfg, path);
    if (status != PPS_OK) {
        report("load config", status);
        return -1;
    }
    status = pps_ctl_init(cfg);
    pps_config_free(cfg);
    if (status != PPS_OK) {
        report("init", status);
        return -1;
    }
    return 0;
}

/* What a persipubsub publisher sends with. */
typedef struct sender {
    pps_pub *pub;
    pps_buf *v; /* the batch's buffers, over bufs */
    size_t batch;
} sender;

static int
send_cb(void *ctx, const unsigned char *bufs, size_t k)
{
    sender *sd = ctx;
    int status = sd->batch == 1 ? pps_pub_send(sd->pub, bufs, BENCH_MSG_SIZE)
                                : pps_pub_send_many(sd->pub, sd->v, k);
    if (status != PPS_OK) {
        report("send", status);
        return -1;
    }
    return 0;
}

static int
flow_publisher(const flow_ctx *c, int idx)
{
    const bench_flow *f = c->f;
    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    char id[16];
    unsigned char *bufs = malloc(f->pub_batch * BENCH_MSG_SIZE);
    pps_buf *v = malloc(f->pub_batch * sizeof(*v));
    int rc = -1;
    int status = bufs == NULL || v == NULL ? PPS_ENOMEM : PPS_OK;
    if (status == PPS_OK) {
        status = pps_config_load(&cfg, c->cfg);
    }
    if (status == PPS_OK) {
        snprintf(id, sizeof(id), "pub%d", idx);
        status = pps_pub_open(&pub, cfg, id);
    }
    if (status != PPS_OK) {
        report("open publisher", status);
        goto done;
    }
    for (size_t j = 0; j < f->pub_batch; j++) {
        v[j].data = bufs + j * BENCH_MSG_SIZE;
        v[j].len = BENCH_MSG_SIZE;
    }
    sender sd = {pub, v, f->pub_batch};
    rc = bench_publish(f, idx, bufs, send_cb, &sd);
done:
    pps_pub_close(pub);
    pps_config_free(cfg);
    free(v);
    free(bufs);
    return rc;
}

static int
on_message(const pps_message *m, void *user)
{
    int64_t now = bench_now_ns(); /* first thing: the callback is entered */
    sub_state *s = user;
    if (!bench_order_next(&s->order, m->data, m->len)) {
        /* Consume and count it anyway: a refusal would bring it again, and
         * the subscriber ends after n messages and reports it. */
        s->bad = 1;
        s->count++;
        return 0;
    }
    if (s->latency && s->count < s->shm->cap_samples) {
        s->shm->samples[s->count] = now - bench_payload_ts(m->data);
    }
    s->count++;
    return 0;
}

static int
flow_subscriber(const flow_ctx *c, int idx)
{
    const bench_flow *f = c->f;
    bench_shm *shm = bench_shm_get();
    pps_config *cfg = NULL;
    pps_sub *sub = NULL;
    char id[16];
    sub_state s = {.latency = f->latency && idx == 0, .shm = shm};
    int rc = -1;
    bench_order_init(&s.order, f->n_pubs);
    snprintf(id, sizeof(id), "sub%d", idx);
    int status = pps_config_load(&cfg, c->cfg);
    if (status == PPS_OK) {
        status = pps_sub_open(&sub, cfg, id);
    }
    if (status != PPS_OK) {
        report("open subscriber", status);
        goto done;
    }
    bench_child_ready();
    while (s.count < f->n) {
        status = f->sub_batch > 1
                     ? pps_sub_receive_batch(sub, f->sub_batch,
                                             BENCH_RECV_TIMEOUT_MS,
                                             on_message, &s)
                     : pps_sub_receive(sub, BENCH_RECV_TIMEOUT_MS, on_message,
                                       &s);
        if (status < 0) {
            report("receive", status);
            goto done;
        }
    }
    char who[64];
    snprintf(who, sizeof(who), "persipubsub: %s", id);
    rc = bench_sub_done(idx, s.count, s.latency, s.bad, who);
done:
    pps_sub_close(sub);
    pps_config_free(cfg);
    return rc;
}

static int
flow_role(int role, void *arg)
{
    const flow_ctx *c = arg;
    int n_pubs = c->f->n_pubs;
    return role < n_pubs ? flow_publisher(c, role)
                         : flow_subscriber(c, role - n_pubs);
}

int
pps_flow(const bench_flow *f)
{
    flow_ctx c = {.f = f};
    if (setup(f->dir, f->durable ? "sync" : "nosync", f->n_pubs, f->n_subs,
              (uint64_t)1 << 30, c.cfg, sizeof(c.cfg)) != 0) {
        return -1;
    }
    return bench_run(f->n_pubs + f->n_subs, flow_role, &c, 900);
}

/* One timed round of single sends into samples[from, from + sends). */
static int
timed_sends(pps_pub *pub, const bench_backlog *b, size_t from, uint64_t *seq)
{
    bench_shm *shm = bench_shm_get();
    unsigned char buf[BENCH_MSG_SIZE];
    for (size_t i = 0; i < b->sends; i++) {
        bench_payload(buf, 0, (*seq)++, 0);
        int64_t t0 = bench_now_ns();
        int status = pps_pub_send(pub, buf, sizeof(buf));
        int64_t t1 = bench_now_ns();
        if (status != PPS_OK) {
            report("send", status);
            return -1;
        }
        shm->samples[from + i] = t1 - t0;
    }
    return 0;
}

static int
backlog_role(int role, void *arg)
{
    const backlog_ctx *c = arg;
    const bench_backlog *b = c->b;
    bench_shm *shm = bench_shm_get();
    enum { BATCH = 1000 };
    pps_config *cfg = NULL;
    pps_pub *pub = NULL;
    unsigned char *bufs = malloc((size_t)BATCH * BENCH_MSG_SIZE);
    pps_buf v[BATCH];
    uint64_t seq = 0;
    int rc = -1;
    (void)role;
    int status = bufs == NULL ? PPS_ENOMEM : pps_config_load(&cfg, c->cfg);
    if (status == PPS_OK) {
        status = pps_pub_open(&pub, cfg, "pub0");
    }
    if (status != PPS_OK) {
        report("open publisher", status);
        goto done;
    }
    bench_child_ready();
    if (timed_sends(pub, b, 0, &seq) != 0) {
        goto done;
    }
    int64_t t0 = bench_now_ns();
    for (size_t i = 0; i < b->backlog; i += BATCH) {
        size_t k = b->backlog - i < BATCH ? b->backlog - i : BATCH;
        for (size_t j = 0; j < k; j++) {
            v[j].data = bufs + j * BENCH_MSG_SIZE;
            v[j].len = BENCH_MSG_SIZE;
            bench_payload(bufs + j * BENCH_MSG_SIZE, 0, seq++, 0);
        }
        status = pps_pub_send_many(pub, v, k);
        if (status != PPS_OK) {
            report("fill backlog", status);
            goto done;
        }
    }
    shm->fill_ns = bench_now_ns() - t0;
    if (timed_sends(pub, b, b->sends, &seq) != 0) {
        goto done;
    }
    shm->n_samples = 2 * b->sends;
    rc = 0;
done:
    pps_pub_close(pub);
    pps_config_free(cfg);
    free(bufs);
    return rc;
}

int
pps_backlog(const bench_backlog *b)
{
    backlog_ctx c = {.b = b};
    /* Two registered subscribers that never receive: every message stays. */
    if (setup(b->dir, "nosync", 1, 2, (uint64_t)4 << 30, c.cfg,
              sizeof(c.cfg)) != 0) {
        return -1;
    }
    return bench_run(1, backlog_role, &c, 900);
}
