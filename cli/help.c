/*
 * persipubsub-ctl: the command table and the help texts. Keep them in step
 * with docs/persipubsub-ctl.rst and docs/persipubsub-ctl.1.
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

const char ctl_tool_help[] =
    "Usage: persipubsub-ctl [--config FILE] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Deploy, operate and maintain the persipubsub queues of a configuration.\n"
    "\n"
    "Commands:\n"
    "  init [--queue Q]         create or update the queues of the "
    "configuration\n"
    "  prune [--queue Q]        remove dangling messages; print what was "
    "removed\n"
    "  clear [--queue Q]        delete every message; keep the subscribers\n"
    "  status [--queue Q] [--json]\n"
    "                           messages, bytes, ages, limits, subscribers\n"
    "  send PUB_ID [MESSAGE]    publish MESSAGE, or all of stdin, as PUB_ID\n"
    "  receive SUB_ID [--count N] [--timeout MS] [--raw]\n"
    "                           consume and print messages of SUB_ID\n"
    "  check [--queue Q] [--repair]\n"
    "                           verify (and repair) the queues' "
    "consistency\n"
    "  help [COMMAND]           print this help, or the help of COMMAND\n"
    "\n"
    "Options:\n"
    "  --config FILE   the configuration (default: $PERSIPUBSUB_CONFIG);\n"
    "                  accepted before or after the command\n"
    "  -h, --help      print help and exit\n"
    "  --version       print the version and exit\n"
    "\n"
    "Q is a queue's key in \"queues\" or its path. Exit status: 0 success,\n"
    "1 runtime failure, 2 usage or configuration error.\n"
    "See 'persipubsub-ctl COMMAND --help' and 'man persipubsub-ctl'.\n";

static const char help_init[] =
    "Usage: persipubsub-ctl [--config FILE] init [--queue Q]\n"
    "\n"
    "Create or update every queue of the configuration: directories, LMDB\n"
    "environment, limits and subscribers. Idempotent: run it at every\n"
    "deployment. A subscriber added to an existing queue receives only the\n"
    "messages published after it was added; subscribers that left the\n"
    "configuration are kept with their pending messages.\n"
    "\n"
    "Options:\n"
    "  --queue Q   only the queue with key or path Q (default: every queue)\n"
    "\n"
    "Prints one line per queue: 'PATH: initialized; subscribers: ID, ...'.\n";

static const char help_prune[] =
    "Usage: persipubsub-ctl [--config FILE] prune [--queue Q]\n"
    "\n"
    "Remove dangling messages: those older than MSG_TIMEOUT_SECS and, if a\n"
    "queue is at or over MAX_MSGS_NUM or HWM_LMDB_SIZE_BYTES, half of its\n"
    "messages as its strategy says.\n"
    "\n"
    "Options:\n"
    "  --queue Q   only the queue with key or path Q (default: every queue)\n"
    "\n"
    "Prints one line per queue: 'PATH: removed N messages, B bytes'.\n";

static const char help_clear[] =
    "Usage: persipubsub-ctl [--config FILE] clear [--queue Q]\n"
    "\n"
    "Delete every message; subscribers, limits and the id sequence stay.\n"
    "\n"
    "Options:\n"
    "  --queue Q   only the queue with key or path Q (default: every queue)\n"
    "\n"
    "Prints one line per queue: 'PATH: removed N messages, B bytes'.\n";

static const char help_status[] =
    "Usage: persipubsub-ctl [--config FILE] status [--queue Q] [--json]\n"
    "\n"
    "Print the state of every queue: path, key, messages, bytes, map size\n"
    "and use, age of the oldest message, next id, limits, strategy and\n"
    "durability; per subscriber its pending messages and the age of the\n"
    "oldest. Changes nothing.\n"
    "\n"
    "Options:\n"
    "  --queue Q   only the queue with key or path Q (default: every queue)\n"
    "  --json      one JSON document on one line, keys sorted (schema in\n"
    "              'man persipubsub-ctl')\n";

static const char help_send[] =
    "Usage: persipubsub-ctl [--config FILE] send PUB_ID [MESSAGE]\n"
    "\n"
    "Publish one message as the publisher PUB_ID: MESSAGE as given (no\n"
    "newline added), or, without MESSAGE, all of stdin as one message,\n"
    "byte for byte. Returns once the message is committed. Put '--' before\n"
    "a MESSAGE that starts with '-'.\n";

static const char help_receive[] =
    "Usage: persipubsub-ctl [--config FILE] receive SUB_ID [--count N]\n"
    "                       [--timeout MS] [--raw]\n"
    "\n"
    "Consume the pending messages of the subscriber SUB_ID, oldest first,\n"
    "and print them. A message is consumed only once it was written to\n"
    "stdout. Without --count, receives until nothing comes within the\n"
    "timeout and exits 0, also if nothing came.\n"
    "\n"
    "Options:\n"
    "  --count N     stop after N messages; exit 1 if fewer came in time\n"
    "  --timeout MS  how long to wait for each next message: 0 (default)\n"
    "                does not wait, -1 waits forever\n"
    "  --raw         write the payloads unmodified, without separators\n"
    "\n"
    "Without --raw, one line per message: 'ID TIME PAYLOAD', TIME the\n"
    "publish time in UTC (2024-05-01T12:00:00.123Z), PAYLOAD with '\\' and\n"
    "bytes outside printable ASCII escaped as \\\\, \\n, \\t, \\r, \\xHH.\n";

static const char help_check[] =
    "Usage: persipubsub-ctl [--config FILE] check [--queue Q] [--repair]\n"
    "\n"
    "Verify the internal consistency of every queue: settings and format\n"
    "version readable, every pending id with its payload and metadata,\n"
    "pending counts right, no payload without metadata, ids below the\n"
    "sequence. Prints each problem as 'PATH: problem'; exits 1 if any\n"
    "remain. Reads every message: it takes longer on a larger queue.\n"
    "\n"
    "Options:\n"
    "  --queue Q   only the queue with key or path Q (default: every queue)\n"
    "  --repair    also fix what can be fixed without losing a message that\n"
    "              a subscriber still pends on; prints 'PATH: repaired N\n"
    "              problems' per queue\n";

static const char help_help[] = "Usage: persipubsub-ctl help [COMMAND]\n"
                                "\n"
                                "Print the help of the tool, or of COMMAND.\n";

const ctl_command ctl_commands[] = {
    {"init", ctl_cmd_init, help_init},
    {"prune", ctl_cmd_prune, help_prune},
    {"clear", ctl_cmd_clear, help_clear},
    {"status", ctl_cmd_status, help_status},
    {"send", ctl_cmd_send, help_send},
    {"receive", ctl_cmd_receive, help_receive},
    {"check", ctl_cmd_check, help_check},
    {"help", ctl_cmd_help, help_help},
    {NULL, NULL, NULL},
};

const ctl_command *
ctl_find_command(const char *name)
{
    for (const ctl_command *c = ctl_commands; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

int
ctl_cmd_help(ctl_ctx *ctx, int argc, char **argv)
{
    static const ctl_opt opts[] = {{NULL, false}};
    const char *topic = NULL;
    ctl_parser p;
    ctl_parser_init(&p, ctx, opts, argc, argv);
    const char *value;
    int o;
    while ((o = ctl_parser_next(&p, &value)) != CTL_OPT_END) {
        int rc = ctl_parser_exit(ctx, o);
        if (rc >= 0) {
            return rc;
        }
        if (topic != NULL) {
            return ctl_usage(ctx, "%s: unexpected argument", value);
        }
        topic = value;
    }
    if (topic == NULL) {
        fputs(ctl_tool_help, stdout);
        return CTL_EXIT_OK;
    }
    const ctl_command *c = ctl_find_command(topic);
    if (c == NULL) {
        return ctl_usage(ctx, "%s: unknown command", topic);
    }
    fputs(c->help, stdout);
    return CTL_EXIT_OK;
}
