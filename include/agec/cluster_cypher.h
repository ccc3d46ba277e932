/*
 * agec/cluster_cypher.h: Cypher reads over a cluster (agec/cluster.h).
 *
 * Apache AGE cannot run every Cypher read on a hot standby: some reads take
 * a lock that PostgreSQL refuses during recovery (SQLSTATE 55000 "cannot
 * acquire lock mode ShareLock on database objects while recovery is in
 * progress"). Measured on native AGE 1.6 / PostgreSQL 15 hot standbys
 * (it_cluster_age, docs/cluster-age.md):
 *   - a variable-length relationship, `-[*]-`, `-[:K*1..3]->`, in MATCH,
 *     OPTIONAL MATCH, WHERE exists(...) or a path (AGE's VLE builds a
 *     graph context that opens ag_label and every label table in ShareLock);
 *   - startNode(e), endNode(e) (they look up the label in ag_label in
 *     ShareLock);
 *   - vertex_stats(v), graph_stats(name) (the same graph context as VLE).
 * Writes (CREATE, MERGE, SET, DELETE, REMOVE) cannot run on a standby
 * either. Every other read tried (fixed-length patterns, paths, nodes(),
 * relationships() of a fixed path, labels(), type(), aggregates, UNION,
 * UNWIND, ORDER BY) runs on a standby.
 *
 * Worse, after such a refusal the session is broken for good: AGE 1.6
 * builds its graph context under a process-wide pthread mutex that the
 * error leaves locked, and the session's next VLE or *_stats read waits on
 * it forever, ignoring statement_timeout, cancel and pg_terminate_backend.
 * A connection that got this 55000 on a standby must be released with
 * agec_conn_release_broken() (agec_cluster_cypher_read does).
 *
 * agec_cluster_cypher_read() sends the reads listed above to the primary,
 * the others to a standby by the cluster's read policy, and retries once on
 * the primary a read that failed on a standby with 55000 before any row was
 * handed out (a construct this list does not know yet).
 */
#ifndef AGEC_CLUSTER_CYPHER_H
#define AGEC_CLUSTER_CYPHER_H

#include <stdbool.h>

#include "agec/cluster.h"
#include "agec/cypher.h"
#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Whether the Cypher text `query` needs the primary: it contains one of the
 * constructs listed above that AGE cannot run in recovery, or a write
 * clause. A lexical scan (string literals, quoted names and comments are
 * skipped; a property key such as `a.set` is not a clause); it errs on the
 * side of the primary (a `*` anywhere inside a relationship's brackets
 * counts). When `why` is not NULL it gets a static string naming the
 * construct found (NULL when none). NULL query gives false. Thread-safe,
 * no I/O.
 */
AGEC_EXPORT bool agec_cypher_needs_primary(const char *query, const char **why);

/**
 * Run a Cypher read on the cluster and collect every row (as
 * agec_cypher_exec). Routing: a query for which agec_cypher_needs_primary()
 * is true goes to the primary (AGEC_ACCESS_READ_PRIMARY, counted in the
 * primary's acquires_read_primary); any other to a node as
 * agec_cluster_acquire_at(AGEC_ACCESS_READ, min_lsn) chooses. When the read
 * fails on a node in recovery with SQLSTATE 55000 (a statement PostgreSQL
 * refuses during recovery), that connection is closed (see above) and the
 * read is run once more on the primary (the standby's recovery_errors
 * counts it); nothing was returned, so this is safe. `timeout_ms` bounds the acquires (negative = the pool's
 * acquire_timeout_ms); opts->timeout_ms the statement, as usual.
 * On success *out is the caller's (agec_result_free); else NULL.
 * Errors: those of agec_cluster_acquire_at() and agec_cypher_exec().
 * Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_cypher_read(
    agec_cluster *cl, agec_lsn min_lsn, int timeout_ms, const char *graph, const char *query,
    const char *params, const agec_query_opts *opts, agec_result **out, agec_error *err);

/**
 * Streaming variant of agec_cluster_cypher_read() (as agec_cypher_stream).
 * The 55000 retry on the primary happens only when `fn` has not been called
 * yet; after a row was delivered the error is returned as is.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_cypher_read_stream(
    agec_cluster *cl, agec_lsn min_lsn, int timeout_ms, const char *graph, const char *query,
    const char *params, const agec_query_opts *opts, agec_row_fn fn, void *user, agec_error *err);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_CLUSTER_CYPHER_H */
