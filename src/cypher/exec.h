#ifndef AGEC_CYPHER_EXEC_H
#define AGEC_CYPHER_EXEC_H

#include "agec/cypher.h"

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

/* The SQL text agec_cypher_exec sends for (graph, query, params given or
 * not, opts->columns): columns from opts, else derived from RETURN. *sql
 * is malloc'ed. */
agec_status agec__cypher_build(const char *graph, const char *query, const char *params,
                               const agec_query_opts *opts, char **sql, agec_error *err);

/* Make err->position (of the SQL text `sql` built for `query`) count
 * within the Cypher query, or 0 outside it. */
void agec__cypher_position(agec_error *err, const char *sql, const char *query);

#endif
