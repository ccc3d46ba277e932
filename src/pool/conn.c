/* A borrowed connection's accessors, and closing a connection. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

void agec__conn_drop_ext(agec_conn *c)
{
    drop_ext(c);
}

/* Wait until the peer closes its end of fd (EOF, an error, or deadline_us).
 * After a Terminate message the server process exits and its socket closes
 * last of all, after its pg_stat_activity entry is gone. */
static void wait_peer_close(int fd, int64_t deadline_us)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return;
        if (n > 0)
            continue;
        int ms = agec__poll_ms(deadline_us, agec__now_us());
        if (ms == 0)
            return;
        struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return;
    }
}

void agec__conn_destroy(agec_pool *p, agec_conn *c, agec_close_reason reason, int64_t deadline_us)
{
    drop_ext(c);
    bool had_conn = c->pg != NULL;
    agec__cancel_key_unref(c->cancel);
    c->cancel = NULL;
    if (c->pg != NULL) {
        /* Our own handle on the socket, so that we can see the server close
         * it after PQfinish has sent Terminate (libpq's socket is
         * non-blocking, and so is the duplicate). */
        int fd = PQsocket(c->pg) >= 0 ? fcntl(PQsocket(c->pg), F_DUPFD_CLOEXEC, 0) : -1;
        PQfinish(c->pg);
        c->pg = NULL;
        if (fd >= 0) {
            int64_t own = agec__deadline_after(agec__now_us(), p->cfg.c.connect_timeout_ms);
            wait_peer_close(fd, agec__min64(deadline_us, own));
            close(fd);
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
        agec__pool_closed(p, c);
        pthread_mutex_unlock(&p->mu);
    }
    free(c);
}
