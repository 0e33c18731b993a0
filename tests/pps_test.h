/*
 * Helpers shared by the tests: a private directory per test, configs
 * written from JSON text, and child processes checked to the last status.
 */
#ifndef PPS_TEST_H
#define PPS_TEST_H

#include "persipubsub/persipubsub.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

/* Waits for pid and returns its raw wait status. */
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

#endif
