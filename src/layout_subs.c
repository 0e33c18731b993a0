/*
 * The storage layout, continued: the subscribers of a queue (documented in
 * docs/format.rst). The list of registered ids is the "subscribers" record
 * of pps.meta (each id NUL-terminated); each subscriber has a pending
 * database "sub:<id>" (MDB_INTEGERKEY) listing the ids it has not
 * consumed. No internal database name starts with "sub:", so no id can
 * clash with one. The messages themselves are layout.c's.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(PPS__SUB_PREFIX) - 1 + 255 + 1 == PPS__SUB_NAME_MAX,
               "PPS__SUB_NAME_MAX follows the prefix");

/* ---- subscribers ----------------------------------------------------------- */

void
pps__layout_sub_name(char out[PPS__SUB_NAME_MAX], const char *sub_id)
{
    size_t plen = sizeof(PPS__SUB_PREFIX) - 1;
    size_t idlen = strnlen(sub_id, PPS__SUB_NAME_MAX - plen - 1);
    memcpy(out, PPS__SUB_PREFIX, plen);
    memcpy(out + plen, sub_id, idlen);
    out[plen + idlen] = '\0';
}

/* Opens the pending database of sub_id (creating it if `create`). */
static int
open_pending(const pps__env *e, MDB_txn *txn, const char *sub_id,
             bool create, MDB_dbi *out)
{
    char name[PPS__SUB_NAME_MAX];
    pps__layout_sub_name(name, sub_id);
    int rc = mdb_dbi_open(txn, name, PPS__ID_KEYED | (create ? MDB_CREATE : 0),
                          out);
    if (rc == MDB_NOTFOUND) {
        char what[PPS__SUB_NAME_MAX + 64];
        snprintf(what, sizeof(what), "subscriber \"%s\" is not registered",
                 sub_id);
        return pps__err_notinit(e->path, what);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot open subscriber database", e->path);
    }
    return PPS_OK;
}

static int read_ids(const pps__env *e, MDB_txn *txn, pps__subs *s);

int
pps__subs_open_one(const pps__env *e, MDB_txn *txn, const char *sub_id,
                   MDB_dbi *out, size_t *index)
{
    /* The list decides, not mdb_dbi_open(): in a process that had the
     * database open before another process deleted it, LMDB still hands
     * out the old handle by its name. */
    pps__subs have;
    int status = read_ids(e, txn, &have);
    long at = status == PPS_OK ? pps__subs_find(&have, sub_id) : -1;
    if (index != NULL) {
        *index = at >= 0 ? (size_t)at : 0;
    }
    if (status == PPS_OK && at < 0) {
        char what[PPS__SUB_NAME_MAX + 64];
        snprintf(what, sizeof(what), "subscriber \"%s\" is not registered",
                 sub_id);
        status = pps__err_notinit(e->path, what);
    }
    if (status == PPS_OK) {
        status = open_pending(e, txn, sub_id, false, out);
    }
    pps__subs_free(&have);
    return status;
}

/* Reads the registered ids into s (its dbis are left NULL). */
static int
read_ids(const pps__env *e, MDB_txn *txn, pps__subs *s)
{
    MDB_val k = {sizeof(PPS__KEY_SUBSCRIBERS) - 1,
                 pps__unconst(PPS__KEY_SUBSCRIBERS)};
    MDB_val v;
    memset(s, 0, sizeof(*s));
    int rc = mdb_get(txn, e->dbs.meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        v.mv_size = 0;
    } else if (rc != 0) {
        return pps__err_rc(rc, "cannot read the subscriber list", e->path);
    }
    const char *p = v.mv_data;
    if (v.mv_size > 0 && p[v.mv_size - 1] != '\0') {
        return pps__err(PPS_ESTORAGE, "%s: corrupt subscriber list", e->path);
    }
    s->ids = malloc(v.mv_size + 1);
    if (s->ids == NULL) {
        return pps__err_nomem();
    }
    if (v.mv_size > 0) {
        memcpy(s->ids, p, v.mv_size);
    }
    s->ids[v.mv_size] = '\0';
    s->len = v.mv_size;
    for (size_t i = 0; i < v.mv_size; i++) {
        s->n += p[i] == '\0';
    }
    return PPS_OK;
}

int
pps__subs_open(const pps__env *e, MDB_txn *txn, pps__subs *out)
{
    pps__subs s;
    int status = read_ids(e, txn, &s);
    if (status != PPS_OK) {
        goto fail;
    }
    s.dbis = calloc(s.n > 0 ? s.n : 1, sizeof(*s.dbis));
    if (s.dbis == NULL) {
        status = pps__err_nomem();
        goto fail;
    }
    const char *id = s.ids;
    for (size_t i = 0; i < s.n; i++) {
        status = open_pending(e, txn, id, false, &s.dbis[i]);
        if (status != PPS_OK) {
            goto fail;
        }
        id += strlen(id) + 1;
    }
    pps__subs_free(out);
    *out = s;
    return PPS_OK;

fail:
    pps__subs_free(&s);
    return status;
}

void
pps__subs_free(pps__subs *s)
{
    free(s->ids);
    free(s->dbis);
    memset(s, 0, sizeof(*s));
}

long
pps__subs_find(const pps__subs *s, const char *id)
{
    const char *it = s->ids;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(it, id) == 0) {
            return (long)i;
        }
        it += strlen(it) + 1;
    }
    return -1;
}

int
pps__subs_register(const pps__env *e, MDB_txn *txn, char *const *ids,
                   size_t n, uint64_t max_subs, bool *changed)
{
    pps__subs have;
    char *list = NULL;
    int status = read_ids(e, txn, &have);
    if (status != PPS_OK) {
        goto done;
    }
    size_t len = have.len, added = 0;
    for (size_t i = 0; i < n; i++) {
        len += strlen(ids[i]) + 1;
        added += pps__subs_find(&have, ids[i]) < 0;
    }
    if (have.n + added > max_subs) {
        status = pps__err(PPS_EFULL,
                          "%s: %zu subscriber(s) registered and %zu new, but "
                          "max_db_num leaves room for %llu (raise "
                          "max_db_num, or remove subscribers that left the "
                          "configuration); nothing was changed",
                          e->path, have.n, added,
                          (unsigned long long)max_subs);
        goto done;
    }
    list = malloc(len > 0 ? len : 1);
    if (list == NULL) {
        status = pps__err_nomem();
        goto done;
    }
    if (have.len > 0) {
        memcpy(list, have.ids, have.len);
    }
    size_t used = have.len;
    for (size_t i = 0; i < n; i++) {
        MDB_dbi dbi;
        status = open_pending(e, txn, ids[i], true, &dbi);
        if (status != PPS_OK) {
            goto done;
        }
        if (pps__subs_find(&have, ids[i]) < 0) {
            size_t idlen = strlen(ids[i]) + 1;
            memcpy(list + used, ids[i], idlen);
            used += idlen;
        }
    }
    if (used != have.len) {
        *changed = true;
        status =
            pps__layout_put_meta(e, txn, PPS__KEY_SUBSCRIBERS, list, used);
    }
done:
    free(list);
    pps__subs_free(&have);
    return status;
}

/* ---- removing a subscriber ------------------------------------------------ */

int
pps__subs_unregister(const pps__env *e, MDB_txn *txn, const char *sub_id,
                     uint64_t *pending)
{
    static const char what[] = "cannot remove subscriber";
    pps__subs have;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    char *list = NULL;
    *pending = 0;
    int status = read_ids(e, txn, &have);
    if (status != PPS_OK) {
        return status;
    }
    if (pps__subs_find(&have, sub_id) < 0) {
        status = pps__err(PPS_ENOTFOUND,
                          "%s: subscriber \"%s\" is not registered; nothing "
                          "was changed", e->path, sub_id);
        goto done;
    }
    status = open_pending(e, txn, sub_id, false, &dbi);
    if (status != PPS_OK) {
        goto done;
    }
    /* Every id it pends on is released as a consumption would; the
     * database itself goes afterwards, whole. */
    int rc = mdb_cursor_open(txn, dbi, &cur);
    while (rc == 0 && status == PPS_OK &&
           (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint64_t id;
        if (!pps__layout_decode_id(&k, &id)) {
            continue; /* no message id: nothing to release */
        }
        status = pps__layout_release(e, txn, id, what);
        (*pending)++;
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (status == PPS_OK && rc != MDB_NOTFOUND) {
        status = pps__err_rc(rc, what, e->path);
    }
    if (status != PPS_OK) {
        goto done;
    }
    /* Deleting the database frees its name and its pages (and, in this
     * process, LMDB's handle slot). */
    rc = mdb_drop(txn, dbi, 1);
    if (rc != 0) {
        status = pps__err_rc(rc, what, e->path);
        goto done;
    }
    list = malloc(have.len > 0 ? have.len : 1);
    if (list == NULL) {
        status = pps__err_nomem();
        goto done;
    }
    size_t used = 0;
    const char *id = have.ids;
    for (size_t i = 0; i < have.n; i++) {
        size_t idlen = strlen(id) + 1;
        if (strcmp(id, sub_id) != 0) {
            memcpy(list + used, id, idlen);
            used += idlen;
        }
        id += idlen;
    }
    status = pps__layout_put_meta(e, txn, PPS__KEY_SUBSCRIBERS, list, used);
done:
    free(list);
    pps__subs_free(&have);
    return status;
}

