/*
 * Is a transaction pooler (PgBouncer in transaction mode) between a
 * borrowed connection and the server? Pipelining needs to know: PgBouncer
 * 1.18 releases a server connection as soon as every Sync it has seen from
 * the client is answered, even when the client's next transaction is half
 * forwarded to it (Parse/Bind/Execute in, Sync not yet read), so a
 * transaction sent while an earlier one's Sync is unanswered can run on one
 * server and end on another: its caller gets no result, and another client
 * of PgBouncer gets it (docs/pgbouncer.md). Behind a pooler, agec sends a
 * transaction only when nothing is outstanding on the connection.
 */
#ifndef AGEC_CYPHER_POOLER_H
#define AGEC_CYPHER_POOLER_H

#include <stdbool.h>

#include "agec/pool.h"

/* Sets *pooled. Asked once per connection (one round trip, `SELECT
 * pg_backend_pid()`), then kept with it (agec__conn_pooler): the backend
 * pid of the cancel key (PQbackendPID) is the server process's own on a
 * direct connection, and PgBouncer's invention behind it. The connection
 * must be idle (not in pipeline mode). Errors: those of agec_sql_exec
 * within timeout_ms (> 0); the connection is then left to the caller. */
agec_status agec__conn_behind_pooler(agec_conn *c, int timeout_ms, bool *pooled, agec_error *err);

#endif
