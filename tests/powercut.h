/*
 * The power-cut test (powercut.c drives the rounds, powercut_verify.c
 * checks a queue after a cut). Shared: the message format, the logs and a
 * round's outcome.
 */
#ifndef PPS_POWERCUT_H
#define PPS_POWERCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_MSG_LEN 128
#define PC_MAX_PUBS 2

/* One round as the verifier needs to know it. */
typedef struct pc_round {
    int number;
    const char *durability; /* "sync", "nometasync" or "nosync" */
    const char *config;     /* the config file: queue "q", components
                               p0, p1, consumer and idle */
    const char *pub_log;    /* "a P N" before, "k P N" after each PPS_OK */
    const char *con_log;    /* "c ID R P N" per message consumed */
    const char *init_log;   /* "i" once pps_ctl_init returned PPS_OK */
    bool fresh;             /* initialized within this round */
} pc_round;

typedef enum pc_outcome {
    PC_INTACT,        /* opened, consistent, every promise kept */
    PC_LOST_DETECTED, /* nosync: the library said its contents were lost */
    PC_VIOLATION      /* a broken promise (printed by the verifier) */
} pc_outcome;

typedef struct pc_result {
    int outcome;        /* pc_outcome */
    int unusable;       /* corrupt or unopenable (a violation) */
    int recreate;       /* the queue must be made anew for the next round */
    uint64_t acked;     /* acknowledged sends of the round */
    uint64_t lost;      /* of those, missing after the cut */
    uint64_t violations;
} pc_result;

/* The 128-byte payload of message n of publisher p in round r. */
void pc_payload(unsigned char *out, int r, int p, uint64_t n);

/* Checks a payload; fills r, p and n. */
bool pc_payload_parse(const void *data, size_t len, int *r, int *p,
                      uint64_t *n);

/* Verifies a round's queue after the cut, in the calling process (a fresh
 * child of the controller), and leaves the queue empty and working. */
pc_result pc_verify(const pc_round *round);

#endif
