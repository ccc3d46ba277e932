/* The pool: open, connecting, the waiter queue, wake on miss, and the state
 * transitions (acquire: acquire.c, release: release.c, close: close.c). */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
#include "pool/wake.h"
#include "session/clock.h"

/* ---- small helpers ------------------------------------------------------- */

uint64_t agec__pool_rand(agec_pool *p, uint64_t n)
{
    /* xorshift64*: jitter only needs to be spread out, not unpredictable. */
    uint64_t x = p->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return n == 0 ? 0 : (x * 2685821657736338717ULL) % n;
}

int64_t agec__backoff_us(agec_pool *p, int delay_ms)
{
    /* "Equal jitter": half fixed, half random, so retries of many pools (or
     * connections) spread out instead of arriving together. */
    int64_t d = (int64_t)delay_ms * 1000;
    return d / 2 + (int64_t)agec__pool_rand(p, (uint64_t)(d / 2) + 1);
}

/* The next delay of a doubling backoff, capped at reconnect_backoff_max_ms. */
int agec__backoff_next(const agec_pool *p, int delay_ms)
{
    int cap = p->cfg.c.reconnect_backoff_max_ms;
    return delay_ms >= cap / 2 ? cap : delay_ms * 2;
}

void agec__cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &a);
    pthread_condattr_destroy(&a);
}

void agec__pool_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_us)
{
    if (deadline_us == AGEC__NEVER) {
        pthread_cond_wait(cond, mu);
        return;
    }
    struct timespec ts = agec__timespec_at(deadline_us);
    pthread_cond_timedwait(cond, mu, &ts);
}

/* ---- waiter queue (ticket order) ----------------------------------------- */

/* The waiter has looked (or left): its wake-up is used up. */
void agec__waiter_unsignal_locked(agec_pool *p, waiter *w)
{
    if (w->signalled) {
        w->signalled = false;
        p->nsignalled--;
    }
}

void agec__waiter_enqueue_locked(agec_pool *p, waiter *w)
{
    /* Usually at the tail; a waiter that left to connect and failed comes
     * back to its place by ticket, so retries do not lose their turn. */
    waiter *after = p->wait_tail;
    while (after != NULL && after->ticket > w->ticket)
        after = after->prev;
    w->prev = after;
    w->next = after ? after->next : p->wait_head;
    if (w->next != NULL)
        w->next->prev = w;
    else
        p->wait_tail = w;
    if (after != NULL)
        after->next = w;
    else
        p->wait_head = w;
    w->queued = true;
    p->waiting++;
}

void agec__waiter_dequeue_locked(agec_pool *p, waiter *w)
{
    if (!w->queued)
        return;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        p->wait_head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        p->wait_tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    p->waiting--;
    agec__waiter_unsignal_locked(p, w);
}

/* ---- wake on miss ----------------------------------------------------------
 * A release with waiters and no starving head would wake the oldest one.
 * When the releasing thread comes straight back for another connection (a
 * loop of queries), it barges in and takes the connection first, and the
 * woken waiter finds nothing and sleeps again: a wake-up and a context
 * switch per query for nothing, on 2 cores as costly as the query itself.
 * So each thread remembers (thread-local, per pool) whether it came back
 * within AGEC__QUICK_RETURN_US of its last release with waiters; after two
 * quick returns in a row its releases defer the wake-up instead. The
 * deferred connection counts as taken for dispatch until the thread
 * returns (it takes the connection, or if it may not, the deferral ends
 * and dispatch runs), another caller takes it, or the maintenance thread's
 * tick ends the deferral AGEC__DEFER_TICK_US later: the bound on how long
 * a misprediction leaves a connection idle while a caller waits. A slow
 * return resets the thread to immediate wake-ups. */
_Thread_local release_note agec__t_release;

/* A release of c with waiters and no starving head: defer their wake-up?
 * [mu] */
static bool release_defers_wake_locked(agec_pool *p)
{
    release_note *t = &agec__t_release;
    int64_t now = agec__now_us();
    t->at_us = now;
    t->pending = true;
    /* Not while the maintenance thread is away from its timer. */
    t->wake_deferred = t->quick >= 2 && !p->maint_busy && !(p->ablate & AGEC__ABLATE_WAKE_ON_MISS);
    if (!t->wake_deferred)
        return false;
    p->deferred_wakeups++;
    t->defer_gen = p->defer_gen;
    p->n.wakeups_deferred++;
    p->deferred_since_tick = true;
    if (p->defer_tick_at == 0) {
        p->defer_tick_at = now + AGEC__DEFER_TICK_US;
        agec__maint_poke_locked(p, p->defer_tick_at);
    }
    return true;
}

static void defer_end_locked(agec_pool *p, int64_t now)
{
    if (p->deferred_wakeups > 0) {
        p->n.wakeups_deferred_late += (uint64_t)p->deferred_wakeups;
        p->deferred_wakeups = 0;
        p->defer_gen++; /* the deferrals counted so far are over */
        agec__pool_dispatch_locked(p, now);
    }
}

int64_t agec__pool_defer_tick_locked(agec_pool *p, int64_t now)
{
    if (p->defer_tick_at == 0)
        return AGEC__NEVER;
    if (now < p->defer_tick_at)
        return p->defer_tick_at;
    defer_end_locked(p, now);
    /* Deferrals go on (a contended pool): tick again, so that they find
     * the tick armed and need not wake this thread (one wake-up per tick
     * instead of two). Else stop. */
    p->defer_tick_at = p->deferred_since_tick ? now + AGEC__DEFER_TICK_US : 0;
    p->deferred_since_tick = false;
    return p->defer_tick_at != 0 ? p->defer_tick_at : AGEC__NEVER;
}

void agec__pool_defer_suspend_locked(agec_pool *p, int64_t now)
{
    p->maint_busy = true;
    defer_end_locked(p, now);
}

/* ---- state transitions (all under p->mu) ---------------------------------- */

/* Give c straight to the queued waiter w (dequeued, woken). [mu] */
static void hand_to_locked(agec_pool *p, agec_conn *c, waiter *w, int64_t now)
{
    agec__conn_move_locked(p, c, CONN_IN_USE);
    /* Nobody holds it until w runs and records its borrow (acq_mark_locked): the
     * leak scan must not report it under the previous borrower's name. */
    c->leak_reported = true;
    c->file = NULL;
    w->handed = c;
    agec__waiter_dequeue_locked(p, w);
    pthread_cond_signal(&w->cond);
    /* w may have been woken for another idle connection or a free slot:
     * that wake-up left with it, so pass it on (the spin model's
     * BRIEF_HANDOFF and BRIEF_GIVEBACK variants are this bug: a lost
     * wake-up). */
    agec__pool_dispatch_locked(p, now);
}

/* Give-back: c was lent to a starving waiter, and the starving phase is
 * over. The thread it was taken from is queued (it released c to the
 * starving head and came back): give c back to it rather than let the last
 * borrower of the phase keep it. The threads that ran before the phase run
 * after it, each on its own connection, instead of a new set each phase:
 * each pair of thread and server process stays as it was (with server and
 * client on one machine, a new pair often lands on two CPUs and runs at
 * half speed until the kernel moves one of them, tens of ms later:
 * bench_contention's timeline). Oldest such waiter first. [mu] */
static bool give_back_locked(agec_pool *p, agec_conn *c, int64_t now)
{
    for (waiter *o = p->wait_head; o != NULL; o = o->next) {
        if (o->last_conn == (uintptr_t)c) {
            p->n.givebacks++;
            hand_to_locked(p, c, o, now);
            return true;
        }
    }
    return false;
}

void agec__pool_make_available_locked(agec_pool *p, agec_conn *c, int64_t now)
{
    c->last_used_us = now;
    release_note *t = &agec__t_release;
    if (t->pool != (uintptr_t)p) {
        t->pool = (uintptr_t)p;
        t->quick = 0;
        t->pending = t->wake_deferred = false;
    }
    t->conn = (uintptr_t)c;
    waiter *w = p->wait_head;
    bool open = !atomic_load_explicit(&p->shutting_down, memory_order_relaxed);
    if (w != NULL && open && agec__head_starving(p, now)) {
        /* Direct hand-off to the starving oldest waiter: no newcomer can
         * take this one, and exactly one thread wakes. */
        c->lent = true;
        p->n.handoffs++;
        hand_to_locked(p, c, w, now);
        return;
    }
    bool lent = c->lent;
    c->lent = false;
    if (lent && w != NULL && open && !(p->ablate & AGEC__ABLATE_GIVEBACK) &&
        give_back_locked(p, c, now))
        return;
    agec__conn_move_locked(p, c, CONN_IDLE);
    /* The maintenance thread may sleep with nothing to do (all were in use):
     * make sure it wakes for this one's idle check and idle timeout. */
    int64_t when = now + AGEC__IDLE_CHECK_US;
    if (p->cfg.c.idle_timeout_ms > 0 && agec__pool_live(p) > p->cfg.c.min)
        when = agec__min64(when, now + (int64_t)p->cfg.c.idle_timeout_ms * 1000);
    agec__maint_poke_locked(p, when);
    if (w == NULL || !release_defers_wake_locked(p))
        agec__pool_dispatch_locked(p, now);
}

/* Would the breaker let a connect start now (agec__breaker_allow not DENY)? */
static bool breaker_admits(const agec__breaker *b, int64_t now)
{
    if (b->state == AGEC_BREAKER_OPEN)
        return now >= agec__breaker_reopen_at(b);
    return b->state == AGEC_BREAKER_CLOSED || !b->probing;
}

void agec__pool_dispatch_locked(agec_pool *p, int64_t now)
{
    if (p->wait_head == NULL || atomic_load_explicit(&p->shutting_down, memory_order_relaxed))
        return;
    int idle = p->idle.count - p->deferred_wakeups; /* deferred ones: their thread is coming back */
    int free = p->cfg.c.max - agec__pool_total(p);
    /* A free slot the breaker will not let anyone connect into is nothing
     * to wake a waiter for, while connections may come back: the waiter
     * would fail fast, and the next one, and so on (waiters wait for those
     * instead, acq_breaker_wait_locked). With nothing to come back, waking them
     * lets them fail fast. */
    if (free > 0 && !breaker_admits(&p->breaker, now) && agec__pool_may_come_back(p) > 0)
        free = 0;
    int avail = idle + free;
    if (avail <= 0)
        return;
    waiter *h = p->wait_head;
    if (agec__head_starving(p, now)) {
        /* Only the starving head may take anything: wake it alone. */
        if (!h->signalled && (h->retry_at <= now || idle > 0)) {
            h->signalled = true;
            p->nsignalled++;
            pthread_cond_signal(&h->cond);
        }
        return;
    }
    /* Oldest first; the ones already woken are on their way. A waiter in
     * its reconnect backoff wakes by its own timer unless an idle
     * connection is there for it. */
    for (waiter *w = h; w != NULL && p->nsignalled < avail; w = w->next) {
        if (w->signalled || (w->retry_at > now && idle <= 0))
            continue;
        w->signalled = true;
        p->nsignalled++;
        pthread_cond_signal(&w->cond);
    }
}

void agec__pool_detach_locked(agec_pool *p, agec_conn *c, agec_close_reason reason)
{
    agec__conn_move_locked(p, c, CONN_CLOSING);
    p->n.closed[reason]++;
    /* With the breaker open, the last connection that could come back may
     * just have gone: waiters then fail fast (dispatch counts the free
     * slots again). The spin model found this wake-up missing. */
    if (p->breaker.state != AGEC_BREAKER_CLOSED)
        agec__pool_dispatch_locked(p, agec__now_coarse_us());
}

void agec__pool_closed_locked(agec_pool *p, agec_conn *c)
{
    agec__list_remove(&p->closing_list, c);
    agec__pool_dispatch_locked(p, agec__now_coarse_us());
    if (atomic_load_explicit(&p->shutting_down, memory_order_relaxed))
        pthread_cond_broadcast(&p->state_cond);
    else if (agec__pool_total(p) < p->cfg.c.min)
        agec__maint_poke_locked(p, 0);
}

agec_conn *agec__pool_reserve_locked(agec_pool *p, int64_t now)
{
    agec_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->pool = p;
    c->id = ++p->next_conn_id;
    c->state = CONN_OPENING;
    c->created_us = now;
    c->expires_us = AGEC__NEVER;
    c->reap_fd = -1;
    agec__list_push_head(&p->opening, c);
    return c;
}

void agec__pool_open_failed_locked(agec_pool *p, agec_conn *c, int64_t now)
{
    int fd = c->reap_fd;
    c->reap_fd = -1;
    if (fd >= 0 && !atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        /* A server process may have started for it (a connect cut short
         * during authentication or set-up): keep the slot until it is gone
         * (the maintenance thread looks at once, outside the lock). */
        agec__conn_move_locked(p, c, CONN_CLOSING);
        agec__reap_start_locked(p, c, fd, agec__deadline_after(now, p->cfg.c.connect_timeout_ms));
        return;
    }
    if (fd >= 0)
        close(fd);
    agec__list_remove(&p->opening, c);
    free(c);
    agec__pool_dispatch_locked(p, now);
}

bool agec__pool_unref_locked(agec_pool *p)
{
    return --p->refs == 0;
}

bool agec__pool_enter(agec_pool *p)
{
    if (!agec__pool_enter_locked(p))
        return false;
    pthread_mutex_unlock(&p->mu);
    return true;
}

void agec__pool_leave(agec_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool last = agec__pool_unref_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (last)
        agec__pool_free(p);
}

void agec__pool_free(agec_pool *p)
{
    /* A thread that entered a call as the last reference went (a monitor
     * reading stats while close finishes) may still be about to lock the
     * mutex; it finds no reference to take and leaves. Wait for it. */
    while (atomic_load_explicit(&p->visitors, memory_order_acquire) > 0)
        sched_yield();
    pthread_cond_destroy(&p->state_cond);
    pthread_cond_destroy(&p->maint_cond);
    pthread_mutex_destroy(&p->mu);
    agec__config_free(&p->cfg);
    free(p);
}

/* ---- connecting ----------------------------------------------------------- */

agec_status agec__pool_connect(agec_pool *p, agec_conn *c, int64_t deadline_us,
                               int64_t own_deadline_us, const atomic_bool *abort_flag,
                               bool *cut_short, agec_error *err)
{
    if (cut_short != NULL)
        *cut_short = false;
    int64_t t0 = agec__now_us();
    PGconn *pg = NULL;
    agec_status st = agec__session_connect(p->cfg.keys, p->cfg.vals, deadline_us, abort_flag, &pg,
                                           &c->reap_fd, err);
    if (st == AGEC_OK) {
        agec__pool_watch_notices(c, pg); /* the init's notices too */
        st = agec__session_setup(pg, &p->cfg.init, deadline_us, abort_flag, err);
        if (st == AGEC_ERR_TIMEOUT) {
            /* Init ran past connect_timeout_ms: the server is too slow to count as reachable. */
            st = AGEC_ERR_UNREACHABLE;
            if (err != NULL)
                err->code = st;
        }
    }
    if (st == AGEC_OK) {
        agec__ahist_record(&p->create_hist, agec__now_us() - t0);
        c->pg = pg;
        c->cancel = agec__cancel_key_make(pg);
        agec__emit_simple(p, AGEC_EV_CONNECT, c->id, AGEC_OK, "", "connection opened");
        return AGEC_OK;
    }
    if (pg != NULL) {
        c->reap_fd = agec__session_finish_watched(pg); /* the server process may be there */
    }
    /* An attempt its caller's deadline cut short says nothing about the
     * server (not counted as a failure, see acq_open): no event either. */
    bool was_cut = st == AGEC_ERR_UNREACHABLE && deadline_us < own_deadline_us &&
                   agec__now_us() >= deadline_us;
    if (cut_short != NULL)
        *cut_short = was_cut;
    if (st != AGEC_ERR_CANCELLED && !was_cut)
        agec__emit_simple(p, AGEC_EV_CONNECT_FAILED, c->id, st, err ? err->sqlstate : "",
                          err ? err->message : agec_strerror(st));
    return st;
}

void agec__pool_connect_done_locked(agec_pool *p, agec_conn *c, agec_status st,
                                    const agec_error *err, int64_t now, agec__breaker_change *ch)
{
    ch->from = ch->to = p->breaker.state;
    if (st == AGEC_OK) {
        p->n.opened++;
        agec__breaker_success(&p->breaker, c->probe, ch);
        p->last_connect_failed = false;
        p->bg_backoff_ms = p->cfg.c.reconnect_backoff_initial_ms;
        p->bg_retry_at = 0;
        c->created_us = now;
        if (p->cfg.c.max_lifetime_ms > 0) {
            int64_t life = (int64_t)p->cfg.c.max_lifetime_ms * 1000;
            uint64_t jit = (uint64_t)((double)life * p->cfg.c.lifetime_jitter_pct / 100.0);
            c->expires_us = now + life - (int64_t)agec__pool_rand(p, jit + 1);
        }
    } else if (st == AGEC_ERR_CANCELLED) {
        if (c->probe)
            p->breaker.probing = false;
    } else {
        p->n.connect_failures++;
        /* A configuration error (the database does not exist) says nothing
         * about the server's health: not counted toward the breaker. */
        if (st == AGEC_ERR_CONFIG) {
            if (c->probe)
                p->breaker.probing = false;
        } else {
            agec__breaker_failure(&p->breaker, c->probe, now, ch);
        }
        p->last_connect_failed = true;
        if (err != NULL)
            p->last_connect_error = *err;
        p->bg_retry_at = now + agec__backoff_us(p, p->bg_backoff_ms);
        p->bg_backoff_ms = agec__backoff_next(p, p->bg_backoff_ms);
    }
    c->probe = false;
    atomic_store_explicit(&p->breaker_pub, (int)p->breaker.state, memory_order_relaxed);
}

/* ---- open ----------------------------------------------------------------- */

agec_status agec__ablate_parse(const char *spec, unsigned *out, agec_error *err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = { { "none", 0 },
                  { "wake_on_miss", AGEC__ABLATE_WAKE_ON_MISS },
                  { "affinity", AGEC__ABLATE_AFFINITY },
                  { "giveback", AGEC__ABLATE_GIVEBACK } };
    *out = 0;
    for (const char *s = spec; s != NULL && *s != '\0';) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] &&
               (strlen(names[i].name) != n || strncmp(s, names[i].name, n) != 0))
            i++;
        if (i == sizeof names / sizeof names[0])
            return agec__error_set(err, AGEC_ERR_CONFIG,
                                   "AGEC_POOL_ABLATE: unknown mechanism '%.*s' (benchmark-only "
                                   "switch: wake_on_miss, affinity, giveback, none)",
                                   (int)(n < 40 ? n : 40), s);
        *out |= names[i].bit;
        s += n + (s[n] == ',');
    }
    return AGEC_OK;
}

agec_status agec_pool_open(const agec_pool_config *cfg, agec_pool **out, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is NULL", cfg ? "out" : "cfg");
    unsigned ablate; /* benchmark-only: see agec__ablate_parse */
    agec_status st = agec__ablate_parse(getenv("AGEC_POOL_ABLATE"), &ablate, err);
    if (st != AGEC_OK)
        return st;
    agec_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    st = agec__config_copy(&p->cfg, cfg, err);
    if (st != AGEC_OK) {
        free(p);
        return st;
    }
    pthread_mutex_init(&p->mu, NULL);
    agec__cond_init_monotonic(&p->state_cond);
    agec__cond_init_monotonic(&p->maint_cond);
    agec__breaker_init(&p->breaker, p->cfg.c.breaker_threshold, p->cfg.c.breaker_open_ms);
    atomic_init(&p->breaker_pub, (int)AGEC_BREAKER_CLOSED);
    atomic_init(&p->shutting_down, false);
    atomic_init(&p->visitors, 0);
    p->fair_wait_us = (int64_t)p->cfg.c.fair_wait_ms * 1000;
    p->ablate = ablate;
    p->bg_backoff_ms = p->cfg.c.reconnect_backoff_initial_ms;
    p->rng = ((uint64_t)agec__now_us() * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)p;
    if (p->rng == 0)
        p->rng = 1;
    p->nonce = agec__pool_nonce_new(p);
    p->refs = 1;
    st = agec__maint_start(p, err);
    if (st != AGEC_OK) {
        agec__pool_free(p);
        return st;
    }
    *out = p;
    return AGEC_OK;
}
