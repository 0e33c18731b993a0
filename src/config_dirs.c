/*
 * Queue directories of a configuration: their spelling, and which queues
 * name the same one.
 *
 * Two queues of one configuration must never share a directory: they would
 * share one LMDB environment under two sets of settings and subscribers,
 * and messages would be lost. The paths are normalized (".", duplicate and
 * trailing slashes) and compared; ".." is kept, as resolving it lexically
 * would be wrong across symbolic links.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
pps__path_normalize(char *s)
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
    pps__path_normalize(p);
    return p;
}

typedef struct queue_dir {
    char *path; /* as the queue opens it */
} queue_dir;

struct pps__config_dirs {
    size_t n;        /* added so far */
    size_t cap;      /* room in list */
    queue_dir *list; /* in the order added */
};

pps__config_dirs *
pps__config_dirs_new(size_t cap)
{
    pps__config_dirs *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->cap = cap;
    d->list = calloc(cap > 0 ? cap : 1, sizeof(*d->list));
    if (d->list == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

int
pps__config_dirs_add(pps__config_dirs *d, const char *path, size_t *alias)
{
    *alias = SIZE_MAX;
    if (d->n == d->cap) {
        return pps__err(PPS_EINVAL, "pps__config_dirs_add: no room");
    }
    queue_dir *q = &d->list[d->n];
    q->path = strdup(path);
    if (q->path == NULL) {
        return PPS_ENOMEM;
    }
    for (size_t i = 0; i < d->n && *alias == SIZE_MAX; i++) {
        if (strcmp(d->list[i].path, q->path) == 0) {
            *alias = i;
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
        free(d->list[i].path);
    }
    free(d->list);
    free(d);
}
