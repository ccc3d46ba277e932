#ifndef AGEC_CYPHER_EXEC_H
#define AGEC_CYPHER_EXEC_H

#include "agec/cypher.h"

/* How long a statement or a batch waits for an earlier cancel request on
 * its connection to be delivered (normally a millisecond or two). */
#define AGEC__SETTLE_MAX_US 2000000

/* Run sql with text parameters; rows to fn (single-row mode) or into *out.
 * The one path every statement of the Cypher, SQL, graph and transaction
 * APIs takes. opts: NULL (the defaults) or in this library's layout (made
 * by agec_query_opts_init here, or by agec__query_opts_get from a
 * caller's struct at the public entry points). */
agec_status agec__exec(agec_conn *conn, const char *sql, int nparams, const char *const *values,
                       const agec_query_opts *opts, agec_row_fn fn, void *user, agec_result **out,
                       agec_error *err);

/* The caller's options (NULL: the defaults) as this library's struct:
 * the defaults for fields a program built against an older header does
 * not know. AGEC_ERR_INVALID_ARG if struct_size is not set. */
agec_status agec__query_opts_get(const agec_query_opts *in, agec_query_opts *out, agec_error *err);

/* The SQL text agec_cypher_exec sends for (graph, query, with params or
 * not) under opts' columns: from the connection's text cache or built (and
 * cached when the columns come from RETURN). *text is valid until the next
 * Cypher call on conn, or, when *owned is set, until the caller frees
 * *owned. Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_NAME, AGEC_ERR_COLUMNS,
 * AGEC_ERR_NO_MEMORY. */
agec_status agec__cypher_text_get(agec_conn *conn, const char *graph, const char *query,
                                  bool params, const agec_query_opts *opts, const char **text,
                                  char **owned, agec_error *err);

/* A server error position counted in the built SQL text, turned into one
 * counted in characters of the Cypher query (0 when outside it). */
void agec__cypher_position(agec_error *err, const char *sql, const char *query);

/* agec's hint (and AGEC_ERR_AGE_MISSING) for the AGE errors users meet
 * most; leaves err alone otherwise. */
void agec__age_hint(agec_error *err);

/* The SQL text agec_cypher_exec sends for (graph, query, with params or
 * not, opts->columns): columns from opts, else derived from RETURN; no
 * cache. *sql is malloc'ed (the caller frees it). */
agec_status agec__cypher_build(const char *graph, const char *query, bool params,
                               const agec_query_opts *opts, char **sql, agec_error *err);

#endif
