/*
 * Deduplicating by id: a subscriber whose effect happens exactly once,
 * although delivery is at least once.
 *
 * It sums the first value of every demo.Reading it receives as SUB_ID. The
 * sum and the id of the last message it includes are one state, saved
 * atomically to STATE_FILE (written to a temporary file, flushed, renamed):
 * a message is in the saved state or it is not. If the process dies after
 * saving but before the message was consumed, the message comes again, and
 * its id, at or below the saved one, says it was already counted. It stops
 * when no message arrives for TIMEOUT_MS milliseconds.
 *
 *   pps-example-dedup CONFIG SUB_ID STATE_FILE [TIMEOUT_MS]
 */
#define _POSIX_C_SOURCE 200809L

#include "demo.pb-c.h"

#include <persipubsub/protobuf.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The application's state: its result and the id of the last message
 * counted in it, always saved together. */
struct state {
    uint64_t last_id; /* 0: none yet (ids start at 1) */
    uint64_t count;
    double sum;
};

struct app {
    const char *path;
    struct state state;
};

static int
load_state(const char *path, struct state *s)
{
    *s = (struct state){0, 0, 0.0};
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0; /* first run */
    }
    unsigned long long id, count;
    int ok = fscanf(f, "%llu %llu %lf", &id, &count, &s->sum) == 3;
    fclose(f);
    s->last_id = id;
    s->count = count;
    return ok ? 0 : -1;
}

/* Flushes the directory holding path, so that a rename in it is on disk. */
static int
sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 0 : (size_t)(slash - path);
    if (len >= sizeof(dir)) {
        return -1;
    }
    memcpy(dir, path, len);
    dir[len] = '\0';
    int fd = open(len == 0 ? (slash == NULL ? "." : "/") : dir, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Replaces the state file atomically and durably: after a crash it holds
 * all of the new state or all of the old. */
static int
save_state(const char *path, const struct state *s)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    int ok = fprintf(f, "%llu %llu %.17g\n", (unsigned long long)s->last_id,
                     (unsigned long long)s->count, s->sum) > 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        return -1;
    }
    return sync_dir(path);
}

static int
on_reading(const ProtobufCMessage *msg, const pps_message *raw, void *user)
{
    struct app *app = user;
    if (raw->id <= app->state.last_id) {
        /* Counted before the process stopped, but not consumed: consume
         * it now without counting it twice. */
        printf("id %llu: duplicate, skipped\n", (unsigned long long)raw->id);
        return 0;
    }
    const Demo__Reading *r = (const Demo__Reading *)msg;
    struct state next = app->state;
    next.last_id = raw->id;
    next.count++;
    next.sum += r->n_values > 0 ? r->values[0] : 0.0;
    if (save_state(app->path, &next) != 0) {
        return 1; /* not saved: keep the message, it comes again */
    }
    app->state = next;
    printf("id %llu: counted\n", (unsigned long long)raw->id);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG SUB_ID STATE_FILE [TIMEOUT_MS]\n",
                argv[0]);
        return 2;
    }
    int timeout_ms = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 1000;
    struct app app = {argv[3], {0, 0, 0.0}};
    if (load_state(app.path, &app.state) != 0) {
        fprintf(stderr, "dedup: %s: unreadable state\n", app.path);
        return 1;
    }

    pps_config *cfg = NULL;
    pps_sub *sub = NULL;
    int rc = pps_config_load(&cfg, argv[1]);
    if (rc == PPS_OK) {
        rc = pps_sub_open(&sub, cfg, argv[2]);
    }
    while (rc == PPS_OK) {
        rc = pps_sub_receive_pb(sub, &demo__reading__descriptor, timeout_ms,
                                on_reading, &app);
    }
    if (rc == PPS_ETIMEDOUT) {
        printf("%llu readings, sum %.2f, last id %llu\n",
               (unsigned long long)app.state.count, app.state.sum,
               (unsigned long long)app.state.last_id);
        rc = PPS_OK;
    } else {
        fprintf(stderr, "dedup: %s: %s\n", pps_strerror(rc), pps_last_error());
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    return rc == PPS_OK ? 0 : 1;
}
