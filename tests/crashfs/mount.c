/*
 * Driving crashfs from a test (see mount.h). The daemon runs in the
 * foreground as our child, so we know its pid and its exit status; it is
 * mounted with auto_unmount so that a test that dies leaves no mount behind.
 */
#define _GNU_SOURCE
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *
cfs_unavailable(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        return "/dev/fuse is missing or not accessible";
    }
    const char *dirs[] = {"/usr/bin/fusermount3", "/bin/fusermount3",
                          "/usr/local/bin/fusermount3"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (access(dirs[i], X_OK) == 0) {
            return NULL;
        }
    }
    return "fusermount3 is not installed (Debian package fuse3)";
}

/* True once something else than the parent's file system is at path. */
static int
is_mounted(const char *path)
{
    char parent[4096 + 4];
    struct stat a, b;
    snprintf(parent, sizeof(parent), "%s/..", path);
    return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

int
cfs_mount_start(cfs_mount *m, const char *exe, const char *model, double p,
                uint64_t seed, char *why, size_t why_len)
{
    char ps[64], ss[64];
    snprintf(ps, sizeof(ps), "%.17g", p);
    snprintf(ss, sizeof(ss), "%" PRIu64, seed);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execl(exe, exe, "--model", model, "--p", ps, "--seed", ss, m->backing,
              m->mnt, "-f", "-o", "auto_unmount", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 5) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            snprintf(why, why_len,
                     "crashfs exited (status %d) before mounting %s; see %s",
                     st, m->mnt, m->log);
            return -1;
        }
        if (is_mounted(m->mnt)) {
            m->pid = pid;
            return 0;
        }
        sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(why, why_len, "crashfs did not mount %s within 10 s", m->mnt);
    return -1;
}

int
cfs_mount_crash(const cfs_mount *m)
{
    char path[4096 + 16];
    snprintf(path, sizeof(path), "%s/.crashfs", m->mnt);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, "crash", 5);
    close(fd);
    return n == 5 ? 0 : -1;
}

int64_t
cfs_mount_stat(const cfs_mount *m, const char *name)
{
    char path[4096 + 16], text[1024];
    snprintf(path, sizeof(path), "%s/.crashfs", m->mnt);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    text[n] = '\0';
    size_t len = strlen(name);
    for (char *line = text; line != NULL && *line;) {
        if (strncmp(line, name, len) == 0 && line[len] == ' ') {
            return strtoll(line + len + 1, NULL, 10);
        }
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return -1;
}

int
cfs_mount_stop(cfs_mount *m)
{
    if (m->pid == 0) {
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
        }
        execlp("fusermount3", "fusermount3", "-u", "-q", m->mnt, (char *)NULL);
        _exit(127);
    }
    int st = -1;
    if (pid > 0) {
        waitpid(pid, &st, 0);
    }
    if (st != 0) {
        /* Busy (a process we did not know of): detach it; the daemon ends
         * when the last user goes. */
        if (umount2(m->mnt, MNT_DETACH) != 0 && errno != EINVAL) {
            fprintf(stderr, "umount -l %s: %s\n", m->mnt, strerror(errno));
        }
    }
    int rc = -1;
    /* A generous bound: under AddressSanitizer on a loaded 2-core machine
     * the daemon's exit takes seconds. */
    for (int waited = 0; waited < 60000; waited += 5) {
        if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
            rc = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
            if (rc != 0) {
                fprintf(stderr, "crashfs (pid %ld) ended with %s %d\n",
                        (long)m->pid,
                        WIFEXITED(st) ? "exit status" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            }
            m->pid = 0;
            return rc;
        }
        sleep_ms(5);
    }
    fprintf(stderr, "crashfs (pid %ld) still runs 60 s after its unmount\n",
            (long)m->pid);
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
    return -1;
}
