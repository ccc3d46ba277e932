/* Acquire: a borrowed connection from an idle one, a new one, or a wait in
 * the queue (pool.c has the state transitions it uses, release.c the way
 * back). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
#include "pool/wake.h"
#include "session/clock.h"

/* ---- acquire -------------------------------------------------------------- */

/* The longest holders of an exhausted pool, longest first: where each
 * borrow was acquired, how long it is held, whether a statement runs and
 * since when. Only on the timeout path: the fast path pays nothing. [mu] */
#define HOLDERS_NAMED 3
static void describe_holders_locked(agec_pool *p, int64_t now, char *buf, size_t cap)
{
    const agec_conn *top[HOLDERS_NAMED];
    int n = 0;
    for (const agec_conn *c = p->in_use.head; c != NULL; c = c->next) {
        if (c->file == NULL)
            continue; /* handed to a waiter that has not recorded its borrow yet */
        int i = n < HOLDERS_NAMED ? n++ : HOLDERS_NAMED;
        if (i == HOLDERS_NAMED && c->acquired_us >= top[HOLDERS_NAMED - 1]->acquired_us)
            continue;
        if (i == HOLDERS_NAMED)
            i = HOLDERS_NAMED - 1;
        while (i > 0 && top[i - 1]->acquired_us > c->acquired_us) {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = c;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < cap; i++) {
        const agec_conn *c = top[i];
        int64_t since = atomic_load_explicit(&c->stmt_since_us, memory_order_relaxed);
        char stmt[64] = "";
        if (since > 0)
            snprintf(stmt, sizeof stmt, ", statement running for %lld ms",
                     (long long)((now - since) / 1000));
        int w = snprintf(buf + len, cap - len, "%sconn %llu acquired at %s:%d (%s), held %lld ms%s",
                         i == 0 ? "longest holders: " : "; ", (unsigned long long)c->id, c->file,
                         c->line, c->func ? c->func : "?",
                         (long long)((now - c->acquired_us) / 1000), stmt);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* Timeout: say whether the pool was exhausted or the database unreachable. */
static agec_status timeout_error_locked(agec_pool *p, agec_error *err, int64_t waited_us,
                                        bool tried_connect, bool cut_short, const agec_error *cerr)
{
    long ms = (long)(waited_us / 1000);
    /* Only cut-short attempts of our own, and no failure known to the pool
     * (else that failure is the news: the database is unreachable). */
    if (tried_connect && cut_short && !p->last_connect_failed)
        return agec__error_set(
            err, AGEC_ERR_UNREACHABLE,
            "no connection after %ld ms: database unreachable within this acquire's "
            "deadline (%s): a new connection was still being opened (it may "
            "take up to connect_timeout_ms %d; not counted as a connection "
            "failure)",
            ms, p->cfg.redacted_conninfo, p->cfg.c.connect_timeout_ms);
    bool unreachable =
        tried_connect || (p->last_connect_failed && agec__pool_total(p) < p->cfg.c.max);
    if (unreachable) {
        const agec_error *last = tried_connect && !cut_short ? cerr : &p->last_connect_error;
        agec__error_set(err, AGEC_ERR_UNREACHABLE,
                        "no connection after %ld ms: database unreachable (%s)%s; last connection "
                        "error: %s%s%s%s",
                        ms, p->cfg.redacted_conninfo,
                        p->breaker.state == AGEC_BREAKER_OPEN ? ", circuit breaker opened" : "",
                        last->message, last->sqlstate[0] ? " [" : "", last->sqlstate,
                        last->sqlstate[0] ? "]" : "");
        if (err != NULL)
            memcpy(err->sqlstate, last->sqlstate, sizeof err->sqlstate);
        return AGEC_ERR_UNREACHABLE;
    }
    agec__error_set(err, AGEC_ERR_POOL_EXHAUSTED,
                    "no connection within %ld ms: pool exhausted (total=%d in_use=%d idle=%d "
                    "opening=%d checking=%d closing=%d waiting=%d max=%d)",
                    ms, agec__pool_total(p), p->in_use.count, p->idle.count, p->opening.count,
                    p->checking.count, p->closing_list.count, p->waiting, p->cfg.c.max);
    if (err != NULL)
        describe_holders_locked(p, agec__now_us(), err->detail, sizeof err->detail);
    return AGEC_ERR_POOL_EXHAUSTED;
}

static agec_status breaker_error_locked(agec_pool *p, agec_error *err, int64_t now)
{
    int64_t at = agec__breaker_reopen_at(&p->breaker);
    long left = at == AGEC__NEVER || at <= now ? 0 : (long)((at - now) / 1000);
    agec__error_set(err, AGEC_ERR_BREAKER_OPEN,
                    "circuit breaker %s after %d consecutive connection failures: not connecting "
                    "(next probe in %ld ms); last connection error: %s%s%s%s",
                    agec_breaker_state_name(p->breaker.state), p->breaker.failures, left,
                    p->last_connect_error.message, p->last_connect_error.sqlstate[0] ? " [" : "",
                    p->last_connect_error.sqlstate, p->last_connect_error.sqlstate[0] ? "]" : "");
    if (err != NULL)
        memcpy(err->sqlstate, p->last_connect_error.sqlstate, sizeof err->sqlstate);
    return AGEC_ERR_BREAKER_OPEN;
}

/* Outcome of one step of an acquire that runs I/O outside the lock. */
typedef struct acq {
    agec_pool *p;
    waiter w;
    int64_t start, deadline, now;
    int backoff_ms;
    int timeout_ms;
    bool precise; /* start/now/deadline are on the precise clock */
    bool tried_connect;
    bool cut_short;  /* the latest attempt was cut short by this acquire's deadline */
    agec_error cerr; /* last connect error of this acquire (valid if tried_connect) */
    agec_error *e;   /* the caller's error (or a local one) */
    agec_status st;  /* the failure, once a step failed */
    bool timed_out;  /* that failure is a timeout */
    agec_conn *c;    /* the connection, once a step got one (in_use, ours) */
} acq;

/* What one step of an acquire leads to. Every step is called with the lock
 * held and returns with it held; the ones named *_relocks drop it inside
 * (I/O, a condition wait) and the ones named *_unlocks return without it. */
typedef enum acq_step {
    STEP_GOT,   /* a->c is ours */
    STEP_AGAIN, /* look again (woken, retry, a connection closed) */
    STEP_FAIL,  /* a->st says why */
} acq_step;

/* The fast path (an idle connection that needs no check) runs on the
 * coarse clock; before anything that waits, connects, validates or decides
 * a timeout, the acquire switches to the precise clock and its deadline is
 * computed from there (the coarse part before took well under a tick). */
static void acq_precise(acq *a)
{
    if (a->precise)
        return;
    a->precise = true;
    a->start = a->now = agec__now_us();
    a->deadline = agec__deadline_after(a->start, a->timeout_ms);
}

/* The limit for I/O this acquire does itself (a connect, a validation)
 * besides that I/O's own timeout: the acquire's deadline, except for an
 * acquire that must not wait (timeout 0), which waits for no other caller
 * but still connects or validates with the pool's full timeouts. */
static int64_t acq_io_deadline(const acq *a)
{
    return a->timeout_ms == 0 ? AGEC__NEVER : a->deadline;
}

/* Open the reserved connection c for this acquire. Called and returns with
 * the lock held. On success c is in in_use; else c is freed. */
static agec_status acq_open_relocks(acq *a, agec_conn *c, agec__breaker_change *pending,
                                    agec_error *err)
{
    agec_pool *p = a->p;
    pthread_mutex_unlock(&p->mu);
    agec__emit_breaker(p, pending);
    int64_t own = agec__deadline_after(a->now, p->cfg.c.connect_timeout_ms);
    int64_t cdl = agec__min64(acq_io_deadline(a), own);
    agec_error attempt = AGEC_ERROR_INIT;
    bool cut_short;
    agec_status st = agec__pool_connect(p, c, cdl, own, &p->shutting_down, &cut_short, &attempt);
    a->now = agec__now_us();
    if (cut_short) {
        /* Cut short by this caller's deadline, not by the server: says
         * nothing about the database, so it does not count toward the
         * breaker (a caller with a deadline shorter than a connect must not
         * open it on a healthy server). An earlier attempt of this acquire
         * that did fail stays the error to report. */
        st = AGEC_ERR_CANCELLED;
        if (!a->tried_connect || a->cut_short) {
            a->cut_short = true;
            agec__error_set(&a->cerr, AGEC_ERR_UNREACHABLE,
                            "the acquire's deadline passed while a new connection was being "
                            "opened (connect_timeout_ms %d)",
                            p->cfg.c.connect_timeout_ms);
        }
    } else {
        a->cut_short = false;
        a->cerr = attempt;
    }
    agec__breaker_change ch;
    pthread_mutex_lock(&p->mu);
    agec__pool_connect_done_locked(p, c, st, &a->cerr, a->now, &ch);
    if (st == AGEC_ERR_CANCELLED)
        st = AGEC_ERR_UNREACHABLE;
    if (ch.from != ch.to) {
        pthread_mutex_unlock(&p->mu);
        agec__emit_breaker(p, &ch);
        pthread_mutex_lock(&p->mu);
    }
    if (st == AGEC_OK) {
        if (atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
            agec__pool_detach_locked(p, c, AGEC_CLOSE_SHUTDOWN);
            pthread_mutex_unlock(&p->mu);
            agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
            pthread_mutex_lock(&p->mu);
            return agec__error_set(err, AGEC_ERR_POOL_CLOSED, "pool is closing");
        }
        c->last_used_us = a->now;
        agec__conn_move_locked(p, c, CONN_IN_USE);
        return AGEC_OK;
    }
    agec__pool_open_failed_locked(p, c, a->now);
    a->tried_connect = true;
    if (st == AGEC_ERR_AUTH || st == AGEC_ERR_INIT || st == AGEC_ERR_NO_MEMORY ||
        st == AGEC_ERR_CONFIG) {
        if (err != NULL)
            agec__error_copy(err, &a->cerr);
        return st; /* retrying cannot help */
    }
    /* Retry within the deadline after a backoff of our own. */
    a->w.retry_at = a->now + agec__backoff_us(p, a->backoff_ms);
    a->backoff_ms = agec__backoff_next(p, a->backoff_ms);
    return AGEC_ERR_UNREACHABLE;
}

/* Check an idle connection before handing it out. Called and returns with
 * the lock held; 1 if c may be used, 0 if it was closed (the check failed),
 * -1 if this acquire's deadline cut the check short: c then went to
 * `checking`, where the maintenance thread finishes the check within its
 * own validation_timeout_ms (a check that did not finish is not a failed
 * check, and the connection is not lost). */
static int acq_validate_relocks(acq *a, agec_conn *c)
{
    agec_pool *p = a->p;
    p->n.validations++;
    pthread_mutex_unlock(&p->mu);
    agec_error verr = AGEC_ERROR_INIT;
    int64_t own = agec__deadline_after(a->now, p->cfg.c.validation_timeout_ms);
    int64_t vdl = agec__min64(acq_io_deadline(a), own);
    agec_status st = agec__session_validate(c->pg, vdl, &p->shutting_down, &verr);
    a->now = agec__now_us();
    if (st == AGEC_OK) {
        pthread_mutex_lock(&p->mu);
        return 1;
    }
    if (st == AGEC_ERR_TIMEOUT && vdl < own && PQstatus(c->pg) == CONNECTION_OK) {
        pthread_mutex_lock(&p->mu);
        if (atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
            /* The maintenance thread may have finished its last pass over
             * `checking` already: nobody would close it. */
            agec__pool_detach_locked(p, c, AGEC_CLOSE_SHUTDOWN);
            pthread_mutex_unlock(&p->mu);
            agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
            pthread_mutex_lock(&p->mu);
            return -1;
        }
        c->check_deadline_us = own;
        agec__conn_move_locked(p, c, CONN_CHECKING);
        agec__maint_poke_locked(p, a->now);
        return -1;
    }
    if (st != AGEC_ERR_CANCELLED)
        agec__emit_simple(p, AGEC_EV_VALIDATION_FAILED, c->id, st, verr.sqlstate, verr.message);
    pthread_mutex_lock(&p->mu);
    if (st != AGEC_ERR_CANCELLED)
        p->n.validation_failures++;
    agec_close_reason why = st == AGEC_ERR_CANCELLED ? AGEC_CLOSE_SHUTDOWN : AGEC_CLOSE_VALIDATION;
    agec__pool_detach_locked(p, c, why);
    pthread_mutex_unlock(&p->mu);
    agec__conn_destroy(p, c, why, why == AGEC_CLOSE_SHUTDOWN ? 0 : acq_io_deadline(a));
    pthread_mutex_lock(&p->mu);
    return 0;
}

/* Wait in the queue until woken, handed something, or the deadline. [mu] */
static void acq_wait_relocks(acq *a)
{
    agec_pool *p = a->p;
    if (!a->w.queued) {
        if (!a->w.cond_ready) {
            agec__cond_init_monotonic(&a->w.cond);
            a->w.cond_ready = true;
        }
        if (a->w.enq_us == 0) {
            a->w.enq_us = a->now;
            a->w.last_conn = agec__t_release.pool == (uintptr_t)p ? agec__t_release.conn : 0;
        }
        agec__waiter_enqueue_locked(p, &a->w);
    }
    /* What we could not use may be someone else's (a starving head's). */
    agec__pool_dispatch_locked(p, a->now);
    int64_t until = a->deadline;
    if (a->w.retry_at > a->now)
        until = agec__min64(until, a->w.retry_at);
    if (!a->w.signalled && a->w.handed == NULL && a->w.fail == AGEC_OK)
        agec__pool_wait_until(&a->w.cond, &p->mu, until);
    agec__waiter_unsignal_locked(p, &a->w);
    a->now = agec__now_us();
}

/* The breaker denies a connect to an acquire that already queued (the
 * pool was exhausted: it waits for a connection to come back), and
 * connections may come back: wait for one (within the deadline) instead of
 * failing fast, looking again when the open period ends or a probe may
 * have ended; else one freed slot would fail the whole queue, one waiter
 * after another. A newcomer still fails fast (the breaker's promise), and
 * so does everyone when nothing can come back. [mu] */
#define BREAKER_RECHECK_US 50000
static bool acq_breaker_wait_locked(acq *a)
{
    agec_pool *p = a->p;
    if (a->w.enq_us == 0 || agec__pool_may_come_back(p) == 0 || a->now >= a->deadline)
        return false;
    a->w.retry_at = agec__min64(agec__breaker_reopen_at(&p->breaker), a->now + BREAKER_RECHECK_US);
    return true;
}

/* May this acquire take an idle connection or a free slot now? Everyone
 * may while the oldest waiter is not starving (barging); once it is, only
 * it. [mu] */
static bool acq_may_take_locked(const acq *a, int64_t now)
{
    const agec_pool *p = a->p;
    if (p->wait_head == NULL || p->wait_head == &a->w)
        return true;
    return !agec__head_starving(p, now);
}

/* Record the borrow on c as soon as it is ours, before any check: the leak
 * scan must never see the previous borrower's file:line on it. While the
 * acquire still checks it (`checking`), the scan skips it: nobody holds it
 * yet (leak_reported set means "nothing to report"). [mu] */
static void acq_mark_locked(agec_conn *c, int64_t now, const char *file, int line, const char *func,
                            bool checking)
{
    c->acquired_us = now;
    if (!checking)
        atomic_store_explicit(&c->stmt_since_us, 0, memory_order_relaxed);
    c->file = file;
    c->line = line;
    c->func = func;
    c->leak_reported = checking;
}

/* Leave the acquire: the waiter's place and wake-up are passed on, close is
 * told when the last acquiring thread leaves. [mu] */
static void acq_leave_locked(acq *a)
{
    agec_pool *p = a->p;
    agec__waiter_dequeue_locked(p, &a->w);
    if (a->w.cond_ready)
        pthread_cond_destroy(&a->w.cond);
    agec__pool_dispatch_locked(p, a->now);
    if (--p->acquiring == 0 && atomic_load_explicit(&p->shutting_down, memory_order_relaxed))
        pthread_cond_broadcast(&p->state_cond);
}

/* Fail with a timeout: say whether the pool was exhausted or the database
 * unreachable. [mu] */
static acq_step acq_timeout_locked(acq *a)
{
    a->timed_out = true;
    a->st = timeout_error_locked(a->p, a->e, a->now - a->start, a->tried_connect, a->cut_short,
                                 &a->cerr);
    return STEP_FAIL;
}

/* Take an idle connection (this acquire may). One past its lifetime (the
 * maintenance thread has not retired it yet) is closed, never handed out. */
static acq_step acq_take_idle_relocks(acq *a)
{
    agec_pool *p = a->p;
    agec__waiter_dequeue_locked(p, &a->w);
    agec_conn *c = agec__idle_pick(p);
    agec__conn_move_locked(p, c, CONN_IN_USE);
    agec__pool_dispatch_locked(p, a->now); /* more for the next waiter? */
    if (c->expires_us > a->now) {
        a->c = c;
        return STEP_GOT;
    }
    agec__pool_detach_locked(p, c, AGEC_CLOSE_LIFETIME);
    pthread_mutex_unlock(&p->mu);
    agec__conn_destroy(p, c, AGEC_CLOSE_LIFETIME, 0);
    pthread_mutex_lock(&p->mu);
    return STEP_AGAIN;
}

/* Open a new connection in a free slot (this acquire may), if the breaker
 * lets it; a queued waiter it denies waits for connections in use. */
static acq_step acq_new_relocks(acq *a)
{
    agec_pool *p = a->p;
    acq_precise(a);
    agec__breaker_change ch;
    agec__breaker_verdict v = agec__breaker_allow(&p->breaker, a->now, &ch);
    atomic_store_explicit(&p->breaker_pub, (int)p->breaker.state, memory_order_relaxed);
    agec__waiter_dequeue_locked(p, &a->w);
    if (v == AGEC__BREAKER_DENY) {
        if (acq_breaker_wait_locked(a)) {
            acq_wait_relocks(a);
            return STEP_AGAIN;
        }
        if (a->tried_connect) {
            /* Our own attempts opened the breaker: report what they saw. */
            a->st = timeout_error_locked(p, a->e, a->now - a->start, true, a->cut_short, &a->cerr);
        } else {
            p->n.breaker_fast_fails++;
            a->st = breaker_error_locked(p, a->e, a->now);
        }
        return STEP_FAIL;
    }
    if (p->wait_head != NULL && agec__pool_total(p) + 1 < p->cfg.c.max)
        agec__pool_dispatch_locked(p, a->now); /* another free slot: the next waiter's */
    agec_conn *nc = agec__pool_reserve_locked(p, a->now);
    if (nc == NULL) {
        if (v == AGEC__BREAKER_PROBE)
            p->breaker.probing = false;
        a->st = agec__error_set(a->e, AGEC_ERR_NO_MEMORY, "out of memory");
        return STEP_FAIL;
    }
    nc->probe = v == AGEC__BREAKER_PROBE;
    agec_status st = acq_open_relocks(a, nc, &ch, a->e);
    if (st == AGEC_OK) {
        a->c = nc;
        return STEP_GOT;
    }
    if (st != AGEC_ERR_UNREACHABLE) {
        a->st = st;
        return STEP_FAIL;
    }
    if (a->now >= a->deadline) {
        a->timed_out = true;
        a->st = timeout_error_locked(p, a->e, a->now - a->start, true, a->cut_short, &a->cerr);
        return STEP_FAIL;
    }
    return STEP_AGAIN; /* retry after our own backoff */
}

/* One round: what was handed to us or what we may take, else wait. */
static acq_step acq_round_relocks(acq *a)
{
    agec_pool *p = a->p;
    if (a->w.handed != NULL) {
        a->c = a->w.handed; /* already moved to in_use and dequeued by the giver */
        a->w.handed = NULL;
        return STEP_GOT;
    }
    if (a->w.fail != AGEC_OK || atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        a->st = agec__error_set(a->e, a->w.fail != AGEC_OK ? a->w.fail : AGEC_ERR_POOL_CLOSED,
                                "pool is closing");
        return STEP_FAIL;
    }
    bool mine = acq_may_take_locked(a, a->now);
    if (mine && p->idle.count > 0)
        return acq_take_idle_relocks(a);
    if (mine && agec__pool_total(p) < p->cfg.c.max && a->now >= a->w.retry_at)
        return acq_new_relocks(a);
    acq_precise(a);
    if (a->now >= a->deadline)
        return acq_timeout_locked(a);
    acq_wait_relocks(a);
    return STEP_AGAIN;
}

/* a->c is ours (in_use): check it if it sat idle long enough to go stale. */
static acq_step acq_check_relocks(acq *a, const char *file, int line, const char *func)
{
    agec_pool *p = a->p;
    agec_conn *c = a->c;
    acq_mark_locked(c, a->now, file, line, func, true);
    int vms = p->cfg.c.validate_idle_ms;
    if (vms < 0 || (vms > 0 && a->now - c->last_used_us <= (int64_t)vms * 1000))
        return STEP_GOT;
    acq_precise(a);
    int ok = acq_validate_relocks(a, c);
    if (ok > 0)
        return STEP_GOT;
    a->c = NULL;
    if (ok < 0) {
        /* Not exhausted: the server answered the check too slowly. */
        a->timed_out = true;
        a->st = agec__error_set(a->e, AGEC_ERR_UNREACHABLE,
                                "no connection after %ld ms: the acquire's deadline passed while "
                                "an idle connection was being checked (the server answers slower "
                                "than that; the check goes on in the background within "
                                "validation_timeout_ms %d)",
                                (long)((a->now - a->start) / 1000), p->cfg.c.validation_timeout_ms);
        return STEP_FAIL;
    }
    /* Failed and closed: another, unless past the deadline (a new check
     * could only be cut short too). */
    return a->now >= a->deadline ? acq_timeout_locked(a) : STEP_AGAIN;
}

/* Hand a->c out: the acquire's reference now belongs to the borrowed
 * connection. */
static agec_status acq_succeed_unlocks(acq *a, const char *file, int line, const char *func)
{
    agec_pool *p = a->p;
    agec_conn *c = a->c;
    acq_mark_locked(c, a->now, file, line, func, false);
    c->borrow_id = ++p->next_borrow_id;
    p->n.acquires++;
    agec__hist_record(&p->wait_hist, a->now - a->start);
    if (p->cfg.c.leak_threshold_ms > 0)
        agec__maint_poke_locked(p, a->now + (int64_t)p->cfg.c.leak_threshold_ms * 1000);
    acq_leave_locked(a);
    pthread_mutex_unlock(&p->mu);
    return AGEC_OK;
}

/* Give up with a->st: count it, report a timeout (event sent unlocked),
 * drop the acquire's reference. */
static agec_status acq_fail_unlocks(acq *a)
{
    agec_pool *p = a->p;
    if (a->timed_out)
        p->n.acquire_timeouts++;
    else if (a->st != AGEC_ERR_BREAKER_OPEN || a->tried_connect)
        p->n.acquire_errors++;
    if (a->timed_out) {
        /* Out of the queue before the lock goes: a release in the meantime
         * must not hand its connection to a caller that is leaving. */
        agec__waiter_dequeue_locked(p, &a->w);
        pthread_mutex_unlock(&p->mu);
        agec_pool_event ev = { .type = AGEC_EV_ACQUIRE_TIMEOUT,
                               .warning = true,
                               .status = a->st,
                               .sqlstate = a->e->sqlstate,
                               .message = a->e->message,
                               .detail = a->e->detail };
        agec__emit(p, &ev);
        pthread_mutex_lock(&p->mu);
    }
    acq_leave_locked(a);
    bool last = agec__pool_unref_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (last)
        agec__pool_free(p);
    return a->st;
}

agec_status agec_pool_acquire_at(agec_pool *pool, int timeout_ms, agec_conn **out, agec_error *err,
                                 const char *file, int line, const char *func)
{
    if (out != NULL)
        *out = NULL;
    if (pool == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is NULL", pool ? "out" : "pool");
    agec_pool *p = pool;
    agec_error local; /* filled only on failure: no cost on the fast path */
    acq a;
    a.p = p;
    /* Field by field: the condition variable is set up only if we wait. */
    a.w.cond_ready = a.w.queued = a.w.signalled = false;
    a.w.handed = NULL;
    a.w.fail = AGEC_OK;
    a.w.retry_at = 0;
    a.w.enq_us = 0;
    a.w.last_conn = 0;
    a.w.prev = a.w.next = NULL;
    a.timeout_ms = timeout_ms < 0 ? p->cfg.c.acquire_timeout_ms : timeout_ms;
    a.precise = false;
    a.start = a.now = agec__now_coarse_us();
    a.deadline = agec__deadline_after(a.start, a.timeout_ms);
    a.backoff_ms = p->cfg.c.reconnect_backoff_initial_ms;
    a.tried_connect = false;
    a.cut_short = false;
    a.e = err != NULL ? err : &local;
    a.st = AGEC_OK;
    a.timed_out = false;
    a.c = NULL;

    bool returned = agec__release_note_return(p);
    if (!agec__pool_enter_locked(p))
        return agec__error_set(a.e, AGEC_ERR_POOL_CLOSED, "pool is closed");
    /* Ours, unless the tick ended it already (then the count is other
     * threads' deferrals): we take it below, or dispatch passes it on. */
    if (returned && p->deferred_wakeups > 0 && agec__t_release.defer_gen == p->defer_gen)
        p->deferred_wakeups--;
    p->acquiring++;
    a.w.ticket = ++p->next_ticket;
    acq_step step;
    do {
        step = acq_round_relocks(&a);
        if (step == STEP_GOT)
            step = acq_check_relocks(&a, file, line, func);
    } while (step == STEP_AGAIN);

    if (step == STEP_GOT && atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        /* close started while we validated: do not hand out a connection. */
        agec__pool_detach_locked(p, a.c, AGEC_CLOSE_SHUTDOWN);
        pthread_mutex_unlock(&p->mu);
        agec__conn_destroy(p, a.c, AGEC_CLOSE_SHUTDOWN, 0);
        pthread_mutex_lock(&p->mu);
        a.c = NULL;
        step = STEP_FAIL;
        a.st = agec__error_set(a.e, AGEC_ERR_POOL_CLOSED, "pool is closing");
    }
    if (step != STEP_GOT)
        return acq_fail_unlocks(&a);
    agec_status st = acq_succeed_unlocks(&a, file, line, func);
    *out = a.c;
    return st;
}
