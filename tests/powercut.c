/*
 * powercut: power cuts under a running queue, simulated with crashfs
 * (tests/crashfs/), checked by powercut_verify.c.
 *
 * Each round uses the queue of one durability in a crashfs mount, either
 * fresh (removed, then pps_ctl_init inside the round: within the cut
 * window) or long-lived (made in an earlier round and remounted since).
 * One or two publisher processes send 128-byte messages and append "a P N"
 * before and "k P N" after each PPS_OK send to a log on the real disk; a
 * consuming subscriber records each message it consumes there too; an idle
 * subscriber holds its handle and never consumes. At a random moment every
 * process is SIGKILLed, crashfs crashes (lose-all or torn model), is
 * unmounted and mounted anew over the same directory, and a new process
 * verifies the queue (powercut_verify.c).
 *
 * A power cut also reboots: the whole program runs in a private mount
 * namespace with a file of our own bind-mounted over
 * /proc/sys/kernel/random/boot_id, and every cut writes a new boot id into
 * it, so the processes of one round and the verifier that follows its cut
 * see different boots (the library detects a lost nosync queue that way).
 *
 *   powercut [--rounds N] [--durability sync|nometasync|nosync|cycle]
 *            [--model lose-all|torn] [--p P] [--seed S]
 *            [--fresh|--long-lived|--both] [--dir DIR] [--keep]
 * Exit 0: no violation; 1: violations (printed); 2: usage; 77: FUSE or
 * mount namespaces unavailable.
 */
#define _GNU_SOURCE
#include "powercut.h"

#include "mount.h"
#include "persipubsub/persipubsub.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BOOT_ID "/proc/sys/kernel/random/boot_id"

static const char *const modes[] = {"sync", "nometasync", "nosync"};

typedef struct totals {
    int rounds, fresh;
    uint64_t acked, lost;
    int unusable, detected, violating;
} totals;

typedef struct run {
    char dir[2048];
    const char *model;
    double p;
    uint64_t rng;
    cfs_mount cm;
    bool exists[3]; /* the long-lived queue of each mode is there */
    totals tot[3];
} run;

static uint64_t
rnd(run *R)
{
    uint64_t z = (R->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static _Noreturn void
fatal(const char *what)
{
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* One whole line per write() on an O_APPEND file: a killed process leaves
 * at most a torn last line, which the verifier skips. */
static void
log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
log_line(int fd, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (write(fd, line, (size_t)n) != n) {
        _exit(3);
    }
}

static int
open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        _exit(3);
    }
    return fd;
}

static pps_config *
child_config(const char *path)
{
    pps_config *cfg;
    int rc = pps_config_load(&cfg, path);
    if (rc != PPS_OK) {
        fprintf(stderr, "powercut: %s\n", pps_last_error());
        _exit(4);
    }
    return cfg;
}

static void
child_init(const pc_round *rd)
{
    pps_config *cfg = child_config(rd->config);
    int rc = pps_ctl_init(cfg);
    if (rc != PPS_OK) {
        fprintf(stderr, "powercut: init: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(5);
    }
    log_line(open_log(rd->init_log), "i\n");
    _exit(0);
}

static void
child_publisher(const pc_round *rd, int p, unsigned pause_us)
{
    pps_config *cfg = child_config(rd->config);
    pps_pub *pub;
    int rc = pps_pub_open(&pub, cfg, p == 0 ? "p0" : "p1");
    int fd = open_log(rd->pub_log);
    for (uint64_t n = 1; rc == PPS_OK; n++) {
        unsigned char buf[PC_MSG_LEN];
        pc_payload(buf, rd->number, p, n);
        log_line(fd, "a %d %" PRIu64 "\n", p, n);
        rc = pps_pub_send(pub, buf, sizeof(buf));
        if (rc == PPS_OK) {
            log_line(fd, "k %d %" PRIu64 "\n", p, n);
        }
        if (pause_us > 0) {
            usleep(pause_us);
        }
    }
    fprintf(stderr, "powercut: round %d: p%d: %s: %s\n", rd->number, p,
            pps_status_name(rc), pps_last_error());
    _exit(6);
}

static int
consume(const pps_message *m, void *user)
{
    int r, p;
    uint64_t n;
    int fd = *(const int *)user;
    if (pc_payload_parse(m->data, m->len, &r, &p, &n)) {
        log_line(fd, "c %" PRIu64 " %d %d %" PRIu64 "\n", m->id, r, p, n);
    }
    return 0;
}

static void
child_subscriber(const pc_round *rd, bool idle)
{
    pps_config *cfg = child_config(rd->config);
    pps_sub *sub;
    int rc = pps_sub_open(&sub, cfg, idle ? "idle" : "consumer");
    int fd = open_log(rd->con_log);
    while (rc == PPS_OK || rc == PPS_ETIMEDOUT) {
        if (idle) {
            pause();
        } else {
            rc = pps_sub_receive(sub, 200, consume, &fd);
        }
    }
    fprintf(stderr, "powercut: round %d: %s: %s: %s\n", rd->number,
            idle ? "idle" : "consumer", pps_status_name(rc), pps_last_error());
    _exit(7);
}

static pid_t
spawn(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fatal("fork");
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(9);
        }
    }
    return pid;
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

static void
rm_tree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_config(const char *path, const char *queue, const char *durability)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fatal(path);
    }
    fprintf(f,
            "{\"p0\": {\"out_queue\": \"q\"}, \"p1\": {\"out_queue\": \"q\"},\n"
            " \"consumer\": {\"in_queue\": \"q\"},"
            " \"idle\": {\"in_queue\": \"q\"},\n"
            " \"queues\": {\"q\": {\"path\": \"%s\",\n"
            "   \"max_db_size_bytes\": 268435456,\n"
            "   \"subscribers\": [\"consumer\", \"idle\"],\n"
            "   \"durability\": \"%s\",\n"
            "   \"high-water-mark\": {\"MSG_TIMEOUT_SECS\": 86400,"
            " \"MAX_MSGS_NUM\": 100000000,"
            " \"HWM_LMDB_SIZE_BYTES\": 200000000}}}}\n",
            queue, durability);
    if (fclose(f) != 0) {
        fatal(path);
    }
}

/* A new boot: what every process reads as the boot id from now on. */
static void
new_boot(run *R)
{
    char path[2100], id[64];
    uint64_t a = rnd(R), b = rnd(R);
    snprintf(id, sizeof(id), "%08" PRIx32 "-%04x-4%03x-%04x-%012" PRIx64 "\n",
             (uint32_t)a, (unsigned)(a >> 32) & 0xffff,
             (unsigned)(a >> 48) & 0xfff, (unsigned)(b & 0x3fff) | 0x8000,
             (uint64_t)((b >> 16) & 0xffffffffffffULL));
    snprintf(path, sizeof(path), "%s/boot_id", R->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || pwrite(fd, id, strlen(id), 0) != (ssize_t)strlen(id)) {
        fatal(path);
    }
    close(fd);
}

/* The private mount namespace with our own boot id; 0, or CFS_SKIP. */
static int
enter_namespace(run *R)
{
    char path[2100], got[64] = {0}, want[64] = {0};
    new_boot(R);
    snprintf(path, sizeof(path), "%s/boot_id", R->dir);
    if (unshare(CLONE_NEWNS) != 0) {
        printf("powercut: skipped: cannot make a mount namespace: %s\n",
               strerror(errno));
        return CFS_SKIP;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(path, BOOT_ID, NULL, MS_BIND, NULL) != 0) {
        printf("powercut: skipped: cannot bind a boot id over %s: %s\n",
               BOOT_ID, strerror(errno));
        return CFS_SKIP;
    }
    FILE *f = fopen(BOOT_ID, "r"), *g = fopen(path, "r");
    if (f == NULL || g == NULL || fgets(got, sizeof(got), f) == NULL ||
        fgets(want, sizeof(want), g) == NULL || strcmp(got, want) != 0) {
        fprintf(stderr, "powercut: the fake boot id does not show\n");
        exit(1);
    }
    fclose(f);
    fclose(g);
    return 0;
}

static void
mount_up(run *R)
{
    char why[512];
    if (cfs_mount_start(&R->cm, CRASHFS_EXE, R->model, R->p, rnd(R), why,
                        sizeof(why)) != 0) {
        fprintf(stderr, "powercut: %s\n", why);
        exit(1);
    }
}

static void
kill_all(pid_t *pids, int n, int round)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
        }
    }
    for (int i = 0; i < n; i++) {
        int st;
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i] &&
            !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) &&
            !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "powercut: round %d: a worker ended by itself "
                            "(status %d)\n", round, st);
        }
    }
}

/* Runs the init child and waits for it, up to the cut; true if it ended
 * in time. */
static bool
init_within(const pc_round *rd, int64_t cut_at, pid_t *pid)
{
    *pid = spawn();
    if (*pid == 0) {
        child_init(rd);
    }
    while (now_ms() < cut_at) {
        int st;
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = 0;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        sleep_ms(2);
    }
    return false;
}

static int
round_run(run *R, int r, int mode, bool fresh)
{
    char cfg[2100], plog[2100], clog[2100], ilog[2100], queue[4200];
    snprintf(queue, sizeof(queue), "%s/q-%s", R->cm.mnt, modes[mode]);
    snprintf(cfg, sizeof(cfg), "%s/config-%s.json", R->dir, modes[mode]);
    snprintf(plog, sizeof(plog), "%s/logs/r%d.pub", R->dir, r);
    snprintf(clog, sizeof(clog), "%s/logs/r%d.con", R->dir, r);
    snprintf(ilog, sizeof(ilog), "%s/logs/r%d.init", R->dir, r);
    write_config(cfg, queue, modes[mode]);
    pc_round rd = {r, modes[mode], cfg, plog, clog, ilog, fresh};
    pid_t pids[5] = {0};
    int npub = 1 + (int)(rnd(R) % 2);
    unsigned pause_us = mode == 0 ? 0 : 100;

    if (!fresh && !R->exists[mode]) {
        /* A long-lived queue is made in a round of its own: init, then a
         * clean remount. */
        rm_tree(queue);
        pid_t pid = spawn();
        int st;
        if (pid == 0) {
            child_init(&rd);
        }
        if (waitpid(pid, &st, 0) != pid || st != 0) {
            fprintf(stderr, "powercut: round %d: init failed\n", r);
            return 1;
        }
        cfs_mount_stop(&R->cm);
        mount_up(R);
        unlink(ilog);
    }
    if (fresh) {
        rm_tree(queue);
    }
    int64_t cut_at = now_ms() + 30 + (int64_t)(rnd(R) % 1500);
    if (!fresh || init_within(&rd, cut_at, &pids[4])) {
        for (int p = 0; p < npub; p++) {
            if ((pids[p] = spawn()) == 0) {
                child_publisher(&rd, p, pause_us);
            }
        }
        for (int s = 0; s < 2; s++) {
            if ((pids[2 + s] = spawn()) == 0) {
                child_subscriber(&rd, s == 1);
            }
        }
        int64_t left = cut_at - now_ms();
        sleep_ms(left > 0 ? (int)left : 0);
    }
    /* The cut: the processes die, then the disk loses what it loses. The
     * pages the processes had dirtied reach crashfs as they die (FUSE
     * writes back a shared mapping when it is closed): unsynced. */
    kill_all(pids, 5, r);
    if (cfs_mount_crash(&R->cm) != 0) {
        fatal("crash");
    }
    cfs_mount_stop(&R->cm);
    new_boot(R);
    mount_up(R);

    int fds[2];
    if (pipe(fds) != 0) {
        fatal("pipe");
    }
    pid_t pid = spawn();
    if (pid == 0) {
        close(fds[0]);
        alarm(120);
        pc_result res = pc_verify(&rd);
        _exit(write(fds[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0
                                                                        : 8);
    }
    close(fds[1]);
    pc_result res;
    int st;
    ssize_t got = read(fds[0], &res, sizeof(res));
    close(fds[0]);
    waitpid(pid, &st, 0);
    if (got != (ssize_t)sizeof(res) || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        fprintf(stderr, "powercut: round %d (%s): the verifier died (status "
                        "%d)\n", r, modes[mode], st);
        memset(&res, 0, sizeof(res));
        res.outcome = PC_VIOLATION;
        res.violations = 1;
        res.recreate = 1;
    }
    totals *t = &R->tot[mode];
    t->rounds++;
    t->fresh += fresh;
    t->acked += res.acked;
    t->lost += res.lost;
    t->unusable += res.unusable;
    t->detected += res.outcome == PC_LOST_DETECTED;
    t->violating += res.outcome == PC_VIOLATION;
    R->exists[mode] = !res.recreate;
    return res.outcome == PC_VIOLATION ? 1 : 0;
}

static int
usage(void)
{
    fprintf(stderr,
            "usage: powercut [--rounds N] "
            "[--durability sync|nometasync|nosync|cycle]\n"
            "                [--model lose-all|torn] [--p P] [--seed S]\n"
            "                [--fresh|--long-lived|--both] [--dir DIR] "
            "[--keep]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    static run R;
    int rounds = 6, mode = -1, kinds = 2; /* 0 fresh, 1 long-lived, 2 both */
    bool keep = false;
    const char *dir = NULL;
    R.model = "lose-all";
    R.p = 0.5;
    R.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fresh") == 0 || strcmp(a, "--long-lived") == 0 ||
            strcmp(a, "--both") == 0) {
            kinds = a[2] == 'f' ? 0 : a[2] == 'l' ? 1 : 2;
            continue;
        }
        if (strcmp(a, "--keep") == 0) {
            keep = true;
            continue;
        }
        if (v == NULL) {
            return usage();
        }
        i++;
        if (strcmp(a, "--rounds") == 0) {
            rounds = atoi(v);
        } else if (strcmp(a, "--durability") == 0) {
            mode = strcmp(v, "cycle") == 0 ? -1 : -2;
            for (int m = 0; m < 3; m++) {
                mode = strcmp(v, modes[m]) == 0 ? m : mode;
            }
            if (mode == -2) {
                return usage();
            }
        } else if (strcmp(a, "--model") == 0 &&
                   (strcmp(v, "lose-all") == 0 || strcmp(v, "torn") == 0)) {
            R.model = v;
        } else if (strcmp(a, "--p") == 0) {
            R.p = strtod(v, NULL);
        } else if (strcmp(a, "--seed") == 0) {
            R.rng = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--dir") == 0) {
            dir = v;
        } else {
            return usage();
        }
    }
    uint64_t seed = R.rng;
    const char *why = cfs_unavailable();
    if (why != NULL) {
        printf("powercut: skipped: %s\n", why);
        return CFS_SKIP;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(R.dir, sizeof(R.dir), "%s/powercut-XXXXXX",
             dir != NULL ? dir : tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(R.dir) == NULL) {
        fatal(R.dir);
    }
    snprintf(R.cm.backing, sizeof(R.cm.backing), "%s/backing", R.dir);
    snprintf(R.cm.mnt, sizeof(R.cm.mnt), "%s/mnt", R.dir);
    snprintf(R.cm.log, sizeof(R.cm.log), "%s/crashfs.log", R.dir);
    char logs[2100];
    snprintf(logs, sizeof(logs), "%s/logs", R.dir);
    if (mkdir(R.cm.backing, 0755) != 0 || mkdir(R.cm.mnt, 0755) != 0 ||
        mkdir(logs, 0755) != 0) {
        fatal("mkdir");
    }
    printf("powercut: seed %" PRIu64 ", model %s", seed, R.model);
    if (strcmp(R.model, "torn") == 0) {
        printf(" (p %.2f)", R.p);
    }
    printf(", %d rounds, in %s\n", rounds, R.dir);
    fflush(stdout);
    if (enter_namespace(&R) != 0) {
        rm_tree(R.dir);
        return CFS_SKIP;
    }
    char mwhy[512];
    if (cfs_mount_start(&R.cm, CRASHFS_EXE, R.model, R.p, rnd(&R), mwhy,
                        sizeof(mwhy)) != 0) {
        printf("powercut: skipped: cannot mount crashfs (no privilege?): %s\n",
               mwhy);
        rm_tree(R.dir);
        return CFS_SKIP;
    }
    int bad = 0;
    int64_t t0 = now_ms();
    for (int r = 0; r < rounds; r++) {
        int m = mode >= 0 ? mode : r % 3;
        int per = mode >= 0 ? r : r / 3;
        bool fresh = kinds == 0 || (kinds == 2 && per % 2 == 0);
        bad += round_run(&R, r, m, fresh);
    }
    cfs_mount_stop(&R.cm);
    for (int m = 0; m < 3; m++) {
        const totals *t = &R.tot[m];
        if (t->rounds == 0) {
            continue;
        }
        printf("powercut: %-10s %s: %3d rounds (%d fresh), %7" PRIu64
               " acknowledged, %5" PRIu64 " lost, %d corrupt/unopenable, "
               "%d lost and reported, %d with violations\n",
               modes[m], R.model, t->rounds, t->fresh, t->acked, t->lost,
               t->unusable, t->detected, t->violating);
    }
    printf("powercut: %d rounds, %d with violations, %.1f s\n", rounds, bad,
           (double)(now_ms() - t0) / 1000.0);
    if (bad == 0 && !keep) {
        rm_tree(R.dir);
    } else {
        printf("powercut: kept %s\n", R.dir);
    }
    return bad == 0 ? 0 : 1;
}
