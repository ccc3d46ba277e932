/*
 * The primary's WAL positions, each with the time it was first seen: how
 * far behind a standby is (the age of the oldest position it has not
 * replayed). Pure data, no locking (the cluster guards it with its mutex),
 * no libpq.
 */
#ifndef AGEC_CLUSTER_LSN_HISTORY_H
#define AGEC_CLUSTER_LSN_HISTORY_H

#include <stdint.h>

#include "agec/cluster.h"

/* Positions remembered: at one check of the primary per recheck_ms (500 ms
 * by default) about 2 minutes, and never less than 256 x 50 ms (the
 * monitor checks a node at most every AGEC__CLUSTER_FAST_MS). A standby
 * behind all of them gets its replay age (below), which has no such limit. */
#define AGEC__LSN_HISTORY 256

typedef struct agec__lsn_history {
    struct {
        int64_t t_us;
        agec_lsn lsn;
    } e[AGEC__LSN_HISTORY]; /* a ring, oldest at head - n */
    int n, head;
} agec__lsn_history;

/* Forget everything (the positions were another server's). */
void agec__lsn_history_reset(agec__lsn_history *h);

/* The primary is at lsn at time t_us: remembered if past the last one. */
void agec__lsn_history_add(agec__lsn_history *h, agec_lsn lsn, int64_t t_us);

/* Entries remembered. */
static inline int agec__lsn_history_len(const agec__lsn_history *h)
{
    return h->n;
}

/* Lag in ms of a standby that has replayed `lsn`, at now_us: the age of the
 * oldest remembered position past lsn, 0 if it has replayed them all. A
 * standby behind even the oldest position fell behind before the history
 * began (it was reset by a primary change or a failed check of the
 * primary, or it is full): its age is only a lower bound, so the standby's
 * own replay age (replay_age_ms, now minus its last replayed commit; < 0 if
 * unknown) is taken when it is larger. */
int64_t agec__lsn_history_lag_ms(const agec__lsn_history *h, agec_lsn lsn, int64_t replay_age_ms,
                                 int64_t now_us);

#endif
