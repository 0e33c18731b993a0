/*
 * persipubsub-ctl send and receive: publish and consume messages by hand,
 * for operating and debugging a deployment.
 *
 * receive consumes a message only after it was written to stdout and
 * flushed: the callback returns non-zero on a write error, so the library
 * keeps the message (at-least-once, as for any subscriber). A receive
 * killed while writing leaves the message pending too.
 */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- send --------------------------------------------------------------- */

/* Reads all of stdin, binary-safe. */
static int
read_stdin(ctl_ctx *ctx, char **out, size_t *out_len)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        ctl_error(ctx, "out of memory");
        return CTL_EXIT_FAIL;
    }
    for (;;) {
        if (len == cap) {
            char *bigger = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL) {
                free(buf);
                ctl_error(ctx, "stdin: too large to hold in memory");
                return CTL_EXIT_FAIL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, stdin);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(stdin)) {
        int err = errno;
        free(buf);
        ctl_error(ctx, "stdin: %s", strerror(err));
        return CTL_EXIT_FAIL;
    }
    *out = buf;
    *out_len = len;
    return CTL_EXIT_OK;
}

int
ctl_cmd_send(ctl_ctx *ctx, int argc, char **argv)
{
    static const ctl_opt opts[] = {{NULL, false}};
    const char *operands[3] = {NULL, NULL, NULL};
    int n_operands = 0;
    ctl_parser p;
    ctl_parser_init(&p, ctx, opts, argc, argv);
    const char *value;
    int o;
    while ((o = ctl_parser_next(&p, &value)) != CTL_OPT_END) {
        int rc = ctl_parser_exit(ctx, o);
        if (rc >= 0) {
            return rc;
        }
        if (n_operands == 2) {
            return ctl_usage(ctx,
                             "%s: unexpected argument; quote a MESSAGE "
                             "with spaces",
                             value);
        }
        operands[n_operands++] = value;
    }
    if (n_operands == 0) {
        return ctl_usage(ctx, "missing PUB_ID");
    }
    pps_config *cfg;
    int rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    pps_pub *pub = NULL;
    char *input = NULL;
    const void *data = operands[1];
    size_t len = operands[1] != NULL ? strlen(operands[1]) : 0;
    int status = pps_pub_open(&pub, cfg, operands[0]);
    if (status != PPS_OK) {
        rc = ctl_fail(ctx, status);
        goto done;
    }
    /* "-" is stdin, as usual; a lone dash as the message comes by stdin. */
    if (operands[1] == NULL || strcmp(operands[1], "-") == 0) {
        /* Opened first, so that a wrong id fails before stdin is read. */
        rc = read_stdin(ctx, &input, &len);
        if (rc != CTL_EXIT_OK) {
            goto done;
        }
        data = input;
    }
    status = pps_pub_send(pub, data, len);
    rc = status == PPS_OK ? CTL_EXIT_OK : ctl_fail(ctx, status);
done:
    free(input);
    pps_pub_close(pub);
    pps_config_free(cfg);
    return rc;
}

/* ---- receive ------------------------------------------------------------ */

typedef struct receiver {
    bool raw;
    int write_errno; /* the error of a failed write to stdout, 0 if none */
    uint64_t kept_id;
} receiver;

/* Writes the payload as text: printable ASCII as is, the rest escaped as C
 * does (\n, \t, \r, \\, \xHH), so that one message is one line. */
static void
print_escaped(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '\\') {
            fputs("\\\\", stdout);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c == '\r') {
            fputs("\\r", stdout);
        } else if (c >= 0x20 && c < 0x7f) {
            putchar(c);
        } else {
            printf("\\x%02x", c);
        }
    }
}

static int
on_message(const pps_message *msg, void *user)
{
    receiver *r = user;
    errno = 0;
    if (r->raw) {
        if (msg->len > 0) {
            fwrite(msg->data, 1, msg->len, stdout);
        }
    } else {
        char iso[CTL_ISO_TIME_MAX];
        ctl_iso_time(iso, msg->published_ns);
        printf("%llu %s ", (unsigned long long)msg->id, iso);
        print_escaped(msg->data, msg->len);
        putchar('\n');
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        r->write_errno = errno != 0 ? errno : EIO;
        r->kept_id = msg->id;
        return 1; /* keep it: it was not delivered */
    }
    return 0;
}

int
ctl_cmd_receive(ctl_ctx *ctx, int argc, char **argv)
{
    static const ctl_opt opts[] = {{"--count", true},
                                   {"--timeout", true},
                                   {"--raw", false},
                                   {NULL, false}};
    const char *sub_id = NULL;
    long long count = 0; /* 0: everything pending */
    long long timeout = 0;
    receiver r = {false, 0, 0};
    ctl_parser p;
    ctl_parser_init(&p, ctx, opts, argc, argv);
    const char *value;
    int o;
    while ((o = ctl_parser_next(&p, &value)) != CTL_OPT_END) {
        int rc = ctl_parser_exit(ctx, o);
        if (rc >= 0) {
            return rc;
        }
        switch (o) {
        case CTL_OPT_OPERAND:
            if (sub_id != NULL) {
                return ctl_usage(ctx, "%s: unexpected argument", value);
            }
            sub_id = value;
            break;
        case 0:
            if (!ctl_parse_int(ctx, "--count", value, 1, LLONG_MAX, &count)) {
                return CTL_EXIT_USAGE;
            }
            break;
        case 1:
            if (!ctl_parse_int(ctx, "--timeout", value, -1, INT_MAX,
                               &timeout)) {
                return CTL_EXIT_USAGE;
            }
            break;
        default:
            r.raw = true;
            break;
        }
    }
    if (sub_id == NULL) {
        return ctl_usage(ctx, "missing SUB_ID");
    }
    pps_config *cfg;
    int rc = ctl_load_config(ctx, &cfg);
    if (rc != CTL_EXIT_OK) {
        return rc;
    }
    pps_sub *sub = NULL;
    long long got = 0;
    int status = pps_sub_open(&sub, cfg, sub_id);
    while (status == PPS_OK && (count == 0 || got < count)) {
        status = pps_sub_receive(sub, (int)timeout, on_message, &r);
        got += status == PPS_OK;
    }
    if (status == PPS_OK || (status == PPS_ETIMEDOUT && count == 0)) {
        rc = CTL_EXIT_OK;
    } else if (status == PPS_ETIMEDOUT && got == 0) {
        ctl_error(ctx, "%s: no message within %lld ms", sub_id, timeout);
        rc = CTL_EXIT_FAIL;
    } else if (status == PPS_ETIMEDOUT) {
        ctl_error(ctx,
                  "%s: received %lld of %lld messages; no more within "
                  "%lld ms",
                  sub_id, got, count, timeout);
        rc = CTL_EXIT_FAIL;
    } else if (status == PPS_ECALLBACK && r.write_errno != 0) {
        ctl_error(ctx, "stdout: %s; message %llu kept for \"%s\"",
                  strerror(r.write_errno), (unsigned long long)r.kept_id,
                  sub_id);
        rc = CTL_EXIT_FAIL;
    } else {
        rc = ctl_fail(ctx, status);
    }
    pps_sub_close(sub);
    pps_config_free(cfg);
    return rc;
}
