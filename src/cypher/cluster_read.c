/* Cypher reads over a cluster (agec/cluster_cypher.h): where the Cypher
 * layer's knowledge of what AGE cannot run on a standby meets the cluster's
 * routing. The cluster itself knows nothing of Cypher: it is told
 * AGEC_ACCESS_READ_PRIMARY, and sees the 55000 through agec_cluster_report. */
#include <libpq-fe.h>
#include <string.h>

#include "agec/cluster_cypher.h"
#include "common/error_internal.h"
#include "session/clock.h"

typedef struct read_call {
    const char *graph, *query, *params;
    const agec_query_opts *opts;
    agec_result **out; /* collect, or */
    agec_row_fn fn;    /* stream */
    void *user;
    size_t delivered; /* rows handed to fn */
} read_call;

static bool count_row(agec_result *row, void *user)
{
    read_call *rc = user;
    rc->delivered++;
    return rc->fn(row, rc->user);
}

static agec_status run_on(agec_conn *conn, read_call *rc, agec_error *err)
{
    if (rc->out != NULL)
        return agec_cypher_exec(conn, rc->graph, rc->query, rc->params, rc->opts, rc->out, err);
    return agec_cypher_stream(conn, rc->graph, rc->query, rc->params, rc->opts, count_row, rc, err);
}

/* Failed on a server in recovery for being in recovery, before any row:
 * the primary can run it. */
static bool recovery_refusal(agec_conn *conn, const read_call *rc, const agec_error *e)
{
    if (rc->delivered > 0 || e->code != AGEC_ERR_SERVER || strcmp(e->sqlstate, "55000") != 0)
        return false;
    const char *hs = PQparameterStatus(agec_conn_pgconn(conn), "in_hot_standby");
    return hs != NULL && strcmp(hs, "on") == 0;
}

static int left_ms(int64_t deadline_us)
{
    int64_t left = (deadline_us - agec__now_us()) / 1000;
    return left > 0 ? (int)(left > 0x7fffffff ? 0x7fffffff : left) : 0;
}

static agec_status cluster_read(agec_cluster *cl, agec_lsn min_lsn, int timeout_ms, read_call *rc,
                                agec_error *err)
{
    if (cl == NULL || rc->graph == NULL || rc->query == NULL || (rc->out == NULL && rc->fn == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_cluster_cypher_read: NULL cluster, graph, query or output");
    agec_error local = AGEC_ERROR_INIT;
    agec_error *e = err ? err : &local;
    bool primary = agec_cypher_needs_primary(rc->query, NULL);
    /* The retry shares the caller's acquire deadline; with the pool's
     * default (negative) each acquire gets it whole. */
    int64_t deadline = timeout_ms >= 0 ? agec__deadline_after(agec__now_us(), timeout_ms) : 0;
    for (int attempt = 0;; attempt++) {
        agec_conn *conn = NULL;
        int t = timeout_ms < 0 ? -1 : attempt == 0 ? timeout_ms : left_ms(deadline);
        agec_status st = agec_cluster_acquire_at(
            cl, primary ? AGEC_ACCESS_READ_PRIMARY : AGEC_ACCESS_READ, primary ? 0 : min_lsn, t,
            &conn, e, __FILE__, __LINE__, __func__);
        if (st != AGEC_OK)
            return st;
        st = run_on(conn, rc, e);
        bool refused = false;
        if (st != AGEC_OK) {
            agec_cluster_report(cl, conn, e);
            refused = recovery_refusal(conn, rc, e);
        }
        /* AGE 1.6 builds its graph context (VLE, graph_stats, vertex_stats)
         * under a process-wide pthread mutex that the 55000 error leaves
         * locked: the session's next such read waits on it forever, deaf
         * to cancel and terminate (docs/cluster-age.md). Never reuse it. */
        if (refused)
            agec_conn_release_broken(conn);
        else
            agec_conn_release(conn);
        bool again = refused && attempt == 0 && !primary;
        if (!again)
            return st;
        agec__error_reset(e);
        primary = true;
    }
}

agec_status agec_cluster_cypher_read(agec_cluster *cl, agec_lsn min_lsn, int timeout_ms,
                                     const char *graph, const char *query, const char *params,
                                     const agec_query_opts *opts, agec_result **out,
                                     agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_cluster_cypher_read: NULL out");
    read_call rc = { graph, query, params, opts, out, NULL, NULL, 0 };
    return cluster_read(cl, min_lsn, timeout_ms, &rc, err);
}

agec_status agec_cluster_cypher_read_stream(agec_cluster *cl, agec_lsn min_lsn, int timeout_ms,
                                            const char *graph, const char *query,
                                            const char *params, const agec_query_opts *opts,
                                            agec_row_fn fn, void *user, agec_error *err)
{
    if (fn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_cluster_cypher_read_stream: NULL fn");
    read_call rc = { graph, query, params, opts, NULL, fn, user, 0 };
    return cluster_read(cl, min_lsn, timeout_ms, &rc, err);
}
