/* COPY FROM STDIN through libpq's COPY API. */
#include "load/copy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agec/pool.h"
#include "common/error_internal.h"
#include "pool/conn_ext.h"
#include "session/pqerror.h"
#include "session/pgconn.h"

enum { PIECE = 1 << 16 };

/* Read every result left, each by the deadline; the first error goes to
 * err. Returns its code, or AGEC_OK. */
static agec_status drain(PGconn *pg, int64_t deadline_us, uint64_t *rows, agec_status st,
                         agec_error *err)
{
    for (;;) {
        agec_error werr = AGEC_ERROR_INIT;
        agec_status ws = agec__session_wait_ready(pg, deadline_us, NULL, &werr);
        if (ws != AGEC_OK) {
            if (st == AGEC_OK && err != NULL)
                agec__error_copy(err, &werr);
            return st == AGEC_OK ? ws : st;
        }
        PGresult *res = PQgetResult(pg);
        if (res == NULL)
            return st;
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_COMMAND_OK) {
            if (rows != NULL)
                *rows = strtoull(PQcmdTuples(res), NULL, 10);
        } else if (s == PGRES_COPY_IN) {
            /* Still copying (we gave up sending): end it so the server
             * answers (non-blocking: queued, flushed below). */
            (void)PQputCopyEnd(pg, "agec: copy abandoned");
            agec_error ferr = AGEC_ERROR_INIT;
            agec_status fs = agec__session_send_flush(pg, deadline_us, NULL, &ferr);
            (void)agec__session_send_begin(pg);
            if (fs != AGEC_OK) {
                PQclear(res);
                if (st == AGEC_OK && err != NULL)
                    agec__error_copy(err, &ferr);
                return st == AGEC_OK ? fs : st;
            }
        } else if (st == AGEC_OK) {
            st = agec__error_from_result(err, AGEC_ERR_SERVER, res, pg);
        }
        PQclear(res);
        if (PQstatus(pg) == CONNECTION_BAD)
            return st;
    }
}

/* Send data as COPY input in the non-blocking mode, flushing by the
 * deadline whenever libpq's buffer is full. AGEC_OK when all is queued;
 * AGEC_ERR_SERVER when the server left COPY (its error comes with the
 * results); else the flush's error. */
static agec_status send_data(PGconn *pg, const char *data, size_t len, int64_t deadline_us,
                             agec_error *err)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < PIECE ? len - off : PIECE;
        int r = PQputCopyData(pg, data + off, (int)n);
        if (r < 0)
            return AGEC_ERR_SERVER; /* an error from the server meanwhile, or broken */
        if (r == 0 || PQflush(pg) == 1) {
            /* libpq's buffer is full: send it out by the deadline */
            agec_status st = agec__session_send_flush(pg, deadline_us, NULL, err);
            (void)agec__session_send_begin(pg);
            if (st != AGEC_OK)
                return st;
            if (r == 0)
                continue; /* not queued: again */
        }
        off += n;
    }
    for (;;) {
        int r = PQputCopyEnd(pg, NULL);
        if (r < 0)
            return AGEC_ERR_SERVER;
        agec_status st = agec__session_send_flush(pg, deadline_us, NULL, err);
        (void)agec__session_send_begin(pg);
        if (st != AGEC_OK || r == 1)
            return st;
    }
}

/* Past a timeout or an abort the connection is in the middle of the COPY:
 * only closing it ends it. Otherwise libpq is blocking again, as the escape
 * hatch promises, and a dead connection is marked broken. */
static agec_status settle_conn(agec_conn *conn, PGconn *pg, agec_status st, agec_error *err)
{
    if (st == AGEC_ERR_TIMEOUT || st == AGEC_ERR_CANCELLED) {
        agec__conn_mark_broken(conn);
        if (err != NULL && st == AGEC_ERR_TIMEOUT)
            agec__copy_text(err->message, sizeof err->message,
                            "the COPY did not finish in time (timeout_ms): the connection is "
                            "closed on release, the transaction rolled back by the server");
        return st;
    }
    (void)PQsetnonblocking(pg, 0);
    if (PQstatus(pg) == CONNECTION_BAD || st == AGEC_ERR_CONNECTION_LOST) {
        agec__conn_mark_broken(conn);
        if (st == AGEC_OK)
            st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    }
    return st;
}

agec_status agec__copy_send(agec_conn *conn, const char *copy_sql, const char *data, size_t len,
                            int64_t deadline_us, agec_error *err)
{
    PGconn *pg = agec_conn_pgconn(conn);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return agec__error_set(err, AGEC_ERR_CONNECTION_LOST, "the connection is not open");
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "a statement is already running on this connection");
    agec_status st = AGEC_OK;
    /* Non-blocking from the start: no libpq call below may wait past the
     * deadline (a full socket buffer behind a dead peer). */
    if (!agec__session_send_begin(pg) || !PQsendQuery(pg, copy_sql)) {
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        return settle_conn(conn, pg, st, err);
    }
    st = agec__session_send_flush(pg, deadline_us, NULL, err);
    (void)agec__session_send_begin(pg);
    if (st == AGEC_OK)
        st = agec__session_wait_ready(pg, deadline_us, NULL, err);
    if (st != AGEC_OK)
        return settle_conn(conn, pg, st, err);
    PGresult *res = PQgetResult(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        if (res == NULL)
            st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        else if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            st = agec__error_set(err, AGEC_ERR_INVALID_ARG, "not a COPY FROM STDIN statement");
        else
            st = agec__error_from_result(err, AGEC_ERR_SERVER, res, pg);
        PQclear(res);
        st = drain(pg, deadline_us, NULL, st, err);
        return settle_conn(conn, pg, st, err);
    }
    PQclear(res);
    agec_error serr = AGEC_ERROR_INIT;
    agec_status ss = send_data(pg, data, len, deadline_us, &serr);
    if (ss == AGEC_ERR_TIMEOUT || ss == AGEC_ERR_CANCELLED) {
        if (err != NULL)
            agec__error_copy(err, &serr);
        return settle_conn(conn, pg, ss, err);
    }
    if (ss == AGEC_OK)
        return AGEC_OK; /* the outcome is agec__copy_finish's */
    if (PQstatus(pg) == CONNECTION_BAD && ss != AGEC_ERR_SERVER)
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    st = drain(pg, deadline_us, NULL, st, err);
    if (st == AGEC_OK)
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    return settle_conn(conn, pg, st, err);
}

agec_status agec__copy_finish(agec_conn *conn, int64_t deadline_us, uint64_t *rows, agec_error *err)
{
    if (rows != NULL)
        *rows = 0;
    PGconn *pg = agec_conn_pgconn(conn);
    if (pg == NULL)
        return agec__error_set(err, AGEC_ERR_CONNECTION_LOST, "the connection is not open");
    agec_status st = drain(pg, deadline_us, rows, AGEC_OK, err);
    return settle_conn(conn, pg, st, err);
}

agec_status agec__copy_in(agec_conn *conn, const char *copy_sql, const char *data, size_t len,
                          int64_t deadline_us, uint64_t *rows, agec_error *err)
{
    if (rows != NULL)
        *rows = 0;
    agec_status st = agec__copy_send(conn, copy_sql, data, len, deadline_us, err);
    return st != AGEC_OK ? st : agec__copy_finish(conn, deadline_us, rows, err);
}
