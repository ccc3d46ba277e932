/*
 * Monotonic time in microseconds and deadline helpers. Every timeout in the
 * session and pool layers is an absolute deadline on CLOCK_MONOTONIC, so
 * retries inside one call share one budget and wall-clock jumps do not matter.
 */
#ifndef AGEC_SESSION_CLOCK_H
#define AGEC_SESSION_CLOCK_H

#include <stdint.h>
#include <time.h>

/* "No deadline". */
#define AGEC__NEVER INT64_MAX

static inline int64_t agec__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A cheaper, coarser monotonic clock (one kernel tick, 1-4 ms, behind at
 * most): for stamps compared with ms-scale thresholds (last use, lifetime,
 * leaks) on fast paths. Never for a deadline someone waits on. */
static inline int64_t agec__now_coarse_us(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* now + ms, saturating; ms < 0 gives AGEC__NEVER. */
static inline int64_t agec__deadline_after(int64_t now_us, int64_t ms)
{
    if (ms < 0 || ms > (AGEC__NEVER - now_us) / 1000)
        return AGEC__NEVER;
    return now_us + ms * 1000;
}

static inline int64_t agec__min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Milliseconds left until deadline for poll(): 0 when past, -1 for never,
 * rounded up so that poll does not wake just before the deadline. */
static inline int agec__poll_ms(int64_t deadline_us, int64_t now_us)
{
    if (deadline_us == AGEC__NEVER)
        return -1;
    if (deadline_us <= now_us)
        return 0;
    int64_t ms = (deadline_us - now_us + 999) / 1000;
    return ms > 1000000000 ? 1000000000 : (int)ms;
}

/* Absolute CLOCK_MONOTONIC timespec for pthread_cond_timedwait on a
 * condition variable created with pthread_condattr_setclock(MONOTONIC). */
static inline struct timespec agec__timespec_at(int64_t deadline_us)
{
    struct timespec ts;
    if (deadline_us == AGEC__NEVER)
        deadline_us = INT64_MAX / 2; /* far future, no overflow in tv_sec */
    ts.tv_sec = (time_t)(deadline_us / 1000000);
    ts.tv_nsec = (long)(deadline_us % 1000000) * 1000;
    return ts;
}

#endif
