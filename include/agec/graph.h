/*
 * agec/graph.h: managing AGE graphs and labels on a borrowed connection.
 * Every name is checked with agec_graph_name_check()/agec_label_name_check()
 * before it reaches the server, and passed as a bound parameter where AGE's
 * functions take one. Thread-safety: one thread per borrowed connection.
 */
#ifndef AGEC_GRAPH_H
#define AGEC_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "agec/cypher.h"
#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agec_conn agec_conn;
typedef struct agec_result agec_result;

/* Every function here also returns AGEC_ERR_AGE_MISSING (with a hint) when
 * the database has no age extension, and AGEC_ERR_INVALID_ARG for NULL
 * arguments. */

/** Kind of a label. */
typedef enum agec_label_kind { AGEC_LABEL_VERTEX = 0, AGEC_LABEL_EDGE = 1 } agec_label_kind;

/**
 * create_graph(name). Errors: AGEC_ERR_NAME, AGEC_ERR_SERVER (SQLSTATE 3F000
 * when it exists already), AGEC_ERR_CONNECTION_LOST, AGEC_ERR_INVALID_ARG.
 */
AGEC_EXPORT agec_status agec_graph_create(agec_conn *conn, const char *name, agec_error *err);

/**
 * drop_graph(name, cascade). AGE refuses a non-cascading drop even of an
 * empty graph that has its default labels, so cascade is what you usually
 * want. Errors as agec_graph_create() (3F000 when it does not exist).
 */
AGEC_EXPORT agec_status agec_graph_drop(agec_conn *conn, const char *name, bool cascade,
                                        agec_error *err);

/** *exists = whether graph `name` exists. Errors as agec_graph_create(). */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_graph_exists(agec_conn *conn, const char *name,
                                                         bool *exists, agec_error *err);

/**
 * Names of all graphs, sorted: *names is a NULL-terminated array of *count
 * strings in one allocation, freed with agec_strings_free().
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_graph_list(agec_conn *conn, char ***names,
                                                       size_t *count, agec_error *err);

/** create_vlabel / create_elabel. Errors: AGEC_ERR_NAME, AGEC_ERR_SERVER. */
AGEC_EXPORT agec_status agec_label_create(agec_conn *conn, const char *graph, const char *label,
                                          agec_label_kind kind, agec_error *err);

/**
 * Labels of a graph as a result with columns `name` (text) and `kind`
 * ("vertex" or "edge"), sorted by name, AGE's internal default labels
 * included. Free with agec_result_free().
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_label_list(agec_conn *conn, const char *graph,
                                                       agec_result **out, agec_error *err);

/**
 * Create the indexes that AGE label tables lack on PostgreSQL 15 builds:
 * a unique btree on id, btrees on start_id and end_id for edge labels, and a
 * GIN index on properties. `label` NULL means every label of the graph.
 * Idempotent (CREATE INDEX IF NOT EXISTS with stable names).
 * Errors: AGEC_ERR_NAME, AGEC_ERR_NOT_FOUND (no such label), AGEC_ERR_SERVER.
 */
AGEC_EXPORT agec_status agec_graph_create_indexes(agec_conn *conn, const char *graph,
                                                  const char *label, agec_error *err);

/*
 * The same calls with statement options (agec/cypher.h; NULL = defaults):
 * opts->timeout_ms bounds each statement the helper sends (creating the
 * indexes of a graph sends several, each with that timeout: past it the
 * call fails with AGEC_ERR_TIMEOUT, e.g. behind a lock another session
 * holds), opts->prepare as for agec_sql_exec(); columns are ignored. An
 * uninitialised opts (struct_size 0) fails with AGEC_ERR_INVALID_ARG.
 * Errors otherwise as the calls above.
 */
AGEC_EXPORT agec_status agec_graph_create_opts(agec_conn *conn, const char *name,
                                               const agec_query_opts *opts, agec_error *err);
AGEC_EXPORT agec_status agec_graph_drop_opts(agec_conn *conn, const char *name, bool cascade,
                                             const agec_query_opts *opts, agec_error *err);
AGEC_EXPORT AGEC_NODISCARD agec_status agec_graph_exists_opts(agec_conn *conn, const char *name,
                                                              bool *exists,
                                                              const agec_query_opts *opts,
                                                              agec_error *err);
AGEC_EXPORT AGEC_NODISCARD agec_status agec_graph_list_opts(agec_conn *conn, char ***names,
                                                            size_t *count,
                                                            const agec_query_opts *opts,
                                                            agec_error *err);
AGEC_EXPORT agec_status agec_label_create_opts(agec_conn *conn, const char *graph,
                                               const char *label, agec_label_kind kind,
                                               const agec_query_opts *opts, agec_error *err);
AGEC_EXPORT AGEC_NODISCARD agec_status agec_label_list_opts(agec_conn *conn, const char *graph,
                                                            agec_result **out,
                                                            const agec_query_opts *opts,
                                                            agec_error *err);
AGEC_EXPORT agec_status agec_graph_create_indexes_opts(agec_conn *conn, const char *graph,
                                                       const char *label,
                                                       const agec_query_opts *opts,
                                                       agec_error *err);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_GRAPH_H */
