/*
 * COPY FROM STDIN on a borrowed connection: the loader's fast path, kept
 * apart so that its protocol handling is tested on plain PostgreSQL tables.
 */
#ifndef AGEC_LOAD_COPY_H
#define AGEC_LOAD_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"

typedef struct agec_conn agec_conn;

/* Run copy_sql (a COPY ... FROM STDIN statement) and send data[0..len) as
 * its input (COPY text format), then read the outcome. *rows (may be NULL)
 * gets the rows copied. On a server error, before or during the data, the
 * rest of the data is not sent and the server's error is returned
 * (AGEC_ERR_SERVER, SQLSTATE and all); the connection is then idle, or in
 * its failed transaction block, ready for ROLLBACK. A connection that dies
 * gives AGEC_ERR_CONNECTION_LOST and is marked broken (closed on release).
 * Everything (sending the statement and the data, the server's answer)
 * happens by deadline_us (AGEC__NEVER: no limit): past it AGEC_ERR_TIMEOUT,
 * and the connection, left in the middle of the COPY, is marked broken
 * (closing it ends the COPY and its transaction on the server).
 * Never use this on PGlite: COPY breaks its protocol. */
agec_status agec__copy_in(agec_conn *conn, const char *copy_sql, const char *data, size_t len,
                          int64_t deadline_us, uint64_t *rows, agec_error *err);

/* agec__copy_in in two halves, so that the caller can work while the
 * server takes the data in: agec__copy_send sends the statement and all of
 * the data and ends the COPY, without reading its outcome (AGEC_OK), or
 * fails as agec__copy_in does (then it is over: no finish). After AGEC_OK,
 * agec__copy_finish must come before anything else on the connection: it
 * reads the outcome (rows, the server's error) by deadline_us, as
 * agec__copy_in does. */
agec_status agec__copy_send(agec_conn *conn, const char *copy_sql, const char *data, size_t len,
                            int64_t deadline_us, agec_error *err);
agec_status agec__copy_finish(agec_conn *conn, int64_t deadline_us, uint64_t *rows,
                              agec_error *err);

#endif
