/*
 * persipubsub-ctl: looking up commands, and the help command. The command
 * table and the help texts (ctl_commands[], ctl_tool_help) are generated
 * from the manual, docs/persipubsub-ctl.rst, by cli/gen_help.py into
 * help_text.c of the build tree: edit the manual, not C strings.
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

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
