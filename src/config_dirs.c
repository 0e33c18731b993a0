/*
 * Queue directories of a configuration: spelling and identity.
 *
 * Two queues of one configuration must never share a directory: they would
 * share one LMDB environment under two sets of settings and subscribers,
 * and messages would be lost. Two checks find aliases:
 *
 * - pps__config_parse() (pure: it touches no file) compares spellings
 *   folded lexically: ".", "..", duplicate and trailing slashes. Folding
 *   ".." is only a guess across a symbolic link ("l/.." is not "." when l
 *   points elsewhere), so the folded spelling is used for the comparison
 *   alone; the path the library opens keeps its "..".
 * - pps_config_load() also asks the file system: directories that exist
 *   compare by device and inode (a symbolic link, a bind mount), others by
 *   realpath() of their longest existing prefix followed by the rest of
 *   the path folded lexically (nothing below that prefix exists yet, so
 *   there is no link left to follow). It only reads: stat() and realpath().
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Is the segment s[0..len) ".."? */
static bool
is_dotdot(const char *s, size_t len)
{
    return len == 2 && s[0] == '.' && s[1] == '.';
}

/* Where the last segment of s[0..w) begins. */
static size_t
last_segment(const char *s, size_t w)
{
    while (w > 0 && s[w - 1] != '/') {
        w--;
    }
    return w;
}

void
pps__path_normalize(char *s, bool fold_dotdot)
{
    bool absolute = s[0] == '/';
    size_t r = 0;
    size_t w = 0;
    while (s[r] != '\0') {
        while (s[r] == '/') {
            r++;
        }
        size_t start = r;
        while (s[r] != '\0' && s[r] != '/') {
            r++;
        }
        size_t seg = r - start;
        if (seg == 0 || (seg == 1 && s[start] == '.')) {
            continue;
        }
        if (fold_dotdot && is_dotdot(s + start, seg)) {
            size_t last = last_segment(s, w);
            if (w > last && !is_dotdot(s + last, w - last)) {
                w = last > 0 ? last - 1 : 0; /* drops "/name" or "name" */
                continue;
            }
            if (absolute) {
                continue; /* "/.." is "/" */
            }
        }
        if (w > 0 || absolute) {
            s[w++] = '/';
        }
        memmove(s + w, s + start, seg);
        w += seg;
    }
    if (w == 0) {
        s[w++] = absolute ? '/' : '.';
    }
    s[w] = '\0';
}

char *
pps__path_join(const char *base_dir, const char *rel)
{
    size_t blen = 0;
    if (rel[0] != '/' && base_dir != NULL) {
        blen = strlen(base_dir);
        while (blen > 0 && base_dir[blen - 1] == '/') {
            blen--;
        }
        if (blen == 0 && base_dir[0] == '/') {
            blen = 1; /* the root directory itself */
        }
    }
    size_t rlen = strlen(rel);
    char *p = malloc(blen + 1 + rlen + 1);
    if (p == NULL) {
        return NULL;
    }
    size_t off = 0;
    if (blen > 0) {
        memcpy(p, base_dir, blen);
        off = blen;
        p[off++] = '/';
    }
    memcpy(p + off, rel, rlen + 1);
    pps__path_normalize(p, false);
    return p;
}

/* real + "/" + rest, folded lexically; NULL when out of memory. */
static char *
join_folded(const char *real, const char *rest)
{
    size_t rl = strlen(real);
    size_t tl = strlen(rest);
    char *p = malloc(rl + 1 + tl + 1);
    if (p == NULL) {
        return NULL;
    }
    snprintf(p, rl + 1 + tl + 1, "%s/%s", real, rest);
    pps__path_normalize(p, true);
    return p;
}

/* What a queue directory is on disk. */
typedef struct dir_id {
    bool exists; /* stat() succeeded: dev and ino name it */
    dev_t dev;
    ino_t ino;
    char *real; /* realpath() of the longest existing prefix + the rest
                   folded lexically; NULL when not even "." resolves */
} dir_id;

static void
dir_id_free(dir_id *id)
{
    free(id->real);
    id->real = NULL;
}

/* Fills *out with stat() and realpath() only; PPS_OK or PPS_ENOMEM (then
 * *out holds nothing). */
static int
dir_id_get(dir_id *out, const char *path)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(path, &st) == 0) {
        out->exists = true;
        out->dev = st.st_dev;
        out->ino = st.st_ino;
    }
    int rc = PPS_OK;
    char *prefix = strdup(path);
    if (prefix == NULL) {
        rc = PPS_ENOMEM;
        goto fail;
    }
    /* prefix[0..cut) is the part tried; path + cut the rest. */
    size_t cut = strlen(path);
    for (;;) {
        prefix[cut] = '\0';
        const char *tried = cut > 0 ? prefix : (path[0] == '/' ? "/" : ".");
        char *real = realpath(tried, NULL);
        if (real != NULL) {
            out->real = join_folded(real, path + cut);
            free(real);
            if (out->real == NULL) {
                rc = PPS_ENOMEM;
                goto fail;
            }
            break;
        }
        if (errno == ENOMEM) {
            rc = PPS_ENOMEM;
            goto fail;
        }
        if (cut == 0) {
            break; /* not even "." resolves: identity unknown */
        }
        cut = last_segment(path, cut);
        while (cut > 0 && path[cut - 1] == '/') {
            cut--;
        }
    }

fail:
    free(prefix);
    if (rc != PPS_OK) {
        dir_id_free(out);
    }
    return rc;
}

static bool
dir_id_same(const dir_id *a, const dir_id *b)
{
    if (a->exists && b->exists) {
        return a->dev == b->dev && a->ino == b->ino;
    }
    return a->real != NULL && b->real != NULL && strcmp(a->real, b->real) == 0;
}

typedef struct queue_dir {
    char *folded; /* the path with ".." folded lexically */
    dir_id id;    /* on disk (only with on_disk) */
} queue_dir;

struct pps__config_dirs {
    bool on_disk;
    size_t n;        /* added so far */
    size_t cap;      /* room in list */
    queue_dir *list; /* in the order added */
};

pps__config_dirs *
pps__config_dirs_new(size_t cap, bool on_disk)
{
    pps__config_dirs *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->on_disk = on_disk;
    d->cap = cap;
    d->list = calloc(cap > 0 ? cap : 1, sizeof(*d->list));
    if (d->list == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

int
pps__config_dirs_add(pps__config_dirs *d, const char *path, size_t *alias,
                     bool *on_disk_only)
{
    *alias = SIZE_MAX;
    *on_disk_only = false;
    if (d->n == d->cap) {
        return pps__err(PPS_EINVAL, "pps__config_dirs_add: no room");
    }
    queue_dir *q = &d->list[d->n];
    q->folded = strdup(path);
    if (q->folded == NULL) {
        return PPS_ENOMEM;
    }
    pps__path_normalize(q->folded, true);
    if (d->on_disk && dir_id_get(&q->id, path) != PPS_OK) {
        free(q->folded);
        q->folded = NULL;
        return PPS_ENOMEM;
    }
    for (size_t i = 0; i < d->n && *alias == SIZE_MAX; i++) {
        if (strcmp(d->list[i].folded, q->folded) == 0) {
            *alias = i;
        } else if (d->on_disk && dir_id_same(&d->list[i].id, &q->id)) {
            *alias = i;
            *on_disk_only = true;
        }
    }
    d->n++;
    return PPS_OK;
}

void
pps__config_dirs_free(pps__config_dirs *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->list[i].folded);
        dir_id_free(&d->list[i].id);
    }
    free(d->list);
    free(d);
}
