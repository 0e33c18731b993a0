/*
 * Helpers shared by the tests: a private directory per test, configs
 * written from JSON text, handles and receives that fail the test on an
 * unexpected status, clocks, and forked children checked to the last status.
 */
#ifndef PPS_TEST_H
#define PPS_TEST_H

#include "persipubsub/persipubsub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* A fresh directory under $TMPDIR (or /tmp), removed by pps_test_cleanup().
 * Returns a malloc'ed path; fails the test if it cannot be made. */
char *pps_test_tmpdir(void);

/* Removes a directory tree (best effort) and frees `dir`. */
void pps_test_cleanup(char *dir);

/* Writes `json` to DIR/NAME and returns the malloc'ed file path. */
char *pps_test_write(const char *dir, const char *name, const char *json);

/* Writes `json` to DIR/config.json, loads it and fails the test on error.
 * Relative queue paths in it resolve against dir. */
pps_config *pps_test_config(const char *dir, const char *json);

/* As pps_test_config(), then pps_ctl_init() on it. */
pps_config *pps_test_queue(const char *dir, const char *json);

/* A config with one queue "q" (path DIR/q), publisher "pub" and the
 * subscribers named in `subs` (a NULL-terminated list), each a component;
 * hwm is the "high-water-mark" object text or NULL; extra is appended to
 * the queue object (e.g. "\"durability\": \"nosync\"") or NULL. Initialized. */
pps_config *pps_test_simple(const char *dir, const char *const *subs,
                            const char *hwm, const char *extra);

/* Waits for pid and fails the test unless it exited with status 0. */
void pps_test_wait_ok(pid_t pid);

/* Waits for pid and returns its raw wait status; fails the test if pid
 * cannot be waited for (ECHILD). */
int pps_test_wait(pid_t pid);

/* A receive callback that copies the payload into a growing list. */
typedef struct pps_test_sink {
    size_t n;
    uint64_t ids[4096];
    size_t lens[4096];
    char *data[4096];
    int refuse; /* if non-zero, returned instead of 0 (message kept) */
} pps_test_sink;
int pps_test_collect(const pps_message *msg, void *user);
void pps_test_sink_free(pps_test_sink *s);

/* A zeroed sink on the heap (it is too large for a thread's stack). */
pps_test_sink *pps_test_sink_new(void);

/* Frees a sink of pps_test_sink_new() and its payloads; NULL is a no-op. */
void pps_test_sink_del(pps_test_sink *s);

/* ---- clocks ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t pps_test_mono_ms(void);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t pps_test_mono_ns(void);

/* CLOCK_REALTIME in nanoseconds (the clock of pps_message.published_ns). */
int64_t pps_test_real_ns(void);

/* Sleeps ms milliseconds, resuming after a signal. */
void pps_test_sleep_ms(int ms);

/* ---- files -------------------------------------------------------------- */

/* Returns the malloc'ed path DIR/NAME. */
char *pps_test_path_in(const char *dir, const char *name);

/* Returns the malloc'ed path of the file pps_test_config() writes in dir. */
char *pps_test_config_path(const char *dir);

/* The number of entries of a directory, "." and ".." excluded. */
size_t pps_test_dir_entries(const char *dir);

/* ---- handles and receiving (in the test process) ------------------------ */

/* Opens publisher id; fails the test unless PPS_OK and a handle. */
pps_pub *pps_test_pub_open(const pps_config *cfg, const char *id);

/* Opens subscriber id; fails the test unless PPS_OK and a handle. */
pps_sub *pps_test_sub_open(const pps_config *cfg, const char *id);

/* Receives with timeout 0 until PPS_ETIMEDOUT, failing the test on any
 * other status (a drain never ends silently on PPS_ESTORAGE); returns how
 * many came. */
size_t pps_test_drain(pps_sub *sub, pps_test_sink *sink);

/* A receive callback that counts its calls in the int at user. */
int pps_test_count_calls(const pps_message *msg, void *user);

/* Fails the test unless a receive with timeout 0 times out without a call. */
void pps_test_expect_empty(pps_sub *sub);

/* What the first queue of a config holds, read in a transaction of its own. */
typedef struct pps_test_usage {
    uint64_t count;    /* messages stored */
    uint64_t bytes;    /* pages holding them, as the high-water mark counts */
    uint64_t map_used; /* bytes of the map in use, free pages included */
} pps_test_usage;
pps_test_usage pps_test_queue_usage(const pps_config *cfg);

/* Writes key/val into LMDB database `db` (opened with `flags`) of the first
 * queue of cfg, with plain LMDB calls on the library's own environment (one
 * MDB_env per process), as a damaged disk or another version of the library
 * would leave it. */
void pps_test_put_raw(const pps_config *cfg, const char *db, unsigned flags,
                      const void *key, size_t klen, const void *val,
                      size_t vlen);

/* Fills the first queue's LMDB map to the last page with records of its
 * own (past the room the library keeps for consumption), through plain
 * LMDB calls; returns how many records, for pps_test_unfill_map_raw(). */
unsigned pps_test_fill_map_raw(const pps_config *cfg);

/* Deletes the n records of pps_test_fill_map_raw(). */
void pps_test_unfill_map_raw(const pps_config *cfg, unsigned n);

/* Bumps the generation of the first queue's sequence record: every
 * publisher reloads the queue's format, settings and subscribers at its
 * next send. */
void pps_test_bump_generation(const pps_config *cfg);

/* Fails the test unless pps_ctl_check() finds no problem (each is logged). */
void pps_test_expect_consistent(const pps_config *cfg);

/* ---- children of fork() ------------------------------------------------- */

/* Exit codes shared by the children; a file numbers its own from ELOCAL. */
enum {
    PPS_TEST_CHILD_OK = 0,
    PPS_TEST_CHILD_ECONFIG = 10,  /* pps_config_load() failed */
    PPS_TEST_CHILD_EOPEN = 11,    /* pps_pub_open() or pps_sub_open() failed */
    PPS_TEST_CHILD_ESEND = 12,    /* a send failed */
    PPS_TEST_CHILD_ERECEIVE = 13, /* a receive returned an unexpected status */
    PPS_TEST_CHILD_EPIPE = 14,    /* cannot report to the parent */
    PPS_TEST_CHILD_ELOCAL = 20,   /* the first code a test file defines */
};

/* The name of one exit code that a test file adds to the shared ones. */
typedef struct pps_test_code {
    int code;
    const char *name;
} pps_test_code;

/* Names a child's exit code: a shared one, one of `local` (ended by a NULL
 * name; may be NULL), or "unknown". */
const char *pps_test_child_code_name(int code, const pps_test_code *local);

/* fork(), failing the test if it fails. */
pid_t pps_test_fork(void);

/* First thing in every child: die with the test process, and never hang. */
void pps_test_child_begin(pid_t parent);

/* Forks a child, begun, with a pipe: *fd is its write end there, else the
 * read end; returns as fork(). */
pid_t pps_test_fork_piped(int *fd);

/* In a child: prints what failed (rc, last error) and _exit(code). */
_Noreturn void pps_test_child_fail(int code, const char *what, int rc);

/* In a child: loads the config at path, or exits PPS_TEST_CHILD_ECONFIG. */
pps_config *pps_test_child_config(const char *path);

/* In a child: opens publisher id, or exits PPS_TEST_CHILD_EOPEN. */
pps_pub *pps_test_child_pub(const pps_config *cfg, const char *id);

/* In a child: opens subscriber id, or exits PPS_TEST_CHILD_EOPEN. */
pps_sub *pps_test_child_sub(const pps_config *cfg, const char *id);

/* Reads exactly n bytes within timeout_ms; false on timeout, EOF or error. */
bool pps_test_read_within(int fd, void *buf, size_t n, int timeout_ms);

/* ---- the wake-up file (pps.wake, see src/wakeup.c) ---------------------- */

/* The receivers now counted as sleeping on the queue in directory qdir. */
uint32_t pps_test_waiters(const char *qdir);

/* Waits up to timeout_ms until more than `more_than` receivers sleep on the
 * queue in qdir: after it, a send is known to reach a sleeping receiver.
 * False on timeout. (A receiver killed while waiting stays counted.) */
bool pps_test_wait_for_waiters(const char *qdir, uint32_t more_than,
                               int timeout_ms);

/* ---- small queues, payloads, statuses (faults and hostile inputs) -------- */

#define PPS_TEST_KIB 1024ull
#define PPS_TEST_MIB (1024ull * 1024ull)

/* A config with one queue "q" (path DIR/q), publisher "pub", subscribers s1
 * and s2 and a map of map_bytes; extra is appended to the queue object (e.g.
 * "\"durability\": \"nosync\"") or NULL. Not initialized. */
pps_config *pps_test_small_config(const char *dir, uint64_t map_bytes,
                                  const char *extra);

/* As pps_test_small_config(), then pps_ctl_init() on it. */
pps_config *pps_test_small_queue(const char *dir, uint64_t map_bytes,
                                 const char *extra);

/* A 1 MiB small queue holding 40 messages of 3000 bytes (payloads 0..39),
 * every handle closed. */
pps_config *pps_test_queue_with_messages(const char *dir);

/* Fails unless the detail of the last failure is one non-empty line naming
 * `path` (if not NULL). */
void pps_test_expect_detail(const char *path, const char *what);

/* What pps_ctl_status() says of the first queue of a config. */
typedef struct pps_test_qstat {
    uint64_t messages, map_size, map_used, next_id;
    uint64_t pending[4];
} pps_test_qstat;
int pps_test_qstat_cb(const pps_queue_status *st, void *user);
pps_test_qstat pps_test_queue_status(const pps_config *cfg);

/* Payload i of len bytes: a 16-byte header naming i, then a pattern of i. */
void pps_test_payload(unsigned char *buf, size_t len, uint32_t i);

/* Expects payloads of len bytes numbered from `next`, with rising ids. */
typedef struct pps_test_seq {
    size_t len;
    uint32_t next; /* the payload index expected next */
    uint64_t last_id;
    unsigned char *want; /* len bytes of scratch */
} pps_test_seq;
int pps_test_expect_cb(const pps_message *msg, void *user);

/* Receives n messages on sub, each the payload expected next. */
void pps_test_receive_expected(pps_sub *sub, pps_test_seq *x, size_t n,
                               const char *who);

/* A receive callback that consumes whatever comes. */
int pps_test_ignore(const pps_message *msg, void *user);

/* Sends payloads of len bytes from *next on until a send fails or `cap`
 * went through; returns the last status, how many went in *sent. */
int pps_test_fill(pps_pub *pub, size_t len, uint32_t *next, size_t cap,
                  size_t *sent);

/* A snapshot of a directory tree: names, modes, sizes, times and bytes. */
#define PPS_TEST_SNAP_MAX 64
typedef struct pps_test_snap_file {
    char name[512]; /* relative to the root */
    mode_t mode;
    off_t size;
    struct timespec mtime;
    uint64_t hash; /* FNV-1a of the bytes (regular files) */
} pps_test_snap_file;
typedef struct pps_test_snap {
    size_t n;
    pps_test_snap_file f[PPS_TEST_SNAP_MAX];
} pps_test_snap;

/* A malloc'ed snapshot of the tree under root, sorted by name. */
pps_test_snap *pps_test_snap_take(const char *root);

/* Fails unless the tree under root is as in `before`: same files, type,
 * mode, size, modification time and bytes (LMDB's lock.mdb: only its
 * existence and mode). */
void pps_test_expect_untouched(const char *root, const pps_test_snap *before,
                               const char *what);

/* Fails unless the tree under root has the files of `before` with the same
 * type, mode, size and bytes; unlike pps_test_expect_untouched() the
 * modification time may differ (opening LMDB for writing ftruncate()s
 * data.mdb to its own size, which counts as a modification). */
void pps_test_expect_same_content(const char *root, const pps_test_snap *before,
                                  const char *what);

/* Runs fn(arg) as user and group "nobody" (65534) in a child when running
 * as root (root ignores permission bits), else in this process; returns the
 * child's exit status (0 in this process), 77 if users cannot be changed. */
int pps_test_run_as_nobody(void (*fn)(void *), void *arg);

/* Sends text (no NUL) and fails the test unless it went through. */
void pps_test_send_str(pps_pub *p, const char *text);
/* Sends "n<from>" .. "n<to - 1>", one per send. */
void pps_test_send_numbered(pps_pub *pub, int from, int to);
/* Fails unless message k of the sink is "n<i>". */
void pps_test_expect_numbered(const pps_test_sink *s, size_t k, int i);
/* A deterministic binary payload for message i (zero bytes included): its
 * length, byte j, the whole of it; and a check of sink entry k. */
size_t pps_test_pattern_len(size_t i);
unsigned char pps_test_pattern_byte(size_t i, size_t j);
void pps_test_pattern_fill(unsigned char *buf, size_t i, size_t len);
void pps_test_check_pattern(const pps_test_sink *s, size_t k, size_t i);
/* Fails unless the sink's ids strictly increase. */
void pps_test_check_ids_increasing(const pps_test_sink *s);

#endif
