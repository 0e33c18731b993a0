/*
 * pps-tsan-threads: the multi-threaded scenario as a plain program, for
 * ThreadSanitizer (cmake -DPPS_SANITIZE=thread). Criterion cannot run under
 * TSan (its BoxFort arena fails to initialize: "Could not initialize
 * inheritable arena", Criterion issue #274), so tests/test_publisher.c's
 * threads test cannot be the TSan check; this program is.
 *
 * In one process, on one queue (one shared LMDB environment):
 *   - 4 publisher threads, each with its own handle, send 500 messages
 *     ("P:I"), half with pps_pub_send, half in batches of 5;
 *   - 2 subscriber threads (subscribers a and b) receive everything, one in
 *     batches, one by one, and check each publisher's order;
 *   - 1 thread opens and closes publisher and subscriber handles of a
 *     third subscriber in a loop (the environment registry under load);
 *   - 1 thread reads the status and checks the queue meanwhile.
 * Exit status 0 if everything arrived exactly once and in order.
 *
 * LMDB itself is not instrumented (the system liblmdb): TSan sees the
 * library's own memory and the pthread calls, not LMDB's page accesses.
 */
#define _XOPEN_SOURCE 700
#include "persipubsub/persipubsub.h"

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PUBS = 4, MSGS = 500, TOTAL = PUBS * MSGS, BATCH = 5 };

static pps_config *cfg;
static atomic_int failed;
static atomic_int done_publishing;

static void
failf(const char *what, int rc)
{
    fprintf(stderr, "pps-tsan-threads: %s: %s: %s\n", what,
            pps_status_name(rc), pps_last_error());
    atomic_store(&failed, 1);
}

static void *
pub_thread(void *arg)
{
    int index = (int)(intptr_t)arg;
    pps_pub *p = NULL;
    int rc = pps_pub_open(&p, cfg, "pub");
    if (rc != PPS_OK) {
        failf("pub_open", rc);
        return NULL;
    }
    char text[BATCH][32];
    pps_buf bufs[BATCH];
    for (int i = 0; i < MSGS && rc == PPS_OK;) {
        if (i < MSGS / 2) {
            int n = snprintf(text[0], sizeof(text[0]), "%d:%d", index, i);
            rc = pps_pub_send(p, text[0], (size_t)n);
            i++;
        } else {
            int k = 0;
            for (; k < BATCH && i + k < MSGS; k++) {
                int n = snprintf(text[k], sizeof(text[k]), "%d:%d", index,
                                 i + k);
                bufs[k].data = text[k];
                bufs[k].len = (size_t)n;
            }
            rc = pps_pub_send_many(p, bufs, (size_t)k);
            i += k;
        }
    }
    if (rc != PPS_OK) {
        failf("send", rc);
    }
    pps_pub_close(p);
    atomic_fetch_add(&done_publishing, 1);
    return NULL;
}

typedef struct sub_job {
    const char *id;
    int next[PUBS]; /* the index expected next from each publisher */
    int count;
    int bad;
} sub_job;

static int
check_cb(const pps_message *msg, void *user)
{
    sub_job *j = user;
    char text[32];
    size_t n = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
    memcpy(text, msg->data, n);
    text[n] = '\0';
    int p = -1, i = -1;
    if (sscanf(text, "%d:%d", &p, &i) != 2 || p < 0 || p >= PUBS ||
        i != j->next[p]) {
        j->bad++;
        return 0;
    }
    j->next[p]++;
    j->count++;
    return 0;
}

/* Counts the messages that come after the expected last one. */
static int
count_cb(const pps_message *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
    return 0;
}

static void *
sub_thread(void *arg)
{
    sub_job *j = arg;
    pps_sub *s = NULL;
    int rc = pps_sub_open(&s, cfg, j->id);
    if (rc != PPS_OK) {
        failf("sub_open", rc);
        return NULL;
    }
    time_t deadline = time(NULL) + 300;
    bool batch = strcmp(j->id, "a") == 0;
    while (j->count < TOTAL && j->bad == 0 && time(NULL) < deadline) {
        rc = batch ? pps_sub_receive_batch(s, 37, 200, check_cb, j)
                   : pps_sub_receive(s, 200, check_cb, j);
        if (rc < 0 && rc != PPS_ETIMEDOUT) {
            failf("receive", rc);
            break;
        }
    }
    int extra = 0;
    rc = pps_sub_receive(s, 0, count_cb, &extra);
    if (rc != PPS_ETIMEDOUT || extra != 0) {
        fprintf(stderr, "pps-tsan-threads: %s: more than %d messages\n",
                j->id, TOTAL);
        atomic_store(&failed, 1);
    }
    pps_sub_close(s);
    return NULL;
}

static int
count_status(const pps_queue_status *st, void *user)
{
    (void)st;
    (*(int *)user)++;
    return 0;
}

static void *
churn_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&done_publishing) < PUBS && !atomic_load(&failed)) {
        pps_pub *p = NULL;
        pps_sub *s = NULL;
        int rc = pps_pub_open(&p, cfg, "pub");
        if (rc == PPS_OK) {
            rc = pps_sub_open(&s, cfg, "c");
        }
        if (rc != PPS_OK) {
            failf("churn open", rc);
        }
        pps_sub_close(s);
        pps_pub_close(p);
    }
    return NULL;
}

static void *
status_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&done_publishing) < PUBS && !atomic_load(&failed)) {
        int n = 0;
        int rc = pps_ctl_status(cfg, NULL, count_status, &n);
        if (rc != PPS_OK || n != 1) {
            failf("status", rc);
        }
        size_t problems = 0;
        rc = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
        if (rc != PPS_OK || problems != 0) {
            failf("check", rc);
        }
        usleep(20000);
    }
    return NULL;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int
main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/pps-tsan-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fputs("{\"pub\": {\"out_queue\": \"q\"}, \"a\": {\"in_queue\": \"q\"},"
          " \"b\": {\"in_queue\": \"q\"}, \"c\": {\"in_queue\": \"q\"},"
          " \"queues\": {\"q\": {\"path\": \"q\", \"subscribers\": [\"a\","
          " \"b\", \"c\"], \"max_db_size_bytes\": 268435456,"
          " \"durability\": \"nosync\"}}}\n",
          f);
    fclose(f);
    int rc = pps_config_load(&cfg, path);
    if (rc == PPS_OK) {
        rc = pps_ctl_init(cfg);
    }
    if (rc != PPS_OK) {
        failf("init", rc);
        return 1;
    }
    pthread_t pubs[PUBS], subs[2], churn, status;
    sub_job jobs[2] = {{.id = "a"}, {.id = "b"}};
    for (int i = 0; i < 2; i++) {
        pthread_create(&subs[i], NULL, sub_thread, &jobs[i]);
    }
    pthread_create(&churn, NULL, churn_thread, NULL);
    pthread_create(&status, NULL, status_thread, NULL);
    for (int i = 0; i < PUBS; i++) {
        pthread_create(&pubs[i], NULL, pub_thread, (void *)(intptr_t)i);
    }
    for (int i = 0; i < PUBS; i++) {
        pthread_join(pubs[i], NULL);
    }
    pthread_join(churn, NULL);
    pthread_join(status, NULL);
    for (int i = 0; i < 2; i++) {
        pthread_join(subs[i], NULL);
        if (jobs[i].count != TOTAL || jobs[i].bad != 0) {
            fprintf(stderr, "pps-tsan-threads: %s got %d of %d messages, %d "
                    "out of order\n", jobs[i].id, jobs[i].count, TOTAL,
                    jobs[i].bad);
            atomic_store(&failed, 1);
        }
    }
    size_t problems = 0;
    rc = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
    if (rc != PPS_OK || problems != 0) {
        failf("final check", rc);
    }
    pps_config_free(cfg);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (atomic_load(&failed)) {
        printf("pps-tsan-threads: FAILED\n");
        return 1;
    }
    printf("pps-tsan-threads: %d messages from %d threads to 2 subscriber "
           "threads, in order, with handles opened and closed meanwhile: "
           "ok\n", TOTAL, PUBS);
    return 0;
}
