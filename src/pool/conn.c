/* A borrowed connection's accessors, and closing a connection. */
#include <stdlib.h>
#include <unistd.h>

#include "common/error_internal.h"
#include "pool/conn_ext.h"
#include "pool/pool_internal.h"
#include "session/clock.h"

PGconn *agec_conn_pgconn(agec_conn *conn)
{
    return conn ? conn->pg : NULL;
}

agec_pool *agec_conn_pool(agec_conn *conn)
{
    return conn ? conn->pool : NULL;
}

uint64_t agec_conn_id(agec_conn *conn)
{
    return conn ? conn->id : 0;
}

agec_status agec_conn_cancel(agec_conn *conn, agec_error *err)
{
    if (conn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn is NULL");
    if (conn->cancel == NULL)
        return agec__error_set(err, AGEC_ERR_UNREACHABLE, "no cancel key for this connection");
    agec__cancel_job *job = agec__cancel_start_key(conn->cancel);
    if (job == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "could not start the cancel request");
    /* The request is a short connection to the server: allow it what a
     * connection gets. PQcancel has no timeout of its own. */
    int ms = conn->pool->cfg.c.connect_timeout_ms;
    agec_status st = AGEC_OK;
    if (!agec__cancel_wait(job, agec__deadline_after(agec__now_us(), ms)))
        st = agec__error_set(err, AGEC_ERR_TIMEOUT,
                             "cancel request not answered within connect_timeout_ms (%d ms); it is "
                             "still being sent in the background",
                             ms);
    else
        st = agec__cancel_result(job, err);
    agec__cancel_release(job);
    return st;
}

void *agec__conn_ext(agec_conn *c)
{
    return c ? c->ext : NULL;
}

static void drop_ext(agec_conn *c)
{
    if (c->ext != NULL && c->ext_destroy != NULL)
        c->ext_destroy(c->ext);
    c->ext = NULL;
    c->ext_destroy = NULL;
}

void agec__conn_set_ext(agec_conn *c, void *ext, void (*destroy)(void *ext))
{
    if (c == NULL)
        return;
    if (c->ext != ext)
        drop_ext(c);
    c->ext = ext;
    c->ext_destroy = destroy;
}

agec_stmt_mode agec__conn_stmt_mode(agec_conn *c)
{
    return c ? c->pool->cfg.c.statement_mode : AGEC_STMT_NAMED;
}

int agec__conn_pooler(agec_conn *c)
{
    return c == NULL || c->pooler == 0 ? -1 : c->pooler - 1;
}

void agec__conn_set_pooler(agec_conn *c, bool pooled)
{
    if (c != NULL)
        c->pooler = pooled ? 2 : 1;
}

uint64_t agec__conn_pool_nonce(agec_conn *c)
{
    return c ? c->pool->nonce : 0;
}

uint64_t agec__conn_borrow_id(agec_conn *c)
{
    return c ? c->borrow_id : 0;
}

struct agec__cancel_key *agec__conn_cancel_key(agec_conn *c)
{
    return c ? c->cancel : NULL;
}

void agec__conn_mark_broken(agec_conn *c)
{
    if (c != NULL)
        c->broken = true;
}

void agec__conn_stmt_begin(agec_conn *c)
{
    if (c != NULL)
        atomic_store_explicit(&c->stmt_since_us, agec__now_us(), memory_order_relaxed);
}

void agec__conn_stmt_end(agec_conn *c)
{
    if (c == NULL)
        return;
    int64_t since = atomic_exchange_explicit(&c->stmt_since_us, 0, memory_order_relaxed);
    if (since > 0 && c->pool != NULL)
        agec__ahist_record(&c->pool->op_hist, agec__now_us() - since);
}

void agec__conn_drop_ext(agec_conn *c)
{
    drop_ext(c);
}

void agec__conn_destroy(agec_pool *p, agec_conn *c, agec_close_reason reason, int64_t deadline_us)
{
    drop_ext(c);
    bool had_conn = c->pg != NULL;
    int fd = -1;
    int64_t own = 0;
    if (c->pg != NULL) {
        /* A statement still running (a broken release mid-query, a cleanup
         * that gave up) keeps its server process busy: it reads our
         * Terminate only when the statement ends, and until then it is one
         * more process than the pool counts. Cancel it (in the background;
         * the key outlives the connection). */
        if (PQtransactionStatus(c->pg) == PQTRANS_ACTIVE)
            agec__cancel_release(agec__cancel_start_key(c->cancel));
        /* Our own handle on the socket, so that we can see the server close
         * it after PQfinish has sent Terminate. */
        fd = agec__session_finish_watched(c->pg);
        c->pg = NULL;
        own = agec__deadline_after(agec__now_us(), p->cfg.c.connect_timeout_ms);
        if (fd >= 0 && agec__reap_wait(fd, agec__min64(deadline_us, own))) {
            close(fd);
            fd = -1;
        }
    }
    if (had_conn) {
        agec_pool_event ev = {
            .type = AGEC_EV_CLOSE,
            .warning = reason == AGEC_CLOSE_BROKEN || reason == AGEC_CLOSE_RESET,
            .conn_id = c->id,
            .reason = reason,
            .message = agec_close_reason_name(reason),
        };
        agec__emit(p, &ev);
    }
    if (c->state == CONN_CLOSING) {
        pthread_mutex_lock(&p->mu);
        if (fd >= 0 && !atomic_load_explicit(&p->shutting_down, memory_order_relaxed)) {
            /* The server process is still there past our caller's budget:
             * the maintenance thread keeps the slot until it is gone (and
             * the cancel key, to cancel once more). */
            agec__reap_start_locked(p, c, fd, own);
            pthread_mutex_unlock(&p->mu);
            return;
        }
        agec__pool_closed_locked(p, c);
        pthread_mutex_unlock(&p->mu);
    }
    agec__cancel_key_unref(c->cancel);
    c->cancel = NULL;
    if (fd >= 0)
        close(fd);
    free(c);
}
