/* Release: bring a borrowed connection back to a reusable state and make it
 * available to the next caller, or close it (broken, shutting down, past its
 * lifetime). The state transitions it uses are in pool.c. */
#include <stdbool.h>
#include <stdlib.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
#include "session/clock.h"

/* Bring c back to a reusable state; -1 if it may go back, else a close reason. */
static int release_cleanup(agec_pool *p, agec_conn *c, int64_t *now)
{
    int64_t dl = agec__deadline_after(*now, p->cfg.c.reset_timeout_ms);
    agec__cleanup cl = agec__session_cleanup(c->pg, c->cancel, dl);
    if (cl == AGEC__CLEAN_BROKEN)
        return AGEC_CLOSE_BROKEN;
    if (cl == AGEC__CLEAN_FAILED)
        return AGEC_CLOSE_RESET;
    if (p->cfg.c.reset_query != NULL) {
        /* A reset that drops prepared statements (DISCARD ALL, DEALLOCATE)
         * drops what upper layers cached in the session; any other (RESET
         * ALL, say) leaves them, and so does the cache: dropping it would
         * prepare new copies on every borrow, kept by the server for the
         * connection's lifetime. */
        if (p->cfg.reset_drops_statements)
            agec__conn_drop_ext(c);
        agec_status st = agec__session_exec(c->pg, p->cfg.c.reset_query, dl, NULL);
        if (st == AGEC_OK)
            st = agec__session_reapply(c->pg, &p->cfg.init, dl, NULL);
        if (st != AGEC_OK)
            return PQstatus(c->pg) == CONNECTION_OK ? AGEC_CLOSE_RESET : AGEC_CLOSE_BROKEN;
        *now = agec__now_us();
    }
    return -1;
}

/* What becomes of c: -1 if it may go back to the pool, else the reason to
 * close it. Runs the cleanup (I/O) if its session needs one. No lock held;
 * *now is moved on past any I/O. */
static int release_verdict(agec_pool *p, agec_conn *c, bool broken, int64_t *now)
{
    int reason = -1;
    if (broken || c->broken || PQstatus(c->pg) != CONNECTION_OK)
        reason = AGEC_CLOSE_BROKEN;
    else if (atomic_load_explicit(&p->shutting_down, memory_order_relaxed))
        reason = AGEC_CLOSE_SHUTDOWN;
    else if (PQtransactionStatus(c->pg) != PQTRANS_IDLE || p->cfg.c.reset_query != NULL ||
             agec__cancel_key_busy(c->cancel)) {
        *now = agec__now_us(); /* the cleanup's deadline */
        reason = release_cleanup(p, c, now);
        if (reason >= 0)
            *now = agec__now_us();
    }
    if (reason < 0 && *now >= c->expires_us)
        reason = AGEC_CLOSE_LIFETIME;
    return reason;
}

/* Count the release and, if this borrow was reported as a leak, fill *ev
 * with its "returned" event (sent by the caller after unlocking: c may be
 * someone else's by then, so its borrow is copied now). True if so. [mu] */
static bool release_account_locked(agec_pool *p, agec_conn *c, int64_t now, agec_pool_event *ev)
{
    p->n.releases++;
    agec__hist_record(&p->use_hist, now - c->acquired_us);
    if (!c->leak_reported)
        return false;
    p->n.leaks_returned++;
    *ev = (agec_pool_event){ .type = AGEC_EV_LEAK_RETURNED,
                             .warning = true,
                             .conn_id = c->id,
                             .file = c->file,
                             .line = c->line,
                             .func = c->func,
                             .held_ms = (now - c->acquired_us) / 1000,
                             .message = "a connection reported as leaked was released" };
    return true;
}

/* Put c back (idle, or to a waiter), or detach it to be closed for
 * `reason` (-1: it was reusable, but the pool is shutting down). Returns
 * the close reason, -1 if c went back. [mu] */
static int release_settle_locked(agec_pool *p, agec_conn *c, int reason, int64_t now)
{
    if (reason < 0 && !atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        agec__pool_make_available_locked(p, c, now);
        return -1;
    }
    if (reason < 0)
        reason = AGEC_CLOSE_SHUTDOWN;
    agec__pool_detach_locked(p, c, (agec_close_reason)reason);
    return reason;
}

/* The release: verdict and cleanup without the lock, the state change under
 * it, then (lock dropped) the leak event, the close and the borrow's
 * reference. The fast path (clean, no leak report) locks once. */
static void release_impl(agec_conn *c, bool broken)
{
    agec_pool *p = c->pool;
    int64_t now = agec__now_coarse_us(); /* last use and lifetime: ms-scale */
    /* The whole release, a close included, within reset_timeout_ms. */
    int64_t budget = agec__deadline_after(now, p->cfg.c.reset_timeout_ms);
    int reason = release_verdict(p, c, broken, &now);

    agec_pool_event leak;
    pthread_mutex_lock(&p->mu);
    bool leak_back = release_account_locked(p, c, now, &leak);
    reason = release_settle_locked(p, c, reason, now);
    if (reason < 0 && !leak_back) {
        agec__pool_unref_locked(p); /* never the last: the owner holds one until close */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_unlock(&p->mu);

    if (leak_back)
        agec__emit(p, &leak);
    if (reason >= 0)
        agec__conn_destroy(p, c, (agec_close_reason)reason, budget);
    agec__pool_leave(p); /* the borrow's reference; frees the pool if it was the last */
}

void agec_conn_release(agec_conn *conn)
{
    if (conn != NULL)
        release_impl(conn, false);
}

void agec_conn_release_broken(agec_conn *conn)
{
    if (conn != NULL)
        release_impl(conn, true);
}
