/*
 * Per-connection state of the Cypher layer, kept in the pool's extension
 * slot (src/pool/conn_ext.h): the prepared-statement cache and the
 * savepoint counter. The pool destroys it when the connection closes or its
 * session is reset (DISCARD ALL drops prepared statements).
 */
#ifndef AGEC_CYPHER_STMT_CACHE_H
#define AGEC_CYPHER_STMT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/cypher.h"

/* "agec_" + the pool's nonce (16 hex digits) + "_" + a counter. */
#define AGEC__STMT_NAME_MAX 48

typedef struct agec__stmt {
    uint64_t hash;
    uint64_t last_use; /* LRU clock */
    char *sql;
    char name[AGEC__STMT_NAME_MAX];
} agec__stmt;

/* Evicted statements wait to be deallocated on the server (a list with
 * no limit: a long transaction can evict many). DEALLOCATE waits until the
 * connection is outside a transaction: inside one, a DEALLOCATE that fails
 * (someone ran DEALLOCATE ALL) would abort it. */

/* The SQL text agec_cypher_exec built for (graph, query, with or without
 * parameters) with columns derived from RETURN: a pure function of the
 * three, cached because deriving the columns and building the text was
 * most of agec's own work per call. */
#define AGEC__TEXT_CACHE_MAX 32
#define AGEC__TEXT_CACHE_QUERY_MAX 4096 /* longer queries are not cached */

typedef struct agec__cypher_text {
    uint64_t hash;
    uint64_t last_use;
    char *key; /* graph NUL query NUL, one allocation */
    size_t graph_len;
    bool params;
    char *sql;
} agec__cypher_text;

typedef struct agec__session {
    agec__cypher_text texts[AGEC__TEXT_CACHE_MAX];
    size_t ntexts;
    agec__stmt stmts[AGEC_STMT_CACHE_MAX];
    size_t nstmts;
    char (*pending)[AGEC__STMT_NAME_MAX]; /* names to DEALLOCATE, growable */
    size_t npending, cap_pending;
    uint64_t clock;
    unsigned savepoint_seq; /* savepoints created in the current transaction */
    int tx_timeout_ms;      /* agec_tx_opts.timeout_ms of the latest BEGIN ... */
    uint64_t tx_borrow;     /* ... in this borrow (agec__conn_borrow_id); else none */
} agec__session;

/* The connection's session state, created on first use; NULL on OOM. */
agec__session *agec__session_get(agec_conn *conn);

/* Look up sql; NULL when not cached. */
agec__stmt *agec__session_find(agec__session *s, const char *sql);

/* Make a slot for sql (evicting the least recently used, whose name goes to
 * the pending list) and give it a name unique to the pool instance (its
 * nonce) and within it. NULL on OOM. */
agec__stmt *agec__session_add(agec__session *s, uint64_t nonce, const char *sql);

/* Deallocate the pending evicted statements, if pg is outside a
 * transaction, by deadline_us (server errors ignored: the statement may be
 * gone already). AGEC_ERR_TIMEOUT / CONNECTION_LOST: the connection is
 * unusable. */
agec_status agec__session_flush_pending(agec__session *s, PGconn *pg, int64_t deadline_us,
                                        agec_error *err);

/* The statement timeout of the transaction this borrow began with
 * agec_tx_begin, or 0 (none, or it was a previous borrower's). */
int agec__session_tx_timeout(const agec__session *s, agec_conn *conn);

/* Forget one statement (it vanished on the server). */
void agec__session_forget(agec__session *s, agec__stmt *st);

/* The cached SQL text for (graph, query, params), or NULL. Valid until the
 * next agec__session_text_add on this session, or its end. */
const char *agec__session_text_find(agec__session *s, const char *graph, const char *query,
                                    bool params);

/* Cache sql (malloc'd) for (graph, query, params), evicting the least
 * recently used entry when full. Takes ownership of sql when it returns
 * true; false (out of memory, or the query is too long to keep) leaves sql
 * to the caller. */
bool agec__session_text_add(agec__session *s, const char *graph, const char *query, bool params,
                            char *sql);

#endif
