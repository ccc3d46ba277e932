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

enum { PIECE = 1 << 16 };

/* Read every result left; the first error goes to err. Returns its code, or
 * AGEC_OK. */
static agec_status drain(PGconn *pg, uint64_t *rows, agec_status st, agec_error *err)
{
    PGresult *res;
    while ((res = PQgetResult(pg)) != NULL) {
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_COMMAND_OK) {
            if (rows != NULL)
                *rows = strtoull(PQcmdTuples(res), NULL, 10);
        } else if (s == PGRES_COPY_IN) {
            /* Still copying (we gave up sending): end it so the server answers. */
            (void)PQputCopyEnd(pg, "agec: copy abandoned");
        } else if (st == AGEC_OK) {
            st = agec__error_from_result(err, AGEC_ERR_SERVER, res, pg);
        }
        PQclear(res);
        if (PQstatus(pg) == CONNECTION_BAD)
            break;
    }
    return st;
}

agec_status agec__copy_in(agec_conn *conn, const char *copy_sql, const char *data, size_t len,
                          uint64_t *rows, agec_error *err)
{
    if (rows != NULL)
        *rows = 0;
    PGconn *pg = agec_conn_pgconn(conn);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return agec__error_set(err, AGEC_ERR_CONNECTION_LOST, "the connection is not open");
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "a statement is already running on this connection");
    agec_status st = AGEC_OK;
    if (!PQsendQuery(pg, copy_sql)) {
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        goto out;
    }
    PGresult *res = PQgetResult(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        if (res == NULL)
            st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        else if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            st = agec__error_set(err, AGEC_ERR_INVALID_ARG, "not a COPY FROM STDIN statement");
        else
            st = agec__error_from_result(err, AGEC_ERR_SERVER, res, pg);
        PQclear(res);
        st = drain(pg, NULL, st, err);
        goto out;
    }
    PQclear(res);
    bool sent_all = true;
    for (size_t off = 0; off < len;) {
        size_t n = len - off < PIECE ? len - off : PIECE;
        /* -1: the server answered with an error meanwhile (libpq has left
         * COPY state), or the connection broke. */
        if (PQputCopyData(pg, data + off, (int)n) != 1) {
            sent_all = false;
            break;
        }
        off += n;
    }
    if (sent_all && PQputCopyEnd(pg, NULL) != 1)
        sent_all = false;
    if (!sent_all && PQstatus(pg) == CONNECTION_BAD)
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    st = drain(pg, rows, st, err);
    if (st == AGEC_OK && !sent_all)
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
out:
    if (PQstatus(pg) == CONNECTION_BAD || st == AGEC_ERR_CONNECTION_LOST) {
        agec__conn_mark_broken(conn);
        if (st == AGEC_OK)
            st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    }
    return st;
}
