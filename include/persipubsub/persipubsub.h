/*
 * persipubsub: persistent, process-safe publish/subscribe on one host,
 * stored in LMDB.
 *
 * This header is the whole public C API. Conventions that hold for every
 * declaration below:
 *
 * - Every function returning int returns PPS_OK (0) on success or a negative
 *   PPS_E* status. The detail of a failure (the LMDB or OS error text, the
 *   path, the id at fault) is in pps_last_error() of the calling thread.
 * - No function prints, exits or aborts because of its input.
 * - Opaque handles are created by *_open / *_load, which set *out to NULL on
 *   failure, and released by *_close / *_free, which accept NULL.
 * - One thread at a time per handle. Any number of handles, in any number of
 *   threads and processes, may use the same queue concurrently. A handle
 *   must not be used in a child process after fork(): it answers
 *   PPS_EFORKED there; open a new one in the child.
 * - A pps_config must outlive every handle opened from it.
 */
#ifndef PERSIPUBSUB_PERSIPUBSUB_H
#define PERSIPUBSUB_PERSIPUBSUB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PPS_BUILDING_LIBRARY) && defined(__GNUC__)
#define PPS_API __attribute__((visibility("default")))
#else
#define PPS_API
#endif

/** The major version: changes when the API or ABI breaks. */
#define PPS_VERSION_MAJOR 0
/** The minor version: changes when the API grows compatibly. */
#define PPS_VERSION_MINOR 1
/** The patch version: changes with fixes only. */
#define PPS_VERSION_PATCH 0
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define PPS_VERSION_NUMBER                                                     \
    (PPS_VERSION_MAJOR * 10000 + PPS_VERSION_MINOR * 100 + PPS_VERSION_PATCH)

/**
 * The status codes: one list generates the enum, pps_strerror() and
 * pps_status_name(). Values are stable across releases.
 */
#define PPS_STATUS_MAP(X)                                                      \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ECONFIG, -2, "invalid configuration")                                    \
    X(ENOTFOUND, -3, "no such component or queue")                             \
    X(ENOTINIT, -4, "queue not initialized")                                   \
    X(ETIMEDOUT, -5, "no message arrived in time")                             \
    X(ECALLBACK, -6, "callback refused the message; it was kept")              \
    X(EFULL, -7, "queue storage is full")                                      \
    X(ESTORAGE, -8, "storage failure (LMDB or operating system)")              \
    X(ENOMEM, -9, "out of memory")                                             \
    X(EFORKED, -10, "handle used in a child process after fork()")             \
    X(EDECODE, -11, "payload does not decode as the expected type; kept")      \
    X(EVERSION, -12, "queue has an unsupported format version")                \
    X(ECORRUPT, -13, "queue is inconsistent")                                  \
    X(EFOREIGN, -14, "not a persipubsub queue (left untouched)")               \
    X(ELOST, -15, "a nosync queue's contents were lost in an OS crash")

/** Status codes returned by every int function of the API. */
typedef enum pps_status {
#define PPS_STATUS_ENUM_(name, value, text) PPS_##name = (value),
    PPS_STATUS_MAP(PPS_STATUS_ENUM_)
#undef PPS_STATUS_ENUM_
    PPS_OK = 0 /* last: no trailing comma, for C89 and C++98 users */
} pps_status;

/** A loaded and validated configuration; see pps_config_load(). */
typedef struct pps_config pps_config;
/** A publisher handle; see pps_pub_open(). */
typedef struct pps_pub pps_pub;
/** A subscriber handle; see pps_sub_open(). */
typedef struct pps_sub pps_sub;

/** A message handed to a receive callback. */
typedef struct pps_message {
    /** The payload. Owned by the library, read-only, valid only during the
     *  callback (it points into the memory map: copy what you keep). */
    const void *data;
    /** Payload length in bytes (0 is a valid, empty message). */
    size_t len;
    /** The queue's sequence number: strictly increasing per queue. Use it to
     *  drop the duplicates that at-least-once delivery may bring. */
    uint64_t id;
    /** CLOCK_REALTIME when the message was sent, in nanoseconds. */
    int64_t published_ns;
} pps_message;

/** One payload of a batch for pps_pub_send_many(); owned by the caller. */
typedef struct pps_buf {
    const void *data; /**< the payload; may be NULL only if len is 0 */
    size_t len;       /**< its length in bytes */
} pps_buf;

/**
 * A receive callback. Return 0 to consume the message; anything else keeps
 * it for redelivery (the receive call then returns PPS_ECALLBACK).
 *
 * While it runs, the handle holds a read transaction (an LMDB reader slot
 * and a snapshot, no lock): publishers and other subscribers go on. The
 * callback must not use the same pps_sub handle; it may use any other
 * handle, also on the same queue (to publish a reply, say).
 */
typedef int (*pps_receive_fn)(const pps_message *msg, void *user);

/** @return the library version as "MAJOR.MINOR.PATCH"; a static string. */
PPS_API const char *pps_version(void);

/**
 * Returns the static description of a status code, never NULL (also for
 * unknown codes).
 */
PPS_API const char *pps_strerror(int status);

/** Returns the name of a status code ("PPS_EFULL"), never NULL. */
PPS_API const char *pps_status_name(int status);

/**
 * Returns this thread's detail of its last failed call: one line naming what
 * failed and why, or "" if no call of this thread has failed. The string is
 * owned by the library and valid until the next call of this thread.
 */
PPS_API const char *pps_last_error(void);

/**
 * Sets this thread's detail (what pps_last_error() returns) and returns
 * status: for libraries built on persipubsub, such as the protobuf-c
 * helpers, to report their own failures the way the library does.
 *
 * @param status  returned as is.
 * @param detail  one line, copied (truncated to 1023 bytes); NULL is "".
 * @return status.
 */
PPS_API int pps_error_set(int status, const char *detail);

/**
 * Loads and validates a JSON configuration file (the format of the original
 * persipubsub, see docs/guide.rst). Relative queue paths are resolved
 * against the directory of the file. Nothing on disk is changed.
 *
 * @param out   receives the configuration, owned by the caller (free it with
 *              pps_config_free()); NULL on failure.
 * @param path  the file to read.
 * @return PPS_OK; PPS_ECONFIG for an unreadable file, a syntax error or a
 *         value that fails validation (detail: "FILE: JSON-PATH: expected
 *         ..., got ..." or "FILE:LINE:COLUMN: ..."); PPS_EINVAL for NULL
 *         arguments; PPS_ENOMEM.
 */
PPS_API int pps_config_load(pps_config **out, const char *path);

/** Frees a configuration; NULL is a no-op. No handle may still use it. */
PPS_API void pps_config_free(pps_config *cfg);

/** Returns the number of queues of a configuration (0 for NULL). */
PPS_API size_t pps_config_queue_count(const pps_config *cfg);

/**
 * Returns the key under "queues" of queue `index` (in file order), or NULL
 * if index is out of range. Owned by cfg.
 */
PPS_API const char *pps_config_queue_key(const pps_config *cfg, size_t index);

/**
 * Returns the directory of queue `index`, resolved against the config
 * file's directory, or NULL if index is out of range. Owned by cfg.
 */
PPS_API const char *pps_config_queue_path(const pps_config *cfg,
                                          size_t index);

/**
 * Finds a queue by its key, its path as resolved, or any path to the same
 * directory. Touches nothing on disk but stat().
 *
 * @param cfg    the configuration.
 * @param name   a key, or a path to the queue's directory.
 * @param index  receives the queue's index.
 * @return PPS_OK; PPS_ENOTFOUND; PPS_EINVAL.
 */
PPS_API int pps_config_queue_find(const pps_config *cfg, const char *name,
                                  size_t *index);

/**
 * Creates or updates every queue of the configuration: directories, the LMDB
 * environment, its databases, the limits and the subscribers. Idempotent. A
 * subscriber added to an existing queue receives only messages published
 * after it was added; subscribers that left the configuration are kept. A
 * nosync queue that an OS crash may have damaged (which every other
 * function refuses with PPS_ELOST) is recreated empty.
 *
 * @return PPS_OK; PPS_EINVAL; PPS_EFULL (more subscribers, registered and
 *         new, than max_db_num allows: nothing was changed; or a full
 *         disk); PPS_EFOREIGN (the path holds something that is not a
 *         queue: a file, another application's LMDB environment; left
 *         untouched); PPS_EVERSION (an existing queue of another format);
 *         PPS_ESTORAGE (file system or LMDB failure); PPS_ENOMEM.
 */
PPS_API int pps_ctl_init(const pps_config *cfg);

/**
 * pps_ctl_init() for one queue, found as pps_config_queue_find() does.
 *
 * @return as pps_ctl_init(); PPS_ENOTFOUND if no queue matches.
 */
PPS_API int pps_ctl_init_queue(const pps_config *cfg, const char *queue);

/**
 * Removes dangling messages from every queue of the configuration: those
 * older than MSG_TIMEOUT_SECS, then, if a queue is at or over MAX_MSGS_NUM or
 * HWM_LMDB_SIZE_BYTES, half of its messages as its strategy says.
 *
 * @return PPS_OK; PPS_EINVAL; PPS_ENOTINIT; PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION;
 *         PPS_EFULL (a full disk); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_ctl_prune(const pps_config *cfg);

/**
 * Deletes every message of every queue of the configuration; subscribers,
 * limits and the id sequence are kept.
 *
 * @return PPS_OK; PPS_EINVAL; PPS_ENOTINIT; PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION;
 *         PPS_EFULL (a full disk); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_ctl_clear(const pps_config *cfg);

/** What a prune or clear removed from one queue. */
typedef struct pps_removed {
    /** Messages removed. */
    uint64_t messages;
    /** Bytes of the pages that held them (what HWM_LMDB_SIZE_BYTES counts). */
    uint64_t bytes;
} pps_removed;

/**
 * pps_ctl_prune() for one queue of the configuration, reporting what it
 * removed.
 *
 * @param cfg      the configuration.
 * @param queue    the queue's key in "queues", or its path as written in
 *                 the configuration or as resolved; NULL for every queue.
 * @param removed  receives the totals (may be NULL).
 * @return as pps_ctl_prune(); PPS_ENOTFOUND if no queue matches.
 */
PPS_API int pps_ctl_prune_queue(const pps_config *cfg, const char *queue,
                                pps_removed *removed);

/**
 * pps_ctl_clear() for one queue (or every queue if queue is NULL),
 * reporting what it removed.
 *
 * @param cfg      the configuration.
 * @param queue    as for pps_ctl_prune_queue().
 * @param removed  receives the totals (may be NULL).
 * @return as pps_ctl_clear(); PPS_ENOTFOUND if no queue matches.
 */
PPS_API int pps_ctl_clear_queue(const pps_config *cfg, const char *queue,
                                pps_removed *removed);

/**
 * Removes subscriber sub_id from a queue for good: in one write
 * transaction, every message it has not consumed is released as if it had
 * consumed it (its pending count drops; a message no other subscriber
 * pends on is deleted), its pending database is deleted, which frees its
 * place under max_db_num, and it leaves the queue's subscriber list. The
 * removal is flushed (as a send with durability "sync" is) before this
 * returns, and what it freed is reusable by the next send.
 *
 * The queue's configuration must no longer list sub_id under
 * "subscribers" (pps_ctl_init() would register it again): remove it from
 * the configuration first, then call this with that configuration. A
 * publisher of any process goes on working: its next send no longer
 * writes to the removed subscriber (a publisher whose component names it
 * in its own "subscribers" gets PPS_ENOTINIT, as for any subscriber that
 * is not registered). A pps_sub handle of the removed id gets
 * PPS_ENOTINIT from its next receive ("subscriber ... is not registered"),
 * also if its callback accepted messages at the moment of the removal;
 * after a pps_ctl_init() that registers the id again, the same handle
 * receives what is published from then on.
 *
 * The work is proportional to the messages the subscriber had pending,
 * all in one transaction: on a full map, consume or clear first.
 * Thread safety: any thread; runs against running handles of any process.
 *
 * @param cfg     the configuration.
 * @param queue   the queue, found as pps_config_queue_find() does.
 * @param sub_id  the id of a registered subscriber of that queue.
 * @return PPS_OK; PPS_EINVAL (a NULL argument, an id that is no valid
 *         subscriber id, or one the queue's configuration still lists:
 *         nothing was changed); PPS_ENOTFOUND (no such queue, or sub_id is
 *         not registered in it: nothing was changed); PPS_ENOTINIT (the
 *         queue is not initialized); PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION; PPS_EFULL
 *         (the map or the disk is full: nothing was changed);
 *         PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_ctl_remove_subscriber(const pps_config *cfg,
                                      const char *queue, const char *sub_id);

/** One subscriber in a pps_queue_status. */
typedef struct pps_subscriber_status {
    const char *id;     /**< owned by the library, valid during the callback */
    uint64_t pending;   /**< messages it has not consumed */
    int64_t oldest_ns;  /**< publish time of its oldest pending one, 0: none */
} pps_subscriber_status;

/**
 * The state of one queue, handed to a pps_status_fn. Every pointer in it is
 * owned by the library and valid only during the callback. Fields may be
 * added at the end in later minor versions.
 */
typedef struct pps_queue_status {
    const char *key;  /**< the queue's key in "queues" */
    const char *path; /**< its directory, as resolved */
    uint64_t messages;  /**< messages stored */
    uint64_t bytes;     /**< pages holding messages x page size */
    uint64_t map_size;  /**< the LMDB map: the most the queue can hold */
    uint64_t map_used;  /**< bytes of the map in use, free pages included */
    int64_t oldest_ns;  /**< publish time of the oldest message, 0: empty */
    uint64_t next_id;   /**< the id the next message will get */
    uint64_t msg_timeout_secs;    /**< the stored MSG_TIMEOUT_SECS */
    uint64_t max_msgs_num;        /**< the stored MAX_MSGS_NUM */
    uint64_t hwm_lmdb_size_bytes; /**< the stored HWM_LMDB_SIZE_BYTES */
    const char *strategy;   /**< "prune_first" or "prune_last" */
    const char *durability; /**< "sync", "nometasync" or "nosync" */
    size_t n_subscribers;   /**< registered subscribers */
    /** n_subscribers entries, in registration order. */
    const pps_subscriber_status *subscribers;
} pps_queue_status;

/**
 * Receives one queue's status; a non-zero return stops pps_ctl_status().
 * It runs with nothing held (the status was read from a snapshot that has
 * ended), so it may block, and may call the library, on any queue.
 */
typedef int (*pps_status_fn)(const pps_queue_status *status, void *user);

/**
 * Reports the state of every queue of the configuration (or of one) to fn,
 * in the configuration's order. Changes nothing. Counting pending messages
 * per subscriber is O(1) (LMDB statistics).
 *
 * @param cfg    the configuration.
 * @param queue  key or path of one queue, or NULL for all.
 * @param fn     called once per queue.
 * @param user   passed to fn.
 * @return PPS_OK; PPS_ECALLBACK (fn returned non-zero); PPS_EINVAL;
 *         PPS_ENOTFOUND; PPS_ENOTINIT; PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION;
 *         PPS_EFULL (a full disk); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_ctl_status(const pps_config *cfg, const char *queue,
                           pps_status_fn fn, void *user);

/**
 * Receives one problem found by pps_ctl_check(): a one-line text, and
 * whether the repair fixes it (always 0 without repair). Both strings are
 * valid only during the call. Problems are told after the queue's scan
 * (and repair) ended, with nothing held: fn may call the library.
 */
typedef void (*pps_problem_fn)(const char *queue_path, const char *problem,
                               int repaired, void *user);

/**
 * Verifies the internal consistency of every queue (or of one): format and
 * settings readable, every pending id has its payload and metadata, every
 * pending count equals the number of subscribers holding the id, no payload
 * without metadata, ids below the sequence. Reads every message: its cost
 * grows with the queue.
 *
 * @param cfg       the configuration.
 * @param queue     key or path of one queue, or NULL for all.
 * @param repair    if non-zero, also fixes what can be fixed without losing
 *                  a message any subscriber still pends on, all in one
 *                  transaction (fn is told which problems it fixes).
 * @param fn        receives each problem (may be NULL).
 * @param user      passed to fn.
 * @param problems  receives the number of problems found (may be NULL).
 * @return PPS_OK (consistent, or every problem repaired); PPS_ECORRUPT
 *         (problems remain); PPS_EINVAL; PPS_ENOTFOUND; PPS_ENOTINIT;
 *         PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION; PPS_EFULL (a full disk);
 *         PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_ctl_check(const pps_config *cfg, const char *queue,
                          int repair, pps_problem_fn fn, void *user,
                          size_t *problems);

/**
 * Opens a publisher on the out_queue of component pub_id. The queue must
 * have been initialized (pps_ctl_init()).
 *
 * @param out     receives the handle, owned by the caller (pps_pub_close());
 *                NULL on failure.
 * @param cfg     the configuration; must outlive the handle.
 * @param pub_id  a component id of cfg with an out_queue.
 * @return PPS_OK; PPS_EINVAL; PPS_ENOTFOUND (no such component, or it has no
 *         out_queue); PPS_ENOTINIT (the queue, or a subscriber the publisher
 *         names, was never initialized); PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION;
 *         PPS_EFULL (a full disk); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_pub_open(pps_pub **out, const pps_config *cfg,
                         const char *pub_id);

/**
 * Publishes one message to every subscriber of the publisher (all
 * subscribers of the queue, or the subset its configuration names, as
 * registered when the send commits). Returns after the commit; with
 * durability "sync" the message is then on disk. If the queue is at or over
 * a high-water mark, dangling messages and then half of the messages are
 * pruned first, in the same transaction.
 *
 * @param pub   the publisher.
 * @param data  the payload, copied; may be NULL only if len is 0.
 * @param len   its length in bytes (0 is a valid, empty message).
 * A large message needs consecutive free pages: if the free pages hold it
 * but not in one run, the send settles and tries once more, and then
 * returns PPS_EFULL with the size that fits now in pps_last_error().
 *
 * @return PPS_OK; PPS_EINVAL; PPS_EFULL (the LMDB map or the disk is full:
 *         nothing was written); PPS_EFORKED; PPS_ENOTINIT (a subscriber
 *         the publisher names is no longer registered); PPS_EVERSION;
 *         PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_pub_send(pps_pub *pub, const void *data, size_t len);

/**
 * Publishes n messages in one transaction: all or none, with consecutive ids
 * in the order given. n may be 0 (nothing happens). After the messages, in
 * the same transaction, the high-water mark applies again: while the queue
 * is over MAX_MSGS_NUM, half of it is pruned as the strategy says (so a
 * batch larger than the limit keeps only its newest, or with prune_last
 * its oldest, messages).
 *
 * @param pub   the publisher.
 * @param msgs  n payloads, copied; an entry with a NULL data and a non-zero
 *              len is PPS_EINVAL and nothing is sent.
 * @param n     the number of payloads.
 * @return as pps_pub_send().
 */
PPS_API int pps_pub_send_many(pps_pub *pub, const pps_buf *msgs, size_t n);

/** Closes a publisher; NULL is a no-op. */
PPS_API void pps_pub_close(pps_pub *pub);

/**
 * Opens a subscriber: the durable subscription sub_id on the in_queue of
 * that component. Only one handle should receive for a subscriber id at a
 * time (two would both be handed the same front message).
 *
 * @param out     receives the handle, owned by the caller (pps_sub_close());
 *                NULL on failure.
 * @param cfg     the configuration; must outlive the handle.
 * @param sub_id  a component id of cfg with an in_queue.
 * @return PPS_OK; PPS_EINVAL; PPS_ENOTFOUND; PPS_ENOTINIT (queue or
 *         subscriber not initialized); PPS_EFOREIGN; PPS_ELOST; PPS_EVERSION;
 *         PPS_EFULL (a full disk); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_sub_open(pps_sub **out, const pps_config *cfg,
                         const char *sub_id);

/**
 * Hands the oldest pending message to fn, zero-copy. If fn returns 0 the
 * message is consumed (removed for this subscriber, and deleted once no
 * subscriber pends on it); otherwise it stays and comes again.
 *
 * @param sub         the subscriber.
 * @param timeout_ms  0: do not wait; negative: wait forever; positive: wait
 *                    up to that many milliseconds for a message.
 * @param fn          the callback; must not use this handle.
 * @param user        passed to fn.
 * On a nearly full map a consumption is committed in parts that fit. A
 * message fn accepted is never handed again by this handle: if its
 * consumption cannot be committed (PPS_EFULL, PPS_ESTORAGE), the handle
 * keeps its id and consumes it first in its next call, before handing
 * anything (pps_sub_close() tries too); only if the process dies or the
 * handle is closed before that does it come again.
 *
 * @return PPS_OK (consumed); PPS_ETIMEDOUT (nothing in time; fn was not
 *         called); PPS_ECALLBACK (fn returned non-zero; kept); PPS_EINVAL;
 *         PPS_EFORKED; PPS_ENOTINIT (the subscriber is no longer
 *         registered: pps_ctl_remove_subscriber() removed it; also if fn
 *         accepted messages as it was removed); PPS_EFULL (no room to
 *         commit a consumption, or the one an earlier call owes: nothing
 *         was handed to fn if it was the earlier one's); PPS_ESTORAGE;
 *         PPS_ENOMEM.
 */
PPS_API int pps_sub_receive(pps_sub *sub, int timeout_ms, pps_receive_fn fn,
                            void *user);

/**
 * Consumes every pending message of this subscriber but the newest, in one
 * transaction (on a map too full for that one, in several that fit), then
 * receives the newest as pps_sub_receive() does (waiting as timeout_ms
 * says if none is pending).
 *
 * @return as pps_sub_receive().
 */
PPS_API int pps_sub_receive_to_top(pps_sub *sub, int timeout_ms,
                                   pps_receive_fn fn, void *user);

/**
 * Waits like pps_sub_receive() for the first message, then hands up to max
 * pending messages in order to fn and consumes all that fn accepted in one
 * transaction. The first refusal stops the batch: that message and the rest
 * stay.
 *
 * The consumption is one transaction when it fits; on a nearly full map it
 * is committed in parts that fit, and accepted messages are never handed
 * again by this handle (as pps_sub_receive() says).
 *
 * @return the number of messages consumed (>= 1); PPS_ECALLBACK if the first
 *         message was refused; PPS_ETIMEDOUT; PPS_EINVAL (also for max 0);
 *         PPS_EFORKED; PPS_ENOTINIT (as for pps_sub_receive()); PPS_EFULL
 *         (as for pps_sub_receive()); PPS_ESTORAGE; PPS_ENOMEM.
 */
PPS_API int pps_sub_receive_batch(pps_sub *sub, size_t max, int timeout_ms,
                                  pps_receive_fn fn, void *user);

/** Closes a subscriber; NULL is a no-op. Its pending messages stay. */
PPS_API void pps_sub_close(pps_sub *sub);

#ifdef __cplusplus
}
#endif

#endif /* PERSIPUBSUB_PERSIPUBSUB_H */
