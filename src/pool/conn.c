/* A borrowed connection's accessors, and closing a connection. */
#include <stdlib.h>

#include "common/error_internal.h"
#include "pool/conn_ext.h"
#include "pool/pool_internal.h"

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
    return agec__session_cancel(conn->cancel, err);
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

void agec__conn_mark_broken(agec_conn *c)
{
    if (c != NULL)
        c->broken = true;
}

void agec__conn_drop_ext(agec_conn *c)
{
    drop_ext(c);
}

void agec__conn_destroy(agec_pool *p, agec_conn *c, agec_close_reason reason)
{
    drop_ext(c);
    bool had_conn = c->pg != NULL;
    if (c->cancel != NULL)
        PQfreeCancel(c->cancel);
    if (c->pg != NULL)
        PQfinish(c->pg);
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
    free(c);
}
