/*
 * The storage layout of a queue (documented in docs/format.rst).
 *
 * One LMDB environment per queue directory, with these named databases:
 *   pps.meta   settings: format version, limits, subscriber list, sequence
 *   pps.data   id -> payload                      (MDB_INTEGERKEY)
 *   pps.msg    id -> pps__msg_meta (time, pending) (MDB_INTEGERKEY)
 *   sub:<id>   id -> "" for every message subscriber <id> has not consumed
 * Payloads are kept apart from their small metadata so that consuming (which
 * rewrites the pending count) never copies a payload page.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int
get_fixed(pps__env *e, MDB_txn *txn, const char *key, void *out, size_t size,
          bool *found)
{
    MDB_val k = {strlen(key), pps__mut(key)};
    MDB_val v;
    int rc = mdb_get(txn, pps__env_get(e)->meta, &k, &v);
    *found = false;
    if (rc == MDB_NOTFOUND) {
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot read queue settings",
                             pps__env_path(e));
    }
    if (v.mv_size != size) {
        return pps__err(PPS_ESTORAGE,
                        "%s: queue setting \"%s\" has %zu bytes, expected %zu",
                        pps__env_path(e), key, v.mv_size, size);
    }
    memcpy(out, v.mv_data, size);
    *found = true;
    return PPS_OK;
}

int
pps__layout_check(pps__env *e, MDB_txn *txn)
{
    uint32_t version;
    bool found;
    int status = get_fixed(e, txn, PPS__KEY_FORMAT, &version, sizeof(version),
                           &found);
    if (status != PPS_OK) {
        return status;
    }
    if (!found) {
        return pps__err(PPS_ENOTINIT,
                        "%s: queue not initialized (no format version); run "
                        "persipubsub-ctl init",
                        pps__env_path(e));
    }
    if (version != PPS__FORMAT_VERSION) {
        return pps__err(PPS_EVERSION,
                        "%s: queue format version %u, this library reads "
                        "version %u",
                        pps__env_path(e), (unsigned)version,
                        PPS__FORMAT_VERSION);
    }
    return PPS_OK;
}

int
pps__layout_read_settings(pps__env *e, MDB_txn *txn, pps__settings *out)
{
    bool found;
    int status = get_fixed(e, txn, PPS__KEY_SETTINGS, out, sizeof(*out),
                           &found);
    if (status == PPS_OK && !found) {
        return pps__err(PPS_ENOTINIT,
                        "%s: queue not initialized (no settings); run "
                        "persipubsub-ctl init",
                        pps__env_path(e));
    }
    return status;
}

int
pps__layout_read_seq(pps__env *e, MDB_txn *txn, pps__seq *out)
{
    bool found;
    int status = get_fixed(e, txn, PPS__KEY_SEQ, out, sizeof(*out), &found);
    if (status == PPS_OK && !found) {
        out->next_id = 1;
        out->gen = 0;
    }
    return status;
}

int
pps__layout_write_seq(pps__env *e, MDB_txn *txn, const pps__seq *seq)
{
    MDB_val k = {sizeof(PPS__KEY_SEQ) - 1, pps__mut(PPS__KEY_SEQ)};
    MDB_val v = {sizeof(*seq), pps__mut(seq)};
    int rc = mdb_put(txn, pps__env_get(e)->meta, &k, &v, 0);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot write the id sequence",
                             pps__env_path(e));
    }
    return PPS_OK;
}

int
pps__layout_read_subscribers(pps__env *e, MDB_txn *txn, char **buf,
                             size_t *len, size_t *n)
{
    MDB_val k = {sizeof(PPS__KEY_SUBSCRIBERS) - 1,
                 pps__mut(PPS__KEY_SUBSCRIBERS)};
    MDB_val v;
    *buf = NULL;
    *len = 0;
    *n = 0;
    int rc = mdb_get(txn, pps__env_get(e)->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot read the subscriber list",
                             pps__env_path(e));
    }
    const char *p = v.mv_data;
    if (v.mv_size > 0 && p[v.mv_size - 1] != '\0') {
        return pps__err(PPS_ESTORAGE, "%s: corrupt subscriber list",
                        pps__env_path(e));
    }
    *buf = malloc(v.mv_size + 1);
    if (*buf == NULL) {
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    memcpy(*buf, p, v.mv_size);
    (*buf)[v.mv_size] = '\0';
    *len = v.mv_size;
    for (size_t i = 0; i < v.mv_size; i++) {
        if (p[i] == '\0') {
            (*n)++;
        }
    }
    return PPS_OK;
}

void
pps__layout_sub_name(char out[PPS__SUB_NAME_MAX], const char *sub_id)
{
    size_t plen = sizeof(PPS__SUB_PREFIX) - 1;
    size_t idlen = strnlen(sub_id, PPS__SUB_NAME_MAX - plen - 1);
    memcpy(out, PPS__SUB_PREFIX, plen);
    memcpy(out + plen, sub_id, idlen);
    out[plen + idlen] = '\0';
}

int
pps__layout_open_sub(pps__env *e, MDB_txn *txn, const char *sub_id,
                     bool create, MDB_dbi *out)
{
    char name[PPS__SUB_NAME_MAX];
    pps__layout_sub_name(name, sub_id);
    int rc = mdb_dbi_open(txn, name,
                          MDB_INTEGERKEY | (create ? MDB_CREATE : 0), out);
    if (rc == MDB_NOTFOUND) {
        return pps__err(PPS_ENOTINIT,
                        "%s: subscriber \"%s\" is not initialized; run "
                        "persipubsub-ctl init",
                        pps__env_path(e), sub_id);
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot open subscriber database",
                             pps__env_path(e));
    }
    return PPS_OK;
}

int
pps__layout_remove_msg(pps__env *e, MDB_txn *txn, uint64_t id,
                       const MDB_dbi *subs, size_t n, pps__removed *removed)
{
    const pps__env_view *v = pps__env_get(e);
    MDB_val k = {sizeof(id), &id};
    MDB_val data;
    int rc = mdb_get(txn, v->data, &k, &data);
    size_t bytes = rc == 0 ? data.mv_size : 0;
    if (rc == 0) {
        rc = mdb_del(txn, v->data, &k, NULL);
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = mdb_del(txn, v->msg, &k, NULL);
    }
    for (size_t i = 0; i < n && (rc == 0 || rc == MDB_NOTFOUND); i++) {
        rc = mdb_del(txn, subs[i], &k, NULL);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return pps__err_lmdb(rc, "cannot remove message", pps__env_path(e));
    }
    if (removed != NULL) {
        removed->messages++;
        removed->bytes += bytes;
    }
    return PPS_OK;
}

int
pps__layout_consume(pps__env *e, MDB_txn *txn, MDB_dbi sub, uint64_t id)
{
    const pps__env_view *v = pps__env_get(e);
    MDB_val k = {sizeof(id), &id};
    MDB_val val;
    int rc = mdb_del(txn, sub, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        return PPS_OK; /* pruned or cleared meanwhile: nothing to do */
    }
    if (rc == 0) {
        rc = mdb_get(txn, v->msg, &k, &val);
    }
    if (rc == MDB_NOTFOUND) {
        /* An id without metadata: drop what is left of it. */
        rc = mdb_del(txn, v->data, &k, NULL);
        return rc == 0 || rc == MDB_NOTFOUND
                   ? PPS_OK
                   : pps__err_lmdb(rc, "cannot consume message",
                                   pps__env_path(e));
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot consume message", pps__env_path(e));
    }
    pps__msg_meta meta;
    if (val.mv_size != sizeof(meta)) {
        return pps__err(PPS_ESTORAGE, "%s: corrupt metadata of message %llu",
                        pps__env_path(e), (unsigned long long)id);
    }
    memcpy(&meta, val.mv_data, sizeof(meta));
    if (meta.pending > 1) {
        meta.pending--;
        val.mv_data = &meta;
        val.mv_size = sizeof(meta);
        rc = mdb_put(txn, v->msg, &k, &val, 0);
    } else {
        rc = mdb_del(txn, v->msg, &k, NULL);
        if (rc == 0) {
            rc = mdb_del(txn, v->data, &k, NULL);
            if (rc == MDB_NOTFOUND) {
                rc = 0;
            }
        }
    }
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot consume message", pps__env_path(e));
    }
    return PPS_OK;
}

void
pps__subs_free(pps__subs *s)
{
    free(s->ids);
    free(s->dbis);
    memset(s, 0, sizeof(*s));
}

int
pps__subs_open(pps__env *e, MDB_txn *txn, pps__subs *out)
{
    pps__subs s = {0};
    int status = pps__layout_read_subscribers(e, txn, &s.ids, &s.len, &s.n);
    if (status != PPS_OK) {
        return status;
    }
    s.dbis = calloc(s.n > 0 ? s.n : 1, sizeof(*s.dbis));
    if (s.dbis == NULL) {
        pps__subs_free(&s);
        return pps__err(PPS_ENOMEM, "out of memory");
    }
    const char *id = s.ids;
    for (size_t i = 0; i < s.n; i++) {
        status = pps__layout_open_sub(e, txn, id, false, &s.dbis[i]);
        if (status != PPS_OK) {
            pps__subs_free(&s);
            return status;
        }
        id += strlen(id) + 1;
    }
    pps__subs_free(out);
    *out = s;
    return PPS_OK;
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
pps__subs_write(pps__env *e, MDB_txn *txn, const char *ids, size_t len)
{
    MDB_val k = {sizeof(PPS__KEY_SUBSCRIBERS) - 1,
                 pps__mut(PPS__KEY_SUBSCRIBERS)};
    MDB_val v = {len, pps__mut(ids)};
    int rc = mdb_put(txn, pps__env_get(e)->meta, &k, &v, 0);
    if (rc != 0) {
        return pps__err_lmdb(rc, "cannot write the subscriber list",
                             pps__env_path(e));
    }
    return PPS_OK;
}

int
pps__layout_settle(pps__env *e)
{
    /* LMDB reuses pages freed by transaction N only from transaction N + 2
     * on (readers of N - 1 may still see them). One more commit that
     * changes something makes what a prune or clear freed usable by the
     * very next send. */
    MDB_txn *txn;
    pps__seq seq;
    int status = pps__txn_write(e, &txn);
    if (status != PPS_OK) {
        return status;
    }
    status = pps__layout_read_seq(e, txn, &seq);
    if (status == PPS_OK) {
        status = pps__layout_write_seq(e, txn, &seq);
    }
    if (status != PPS_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    return pps__txn_commit(e, txn, PPS__NOSYNC, "cannot settle free pages");
}
