/*
 * The power-cut test's verifier: opens a round's queue after the cut, in a
 * new process, and holds it to the promises of its durability:
 *
 *   sync        every acknowledged send is there for every subscriber that
 *               had not consumed it;
 *   nometasync  only a suffix of the last acknowledged sends may be missing;
 *   nosync      a prefix of the acknowledged sends, or the library says at
 *               open that the contents were lost (then pps_ctl_init must
 *               recreate the queue);
 * and in every mode: the queue opens (unless nosync reported the loss, or a
 * fresh queue's pps_ctl_init had not returned yet) and pps_ctl_check finds
 * no problem; nothing that was never sent appears; ids increase and each
 * publisher's numbers increase; the consuming subscriber's pending messages
 * are exactly the idle subscriber's from some id on, and everything before
 * that was recorded as consumed; and sending and receiving go on.
 *
 * "Suffix" is judged from the publishers' shared log: a message whose
 * attempt was logged after another's acknowledgment was committed after
 * it, so it must not survive when the other is lost.
 */
#include "powercut.h"

#include "persipubsub/persipubsub.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX
#define AFTER_N (UINT64_C(1) << 40) /* the numbers sent by the verifier */

typedef struct msg {
    uint64_t id;
    int r, p;
    uint64_t n;
} msg;

typedef struct msg_list {
    msg *m;
    size_t n, cap;
    size_t garbage;
} msg_list;

/* What the logs say of one publisher, indexed by its message number. */
typedef struct pub_log {
    size_t *attempt; /* log line of the attempt, NONE */
    size_t *ack;     /* log line of the acknowledgment, NONE */
    unsigned char *consumed;
    unsigned char *present;
    uint64_t max;    /* highest number attempted */
    uint64_t cap;
} pub_log;

typedef struct verify {
    const pc_round *round;
    pc_result res;
    pub_log pubs[PC_MAX_PUBS];
    bool init_acked;
    size_t problems; /* printed by on_problem() */
} verify;

void
pc_payload(unsigned char *out, int r, int p, uint64_t n)
{
    int h = snprintf((char *)out, PC_MSG_LEN, "powercut r%d p%d n%" PRIu64 " ",
                     r, p, n);
    for (int i = h; i < PC_MSG_LEN; i++) {
        out[i] = (unsigned char)((uint64_t)r * 31 + (uint64_t)p * 7 + n * 13 +
                                 (uint64_t)i * 3) ^ (unsigned char)i;
    }
}

bool
pc_payload_parse(const void *data, size_t len, int *r, int *p, uint64_t *n)
{
    char head[PC_MSG_LEN + 1];
    unsigned char want[PC_MSG_LEN];
    if (len != PC_MSG_LEN) {
        return false;
    }
    memcpy(head, data, PC_MSG_LEN);
    head[PC_MSG_LEN] = '\0';
    if (sscanf(head, "powercut r%d p%d n%" SCNu64, r, p, n) != 3 || *p < 0 ||
        *p >= PC_MAX_PUBS) {
        return false;
    }
    pc_payload(want, *r, *p, *n);
    return memcmp(want, data, PC_MSG_LEN) == 0;
}

static void
violation(verify *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "powercut: round %d (%s, %s): VIOLATION: ", v->round->number,
            v->round->durability, v->round->fresh ? "fresh" : "long-lived");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    v->res.violations++;
    v->res.outcome = PC_VIOLATION;
}

static void
pub_grow(pub_log *pl, uint64_t n)
{
    if (n < pl->cap) {
        return;
    }
    uint64_t cap = pl->cap ? pl->cap : 1024;
    while (cap <= n) {
        cap *= 2;
    }
    pl->attempt = realloc(pl->attempt, cap * sizeof(size_t));
    pl->ack = realloc(pl->ack, cap * sizeof(size_t));
    pl->consumed = realloc(pl->consumed, cap);
    pl->present = realloc(pl->present, cap);
    if (!pl->attempt || !pl->ack || !pl->consumed || !pl->present) {
        fprintf(stderr, "powercut: out of memory\n");
        exit(1);
    }
    for (uint64_t i = pl->cap; i < cap; i++) {
        pl->attempt[i] = NONE;
        pl->ack[i] = NONE;
        pl->consumed[i] = 0;
        pl->present[i] = 0;
    }
    pl->cap = cap;
}

static void
read_logs(verify *v)
{
    char line[256];
    size_t no = 0;
    FILE *f = fopen(v->round->pub_log, "r");
    for (; f != NULL && fgets(line, sizeof(line), f) != NULL; no++) {
        char kind;
        int p;
        uint64_t n;
        if (sscanf(line, "%c %d %" SCNu64, &kind, &p, &n) != 3 || p < 0 ||
            p >= PC_MAX_PUBS || n >= AFTER_N || strchr(line, '\n') == NULL) {
            continue; /* the torn last line of a killed publisher */
        }
        pub_log *pl = &v->pubs[p];
        pub_grow(pl, n);
        if (kind == 'a') {
            pl->attempt[n] = no;
            pl->max = n > pl->max ? n : pl->max;
        } else if (kind == 'k') {
            pl->ack[n] = no;
            v->res.acked++;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    f = fopen(v->round->con_log, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        uint64_t id, n;
        int r, p;
        if (sscanf(line, "c %" SCNu64 " %d %d %" SCNu64, &id, &r, &p, &n) ==
                4 && r == v->round->number && p >= 0 && p < PC_MAX_PUBS &&
            n < AFTER_N) {
            pub_grow(&v->pubs[p], n);
            v->pubs[p].consumed[n] = 1;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    v->init_acked = !v->round->fresh;
    f = fopen(v->round->init_log, "r");
    if (f != NULL) {
        v->init_acked = fgetc(f) == 'i';
        fclose(f);
    }
}

static int
collect(const pps_message *m, void *user)
{
    msg_list *l = user;
    msg x = {.id = m->id, .r = -1, .p = -1, .n = 0};
    if (!pc_payload_parse(m->data, m->len, &x.r, &x.p, &x.n)) {
        l->garbage++;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->m = realloc(l->m, l->cap * sizeof(*l->m));
        if (l->m == NULL) {
            fprintf(stderr, "powercut: out of memory\n");
            exit(1);
        }
    }
    l->m[l->n++] = x;
    return 0;
}

/* Receives everything pending for sub id; false after a failure. */
static bool
drain(verify *v, const pps_config *cfg, const char *id, msg_list *out)
{
    pps_sub *sub;
    int rc = pps_sub_open(&sub, cfg, id);
    if (rc != PPS_OK) {
        violation(v, "pps_sub_open(%s): %s: %s", id, pps_status_name(rc),
                  pps_last_error());
        return false;
    }
    while ((rc = pps_sub_receive_batch(sub, 512, 0, collect, out)) > 0) {
    }
    pps_sub_close(sub);
    if (rc != PPS_ETIMEDOUT) {
        violation(v, "receiving as %s: %s: %s", id, pps_status_name(rc),
                  pps_last_error());
        return false;
    }
    if (out->garbage > 0) {
        violation(v, "%s received %zu messages that were never sent (bad "
                     "payload)", id, out->garbage);
    }
    return true;
}

/* Ids, rounds and numbers in order; this round's messages were attempted. */
static void
check_order(verify *v, const msg_list *l, const char *who)
{
    uint64_t last_n[PC_MAX_PUBS] = {0};
    int r = v->round->number;
    for (size_t i = 0; i < l->n; i++) {
        const msg *m = &l->m[i];
        if (i > 0 && m->id <= l->m[i - 1].id) {
            violation(v, "%s: id %" PRIu64 " after id %" PRIu64, who, m->id,
                      l->m[i - 1].id);
        }
        if (m->p < 0) {
            continue;
        }
        if (m->r != r) {
            /* Consumed before (by an earlier verifier): a consumption need
             * not be durable. Never in a queue made this round, never
             * after this round's messages. */
            if (m->r > r || v->round->fresh || last_n[0] || last_n[1]) {
                violation(v, "%s: message r%d p%d n%" PRIu64 " of another "
                             "round", who, m->r, m->p, m->n);
            }
            continue;
        }
        if (m->n <= last_n[m->p]) {
            violation(v, "%s: p%d n%" PRIu64 " after n%" PRIu64, who, m->p,
                      m->n, last_n[m->p]);
        }
        last_n[m->p] = m->n;
        const pub_log *pl = &v->pubs[m->p];
        if (m->n >= pl->cap || pl->attempt[m->n] == NONE) {
            violation(v, "%s: p%d n%" PRIu64 " was never sent", who, m->p,
                      m->n);
        }
    }
}

/* Against the idle subscriber, which holds every message of the round. */
static void
check_idle(verify *v, const msg_list *idle)
{
    int r = v->round->number;
    for (size_t i = 0; i < idle->n; i++) {
        const msg *m = &idle->m[i];
        if (m->r == r && m->p >= 0 && m->n < v->pubs[m->p].cap) {
            v->pubs[m->p].present[m->n] = 1;
        }
    }
    size_t first_lost = NONE;
    uint64_t lost = 0;
    for (int p = 0; p < PC_MAX_PUBS; p++) {
        const pub_log *pl = &v->pubs[p];
        for (uint64_t n = 1; n <= pl->max; n++) {
            if (pl->ack[n] != NONE && !pl->present[n]) {
                lost++;
                first_lost = pl->ack[n] < first_lost ? pl->ack[n] : first_lost;
            }
        }
    }
    v->res.lost += lost;
    if (lost > 0 && strcmp(v->round->durability, "sync") == 0) {
        violation(v, "%" PRIu64 " acknowledged messages lost", lost);
    }
    for (int p = 0; p < PC_MAX_PUBS && first_lost != NONE; p++) {
        const pub_log *pl = &v->pubs[p];
        for (uint64_t n = 1; n <= pl->max; n++) {
            if (pl->present[n] && pl->attempt[n] > first_lost) {
                violation(v, "p%d n%" PRIu64 " survived, but an earlier "
                             "acknowledged message was lost (not a suffix)",
                          p, n);
                break;
            }
        }
    }
}

/* Forgets the messages an earlier round's verifier sent and consumed for
 * both subscribers (check_goes_on()): a consumption need not survive an
 * OS crash, and the two subscribers' consumptions are separate commits, so
 * a later cut may bring them back for one subscriber and not the other.
 * Their order was checked with the rest. */
static void
drop_earlier_checks(msg_list *l, int round)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->m[i].n < AFTER_N || l->m[i].r == round) {
            l->m[kept++] = l->m[i];
        }
    }
    l->n = kept;
}

/* The consumer's pending messages are the idle subscriber's from some id
 * on; the ones before it were consumed (or are of earlier rounds). */
static void
check_consumer(verify *v, const msg_list *idle, const msg_list *con)
{
    size_t from = idle->n;
    if (con->n > 0) {
        for (from = 0; from < idle->n && idle->m[from].id < con->m[0].id;
             from++) {
        }
    }
    if (idle->n - from != con->n) {
        size_t i = 0;
        while (i < con->n && from + i < idle->n &&
               con->m[i].id == idle->m[from + i].id) {
            i++;
        }
        const msg *c = i < con->n ? &con->m[i] : NULL;
        violation(v, "the consumer pends on %zu messages, the idle subscriber "
                     "on %zu from the same id on; first difference: the "
                     "consumer's id %" PRIu64 " (r%d p%d n%" PRIu64 ")",
                  con->n, idle->n - from, c ? c->id : 0, c ? c->r : -1,
                  c ? c->p : -1, c ? c->n : 0);
    } else {
        for (size_t i = 0; i < con->n; i++) {
            if (con->m[i].id != idle->m[from + i].id) {
                violation(v, "the consumer's pending id %" PRIu64 " differs "
                             "from the idle subscriber's %" PRIu64,
                          con->m[i].id, idle->m[from + i].id);
                break;
            }
        }
    }
    for (size_t i = 0; i < from; i++) {
        const msg *m = &idle->m[i];
        if (m->r == v->round->number && m->p >= 0 &&
            (m->n >= v->pubs[m->p].cap || !v->pubs[m->p].consumed[m->n])) {
            violation(v, "the consumer lost p%d n%" PRIu64 ", which it had "
                         "never consumed", m->p, m->n);
            break;
        }
    }
}

/* Sending and receiving go on: three messages reach both subscribers. */
static void
check_goes_on(verify *v, const pps_config *cfg)
{
    pps_pub *pub;
    int rc = pps_pub_open(&pub, cfg, "p1");
    for (uint64_t k = 0; rc == PPS_OK && k < 3; k++) {
        unsigned char buf[PC_MSG_LEN];
        pc_payload(buf, v->round->number, 1, AFTER_N + k);
        rc = pps_pub_send(pub, buf, sizeof(buf));
    }
    pps_pub_close(pub);
    if (rc != PPS_OK) {
        violation(v, "sending after the cut: %s: %s", pps_status_name(rc),
                  pps_last_error());
        return;
    }
    const char *subs[] = {"idle", "consumer"};
    for (int s = 0; s < 2; s++) {
        msg_list l = {0};
        if (drain(v, cfg, subs[s], &l) &&
            (l.n != 3 || l.m[0].n != AFTER_N || l.m[2].n != AFTER_N + 2)) {
            violation(v, "%s received %zu messages after the cut, not the 3 "
                         "sent", subs[s], l.n);
        }
        free(l.m);
    }
}

static void
on_problem(const char *path, const char *problem, int repaired, void *user)
{
    (void)repaired;
    verify *v = user;
    if (v->problems++ < 5) {
        fprintf(stderr, "powercut: round %d: %s: %s\n", v->round->number,
                path, problem);
    } else if (v->problems == 6) {
        fprintf(stderr, "powercut: round %d: (more problems)\n",
                v->round->number);
    }
}

/* pps_ctl_check(): 0 clean, 1 problems, -1 did not open (status in *st). */
static int
check_queue(verify *v, const pps_config *cfg, int *st)
{
    size_t problems = 0;
    *st = pps_ctl_check(cfg, NULL, 0, on_problem, v, &problems);
    if (*st != PPS_OK && *st != PPS_ECORRUPT) {
        return -1;
    }
    return problems > 0 || *st != PPS_OK ? 1 : 0;
}

static void
verify_queue(verify *v, const pps_config *cfg)
{
    const pc_round *round = v->round;
    bool nosync = strcmp(round->durability, "nosync") == 0;
    int st;
    int c = check_queue(v, cfg, &st);
    if (c < 0) {
        if (nosync && v->init_acked) {
            v->res.outcome = PC_LOST_DETECTED;
            v->res.lost += v->res.acked;
            printf("powercut: round %d (nosync): the library reports the "
                   "loss: %s: %s\n", round->number, pps_status_name(st),
                   pps_last_error());
        } else if (v->init_acked) {
            v->res.unusable = 1;
            violation(v, "the queue does not open: %s: %s",
                      pps_status_name(st), pps_last_error());
        }
        int rc = pps_ctl_init(cfg);
        if (rc != PPS_OK) {
            v->res.recreate = 1;
            violation(v, "pps_ctl_init cannot recreate it: %s: %s",
                      pps_status_name(rc), pps_last_error());
            return;
        }
    } else if (c > 0) {
        v->res.unusable = 1;
        v->res.recreate = 1;
        violation(v, "pps_ctl_check finds problems%s (%s)",
                  nosync ? ": a damaged queue served as whole" : "",
                  pps_status_name(st));
        return;
    } else {
        msg_list idle = {0}, con = {0};
        if (drain(v, cfg, "idle", &idle) && drain(v, cfg, "consumer", &con)) {
            check_order(v, &idle, "idle");
            check_order(v, &con, "consumer");
            drop_earlier_checks(&idle, v->round->number);
            drop_earlier_checks(&con, v->round->number);
            check_idle(v, &idle);
            check_consumer(v, &idle, &con);
        }
        free(idle.m);
        free(con.m);
    }
    check_goes_on(v, cfg);
    if (check_queue(v, cfg, &st) != 0) {
        v->res.recreate = 1;
        violation(v, "pps_ctl_check after sending on: %s: %s",
                  pps_status_name(st), pps_last_error());
    }
}

pc_result
pc_verify(const pc_round *round)
{
    verify v = {.round = round};
    v.res.outcome = PC_INTACT;
    read_logs(&v);
    pps_config *cfg;
    int rc = pps_config_load(&cfg, round->config);
    if (rc != PPS_OK) {
        violation(&v, "config: %s", pps_last_error());
        v.res.recreate = 1;
    } else {
        verify_queue(&v, cfg);
        pps_config_free(cfg);
    }
    for (int p = 0; p < PC_MAX_PUBS; p++) {
        free(v.pubs[p].attempt);
        free(v.pubs[p].ack);
        free(v.pubs[p].consumed);
        free(v.pubs[p].present);
    }
    return v.res;
}
