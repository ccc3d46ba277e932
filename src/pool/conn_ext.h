/*
 * Internal contract between the pool and the layers above it (Cypher).
 * Only for borrowed connections, from the borrowing thread.
 */
#ifndef AGEC_POOL_CONN_EXT_H
#define AGEC_POOL_CONN_EXT_H

#include "agec/pool.h"

/* Per-connection extension slot for upper layers (the Cypher layer keeps its
 * prepared-statement cache here). destroy(ext) is called, and the slot set to
 * NULL, when the connection is closed or when its session state is reset
 * (a reset_query such as DISCARD ALL drops prepared statements). The pool
 * never looks inside. NULL conn: get returns NULL, set does nothing. */
void *agec__conn_ext(agec_conn *c);
void agec__conn_set_ext(agec_conn *c, void *ext, void (*destroy)(void *ext));

/* This borrow's id, unique in the pool: state an upper layer keeps per
 * borrow (a transaction's timeout) is stale when the id changed. */
uint64_t agec__conn_borrow_id(agec_conn *c);

/* The connection's cancel key: every cancel request on a connection goes
 * through it, so that nothing new runs while one is in flight
 * (agec__cancel_key_settle, src/session/pgconn.h). NULL conn: NULL. */
struct agec__cancel_key *agec__conn_cancel_key(agec_conn *c);

/* An upper layer saw a fatal error (agec__sqlstate_is_fatal or
 * CONNECTION_BAD): the release closes the connection (reason broken). */
void agec__conn_mark_broken(agec_conn *c);

/* A statement starts / ends on c (the borrowing thread; two relaxed
 * stores, no lock): pool exhaustion errors then say, for the longest
 * holders, whether a statement runs and for how long. Not required:
 * without the calls a holder is reported without statement facts. */
void agec__conn_stmt_begin(agec_conn *c);
void agec__conn_stmt_end(agec_conn *c);

/* The pool's statement mode (agec_pool_config.statement_mode). NULL conn:
 * AGEC_STMT_NAMED. */
agec_stmt_mode agec__conn_stmt_mode(agec_conn *c);

/* A random 64-bit value drawn when the pool was opened: server-side names
 * (prepared statements) carry it, so that two pools never share one, even
 * in two processes with the same pid (containers run as pid 1) behind one
 * pooler. NULL conn: 0. */
uint64_t agec__conn_pool_nonce(agec_conn *c);

/* Whether a transaction pooler (PgBouncer in transaction mode) is between
 * this connection and the server, as an upper layer found out and recorded
 * with agec__conn_set_pooler: -1 not known yet, 0 no, 1 yes. It cannot
 * change while the connection lives, so it is asked once. NULL conn: -1. */
int agec__conn_pooler(agec_conn *c);
void agec__conn_set_pooler(agec_conn *c, bool pooled);

#endif
