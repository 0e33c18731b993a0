/*
 * What the files of src/ share. Names here are pps__ (internal, hidden from
 * the shared library's symbol table); everything else in a .c is static.
 */
#ifndef PERSIPUBSUB_INTERNAL_H
#define PERSIPUBSUB_INTERNAL_H

#include "persipubsub/persipubsub.h"

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A const pointer as LMDB's MDB_val wants it (LMDB never writes through
 * the pointers of keys and values it is given). */
static inline void *
pps__mut(const void *p)
{
    union {
        const void *c;
        void *m;
    } u = {.c = p};
    return u.m;
}

/* ---- errors (error.c) ---------------------------------------------------- */

/* Marks the start of a public call: the first detail recorded from here on
 * wins, later ones of the same call are dropped. */
void pps__err_begin(void);
/* Records the detail of a failure (printf format) and returns status. */
int pps__err(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Translates an LMDB or errno code (rc) met while doing `what` into a status,
 * records "what: text" and returns the status. */
int pps__err_lmdb(int rc, const char *what, const char *path);

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

/* ---- storage layout (layout.c) ------------------------------------------- */

#define PPS__FORMAT_VERSION 1u
#define PPS__DB_META "pps.meta"
#define PPS__DB_DATA "pps.data"
#define PPS__DB_MSG "pps.msg"
/* Pending databases are "sub:" + subscriber id; no internal name starts with
 * "sub:", so no id can clash with one. */
#define PPS__SUB_PREFIX "sub:"
#define PPS__SUB_NAME_MAX (sizeof(PPS__SUB_PREFIX) - 1 + 255 + 1)
#define PPS__WAKE_FILE "pps.wake"

/* Keys of the meta database. */
#define PPS__KEY_FORMAT "format"           /* uint32 version */
#define PPS__KEY_SETTINGS "settings"       /* pps__settings */
#define PPS__KEY_SUBSCRIBERS "subscribers" /* ids, each NUL-terminated */
#define PPS__KEY_SEQ "seq"                 /* pps__seq */

/* Stored in host byte order (as LMDB itself is). */
typedef struct pps__settings {
    uint64_t msg_timeout_secs;
    uint64_t max_msgs_num;
    uint64_t hwm_lmdb_size_bytes;
    uint32_t strategy;
    uint32_t durability;
} pps__settings;

typedef struct pps__seq {
    uint64_t next_id; /* the id the next message gets; starts at 1 */
    uint64_t gen;     /* bumped whenever settings or subscribers change */
} pps__seq;

/* Value of the msg database, keyed by id (MDB_INTEGERKEY). */
typedef struct pps__msg_meta {
    int64_t published_ns;
    uint32_t pending; /* how many pending databases still hold the id */
    uint32_t reserved;
} pps__msg_meta;

/* ---- environment registry (env.c) ---------------------------------------- */

typedef struct pps__env pps__env;

typedef struct pps__env_view {
    MDB_env *env;
    MDB_dbi meta, data, msg;
} pps__env_view;

/* Gets the process-wide environment of a queue directory, opening it if
 * needed, with a reference for the caller. With `create` the directory, the
 * LMDB files, the internal databases and the wake-up file are created when
 * missing; without it a directory lacking any of them is PPS_ENOTINIT and
 * nothing is written to it. */
int pps__env_acquire(pps__env **out, const pps__queue_cfg *q, bool create);
/* Drops the caller's reference; the last one closes the environment. A
 * reference taken in a parent process is ignored in a child after fork(). */
void pps__env_release(pps__env *e);
const pps__env_view *pps__env_get(const pps__env *e);
/* getpid(), cached (and reset in a fork()ed child). */
pid_t pps__pid(void);

/* Checks, with plain reads, that <dir>/data.mdb is an LMDB file at least as
 * long as its newest committed state (datafile.c); *size gets its size.
 * PPS_ESTORAGE with the path otherwise. Nothing is written. */
int pps__datafile_check(const char *dir, int64_t *size);
const char *pps__env_path(const pps__env *e);
/* Wakes receivers waiting on the queue (call after a commit that added
 * messages). */
void pps__env_notify(pps__env *e);
/* The wake-up word: read it before looking for messages, then wait. */
uint32_t pps__env_wake_seq(pps__env *e);
/* Sleeps until the wake-up word differs from `seen`, deadline_ns
 * (CLOCK_MONOTONIC) passes, or a safety interval elapses. */
void pps__env_wait(pps__env *e, uint32_t seen, int64_t deadline_ns);

/* ---- wake-up file (wakeup.c) --------------------------------------------- */

typedef struct pps__wake pps__wake;
/* Maps the wake-up file of queue directory `dir`, creating it if `create`. */
int pps__wake_open(pps__wake **out, const char *dir, bool create,
                   unsigned mode);
void pps__wake_close(pps__wake *w);
void pps__wake_notify(pps__wake *w);
uint32_t pps__wake_seq(const pps__wake *w);
void pps__wake_wait(pps__wake *w, uint32_t seen, int64_t deadline_ns);

/* Begins a write transaction. */
int pps__txn_write(pps__env *e, MDB_txn **txn);

/* Room in the map and on the disk (space.c); the state is per environment
 * and touched only inside write transactions. */
typedef struct pps__space {
    /* Atomic only for ThreadSanitizer, which cannot see LMDB's writer lock
     * (the system liblmdb is not instrumented). */
    _Atomic uint32_t psize;
    _Atomic bool no_fallocate;  /* the file system cannot: stays sparse */
    _Atomic uint64_t allocated; /* allocated up to here (this process) */
} pps__space;

pps__space *pps__env_space(pps__env *e);
/* Before any write transaction's first change: allocates the disk blocks it
 * may write past the last used page. PPS_EFULL on a full file system. */
int pps__space_for_write(pps__env *e, pps__space *sp);
/* Before a send's first put: PPS_EFULL unless the map holds the messages
 * and still leaves the subscribers their slack, and the disk blocks for
 * them are allocated. */
int pps__space_for_send(pps__env *e, pps__space *sp, const pps_buf *msgs,
                        size_t n, size_t targets);

/* How often a write transaction reclaims the reader slots of dead
 * processes. */
#define PPS__READER_CHECK_NS ((int64_t)20 * 1000000)

/* Clears the reader slots of dead processes; true if there were any (a
 * transaction that failed for want of pages may then succeed). */
bool pps__env_reclaim_readers(pps__env *e);
/* Begins (or renews) a read transaction; reclaims the reader slots of dead
 * processes and retries once if the reader table is full. */
int pps__txn_read(pps__env *e, MDB_txn **txn);
int pps__txn_renew(pps__env *e, MDB_txn *txn);
/* Commits with the given durability; aborts and translates on failure. */
int pps__txn_commit(pps__env *e, MDB_txn *txn, int durability,
                    const char *what);

/* ---- queue storage operations (layout.c, hwm.c) -------------------------- */

typedef struct pps__removed {
    uint64_t messages;
    uint64_t bytes;
} pps__removed;

/* Reads and checks the format version; PPS_ENOTINIT if absent. */
int pps__layout_check(pps__env *e, MDB_txn *txn);
int pps__layout_read_settings(pps__env *e, MDB_txn *txn, pps__settings *out);
int pps__layout_read_seq(pps__env *e, MDB_txn *txn, pps__seq *out);
int pps__layout_write_seq(pps__env *e, MDB_txn *txn, const pps__seq *seq);
/* The registered subscriber ids as one malloc'ed buffer of NUL-terminated
 * strings; *n receives their count. */
int pps__layout_read_subscribers(pps__env *e, MDB_txn *txn, char **buf,
                                 size_t *len, size_t *n);
void pps__layout_sub_name(char out[PPS__SUB_NAME_MAX], const char *sub_id);
/* Opens the pending database of sub_id inside a write transaction (creating
 * it if `create`); PPS_ENOTINIT if it does not exist. */
int pps__layout_open_sub(pps__env *e, MDB_txn *txn, const char *sub_id,
                         bool create, MDB_dbi *out);
/* The registered subscribers of a queue with their pending databases. */
typedef struct pps__subs {
    char *ids;     /* n NUL-terminated ids, back to back */
    size_t len;    /* bytes in ids */
    size_t n;
    MDB_dbi *dbis; /* n handles, in the order of ids */
} pps__subs;
/* Reads the subscriber list and opens every pending database, inside a write
 * transaction. *out is replaced (free it with pps__subs_free()). */
int pps__subs_open(pps__env *e, MDB_txn *txn, pps__subs *out);
void pps__subs_free(pps__subs *s);
/* Index of `id` in s, or -1. */
long pps__subs_find(const pps__subs *s, const char *id);
/* Writes the subscriber list. */
int pps__subs_write(pps__env *e, MDB_txn *txn, const char *ids, size_t len);

/* Commits a trivial change so that pages freed by the previous commit can
 * be reused by the next one. */
int pps__layout_settle(pps__env *e);

/* Consumes message `id` for the subscriber whose pending database is `sub`:
 * removes it there, decrements its pending count and deletes the message
 * when that reaches 0. An id no longer pending is not an error. */
int pps__layout_consume(pps__env *e, MDB_txn *txn, MDB_dbi sub, uint64_t id);
/* Deletes message `id` from payload, metadata and every pending database in
 * subs (n of them); adds what it removed to *removed. */
int pps__layout_remove_msg(pps__env *e, MDB_txn *txn, uint64_t id,
                           const MDB_dbi *subs, size_t n,
                           pps__removed *removed);

/* Applies the high-water mark inside write txn `txn`: removes expired
 * messages, then half of them if a limit is reached. front_ns (may be NULL)
 * caches a lower bound of the oldest message's publish time between calls
 * (0: unknown); reset it to 0 when the transaction fails. */
int pps__hwm_enforce(pps__env *e, MDB_txn *txn, const pps__settings *s,
                     const MDB_dbi *subs, size_t n, int64_t now_ns,
                     pps__removed *removed, int64_t *front_ns);
/* Messages stored and the bytes of the pages holding them. */
int pps__hwm_usage(pps__env *e, MDB_txn *txn, uint64_t *count,
                   uint64_t *bytes);
/* Pure arithmetic of the mark, testable without LMDB. */
bool pps__hwm_expired(int64_t published_ns, int64_t now_ns,
                      uint64_t timeout_secs);
bool pps__hwm_over(uint64_t count, uint64_t bytes, const pps__settings *s);
uint64_t pps__hwm_prune_count(uint64_t count);

/* ---- control (control.c) ------------------------------------------------ */
int pps__ctl_prune_queue(const pps__queue_cfg *q, pps__removed *removed);
int pps__ctl_clear_queue(const pps__queue_cfg *q, pps__removed *removed);
/* The queues [*first, *end) that `name` selects: one found by key, path or
 * the identity of its directory, or all of them if name is NULL. */
int pps__ctl_queue_range(const pps_config *cfg, const char *name,
                         size_t *first, size_t *end);
/* Acquires the environment of an initialized queue and begins a write
 * transaction with every subscriber's database open; on failure nothing is
 * left to release. */
int pps__queue_open(const pps__queue_cfg *q, pps__env **e, MDB_txn **txn,
                    pps__subs *subs);

/* ---- time ----------------------------------------------------------------- */
int64_t pps__now_realtime_ns(void);
int64_t pps__now_monotonic_ns(void);
int64_t pps__now_coarse_ns(void);

#endif /* PERSIPUBSUB_INTERNAL_H */
