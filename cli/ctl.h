/*
 * persipubsub-ctl: what the files of the tool share.
 *
 * The tool uses only the public API (persipubsub/persipubsub.h): it is the
 * first user of the library. Conventions of every command:
 *
 * - data on stdout, diagnostics on stderr as one line
 *   "persipubsub-ctl: COMMAND: context: reason";
 * - exit status CTL_EXIT_OK, CTL_EXIT_FAIL (a runtime failure) or
 *   CTL_EXIT_USAGE (bad usage or a bad configuration);
 * - "--help" prints the command's help on stdout and exits 0.
 */
#ifndef PERSIPUBSUB_CTL_H
#define PERSIPUBSUB_CTL_H

#include <persipubsub/persipubsub.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_NAME "persipubsub-ctl"
#define CTL_CONFIG_ENV "PERSIPUBSUB_CONFIG"

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,
    CTL_EXIT_USAGE = 2,
};

/* The state a command runs with. */
typedef struct ctl_ctx {
    const char *cmd;    /* the command's name, for messages */
    const char *config; /* --config, else $PERSIPUBSUB_CONFIG, else NULL */
    bool config_given;  /* --config was given (once: twice is an error) */
} ctl_ctx;

/* ---- commands (one function per command, each in the file of its area) */

typedef int (*ctl_run_fn)(ctl_ctx *ctx, int argc, char **argv);

typedef struct ctl_command {
    const char *name;
    ctl_run_fn run;
    const char *help; /* the full text of "COMMAND --help" */
} ctl_command;

/* Both generated from the manual's COMMANDS and OPTIONS (cli/gen_help.py):
 * the commands, in the order of the tool's help, ending with a NULL name
 * (the manual's command "name" runs ctl_cmd_name(), "two-words"
 * ctl_cmd_two_words()), and the text of
 * "persipubsub-ctl --help". */
extern const ctl_command ctl_commands[];
extern const char ctl_tool_help[];

const ctl_command *ctl_find_command(const char *name);

int ctl_cmd_init(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_prune(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_clear(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_check(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_remove_subscriber(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_status(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_send(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_receive(ctl_ctx *ctx, int argc, char **argv);
int ctl_cmd_help(ctl_ctx *ctx, int argc, char **argv);

/* ---- options ------------------------------------------------------------ */

/* One option a command accepts: "--name", with or without a value. */
typedef struct ctl_opt {
    const char *name;
    bool has_value;
} ctl_opt;

/* Walks argv[1..argc-1] of a command: options (anywhere, "--name VALUE" or
 * "--name=VALUE"), operands, and "--" after which all is an operand. */
typedef struct ctl_parser {
    ctl_ctx *ctx;
    const ctl_opt *opts; /* ends with a NULL name */
    int argc;
    char **argv;
    int next;
    bool operands_only;
    bool help; /* --help or -h is among the arguments */
    unsigned seen; /* bit i: opts[i] was given (at most 32 options) */
} ctl_parser;

enum {
    CTL_OPT_END = -1,     /* nothing left */
    CTL_OPT_OPERAND = -2, /* *value is an operand */
    CTL_OPT_ERROR = -3,   /* a usage error, already reported */
    CTL_OPT_HELP = -4,    /* --help or -h */
};

void ctl_parser_init(ctl_parser *p, ctl_ctx *ctx, const ctl_opt *opts,
                     int argc, char **argv);
/* Returns the index of the option in opts (with *value set if it takes
 * one), or a CTL_OPT_* code. Handles --config itself (it is accepted after
 * the command too) and never returns it. An option that takes a value,
 * given a second time, is a usage error: which one was meant is unknown. */
int ctl_parser_next(ctl_parser *p, const char **value);
/* For a code that ends the command: CTL_OPT_HELP prints the command's help
 * and gives CTL_EXIT_OK, CTL_OPT_ERROR (already reported) CTL_EXIT_USAGE.
 * -1 for any other code. */
int ctl_parser_exit(const ctl_ctx *ctx, int o);

/* Parses a decimal integer in [min, max]; reports a usage error and returns
 * false if text is not one. */
bool ctl_parse_int(ctl_ctx *ctx, const char *opt, const char *text,
                   long long min, long long max, long long *out);

/* ---- diagnostics and exit status ---------------------------------------- */

/* Takes the value of --config; a usage error (CTL_EXIT_USAGE) if --config
 * was given already, -1 otherwise. */
int ctl_set_config(ctl_ctx *ctx, const char *value);

/* Prints "persipubsub-ctl: COMMAND: " and the message to stderr. */
void ctl_error(const ctl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A usage error: reports it with a pointer to --help; returns
 * CTL_EXIT_USAGE. */
int ctl_usage(const ctl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reports a failed library call (pps_last_error(), else pps_strerror())
 * and returns the exit status that status maps to. */
int ctl_fail(const ctl_ctx *ctx, int status);
/* The exit status for a library status. */
int ctl_exit_status(int status);

/* ---- configuration and queues ------------------------------------------- */

/* Loads ctx->config; on failure reports it and returns the exit status. */
int ctl_load_config(ctl_ctx *ctx, pps_config **cfg);

/* A queue of the configuration, as pps_ctl_status() names it. */
typedef struct ctl_queue {
    char *key;
    char *path;
} ctl_queue;

typedef struct ctl_queue_list {
    ctl_queue *items;
    size_t n;
} ctl_queue_list;

/* Lists the queues of cfg (all, or the one queue names) in configuration
 * order. Returns a library status; free the list with ctl_queues_free(). */
int ctl_queues(const pps_config *cfg, const char *queue, ctl_queue_list *out);
void ctl_queues_free(ctl_queue_list *list);

/* ---- progress of long operations on a terminal -------------------------- */

/* If stderr is a terminal, arranges for "persipubsub-ctl: COMMAND: WHAT
 * PATH..." to be printed if the operation takes longer than a second. */
void ctl_progress_begin(const ctl_ctx *ctx, const char *what,
                        const char *path);
/* Ends it; prints "... done" if the progress line was shown. */
void ctl_progress_end(void);

/* ---- formatting --------------------------------------------------------- */

/* CLOCK_REALTIME in nanoseconds. */
int64_t ctl_now_ns(void);
/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) for a CLOCK_REALTIME time in
 * nanoseconds; buf must hold CTL_ISO_TIME_MAX bytes (room for any struct
 * tm, so that compilers can prove no truncation). */
#define CTL_ISO_TIME_MAX 96
void ctl_iso_time(char *buf, int64_t ns);
/* Milliseconds from published_ns to now_ns, never negative. */
int64_t ctl_age_ms(int64_t now_ns, int64_t published_ns);

#endif /* PERSIPUBSUB_CTL_H */
