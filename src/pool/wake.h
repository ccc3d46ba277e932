/*
 * The acquire fast path's helpers shared by pool.c and acquire.c, inline so
 * that splitting the files costs the uncontended acquire + release nothing:
 * the thread's note of its last release (wake on miss, thread affinity),
 * the idle pick, taking a reference, the starving head.
 */
#ifndef AGEC_POOL_WAKE_H
#define AGEC_POOL_WAKE_H

#include "pool/pool_internal.h"
#include "session/clock.h"

/* pool and conn are addresses, only ever compared: either may have been
 * freed since. */
typedef struct release_note {
    uintptr_t pool;     /* the pool of the thread's last release */
    uintptr_t conn;     /* the connection it released */
    int64_t at_us;      /* when, if there were waiters (precise clock) */
    unsigned quick;     /* quick returns in a row to that pool, saturating at 3 */
    bool pending;       /* released, not yet back */
    bool wake_deferred; /* and that release deferred a wake-up */
    uint64_t defer_gen; /* p->defer_gen then: the deferral is still counted while equal */
} release_note;

extern _Thread_local release_note agec__t_release;

/* Called at the start of an acquire, without the lock: was this thread
 * back from a deferring release of p? */
static inline bool agec__release_note_return(const agec_pool *p)
{
    release_note *t = &agec__t_release;
    if (!t->pending || t->pool != (uintptr_t)p)
        return false;
    t->pending = false;
    if (agec__now_us() - t->at_us <= AGEC__QUICK_RETURN_US)
        t->quick += t->quick < 3;
    else
        t->quick = 0;
    bool was = t->wake_deferred;
    t->wake_deferred = false;
    return was;
}

/* The idle connection an acquire takes: the one this thread released last
 * if it is near the head of the idle list, else the head (the most recently
 * used). A thread that keeps its connection keeps its server process: the
 * pairs of client thread and server process stay the same, as with
 * dedicated connections, and the kernel keeps each pair's wake-ups on one
 * CPU (a shared LIFO list instead shuffles the pairs on every release: 15%
 * fewer queries/s at 4 threads on a pool of 4, bench_contention). [mu] */
static inline agec_conn *agec__idle_pick(const agec_pool *p)
{
    agec_conn *c = p->idle.head;
    const release_note *t = &agec__t_release;
    if (t->pool != (uintptr_t)p || (uintptr_t)c == t->conn || (p->ablate & AGEC__ABLATE_AFFINITY))
        return c;
    int k = 0;
    for (agec_conn *x = c->next; x != NULL && k < 3; x = x->next, k++)
        if ((uintptr_t)x == t->conn)
            return x;
    return c;
}

/* Take a reference if the pool is alive; returns with p->mu held if so.
 * `visitors` keeps close from freeing p while we wait for the lock. */
static inline bool agec__pool_enter_locked(agec_pool *p)
{
    atomic_fetch_add_explicit(&p->visitors, 1, memory_order_acq_rel);
    pthread_mutex_lock(&p->mu);
    bool alive = p->refs > 0;
    if (alive)
        p->refs++;
    else
        pthread_mutex_unlock(&p->mu); /* called as close finished: being freed */
    atomic_fetch_sub_explicit(&p->visitors, 1, memory_order_acq_rel);
    return alive;
}

/* The oldest waiter has waited fair_wait_ms: it is served before anyone
 * else (direct hand-off, no barging). Always so with fair_wait_ms = 0. */
static inline bool agec__head_starving(const agec_pool *p, int64_t now)
{
    const waiter *h = p->wait_head;
    return h != NULL && (p->fair_wait_us == 0 || now - h->enq_us >= p->fair_wait_us);
}

/* Connections that may still become available: borrowed, being checked,
 * being opened. [mu] */
static inline int agec__pool_may_come_back(const agec_pool *p)
{
    return p->in_use.count + p->checking.count + p->opening.count;
}

/* --- pool.c, used by acquire.c --- */
/* The waiter has looked (or left): its wake-up is used up. [mu] */
void agec__waiter_unsignal_locked(agec_pool *p, waiter *w);
/* Queue w by ticket (usually at the tail). [mu] */
void agec__waiter_enqueue_locked(agec_pool *p, waiter *w);
/* A condition variable on CLOCK_MONOTONIC. */
void agec__cond_init_monotonic(pthread_cond_t *cond);
/* The next delay of a doubling backoff, capped at reconnect_backoff_max_ms. */
int agec__backoff_next(const agec_pool *p, int delay_ms);

#endif
