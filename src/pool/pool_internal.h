/*
 * The pool's data structures, shared by the files of src/pool/.
 *
 * The pool is an explicit state machine (PgBouncer style): every connection
 * is in exactly one list at a time, and the gauges in the stats are the
 * lists' lengths, never separately maintained counters.
 *
 *   opening  --(connect + init ok)--> in_use (opened for an acquirer)
 *                                  \-> idle or straight to a waiter (maintenance)
 *   idle     --(acquire)-----------> in_use (validated there if it sat idle)
 *   in_use   --(validation cut short by the acquirer's deadline)--> checking
 *   checking --(maintenance finishes the check)--> idle (or closed)
 *   in_use   --(release, clean)----> idle, or straight to a starving head waiter,
 *                                     or back to the waiter it was taken from (give-back)
 *   any      --(close)-------------> closing (detached under the lock) --> gone
 *            (closed outside the lock; the slot frees once the backend has exited)
 *
 * Acquire, release and wait (the protocol that src/pool/pool.pml models and
 * spin checks): barging with bounded fairness. An idle connection goes to
 * whoever asks first, a newcomer included, so that a busy pool never lets a
 * connection sit idle while a woken thread is still being scheduled (the
 * cost of strict hand-off: a wake-up and a context switch per query). Once
 * the oldest waiter has waited fair_wait_ms it is "starving": releases hand
 * connections to it directly and newcomers queue behind it, so no waiter
 * waits more than fair_wait_ms longer than strict FIFO would make it wait
 * (fair_wait_ms = 0 is strict FIFO hand-off). A connection handed to a
 * starving waiter was taken from the thread that had it; when the phase is
 * over (the head no longer starving), its next release gives it back to
 * that thread if it waits, so the same threads run on the same connections
 * before and after (give-back). Waiters are woken one per
 * available resource (dispatch: idle connections + free slots, minus the
 * waiters already woken), and every waiter that leaves the queue dispatches
 * again, so a wake-up it did not use is passed on.
 *
 * Locking: one mutex (pool->mu) guards every field marked [mu]. No I/O is
 * ever done while holding it: connects, validation, cleanup, PQfinish and
 * event callbacks all run after unlocking. A connection in `in_use` or
 * `opening` belongs to one thread, which may touch its PGconn without the
 * lock. Events found under the lock are queued (copied into locals or a
 * batch) and emitted after it is dropped.
 *
 * The lock discipline is in the names: a function named *_locked is called
 * and returns with p->mu held and never drops it; *_relocks is called and
 * returns with it held but drops it inside (I/O, a wait, an event: anything
 * read from the pool before the call may have changed after it); *_unlocks
 * is called with it held and returns without it. Functions with none of
 * these take the lock themselves if they need it, and are called without it.
 */
#ifndef AGEC_POOL_POOL_INTERNAL_H
#define AGEC_POOL_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/pool.h"
#include "pool/breaker.h"
#include "pool/histogram.h"
#include "session/pgconn.h"

typedef enum conn_state {
    CONN_OPENING,
    CONN_IDLE,
    CONN_IN_USE,
    CONN_CHECKING,
    CONN_CLOSING
} conn_state;

struct agec_conn {
    agec_pool *pool;
    PGconn *pg;               /* NULL while opening */
    agec__cancel_key *cancel; /* made at connect; for agec_conn_cancel and close */
    uint64_t id;
    conn_state state;       /* [mu] which list it is in */
    agec_conn *prev, *next; /* [mu] links of that list */
    agec_conn *doom_next;   /* a batch being closed by one thread (maintenance, close) */
    int64_t created_us;
    int64_t expires_us;   /* created + lifetime - jitter; AGEC__NEVER if no lifetime */
    int64_t last_used_us; /* [mu] when it last went idle (validation, idle timeout) */
    int64_t acquired_us;  /* [mu] start of the current borrow (leak detection) */
    const char *file;     /* [mu] where the current borrow was acquired */
    int line;
    const char *func;
    bool leak_reported;             /* [mu] a leak event was sent for this borrow */
    bool broken;                    /* set by the borrower: close on release */
    agec_close_reason close_reason; /* set when detached by the maintenance thread */
    bool probe;                     /* opening: this attempt is the breaker's half-open probe */
    bool lent;                      /* [mu] this borrow came by a hand-off to a starving waiter: the
                  connection was taken from the thread that had it, and goes back
                  to that thread at the end of the starving phase (give-back) */
    int64_t check_deadline_us;      /* checking: the validation's own deadline */
    uint64_t borrow_id; /* [mu] unique per borrow in this pool (per-borrow state above) */
    int pooler;         /* what an upper layer found (agec__conn_set_pooler): 0 not known, 1 direct,
                   2 a transaction pooler in between; for the connection's life */
    _Atomic int64_t stmt_since_us; /* a statement runs since then (0: none or unknown);
                                      written by the borrower, read by exhaustion reports */
    int reap_fd;                   /* [mu] closing: our duplicate of the socket, watched by the
                           maintenance thread until the server process exits (-1: none) */
    int64_t reap_period;           /* closing: between cancel probes (connect_timeout_ms) */
    int64_t reap_until;            /* closing: next cancel probe (reap.c) */
    struct agec__cancel_job *reap_probe; /* closing: that probe, under way or done */
    bool reap_gone; /* closing: the maintenance thread found its slot free (reap.c) */
    void *ext;      /* upper layer's slot (conn_ext.h) */
    void (*ext_destroy)(void *ext);
};

/* A doubly linked list of connections with its length. */
typedef struct conn_list {
    agec_conn *head, *tail;
    int count;
} conn_list;

/* An acquire waiting for a connection. Lives on the waiting thread's stack;
 * each has its own condition variable so that a hand-off wakes exactly one
 * thread (no thundering herd). Queued in ticket (arrival) order. */
typedef struct waiter {
    uint64_t ticket;
    int64_t enq_us; /* [mu] when it first queued (fairness) */
    pthread_cond_t cond;
    bool cond_ready;     /* cond initialised (only when the thread first waits) */
    bool queued;         /* [mu] in pool->waiters */
    bool signalled;      /* [mu] woken by dispatch, not yet looked (counted in nsignalled) */
    agec_conn *handed;   /* [mu] a connection given to this waiter (now in_use) */
    agec_status fail;    /* [mu] set when the waiter must give up (pool closing) */
    int64_t retry_at;    /* own backoff after a failed connect; 0 = none */
    uintptr_t last_conn; /* the connection this thread released last to this pool
                            (an address, only compared): what a give-back returns */
    struct waiter *prev, *next;
} waiter;

/* The configuration as copied at open: owned strings, derived values. */
typedef struct pool_cfg {
    agec_pool_config c; /* string fields point to the copies below */
    char *conninfo, *init_sql, *reset_query, *application_name, *name;
    const char **keys; /* NULL-terminated, for PQconnectStartParams */
    const char **vals;
    char *redacted_conninfo;
    agec__session_init init;
    bool reset_drops_statements; /* reset_query holds DISCARD ALL or DEALLOCATE */
} pool_cfg;

/* Counters since open, all [mu]. */
typedef struct pool_counters {
    uint64_t opened, closed[AGEC_CLOSE_REASON_COUNT], acquires, releases, acquire_timeouts,
        acquire_errors, breaker_fast_fails, validations, validation_failures, connect_failures,
        leaks_suspected, leaks_returned, handoffs, givebacks, wakeups_deferred,
        wakeups_deferred_late;
} pool_counters;

struct agec_pool {
    pool_cfg cfg; /* read-only after open */
    pthread_mutex_t mu;

    /* The state lists. idle is LIFO: the head is the most recently used, so
     * a light load keeps reusing a few warm connections and the rest age out
     * at the tail (idle reaping takes from the tail). in_use holds borrowed
     * connections (leak scan, cancel at close). opening holds slots taken by
     * connection attempts in progress, so that max counts them. */
    conn_list idle;         /* [mu] */
    conn_list in_use;       /* [mu] */
    conn_list opening;      /* [mu] */
    conn_list checking;     /* [mu] validations the maintenance thread finishes: a
                           check that did not finish is not a failed check */
    conn_list closing_list; /* [mu] being closed: the slot stays taken until the
                           server process has exited (EOF after Terminate), so
                           pg_stat_activity never shows more than max */

    /* Acquires waiting, oldest first. Idle connections may coexist with
     * waiters for a moment (a woken waiter is on its way, or a newcomer
     * barges in first); dispatch keeps one waiter woken per available
     * resource. */
    waiter *wait_head, *wait_tail; /* [mu] */
    int waiting;                   /* [mu] length of that queue */
    int nsignalled;                /* [mu] queued waiters with signalled set */
    /* Wake on miss (agec__pool_make_available_locked): idle connections whose
     * waiter wake-up was deferred because the thread that released them is
     * expected back at once (it would barge in and take the connection
     * before the woken waiter ran: a futile wake-up and context switch).
     * dispatch counts them as taken; never more than idle.count. At
     * defer_tick_at the maintenance thread drops the deferral (the bound on
     * a misprediction) and dispatches. */
    int deferred_wakeups;     /* [mu] */
    uint64_t defer_gen;       /* [mu] bumped when the deferrals are ended (defer_end_locked) */
    int64_t defer_tick_at;    /* [mu] 0: the tick is not armed */
    bool deferred_since_tick; /* [mu] a deferral since the last tick: keep ticking */
    int64_t fair_wait_us;     /* fair_wait_ms, read-only after open */
    unsigned ablate;          /* AGEC__ABLATE_*: benchmark-only, read-only after open */
    int acquiring;            /* [mu] threads inside acquire (close waits for them) */
    uint64_t next_ticket;     /* [mu] */
    uint64_t next_conn_id;    /* [mu] */
    uint64_t next_borrow_id;  /* [mu] */

    agec__breaker breaker;         /* [mu] */
    atomic_int breaker_pub;        /* copy of breaker.state for events read without the lock */
    int64_t bg_retry_at;           /* [mu] maintenance backoff: no attempt before this */
    int bg_backoff_ms;             /* [mu] its current delay */
    bool last_connect_failed;      /* [mu] the latest attempt failed */
    agec_error last_connect_error; /* [mu] its error, for "unreachable" messages */

    pool_counters n;           /* [mu] */
    agec__histogram wait_hist; /* [mu] acquire wait times */
    agec__ahist create_hist;   /* time to open a connection (atomic) */
    agec__histogram use_hist;  /* [mu] acquire to release (plain: the release holds mu) */
    agec__ahist op_hist;       /* statements through the upper layer (atomic) */
    uint64_t rng;              /* [mu] xorshift state for jitter */
    uint64_t nonce;            /* random at open (getrandom): names this pool instance on
                                  the server (prepared statements), read-only after open */

    /* Lifetime: one reference for the owner (dropped by close), one per
     * thread inside acquire, one per borrowed connection. Whoever drops the
     * last one frees the pool, so a connection released after close still
     * finds its pool. */
    int refs;                  /* [mu] */
    atomic_int visitors;       /* threads between entering a stats call and dropping the lock:
                                  the last unref waits for them before freeing */
    atomic_bool shutting_down; /* set once by close (not a connection state: see closing_list);
                                  read without the lock on fast paths */
    pthread_cond_t state_cond; /* [mu] in_use, opening or acquiring shrank (close waits) */

    pthread_t maint_thread;
    bool maint_started;
    pthread_cond_t maint_cond; /* wakes the maintenance thread early */
    int64_t maint_wake_at;     /* [mu] when it plans to wake next */
    bool maint_busy;           /* [mu] it works outside the lock (I/O, events): no tick
                                  can fire until it is back, so nothing is deferred */
    int nreaping;              /* [mu] connections in closing_list with a reap_fd */
    int64_t reap_at;           /* [mu] next look at them */
    int64_t shutdown_deadline; /* [mu] close's drain deadline (reaping stops then) */
    int64_t next_idle_check;   /* [mu] next scan of idle sockets for dead servers */
};

/* Benchmark-only ablation (docs/pool-design.md, "Under contention"): the
 * environment variable AGEC_POOL_ABLATE, read once by agec_pool_open,
 * names contention mechanisms to switch off, comma-separated:
 * wake_on_miss, affinity, giveback (or "none"). Not public API: it exists
 * so that bench/ablation can measure what each one buys. An unknown name
 * fails the open (AGEC_ERR_CONFIG), so that a typo cannot measure the
 * wrong thing. */
#define AGEC__ABLATE_WAKE_ON_MISS 1u
#define AGEC__ABLATE_AFFINITY 2u
#define AGEC__ABLATE_GIVEBACK 4u
agec_status agec__ablate_parse(const char *spec, unsigned *out, agec_error *err);

/* --- lists (list.c) --- */
void agec__list_push_head(conn_list *l, agec_conn *c);
void agec__list_push_tail(conn_list *l, agec_conn *c);
void agec__list_remove(conn_list *l, agec_conn *c);
/* Remove c from its current state's list and push it on `to` (head). */
void agec__conn_move_locked(agec_pool *p, agec_conn *c, conn_state to);
conn_list *agec__state_list(agec_pool *p, conn_state s);

/* --- pool.c --- */
/* Total connections counting toward max. [mu] */
static inline int agec__pool_total(const agec_pool *p)
{
    return p->idle.count + p->in_use.count + p->opening.count + p->checking.count +
           p->closing_list.count;
}
/* Connections that are not on their way out (what `min` counts). [mu] */
static inline int agec__pool_live(const agec_pool *p)
{
    return agec__pool_total(p) - p->closing_list.count;
}

/* A connection just became available (from `opening`, `in_use` or
 * `checking`): hand it to a starving head waiter, or put it at the head of
 * idle and dispatch. [mu] */
void agec__pool_make_available_locked(agec_pool *p, agec_conn *c, int64_t now);
/* Wake waiters for what is available: one per idle connection or free
 * slot, minus those already woken, oldest first, skipping waiters in their
 * own reconnect backoff (they wake by their timer). A woken waiter takes an
 * idle connection, connects into a free slot (or fails fast on an open
 * breaker), or sleeps again. Called after any change that frees a slot or
 * adds an idle connection, and by every waiter that leaves the queue. [mu] */
void agec__pool_dispatch_locked(agec_pool *p, int64_t now);
/* Move a connection to `closing` to be closed for `reason` and count it.
 * The caller then calls agec__conn_destroy without the lock, which frees
 * the slot (and dispatches) once the server process is gone. [mu] */
void agec__pool_detach_locked(agec_pool *p, agec_conn *c, agec_close_reason reason);
/* A connection attempt for c (in `opening`) failed: free it and its slot,
 * or, if a server process may have started for it (c->reap_fd), keep the
 * slot in `closing` until that process is gone (reap.c). [mu] */
void agec__pool_open_failed_locked(agec_pool *p, agec_conn *c, int64_t now);
/* c's server process is gone: take it out of `closing` and pass its slot
 * on (dispatch, close's wait, `min`). [mu] */
void agec__pool_closed_locked(agec_pool *p, agec_conn *c);
/* Drop one reference; true if it was the last (the caller then unlocks and
 * calls agec__pool_free). [mu] */
bool agec__pool_unref_locked(agec_pool *p);
/* Free the pool once no stats call is still inside it. */
void agec__pool_free(agec_pool *p);
/* Take a reference for a call that does not hold one (stats, prometheus);
 * false when the pool is already gone to its last reference. Pair with
 * agec__pool_leave. No lock held before or after. */
bool agec__pool_enter(agec_pool *p);
/* Drop a reference (agec__pool_enter's, or a borrow's at the end of its
 * release) and free the pool if it was the last. No lock held before or
 * after (it takes p->mu itself). */
void agec__pool_leave(agec_pool *p);

/* Wait on cond (a CLOCK_MONOTONIC condition) until deadline_us (AGEC__NEVER:
 * no limit) or a signal; the caller re-checks its condition. */
void agec__pool_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_us);
/* Take w out of the waiter queue if it is in it. [mu] */
void agec__waiter_dequeue_locked(agec_pool *p, waiter *w);
/* Reserve an opening slot (a new conn in `opening`). NULL if out of memory. [mu] */
agec_conn *agec__pool_reserve_locked(agec_pool *p, int64_t now);
/* Connect and initialise a reserved connection by deadline_us; abort_flag
 * (may be NULL) stops it early. own_deadline_us is the attempt's own limit
 * (connect_timeout_ms): an attempt that an earlier deadline_us (the
 * caller's) cut short sends no AGEC_EV_CONNECT_FAILED, and *cut_short (may
 * be NULL) says so, so that the caller judges it the same way. No lock held. */
agec_status agec__pool_connect(agec_pool *p, agec_conn *c, int64_t deadline_us,
                               int64_t own_deadline_us, const atomic_bool *abort_flag,
                               bool *cut_short, agec_error *err);
/* Account for the end of a connect attempt: breaker, backoff, counters,
 * last error. `ev` receives a breaker transition to report, if any. [mu] */
void agec__pool_connect_done_locked(agec_pool *p, agec_conn *c, agec_status st,
                                    const agec_error *err, int64_t now, agec__breaker_change *ev);
/* Uniform random integer in [0, n). [mu] */
uint64_t agec__pool_rand(agec_pool *p, uint64_t n);
/* Delay with jitter for a backoff step: d/2 + random(d/2) ... d. [mu] */
int64_t agec__backoff_us(agec_pool *p, int delay_ms);

/* --- conn.c --- */
/* Close a detached connection: upper layer's slot, PQfinish, wait until the
 * server closes its end, i.e. its process has exited (until deadline_us, the
 * caller's own budget, and at most connect_timeout_ms; 0 = do not wait),
 * cancel handle, close event; then take it out of `closing` (its slot is
 * free: dispatch) and free it. No lock held. */
void agec__conn_destroy(agec_pool *p, agec_conn *c, agec_close_reason reason, int64_t deadline_us);

/* Destroy the upper layer's slot (after a reset_query). Owner thread only. */
void agec__conn_drop_ext(agec_conn *c);

/* --- events.c --- */
void agec__emit(agec_pool *p, agec_pool_event *ev);
void agec__emit_simple(agec_pool *p, agec_pool_event_type type, uint64_t conn_id,
                       agec_status status, const char *sqlstate, const char *message);
void agec__emit_breaker(agec_pool *p, const agec__breaker_change *ch);
/* Route pg's notices to c's pool as AGEC_EV_NOTICE events (c must outlive
 * pg's use). */
void agec__pool_watch_notices(agec_conn *c, PGconn *pg);

/* --- nonce.c --- */
/* 64 random bits from the kernel (getrandom, else /dev/urandom, else the
 * clock and an address mixed): the pool's nonce. */
uint64_t agec__pool_nonce_new(const void *salt);

/* --- maint.c --- */
/* How often the maintenance thread checks idle sockets for a server that went away. */
#define AGEC__IDLE_CHECK_US 1000000
/* Wake on miss: a waiter's wake-up is deferred at most this long. */
#define AGEC__DEFER_TICK_US 1000
/* A thread that acquires again within this long of a release with waiters
 * "returns at once": its next such release defers the wake-up. About a
 * kernel wake-up plus a time slice on a busy 2-core machine: a returner
 * this quick beats the woken waiter to the connection. */
#define AGEC__QUICK_RETURN_US 50
agec_status agec__maint_start(agec_pool *p, agec_error *err);
/* Wake the maintenance thread if it sleeps past `when`. [mu] */
void agec__maint_poke_locked(agec_pool *p, int64_t when);
/* The deferral tick (maint.c calls it): drop deferrals due by now and
 * dispatch; returns when to look next (AGEC__NEVER: nothing pending). [mu] */
int64_t agec__pool_defer_tick_locked(agec_pool *p, int64_t now);
/* The maintenance thread is about to work outside the lock: end every
 * deferral now (their tick could not fire) and defer none until it is
 * back (p->maint_busy, cleared by the caller). [mu] */
void agec__pool_defer_suspend_locked(agec_pool *p, int64_t now);

/* --- reap.c: closed connections whose server process has not exited yet.
 * The slot of a closed connection stays taken until its server process is
 * gone (so pg_stat_activity never shows more than max), but no caller waits
 * past its own deadline for that: what a caller could not wait for, the
 * maintenance thread watches, outside the lock (every AGEC__REAP_POLL_US,
 * every AGEC__REAP_SLOW_POLL_US once connect_timeout_ms has passed, when it
 * sends a cancel request as a probe). The watch ends when the server closes
 * the socket, when a probe is not answered within connect_timeout_ms (the
 * host does not answer: reap_may_free), when the kernel gives up on a host
 * that stopped acknowledging (TCP_USER_TIMEOUT, AGEC__REAP_TCP_GIVEUP_MS),
 * or at close's deadline. --- */
#define AGEC__REAP_POLL_US 5000
#define AGEC__REAP_SLOW_POLL_US 100000
#define AGEC__REAP_TCP_GIVEUP_MS(connect_ms) \
    ((unsigned int)((connect_ms) > 1000 ? 10 * (connect_ms) : 10000))
/* Wait until the peer closes fd (EOF or an error; true) or deadline_us
 * (false). Reads what arrives meanwhile; past the deadline a few chunks at
 * most, so a backend still streaming cannot hold the caller. */
bool agec__reap_wait(int fd, int64_t deadline_us);
/* Hand c (in closing_list, PQfinish done; c->cancel kept for one more
 * cancel) and fd to the maintenance thread, which frees c and its slot
 * when its server process is gone. If the pool is closing, close's final
 * pass does it. [mu] */
void agec__reap_start_locked(agec_pool *p, agec_conn *c, int fd, int64_t until);
/* The watched connections to look at now, linked through doom_next (NULL:
 * none, *next says when). [mu] */
agec_conn *agec__reap_due_locked(agec_pool *p, int64_t now, int64_t *next);
/* Look at them (maintenance thread, no lock). */
void agec__reap_check(agec_conn *batch);
/* Free those whose server process is gone; plan the next look. [mu] */
void agec__reap_settle_locked(agec_pool *p, agec_conn *batch, int64_t now);
/* At close (maintenance thread, closing set): wait for the rest until
 * their own limit or close's drain deadline, then free them all. Called
 * and returns with the lock held, dropped for the wait. */
void agec__reap_finish_relocks(agec_pool *p);
void agec__maint_join(agec_pool *p);

/* --- config.c --- */
agec_status agec__config_copy(pool_cfg *dst, const agec_pool_config *src, agec_error *err);
void agec__config_free(pool_cfg *cfg);

/* --- stats.c --- */
void agec__stats_fill_locked(agec_pool *p, agec_pool_stats *out, int64_t now); /* [mu] */

#endif
