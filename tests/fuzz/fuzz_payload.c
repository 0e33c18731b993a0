/*
 * libFuzzer target: arbitrary payload sizes and bytes through a real queue.
 * Property: every message sent (pps_pub_send or pps_pub_send_many) comes
 * back to each of two subscribers byte for byte, with the same length, in
 * order, with increasing ids; the queue is empty afterwards and
 * pps_ctl_check finds it consistent.
 *
 * The queue is created once per fuzzing process in a fresh directory under
 * $TMPDIR (removed at exit). Input layout: byte 0 chooses how the rest is
 * cut into 1 to 8 messages and whether they go as one batch; byte 1, if
 * byte 0 says so, stretches the first message to up to 1 MiB by repeating
 * the input (LMDB overflow pages); the rest is payload.
 *
 * Built and run by tests/fuzz/run.sh (clang -fsanitize=fuzzer,...).
 */
#define _XOPEN_SOURCE 700
#include "persipubsub/persipubsub.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 8
#define BIG_MAX (1u << 20)

static char dir[4096];
static pps_config *cfg;
static pps_pub *pub;
static pps_sub *subs[2];
static unsigned long runs;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void
teardown(void)
{
    pps_sub_close(subs[0]);
    pps_sub_close(subs[1]);
    pps_pub_close(pub);
    pps_config_free(cfg);
    if (dir[0] != '\0') {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void
fatal(const char *what, int rc)
{
    fprintf(stderr, "fuzz_payload: %s: %s: %s\n", what, pps_status_name(rc),
            pps_last_error());
    abort();
}

static void
setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/pps-fuzz-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    atexit(teardown);
    char path[4200];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        abort();
    }
    fputs("{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},"
          " \"b\": {\"in_queue\": \"q\"},"
          " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\", "
          "\"b\"], \"max_db_size_bytes\": 67108864, \"durability\": "
          "\"nosync\"}}}\n",
          f);
    fclose(f);
    int rc = pps_config_load(&cfg, path);
    if (rc != PPS_OK) {
        fatal("config", rc);
    }
    if ((rc = pps_ctl_init(cfg)) != PPS_OK) {
        fatal("init", rc);
    }
    if ((rc = pps_pub_open(&pub, cfg, "pub")) != PPS_OK) {
        fatal("pub_open", rc);
    }
    if ((rc = pps_sub_open(&subs[0], cfg, "a")) != PPS_OK ||
        (rc = pps_sub_open(&subs[1], cfg, "b")) != PPS_OK) {
        fatal("sub_open", rc);
    }
}

typedef struct expect {
    const pps_buf *msgs;
    size_t n, next;
    uint64_t last_id;
    int bad;
} expect;

static int
compare_cb(const pps_message *msg, void *user)
{
    expect *x = user;
    if (x->next >= x->n) {
        x->bad = 1;
        return -1;
    }
    const pps_buf *want = &x->msgs[x->next];
    if (msg->len != want->len || msg->id <= x->last_id ||
        (want->len > 0 && memcmp(msg->data, want->data, want->len) != 0)) {
        x->bad = 2;
        return -1;
    }
    x->next++;
    x->last_id = msg->id;
    return 0;
}

static void
noop_problem(const char *queue_path, const char *problem, int repaired,
             void *user)
{
    (void)repaired;
    (void)user;
    fprintf(stderr, "check: %s: %s\n", queue_path, problem);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg == NULL) {
        setup();
    }
    uint8_t mode = size > 0 ? data[0] : 0;
    const uint8_t *p = size > 0 ? data + 1 : data;
    size_t left = size > 0 ? size - 1 : 0;
    size_t n = 1 + (mode & 7u);
    bool batch = (mode & 8u) != 0;
    bool stretch = (mode & 16u) != 0 && left > 0;
    size_t big_len = 0;
    if (stretch) {
        big_len = ((size_t)p[0] * 4099u) % BIG_MAX;
        p++;
        left--;
    }

    pps_buf msgs[MAX_MSGS];
    unsigned char *big = NULL;
    /* Cut the rest into n pieces at points chosen by the bytes. */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t piece = i + 1 == n ? left - off
                       : left - off == 0 ? 0
                                         : (size_t)(p[off] % (left - off + 1));
        msgs[i].data = piece > 0 ? p + off : NULL;
        msgs[i].len = piece;
        off += piece;
    }
    if (stretch) {
        big = malloc(big_len > 0 ? big_len : 1);
        if (big == NULL) {
            abort();
        }
        for (size_t i = 0; i < big_len; i++) {
            big[i] = left > 0 ? p[i % left] : (unsigned char)i;
        }
        msgs[0].data = big;
        msgs[0].len = big_len;
    }

    int rc = PPS_OK;
    if (batch) {
        rc = pps_pub_send_many(pub, msgs, n);
    } else {
        for (size_t i = 0; i < n && rc == PPS_OK; i++) {
            rc = pps_pub_send(pub, msgs[i].data, msgs[i].len);
        }
    }
    if (rc != PPS_OK) {
        fatal("send", rc);
    }
    for (int s = 0; s < 2; s++) {
        expect x = {.msgs = msgs, .n = n};
        while ((rc = pps_sub_receive(subs[s], 0, compare_cb, &x)) == PPS_OK) {
        }
        if (rc != PPS_ETIMEDOUT || x.bad != 0 || x.next != n) {
            fprintf(stderr, "fuzz_payload: subscriber %d: %s, got %zu of %zu "
                    "messages, mismatch %d\n", s, pps_status_name(rc), x.next,
                    n, x.bad);
            abort();
        }
    }
    free(big);
    if (++runs % 256 == 0) {
        size_t problems = 0;
        rc = pps_ctl_check(cfg, NULL, 0, noop_problem, NULL, &problems);
        if (rc != PPS_OK || problems != 0) {
            fatal("check", rc);
        }
    }
    return 0;
}
