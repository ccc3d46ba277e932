/*
 * Turning libpq's errors into agec_error, and classifying SQLSTATEs.
 * Shared by the session, pool and Cypher layers.
 */
#ifndef AGEC_SESSION_PQERROR_H
#define AGEC_SESSION_PQERROR_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "agec/error.h"

/* Fill *err from a failed PGresult: SQLSTATE, message, detail, hint and
 * position exactly as the server sent them. `code` is used unless the
 * SQLSTATE says the connection broke (AGEC_ERR_CONNECTION_LOST: class 08 or
 * 57P0x with severity FATAL/PANIC, or conn is CONNECTION_BAD), the message
 * did not fit what the server expected (08P01 as a plain ERROR, e.g. a
 * wrong number of parameters -> AGEC_ERR_INVALID_ARG), the
 * statement was cancelled by timeout (57014 -> AGEC_ERR_TIMEOUT) or
 * authentication failed (28xxx -> AGEC_ERR_AUTH). Returns the code set.
 * `res` may be NULL (then conn's error message is used; conn may be NULL). */
agec_status agec__error_from_result(agec_error *err, agec_status code, const PGresult *res,
                                    const PGconn *conn);

/* True for SQLSTATEs after which a connection must not be reused:
 * class 08 (connection exception), 57P01/57P02/57P03 (admin/crash shutdown,
 * cannot connect now). NULL or "" is false. */
bool agec__sqlstate_is_fatal(const char *sqlstate);

/* Copy libpq's connection error text into buf[cap], with passwords redacted
 * (also the connection's own secret options, by value) and the trailing
 * newline removed. */
void agec__pq_conn_message(const PGconn *conn, char *buf, size_t cap);

/* Redact `in` into out[cap] (session/redact.h): the value of every secret
 * keyword (password, sslpassword, ...), the password of URIs, and those
 * values wherever else they appear in `in`. Used on every text that could
 * echo a connection string. */
void agec__redact_conninfo(const char *in, char *out, size_t cap);

#endif
