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

void agec__maint_poke(agec_pool *p, int64_t when)
{
    if (p->maint_wake_at > when) {
        p->maint_wake_at = when;
        pthread_cond_signal(&p->maint_cond);
    }
}

/* Detach idle connections past their lifetime, and idle ones above `min`
 * unused for idle_timeout_ms. Returns them linked through `doom_next`. [mu] */
static agec_conn *collect_idle(agec_pool *p, int64_t now, int64_t *next)
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
            agec__pool_detach(p, c, (agec_close_reason)reason);
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
 * means EOF, a FATAL message, or a notification. Costs no round trip. The
 * pool owns idle connections, so touching their PGconn under the lock is
 * safe; libpq's sockets are non-blocking, so nothing here waits. [mu] */
static agec_conn *collect_dead_idle(agec_pool *p, int64_t now, int64_t *next, agec_conn *doomed)
{
    if (p->idle.count == 0)
        return doomed;
    if (now < p->next_idle_check) {
        *next = agec__min64(*next, p->next_idle_check);
        return doomed;
    }
    p->next_idle_check = now + AGEC__IDLE_CHECK_US;
    *next = agec__min64(*next, p->next_idle_check);
    agec_conn *c = p->idle.head;
    while (c != NULL) {
        agec_conn *nx = c->next;
        struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN, .revents = 0 };
        bool dead = pfd.fd < 0;
        if (!dead && poll(&pfd, 1, 0) > 0) {
            dead = !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK;
            PGnotify *nf;
            while (!dead && (nf = PQnotifies(c->pg)) != NULL)
                PQfreemem(nf);
        }
        if (dead) {
            agec__pool_detach(p, c, AGEC_CLOSE_BROKEN);
            c->close_reason = AGEC_CLOSE_BROKEN;
            c->doom_next = doomed;
            doomed = c;
        }
        c = nx;
    }
    return doomed;
}

/* Note borrows held past leak_threshold_ms, once per borrow. [mu] */
static int collect_leaks(agec_pool *p, int64_t now, int64_t *next, leak_note *out)
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
static agec_conn *want_connect(agec_pool *p, int64_t now, int64_t *next, agec__breaker_change *ch)
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
    agec_conn *c = agec__pool_reserve(p, now);
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
 * again, or closed as a failed validation. Called and returns with the lock
 * held; the connection stays in `checking` (owned by this thread) meanwhile. */
static void finish_check(agec_pool *p, agec_conn *c)
{
    pthread_mutex_unlock(&p->mu);
    agec_error verr = AGEC_ERROR_INIT;
    agec_status st = agec__session_drain(c->pg, c->check_deadline_us, &p->closing, &verr);
    if (st != AGEC_OK && st != AGEC_ERR_CANCELLED)
        agec__emit_simple(p, AGEC_EV_VALIDATION_FAILED, c->id, st, verr.sqlstate, verr.message);
    int64_t now = agec__now_us();
    pthread_mutex_lock(&p->mu);
    if (st == AGEC_OK && !atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        agec__pool_make_available(p, c, now);
        return;
    }
    agec_close_reason why = AGEC_CLOSE_SHUTDOWN;
    if (st != AGEC_OK && st != AGEC_ERR_CANCELLED) {
        p->n.validation_failures++;
        why = AGEC_CLOSE_VALIDATION;
    }
    agec__pool_detach(p, c, why);
    pthread_mutex_unlock(&p->mu);
    agec__conn_destroy(p, c, why, why == AGEC_CLOSE_SHUTDOWN ? 0 : AGEC__NEVER);
    pthread_mutex_lock(&p->mu);
}

/* Open one connection for `min`. Called and returns with the lock held. */
static void top_up(agec_pool *p, agec_conn *c)
{
    pthread_mutex_unlock(&p->mu);
    agec_error err;
    int64_t now = agec__now_us();
    int64_t own = agec__deadline_after(now, p->cfg.c.connect_timeout_ms);
    agec_status st = agec__pool_connect(p, c, own, own, &p->closing, NULL, &err);
    now = agec__now_us();
    agec__breaker_change ch;
    pthread_mutex_lock(&p->mu);
    agec__pool_connect_done(p, c, st, &err, now, &ch);
    bool shut = false;
    if (st == AGEC_OK && atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        agec__pool_detach(p, c, AGEC_CLOSE_SHUTDOWN);
        shut = true;
    } else if (st == AGEC_OK) {
        agec__pool_make_available(p, c, now);
    } else {
        agec__pool_open_failed(p, c, now);
    }
    pthread_mutex_unlock(&p->mu);
    agec__emit_breaker(p, &ch);
    if (shut)
        agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
    pthread_mutex_lock(&p->mu);
}

static void *maint_main(void *arg)
{
    agec_pool *p = arg;
    leak_note leaks[LEAK_BATCH];
    pthread_mutex_lock(&p->mu);
    while (!atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        int64_t now = agec__now_us();
        int64_t next = AGEC__NEVER;
        p->maint_wake_at = 0; /* awake: pokes need no signal, we look again below */
        agec_conn *doomed = collect_idle(p, now, &next);
        doomed = collect_dead_idle(p, now, &next, doomed);
        int nleaks = collect_leaks(p, now, &next, leaks);
        next = agec__min64(next, agec__reap_poll(p, now, false));
        next = agec__min64(next, agec__pool_defer_tick(p, now));
        agec__breaker_change ch;
        agec_conn *fresh = want_connect(p, now, &next, &ch);
        agec_conn *check = p->checking.head;
        if (doomed == NULL && nleaks == 0 && fresh == NULL && check == NULL && ch.from == ch.to) {
            p->maint_wake_at = next;
            struct timespec ts = agec__timespec_at(next);
            pthread_cond_timedwait(&p->maint_cond, &p->mu, &ts);
            continue;
        }
        agec__pool_defer_suspend(p, now);
        pthread_mutex_unlock(&p->mu);
        agec__emit_breaker(p, &ch);
        while (doomed != NULL) {
            agec_conn *nx = doomed->doom_next;
            agec__conn_destroy(p, doomed, doomed->close_reason, AGEC__NEVER);
            doomed = nx;
        }
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
        if (check != NULL)
            finish_check(p, check);
        if (fresh != NULL)
            top_up(p, fresh);
        p->maint_busy = false;
    }
    /* Closing: server processes still exiting get until close's deadline. */
    agec__reap_finish(p);
    /* Checks not finished go too (close waits for this thread). */
    while (p->checking.head != NULL) {
        agec_conn *c = p->checking.head;
        agec__pool_detach(p, c, AGEC_CLOSE_SHUTDOWN);
        pthread_mutex_unlock(&p->mu);
        agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
        pthread_mutex_lock(&p->mu);
    }
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
