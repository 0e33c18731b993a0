/*
 * Faults and hostile inputs (issue 4): a full LMDB map, a full file system,
 * a reader killed inside its read transaction, directories and files that
 * are not a queue, a read-only or vanished queue directory, oversized and
 * malformed sends, file permissions, and ids that look like paths or format
 * strings.
 *
 * Every case expects a clear status with a one-line detail naming the path,
 * no crash, and nothing written where nothing should be: the "untouched"
 * checks compare the size, the modification time and the bytes of every
 * file, and the list of files, before and after.
 *
 * Queues here use small maps (1 to 8 MiB), so comparing their files byte by
 * byte stays cheap, and "nosync" durability where the test is not about
 * durability, so the suite stays fast on a loaded machine.
 */
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS; implies _XOPEN_SOURCE 700 */
#include "pps_test.h"
#include "internal.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <sys/prctl.h>
#endif

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

/* ---- helpers -------------------------------------------------------------- */

/* A config with one queue "q" (path DIR/q), publisher "pub", subscribers s1
 * and s2, a map of map_bytes, "nosync" unless extra says otherwise (extra is
 * appended to the queue object: e.g. a "high-water-mark"). Not initialized. */
static pps_config *
small_config(const char *dir, uint64_t map_bytes, const char *extra)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"},\n"
             " \"s1\": {\"in_queue\": \"q\"},\n"
             " \"s2\": {\"in_queue\": \"q\"},\n"
             " \"queues\": {\"q\": {\"path\": \"q\",\n"
             "   \"max_db_size_bytes\": %llu,\n"
             "   \"subscribers\": [\"s1\", \"s2\"]%s%s}}}\n",
             (unsigned long long)map_bytes, extra != NULL ? ", " : "",
             extra != NULL ? extra : "");
    return pps_test_config(dir, json);
}

static pps_config *
small_queue(const char *dir, uint64_t map_bytes, const char *extra)
{
    pps_config *cfg = small_config(dir, map_bytes, extra);
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, PPS_OK, "init: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return cfg;
}

static char *
join(const char *dir, const char *name)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    char *p = strdup(buf);
    cr_assert_not_null(p);
    return p;
}

static pps_pub *
open_pub(const pps_config *cfg)
{
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, "pub");
    cr_assert_eq(rc, PPS_OK, "pub_open: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return pub;
}

static pps_sub *
open_sub(const pps_config *cfg, const char *id)
{
    pps_sub *sub = NULL;
    int rc = pps_sub_open(&sub, cfg, id);
    cr_assert_eq(rc, PPS_OK, "sub_open %s: %s: %s", id, pps_status_name(rc),
                 pps_last_error());
    return sub;
}

/* The detail of the last failure: one line, naming `path` if not NULL. */
static void
expect_detail(const char *path, const char *what)
{
    const char *e = pps_last_error();
    cr_assert(e[0] != '\0', "%s: empty pps_last_error()", what);
    cr_assert_null(strchr(e, '\n'), "%s: detail is not one line: %s", what,
                   e);
    if (path != NULL) {
        cr_assert_not_null(strstr(e, path),
                           "%s: detail does not name %s: %s", what, path, e);
    }
}

typedef struct qstat {
    uint64_t messages, map_size, map_used, next_id;
    uint64_t pending[4];
} qstat;

static int
status_cb(const pps_queue_status *st, void *user)
{
    qstat *q = user;
    q->messages = st->messages;
    q->map_size = st->map_size;
    q->map_used = st->map_used;
    q->next_id = st->next_id;
    for (size_t i = 0; i < st->n_subscribers && i < 4; i++) {
        q->pending[i] = st->subscribers[i].pending;
    }
    return 0;
}

static qstat
queue_status(const pps_config *cfg)
{
    qstat q = {0};
    int rc = pps_ctl_status(cfg, NULL, status_cb, &q);
    cr_assert_eq(rc, PPS_OK, "status: %s: %s", pps_status_name(rc),
                 pps_last_error());
    return q;
}

static void
report_problem(const char *queue_path, const char *problem, int repaired,
               void *user)
{
    (void)user;
    (void)repaired;
    cr_log_error("check: %s: %s", queue_path, problem);
}

static void
expect_consistent(const pps_config *cfg)
{
    size_t problems = 99;
    int rc = pps_ctl_check(cfg, NULL, 0, report_problem, NULL, &problems);
    cr_assert_eq(rc, PPS_OK, "check: %s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_eq(problems, 0, "check found %zu problem(s)", problems);
}

/* Payload i: a 16-byte header naming i, then a pattern of i. */
static void
make_payload(unsigned char *buf, size_t len, uint32_t i)
{
    for (size_t k = 0; k < len; k++) {
        buf[k] = (unsigned char)((i * 31u + (uint32_t)k) & 0xff);
    }
    if (len >= 16) {
        snprintf((char *)buf, 16, "m%014u", (unsigned)i);
    }
}

typedef struct expect_seq {
    size_t len;
    uint32_t next; /* the payload index expected next */
    uint64_t last_id;
    unsigned char *want;
} expect_seq;

static int
expect_cb(const pps_message *msg, void *user)
{
    expect_seq *x = user;
    if (msg->len != x->len || msg->id <= x->last_id) {
        return -1;
    }
    make_payload(x->want, x->len, x->next);
    if (memcmp(msg->data, x->want, x->len) != 0) {
        return -2;
    }
    x->next++;
    x->last_id = msg->id;
    return 0;
}

/* Receives n messages on sub, each the payload expected next. */
static void
receive_expected(pps_sub *sub, expect_seq *x, size_t n, const char *who)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pps_sub_receive(sub, 0, expect_cb, x);
        cr_assert_eq(rc, PPS_OK, "%s: message %zu of %zu (payload %u): %s: %s",
                     who, i, n, (unsigned)x->next, pps_status_name(rc),
                     pps_last_error());
    }
}

static int
ignore_cb(const pps_message *msg, void *user)
{
    (void)msg;
    (void)user;
    return 0;
}

/* Sends payloads from *next on until the send fails; returns its status
 * and how many went through in *sent. At most `cap` sends. */
static int
fill(pps_pub *pub, size_t len, uint32_t *next, size_t cap, size_t *sent)
{
    unsigned char *buf = malloc(len);
    cr_assert_not_null(buf);
    int rc = PPS_OK;
    *sent = 0;
    while (*sent < cap) {
        make_payload(buf, len, *next);
        rc = pps_pub_send(pub, buf, len);
        if (rc != PPS_OK) {
            break;
        }
        (*next)++;
        (*sent)++;
    }
    free(buf);
    return rc;
}

/* ---- snapshots of a directory tree: "untouched" ----------------------------- */

#define SNAP_MAX 64

typedef struct snap_file {
    char name[512]; /* relative to the root */
    mode_t mode;
    off_t size;
    struct timespec mtime;
    uint64_t hash; /* FNV-1a of the bytes (regular files) */
} snap_file;

typedef struct snap {
    size_t n;
    snap_file f[SNAP_MAX];
} snap;

static uint64_t
hash_file(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    unsigned char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < k; i++) {
            h = (h ^ buf[i]) * 1099511628211ull;
        }
    }
    cr_assert(k == 0, "read %s: %s", path, strerror(errno));
    close(fd);
    return h;
}

static void
snap_walk(snap *s, const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s: %s", path, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        cr_assert_lt(s->n, SNAP_MAX, "too many files under %s", root);
        snap_file *f = &s->f[s->n++];
        snprintf(f->name, sizeof(f->name), "%s%s%s", rel, rel[0] ? "/" : "",
                 de->d_name);
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", root, f->name);
        struct stat st;
        cr_assert_eq(lstat(full, &st), 0, "lstat %s: %s", full,
                     strerror(errno));
        f->mode = st.st_mode;
        f->size = S_ISREG(st.st_mode) ? st.st_size : 0;
        f->mtime = S_ISREG(st.st_mode) ? st.st_mtim : (struct timespec){0};
        f->hash = S_ISREG(st.st_mode) ? hash_file(full) : 0;
        if (S_ISDIR(st.st_mode)) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s", f->name);
            snap_walk(s, root, sub);
        }
    }
    closedir(d);
}

static int
snap_cmp(const void *a, const void *b)
{
    return strcmp(((const snap_file *)a)->name, ((const snap_file *)b)->name);
}

static snap *
snap_take(const char *root)
{
    snap *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    snap_walk(s, root, "");
    qsort(s->f, s->n, sizeof(s->f[0]), snap_cmp);
    return s;
}

/* Fails unless the tree under root is as in `before`: same files, same
 * type, mode, size, modification time and bytes. */
static void
expect_untouched(const char *root, snap *before, const char *what)
{
    snap *after = snap_take(root);
    for (size_t i = 0; i < before->n || i < after->n; i++) {
        cr_assert(i < before->n, "%s: new file %s", what, after->f[i].name);
        cr_assert(i < after->n, "%s: file %s vanished", what,
                  before->f[i].name);
        const snap_file *a = &before->f[i], *b = &after->f[i];
        cr_assert_str_eq(a->name, b->name, "%s: files differ: %s vs %s",
                         what, a->name, b->name);
        cr_assert_eq(a->mode, b->mode, "%s: mode of %s changed: %o -> %o",
                     what, a->name, (unsigned)a->mode, (unsigned)b->mode);
        const char *base = strrchr(a->name, '/');
        if (strcmp(base != NULL ? base + 1 : a->name, "lock.mdb") == 0) {
            /* LMDB's lock file is its run-time state (reader table,
             * mutexes): every opener of an environment rewrites it, by
             * LMDB's design. Only its existence and mode count. */
            continue;
        }
        cr_assert_eq(a->size, b->size, "%s: size of %s changed: %lld -> %lld",
                     what, a->name, (long long)a->size, (long long)b->size);
        cr_assert(a->mtime.tv_sec == b->mtime.tv_sec &&
                      a->mtime.tv_nsec == b->mtime.tv_nsec,
                  "%s: modification time of %s changed", what, a->name);
        cr_assert_eq(a->hash, b->hash, "%s: bytes of %s changed", what,
                     a->name);
    }
    free(after);
}

/* ---- a full map ----------------------------------------------------------- */

#define FULL_MSG 2000

/* Fills a 1 MiB map with messages of `len` bytes, then both subscribers
 * drain it one message (one commit) at a time: consumption copies pages
 * too, so a map filled to its last page could not be drained. */
static void
map_full_receivers_go_on(size_t len)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 1 * MIB, "\"durability\": \"nosync\"");
    char *qpath = join(dir, "q");
    pps_pub *pub = open_pub(cfg);
    pps_sub *s1 = open_sub(cfg, "s1");
    pps_sub *s2 = open_sub(cfg, "s2");

    uint32_t next = 0;
    size_t sent = 0;
    int rc = fill(pub, len, &next, 100000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "a 1 MiB map took %zu messages of %zu bytes "
                 "and then: %s: %s", sent, len, pps_status_name(rc),
                 pps_last_error());
    cr_assert_gt(sent, 50, "only %zu messages fit into 1 MiB", sent);
    expect_detail(qpath, "send into a full map");
    cr_assert_not_null(strstr(pps_last_error(), "max_db_size_bytes"),
                       "the detail does not say what to do: %s",
                       pps_last_error());
    cr_log_info("1 MiB map full after %zu messages of %zu bytes: %s", sent,
                len, pps_last_error());

    /* Nothing of the failed send is stored, and nothing else broke. */
    qstat st = queue_status(cfg);
    cr_assert_eq(st.messages, sent);
    cr_assert_eq(st.next_id, sent + 1, "the failed send used an id");
    cr_assert_eq(st.pending[0], sent);
    cr_assert_eq(st.pending[1], sent);
    expect_consistent(cfg);
    unsigned char one = 'x';
    rc = pps_pub_send(pub, &one, 1);
    cr_assert(rc == PPS_EFULL || rc == PPS_OK, "tiny send: %s: %s",
              pps_status_name(rc), pps_last_error());
    size_t extra = rc == PPS_OK ? 1 : 0;

    /* Receivers go on while the map is full. s1 takes everything; the
     * payloads stay for s2, so the map is still full. */
    expect_seq x1 = {.len = len, .want = malloc(len)};
    receive_expected(s1, &x1, sent, "s1 on a full map");
    if (extra) {
        cr_assert_eq(pps_sub_receive(s1, 0, ignore_cb, NULL), PPS_OK);
    }
    cr_assert_eq(pps_sub_receive(s1, 0, ignore_cb, NULL), PPS_ETIMEDOUT);
    /* s2 takes half; then all. */
    expect_seq x2 = {.len = len, .want = malloc(len)};
    receive_expected(s2, &x2, sent / 2, "s2 on a full map");
    receive_expected(s2, &x2, sent - sent / 2, "s2, second half");
    if (extra) {
        cr_assert_eq(pps_sub_receive(s2, 0, ignore_cb, NULL), PPS_OK);
    }
    expect_consistent(cfg);

    /* Everything consumed: the space is free again. */
    size_t again = 0;
    uint32_t before = next;
    rc = fill(pub, len, &next, sent / 2, &again);
    cr_assert_eq(rc, PPS_OK, "after consuming everything, send %zu: %s: %s",
                 again, pps_status_name(rc), pps_last_error());
    x1.next = before;
    receive_expected(s1, &x1, again, "s1 after the map emptied");
    x2.next = before;
    receive_expected(s2, &x2, again, "s2 after the map emptied");
    expect_consistent(cfg);

    free(x1.want);
    free(x2.want);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, map_full_send_efull_receivers_go_on, .timeout = 120)
{
    map_full_receivers_go_on(FULL_MSG);
}

Test(hostile, map_full_of_small_messages_receivers_go_on, .timeout = 120)
{
    map_full_receivers_go_on(16);
}

Test(hostile, map_full_then_clear_sends_again, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 1 * MIB, "\"durability\": \"nosync\"");
    pps_pub *pub = open_pub(cfg);
    uint32_t next = 0;
    size_t sent = 0;
    int rc = fill(pub, FULL_MSG, &next, 5000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    pps_removed removed = {0};
    rc = pps_ctl_clear_queue(cfg, NULL, &removed);
    cr_assert_eq(rc, PPS_OK, "clear on a full map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_eq(removed.messages, sent);
    expect_consistent(cfg);
    size_t again = 0;
    rc = fill(pub, FULL_MSG, &next, sent / 2, &again);
    cr_assert_eq(rc, PPS_OK, "after clear, send %zu: %s: %s", again,
                 pps_status_name(rc), pps_last_error());
    /* And it fills up again to about the same point. */
    size_t more = 0;
    rc = fill(pub, FULL_MSG, &next, 5000, &more);
    cr_assert_eq(rc, PPS_EFULL);
    cr_assert_geq(again + more + 8, sent, "a cleared map took only %zu "
                  "messages, %zu before", again + more, sent);
    pps_sub *s1 = open_sub(cfg, "s1");
    expect_seq x = {.len = FULL_MSG, .want = malloc(FULL_MSG),
                    .next = next - (uint32_t)(again + more)};
    receive_expected(s1, &x, again + more, "s1 after clear");
    free(x.want);
    expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, map_full_then_prune_sends_again, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    /* Messages dangle after 2 s; 8000-byte messages fill 1 MiB in about
     * 120 sends, far faster than that even under load. */
    pps_config *cfg = small_queue(
        dir, 1 * MIB,
        "\"durability\": \"nosync\", \"high-water-mark\": "
        "{\"MSG_TIMEOUT_SECS\": 2}");
    pps_pub *pub = open_pub(cfg);
    uint32_t next = 0;
    size_t sent = 0;
    int rc = fill(pub, 8000, &next, 5000, &sent);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    sleep(3);
    pps_removed removed = {0};
    rc = pps_ctl_prune_queue(cfg, NULL, &removed);
    cr_assert_eq(rc, PPS_OK, "prune on a full map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    cr_assert_gt(removed.messages, 0, "prune removed nothing");
    expect_consistent(cfg);
    size_t again = 0;
    rc = fill(pub, 8000, &next, 20, &again);
    cr_assert_eq(rc, PPS_OK, "after prune, send %zu: %s: %s", again,
                 pps_status_name(rc), pps_last_error());
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, hwm_size_below_map_prunes_before_the_map_fills, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(
        dir, 1 * MIB,
        "\"durability\": \"nosync\", \"high-water-mark\": "
        "{\"HWM_LMDB_SIZE_BYTES\": 262144, \"strategy\": \"prune_first\"}");
    pps_pub *pub = open_pub(cfg);
    pps_sub *s1 = open_sub(cfg, "s1");
    uint32_t next = 0;
    size_t sent = 0;
    /* 4 MB through a 1 MiB map, nobody consuming: only the mark keeps it
     * from filling. */
    int rc = fill(pub, FULL_MSG, &next, 2000, &sent);
    cr_assert_eq(rc, PPS_OK, "send %zu with a 256 KiB mark in a 1 MiB map: "
                 "%s: %s", sent, pps_status_name(rc), pps_last_error());
    qstat st = queue_status(cfg);
    cr_assert_lt(st.messages, 200, "%llu messages kept under a 256 KiB mark",
                 (unsigned long long)st.messages);
    cr_assert_gt(st.messages, 0);
    expect_consistent(cfg);
    /* What is left is the newest, in order, and ends with the last sent. */
    expect_seq x = {.len = FULL_MSG, .want = malloc(FULL_MSG),
                    .next = next - (uint32_t)st.messages};
    receive_expected(s1, &x, st.messages, "s1 after pruning");
    cr_assert_eq(x.next, next);
    free(x.want);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- oversized and malformed sends ---------------------------------------- */

Test(hostile, oversized_message_is_efull_and_nothing_is_written,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 1 * MIB, "\"durability\": \"nosync\"");
    char *qpath = join(dir, "q");
    pps_pub *pub = open_pub(cfg);
    cr_assert_eq(pps_pub_send(pub, "before", 6), PPS_OK);
    qstat st0 = queue_status(cfg);

    size_t big = 2 * MIB;
    unsigned char *buf = malloc(big);
    cr_assert_not_null(buf);
    memset(buf, 'B', big);
    int rc = pps_pub_send(pub, buf, big);
    cr_assert_eq(rc, PPS_EFULL, "a 2 MiB message into a 1 MiB map: %s: %s",
                 pps_status_name(rc), pps_last_error());
    expect_detail(qpath, "oversized send");
    /* Just under the map: still too big, once it counts its pages. */
    rc = pps_pub_send(pub, buf, 1 * MIB - 4096);
    cr_assert_eq(rc, PPS_EFULL, "a message of the map's size: %s: %s",
                 pps_status_name(rc), pps_last_error());
    /* A batch with one oversized entry: none of it. */
    pps_buf batch[3] = {{"a", 1}, {buf, big}, {"c", 1}};
    rc = pps_pub_send_many(pub, batch, 3);
    cr_assert_eq(rc, PPS_EFULL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    free(buf);

    qstat st1 = queue_status(cfg);
    cr_assert_eq(st1.messages, st0.messages, "a failed send left messages");
    cr_assert_eq(st1.next_id, st0.next_id, "a failed send used ids");
    expect_consistent(cfg);
    cr_assert_eq(pps_pub_send(pub, "after", 5), PPS_OK, "%s",
                 pps_last_error());
    pps_sub *s1 = open_sub(cfg, "s1");
    pps_test_sink sink = {0};
    while (pps_sub_receive(s1, 0, pps_test_collect, &sink) == PPS_OK) {
    }
    cr_assert_eq(sink.n, 2);
    cr_assert_str_eq(sink.data[0], "before");
    cr_assert_str_eq(sink.data[1], "after");
    cr_assert_eq(sink.ids[1], sink.ids[0] + 1, "ids skipped over the "
                 "failed sends: %llu, %llu", (unsigned long long)sink.ids[0],
                 (unsigned long long)sink.ids[1]);
    pps_test_sink_free(&sink);
    pps_sub_close(s1);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, send_many_with_a_null_entry_is_einval_and_nothing_is_written,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 1 * MIB, "\"durability\": \"nosync\"");
    pps_pub *pub = open_pub(cfg);
    qstat st0 = queue_status(cfg);
    pps_buf batch[4] = {{"a", 1}, {"b", 1}, {NULL, 3}, {"d", 1}};
    int rc = pps_pub_send_many(pub, batch, 4);
    cr_assert_eq(rc, PPS_EINVAL, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    expect_detail(NULL, "send_many with a NULL entry");
    cr_assert_not_null(strstr(pps_last_error(), "2"),
                       "the detail does not name entry 2: %s",
                       pps_last_error());
    rc = pps_pub_send_many(pub, NULL, 2);
    cr_assert_eq(rc, PPS_EINVAL);
    rc = pps_pub_send(pub, NULL, 5);
    cr_assert_eq(rc, PPS_EINVAL);
    /* A NULL entry of length 0 is an empty message, as for send. */
    pps_buf ok[2] = {{NULL, 0}, {"z", 1}};
    cr_assert_eq(pps_pub_send_many(pub, ok, 2), PPS_OK, "%s",
                 pps_last_error());
    qstat st1 = queue_status(cfg);
    cr_assert_eq(st1.messages, st0.messages + 2);
    cr_assert_eq(st1.next_id, st0.next_id + 2);
    pps_sub *s1 = open_sub(cfg, "s1");
    pps_test_sink sink = {0};
    while (pps_sub_receive(s1, 0, pps_test_collect, &sink) == PPS_OK) {
    }
    cr_assert_eq(sink.n, 2);
    cr_assert_eq(sink.lens[0], 0);
    cr_assert_str_eq(sink.data[1], "z");
    pps_test_sink_free(&sink);
    expect_consistent(cfg);
    pps_sub_close(s1);
    pps_pub_close(pub);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- a reader killed inside its read transaction --------------------------- */

static int
block_forever_cb(const pps_message *msg, void *user)
{
    (void)msg;
    int fd = *(int *)user;
    char c = 'r';
    if (write(fd, &c, 1) != 1) {
        _exit(3);
    }
    for (;;) {
        pause(); /* SIGKILLed here, holding the read transaction */
    }
    return 0;
}

Test(hostile, reader_killed_holding_a_read_txn_does_not_pin_the_map,
     .timeout = 180)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 4 * MIB, "\"durability\": \"nosync\"");
    char *path = join(dir, "config.json");
    /* This process's handles are opened before the reader dies and kept:
     * a long-running publisher and subscriber. */
    pps_pub *pub = open_pub(cfg);
    pps_sub *s1 = open_sub(cfg, "s1");
    pps_sub *s2 = open_sub(cfg, "s2");
    cr_assert_eq(pps_pub_send(pub, "held", 4), PPS_OK);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent) {
            _exit(2);
        }
        alarm(120);
        close(p[0]);
        pps_config *c = NULL;
        pps_sub *sub = NULL;
        if (pps_config_load(&c, path) != PPS_OK ||
            pps_sub_open(&sub, c, "s2") != PPS_OK) {
            _exit(1);
        }
        pps_sub_receive(sub, 30000, block_forever_cb, &p[1]);
        _exit(4);
    }
    close(p[1]);
    char c = 0;
    cr_assert_eq(read(p[0], &c, 1), 1, "the reader did not start");
    close(p[0]);
    kill(pid, SIGKILL);
    int ws = pps_test_wait(pid);
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL,
              "reader exited on its own: 0x%x", ws);

    /* The dead reader's slot pins the snapshot it read: no page freed
     * after it can be reused while the slot stands. Pass 24 MB through the
     * 4 MiB map with the handles opened before the kill (a long-running
     * publisher and subscriber, which open nothing more): if the slot were
     * never reclaimed, sends and even consuming would fail with
     * PPS_EFULL on an almost empty queue. */
    enum { ROUNDS = 60, PER_ROUND = 100, LEN = 4000 };
    unsigned char buf[LEN];
    cr_assert_eq(pps_sub_receive(s1, 0, ignore_cb, NULL), PPS_OK);
    cr_assert_eq(pps_sub_receive(s2, 0, ignore_cb, NULL), PPS_OK);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            make_payload(buf, LEN, (uint32_t)(r * PER_ROUND + i));
            int rc = pps_pub_send(pub, buf, LEN);
            cr_assert_eq(rc, PPS_OK,
                         "send %d after %d MB passed through a 4 MiB map with "
                         "a dead reader: %s: %s",
                         r * PER_ROUND + i,
                         (r * PER_ROUND + i) * LEN / 1000000,
                         pps_status_name(rc), pps_last_error());
        }
        for (int i = 0; i < PER_ROUND; i++) {
            int rc = pps_sub_receive(s1, 0, ignore_cb, NULL);
            if (rc == PPS_OK) {
                rc = pps_sub_receive(s2, 0, ignore_cb, NULL);
            }
            cr_assert_eq(rc, PPS_OK,
                         "receive %d after %d MB passed through a 4 MiB map "
                         "with a dead reader: %s: %s",
                         r * PER_ROUND + i,
                         (r * PER_ROUND + i) * LEN / 1000000,
                         pps_status_name(rc), pps_last_error());
        }
    }
    qstat st = queue_status(cfg);
    cr_log_info("after %d MB: map used %llu of %llu bytes",
                ROUNDS * PER_ROUND * LEN / 1000000,
                (unsigned long long)st.map_used,
                (unsigned long long)st.map_size);
    cr_assert_eq(st.messages, 0);
    cr_assert_leq(st.map_used, st.map_size);
    expect_consistent(cfg);
    pps_sub_close(s1);
    pps_sub_close(s2);
    pps_pub_close(pub);
    free(path);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- what is not a queue ---------------------------------------------------- */

/* Every way in (open a publisher or subscriber, status, check, prune,
 * clear) refuses with `want` (or `alt`), names qpath, and opens nothing. */
static void
expect_refused(const pps_config *cfg, const char *qpath, int want, int alt,
               const char *what)
{
    char label[256];
    pps_pub *pub = (pps_pub *)&pub;
    int rc = pps_pub_open(&pub, cfg, "pub");
    snprintf(label, sizeof(label), "%s: pps_pub_open", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    cr_assert_null(pub);
    expect_detail(qpath, label);

    pps_sub *sub = (pps_sub *)&sub;
    rc = pps_sub_open(&sub, cfg, "s1");
    snprintf(label, sizeof(label), "%s: pps_sub_open", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    cr_assert_null(sub);
    expect_detail(qpath, label);

    qstat q;
    rc = pps_ctl_status(cfg, NULL, status_cb, &q);
    snprintf(label, sizeof(label), "%s: pps_ctl_status", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, label);

    size_t problems = 0;
    rc = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
    snprintf(label, sizeof(label), "%s: pps_ctl_check", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, label);

    rc = pps_ctl_check(cfg, NULL, 1, NULL, NULL, &problems);
    snprintf(label, sizeof(label), "%s: pps_ctl_check with repair", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, label);

    rc = pps_ctl_prune(cfg);
    snprintf(label, sizeof(label), "%s: pps_ctl_prune", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, label);

    rc = pps_ctl_clear(cfg);
    snprintf(label, sizeof(label), "%s: pps_ctl_clear", what);
    cr_assert(rc == want || rc == alt, "%s: %s: %s", label,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, label);
}

/* Runs expect_refused() and checks that the tree under dir is untouched;
 * then, if init_too, that pps_ctl_init refuses as well and touches nothing. */
static void
expect_not_a_queue(const char *dir, const pps_config *cfg, int want, int alt,
                   const char *what)
{
    char *qpath = join(dir, "q");
    snap *before = snap_take(dir);
    expect_refused(cfg, qpath, want, alt, what);
    expect_untouched(dir, before, what);
    free(before);
    free(qpath);
}

static void
expect_init_refused(const char *dir, const pps_config *cfg, int want,
                    int alt, const char *what)
{
    char *qpath = join(dir, "q");
    snap *before = snap_take(dir);
    int rc = pps_ctl_init(cfg);
    cr_assert(rc == want || rc == alt, "%s: pps_ctl_init: %s: %s", what,
              pps_status_name(rc), pps_last_error());
    expect_detail(qpath, what);
    expect_untouched(dir, before, what);
    free(before);
    free(qpath);
}

Test(hostile, empty_directory_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_config(dir, 1 * MIB, NULL);
    char *qpath = join(dir, "q");
    cr_assert_eq(mkdir(qpath, 0700), 0);
    expect_not_a_queue(dir, cfg, PPS_ENOTINIT, PPS_ENOTINIT,
                       "an empty directory");
    /* init makes it one. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *pub = open_pub(cfg);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, missing_directory_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_config(dir, 1 * MIB, NULL);
    expect_not_a_queue(dir, cfg, PPS_ENOTINIT, PPS_ENOTINIT,
                       "a missing directory");
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, plain_file_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_config(dir, 1 * MIB, NULL);
    char *f = pps_test_write(dir, "q", "not a queue\n");
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN, "a plain file");
    expect_init_refused(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN,
                        "init on a plain file");
    free(f);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A directory of another LMDB application: data.mdb and lock.mdb with a
 * database of its own, and no pps.wake. */
static void
make_foreign_lmdb(const char *qpath)
{
    cr_assert_eq(mkdir(qpath, 0700), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 256 * KIB), 0);
    int rc = mdb_env_open(env, qpath, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "app.table", MDB_CREATE, &dbi), 0);
    MDB_val k = {5, "hello"}, v = {5, "world"};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(hostile, other_lmdb_application_is_not_a_queue, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_config(dir, 1 * MIB, NULL);
    char *qpath = join(dir, "q");
    make_foreign_lmdb(qpath);
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN,
                       "another application's LMDB environment");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, init_refuses_other_lmdb_application, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_config(dir, 1 * MIB, NULL);
    char *qpath = join(dir, "q");
    make_foreign_lmdb(qpath);
    /* init creates queues, but must not turn another application's LMDB
     * environment into one (nor grow its file to the map size). */
    expect_init_refused(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN,
                        "init on another application's LMDB environment");
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* Initializes the queue, sends a few messages, and closes everything. */
static pps_config *
queue_with_messages(const char *dir)
{
    pps_config *cfg = small_queue(dir, 1 * MIB, NULL);
    pps_pub *pub = open_pub(cfg);
    unsigned char buf[3000];
    for (uint32_t i = 0; i < 40; i++) {
        make_payload(buf, sizeof(buf), i);
        cr_assert_eq(pps_pub_send(pub, buf, sizeof(buf)), PPS_OK);
    }
    pps_pub_close(pub);
    return cfg;
}

Test(hostile, newer_format_version_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = queue_with_messages(dir);
    char *qpath = join(dir, "q");
    /* Rewrite "format" with plain LMDB, as a future version would. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 1 * MIB), 0);
    int rc = mdb_env_open(env, qpath, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "pps.meta", 0, &dbi), 0);
    uint32_t v2 = 2;
    MDB_val k = {6, "format"}, v = {sizeof(v2), &v2};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    /* A configuration with a larger map must not grow the file of a queue
     * it cannot read. */
    pps_config *bigger = small_config(dir, 2 * MIB, NULL);
    expect_not_a_queue(dir, bigger, PPS_EVERSION, PPS_EVERSION,
                       "a queue of format version 2, config with a larger "
                       "map");
    cr_assert_not_null(strstr(pps_last_error(), "2"), "%s", pps_last_error());
    expect_init_refused(dir, bigger, PPS_EVERSION, PPS_EVERSION,
                        "init on a queue of format version 2 with a larger "
                        "map");
    pps_config_free(bigger);
    /* Nor touch it with the map size it was made with. */
    pps_config *same = small_config(dir, 1 * MIB, NULL);
    expect_not_a_queue(dir, same, PPS_EVERSION, PPS_EVERSION,
                       "a queue of format version 2");
    expect_init_refused(dir, same, PPS_EVERSION, PPS_EVERSION,
                        "init on a queue of format version 2");
    pps_config_free(same);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, truncated_data_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = queue_with_messages(dir);
    char *data = join(dir, "q/data.mdb");
    /* Keep the two meta pages and a little more: the trees they point to
     * are cut off. */
    cr_assert_eq(truncate(data, 3 * 4096), 0);
    expect_not_a_queue(dir, cfg, PPS_ESTORAGE, PPS_ENOTINIT,
                       "a truncated data.mdb");
    expect_init_refused(dir, cfg, PPS_ESTORAGE, PPS_ENOTINIT,
                        "init on a truncated data.mdb");
    free(data);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, garbage_data_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = queue_with_messages(dir);
    char *data = join(dir, "q/data.mdb");
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    FILE *f = fopen(data, "r+b");
    cr_assert_not_null(f);
    uint64_t x = 88172645463325252ull;
    for (off_t i = 0; i < st.st_size; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        cr_assert_eq(fwrite(&x, 8, 1, f), 1);
    }
    cr_assert_eq(fclose(f), 0);
    expect_not_a_queue(dir, cfg, PPS_ESTORAGE, PPS_ENOTINIT,
                       "a garbage data.mdb");
    expect_init_refused(dir, cfg, PPS_ESTORAGE, PPS_ENOTINIT,
                        "init on a garbage data.mdb");
    free(data);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, garbage_wake_file_is_refused_untouched, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = queue_with_messages(dir);
    char *wake = join(dir, "q/pps.wake");
    char junk[4096];
    memset(junk, 'J', sizeof(junk));
    FILE *f = fopen(wake, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(junk, sizeof(junk), 1, f), 1);
    cr_assert_eq(fclose(f), 0);
    expect_not_a_queue(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN,
                       "a garbage pps.wake");
    expect_init_refused(dir, cfg, PPS_EFOREIGN, PPS_EFOREIGN,
                        "init on a garbage pps.wake");
    free(wake);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- disk problems ---------------------------------------------------------- */

/* Runs fn(arg) in a child as user and group "nobody" (65534) and returns
 * its exit status; -1 if this process cannot change users (the test is
 * then skipped by the caller). Root ignores permission bits, so this is the
 * only way to see what a user without write access meets. */
static int
run_as_nobody(void (*fn)(void *), void *arg)
{
    if (geteuid() != 0) {
        fn(arg); /* already unprivileged: permission bits apply */
        return 0;
    }
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        alarm(60);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
            setuid(65534) != 0) {
            _exit(77);
        }
        fn(arg);
        _exit(0);
    }
    int st = pps_test_wait(pid);
    cr_assert(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

typedef struct ro_case {
    const pps_config *cfg;
    const char *qpath;
} ro_case;

static void
ro_child(void *arg)
{
    const ro_case *c = arg;
    pps_pub *pub = NULL;
    pps_sub *sub = NULL;
    int rc = pps_pub_open(&pub, c->cfg, "pub");
    if (rc == PPS_OK || pub != NULL) {
        fprintf(stderr, "pub_open on a read-only queue: %s\n",
                pps_status_name(rc));
        _exit(10);
    }
    if (rc != PPS_ESTORAGE || strstr(pps_last_error(), c->qpath) == NULL) {
        fprintf(stderr, "pub_open: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(11);
    }
    rc = pps_sub_open(&sub, c->cfg, "s1");
    if (rc != PPS_ESTORAGE || sub != NULL ||
        strstr(pps_last_error(), c->qpath) == NULL) {
        fprintf(stderr, "sub_open: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(12);
    }
    if (strstr(pps_last_error(), "ermission") == NULL) {
        fprintf(stderr, "the detail does not say why: %s\n",
                pps_last_error());
        _exit(13);
    }
    qstat q;
    rc = pps_ctl_status(c->cfg, NULL, status_cb, &q);
    if (rc != PPS_ESTORAGE) {
        fprintf(stderr, "status: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(14);
    }
    rc = pps_ctl_init(c->cfg);
    if (rc != PPS_ESTORAGE) {
        fprintf(stderr, "init: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(15);
    }
}

Test(hostile, read_only_queue_directory_is_a_clear_error, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = queue_with_messages(dir);
    char *qpath = join(dir, "q");
    const char *files[] = {"data.mdb", "lock.mdb", "pps.wake"};
    cr_assert_eq(chmod(dir, 0755), 0);
    for (size_t i = 0; i < 3; i++) {
        char *f = join(qpath, files[i]);
        cr_assert_eq(chmod(f, 0444), 0);
        free(f);
    }
    cr_assert_eq(chmod(qpath, 0555), 0);
    snap *before = snap_take(dir);
    ro_case c = {cfg, qpath};
    int code = run_as_nobody(ro_child, &c);
    if (code == 77) {
        cr_skip_test("running as root and cannot switch to user nobody: "
                     "root ignores permission bits");
    }
    cr_assert_eq(code, 0, "read-only queue: child failed with %d (see its "
                 "stderr)", code);
    expect_untouched(dir, before, "a read-only queue");
    free(before);
    cr_assert_eq(chmod(qpath, 0700), 0);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

static int
rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return unlink(path);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        rm_tree(sub);
    }
    closedir(d);
    return rmdir(path);
}

Test(hostile, queue_directory_removed_while_open, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = small_queue(dir, 1 * MIB, "\"durability\": \"sync\"");
    char *qpath = join(dir, "q");
    pps_pub *pub = open_pub(cfg);
    pps_sub *s1 = open_sub(cfg, "s1");
    cr_assert_eq(pps_pub_send(pub, "one", 3), PPS_OK);
    cr_assert_eq(rm_tree(qpath), 0, "rm -rf %s: %s", qpath, strerror(errno));

    /* Handles open on the removed files either keep working on them or
     * fail with a clear status; nothing crashes. */
    pps_test_sink sink = {0};
    for (int i = 0; i < 20; i++) {
        int rc = pps_pub_send(pub, "two", 3);
        cr_assert(rc == PPS_OK || rc == PPS_ESTORAGE,
                  "send after rm -rf: %s: %s", pps_status_name(rc),
                  pps_last_error());
        if (rc != PPS_OK) {
            expect_detail(qpath, "send after rm -rf");
        }
        rc = pps_sub_receive(s1, 0, pps_test_collect, &sink);
        cr_assert(rc == PPS_OK || rc == PPS_ETIMEDOUT || rc == PPS_ESTORAGE,
                  "receive after rm -rf: %s: %s", pps_status_name(rc),
                  pps_last_error());
    }
    cr_log_info("after rm -rf: %zu message(s) received on the open handle",
                sink.n);
    pps_test_sink_free(&sink);

    /* New handles see that the queue is gone. */
    pps_pub *p2 = NULL;
    int rc = pps_pub_open(&p2, cfg, "pub");
    cr_assert_eq(rc, PPS_ENOTINIT, "pub_open after rm -rf: %s: %s",
                 pps_status_name(rc), pps_last_error());
    expect_detail(qpath, "pub_open after rm -rf");
    qstat q;
    rc = pps_ctl_status(cfg, NULL, status_cb, &q);
    cr_assert_eq(rc, PPS_ENOTINIT, "status after rm -rf: %s: %s",
                 pps_status_name(rc), pps_last_error());

    /* init makes a new queue; the old handles still do not crash. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    pps_pub *fresh = open_pub(cfg);
    pps_sub *fresh_sub = open_sub(cfg, "s1");
    cr_assert_eq(pps_pub_send(fresh, "new", 3), PPS_OK, "%s",
                 pps_last_error());
    rc = pps_pub_send(pub, "old", 3);
    cr_assert(rc == PPS_OK || rc == PPS_ESTORAGE, "%s", pps_status_name(rc));
    rc = pps_sub_receive(fresh_sub, 0, pps_test_collect, &sink);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_str_eq(sink.data[0], "new");
    pps_test_sink_free(&sink);
    expect_consistent(cfg);
    pps_sub_close(fresh_sub);
    pps_pub_close(fresh);
    pps_sub_close(s1);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* A file system that fills up before the map does. The queue's data.mdb is
 * a sparse file the size of the map (MDB_WRITEMAP); writing into its holes
 * on a full file system must give PPS_EFULL, not a SIGBUS. Runs in a child
 * with its own mount namespace and a 2 MiB tmpfs; skipped where mounting is
 * not allowed. */
static void
on_sigbus(int sig)
{
    (void)sig;
    static const char text[] = "SIGBUS: a write into the memory map hit a "
                               "hole the file system could not fill\n";
    ssize_t w = write(2, text, sizeof(text) - 1);
    (void)w;
    _exit(86);
}

static int
full_fs_cb(const pps_message *msg, void *user)
{
    (void)user;
    return msg->len == 8000 ? 0 : 1;
}

static void
full_fs_child(const char *mnt)
{
    /* Report a SIGBUS by an exit code (also under AddressSanitizer, which
     * otherwise turns it into a report and exit code 1). */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
#ifdef __linux__
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
        _exit(77);
    }
#else
    _exit(77);
#endif
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\","
             " \"max_db_size_bytes\": 16777216, \"subscribers\": [\"s1\"],"
             " \"durability\": \"nosync\"}}}",
             mnt);
    char cfgpath[4096];
    snprintf(cfgpath, sizeof(cfgpath), "%s/../full.json", mnt);
    FILE *f = fopen(cfgpath, "w");
    if (f == NULL) {
        _exit(20);
    }
    fputs(json, f);
    fclose(f);
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, cfgpath) != PPS_OK) {
        _exit(21);
    }
    int rc = pps_ctl_init(cfg);
    if (rc != PPS_OK) {
        /* Refusing a map larger than the free space is a clear error too. */
        fprintf(stderr, "init on a 2 MiB file system: %s: %s\n",
                pps_status_name(rc), pps_last_error());
        _exit(rc == PPS_EFULL ? 0 : 22);
    }
    pps_pub *pub = NULL;
    if (pps_pub_open(&pub, cfg, "pub") != PPS_OK) {
        _exit(23);
    }
    unsigned char buf[8000];
    memset(buf, 'F', sizeof(buf));
    for (int i = 0; i < 4000; i++) {
        rc = pps_pub_send(pub, buf, sizeof(buf));
        if (rc != PPS_OK) {
            fprintf(stderr, "full file system after %d sends: %s: %s\n", i,
                    pps_status_name(rc), pps_last_error());
            if (rc != PPS_EFULL) {
                _exit(24);
            }
            /* The subscriber goes on: consuming writes pages too. */
            pps_sub *sub = NULL;
            if (pps_sub_open(&sub, cfg, "s1") != PPS_OK) {
                _exit(26);
            }
            for (int j = 0; j < i; j++) {
                rc = pps_sub_receive(sub, 0, full_fs_cb, NULL);
                if (rc != PPS_OK) {
                    fprintf(stderr, "receive %d of %d on a full file system: "
                            "%s: %s\n", j, i, pps_status_name(rc),
                            pps_last_error());
                    _exit(27);
                }
            }
            pps_sub_close(sub);
            _exit(0);
        }
    }
    _exit(25); /* 32 MB into 2 MiB? */
}

Test(hostile, full_file_system_is_efull_not_a_crash, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    char *mnt = join(dir, "mnt");
    cr_assert_eq(mkdir(mnt, 0700), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        alarm(50);
        full_fs_child(mnt);
    }
    int st = pps_test_wait(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        cr_skip_test("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN "
                     "and unshare)");
    }
    cr_assert(!WIFSIGNALED(st),
              "a send on a full file system killed the process with signal "
              "%d (%s)",
              WTERMSIG(st), strsignal(WTERMSIG(st)));
    cr_assert_neq(WEXITSTATUS(st), 86,
                  "a send on a full file system died of SIGBUS (MDB_WRITEMAP "
                  "over a sparse data.mdb): it must fail with PPS_EFULL");
    cr_assert_eq(WEXITSTATUS(st), 0, "child failed with %d",
                 WEXITSTATUS(st));
    free(mnt);
    pps_test_cleanup(dir);
}

/* ---- security: file modes ----------------------------------------------------- */

static void
expect_modes(const char *qpath, unsigned dir_mode, unsigned file_mode,
             const char *what)
{
    struct stat st;
    cr_assert_eq(stat(qpath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, dir_mode,
                 "%s: queue directory mode %o, expected %o", what,
                 (unsigned)(st.st_mode & 07777), dir_mode);
    const char *files[] = {"data.mdb", "lock.mdb", "pps.wake"};
    for (size_t i = 0; i < 3; i++) {
        char *f = join(qpath, files[i]);
        cr_assert_eq(stat(f, &st), 0, "%s", f);
        cr_assert_eq(st.st_mode & 07777, file_mode,
                     "%s: %s mode %o, expected %o", what, files[i],
                     (unsigned)(st.st_mode & 07777), file_mode);
        free(f);
    }
}

static void
modes_with_umask(mode_t mask, const char *extra, unsigned dmode,
                 unsigned fmode)
{
    char *dir = pps_test_tmpdir();
    mode_t old = umask(mask);
    pps_config *cfg = small_queue(dir, 1 * MIB, extra);
    umask(old);
    char *qpath = join(dir, "q");
    char what[64];
    snprintf(what, sizeof(what), "umask %03o", (unsigned)mask);
    expect_modes(qpath, dmode, fmode, what);
    /* A publisher and a subscriber opened later change nothing. */
    umask(mask);
    pps_pub *pub = open_pub(cfg);
    pps_sub *sub = open_sub(cfg, "s1");
    umask(old);
    cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    expect_modes(qpath, dmode, fmode, what);
    pps_sub_close(sub);
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, default_modes_are_owner_only_with_umask_0, .timeout = 60)
{
    modes_with_umask(0, NULL, 0700, 0600);
}

Test(hostile, default_modes_are_owner_only_with_umask_022, .timeout = 60)
{
    modes_with_umask(022, NULL, 0700, 0600);
}

Test(hostile, mode_0660_gives_group_access, .timeout = 60)
{
    modes_with_umask(022, "\"mode\": \"0660\"", 0770, 0660);
    modes_with_umask(0, "\"mode\": \"0660\"", 0770, 0660);
}

Test(hostile, mode_0640_gives_group_read, .timeout = 60)
{
    modes_with_umask(077, "\"mode\": \"0640\"", 0750, 0640);
}

/* ---- security: ids that look like paths or format strings ----------------- */

static const char *const evil_subs[] = {"%n%s%s%s%n", "../../etc", "/", "../x",
                                        "a/../../b", "pps.meta", "%p%x"};
#define N_EVIL (sizeof(evil_subs) / sizeof(evil_subs[0]))

/* Appends s as a JSON string (escaping what JSON needs). */
static size_t
json_str(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "\"");
    for (; *s != '\0' && o + 8 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x",
                                  (unsigned)(unsigned char)*s);
        } else {
            out[o++] = *s;
            out[o] = '\0';
        }
    }
    o += (size_t)snprintf(out + o, cap - o, "\"");
    return o;
}

/* A config whose publisher is `pub` and subscribers the n ids in subs. */
static char *
evil_json(const char *pub, const char *const *subs, size_t n)
{
    size_t cap = 16384, o = 0;
    char *j = malloc(cap);
    cr_assert_not_null(j);
    o += (size_t)snprintf(j + o, cap - o, "{");
    o += json_str(j + o, cap - o, pub);
    o += (size_t)snprintf(j + o, cap - o, ": {\"out_queue\": \"q\"},\n");
    for (size_t i = 0; i < n; i++) {
        o += json_str(j + o, cap - o, subs[i]);
        o += (size_t)snprintf(j + o, cap - o, ": {\"in_queue\": \"q\"},\n");
    }
    o += (size_t)snprintf(j + o, cap - o,
                          "\"queues\": {\"q\": {\"path\": \"q\", "
                          "\"max_db_size_bytes\": 1048576, "
                          "\"durability\": \"nosync\", \"subscribers\": [");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            o += (size_t)snprintf(j + o, cap - o, ", ");
        }
        o += json_str(j + o, cap - o, subs[i]);
    }
    snprintf(j + o, cap - o, "]}}}\n");
    return j;
}

Test(hostile, ids_like_paths_and_format_strings_are_plain_names,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    /* /tmp/etc would be where "../../etc" leads from DIR/q. */
    char parent_etc[4096];
    snprintf(parent_etc, sizeof(parent_etc), "%s/../etc", dir);
    struct stat st;
    bool etc_before = stat(parent_etc, &st) == 0;

    const char *pub_id = "%s%s%n../pub";
    char *json = evil_json(pub_id, evil_subs, N_EVIL);
    pps_config *cfg = pps_test_queue(dir, json);
    free(json);
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, pub_id);
    cr_assert_eq(rc, PPS_OK, "%s: %s", pps_status_name(rc), pps_last_error());
    cr_assert_eq(pps_pub_send(pub, "hello %s %n", 11), PPS_OK);
    for (size_t i = 0; i < N_EVIL; i++) {
        pps_sub *sub = open_sub(cfg, evil_subs[i]);
        pps_test_sink sink = {0};
        rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
        cr_assert_eq(rc, PPS_OK, "subscriber \"%s\": %s: %s", evil_subs[i],
                     pps_status_name(rc), pps_last_error());
        cr_assert_eq(sink.n, 1);
        cr_assert_str_eq(sink.data[0], "hello %s %n");
        /* Its failures quote the id literally. */
        rc = pps_sub_receive(sub, 0, pps_test_collect, &sink);
        cr_assert_eq(rc, PPS_ETIMEDOUT);
        cr_assert_not_null(strstr(pps_last_error(), evil_subs[i]),
                           "the detail does not quote \"%s\": %s",
                           evil_subs[i], pps_last_error());
        pps_test_sink_free(&sink);
        pps_sub_close(sub);
    }
    /* An unknown id, quoted literally, not interpreted. */
    pps_sub *none = NULL;
    rc = pps_sub_open(&none, cfg, "%n%n%n%s");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_not_null(strstr(pps_last_error(), "%n%n%n%s"), "%s",
                       pps_last_error());
    pps_pub *nopub = NULL;
    rc = pps_pub_open(&nopub, cfg, "../../../../etc/passwd");
    cr_assert_eq(rc, PPS_ENOTFOUND);
    cr_assert_null(nopub);
    expect_consistent(cfg);
    pps_pub_close(pub);

    /* Nothing but the queue's own files appeared. */
    snap *s = snap_take(dir);
    const char *want[] = {"config.json", "q", "q/data.mdb", "q/lock.mdb",
                          "q/pps.wake"};
    cr_assert_eq(s->n, 5, "%zu files under the test directory", s->n);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(s->f[i].name, want[i]);
    }
    free(s);
    cr_assert_eq(stat(parent_etc, &st) == 0, etc_before,
                 "%s appeared", parent_etc);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(hostile, ids_with_control_characters_are_rejected, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    const char *bad[] = {"new\nline", "tab\there", "del\x7f", "esc\x1b[2J",
                         "bell\a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *subs[] = {bad[i]};
        char *json = evil_json("pub", subs, 1);
        char *path = pps_test_write(dir, "bad.json", json);
        pps_config *cfg = NULL;
        int rc = pps_config_load(&cfg, path);
        cr_assert_eq(rc, PPS_ECONFIG, "id %zu accepted: %s", i,
                     pps_status_name(rc));
        cr_assert_null(cfg);
        expect_detail(path, "config with a control character in an id");
        free(json);
        free(path);
    }
    /* And a 256-byte id. */
    char longid[257];
    memset(longid, 'L', 256);
    longid[256] = '\0';
    const char *subs[] = {longid};
    char *json = evil_json("pub", subs, 1);
    char *path = pps_test_write(dir, "long.json", json);
    pps_config *cfg = NULL;
    cr_assert_eq(pps_config_load(&cfg, path), PPS_ECONFIG);
    free(json);
    free(path);
    /* Nothing was created. */
    snap *s = snap_take(dir);
    for (size_t i = 0; i < s->n; i++) {
        cr_assert(strstr(s->f[i].name, ".json") != NULL, "%s created",
                  s->f[i].name);
    }
    free(s);
    pps_test_cleanup(dir);
}
