/*
 * The maintenance thread: idle reaping above `min`, lifetime retirement of
 * idle connections, leak reports, and keeping `min` connections open with
 * backoff. It sleeps on a condition variable until the earliest thing it has
 * to do (or until poked), never on a fixed tick.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
#include "session/clock.h"

/* Leak reports gathered under the lock, sent after unlocking. */
#define LEAK_BATCH 16

typedef struct leak_note {
    uint64_t id;
    const char *file, *func;
    int line;
    int64_t held_ms;
} leak_note;

void agec__maint_poke_locked(agec_pool *p, int64_t when)
{
    if (p->maint_wake_at > when) {
        p->maint_wake_at = when;
        pthread_cond_signal(&p->maint_cond);
    }
}

/* Detach idle connections past their lifetime, and idle ones above `min`
 * unused for idle_timeout_ms. Returns them linked through `doom_next`. [mu] */
static agec_conn *collect_idle_locked(agec_pool *p, int64_t now, int64_t *next)
{
    agec_conn *doomed = NULL;
    int64_t idle_us = (int64_t)p->cfg.c.idle_timeout_ms * 1000;
    /* From the tail: least recently used first. */
    agec_conn *c = p->idle.tail;
    while (c != NULL) {
        agec_conn *prev = c->prev;
        int reason = -1;
        if (c->expires_us <= now)
            reason = AGEC_CLOSE_LIFETIME;
        else if (idle_us > 0 && agec__pool_live(p) > p->cfg.c.min &&
                 now - c->last_used_us >= idle_us)
            reason = AGEC_CLOSE_IDLE;
        if (reason >= 0) {
            agec__pool_detach_locked(p, c, (agec_close_reason)reason);
            c->doom_next = doomed;
            c->close_reason = (agec_close_reason)reason;
            doomed = c;
        } else {
            *next = agec__min64(*next, c->expires_us);
            if (idle_us > 0 && agec__pool_live(p) > p->cfg.c.min)
                *next = agec__min64(*next, c->last_used_us + idle_us);
        }
        c = prev;
    }
    return doomed;
}

/* Find idle connections whose server closed them (terminated backend,
 * restart): an idle connection has nothing to read, so a readable socket
 * means EOF, a FATAL message, or a notification. Costs no round trip.
 * Only the poll happens here: readable ones move to `checking` (owned by
 * this thread, counted toward max) and are read by sweep_read after
 * unlocking, because libpq hands a FATAL to the notice receiver, whose
 * event callback must never run under the lock (it may call the pool).
 * Returns them linked through `doom_next`. [mu] */
static agec_conn *collect_readable_idle_locked(agec_pool *p, int64_t now, int64_t *next)
{
    if (p->idle.count == 0)
        return NULL;
    if (now < p->next_idle_check) {
        *next = agec__min64(*next, p->next_idle_check);
        return NULL;
    }
    p->next_idle_check = now + AGEC__IDLE_CHECK_US;
    *next = agec__min64(*next, p->next_idle_check);
    agec_conn *sweep = NULL;
    agec_conn *c = p->idle.head;
    while (c != NULL) {
        agec_conn *nx = c->next;
        struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN, .revents = 0 };
        if (pfd.fd < 0 || poll(&pfd, 1, 0) > 0) {
            agec__conn_move_locked(p, c, CONN_CHECKING);
            c->doom_next = sweep;
            sweep = c;
        }
        c = nx;
    }
    return sweep;
}

/* Read what the swept connections' servers sent (no lock held: notices
 * become events here). Returns the live ones; the dead ones go to *dead,
 * both linked through `doom_next`. */
static agec_conn *sweep_read(agec_conn *sweep, agec_conn **dead)
{
    agec_conn *live = NULL;
    while (sweep != NULL) {
        agec_conn *c = sweep;
        sweep = c->doom_next;
        bool gone =
            PQsocket(c->pg) < 0 || !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK;
        PGnotify *nf;
        while (!gone && (nf = PQnotifies(c->pg)) != NULL)
            PQfreemem(nf);
        agec_conn **to = gone ? dead : &live;
        c->doom_next = *to;
        *to = c;
    }
    return live;
}

/* Swept connections back to idle (their last use unchanged), or detached:
 * the dead ones (broken), all of them if the pool is closing. Returns the
 * detached ones linked through `doom_next`. [mu] */
static agec_conn *sweep_settle_locked(agec_pool *p, agec_conn *live, agec_conn *dead, int64_t now)
{
    bool shut = atomic_load_explicit(&p->shutting_down, memory_order_relaxed);
    agec_conn *doomed = NULL;
    for (int pass = 0; pass < 2; pass++) {
        agec_conn *c = pass == 0 ? live : dead;
        while (c != NULL) {
            agec_conn *nx = c->doom_next;
            if (pass == 0 && !shut && now < c->expires_us) {
                int64_t last = c->last_used_us;
                agec__pool_make_available_locked(p, c, now);
                if (c->state == CONN_IDLE)
                    c->last_used_us = last;
            } else {
                agec_close_reason why = pass == 1 ? AGEC_CLOSE_BROKEN
                                        : shut    ? AGEC_CLOSE_SHUTDOWN
                                                  : AGEC_CLOSE_LIFETIME;
                agec__pool_detach_locked(p, c, why);
                c->close_reason = why;
                c->doom_next = doomed;
                doomed = c;
            }
            c = nx;
        }
    }
    return doomed;
}

/* Close detached connections (no lock held). No wait for their server
 * processes: those still there are watched by the reaper (reap.c), so N
 * connections behind a frozen host cost no N x connect_timeout_ms here. */
static void destroy_batch(agec_pool *p, agec_conn *doomed)
{
    while (doomed != NULL) {
        agec_conn *nx = doomed->doom_next;
        agec__conn_destroy(p, doomed, doomed->close_reason, 0);
        doomed = nx;
    }
}

/* Note borrows held past leak_threshold_ms, once per borrow. [mu] */
static int collect_leaks_locked(agec_pool *p, int64_t now, int64_t *next, leak_note *out)
{
    if (p->cfg.c.leak_threshold_ms <= 0)
        return 0;
    int64_t thr = (int64_t)p->cfg.c.leak_threshold_ms * 1000;
    int n = 0;
    for (agec_conn *c = p->in_use.head; c != NULL; c = c->next) {
        if (c->leak_reported)
            continue;
        if (now - c->acquired_us < thr) {
            *next = agec__min64(*next, c->acquired_us + thr);
            continue;
        }
        if (n == LEAK_BATCH) {
            *next = now; /* more next round */
            break;
        }
        c->leak_reported = true;
        p->n.leaks_suspected++;
        out[n++] = (leak_note){ c->id, c->file, c->func, c->line, (now - c->acquired_us) / 1000 };
    }
    return n;
}

/* Reserve a slot to top up to `min`, if allowed now. [mu] */
static agec_conn *want_connect_locked(agec_pool *p, int64_t now, int64_t *next,
                                      agec__breaker_change *ch)
{
    ch->from = ch->to = p->breaker.state;
    if (agec__pool_total(p) >= p->cfg.c.min)
        return NULL;
    if (now < p->bg_retry_at) {
        *next = agec__min64(*next, p->bg_retry_at);
        return NULL;
    }
    agec__breaker_verdict v = agec__breaker_allow(&p->breaker, now, ch);
    atomic_store_explicit(&p->breaker_pub, (int)p->breaker.state, memory_order_relaxed);
    if (v == AGEC__BREAKER_DENY) {
        int64_t at = agec__breaker_reopen_at(&p->breaker);
        /* Half-open with a probe under way: its end pokes us (connect_done
         * changes state, detach/dispatch); check again soon regardless. */
        *next = agec__min64(*next, at == AGEC__NEVER ? now + 50000 : at);
        return NULL;
    }
    agec_conn *c = agec__pool_reserve_locked(p, now);
    if (c == NULL) {
        if (v == AGEC__BREAKER_PROBE)
            p->breaker.probing = false;
        *next = agec__min64(*next, now + 100000);
        return NULL;
    }
    c->probe = v == AGEC__BREAKER_PROBE;
    return c;
}

/* Finish the check of the oldest connection in `checking` (its acquirer's
 * deadline cut it short), within the check's own deadline: then it is idle
 * again, or closed as a failed validation (or past its lifetime). Called
 * and returns with the lock held, dropped for the I/O; the connection stays in `checking`
 * (owned by this thread) meanwhile. */
static void finish_check_relocks(agec_pool *p, agec_conn *c)
{
    pthread_mutex_unlock(&p->mu);
    agec_error verr = AGEC_ERROR_INIT;
    /* An answer already in the socket counts, even past the deadline
     * (drain would give up before reading it). */
    (void)PQconsumeInput(c->pg);
    agec_status st = agec__session_drain(c->pg, c->check_deadline_us, &p->shutting_down, &verr);
    if (st != AGEC_OK && st != AGEC_ERR_CANCELLED)
        agec__emit_simple(p, AGEC_EV_VALIDATION_FAILED, c->id, st, verr.sqlstate, verr.message);
    int64_t now = agec__now_us();
    pthread_mutex_lock(&p->mu);
    bool shut = atomic_load_explicit(&p->shutting_down, memory_order_relaxed);
    if (st == AGEC_OK && !shut && now < c->expires_us) {
        agec__pool_make_available_locked(p, c, now);
        return;
    }
    agec_close_reason why = AGEC_CLOSE_SHUTDOWN;
    if (st != AGEC_OK && st != AGEC_ERR_CANCELLED) {
        p->n.validation_failures++;
        why = AGEC_CLOSE_VALIDATION;
    } else if (st == AGEC_OK && !shut) {
        why = AGEC_CLOSE_LIFETIME;
    }
    agec__pool_detach_locked(p, c, why);
    pthread_mutex_unlock(&p->mu);
    agec__conn_destroy(p, c, why, 0);
    pthread_mutex_lock(&p->mu);
}

/* Open one connection for `min`. Called and returns with the lock held,
 * dropped for the connect and the events. */
static void top_up_relocks(agec_pool *p, agec_conn *c)
{
    pthread_mutex_unlock(&p->mu);
    agec_error err;
    int64_t now = agec__now_us();
    int64_t own = agec__deadline_after(now, p->cfg.c.connect_timeout_ms);
    agec_status st = agec__pool_connect(p, c, own, own, &p->shutting_down, NULL, &err);
    now = agec__now_us();
    agec__breaker_change ch;
    pthread_mutex_lock(&p->mu);
    agec__pool_connect_done_locked(p, c, st, &err, now, &ch);
    bool shut = false;
    if (st == AGEC_OK && atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        agec__pool_detach_locked(p, c, AGEC_CLOSE_SHUTDOWN);
        shut = true;
    } else if (st == AGEC_OK) {
        agec__pool_make_available_locked(p, c, now);
    } else {
        agec__pool_open_failed_locked(p, c, now);
    }
    pthread_mutex_unlock(&p->mu);
    agec__emit_breaker(p, &ch);
    if (shut)
        agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
    pthread_mutex_lock(&p->mu);
}

/* At close (closing set), the maintenance thread's last pass: checks not
 * finished are closed (close waits for this thread). A check that an
 * acquirer's deadline cuts short after this pass is closed by the acquirer
 * itself (acq_validate_relocks), never put in `checking`. */
static void close_unfinished_checks_relocks(agec_pool *p)
{
    while (p->checking.head != NULL) {
        agec_conn *c = p->checking.head;
        agec__pool_detach_locked(p, c, AGEC_CLOSE_SHUTDOWN);
        pthread_mutex_unlock(&p->mu);
        agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
        pthread_mutex_lock(&p->mu);
    }
}

static void *maint_main(void *arg)
{
    agec_pool *p = arg;
    leak_note leaks[LEAK_BATCH];
    pthread_mutex_lock(&p->mu);
    while (!atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        int64_t now = agec__now_us();
        int64_t next = AGEC__NEVER;
        p->maint_wake_at = 0; /* awake: pokes need no signal, we look again below */
        agec_conn *doomed = collect_idle_locked(p, now, &next);
        /* The oldest check first; picked before the sweep adds its own. */
        agec_conn *check = p->checking.tail;
        agec_conn *sweep = collect_readable_idle_locked(p, now, &next);
        int nleaks = collect_leaks_locked(p, now, &next, leaks);
        agec_conn *reap = agec__reap_due_locked(p, now, &next);
        next = agec__min64(next, agec__pool_defer_tick_locked(p, now));
        agec__breaker_change ch;
        agec_conn *fresh = want_connect_locked(p, now, &next, &ch);
        if (doomed == NULL && sweep == NULL && reap == NULL && nleaks == 0 && fresh == NULL &&
            check == NULL && ch.from == ch.to) {
            p->maint_wake_at = next;
            struct timespec ts = agec__timespec_at(next);
            pthread_cond_timedwait(&p->maint_cond, &p->mu, &ts);
            continue;
        }
        /* From here to the lock below, no lock: I/O and events. */
        agec__pool_defer_suspend_locked(p, now);
        pthread_mutex_unlock(&p->mu);
        agec__emit_breaker(p, &ch);
        agec__reap_check(reap);
        agec_conn *dead = NULL;
        agec_conn *live = sweep_read(sweep, &dead);
        destroy_batch(p, doomed);
        for (int i = 0; i < nleaks; i++) {
            char msg[160];
            snprintf(msg, sizeof msg, "connection held for %lld ms (leak_threshold_ms %d)",
                     (long long)leaks[i].held_ms, p->cfg.c.leak_threshold_ms);
            agec_pool_event ev = { .type = AGEC_EV_LEAK_SUSPECTED,
                                   .warning = true,
                                   .conn_id = leaks[i].id,
                                   .file = leaks[i].file,
                                   .line = leaks[i].line,
                                   .func = leaks[i].func,
                                   .held_ms = leaks[i].held_ms,
                                   .message = msg };
            agec__emit(p, &ev);
        }
        pthread_mutex_lock(&p->mu);
        agec__reap_settle_locked(p, reap, agec__now_us());
        if (live != NULL || dead != NULL) {
            doomed = sweep_settle_locked(p, live, dead, agec__now_us());
            if (doomed != NULL) {
                pthread_mutex_unlock(&p->mu);
                destroy_batch(p, doomed);
                pthread_mutex_lock(&p->mu);
            }
        }
        if (check != NULL)
            finish_check_relocks(p, check);
        if (fresh != NULL)
            top_up_relocks(p, fresh);
        p->maint_busy = false;
    }
    /* Closing: server processes still exiting get until close's deadline. */
    agec__reap_finish_relocks(p);
    close_unfinished_checks_relocks(p);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

agec_status agec__maint_start(agec_pool *p, agec_error *err)
{
    p->maint_wake_at = 0;
    if (pthread_create(&p->maint_thread, NULL, maint_main, p) != 0)
        return agec__error_set(err, AGEC_ERR_SYSTEM, "could not start the maintenance thread");
    p->maint_started = true;
    return AGEC_OK;
}

void agec__maint_join(agec_pool *p)
{
    if (p->maint_started) {
        pthread_join(p->maint_thread, NULL);
        p->maint_started = false;
    }
}

/* Something outside the pool (the cluster's monitor) saw the server answer:
 * let the next connection attempt probe it now instead of failing fast
 * until the open period ends. */
void agec_pool_breaker_probe(agec_pool *pool)
{
    if (pool == NULL || !agec__pool_enter(pool))
        return;
    pthread_mutex_lock(&pool->mu);
    agec__breaker_probe_now(&pool->breaker, agec__now_us());
    pthread_mutex_unlock(&pool->mu);
    agec__pool_leave(pool);
}
