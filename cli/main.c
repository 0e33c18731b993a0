/*
 * persipubsub-ctl: deploy, operate and maintain persipubsub queues.
 *
 *   persipubsub-ctl [--config FILE] COMMAND [OPTIONS] [ARGS]
 *
 * This file parses the options that come before the command and hands the
 * rest to the command. The manual, docs/persipubsub-ctl.rst, is also the
 * source of the command table and the help texts (cli/gen_help.py).
 */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Like coreutils: output that could not be written is a failure, also for
 * --help and --version. A command that failed has said why already. */
static int
finish(int rc)
{
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CTL_EXIT_OK) {
        int err = errno;
        fprintf(stderr, CTL_NAME ": stdout: %s\n",
                err != 0 ? strerror(err) : "write error");
        return CTL_EXIT_FAIL;
    }
    return rc;
}

int
main(int argc, char **argv)
{
    ctl_ctx ctx = {NULL, getenv(CTL_CONFIG_ENV), false};
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        const char *arg = argv[i++];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(ctl_tool_help, stdout);
            return finish(CTL_EXIT_OK);
        }
        if (strcmp(arg, "--version") == 0) {
            printf(CTL_NAME " %s\n", pps_version());
            return finish(CTL_EXIT_OK);
        }
        if (strcmp(arg, "--config") == 0) {
            if (i == argc) {
                return ctl_usage(&ctx, "--config: missing value");
            }
            if (ctl_set_config(&ctx, argv[i++]) >= 0) {
                return CTL_EXIT_USAGE;
            }
        } else if (strncmp(arg, "--config=", 9) == 0) {
            if (ctl_set_config(&ctx, arg + 9) >= 0) {
                return CTL_EXIT_USAGE;
            }
        } else {
            const char *eq = strchr(arg, '=');
            int len = eq != NULL ? (int)(eq - arg) : (int)strlen(arg);
            return ctl_usage(&ctx, "%.*s: unknown option", len, arg);
        }
    }
    if (i == argc) {
        return ctl_usage(&ctx, "missing COMMAND");
    }
    const ctl_command *cmd = ctl_find_command(argv[i]);
    if (cmd == NULL) {
        return ctl_usage(&ctx, "%s: unknown command", argv[i]);
    }
    ctx.cmd = cmd->name;
    return finish(cmd->run(&ctx, argc - i, argv + i));
}
