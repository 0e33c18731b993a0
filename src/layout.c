/*
 * The storage layout of a queue (documented in docs/format.rst): the one
 * file that names a database, encodes a key or decodes a record.
 *
 * One LMDB environment per queue directory, with these named databases:
 *   pps.meta   settings: format version, limits, subscriber list, sequence
 *   pps.data   id -> payload                      (MDB_INTEGERKEY)
 *   pps.msg    id -> pps__msg_meta (time, pending) (MDB_INTEGERKEY)
 *   sub:<id>   id -> "" for every message subscriber <id> has not consumed
 * Payloads are kept apart from their small metadata so that consuming (which
 * rewrites the pending count) never copies a payload page. Every function
 * here works inside a transaction its caller owns (txn.c). The subscriber
 * list and the pending databases are layout_subs.c's.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of the meta database (and PPS__KEY_SUBSCRIBERS, layout_subs.c). */
#define KEY_FORMAT "format"     /* uint32 version */
#define KEY_SETTINGS "settings" /* pps__settings */
#define KEY_SEQ "seq"           /* pps__seq */

static MDB_val
meta_key(const char *key)
{
    return (MDB_val){strlen(key), pps__unconst(key)};
}

/* Reads the fixed-size record `key` of the meta database into out. */
static int
get_fixed(const pps__env *e, MDB_txn *txn, const char *key, void *out,
          size_t size, bool *found)
{
    MDB_val k = meta_key(key), v;
    int rc = mdb_get(txn, e->dbs.meta, &k, &v);
    *found = false;
    if (rc == MDB_NOTFOUND) {
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read queue settings", e->path);
    }
    if (v.mv_size != size) {
        return pps__err(PPS_ESTORAGE,
                        "%s: queue setting \"%s\" has %zu bytes, expected %zu",
                        e->path, key, v.mv_size, size);
    }
    memcpy(out, v.mv_data, size); /* LMDB values are only 2-byte aligned */
    *found = true;
    return PPS_OK;
}

int
pps__layout_put_meta(const pps__env *e, MDB_txn *txn, const char *key,
                     const void *val, size_t len)
{
    MDB_val k = meta_key(key);
    MDB_val v = {len, pps__unconst(val)};
    int rc = mdb_put(txn, e->dbs.meta, &k, &v, 0);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot write queue settings", e->path);
    }
    return PPS_OK;
}

/* The format record as read from the meta database `meta`. */
static int
check_version(MDB_txn *txn, MDB_dbi meta, const char *path)
{
    MDB_val k = meta_key(KEY_FORMAT), v;
    uint32_t version;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return pps__err_notinit(path, "queue not initialized (no format "
                                      "version)");
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read the format version", path);
    }
    if (v.mv_size != sizeof(version)) {
        return pps__err_foreign(path, "its format record is not ours");
    }
    memcpy(&version, v.mv_data, sizeof(version));
    if (version != PPS__FORMAT_VERSION) {
        return pps__err(PPS_EVERSION,
                        "%s: queue format version %u, this library reads "
                        "version %u",
                        path, (unsigned)version, PPS__FORMAT_VERSION);
    }
    return PPS_OK;
}

/* Translates the failure to open internal database `name`. */
static int
open_failed(int rc, const char *name, const char *path)
{
    char what[64];
    if (rc == MDB_NOTFOUND) {
        snprintf(what, sizeof(what), "queue not initialized (no database %s)",
                 name);
        return pps__err_notinit(path, what);
    }
    if (rc == MDB_INCOMPATIBLE) {
        snprintf(what, sizeof(what), "%s is not a database of ours", name);
        return pps__err_foreign(path, what);
    }
    return pps__err_rc(rc, "cannot open internal database", path);
}

/* Is `name` (a key of the main database) one of our databases? */
static bool
our_db(const MDB_val *name)
{
    static const char *const ours[] = {PPS__DB_DATA, PPS__DB_MSG};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (name->mv_size == strlen(ours[i]) &&
            memcmp(name->mv_data, ours[i], name->mv_size) == 0) {
            return true;
        }
    }
    return name->mv_size > sizeof(PPS__SUB_PREFIX) - 1 &&
           memcmp(name->mv_data, PPS__SUB_PREFIX, sizeof(PPS__SUB_PREFIX) - 1) == 0;
}

/* An environment without pps.meta is ours only if its main database names
 * nothing but databases of ours: anything else there is another
 * application's. */
static int
probe_unmarked(MDB_txn *txn, const char *path)
{
    MDB_dbi main_db;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (rc == 0) {
        rc = mdb_cursor_open(txn, main_db, &cur);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read the main database", path);
    }
    bool foreign = false;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !foreign;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        foreign = !our_db(&k);
    }
    mdb_cursor_close(cur);
    if (foreign) {
        return pps__err_foreign(path, "its LMDB environment holds "
                                      "another application's data");
    }
    return open_failed(MDB_NOTFOUND, PPS__DB_META, path);
}

int
pps__layout_probe(MDB_txn *txn, const char *path)
{
    MDB_dbi meta;
    int rc = mdb_dbi_open(txn, PPS__DB_META, 0, &meta);
    if (rc == MDB_NOTFOUND) {
        return probe_unmarked(txn, path);
    }
    if (rc != 0) {
        return open_failed(rc, PPS__DB_META, path);
    }
    return check_version(txn, meta, path);
}

int
pps__layout_open(pps__env *e, MDB_txn *txn, bool create)
{
    unsigned c = create ? MDB_CREATE : 0;
    int rc = mdb_dbi_open(txn, PPS__DB_META, c, &e->dbs.meta);
    if (rc != 0) {
        return open_failed(rc, PPS__DB_META, e->path);
    }
    rc = mdb_dbi_open(txn, PPS__DB_DATA, c | PPS__ID_KEYED, &e->dbs.data);
    if (rc != 0) {
        return open_failed(rc, PPS__DB_DATA, e->path);
    }
    rc = mdb_dbi_open(txn, PPS__DB_MSG, c | PPS__ID_KEYED, &e->dbs.msg);
    if (rc != 0) {
        return open_failed(rc, PPS__DB_MSG, e->path);
    }
    return PPS_OK;
}

int
pps__layout_check_format(const pps__env *e, MDB_txn *txn)
{
    return check_version(txn, e->dbs.meta, e->path);
}

int
pps__layout_init_format(const pps__env *e, MDB_txn *txn, bool *changed)
{
    int status = check_version(txn, e->dbs.meta, e->path);
    if (status != PPS_ENOTINIT) {
        return status;
    }
    pps__err_begin(); /* not an error here: init writes it */
    uint32_t version = PPS__FORMAT_VERSION;
    *changed = true;
    return pps__layout_put_meta(e, txn, KEY_FORMAT, &version, sizeof(version));
}

int
pps__layout_read_settings(const pps__env *e, MDB_txn *txn,
                          pps__settings *out)
{
    bool found;
    int status = get_fixed(e, txn, KEY_SETTINGS, out, sizeof(*out), &found);
    if (status == PPS_OK && !found) {
        return pps__err_notinit(e->path, "queue not initialized (no "
                                         "settings)");
    }
    return status;
}

int
pps__layout_write_settings(const pps__env *e, MDB_txn *txn,
                           const pps__settings *s, bool *changed)
{
    pps__settings have;
    bool found;
    int status = get_fixed(e, txn, KEY_SETTINGS, &have, sizeof(have), &found);
    if (status == PPS_ESTORAGE) {
        pps__err_begin(); /* a malformed record is rewritten */
        status = PPS_OK;
        found = false;
    }
    if (status != PPS_OK) {
        return status;
    }
    if (found && memcmp(&have, s, sizeof(have)) == 0) {
        return PPS_OK;
    }
    *changed = true;
    return pps__layout_put_meta(e, txn, KEY_SETTINGS, s, sizeof(*s));
}

int
pps__layout_read_seq(const pps__env *e, MDB_txn *txn, pps__seq *out)
{
    bool found;
    int status = get_fixed(e, txn, KEY_SEQ, out, sizeof(*out), &found);
    if (status == PPS_OK && !found) {
        out->next_id = 1;
        out->gen = 0;
    }
    return status;
}

int
pps__layout_write_seq(const pps__env *e, MDB_txn *txn, const pps__seq *seq)
{
    return pps__layout_put_meta(e, txn, KEY_SEQ, seq, sizeof(*seq));
}

/* ---- subscribers ----------------------------------------------------------- */

/* ---- messages ---------------------------------------------------------------- */

bool
pps__layout_decode_id(const MDB_val *key, uint64_t *id)
{
    if (key->mv_size != sizeof(*id)) {
        return false;
    }
    memcpy(id, key->mv_data, sizeof(*id));
    return true;
}

int
pps__layout_decode_meta(const pps__env *e, uint64_t id, const MDB_val *val,
                        pps__msg_meta *out)
{
    memset(out, 0, sizeof(*out));
    if (val->mv_size != sizeof(*out)) {
        return pps__err(PPS_ESTORAGE,
                        "%s: corrupt metadata of message %llu (%zu bytes, "
                        "expected %zu)",
                        e->path, (unsigned long long)id, val->mv_size,
                        sizeof(*out));
    }
    memcpy(out, val->mv_data, sizeof(*out));
    return PPS_OK;
}

/* Appends (id, val) to an id-keyed database. */
static int
append(const pps__env *e, MDB_txn *txn, MDB_dbi dbi, uint64_t id,
       const void *data, size_t len)
{
    MDB_val k = {sizeof(id), &id};
    MDB_val v = {len, pps__unconst(data)};
    int rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
        return pps__err(PPS_ESTORAGE,
                        "%s: message id %llu is not above the last stored id "
                        "(inconsistent queue: run persipubsub-ctl check)",
                        e->path, (unsigned long long)id);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot store message", e->path);
    }
    return PPS_OK;
}

int
pps__layout_append(const pps__env *e, MDB_txn *txn, uint64_t id,
                   const pps_buf *msg, int64_t published_ns,
                   const MDB_dbi *targets, size_t n)
{
    pps__msg_meta meta = {.published_ns = published_ns,
                          .pending = (uint32_t)n};
    int status = append(e, txn, e->dbs.data, id, msg->data, msg->len);
    if (status == PPS_OK) {
        status = append(e, txn, e->dbs.msg, id, &meta, sizeof(meta));
    }
    for (size_t i = 0; i < n && status == PPS_OK; i++) {
        status = append(e, txn, targets[i], id, NULL, 0);
    }
    return status;
}

int
pps__layout_read_msg(const pps__env *e, MDB_txn *txn, const MDB_val *key,
                     pps_message *msg, bool *orphan)
{
    MDB_val k = *key, data, val;
    pps__msg_meta meta;
    *orphan = false;
    if (!pps__layout_decode_id(&k, &msg->id)) {
        return pps__err(PPS_ESTORAGE, "%s: a pending database holds a key "
                        "of %zu bytes, not a message id", e->path, k.mv_size);
    }
    int rc = mdb_get(txn, e->dbs.data, &k, &data);
    if (rc == 0) {
        rc = mdb_get(txn, e->dbs.msg, &k, &val);
    }
    if (rc == MDB_NOTFOUND) {
        *orphan = true;
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read message", e->path);
    }
    int status = pps__layout_decode_meta(e, msg->id, &val, &meta);
    if (status != PPS_OK) {
        return status;
    }
    msg->data = data.mv_data;
    msg->len = data.mv_size;
    msg->published_ns = meta.published_ns;
    return PPS_OK;
}

/* Deletes key k from dbi; a missing key is fine. */
static int
del_id(const pps__env *e, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
       const char *what)
{
    int rc = mdb_del(txn, dbi, k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return pps__err_rc(rc, what, e->path);
    }
    return PPS_OK;
}

/* Message `id` is no longer pending for one subscriber: decrements its
 * pending count, or deletes it when that reaches 0. */
int
pps__layout_release(const pps__env *e, MDB_txn *txn, uint64_t id,
                    const char *what)
{
    MDB_val k = {sizeof(id), &id}, val;
    pps__msg_meta meta;
    int rc = mdb_get(txn, e->dbs.msg, &k, &val);
    if (rc == MDB_NOTFOUND) {
        /* An id without metadata: drop what is left of it. */
        return del_id(e, txn, e->dbs.data, &k, what);
    }
    if (rc != 0) {
        return pps__err_rc(rc, what, e->path);
    }
    int status = pps__layout_decode_meta(e, id, &val, &meta);
    if (status != PPS_OK) {
        return status;
    }
    if (meta.pending > 1) {
        return pps__layout_set_pending(e, txn, id, meta.pending - 1);
    }
    status = del_id(e, txn, e->dbs.msg, &k, what);
    if (status == PPS_OK) {
        status = del_id(e, txn, e->dbs.data, &k, what);
    }
    return status;
}

int
pps__layout_consume(const pps__env *e, MDB_txn *txn, MDB_dbi sub,
                    uint64_t id)
{
    static const char what[] = "cannot consume message";
    MDB_val k = {sizeof(id), &id};
    int rc = mdb_del(txn, sub, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        return PPS_OK; /* pruned or cleared meanwhile: nothing to do */
    }
    if (rc != 0) {
        return pps__err_rc(rc, what, e->path);
    }
    return pps__layout_release(e, txn, id, what);
}

int
pps__layout_consume_below(const pps__env *e, MDB_txn *txn, MDB_dbi sub,
                          uint64_t *until, size_t limit, bool *done)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t id;
    int status = PPS_OK;
    *done = false;
    int rc = mdb_cursor_open(txn, sub, &cur);
    if (rc == 0 && *until == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (rc == 0 && !pps__layout_decode_id(&k, until)) {
            rc = MDB_CORRUPTED;
        }
    }
    /* Seek the front afresh after each consumption rather than trust a
     * cursor across the deletions pps__layout_consume() makes. */
    for (size_t n = 0; rc == 0 && status == PPS_OK; n++) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != 0 || !pps__layout_decode_id(&k, &id) || id >= *until) {
            *done = true;
            break;
        }
        if (n == limit) {
            break;
        }
        status = pps__layout_consume(e, txn, sub, id);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (rc == MDB_NOTFOUND) {
        *done = true;
    } else if (status == PPS_OK && rc != 0) {
        status = pps__err_rc(rc, "cannot skip to the newest message",
                             e->path);
    }
    return status;
}

int
pps__layout_pending_count(const pps__env *e, MDB_txn *txn, MDB_dbi dbi,
                          uint64_t *count)
{
    MDB_stat st;
    int rc = mdb_stat(txn, dbi, &st);
    *count = rc == 0 ? st.ms_entries : 0;
    if (rc != 0) {
        return pps__err_rc(rc, "cannot count pending messages", e->path);
    }
    return PPS_OK;
}

int
pps__layout_set_pending(const pps__env *e, MDB_txn *txn, uint64_t id,
                        uint32_t pending)
{
    MDB_val k = {sizeof(id), &id}, old;
    pps__msg_meta meta = {.published_ns = pps__now_realtime_ns()};
    if (mdb_get(txn, e->dbs.msg, &k, &old) == 0 &&
        old.mv_size == sizeof(meta)) {
        memcpy(&meta, old.mv_data, sizeof(meta));
    }
    meta.pending = pending;
    MDB_val val = {sizeof(meta), &meta};
    int rc = mdb_put(txn, e->dbs.msg, &k, &val, 0);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot write message metadata", e->path);
    }
    return PPS_OK;
}

int
pps__layout_remove_msg(const pps__env *e, MDB_txn *txn, uint64_t id,
                       const MDB_dbi *subs, size_t n, pps__removed *removed)
{
    static const char what[] = "cannot remove message";
    MDB_val k = {sizeof(id), &id}, data;
    int rc = mdb_get(txn, e->dbs.data, &k, &data);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return pps__err_rc(rc, what, e->path);
    }
    size_t bytes = rc == 0 ? data.mv_size : 0;
    int status = del_id(e, txn, e->dbs.data, &k, what);
    if (status == PPS_OK) {
        status = del_id(e, txn, e->dbs.msg, &k, what);
    }
    for (size_t i = 0; i < n && status == PPS_OK; i++) {
        status = del_id(e, txn, subs[i], &k, what);
    }
    if (status == PPS_OK && removed != NULL) {
        removed->messages++;
        removed->bytes += bytes;
    }
    return status;
}

int
pps__layout_clear(const pps__env *e, MDB_txn *txn, const pps__subs *subs,
                  pps__removed *removed)
{
    uint64_t count, bytes;
    int status = pps__layout_usage(e, txn, &count, &bytes);
    if (status != PPS_OK) {
        return status;
    }
    int rc = mdb_drop(txn, e->dbs.data, 0);
    if (rc == 0) {
        rc = mdb_drop(txn, e->dbs.msg, 0);
    }
    for (size_t i = 0; i < subs->n && rc == 0; i++) {
        rc = mdb_drop(txn, subs->dbis[i], 0);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot clear queue", e->path);
    }
    removed->messages += count;
    removed->bytes += bytes;
    return PPS_OK;
}

/* The first (last: the last) key and value of dbi. */
static int
end_of(const pps__env *e, MDB_txn *txn, MDB_dbi dbi, bool last, MDB_val *k,
       MDB_val *v, bool *found)
{
    MDB_cursor *cur;
    *found = false;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return pps__err_rc(rc, "cannot open cursor", e->path);
    }
    rc = mdb_cursor_get(cur, k, v, last ? MDB_LAST : MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        return PPS_OK;
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read the queue's end", e->path);
    }
    *found = true;
    return PPS_OK;
}

int
pps__layout_end_msg(const pps__env *e, MDB_txn *txn, bool newest,
                    uint64_t *id, pps__msg_meta *meta, bool *found)
{
    MDB_val k, v;
    int status = end_of(e, txn, e->dbs.msg, newest, &k, &v, found);
    if (status != PPS_OK || !*found) {
        return status;
    }
    if (!pps__layout_decode_id(&k, id)) {
        return pps__err(PPS_ESTORAGE, "%s: %s holds a key of %zu bytes, not "
                        "a message id", e->path, PPS__DB_MSG, k.mv_size);
    }
    return pps__layout_decode_meta(e, *id, &v, meta);
}

int
pps__layout_first_id(const pps__env *e, MDB_txn *txn, MDB_dbi dbi,
                     uint64_t *id, bool *found)
{
    MDB_val k, v;
    int status = end_of(e, txn, dbi, false, &k, &v, found);
    if (status == PPS_OK && *found && !pps__layout_decode_id(&k, id)) {
        *found = false;
    }
    return status;
}

int64_t
pps__layout_published(const pps__env *e, MDB_txn *txn, uint64_t id)
{
    MDB_val k = {sizeof(id), &id}, val;
    pps__msg_meta meta;
    if (mdb_get(txn, e->dbs.msg, &k, &val) != 0 ||
        val.mv_size != sizeof(meta)) {
        return 0;
    }
    memcpy(&meta, val.mv_data, sizeof(meta));
    return meta.published_ns;
}

int
pps__layout_usage(const pps__env *e, MDB_txn *txn, uint64_t *count,
                  uint64_t *bytes)
{
    MDB_stat data, msg;
    *count = 0;
    *bytes = 0;
    int rc = mdb_stat(txn, e->dbs.data, &data);
    if (rc == 0) {
        rc = mdb_stat(txn, e->dbs.msg, &msg);
    }
    if (rc != 0) {
        return pps__err_rc(rc, "cannot read database statistics", e->path);
    }
    *count = msg.ms_entries;
    /* As the original persipubsub: the pages holding messages times the
     * page size (free pages, reused by later commits, do not count). */
    *bytes = (uint64_t)data.ms_psize *
             (data.ms_branch_pages + data.ms_leaf_pages +
              data.ms_overflow_pages + msg.ms_branch_pages +
              msg.ms_leaf_pages + msg.ms_overflow_pages);
    return PPS_OK;
}
