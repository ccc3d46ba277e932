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

static void release_impl(agec_conn *c, bool broken)
{
    agec_pool *p = c->pool;
    int64_t now = agec__now_coarse_us(); /* last use and lifetime: ms-scale */
    /* The whole release, a close included, within reset_timeout_ms. */
    int64_t budget = agec__deadline_after(now, p->cfg.c.reset_timeout_ms);
    int reason = -1;
    if (broken || c->broken || PQstatus(c->pg) != CONNECTION_OK)
        reason = AGEC_CLOSE_BROKEN;
    else if (atomic_load_explicit(&p->shutting_down, memory_order_relaxed))
        reason = AGEC_CLOSE_SHUTDOWN;
    else if (PQtransactionStatus(c->pg) != PQTRANS_IDLE || p->cfg.c.reset_query != NULL ||
             agec__cancel_key_busy(c->cancel)) {
        now = agec__now_us(); /* the cleanup's deadline */
        reason = release_cleanup(p, c, &now);
        if (reason >= 0)
            now = agec__now_us();
    }
    if (reason < 0 && now >= c->expires_us)
        reason = AGEC_CLOSE_LIFETIME;

    pthread_mutex_lock(&p->mu);
    p->n.releases++;
    agec__hist_record(&p->use_hist, now - c->acquired_us);
    bool leak_back = c->leak_reported;
    agec_pool_event lev = { .type = AGEC_EV_LEAK_RETURNED,
                            .warning = true,
                            .conn_id = c->id,
                            .file = c->file,
                            .line = c->line,
                            .func = c->func,
                            .held_ms = (now - c->acquired_us) / 1000,
                            .message = "a connection reported as leaked was released" };
    if (leak_back)
        p->n.leaks_returned++;
    if (reason < 0 && !atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
        agec__pool_make_available(p, c, now);
        if (!leak_back) {
            agec__pool_unref(p); /* never the last: the owner holds one until close */
            pthread_mutex_unlock(&p->mu);
            return;
        }
        pthread_mutex_unlock(&p->mu);
        agec__emit(p, &lev);
    } else {
        if (reason < 0)
            reason = AGEC_CLOSE_SHUTDOWN;
        agec__pool_detach(p, c, (agec_close_reason)reason);
        pthread_mutex_unlock(&p->mu);
        if (leak_back)
            agec__emit(p, &lev);
        agec__conn_destroy(p, c, (agec_close_reason)reason, budget);
    }
    pthread_mutex_lock(&p->mu);
    bool last = agec__pool_unref(p);
    pthread_mutex_unlock(&p->mu);
    if (last)
        agec__pool_free(p);
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
