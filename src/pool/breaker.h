/*
 * Circuit breaker over connection attempts (CLOSED / OPEN / HALF_OPEN).
 * Pure state machine: no locking, no clock of its own (callers pass `now`),
 * so the unit tests drive it with made-up times. The pool keeps one under
 * its lock.
 */
#ifndef AGEC_POOL_BREAKER_H
#define AGEC_POOL_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "agec/pool.h"

typedef struct agec__breaker {
    agec_breaker_state state;
    int threshold;     /* consecutive failures that open it; 0 = disabled */
    int64_t open_us;   /* how long it stays open */
    int failures;      /* consecutive failed attempts */
    int64_t opened_at; /* when it last opened */
    bool probing;      /* HALF_OPEN: the one probe attempt is under way */
    uint64_t opens;    /* transitions to OPEN */
} agec__breaker;

/* A state change to report (from == to means none). */
typedef struct agec__breaker_change {
    agec_breaker_state from, to;
} agec__breaker_change;

typedef enum agec__breaker_verdict {
    AGEC__BREAKER_ALLOW, /* connect normally */
    AGEC__BREAKER_PROBE, /* connect: this attempt is the half-open probe */
    AGEC__BREAKER_DENY,  /* do not connect: fail fast */
} agec__breaker_verdict;

void agec__breaker_init(agec__breaker *b, int threshold, int open_ms);

/* May a connection attempt start now? After the open period the first caller
 * gets PROBE (and the state becomes HALF_OPEN); others get DENY until the
 * probe ends. *ch receives the transition, if any. */
agec__breaker_verdict agec__breaker_allow(agec__breaker *b, int64_t now, agec__breaker_change *ch);

/* An attempt ended. `probe`: it was the attempt allowed with PROBE. */
void agec__breaker_success(agec__breaker *b, bool probe, agec__breaker_change *ch);
void agec__breaker_failure(agec__breaker *b, bool probe, int64_t now, agec__breaker_change *ch);

/* End the open period now: the next attempt is the half-open probe. No
 * change unless OPEN. */
void agec__breaker_probe_now(agec__breaker *b, int64_t now);

/* When an OPEN breaker lets a probe through (AGEC__NEVER-like max if not open). */
int64_t agec__breaker_reopen_at(const agec__breaker *b);

#endif
