/*
 * Hostile deployments (issue 10): what another local user can plant in or
 * around a queue directory, an init killed anywhere, many opens on a full
 * file system. Each case checks every entry point and that nothing outside
 * the queue was touched.
 *
 * Cases that need root (other owners, users, mount namespaces) exit their
 * child with 77 and are reported as skipped where root is missing.
 */
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS, setgroups() */
#include "pps_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
#define SHARED_GID 23456

/* Every entry point on cfg answers `want`. */
static void
expect_everywhere(const pps_config *cfg, int want, const char *what)
{
    pps_pub *pub = NULL;
    pps_sub *sub = NULL;
    size_t problems = 0;
    pps_test_qstat q;
    int rc = pps_ctl_init(cfg);
    cr_assert_eq(rc, want, "%s: init: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
    rc = pps_pub_open(&pub, cfg, "pub");
    cr_assert_eq(rc, want, "%s: pub_open: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
    rc = pps_sub_open(&sub, cfg, "s1");
    cr_assert_eq(rc, want, "%s: sub_open: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
    rc = pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q);
    cr_assert_eq(rc, want, "%s: status: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
    rc = pps_ctl_check(cfg, NULL, 1, NULL, NULL, &problems);
    cr_assert_eq(rc, want, "%s: check: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
    rc = pps_ctl_clear(cfg);
    cr_assert_eq(rc, want, "%s: clear: %s: %s", what, pps_status_name(rc),
                 pps_last_error());
}

/* A victim file outside the queue, with known content. */
static char *
make_victim(const char *dir)
{
    return pps_test_write(dir, "victim", "precious bytes of another user\n");
}

static void
expect_victim_intact(const char *victim)
{
    char buf[128] = {0};
    FILE *f = fopen(victim, "rb");
    cr_assert_not_null(f, "%s: %s", victim, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    cr_assert_eq(n, strlen("precious bytes of another user\n"));
    cr_assert_str_eq(buf, "precious bytes of another user\n");
}

/* A symbolic link planted at file `name` of an initialized queue (its file
 * moved away) is never followed: every entry point refuses the queue, the
 * victim is untouched, and no file appears where a dangling link points. */
static void
symlink_at(const char *name, bool dangling)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    char *file = pps_test_path_in(qpath, name);
    char *victim = make_victim(dir);
    char *nowhere = pps_test_path_in(dir, "created-by-the-library");
    cr_assert_eq(unlink(file), 0, "%s", file);
    cr_assert_eq(symlink(dangling ? nowhere : victim, file), 0);
    struct stat before, after;
    cr_assert_eq(stat(victim, &before), 0);
    expect_everywhere(cfg, PPS_EFOREIGN, name);
    expect_victim_intact(victim);
    cr_assert_eq(stat(victim, &after), 0);
    cr_assert_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    cr_assert_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    cr_assert_eq(access(nowhere, F_OK), -1, "a file was created through "
                 "the link at %s", name);
    struct stat lst;
    cr_assert_eq(lstat(file, &lst), 0);
    cr_assert(S_ISLNK(lst.st_mode), "the link at %s was replaced", name);
    free(nowhere);
    free(victim);
    free(file);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(deploy, symlinked_data_file_is_refused, .timeout = 60)
{
    symlink_at("data.mdb", false);
    symlink_at("data.mdb", true);
}

Test(deploy, symlinked_lock_file_is_refused, .timeout = 60)
{
    symlink_at("lock.mdb", false);
    symlink_at("lock.mdb", true);
}

Test(deploy, symlinked_wake_file_is_refused, .timeout = 60)
{
    symlink_at("pps.wake", false);
    symlink_at("pps.wake", true);
}

/* Links planted before the first init, in an empty directory that will
 * become the queue: init refuses, nothing is created through them. */
Test(deploy, symlinks_planted_before_init_are_refused, .timeout = 60)
{
    const char *names[] = {"data.mdb", "lock.mdb", "pps.wake"};
    for (size_t i = 0; i < 3; i++) {
        char *dir = pps_test_tmpdir();
        pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
        char *qpath = pps_test_path_in(dir, "q");
        cr_assert_eq(mkdir(qpath, 0700), 0);
        char *file = pps_test_path_in(qpath, names[i]);
        char *victim = make_victim(dir);
        cr_assert_eq(symlink(victim, file), 0);
        int rc = pps_ctl_init(cfg);
        cr_assert_eq(rc, PPS_EFOREIGN, "%s: init: %s: %s", names[i],
                     pps_status_name(rc), pps_last_error());
        expect_victim_intact(victim);
        free(victim);
        free(file);
        free(qpath);
        pps_config_free(cfg);
        pps_test_cleanup(dir);
    }
}

Test(deploy, symlinked_queue_directory_is_refused, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    char *real = pps_test_path_in(dir, "real");
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert_eq(mkdir(real, 0700), 0);
    cr_assert_eq(symlink(real, qpath), 0);
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    expect_everywhere(cfg, PPS_EFOREIGN, "a symlinked queue directory");
    cr_assert_eq(pps_test_dir_entries(real), 0, "something was created in "
                 "the link's target");
    pps_config_free(cfg);
    free(qpath);
    free(real);
    pps_test_cleanup(dir);
}

Test(deploy, queue_directory_writable_by_others_is_refused, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert_eq(chmod(qpath, 0777), 0);
    expect_everywhere(cfg, PPS_EFOREIGN, "a directory writable by others");
    struct stat st;
    cr_assert_eq(stat(qpath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0777, "init changed the mode silently");
    cr_assert_eq(chmod(qpath, 0700), 0);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

Test(deploy, group_writable_directory_without_sticky_bit_is_refused,
     .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB,
                                           "\"mode\": \"0660\"");
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert_eq(chmod(qpath, 0770), 0);
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, "pub");
    cr_assert_eq(rc, PPS_EFOREIGN, "%s: %s", pps_status_name(rc),
                 pps_last_error());
    cr_assert_not_null(strstr(pps_last_error(), "sticky"));
    /* init, run by the owner, sets it. */
    cr_assert_eq(pps_ctl_init(cfg), PPS_OK, "%s", pps_last_error());
    struct stat st;
    cr_assert_eq(stat(qpath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 01770);
    pub = pps_test_pub_open(cfg, "pub");
    pps_pub_close(pub);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- other users ------------------------------------------------------------ */

/* Root may not trust a queue directory another user owns. */
Test(deploy, queue_of_another_user_is_refused_by_root, .timeout = 60)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root to give a directory to another user");
    }
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_config(dir, 1 * PPS_TEST_MIB, NULL);
    char *qpath = pps_test_path_in(dir, "q");
    cr_assert_eq(mkdir(qpath, 0700), 0);
    cr_assert_eq(chown(qpath, NOBODY, NOBODY), 0);
    expect_everywhere(cfg, PPS_EFOREIGN, "a directory of user nobody");
    cr_assert_eq(pps_test_dir_entries(qpath), 0);
    free(qpath);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* In a child: become user nobody with the shared group as a
 * supplementary group (exit 77 where that is impossible). */
static void
become_member(void)
{
    gid_t groups[1] = {SHARED_GID};
    if (setgroups(1, groups) != 0 || setgid(NOBODY) != 0 ||
        setuid(NOBODY) != 0) {
        _exit(77);
    }
}

/* A directory "shared" in dir of the shared group, set-group-ID with
 * dir_mode, holding queue "q" of file mode `mode`, initialized by root;
 * *shared gets its path. */
static pps_config *
shared_queue(const char *dir, mode_t dir_mode, const char *mode,
             char **shared)
{
    cr_assert_eq(chmod(dir, 0755), 0);
    *shared = pps_test_path_in(dir, "shared");
    cr_assert_eq(mkdir(*shared, 0700), 0);
    cr_assert_eq(chown(*shared, 0, SHARED_GID), 0);
    cr_assert_eq(chmod(*shared, dir_mode), 0);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\", \"mode\": \"%s\","
             " \"subscribers\": [\"s1\"]}}}",
             *shared, mode);
    return pps_test_queue(dir, json);
}

typedef struct member_case {
    const char *cfg_path;
    int pipe_fd;
} member_case;

/* In a child: become user nobody with the shared group as a supplementary
 * group, then publish and receive on the group-shared queue. */
static void
member_child(const member_case *c)
{
    become_member();
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, c->cfg_path) != PPS_OK) {
        fprintf(stderr, "load: %s\n", pps_last_error());
        _exit(10);
    }
    pps_pub *pub = NULL;
    int rc = pps_pub_open(&pub, cfg, "pub");
    if (rc == PPS_OK) {
        rc = pps_pub_send(pub, "from a member", 13);
    }
    if (rc != PPS_OK) {
        fprintf(stderr, "member: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(11);
    }
    pps_pub_close(pub);
    pps_config_free(cfg);
    _exit(0);
}

/* A setgid directory of a shared group: init (as root) keeps the setgid
 * bit, the files get the group, and a member of the group (user nobody)
 * can publish. */
Test(deploy, group_sharing_in_a_setgid_directory_works, .timeout = 60)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root to create files of a shared group and to "
                     "run a child as another user");
    }
    char *dir = pps_test_tmpdir();
    char *shared = NULL;
    pps_config *cfg = shared_queue(dir, 02770, "0660", &shared);
    char *qpath = pps_test_path_in(shared, "q");
    struct stat st;
    cr_assert_eq(stat(qpath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 03770, "queue directory mode %o",
                 (unsigned)(st.st_mode & 07777));
    cr_assert_eq(st.st_gid, (gid_t)SHARED_GID);
    const char *files[] = {"data.mdb", "lock.mdb", "pps.wake"};
    for (size_t i = 0; i < 3; i++) {
        char *f = pps_test_path_in(qpath, files[i]);
        cr_assert_eq(stat(f, &st), 0);
        cr_assert_eq(st.st_gid, (gid_t)SHARED_GID, "%s: group %u", files[i],
                     (unsigned)st.st_gid);
        cr_assert_eq(st.st_mode & 07777, 0660);
        free(f);
    }
    char *cfg_path = pps_test_config_path(dir);
    member_case c = {cfg_path, -1};
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        member_child(&c);
    }
    int status = pps_test_wait(pid);
    cr_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        cr_skip_test("cannot switch to user nobody");
    }
    cr_assert_eq(WEXITSTATUS(status), 0, "the group member failed (%d)",
                 WEXITSTATUS(status));
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink *sink = pps_test_sink_new();
    cr_assert_eq(pps_sub_receive(sub, 0, pps_test_collect, sink), PPS_OK,
                 "%s", pps_last_error());
    cr_assert_eq(sink->lens[0], 13);
    pps_test_sink_del(sink);
    pps_sub_close(sub);
    free(cfg_path);
    free(qpath);
    free(shared);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

typedef struct reader_case {
    const char *cfg_path;
    const char *qpath;
} reader_case;

static int
count_status(const pps_queue_status *st, void *user)
{
    *(uint64_t *)user = st->messages;
    return 0;
}

/* In a child: become user nobody with the shared group, then read the
 * queue: status and check work, writing is a clear PPS_ESTORAGE. */
static void
reader_child(const reader_case *c)
{
    become_member();
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, c->cfg_path) != PPS_OK) {
        _exit(10);
    }
    uint64_t messages = 0;
    int rc = pps_ctl_status(cfg, NULL, count_status, &messages);
    if (rc != PPS_OK || messages != 3) {
        fprintf(stderr, "reader: status: %s: %s (%llu messages)\n",
                pps_status_name(rc), pps_last_error(),
                (unsigned long long)messages);
        _exit(11);
    }
    size_t problems = 1;
    rc = pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems);
    if (rc != PPS_OK || problems != 0) {
        fprintf(stderr, "reader: check: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(12);
    }
    pps_pub *pub = NULL;
    rc = pps_pub_open(&pub, cfg, "pub");
    if (rc != PPS_ESTORAGE || strstr(pps_last_error(), c->qpath) == NULL) {
        fprintf(stderr, "reader: pub_open: %s: %s\n", pps_status_name(rc),
                pps_last_error());
        _exit(13);
    }
    rc = pps_ctl_check(cfg, NULL, 1, NULL, NULL, &problems);
    if (rc != PPS_ESTORAGE) {
        fprintf(stderr, "reader: check --repair: %s: %s\n",
                pps_status_name(rc), pps_last_error());
        _exit(14);
    }
    pps_config_free(cfg);
    _exit(0);
}

/* A "0640" queue read by a member of its group (a second real user): status
 * and check work without write access to the queue, and change nothing. */
Test(deploy, a_group_reader_can_run_status_and_check, .timeout = 60)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root to create a queue of a shared group and to "
                     "run a child as another user");
    }
    char *dir = pps_test_tmpdir();
    char *shared = NULL;
    pps_config *cfg = shared_queue(dir, 02750, "0640", &shared);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    }
    pps_pub_close(pub);
    char *qpath = pps_test_path_in(shared, "q");
    char *data = pps_test_path_in(qpath, "data.mdb");
    struct stat before, after;
    cr_assert_eq(stat(data, &before), 0);
    char *cfg_path = pps_test_config_path(dir);
    reader_case c = {cfg_path, qpath};
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        reader_child(&c);
    }
    int status = pps_test_wait(pid);
    cr_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        cr_skip_test("cannot switch to user nobody");
    }
    cr_assert_eq(WEXITSTATUS(status), 0, "the group reader failed (%d)",
                 WEXITSTATUS(status));
    cr_assert_eq(stat(data, &after), 0);
    cr_assert_eq(after.st_size, before.st_size);
    cr_assert_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec,
                 "a reader changed data.mdb");
    cr_assert_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec,
                 "a reader changed data.mdb");
    pps_sub *sub = pps_test_sub_open(cfg, "s1");
    pps_test_sink *sink = pps_test_sink_new();
    cr_assert_eq(pps_test_drain(sub, sink), 3);
    pps_test_sink_del(sink);
    pps_sub_close(sub);
    free(cfg_path);
    free(data);
    free(qpath);
    free(shared);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* The owner's status and check (without repair) change no file of the
 * queue, its modification time included: they open it read-only. */
Test(deploy, status_and_check_change_no_file, .timeout = 60)
{
    char *dir = pps_test_tmpdir();
    pps_config *cfg = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    pps_pub *pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK);
    pps_pub_close(pub);
    pps_test_snap *before = pps_test_snap_take(dir);
    pps_test_qstat q;
    cr_assert_eq(pps_ctl_status(cfg, NULL, pps_test_qstat_cb, &q), PPS_OK,
                 "%s", pps_last_error());
    cr_assert_eq(q.messages, 1);
    size_t problems = 1;
    cr_assert_eq(pps_ctl_check(cfg, NULL, 0, NULL, NULL, &problems), PPS_OK,
                 "%s", pps_last_error());
    cr_assert_eq(problems, 0);
    pps_test_expect_untouched(dir, before, "status and check");
    /* A writer after them gets a writable queue. */
    pub = pps_test_pub_open(cfg, "pub");
    cr_assert_eq(pps_pub_send(pub, "n", 1), PPS_OK, "%s", pps_last_error());
    pps_pub_close(pub);
    free(before);
    pps_config_free(cfg);
    pps_test_cleanup(dir);
}

/* ---- interrupted init -------------------------------------------------------- */

/* An init SIGKILLed at any moment is finished by the next one: 200 kills
 * spread over the time an init takes. */
Test(deploy, init_killed_anywhere_is_resumed, .timeout = 300)
{
    char *dir = pps_test_tmpdir();
    /* How long an init takes here, for the spread of the kills. */
    int64_t t0 = pps_test_mono_ns();
    pps_config *probe = pps_test_small_queue(dir, 1 * PPS_TEST_MIB, NULL);
    int64_t span_ns = pps_test_mono_ns() - t0;
    pps_config_free(probe);
    unsigned seed = (unsigned)getpid();
    for (int round = 0; round < 200; round++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "r%d", round);
        char *rdir = pps_test_path_in(dir, sub);
        cr_assert_eq(mkdir(rdir, 0700), 0);
        pps_config *cfg = pps_test_small_config(rdir, 1 * PPS_TEST_MIB, NULL);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            _exit(pps_ctl_init(cfg) == PPS_OK ? 0 : 1);
        }
        struct timespec ts = {0, (long)((int64_t)rand_r(&seed) % (span_ns + 1))};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        int rc = pps_ctl_init(cfg);
        cr_assert_eq(rc, PPS_OK, "round %d: init after a killed init: %s: %s",
                     round, pps_status_name(rc), pps_last_error());
        pps_pub *pub = pps_test_pub_open(cfg, "pub");
        cr_assert_eq(pps_pub_send(pub, "m", 1), PPS_OK, "%s",
                     pps_last_error());
        pps_pub_close(pub);
        pps_test_expect_consistent(cfg);
        pps_config_free(cfg);
        free(rdir);
    }
    pps_test_cleanup(dir);
}

/* ---- a full file system, many opens at once ---------------------------------- */

static void
full_fs_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
        _exit(77);
    }
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"pub\": {\"out_queue\": \"q\"}, \"s1\": {\"in_queue\": \"q\"},"
             " \"queues\": {\"q\": {\"path\": \"%s/q\", \"max_reader_num\": "
             "4096, \"subscribers\": [\"s1\"]}}}",
             mnt);
    char cfg_path[1024];
    snprintf(cfg_path, sizeof(cfg_path), "%s/../config.json", mnt);
    FILE *f = fopen(cfg_path, "w");
    if (f == NULL || fputs(json, f) < 0 || fclose(f) != 0) {
        _exit(2);
    }
    pps_config *cfg = NULL;
    if (pps_config_load(&cfg, cfg_path) != PPS_OK) {
        _exit(3);
    }
    if (pps_ctl_init(cfg) != PPS_OK) {
        fprintf(stderr, "init: %s\n", pps_last_error());
        _exit(4);
    }
    /* Without its lock file (LMDB makes a new one at the next open), on a
     * file system with no room left for it. */
    char lock[1024];
    snprintf(lock, sizeof(lock), "%s/q/lock.mdb", mnt);
    unlink(lock);
    char filler[1024];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    static char block[4096];
    while (fd >= 0 && write(fd, block, sizeof(block)) == sizeof(block)) {
    }
    if (fd >= 0) {
        close(fd);
    }
    pid_t kids[60];
    for (int i = 0; i < 60; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pps_sub *sub = NULL;
            int rc = pps_sub_open(&sub, cfg, "s1");
            pps_sub_close(sub);
            /* Any clear status will do; a signal will not. */
            _exit(rc == PPS_OK || rc < 0 ? 0 : 1);
        }
    }
    int bad = 0;
    for (int i = 0; i < 60; i++) {
        int st;
        if (kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i] &&
            (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            bad++;
        }
    }
    /* Then with room again the queue works. */
    unlink(filler);
    int rc = pps_ctl_init(cfg);
    pps_config_free(cfg);
    _exit(bad > 0 ? 20 : rc == PPS_OK ? 0 : 21);
}

Test(deploy, many_opens_on_a_full_file_system_never_crash, .timeout = 120)
{
    char *dir = pps_test_tmpdir();
    char *mnt = pps_test_path_in(dir, "mnt");
    cr_assert_eq(mkdir(mnt, 0700), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        full_fs_child(mnt);
    }
    int st = pps_test_wait(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        cr_skip_test("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)");
    }
    cr_assert(WIFEXITED(st), "the test process died of signal %d",
              WTERMSIG(st));
    cr_assert_neq(WEXITSTATUS(st), 20, "an open on a full file system "
                  "died of a signal (SIGBUS on a sparse lock.mdb?)");
    cr_assert_eq(WEXITSTATUS(st), 0, "child failed with %d",
                 WEXITSTATUS(st));
    free(mnt);
    pps_test_cleanup(dir);
}
