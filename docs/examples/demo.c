/*
 * The README's demo: initializes the queue of a config (by default
 * config/example.json), starts two subscriber processes and one publisher
 * process exchanging protobuf messages (demo.proto; the example programs
 * next to this one), waits for all three, and
 * shows the queue's state with persipubsub-ctl status.
 *
 *   pps-example-demo [CONFIG]
 */
#include <persipubsub/persipubsub.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MESSAGES "10"

static pid_t
spawn(const char *dir, const char *program, char *const args[])
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, program);
    pid_t pid = fork();
    if (pid == 0) {
        execv(path, args);
        fprintf(stderr, "demo: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

static int
wait_ok(pid_t pid, const char *what)
{
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        fprintf(stderr, "demo: %s did not start\n", what);
        return 0;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "demo: %s failed\n", what);
        return 0;
    }
    return 1;
}

int
main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : "config/example.json";
    char self[PATH_MAX];
    snprintf(self, sizeof(self), "%s", argv[0]);
    const char *dir = dirname(self);

    pps_config *cfg = NULL;
    int rc = pps_config_load(&cfg, config);
    if (rc == PPS_OK) {
        rc = pps_ctl_init(cfg); /* idempotent: creates the queue if needed */
    }
    if (rc == PPS_OK) {
        rc = pps_ctl_clear(cfg); /* start the demo from an empty queue */
    }
    pps_config_free(cfg);
    if (rc != PPS_OK) {
        fprintf(stderr, "demo: %s: %s\n", pps_strerror(rc), pps_last_error());
        return 1;
    }
    printf("[demo] queue of %s initialized; starting 2 subscribers and 1 "
           "publisher\n", config);
    fflush(stdout);

    char config_arg[PATH_MAX]; /* exec takes non-const strings */
    snprintf(config_arg, sizeof(config_arg), "%s", config);
    char *sub_args[] = {"pps-example-pb-subscriber", config_arg, "sub",
                        MESSAGES, "5000", NULL};
    char *audit_args[] = {"pps-example-pb-subscriber", config_arg, "audit",
                          MESSAGES, "5000", NULL};
    char *pub_args[] = {"pps-example-pb-publisher", config_arg, "pub",
                        MESSAGES, "100", NULL};
    pid_t sub = spawn(dir, "pps-example-pb-subscriber", sub_args);
    pid_t audit = spawn(dir, "pps-example-pb-subscriber", audit_args);
    struct timespec ts = {0, 200000000}; /* let the subscribers wait first */
    nanosleep(&ts, NULL);
    pid_t pub = spawn(dir, "pps-example-pb-publisher", pub_args);

    int ok = wait_ok(pub, "the publisher");
    ok &= wait_ok(sub, "subscriber \"sub\"");
    ok &= wait_ok(audit, "subscriber \"audit\"");

    /* The control tool is built in cli/ of the same build tree. */
    char ctl[PATH_MAX];
    snprintf(ctl, sizeof(ctl), "%s/../../cli/persipubsub-ctl", dir);
    if (access(ctl, X_OK) == 0) {
        char *status_args[] = {"persipubsub-ctl", "--config", config_arg,
                               "status", NULL};
        printf("[demo] persipubsub-ctl --config %s status\n", config);
        fflush(stdout);
        ok &= wait_ok(spawn(dir, "../../cli/persipubsub-ctl", status_args),
                      "persipubsub-ctl status");
    }
    printf(ok ? "[demo] done: every subscriber received all " MESSAGES
                " messages\n"
              : "[demo] FAILED\n");
    return ok ? 0 : 1;
}
