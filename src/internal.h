/*
 * What the files of src/ share, grouped by the file that owns each part,
 * from the bottom layer up: a file calls only the files of the sections
 * above its own. Names here are pps__ (hidden from the shared library's
 * symbol table); everything else in a .c is static.
 *
 *   error.c, process.c          statuses and details; clocks, the pid
 *   config*.c                   the configuration and finding its queues
 *   layout.c, layout_subs.c     every database, key and record of a queue
 *   queuedir.c, datafile.c,     the queue directory, a look at data.mdb
 *   wakeup.c                    before LMDB opens it, the wake-up file
 *   space.c                     room in the map and on the disk
 *   txn.c                       transactions: begin, commit, retry
 *   env.c                       the registry of open queues, opening one
 *   hwm.c                       the high-water mark
 *   handoff.c                   consumptions handed to the next writer
 *   control.c, status.c,        init/prune/clear, status, check, and the
 *   check.c, publisher.c,       handles (the public API lives here)
 *   subscriber.c
 */
#ifndef PERSIPUBSUB_INTERNAL_H
#define PERSIPUBSUB_INTERNAL_H

#include "persipubsub/persipubsub.h"

#include <limits.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* A const pointer as LMDB's MDB_val wants it (LMDB never writes through
 * the pointers of keys and values it is given). */
static inline void *
pps__unconst(const void *p)
{
    union {
        const void *c;
        void *m;
    } u = {.c = p};
    return u.m;
}

typedef struct pps__env pps__env;

/* ---- errors (error.c) ---------------------------------------------------- */

/* Marks the start of a public call: the first detail recorded from here on
 * wins, later ones of the same call are dropped. */
void pps__err_begin(void);
/* Records the detail of a failure (printf format) and returns status. */
int pps__err(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Translates an LMDB or errno code `rc` met while doing `what` on `path`
 * (may be NULL) into a status, records "path: what: text" and returns the
 * status. */
int pps__err_rc(int rc, const char *what, const char *path);
/* PPS_ENOTINIT with "path: what; run persipubsub-ctl init". */
int pps__err_notinit(const char *path, const char *what);
/* PPS_EFOREIGN with "path: not a persipubsub queue (what); left
 * untouched". */
int pps__err_foreign(const char *path, const char *what);
/* PPS_ENOMEM with "out of memory". */
int pps__err_nomem(void);

/* ---- the process: clocks and identity (process.c) ------------------------ */

int64_t pps__now_realtime_ns(void);
int64_t pps__now_monotonic_ns(void);
/* A few milliseconds coarse, and cheaper: for housekeeping intervals. */
int64_t pps__now_coarse_ns(void);
/* getpid(), cached (and forgotten in a fork()ed child). */
pid_t pps__pid(void);
/* The kernel's boot id (/proc/sys/kernel/random/boot_id): it changes at
 * every boot. "" where the system has none. */
#define PPS__BOOT_ID_SIZE 40
void pps__boot_id(char out[PPS__BOOT_ID_SIZE]);
/* PPS_OK if this process opened the handle (pid `opener`), else
 * PPS_EFORKED naming the `kind` of handle ("publisher", "subscriber"). */
int pps__check_pid(pid_t opener, const char *kind);

/* ---- configuration (config.c) -------------------------------------------- */

enum pps__strategy { PPS__PRUNE_FIRST = 0, PPS__PRUNE_LAST = 1 };
enum pps__durability {
    PPS__SYNC = 0,       /* two flushes per commit: on disk when send returns */
    PPS__NOMETASYNC = 1, /* data flushed, meta page flushed by the next commit */
    PPS__NOSYNC = 2      /* no flush: survives process crashes only */
};

typedef struct pps__hwm {
    uint64_t msg_timeout_secs;    /* MSG_TIMEOUT_SECS, > 0 */
    uint64_t max_msgs_num;        /* MAX_MSGS_NUM, > 0 */
    uint64_t hwm_lmdb_size_bytes; /* HWM_LMDB_SIZE_BYTES, > 0 */
    int strategy;                 /* enum pps__strategy */
} pps__hwm;

typedef struct pps__queue_cfg {
    char *key;  /* the key under "queues" (components name queues by it) */
    char *path; /* "path", resolved against the config file's directory */
    uint64_t max_reader_num;    /* > 0, default 1024 */
    uint64_t max_db_num;        /* > 0, default 1024 */
    uint64_t max_db_size_bytes; /* > 0, default 32 GiB */
    char **subscribers;         /* ids, validated, no duplicates */
    size_t n_subscribers;
    pps__hwm hwm;
    int durability;     /* enum pps__durability, default PPS__SYNC */
    unsigned file_mode; /* permission bits of files, default 0600 */
} pps__queue_cfg;

typedef struct pps__component {
    char *id;
    /* index into cfg->queues, or -1 when the component has no such role */
    long out_queue;
    long in_queue;
    /* the publisher's optional "subscribers" (a subset of its queue's) */
    bool has_subscribers;
    char **subscribers;
    size_t n_subscribers;
} pps__component;

struct pps_config {
    char *file; /* the path as given to pps_config_load() */
    pps__queue_cfg *queues;
    size_t n_queues;
    pps__component *components;
    size_t n_components;
};

/* Parses and validates a configuration held in memory; `file` names it in
 * messages and `base_dir` resolves relative paths (NULL: the current
 * directory). Pure logic: touches no file, so it can be tested and fuzzed. */
int pps__config_parse(pps_config **out, const char *text, size_t len,
                      const char *file, const char *base_dir);
/* pps__config_parse() that also compares the queue directories on disk
 * (stat() and realpath() only: it writes nothing), for pps_config_load(). */
int pps__config_parse_on_disk(pps_config **out, const char *text, size_t len,
                              const char *file, const char *base_dir);

/* Is `id` usable as a subscriber id (1..255 printable ASCII bytes)? */
bool pps__sub_id_valid(const char *id);

const pps__component *pps__config_component(const pps_config *cfg,
                                             const char *id);

/* Messages of configuration errors (config_path.c): "FILE: JSONPATH: what
 * was expected, got what", one line, recorded with pps__err(). */
struct json_t;
#define PPS__CONFIG_JP_MAX 512     /* a rendered JSON path */
#define PPS__CONFIG_RENDER_SIZE 48 /* a rendered (clipped) value or key */
/* out = the JSON path of member `key` of the value at `parent` ("" is the
 * root) / of element i of the array at `parent`. */
void pps__config_jp_key(char out[PPS__CONFIG_JP_MAX], const char *parent,
                        const char *key);
void pps__config_jp_index(char out[PPS__CONFIG_JP_MAX], const char *parent,
                          size_t i);
/* A short, ASCII, one-line rendering of a JSON value / of a key as a JSON
 * string literal. */
void pps__config_render_value(const struct json_t *v, char *out, size_t size);
void pps__config_render_key(const char *key, char *out, size_t size);
/* Records "FILE: JP: <message>" ("FILE: <message>" when jp is "") and
 * returns PPS_ECONFIG. */
int pps__config_fail(const char *file, const char *jp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "expected EXPECTED, got VALUE", or ", missing" when v is NULL. */
int pps__config_fail_got(const char *file, const char *jp,
                         const char *expected, const struct json_t *v);
/* Records head + mid + tail as one line and returns status. */
int pps__config_report(int status, const char *head, const char *mid,
                       const char *tail);

/* Queue directories (config_dirs.c). */
/* Removes empty and "." segments and trailing slashes ("a//./b/" is "a/b");
 * with fold_dotdot also "name/.." ("a/../b" is "b", "/.." is "/"). Never
 * lengthens s. */
void pps__path_normalize(char *s, bool fold_dotdot);
/* rel joined to base_dir (unless rel is absolute or base_dir NULL) and
 * normalized without folding ".."; malloc'ed, NULL when out of memory. */
char *pps__path_join(const char *base_dir, const char *rel);
/* The directories of a configuration's queues, to find two naming one:
 * by spelling with ".." folded, and with on_disk also on disk (stat() and
 * realpath(); nothing is written). */
typedef struct pps__config_dirs pps__config_dirs;
/* Room for cap directories; NULL when out of memory. */
pps__config_dirs *pps__config_dirs_new(size_t cap, bool on_disk);
/* Adds queue directory `path` (as pps__path_join() made it); *alias gets
 * the index of an earlier directory that is the same one, or SIZE_MAX, and
 * *on_disk_only whether only the file system showed it. PPS_OK, or
 * PPS_ENOMEM (nothing added, nothing recorded). */
int pps__config_dirs_add(pps__config_dirs *d, const char *path, size_t *alias,
                         bool *on_disk_only);
void pps__config_dirs_free(pps__config_dirs *d);

/* ---- finding the queues of a configuration (config_query.c) ------------- */

/* The queues [*first, *end) that `name` selects: one found by key, path or
 * the identity of its directory, or all of them if name is NULL.
 * PPS_ENOTFOUND if none matches. */
int pps__config_find_queues(const pps_config *cfg, const char *name,
                            size_t *first, size_t *end);
/* The checks of pps_pub_open() (publisher) and pps_sub_open(): PPS_EINVAL
 * for NULL arguments, PPS_ENOTFOUND unless cfg has component id with an
 * out_queue (publisher) or an in_queue, which *comp then gets. `what`
 * names the call. */
int pps__config_handle_role(const pps_config *cfg, const char *id,
                            bool publisher, const pps__component **comp,
                            const char *what);

/* ---- storage layout (layout.c) ------------------------------------------- */

/* The version of the layout below, stored in every queue (docs/format.rst):
 * a change bumps it, init upgrades older queues, newer ones are refused. */
#define PPS__FORMAT_VERSION 1u
/* Names of the internal databases, for messages. */
#define PPS__DB_META "pps.meta"
#define PPS__DB_DATA "pps.data"
#define PPS__DB_MSG "pps.msg"
/* The longest name of a subscriber's pending database, NUL included. */
#define PPS__SUB_NAME_MAX (4 + 255 + 1)
/* Pending databases are this prefix + subscriber id (layout_subs.c). */
#define PPS__SUB_PREFIX "sub:"
/* The meta record listing the subscriber ids, each NUL-terminated. */
#define PPS__KEY_SUBSCRIBERS "subscribers"
/* The flags of every database keyed by message id. */
#define PPS__ID_KEYED MDB_INTEGERKEY

/* The settings record, stored in host byte order (as LMDB itself is). */
typedef struct pps__settings {
    uint64_t msg_timeout_secs;
    uint64_t max_msgs_num;
    uint64_t hwm_lmdb_size_bytes;
    uint32_t strategy;   /* enum pps__strategy */
    uint32_t durability; /* enum pps__durability */
} pps__settings;

/* The sequence record. */
typedef struct pps__seq {
    uint64_t next_id; /* the id the next message gets; starts at 1 */
    uint64_t gen;     /* bumped whenever settings or subscribers change */
} pps__seq;

/* The metadata record of a message. */
typedef struct pps__msg_meta {
    int64_t published_ns;
    uint32_t pending; /* how many pending databases still hold the id */
    uint32_t reserved;
} pps__msg_meta;

/* The internal databases of an open queue; the handles stay valid for the
 * life of its environment. */
typedef struct pps__dbs {
    MDB_dbi meta, data, msg;
} pps__dbs;

/* What a prune, clear or removal took away. */
typedef struct pps__removed {
    uint64_t messages;
    uint64_t bytes;
} pps__removed;

/* The registered subscribers of a queue with their pending databases. */
typedef struct pps__subs {
    char *ids;     /* n NUL-terminated ids, back to back */
    size_t len;    /* bytes in ids */
    size_t n;
    MDB_dbi *dbis; /* n handles, in the order of ids */
} pps__subs;

/* Writes record `key` of pps.meta (layout.c, layout_subs.c). */
int pps__layout_put_meta(const pps__env *e, MDB_txn *txn, const char *key,
                         const void *val, size_t len);
/* Takes message id off the books of one subscriber whose pending entry is
 * gone: decrements its pending count, deletes it at 0. */
int pps__layout_release(const pps__env *e, MDB_txn *txn, uint64_t id,
                        const char *what);

/* Checks the format of a queue in a read-only environment, before anything
 * is written to it: PPS_OK, PPS_ENOTINIT (no format record yet: an init
 * never finished), PPS_EFOREIGN or PPS_EVERSION. */
int pps__layout_probe(MDB_txn *txn, const char *path);
/* Opens the internal databases into e->dbs (creating them if `create`). */
int pps__layout_open(pps__env *e, MDB_txn *txn, bool create);
/* PPS_OK if the queue is of this library's format version. */
int pps__layout_check_format(const pps__env *e, MDB_txn *txn);
/* Writes the format version unless one is stored; *changed tells. */
int pps__layout_init_format(const pps__env *e, MDB_txn *txn, bool *changed);

int pps__layout_read_settings(const pps__env *e, MDB_txn *txn,
                              pps__settings *out);
/* Stores s unless equal to what is stored; *changed tells. */
int pps__layout_write_settings(const pps__env *e, MDB_txn *txn,
                               const pps__settings *s, bool *changed);
int pps__layout_read_seq(const pps__env *e, MDB_txn *txn, pps__seq *out);
int pps__layout_write_seq(const pps__env *e, MDB_txn *txn,
                          const pps__seq *seq);

/* Reads the subscriber list and opens every pending database (inside a
 * write transaction). *out is replaced; free it with pps__subs_free(). */
int pps__subs_open(const pps__env *e, MDB_txn *txn, pps__subs *out);
void pps__subs_free(pps__subs *s);
/* Index of `id` in s, or -1. */
long pps__subs_find(const pps__subs *s, const char *id);
/* Registers the ids not registered yet, each with an empty pending
 * database (inside a write transaction); *changed tells. PPS_EFULL, with
 * nothing written, if more than max_subs would then be registered. */
int pps__subs_register(const pps__env *e, MDB_txn *txn, char *const *ids,
                       size_t n, uint64_t max_subs, bool *changed);
/* Unregisters sub_id (inside a write transaction): releases every id it
 * pends on as a consumption does (messages nobody else pends on are
 * deleted), deletes its pending database and takes it off the list;
 * *pending gets how many ids it pended on. PPS_ENOTFOUND if it is not
 * registered. The caller bumps the generation. */
int pps__subs_unregister(const pps__env *e, MDB_txn *txn, const char *sub_id,
                         uint64_t *pending);
/* Opens the pending database of registered subscriber sub_id (inside a
 * write transaction); PPS_ENOTINIT if it is not registered. *index (may
 * be NULL) gets its place in the list. */
int pps__subs_open_one(const pps__env *e, MDB_txn *txn, const char *sub_id,
                       MDB_dbi *out, size_t *index);
/* The name of sub_id's pending database, for messages. */
void pps__layout_sub_name(char out[PPS__SUB_NAME_MAX], const char *sub_id);

/* Decodes a key of pps.data, pps.msg or a pending database; false if it
 * is not a message id. */
bool pps__layout_decode_id(const MDB_val *key, uint64_t *id);
/* Decodes the metadata record of message id; PPS_ESTORAGE if malformed. */
int pps__layout_decode_meta(const pps__env *e, uint64_t id,
                            const MDB_val *val, pps__msg_meta *out);

/* Stores message `id` (payload, metadata with `published_ns`) and appends
 * its id to the n pending databases `targets`. Ids must increase. */
int pps__layout_append(const pps__env *e, MDB_txn *txn, uint64_t id,
                       const pps_buf *msg, int64_t published_ns,
                       const MDB_dbi *targets, size_t n);
/* Fills msg with message `key` (zero-copy: msg->data points into the map
 * and is valid while txn is). *orphan: the id pends but its message is
 * gone (nothing to deliver). */
int pps__layout_read_msg(const pps__env *e, MDB_txn *txn, const MDB_val *key,
                         pps_message *msg, bool *orphan);
/* Consumes message `id` for the subscriber whose pending database is
 * `sub`: removes it there, decrements its pending count and deletes the
 * message when that reaches 0. An id no longer pending is not an error. */
int pps__layout_consume(const pps__env *e, MDB_txn *txn, MDB_dbi sub,
                        uint64_t id);
/* Consumes up to `limit` ids of pending database `sub` below *until (0:
 * set it to the newest id first); *done once none is left below it. */
int pps__layout_consume_below(const pps__env *e, MDB_txn *txn, MDB_dbi sub,
                              uint64_t *until, size_t limit, bool *done);
/* How many ids pending database `dbi` holds (O(1)). */
int pps__layout_pending_count(const pps__env *e, MDB_txn *txn, MDB_dbi dbi,
                              uint64_t *count);
/* Deletes message `id` from payload, metadata and the n pending databases
 * `subs`; adds what it removed to *removed (may be NULL). */
int pps__layout_remove_msg(const pps__env *e, MDB_txn *txn, uint64_t id,
                           const MDB_dbi *subs, size_t n,
                           pps__removed *removed);
/* Deletes every message (subs: every pending database); adds to *removed. */
int pps__layout_clear(const pps__env *e, MDB_txn *txn, const pps__subs *subs,
                      pps__removed *removed);
/* Sets the pending count of message id (check's repair). */
int pps__layout_set_pending(const pps__env *e, MDB_txn *txn, uint64_t id,
                            uint32_t pending);
/* The oldest (newest: the newest) message's id and metadata; *found false
 * if the queue is empty. */
int pps__layout_end_msg(const pps__env *e, MDB_txn *txn, bool newest,
                        uint64_t *id, pps__msg_meta *meta, bool *found);
/* The first id of id-keyed database `dbi` (e->dbs.msg or a pending
 * database); *found false if it is empty or its first key is no id. */
int pps__layout_first_id(const pps__env *e, MDB_txn *txn, MDB_dbi dbi,
                         uint64_t *id, bool *found);
/* Publish time of message id, 0 if unknown. */
int64_t pps__layout_published(const pps__env *e, MDB_txn *txn, uint64_t id);
/* Messages stored, and the bytes of the pages holding them (what
 * HWM_LMDB_SIZE_BYTES counts). O(1): LMDB's database statistics. */
int pps__layout_usage(const pps__env *e, MDB_txn *txn, uint64_t *count,
                      uint64_t *bytes);

/* ---- the queue directory (queuedir.c) ------------------------------------ */

/* Opens the queue directory q->path into *dirfd (creating it and its
 * parents if `create`), refusing what the caller must not trust: a
 * symbolic link, what is not a directory (PPS_EFOREIGN), a directory of
 * another user, one writable by others, or by its group without the
 * sticky bit. PPS_ENOTINIT if missing. *dev and *ino identify it. */
int pps__qdir_open(const pps__queue_cfg *q, bool create, int *dirfd,
                   dev_t *dev, ino_t *ino);
/* Does `name` exist in the queue directory (as anything)? */
bool pps__qdir_has(int dirfd, const char *name);
/* Opens file `name` of the queue directory (`dir` names it in messages)
 * with open(2) `flags`, never through a symbolic link; it must be a
 * regular file the caller may trust. With `create` it is created if
 * missing and given file_mode. PPS_ENOTINIT if missing otherwise. */
int pps__qdir_open_file(int dirfd, const char *dir, const char *name,
                        int flags, bool create, unsigned file_mode, int *out);
/* Checks (and with `create` creates) data.mdb and lock.mdb before LMDB
 * opens them by name, and allocates the lock file's blocks. `read_only`:
 * data.mdb is only read (lock.mdb must still be writable: LMDB's reader
 * slots are there). */
int pps__qdir_prepare_lmdb(int dirfd, const char *dir,
                           const pps__queue_cfg *q, bool create,
                           bool read_only);
/* May the caller write data.mdb? (Not: a reader of a shared queue.) */
bool pps__qdir_writable(int dirfd);
/* The mode of lock.mdb for files of file_mode: whoever may read the queue
 * may also take an LMDB reader slot, so the group gets write access where
 * it has read access. */
unsigned pps__qdir_lock_mode(unsigned file_mode);
/* Gives the queue's files (owned by the caller) their configured mode:
 * init, once the queue proved to be one. */
int pps__qdir_apply_modes(int dirfd, const char *dir, unsigned file_mode);
/* The path to hand LMDB: the opened directory itself (/proc/self/fd/N),
 * or dir where /proc is missing. */
void pps__qdir_lmdb_path(int dirfd, const char *dir, char out[PATH_MAX]);
/* Flushes a directory itself, so that files created in it survive a power
 * cut. */
int pps__qdir_sync(const char *path);

/* ---- a look at data.mdb before LMDB opens it (datafile.c) ---------------- */

/* Checks, with plain reads, that <dir>/data.mdb is an LMDB file at least as
 * long as its newest committed state; *size gets its size. PPS_ENOTINIT
 * if it was never committed (empty, or zeros where its meta pages belong:
 * an interrupted init), PPS_ESTORAGE with the path for anything else.
 * Nothing is written. */
int pps__datafile_examine(int dirfd, const char *dir, int64_t *size);

/* ---- the wake-up file (wakeup.c) ----------------------------------------- */

#define PPS__WAKE_FILE "pps.wake"

typedef struct pps__wake pps__wake;
/* Maps the wake-up file of queue directory `dir`. With `create` a missing,
 * empty or zero-filled file is (re)written and flushed with its directory;
 * without, it is PPS_ENOTINIT. A file of other content is PPS_EFOREIGN. */
int pps__wake_open(pps__wake **out, int dirfd, const char *dir, bool create,
                   unsigned mode);
/* The same, read-only (a reader of the queue: status, check): the file is
 * mapped read-only and the process never notifies or marks. */
int pps__wake_open_readonly(pps__wake **out, int dirfd, const char *dir,
                            unsigned mode);
void pps__wake_close(pps__wake *w);
/* Wakes the receivers waiting on the queue (after a commit that added
 * messages). */
void pps__wake_notify(pps__wake *w);
/* The wake-up word: read it before looking for messages, then wait. */
uint32_t pps__wake_seq(const pps__wake *w);
/* Was the last bump to `seq` (probably) this process's own notify? */
bool pps__wake_own(const pps__wake *w, uint32_t seq);
/* Sleeps until the wake-up word differs from `seen`, deadline_ns
 * (CLOCK_MONOTONIC; negative: none) passes, or a safety interval
 * elapses. */
void pps__wake_wait(pps__wake *w, uint32_t seen, int64_t deadline_ns);

/* What the wake-up file keeps for nosync queues, so that commits made
 * without flushes before an OS crash are noticed at the next boot: before
 * a process's first such commit, the boot's id is written and flushed
 * (mark_unsynced). The last process to close the queue flushes everything
 * and forgets the mark (it knows it is the last when sole_user, an
 * exclusive try of the lock every user holds shared, succeeds). A mark of
 * an earlier boot at open means commits may have been lost or torn. */
int pps__wake_mark_unsynced(pps__wake *w, const char *dir,
                            const char *boot_id);
/* Was the queue written without flushes in a boot other than boot_id and
 * not closed cleanly since? */
bool pps__wake_unsynced_before(const pps__wake *w, const char *boot_id);
/* Is there a mark at all? */
bool pps__wake_marked(const pps__wake *w);
/* Is this process the only one with the queue open (and stays so while it
 * holds the lock this took)? */
bool pps__wake_sole_user(pps__wake *w);
int pps__wake_forget_unsynced(pps__wake *w, const char *dir);

/* Consumptions handed to the next writer (handoff.c). Slot i belongs to
 * the i-th registered subscriber; a slot says "this subscriber, in this
 * boot, consumed its pending ids from `from` through `through`, in the
 * posting numbered `nonce`; a commit applied the posting numbered
 * `applied`". Only that subscriber's receiving handle posts; any writer
 * may apply, and records it after its commit. A nonce is unique to one
 * posting of one handle (pps__handoff_consume()). */
#define PPS__WAKE_SLOTS 80
/* A subscriber's tag: a hash of its id, never 0. */
uint64_t pps__wake_tag(const char *sub_id);
void pps__wake_post(pps__wake *w, size_t slot, uint64_t tag, uint64_t boot,
                    uint64_t from, uint64_t through, uint64_t nonce);
/* Is there a posting of subscriber `tag` in this boot that no commit
 * applied yet? *from, *through and *nonce get it. */
bool pps__wake_posted(const pps__wake *w, size_t slot, uint64_t tag,
                      uint64_t boot, uint64_t *from, uint64_t *through,
                      uint64_t *nonce);
/* After a commit that applied the posting `nonce` (or the poster's own
 * commit of it). */
void pps__wake_applied(pps__wake *w, size_t slot, uint64_t tag,
                       uint64_t nonce);
bool pps__wake_is_applied(const pps__wake *w, size_t slot, uint64_t tag,
                          uint64_t nonce);
/* Did publishers wake receivers within the last within_ns, and the time
 * before that too (a next send is near)? */
bool pps__wake_sends_often(const pps__wake *w, int64_t now_ns,
                           int64_t within_ns);
/* After the pps__wake_applied() calls of one commit: wakes the posters. */
void pps__wake_applied_notify(pps__wake *w);
/* The word posters wait on, as pps__wake_seq()/pps__wake_wait(). */
uint32_t pps__wake_applied_seq(const pps__wake *w);
void pps__wake_wait_applied(pps__wake *w, uint32_t seen, int64_t deadline_ns);
/* Forgets every posted consumption (data.mdb starts over). */
void pps__wake_clear_slots(pps__wake *w);

/* ---- room in the map and on the disk (space.c) --------------------------- */

/* Per environment; touched only inside write transactions. Atomic only for
 * ThreadSanitizer, which cannot see LMDB's writer lock (the system liblmdb
 * is not instrumented). */
typedef struct pps__space {
    _Atomic uint32_t psize;
    _Atomic bool no_fallocate;  /* the file system cannot: stays sparse */
    _Atomic uint64_t allocated; /* allocated up to here (this process) */
} pps__space;

/* Before any write transaction's first change: allocates the disk blocks it
 * may write past the last used page. PPS_EFULL on a full file system. */
int pps__space_for_write(pps__env *e);
/* Before a send's first put: PPS_EFULL unless the map holds the messages
 * and still leaves the subscribers their slack, and the disk blocks for
 * them are allocated. */
int pps__space_for_send(pps__env *e, const pps_buf *msgs, size_t n,
                        size_t targets);
/* After a send that passed pps__space_for_send() still found the map full
 * (LMDB needs consecutive free pages for a large message): records what
 * the map holds, the longest run of free pages and the largest message
 * that fits now, and returns PPS_EFULL. */
int pps__space_explain_full(pps__env *e, const pps_buf *msgs, size_t n);

/* ---- transactions (txn.c) ------------------------------------------------ */

/* How often a write transaction reclaims the reader slots of dead
 * processes. */
#define PPS__READER_CHECK_NS ((int64_t)20 * 1000000)

/* Begins a write transaction: reclaims dead readers' slots now and then,
 * and reserves the disk blocks it may write. */
int pps__txn_begin_write(pps__env *e, MDB_txn **txn);
/* Begins (renew: renews) a read transaction; reclaims the reader slots of
 * dead processes and retries once if the reader table is full. */
int pps__txn_begin_read(pps__env *e, MDB_txn **txn);
int pps__txn_renew(pps__env *e, MDB_txn *txn);
/* Commits with the given durability (enum pps__durability); the
 * transaction is gone either way. */
int pps__txn_commit(pps__env *e, MDB_txn *txn, int durability,
                    const char *what);
/* Flushes the meta page of transaction txn_id (mdb_txn_id()): after a
 * nometasync commit, what makes it a sync one (pps__txn_commit() does so
 * itself for PPS__SYNC). */
int pps__txn_flush_meta(pps__env *e, size_t txn_id);
/* The durability of a commit that consumes or removes messages in a queue
 * of durability `queue`: never MDB_NOSYNC in a sync or nometasync queue
 * (a meta page must not reach the disk before its data), but no flush of
 * its own meta page either (a consumption need not survive an OS crash). */
int pps__txn_consume_durability(int queue);

/* The body of a write transaction: its changes, nothing else. It may
 * change *durability, the durability of its commit. */
typedef int (*pps__txn_body)(pps__env *e, MDB_txn *txn, void *ctx,
                             int *durability);
/* Runs body in a write transaction and commits it with `durability` (or
 * what body chose; aborts it if body fails). When the map was full,
 * reclaims the reader slots of dead processes (their snapshots pin pages)
 * and runs it once more if there were any. */
int pps__txn_run(pps__env *e, int durability, pps__txn_body body, void *ctx,
                 const char *what);
/* Runs body, which opens database handles and writes nothing, in a
 * transaction that keeps them: a write transaction, or in a read-only
 * environment a read transaction under e->dbi_lock. */
int pps__txn_open_handles(pps__env *e, pps__txn_body body, void *ctx,
                          const char *what);
/* Clears the reader slots of dead processes; true if there were any. */
bool pps__txn_reclaim_readers(pps__env *e);
/* Commits a trivial change so that pages freed by the previous commit can
 * be reused by the very next one. */
int pps__txn_recycle_freed(pps__env *e, int durability);

/* ---- the open queues of the process (env.c) ------------------------------ */

/* One queue directory opened by this process: one LMDB environment, shared
 * by every handle on it (LMDB forbids two in one process). */
struct pps__env {
    /* Set when it is opened, then only read, by every layer. */
    MDB_env *env;
    char *path;
    pps__dbs dbs;
    pps__wake *wake;
    /* space.c's state */
    pps__space space;
    /* txn.c's: when dead readers were last reclaimed (atomic: see
     * pps__space), and whether this process committed without flushes */
    _Atomic int64_t readers_checked_ns;
    _Atomic bool unsynced;
    char boot_id[PPS__BOOT_ID_SIZE]; /* this boot's, read at open */
    uint64_t boot_hash;              /* pps__wake_tag(boot_id); 0: none */
    /* A shared mapping of data.mdb's two meta pages (writable envs): a
     * sync commit flushes them after the write lock is released
     * (pps__txn_commit()). NULL when read-only. */
    void *metas;
    size_t metas_len;
    /* The registry's (env.c), under its lock. */
    pps__env *next;
    dev_t dev;
    ino_t ino;
    pid_t pid;
    unsigned refs;
    bool opening; /* another thread is opening it: wait */
    /* Opened read-only (the caller may read the queue, not write it):
     * database handles are opened in read transactions, one at a time
     * under dbi_lock (LMDB allows no two handle-opening transactions at
     * once), and every write transaction is refused. */
    bool read_only;
    bool read_only_by_choice; /* by a reader that could write */
    pthread_mutex_t dbi_lock;
};

/* Gets this process's environment of a queue directory, opening it if
 * needed, with a reference for the caller. With `create` the directory, the
 * LMDB files, the internal databases and the wake-up file are created when
 * missing; without it a directory lacking any of them is PPS_ENOTINIT and
 * nothing is written to it. */
int pps__env_acquire(pps__env **out, const pps__queue_cfg *q, bool create);
/* The same for a reader that changes nothing (status, check): a queue not
 * open in this process yet is opened read-only (no file of it changes,
 * its time included); a writer of the same process wanting it meanwhile
 * waits until the reader let go. */
int pps__env_acquire_reader(pps__env **out, const pps__queue_cfg *q);
/* Drops the caller's reference; the last one closes the environment. A
 * reference taken in a parent process is ignored in a child after fork(). */
void pps__env_release(pps__env *e);

/* ---- the high-water mark (hwm.c) ----------------------------------------- */

/* Applies the high-water mark inside write txn `txn`: removes expired
 * messages, then half of them if a limit is reached. front_ns (may be NULL)
 * caches a lower bound of the oldest message's publish time between calls
 * (0: unknown); reset it to 0 when the transaction fails. */
int pps__hwm_enforce(const pps__env *e, MDB_txn *txn, const pps__settings *s,
                     const pps__subs *subs, int64_t now_ns,
                     pps__removed *removed, int64_t *front_ns);
/* After a send_many's messages were stored in write txn `txn`: while the
 * queue is over MAX_MSGS_NUM, prunes half of it as the strategy says. */
int pps__hwm_enforce_batch(const pps__env *e, MDB_txn *txn,
                           const pps__settings *s, const pps__subs *subs,
                           pps__removed *removed);
/* Pure arithmetic of the mark, testable without LMDB. */
bool pps__hwm_expired(int64_t published_ns, int64_t now_ns,
                      uint64_t timeout_secs);
bool pps__hwm_over(uint64_t count, uint64_t bytes, const pps__settings *s);
uint64_t pps__hwm_prune_count(uint64_t count);

/* ---- consumptions handed to the next writer (handoff.c) ---------------- */

/* What one write transaction applied, to be recorded after its commit. */
typedef struct pps__handoff {
    size_t n;
    struct {
        size_t slot;
        uint64_t tag;
        uint64_t nonce;
    } done[PPS__WAKE_SLOTS];
} pps__handoff;

/* A receiving handle's consumption of its pending ids from `from` through
 * `through` (its subscriber's slot and tag): if a publisher sends often,
 * posts it and waits briefly for a writer to commit it. true if one did;
 * false: the caller commits it itself, then calls pps__handoff_settled()
 * with *nonce (0 if nothing was posted). */
bool pps__handoff_consume(pps__env *e, size_t slot, uint64_t tag,
                          uint64_t from, uint64_t through, uint64_t *nonce);
void pps__handoff_settled(pps__env *e, size_t slot, uint64_t tag,
                          uint64_t nonce);
/* Inside write txn `txn`: applies the consumptions posted for the
 * subscribers `subs` (tags[i] is subs' i-th one's pps__wake_tag()). */
int pps__handoff_apply(pps__env *e, MDB_txn *txn, const pps__subs *subs,
                       const uint64_t *tags, pps__handoff *h);
/* After that transaction committed: records what it applied and wakes the
 * subscribers waiting for it. */
void pps__handoff_committed(pps__env *e, const pps__handoff *h);

/* ---- control (control.c) ------------------------------------------------- */

/* Acquires the environment of an initialized queue (for writing, or as a
 * reader that changes nothing: pps__env_acquire_reader()) and, in a
 * transaction that writes nothing and ended before it returns, opens every
 * subscriber's database; on failure nothing is left to release. */
int pps__ctl_open_queue(const pps__queue_cfg *q, bool write, pps__env **e,
                        pps__subs *subs);

#endif /* PERSIPUBSUB_INTERNAL_H */
