/* The pool: open, acquire, and the state transitions (release: release.c,
 * close: close.c). */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
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
static int backoff_next(const agec_pool *p, int delay_ms)
{
    int cap = p->cfg.c.reconnect_backoff_max_ms;
    return delay_ms >= cap / 2 ? cap : delay_ms * 2;
}

static void cond_init_monotonic(pthread_cond_t *cond)
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
static void waiter_unsignal(agec_pool *p, waiter *w)
{
    if (w->signalled) {
        w->signalled = false;
        p->nsignalled--;
    }
}

/* The oldest waiter has waited fair_wait_ms: it is served before anyone
 * else (direct hand-off, no barging). Always so with fair_wait_ms = 0. */
static bool head_starving(const agec_pool *p, int64_t now)
{
    const waiter *h = p->wait_head;
    return h != NULL && (p->fair_wait_us == 0 || now - h->enq_us >= p->fair_wait_us);
}

static void waiter_enqueue(agec_pool *p, waiter *w)
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

void agec__waiter_dequeue(agec_pool *p, waiter *w)
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
    waiter_unsignal(p, w);
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
/* pool and conn are addresses, only ever compared: either may have been
 * freed since. */
typedef struct release_note {
    uintptr_t pool;     /* the pool of the thread's last release */
    uintptr_t conn;     /* the connection it released */
    int64_t at_us;      /* when, if there were waiters (precise clock) */
    unsigned quick;     /* quick returns in a row to that pool, saturating at 3 */
    bool pending;       /* released, not yet back */
    bool deferred;      /* and that release deferred a wake-up */
    uint64_t defer_gen; /* p->defer_gen then: the deferral is still counted while equal */
} release_note;

static _Thread_local release_note t_release;

/* Called at the start of an acquire, without the lock: was this thread
 * back from a deferring release of p? */
static bool release_note_return(const agec_pool *p)
{
    release_note *t = &t_release;
    if (!t->pending || t->pool != (uintptr_t)p)
        return false;
    t->pending = false;
    if (agec__now_us() - t->at_us <= AGEC__QUICK_RETURN_US)
        t->quick += t->quick < 3;
    else
        t->quick = 0;
    bool was = t->deferred;
    t->deferred = false;
    return was;
}

/* A release of c with waiters and no starving head: defer their wake-up?
 * [mu] */
static bool release_defers_wake(agec_pool *p)
{
    release_note *t = &t_release;
    int64_t now = agec__now_us();
    t->at_us = now;
    t->pending = true;
    /* Not while the maintenance thread is away from its timer. */
    t->deferred = t->quick >= 2 && !p->maint_busy;
    if (!t->deferred)
        return false;
    p->deferred++;
    t->defer_gen = p->defer_gen;
    p->n.wakeups_deferred++;
    p->deferred_since_tick = true;
    if (p->defer_tick_at == 0) {
        p->defer_tick_at = now + AGEC__DEFER_TICK_US;
        agec__maint_poke(p, p->defer_tick_at);
    }
    return true;
}

/* The idle connection an acquire takes: the one this thread released last
 * if it is near the head of the idle list, else the head (the most recently
 * used). A thread that keeps its connection keeps its server process: the
 * pairs of client thread and server process stay the same, as with
 * dedicated connections, and the kernel keeps each pair's wake-ups on one
 * CPU (a shared LIFO list instead shuffles the pairs on every release: 15%
 * fewer queries/s at 4 threads on a pool of 4, bench_contention). [mu] */
static agec_conn *idle_pick(const agec_pool *p)
{
    agec_conn *c = p->idle.head;
    const release_note *t = &t_release;
    if (t->pool != (uintptr_t)p || (uintptr_t)c == t->conn)
        return c;
    int k = 0;
    for (agec_conn *x = c->next; x != NULL && k < 3; x = x->next, k++)
        if ((uintptr_t)x == t->conn)
            return x;
    return c;
}

static void defer_end(agec_pool *p, int64_t now)
{
    if (p->deferred > 0) {
        p->n.wakeups_deferred_late += (uint64_t)p->deferred;
        p->deferred = 0;
        p->defer_gen++; /* the deferrals counted so far are over */
        agec__pool_dispatch(p, now);
    }
}

int64_t agec__pool_defer_tick(agec_pool *p, int64_t now)
{
    if (p->defer_tick_at == 0)
        return AGEC__NEVER;
    if (now < p->defer_tick_at)
        return p->defer_tick_at;
    defer_end(p, now);
    /* Deferrals go on (a contended pool): tick again, so that they find
     * the tick armed and need not wake this thread (one wake-up per tick
     * instead of two). Else stop. */
    p->defer_tick_at = p->deferred_since_tick ? now + AGEC__DEFER_TICK_US : 0;
    p->deferred_since_tick = false;
    return p->defer_tick_at != 0 ? p->defer_tick_at : AGEC__NEVER;
}

void agec__pool_defer_suspend(agec_pool *p, int64_t now)
{
    p->maint_busy = true;
    defer_end(p, now);
}

/* ---- state transitions (all under p->mu) ---------------------------------- */

/* Give c straight to the queued waiter w (dequeued, woken). [mu] */
static void hand_to(agec_pool *p, agec_conn *c, waiter *w, int64_t now)
{
    agec__conn_move(p, c, CONN_IN_USE);
    /* Nobody holds it until w runs and records its borrow (acq_mark): the
     * leak scan must not report it under the previous borrower's name. */
    c->leak_reported = true;
    c->file = NULL;
    w->handed = c;
    agec__waiter_dequeue(p, w);
    pthread_cond_signal(&w->cond);
    /* w may have been woken for another idle connection or a free slot:
     * that wake-up left with it, so pass it on (the spin model's
     * BRIEF_HANDOFF and BRIEF_GIVEBACK variants are this bug: a lost
     * wake-up). */
    agec__pool_dispatch(p, now);
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
static bool give_back(agec_pool *p, agec_conn *c, int64_t now)
{
    for (waiter *o = p->wait_head; o != NULL; o = o->next) {
        if (o->last_conn == (uintptr_t)c) {
            p->n.givebacks++;
            hand_to(p, c, o, now);
            return true;
        }
    }
    return false;
}

void agec__pool_make_available(agec_pool *p, agec_conn *c, int64_t now)
{
    c->last_used_us = now;
    release_note *t = &t_release;
    if (t->pool != (uintptr_t)p) {
        t->pool = (uintptr_t)p;
        t->quick = 0;
        t->pending = t->deferred = false;
    }
    t->conn = (uintptr_t)c;
    waiter *w = p->wait_head;
    bool open = !atomic_load_explicit(&p->closing, memory_order_relaxed);
    if (w != NULL && open && head_starving(p, now)) {
        /* Direct hand-off to the starving oldest waiter: no newcomer can
         * take this one, and exactly one thread wakes. */
        c->lent = true;
        p->n.handoffs++;
        hand_to(p, c, w, now);
        return;
    }
    bool lent = c->lent;
    c->lent = false;
    if (lent && w != NULL && open && give_back(p, c, now))
        return;
    agec__conn_move(p, c, CONN_IDLE);
    /* The maintenance thread may sleep with nothing to do (all were in use):
     * make sure it wakes for this one's idle check and idle timeout. */
    int64_t when = now + AGEC__IDLE_CHECK_US;
    if (p->cfg.c.idle_timeout_ms > 0 && agec__pool_live(p) > p->cfg.c.min)
        when = agec__min64(when, now + (int64_t)p->cfg.c.idle_timeout_ms * 1000);
    agec__maint_poke(p, when);
    if (w == NULL || !release_defers_wake(p))
        agec__pool_dispatch(p, now);
}

/* Would the breaker let a connect start now (agec__breaker_allow not DENY)? */
static bool breaker_admits(const agec__breaker *b, int64_t now)
{
    if (b->state == AGEC_BREAKER_OPEN)
        return now >= agec__breaker_reopen_at(b);
    return b->state == AGEC_BREAKER_CLOSED || !b->probing;
}

static int may_come_back(const agec_pool *p);

void agec__pool_dispatch(agec_pool *p, int64_t now)
{
    if (p->wait_head == NULL || atomic_load_explicit(&p->closing, memory_order_relaxed))
        return;
    int idle = p->idle.count - p->deferred; /* deferred ones: their thread is coming back */
    int free = p->cfg.c.max - agec__pool_total(p);
    /* A free slot the breaker will not let anyone connect into is nothing
     * to wake a waiter for, while connections may come back: the waiter
     * would fail fast, and the next one, and so on (waiters wait for those
     * instead, acq_breaker_wait). With nothing to come back, waking them
     * lets them fail fast. */
    if (free > 0 && !breaker_admits(&p->breaker, now) && may_come_back(p) > 0)
        free = 0;
    int avail = idle + free;
    if (avail <= 0)
        return;
    waiter *h = p->wait_head;
    if (head_starving(p, now)) {
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

void agec__pool_detach(agec_pool *p, agec_conn *c, agec_close_reason reason)
{
    agec__conn_move(p, c, CONN_CLOSING);
    p->n.closed[reason]++;
    /* With the breaker open, the last connection that could come back may
     * just have gone: waiters then fail fast (dispatch counts the free
     * slots again). The spin model found this wake-up missing. */
    if (p->breaker.state != AGEC_BREAKER_CLOSED)
        agec__pool_dispatch(p, agec__now_coarse_us());
}

void agec__pool_closed(agec_pool *p, agec_conn *c)
{
    agec__list_remove(&p->closing_list, c);
    agec__pool_dispatch(p, agec__now_coarse_us());
    if (atomic_load_explicit(&p->closing, memory_order_relaxed))
        pthread_cond_broadcast(&p->state_cond);
    else if (agec__pool_total(p) < p->cfg.c.min)
        agec__maint_poke(p, 0);
}

agec_conn *agec__pool_reserve(agec_pool *p, int64_t now)
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

void agec__pool_open_failed(agec_pool *p, agec_conn *c, int64_t now)
{
    int fd = c->reap_fd;
    c->reap_fd = -1;
    if (fd >= 0 && !atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        /* A server process may have started for it (a connect cut short
         * during authentication or set-up): keep the slot until it is gone
         * (the maintenance thread looks at once, outside the lock). */
        agec__conn_move(p, c, CONN_CLOSING);
        agec__reap_start(p, c, fd, agec__deadline_after(now, p->cfg.c.connect_timeout_ms));
        return;
    }
    if (fd >= 0)
        close(fd);
    agec__list_remove(&p->opening, c);
    free(c);
    agec__pool_dispatch(p, now);
}

bool agec__pool_unref(agec_pool *p)
{
    return --p->refs == 0;
}

/* Take a reference if the pool is alive; returns with p->mu held if so.
 * `visitors` keeps close from freeing p while we wait for the lock. */
static bool pool_enter_locked(agec_pool *p)
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

bool agec__pool_enter(agec_pool *p)
{
    if (!pool_enter_locked(p))
        return false;
    pthread_mutex_unlock(&p->mu);
    return true;
}

void agec__pool_leave(agec_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool last = agec__pool_unref(p);
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

void agec__pool_connect_done(agec_pool *p, agec_conn *c, agec_status st, const agec_error *err,
                             int64_t now, agec__breaker_change *ch)
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
        p->bg_backoff_ms = backoff_next(p, p->bg_backoff_ms);
    }
    c->probe = false;
    atomic_store_explicit(&p->breaker_pub, (int)p->breaker.state, memory_order_relaxed);
}

/* ---- open ----------------------------------------------------------------- */

agec_status agec_pool_open(const agec_pool_config *cfg, agec_pool **out, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is NULL", cfg ? "out" : "cfg");
    agec_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    agec_status st = agec__config_copy(&p->cfg, cfg, err);
    if (st != AGEC_OK) {
        free(p);
        return st;
    }
    pthread_mutex_init(&p->mu, NULL);
    cond_init_monotonic(&p->state_cond);
    cond_init_monotonic(&p->maint_cond);
    agec__breaker_init(&p->breaker, p->cfg.c.breaker_threshold, p->cfg.c.breaker_open_ms);
    atomic_init(&p->breaker_pub, (int)AGEC_BREAKER_CLOSED);
    atomic_init(&p->closing, false);
    atomic_init(&p->visitors, 0);
    p->fair_wait_us = (int64_t)p->cfg.c.fair_wait_ms * 1000;
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

/* ---- acquire -------------------------------------------------------------- */

/* The longest holders of an exhausted pool, longest first: where each
 * borrow was acquired, how long it is held, whether a statement runs and
 * since when. Only on the timeout path: the fast path pays nothing. [mu] */
#define HOLDERS_NAMED 3
static void describe_holders(agec_pool *p, int64_t now, char *buf, size_t cap)
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
static agec_status timeout_error(agec_pool *p, agec_error *err, int64_t waited_us,
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
        describe_holders(p, agec__now_us(), err->detail, sizeof err->detail);
    return AGEC_ERR_POOL_EXHAUSTED;
}

static agec_status breaker_error(agec_pool *p, agec_error *err, int64_t now)
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
} acq;

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
static agec_status acq_open(acq *a, agec_conn *c, agec__breaker_change *pending, agec_error *err)
{
    agec_pool *p = a->p;
    pthread_mutex_unlock(&p->mu);
    agec__emit_breaker(p, pending);
    int64_t own = agec__deadline_after(a->now, p->cfg.c.connect_timeout_ms);
    int64_t cdl = agec__min64(acq_io_deadline(a), own);
    agec_error attempt = AGEC_ERROR_INIT;
    bool cut_short;
    agec_status st = agec__pool_connect(p, c, cdl, own, &p->closing, &cut_short, &attempt);
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
    agec__pool_connect_done(p, c, st, &a->cerr, a->now, &ch);
    if (st == AGEC_ERR_CANCELLED)
        st = AGEC_ERR_UNREACHABLE;
    if (ch.from != ch.to) {
        pthread_mutex_unlock(&p->mu);
        agec__emit_breaker(p, &ch);
        pthread_mutex_lock(&p->mu);
    }
    if (st == AGEC_OK) {
        if (atomic_load_explicit(&p->closing, memory_order_relaxed)) {
            agec__pool_detach(p, c, AGEC_CLOSE_SHUTDOWN);
            pthread_mutex_unlock(&p->mu);
            agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
            pthread_mutex_lock(&p->mu);
            return agec__error_set(err, AGEC_ERR_POOL_CLOSED, "pool is closing");
        }
        c->last_used_us = a->now;
        agec__conn_move(p, c, CONN_IN_USE);
        return AGEC_OK;
    }
    agec__pool_open_failed(p, c, a->now);
    a->tried_connect = true;
    if (st == AGEC_ERR_AUTH || st == AGEC_ERR_INIT || st == AGEC_ERR_NO_MEMORY ||
        st == AGEC_ERR_CONFIG) {
        if (err != NULL)
            agec__error_copy(err, &a->cerr);
        return st; /* retrying cannot help */
    }
    /* Retry within the deadline after a backoff of our own. */
    a->w.retry_at = a->now + agec__backoff_us(p, a->backoff_ms);
    a->backoff_ms = backoff_next(p, a->backoff_ms);
    return AGEC_ERR_UNREACHABLE;
}

/* Check an idle connection before handing it out. Called and returns with
 * the lock held; 1 if c may be used, 0 if it was closed (the check failed),
 * -1 if this acquire's deadline cut the check short: c then went to
 * `checking`, where the maintenance thread finishes the check within its
 * own validation_timeout_ms (a check that did not finish is not a failed
 * check, and the connection is not lost). */
static int acq_validate(acq *a, agec_conn *c)
{
    agec_pool *p = a->p;
    p->n.validations++;
    pthread_mutex_unlock(&p->mu);
    agec_error verr = AGEC_ERROR_INIT;
    int64_t own = agec__deadline_after(a->now, p->cfg.c.validation_timeout_ms);
    int64_t vdl = agec__min64(acq_io_deadline(a), own);
    agec_status st = agec__session_validate(c->pg, vdl, &p->closing, &verr);
    a->now = agec__now_us();
    if (st == AGEC_OK) {
        pthread_mutex_lock(&p->mu);
        return 1;
    }
    if (st == AGEC_ERR_TIMEOUT && vdl < own && PQstatus(c->pg) == CONNECTION_OK) {
        pthread_mutex_lock(&p->mu);
        if (atomic_load_explicit(&p->closing, memory_order_relaxed)) {
            /* The maintenance thread may have finished its last pass over
             * `checking` already: nobody would close it. */
            agec__pool_detach(p, c, AGEC_CLOSE_SHUTDOWN);
            pthread_mutex_unlock(&p->mu);
            agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
            pthread_mutex_lock(&p->mu);
            return -1;
        }
        c->check_deadline_us = own;
        agec__conn_move(p, c, CONN_CHECKING);
        agec__maint_poke(p, a->now);
        return -1;
    }
    if (st != AGEC_ERR_CANCELLED)
        agec__emit_simple(p, AGEC_EV_VALIDATION_FAILED, c->id, st, verr.sqlstate, verr.message);
    pthread_mutex_lock(&p->mu);
    if (st != AGEC_ERR_CANCELLED)
        p->n.validation_failures++;
    agec_close_reason why = st == AGEC_ERR_CANCELLED ? AGEC_CLOSE_SHUTDOWN : AGEC_CLOSE_VALIDATION;
    agec__pool_detach(p, c, why);
    pthread_mutex_unlock(&p->mu);
    agec__conn_destroy(p, c, why, why == AGEC_CLOSE_SHUTDOWN ? 0 : acq_io_deadline(a));
    pthread_mutex_lock(&p->mu);
    return 0;
}

/* Wait in the queue until woken, handed something, or the deadline. [mu] */
static void acq_wait(acq *a)
{
    agec_pool *p = a->p;
    if (!a->w.queued) {
        if (!a->w.cond_ready) {
            cond_init_monotonic(&a->w.cond);
            a->w.cond_ready = true;
        }
        if (a->w.enq_us == 0) {
            a->w.enq_us = a->now;
            a->w.last_conn = t_release.pool == (uintptr_t)p ? t_release.conn : 0;
        }
        waiter_enqueue(p, &a->w);
    }
    /* What we could not use may be someone else's (a starving head's). */
    agec__pool_dispatch(p, a->now);
    int64_t until = a->deadline;
    if (a->w.retry_at > a->now)
        until = agec__min64(until, a->w.retry_at);
    if (!a->w.signalled && a->w.handed == NULL && a->w.fail == AGEC_OK)
        agec__pool_wait_until(&a->w.cond, &p->mu, until);
    waiter_unsignal(p, &a->w);
    a->now = agec__now_us();
}

/* Connections that may still become available: borrowed, being checked,
 * being opened. [mu] */
static int may_come_back(const agec_pool *p)
{
    return p->in_use.count + p->checking.count + p->opening.count;
}

/* The breaker denies a connect to an acquire that already queued (the
 * pool was exhausted: it waits for a connection to come back), and
 * connections may come back: wait for one (within the deadline) instead of
 * failing fast, looking again when the open period ends or a probe may
 * have ended; else one freed slot would fail the whole queue, one waiter
 * after another. A newcomer still fails fast (the breaker's promise), and
 * so does everyone when nothing can come back. [mu] */
#define BREAKER_RECHECK_US 50000
static bool acq_breaker_wait(acq *a)
{
    agec_pool *p = a->p;
    if (a->w.enq_us == 0 || may_come_back(p) == 0 || a->now >= a->deadline)
        return false;
    a->w.retry_at = agec__min64(agec__breaker_reopen_at(&p->breaker), a->now + BREAKER_RECHECK_US);
    return true;
}

/* May this acquire take an idle connection or a free slot now? Everyone
 * may while the oldest waiter is not starving (barging); once it is, only
 * it. [mu] */
static bool acq_may_take(const acq *a, int64_t now)
{
    const agec_pool *p = a->p;
    if (p->wait_head == NULL || p->wait_head == &a->w)
        return true;
    return !head_starving(p, now);
}

/* Record the borrow on c as soon as it is ours, before any check: the leak
 * scan must never see the previous borrower's file:line on it. While the
 * acquire still checks it (`checking`), the scan skips it: nobody holds it
 * yet (leak_reported set means "nothing to report"). [mu] */
static void acq_mark(agec_conn *c, int64_t now, const char *file, int line, const char *func,
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
static void acq_leave(acq *a)
{
    agec_pool *p = a->p;
    agec__waiter_dequeue(p, &a->w);
    if (a->w.cond_ready)
        pthread_cond_destroy(&a->w.cond);
    agec__pool_dispatch(p, a->now);
    if (--p->acquiring == 0 && atomic_load_explicit(&p->closing, memory_order_relaxed))
        pthread_cond_broadcast(&p->state_cond);
}

agec_status agec_pool_acquire_at(agec_pool *pool, int timeout_ms, agec_conn **out, agec_error *err,
                                 const char *file, int line, const char *func)
{
    if (out != NULL)
        *out = NULL;
    if (pool == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is NULL", pool ? "out" : "pool");
    acq a;
    a.p = pool;
    /* Field by field: the condition variable is set up only if we wait. */
    a.w.cond_ready = a.w.queued = a.w.signalled = false;
    a.w.handed = NULL;
    a.w.fail = AGEC_OK;
    a.w.retry_at = 0;
    a.w.enq_us = 0;
    a.w.last_conn = 0;
    a.w.prev = a.w.next = NULL;
    a.timeout_ms = timeout_ms < 0 ? pool->cfg.c.acquire_timeout_ms : timeout_ms;
    a.precise = false;
    a.start = a.now = agec__now_coarse_us();
    a.deadline = agec__deadline_after(a.start, a.timeout_ms);
    a.backoff_ms = pool->cfg.c.reconnect_backoff_initial_ms;
    a.tried_connect = false;
    a.cut_short = false;
    agec_pool *p = pool;
    agec_error local; /* filled only on failure: no cost on the fast path */
    agec_error *e = err != NULL ? err : &local;
    agec_status st = AGEC_OK;
    agec_conn *c = NULL;
    bool timed_out = false;

    bool returned = release_note_return(p);
    if (!pool_enter_locked(p))
        return agec__error_set(e, AGEC_ERR_POOL_CLOSED, "pool is closed");
    /* Ours, unless the tick ended it already (then the count is other
     * threads' deferrals): we take it below, or dispatch passes it on. */
    if (returned && p->deferred > 0 && t_release.defer_gen == p->defer_gen)
        p->deferred--;
    p->acquiring++;
    a.w.ticket = ++p->next_ticket;
    for (;;) {
        if (a.w.handed != NULL) {
            c = a.w.handed; /* already moved to in_use and dequeued by the giver */
            a.w.handed = NULL;
        } else if (a.w.fail != AGEC_OK) {
            st = agec__error_set(e, a.w.fail, "pool is closing");
            break;
        } else if (atomic_load_explicit(&p->closing, memory_order_relaxed)) {
            st = agec__error_set(e, AGEC_ERR_POOL_CLOSED, "pool is closing");
            break;
        } else {
            bool mine = acq_may_take(&a, a.now);
            if (mine && p->idle.count > 0) {
                agec__waiter_dequeue(p, &a.w);
                c = idle_pick(p);
                agec__conn_move(p, c, CONN_IN_USE);
                agec__pool_dispatch(p, a.now); /* more for the next waiter? */
                if (c->expires_us <= a.now) {
                    /* Past its lifetime (the maintenance thread has not
                     * retired it yet): never handed out. */
                    agec__pool_detach(p, c, AGEC_CLOSE_LIFETIME);
                    pthread_mutex_unlock(&p->mu);
                    agec__conn_destroy(p, c, AGEC_CLOSE_LIFETIME, 0);
                    pthread_mutex_lock(&p->mu);
                    c = NULL;
                    continue;
                }
            } else if (mine && agec__pool_total(p) < p->cfg.c.max && a.now >= a.w.retry_at) {
                acq_precise(&a);
                agec__breaker_change ch;
                agec__breaker_verdict v = agec__breaker_allow(&p->breaker, a.now, &ch);
                atomic_store_explicit(&p->breaker_pub, (int)p->breaker.state, memory_order_relaxed);
                agec__waiter_dequeue(p, &a.w);
                if (v != AGEC__BREAKER_DENY && p->wait_head != NULL &&
                    agec__pool_total(p) + 1 < p->cfg.c.max)
                    agec__pool_dispatch(p, a.now); /* another free slot: the next waiter's */
                if (v == AGEC__BREAKER_DENY && acq_breaker_wait(&a)) {
                    acq_wait(&a);
                    continue;
                }
                if (v == AGEC__BREAKER_DENY) {
                    if (a.tried_connect) {
                        /* Our own attempts opened the breaker: report what they saw. */
                        st = timeout_error(p, e, a.now - a.start, true, a.cut_short, &a.cerr);
                    } else {
                        p->n.breaker_fast_fails++;
                        st = breaker_error(p, e, a.now);
                    }
                    break;
                }
                agec_conn *nc = agec__pool_reserve(p, a.now);
                if (nc == NULL) {
                    if (v == AGEC__BREAKER_PROBE)
                        p->breaker.probing = false;
                    st = agec__error_set(e, AGEC_ERR_NO_MEMORY, "out of memory");
                    break;
                }
                nc->probe = v == AGEC__BREAKER_PROBE;
                st = acq_open(&a, nc, &ch, e);
                if (st == AGEC_OK) {
                    c = nc;
                } else if (st == AGEC_ERR_UNREACHABLE) {
                    st = AGEC_OK;
                    if (a.now >= a.deadline) {
                        timed_out = true;
                        st = timeout_error(p, e, a.now - a.start, true, a.cut_short, &a.cerr);
                        break;
                    }
                    continue;
                } else {
                    break;
                }
            } else {
                acq_precise(&a);
                if (a.now >= a.deadline) {
                    timed_out = true;
                    st =
                        timeout_error(p, e, a.now - a.start, a.tried_connect, a.cut_short, &a.cerr);
                    break;
                }
                acq_wait(&a);
                continue;
            }
        }
        /* c is ours (in_use). Check it if it sat idle long enough to go stale. */
        acq_mark(c, a.now, file, line, func, true);
        int vms = p->cfg.c.validate_idle_ms;
        if (vms == 0 || (vms > 0 && a.now - c->last_used_us > (int64_t)vms * 1000)) {
            acq_precise(&a);
            int ok = acq_validate(&a, c);
            if (ok <= 0) {
                c = NULL;
                if (ok < 0) {
                    /* Not exhausted: the server answered the check too slowly. */
                    timed_out = true;
                    st = agec__error_set(
                        e, AGEC_ERR_UNREACHABLE,
                        "no connection after %ld ms: the acquire's deadline passed "
                        "while an idle connection was being checked (the server "
                        "answers slower than that; the check goes on in the "
                        "background within validation_timeout_ms %d)",
                        (long)((a.now - a.start) / 1000), p->cfg.c.validation_timeout_ms);
                    break;
                }
                if (a.now >= a.deadline) {
                    /* No new check past the deadline: it could only be cut short too. */
                    timed_out = true;
                    st =
                        timeout_error(p, e, a.now - a.start, a.tried_connect, a.cut_short, &a.cerr);
                    break;
                }
                continue;
            }
        }
        break;
    }

    if (c != NULL && atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        /* close started while we validated: do not hand out a connection. */
        agec__pool_detach(p, c, AGEC_CLOSE_SHUTDOWN);
        pthread_mutex_unlock(&p->mu);
        agec__conn_destroy(p, c, AGEC_CLOSE_SHUTDOWN, 0);
        pthread_mutex_lock(&p->mu);
        c = NULL;
        st = agec__error_set(e, AGEC_ERR_POOL_CLOSED, "pool is closing");
    }
    if (c != NULL) {
        /* Success: the acquire's reference now belongs to the borrowed conn. */
        acq_mark(c, a.now, file, line, func, false);
        c->borrow_id = ++p->next_borrow_id;
        p->n.acquires++;
        agec__hist_record(&p->wait_hist, a.now - a.start);
        if (p->cfg.c.leak_threshold_ms > 0)
            agec__maint_poke(p, a.now + (int64_t)p->cfg.c.leak_threshold_ms * 1000);
        acq_leave(&a);
        pthread_mutex_unlock(&p->mu);
        *out = c;
        return AGEC_OK;
    }
    if (timed_out)
        p->n.acquire_timeouts++;
    else if (st != AGEC_ERR_BREAKER_OPEN || a.tried_connect)
        p->n.acquire_errors++;
    if (timed_out) {
        /* Out of the queue before the lock goes: a release in the meantime
         * must not hand its connection to a caller that is leaving. */
        agec__waiter_dequeue(p, &a.w);
        pthread_mutex_unlock(&p->mu);
        agec_pool_event ev = { .type = AGEC_EV_ACQUIRE_TIMEOUT,
                               .warning = true,
                               .status = st,
                               .sqlstate = e->sqlstate,
                               .message = e->message,
                               .detail = e->detail };
        agec__emit(p, &ev);
        pthread_mutex_lock(&p->mu);
    }
    acq_leave(&a);
    bool last = agec__pool_unref(p);
    pthread_mutex_unlock(&p->mu);
    if (last)
        agec__pool_free(p);
    return st;
}
