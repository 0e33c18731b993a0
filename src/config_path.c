/*
 * Configuration errors: the JSON path of the offending value and the one
 * line that names it.
 *
 * A message reads "FILE: JSONPATH: expected ..., got VALUE". The path uses
 * .KEY for identifiers (bare at the top level) and ["KEY"] for anything
 * else; values and long keys are rendered as compact ASCII JSON, clipped to
 * RENDER_MAX characters (never inside an escape sequence), so that a hostile
 * file cannot make a message long or split it over lines. The first error of
 * a call wins (pps__err()), so a validator can simply return what these
 * functions return.
 */
#include "internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX 40  /* characters of a value or key shown in a message */
#define MESSAGE_MAX 1024 /* a whole message (the size of error.c's buffer) */

#define ALPHA "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"

_Static_assert(PPS__CONFIG_RENDER_SIZE >= RENDER_MAX + 8,
               "room for a clipped value, its quotes and the ellipsis");

/* Copies the JSON text s to out, cut after at most `max` characters (never
 * inside an escape sequence) and then marked with "...". */
static void
clip(char *out, size_t size, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = 0;
    while (n < len) {
        size_t tok = 1;
        if (s[n] == '\\' && n + 1 < len) {
            tok = s[n + 1] == 'u' ? 6 : 2;
        }
        if (n + tok > max) {
            break;
        }
        n += tok;
    }
    if (n > len) {
        n = len;
    }
    snprintf(out, size, "%.*s%s", (int)n, s, n < len ? "..." : "");
}

void
pps__config_render_value(const json_t *v, char *out, size_t size)
{
    char *s =
        json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s == NULL) {
        snprintf(out, size, "?");
        return;
    }
    clip(out, size, s, RENDER_MAX);
    free(s);
}

void
pps__config_render_key(const char *key, char *out, size_t size)
{
    json_t *s = json_string(key);
    if (s == NULL) {
        snprintf(out, size, "\"?\"");
        return;
    }
    pps__config_render_value(s, out, size);
    json_decref(s);
}

static bool
is_ident(const char *s)
{
    return strspn(s, ALPHA) > 0 && s[strspn(s, ALPHA "0123456789")] == '\0';
}

/* out = the strings of parts one after the other, cut to fit. */
static void
concat(char *out, size_t size, const char *const *parts, size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (len > size - 1 - off) {
            len = size - 1 - off;
        }
        memcpy(out + off, parts[i], len);
        off += len;
    }
    out[off] = '\0';
}

#define CONCAT(out, size, ...)                                                \
    concat((out), (size), (const char *const[]){__VA_ARGS__},                 \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

void
pps__config_jp_key(char out[PPS__CONFIG_JP_MAX], const char *parent,
                   const char *key)
{
    if (is_ident(key) && strlen(key) <= RENDER_MAX) {
        CONCAT(out, PPS__CONFIG_JP_MAX, parent, parent[0] != '\0' ? "." : "",
               key);
    } else {
        char r[PPS__CONFIG_RENDER_SIZE];
        pps__config_render_key(key, r, sizeof(r));
        CONCAT(out, PPS__CONFIG_JP_MAX, parent, "[", r, "]");
    }
}

void
pps__config_jp_index(char out[PPS__CONFIG_JP_MAX], const char *parent,
                     size_t i)
{
    char num[32];
    snprintf(num, sizeof(num), "[%zu]", i);
    CONCAT(out, PPS__CONFIG_JP_MAX, parent, num);
}

/* Replaces control characters, so that a message is always one line. */
static void
one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}

int
pps__config_report(int status, const char *head, const char *mid,
                   const char *tail)
{
    char line[MESSAGE_MAX];
    CONCAT(line, sizeof(line), head, mid, tail);
    one_line(line);
    return pps__err(status, "%s", line);
}

int
pps__config_fail(const char *file, const char *jp, const char *fmt, ...)
{
    char msg[MESSAGE_MAX];
    char line[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (jp[0] != '\0') {
        CONCAT(line, sizeof(line), file, ": ", jp, ": ", msg);
    } else {
        CONCAT(line, sizeof(line), file, ": ", msg);
    }
    one_line(line);
    return pps__err(PPS_ECONFIG, "%s", line);
}

int
pps__config_fail_got(const char *file, const char *jp, const char *expected,
                     const json_t *v)
{
    if (v == NULL) {
        return pps__config_fail(file, jp, "expected %s, missing", expected);
    }
    char got[PPS__CONFIG_RENDER_SIZE];
    pps__config_render_value(v, got, sizeof(got));
    return pps__config_fail(file, jp, "expected %s, got %s", expected, got);
}
