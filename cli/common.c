/*
 * persipubsub-ctl: what every command uses: option parsing, diagnostics and
 * exit status, loading the configuration, listing its queues, progress on
 * a terminal, and time formatting.
 */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- diagnostics and exit status ---------------------------------------- */

static void verror(const ctl_ctx *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
verror(const ctl_ctx *ctx, const char *fmt, va_list ap)
{
    fputs(CTL_NAME ": ", stderr);
    if (ctx != NULL && ctx->cmd != NULL) {
        fprintf(stderr, "%s: ", ctx->cmd);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
ctl_error(const ctl_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(ctx, fmt, ap);
    va_end(ap);
}

int
ctl_usage(const ctl_ctx *ctx, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (ctx != NULL && ctx->cmd != NULL) {
        ctl_error(ctx, "%s (see " CTL_NAME " %s --help)", text, ctx->cmd);
    } else {
        ctl_error(ctx, "%s (see " CTL_NAME " --help)", text);
    }
    return CTL_EXIT_USAGE;
}

int
ctl_exit_status(int status)
{
    switch (status) {
    case PPS_OK:
        return CTL_EXIT_OK;
    case PPS_EINVAL:
    case PPS_ECONFIG:
    case PPS_ENOTFOUND:
        return CTL_EXIT_USAGE;
    default:
        return CTL_EXIT_FAIL;
    }
}

int
ctl_fail(const ctl_ctx *ctx, int status)
{
    const char *detail = pps_last_error();
    ctl_error(ctx, "%s", detail[0] != '\0' ? detail : pps_strerror(status));
    return ctl_exit_status(status);
}

/* ---- options ------------------------------------------------------------ */

void
ctl_parser_init(ctl_parser *p, ctl_ctx *ctx, const ctl_opt *opts, int argc,
                char **argv)
{
    p->ctx = ctx;
    p->opts = opts;
    p->argc = argc;
    p->argv = argv;
    p->next = 1;
    p->operands_only = false;
    p->help = false;
    p->seen = 0;
    /* --help wins over whatever else is wrong on the command line. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            p->help = true;
        }
    }
}

/* Finds "--name" or "--name=..." in opts; -1 if unknown. */
static int
find_opt(const ctl_opt *opts, const char *arg, size_t name_len)
{
    for (int i = 0; opts != NULL && opts[i].name != NULL; i++) {
        if (strlen(opts[i].name) == name_len &&
            strncmp(opts[i].name, arg, name_len) == 0) {
            return i;
        }
    }
    return -1;
}

int
ctl_parser_next(ctl_parser *p, const char **value)
{
    if (p->help) {
        p->help = false;
        p->next = p->argc;
        return CTL_OPT_HELP;
    }
    for (;;) {
        if (p->next >= p->argc) {
            return CTL_OPT_END;
        }
        const char *arg = p->argv[p->next++];
        *value = NULL;
        if (p->operands_only || arg[0] != '-' || arg[1] == '\0') {
            *value = arg; /* "-" alone is an operand, as usual */
            return CTL_OPT_OPERAND;
        }
        if (strcmp(arg, "--") == 0) {
            p->operands_only = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return CTL_OPT_HELP;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        bool config = name_len == 8 && strncmp(arg, "--config", 8) == 0;
        int i = config ? -1 : find_opt(p->opts, arg, name_len);
        if (!config && i < 0) {
            ctl_usage(p->ctx, "%.*s: unknown option", (int)name_len, arg);
            return CTL_OPT_ERROR;
        }
        bool has_value = config || p->opts[i].has_value;
        if (!has_value) {
            if (eq != NULL) {
                ctl_usage(p->ctx, "%.*s: takes no value", (int)name_len, arg);
                return CTL_OPT_ERROR;
            }
            return i;
        }
        if (eq != NULL) {
            *value = eq + 1;
        } else if (p->next < p->argc) {
            *value = p->argv[p->next++];
        } else {
            ctl_usage(p->ctx, "%s: missing value", arg);
            return CTL_OPT_ERROR;
        }
        if (config) {
            if (ctl_set_config(p->ctx, *value) >= 0) {
                return CTL_OPT_ERROR;
            }
            continue;
        }
        if (i < 32 && (p->seen & (1u << i)) != 0) {
            ctl_usage(p->ctx, "%s: given twice", p->opts[i].name);
            return CTL_OPT_ERROR;
        }
        p->seen |= i < 32 ? 1u << i : 0;
        return i;
    }
}

int
ctl_set_config(ctl_ctx *ctx, const char *value)
{
    if (ctx->config_given) {
        return ctl_usage(ctx, "--config: given twice");
    }
    ctx->config_given = true;
    ctx->config = value;
    return -1;
}

int
ctl_parser_exit(const ctl_ctx *ctx, int o)
{
    if (o == CTL_OPT_HELP) {
        fputs(ctl_find_command(ctx->cmd)->help, stdout);
        return CTL_EXIT_OK;
    }
    return o == CTL_OPT_ERROR ? CTL_EXIT_USAGE : -1;
}

bool
ctl_parse_int(ctl_ctx *ctx, const char *opt, const char *text, long long min,
              long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        if (max == LLONG_MAX) {
            ctl_usage(ctx,
                      "%s: expected an integer of at least %lld, got "
                      "\"%s\"",
                      opt, min, text);
        } else {
            ctl_usage(ctx,
                      "%s: expected an integer from %lld to %lld, got "
                      "\"%s\"",
                      opt, min, max, text);
        }
        return false;
    }
    *out = v;
    return true;
}

/* ---- configuration and queues ------------------------------------------- */

int
ctl_load_config(ctl_ctx *ctx, pps_config **cfg)
{
    *cfg = NULL;
    if (ctx->config == NULL || ctx->config[0] == '\0') {
        return ctl_usage(
            ctx, "no configuration: use --config FILE or set " CTL_CONFIG_ENV);
    }
    int status = pps_config_load(cfg, ctx->config);
    if (status != PPS_OK) {
        return ctl_fail(ctx, status);
    }
    return CTL_EXIT_OK;
}

int
ctl_queues(const pps_config *cfg, const char *queue, ctl_queue_list *out)
{
    out->items = NULL;
    out->n = 0;
    size_t first = 0, end = pps_config_queue_count(cfg);
    if (queue != NULL) {
        int status = pps_config_queue_find(cfg, queue, &first);
        if (status != PPS_OK) {
            return status;
        }
        end = first + 1;
    }
    out->items = calloc(end - first + 1, sizeof(*out->items));
    if (out->items == NULL) {
        return PPS_ENOMEM;
    }
    for (size_t i = first; i < end; i++) {
        ctl_queue *q = &out->items[out->n++];
        q->key = strdup(pps_config_queue_key(cfg, i));
        q->path = strdup(pps_config_queue_path(cfg, i));
        if (q->key == NULL || q->path == NULL) {
            ctl_queues_free(out);
            return PPS_ENOMEM;
        }
    }
    return PPS_OK;
}

void
ctl_queues_free(ctl_queue_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].key);
        free(list->items[i].path);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

/* ---- progress ----------------------------------------------------------- */

/* The line the timer prints: formatted beforehand, written with write(2),
 * which is async-signal-safe. */
static char progress_line[1024];
static size_t progress_len;  /* the whole line */
static size_t progress_base; /* the line without its "...\n" */
static volatile sig_atomic_t progress_shown;
static bool progress_armed;
static struct sigaction progress_old;

static void
progress_alarm(int sig)
{
    (void)sig;
    ssize_t n = write(STDERR_FILENO, progress_line, progress_len);
    (void)n;
    progress_shown = 1;
}

void
ctl_progress_begin(const ctl_ctx *ctx, const char *what, const char *path)
{
    if (!isatty(STDERR_FILENO)) {
        return;
    }
    static const char tail[] = "...\n";
    int n = snprintf(progress_line, sizeof(progress_line) - sizeof(tail),
                     CTL_NAME ": %s: %s %s", ctx->cmd, what, path);
    if (n < 0) {
        return;
    }
    progress_base = strlen(progress_line); /* also if it was truncated */
    memcpy(progress_line + progress_base, tail, sizeof(tail));
    progress_len = progress_base + sizeof(tail) - 1;
    progress_shown = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = progress_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, &progress_old) != 0) {
        return;
    }
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    it.it_value.tv_sec = 1;
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        sigaction(SIGALRM, &progress_old, NULL);
        return;
    }
    progress_armed = true;
}

void
ctl_progress_end(void)
{
    if (!progress_armed) {
        return;
    }
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    sigaction(SIGALRM, &progress_old, NULL);
    progress_armed = false;
    if (progress_shown) {
        fprintf(stderr, "%.*s: done\n", (int)progress_base, progress_line);
    }
}

/* ---- formatting --------------------------------------------------------- */

int64_t
ctl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
ctl_iso_time(char *buf, int64_t ns)
{
    int64_t sec = ns / 1000000000;
    int64_t rem = ns % 1000000000;
    if (rem < 0) {
        sec--;
        rem += 1000000000;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, CTL_ISO_TIME_MAX, "?");
        return;
    }
    snprintf(buf, CTL_ISO_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(rem / 1000000));
}

int64_t
ctl_age_ms(int64_t now_ns, int64_t published_ns)
{
    if (published_ns >= now_ns) {
        return 0;
    }
    return (now_ns - published_ns) / 1000000;
}
