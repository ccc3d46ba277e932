/* Transactions, savepoints and the retrying transaction runner. */
#include "agec/tx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/cluster.h"
#include "agec/cypher.h"
#include "agec/pool.h"
#include "common/error_internal.h"
#include "common/sized.h"
#include "cypher/exec.h"
#include "cypher/result.h"
#include "cypher/stmt_cache.h"
#include "pool/conn_ext.h"

void agec_tx_opts_init(agec_tx_opts *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_retries = 5;
    opts->retry_base_ms = 10;
    opts->acquire_timeout_ms = -1;
}

/* The caller's options (NULL: defaults) as this library's struct. */
static agec_status tx_opts_get(const agec_tx_opts *in, agec_tx_opts *out, agec_error *err)
{
    agec_tx_opts_init(out);
    /* The fields of the first sized version: up to timeout_ms. */
    return agec__sized_opts(out, sizeof *out, in, offsetof(agec_tx_opts, timeout_ms) + sizeof(int),
                            "agec_tx_opts", err);
}

/* Run a fixed statement (no parameters, not prepared: these are short and
 * many variants would crowd the statement cache). */
static agec_status simple(agec_conn *conn, const char *sql, agec_error *err)
{
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.prepare = false;
    agec__session *s = conn ? agec__session_get(conn) : NULL;
    if (s != NULL)
        o.timeout_ms = agec__session_tx_timeout(s, conn);
    agec_result *res = NULL;
    agec_status st = agec__exec(conn, sql, 0, NULL, &o, NULL, NULL, &res, err);
    agec_result_free(res);
    return st;
}

static PGTransactionStatusType tx_status(agec_conn *conn)
{
    PGconn *pg = agec_conn_pgconn(conn);
    return pg ? PQtransactionStatus(pg) : PQTRANS_UNKNOWN;
}

static agec_status need_tx(agec_conn *conn, bool want, agec_error *err)
{
    if (conn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn must not be NULL");
    PGTransactionStatusType s = tx_status(conn);
    bool in = s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
    if (s == PQTRANS_ACTIVE || s == PQTRANS_UNKNOWN)
        return agec__error_set(err, AGEC_ERR_STATE, "the connection is busy or broken");
    if (in != want)
        return agec__error_set(err, AGEC_ERR_STATE,
                               want ? "no transaction is open" : "a transaction is already open");
    return AGEC_OK;
}

agec_status agec_tx_begin(agec_conn *conn, const agec_tx_opts *opts, agec_error *err)
{
    agec_status st = need_tx(conn, false, err);
    if (st != AGEC_OK)
        return st;
    agec_tx_opts d;
    if ((st = tx_opts_get(opts, &d, err)) != AGEC_OK)
        return st;
    opts = &d;
    static const char *const levels[] = { "", " ISOLATION LEVEL READ COMMITTED",
                                          " ISOLATION LEVEL REPEATABLE READ",
                                          " ISOLATION LEVEL SERIALIZABLE" };
    if ((unsigned)opts->isolation > AGEC_ISOLATION_SERIALIZABLE)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "unknown isolation level %d",
                               (int)opts->isolation);
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN%s%s%s", levels[opts->isolation],
             opts->read_only ? " READ ONLY" : "", opts->deferrable ? " DEFERRABLE" : "");
    if (opts->timeout_ms < 0)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "timeout_ms is negative");
    agec__session *s = agec__session_get(conn);
    if (s != NULL) {
        s->savepoint_seq = 0;
        s->tx_timeout_ms = opts->timeout_ms;
        s->tx_borrow = agec__conn_borrow_id(conn);
    }
    return simple(conn, sql, err);
}

agec_status agec_tx_commit(agec_conn *conn, agec_error *err)
{
    agec_status st = need_tx(conn, true, err);
    if (st != AGEC_OK)
        return st;
    bool failed = tx_status(conn) == PQTRANS_INERROR;
    agec_result *res = NULL;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.prepare = false;
    agec__session *s = agec__session_get(conn);
    if (s != NULL)
        o.timeout_ms = agec__session_tx_timeout(s, conn);
    st = agec__exec(conn, "COMMIT", 0, NULL, &o, NULL, NULL, &res, err);
    /* COMMIT of a failed transaction answers "ROLLBACK": not a success. */
    if (st == AGEC_OK && (failed || strcmp(PQcmdStatus(res->pg), "ROLLBACK") == 0))
        st = agec__error_set(err, AGEC_ERR_STATE,
                             "transaction was rolled back: an earlier statement in it failed");
    agec_result_free(res);
    return st;
}

agec_status agec_tx_rollback(agec_conn *conn, agec_error *err)
{
    agec_status st = need_tx(conn, true, err);
    return st != AGEC_OK ? st : simple(conn, "ROLLBACK", err);
}

static agec_status savepoint_cmd(agec_conn *conn, const char *verb, unsigned id, agec_error *err)
{
    agec_status st = need_tx(conn, true, err);
    if (st != AGEC_OK)
        return st;
    char sql[64];
    snprintf(sql, sizeof sql, "%s agec_sp_%u", verb, id);
    return simple(conn, sql, err);
}

agec_status agec_tx_savepoint(agec_conn *conn, unsigned *id, agec_error *err)
{
    if (id == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "id must not be NULL");
    agec__session *s = conn ? agec__session_get(conn) : NULL;
    if (conn != NULL && s == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    unsigned next = s ? s->savepoint_seq + 1 : 1;
    agec_status st = savepoint_cmd(conn, "SAVEPOINT", next, err);
    if (st == AGEC_OK) {
        s->savepoint_seq = next;
        *id = next;
    }
    return st;
}

agec_status agec_tx_release(agec_conn *conn, unsigned id, agec_error *err)
{
    return savepoint_cmd(conn, "RELEASE SAVEPOINT", id, err);
}

agec_status agec_tx_rollback_to(agec_conn *conn, unsigned id, agec_error *err)
{
    return savepoint_cmd(conn, "ROLLBACK TO SAVEPOINT", id, err);
}

/* AGE 1.6 reports a write conflict on a vertex or edge as an internal error
 * where PostgreSQL's own UPDATE and DELETE say 40001: SET of an entity that
 * another transaction updated or deleted meanwhile fails with XX000 "Entity
 * failed to be updated: 3" (TM_Updated; 4 is TM_Deleted), and DELETE's lock
 * of one with XX000 "Entity could not be locked for updating" (apache/age
 * src/backend/executor/cypher_set.c, cypher_delete.c), in every isolation
 * level. It is the same conflict, and the whole transaction is retried the
 * same way (it_native_age: 8 threads incrementing one counter vertex). */
static bool age_write_conflict(const agec_error *e)
{
    if (strcmp(e->sqlstate, "XX000") != 0)
        return false;
    static const char set_prefix[] = "Entity failed to be updated: ";
    if (strncmp(e->message, set_prefix, sizeof set_prefix - 1) == 0) {
        const char *code = e->message + sizeof set_prefix - 1;
        return (code[0] == '3' || code[0] == '4') && (code[1] == '\0' || code[1] == '\n');
    }
    return strcmp(e->message, "Entity could not be locked for updating") == 0;
}

/* Decided from the status the attempt ended with (fn's, or COMMIT's): the
 * error object only says why. An fn that recovered from a 40001 (ROLLBACK
 * TO SAVEPOINT) and then failed for another reason without touching err
 * leaves the old 40001 in it; that must not cause a retry. */
static bool retryable(agec_status st, const agec_error *e)
{
    if (st != AGEC_ERR_SERVER || e->code != st)
        return false;
    /* A cached plan that DDL made stale fails once inside a transaction
     * and is forgotten (cypher/exec.c): the next attempt prepares it anew. */
    return strcmp(e->sqlstate, "40001") == 0 || strcmp(e->sqlstate, "40P01") == 0 ||
           age_write_conflict(e) ||
           (strcmp(e->sqlstate, "0A000") == 0 &&
            strstr(e->message, "cached plan must not change result type") != NULL);
}

static void backoff(int base_ms, int attempt, unsigned *seed)
{
    long ms = (long)base_ms << (attempt < 10 ? attempt : 10);
    ms = ms / 2 + (long)((unsigned)rand_r(seed) % (unsigned)(ms / 2 + 1)); /* jitter: 50..100% */
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Where agec_tx_run and agec_cluster_tx_run get their connections. */
typedef struct tx_source {
    agec_pool *pool;
    agec_cluster *cluster;
} tx_source;

static agec_status source_acquire(const tx_source *src, const agec_tx_opts *opts, agec_conn **out,
                                  agec_error *e)
{
    if (src->pool != NULL)
        return agec_pool_acquire_timeout(src->pool, opts->acquire_timeout_ms, out, e);
    /* A hot standby refuses SERIALIZABLE (0A000): such a read runs on the
     * primary. */
    agec_access access = !opts->read_only                                 ? AGEC_ACCESS_WRITE
                         : opts->isolation == AGEC_ISOLATION_SERIALIZABLE ? AGEC_ACCESS_READ_PRIMARY
                                                                          : AGEC_ACCESS_READ;
    return agec_cluster_acquire_at(src->cluster, access, 0, opts->acquire_timeout_ms, out, e,
                                   __FILE__, __LINE__, __func__);
}

/* BEGIN itself failed because the node is not (or no longer) the primary or
 * went away: nothing ran, so the cluster may try again on the new primary. */
static bool begin_failover(const tx_source *src, const agec_error *e)
{
    return src->cluster != NULL &&
           (strcmp(e->sqlstate, "25006") == 0 || e->code == AGEC_ERR_CONNECTION_LOST);
}

static agec_status tx_run_from(const tx_source *src, const agec_tx_opts *opts, agec_tx_fn fn,
                               void *user, agec_error *err)
{
    agec_tx_opts d;
    agec_status ost = tx_opts_get(opts, &d, err);
    if (ost != AGEC_OK)
        return ost;
    opts = &d;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    agec_error local = AGEC_ERROR_INIT;
    agec_error *e = err ? err : &local;
    for (int attempt = 0;; attempt++) {
        agec_conn *conn = NULL;
        agec_status st = source_acquire(src, opts, &conn, e);
        if (st != AGEC_OK)
            return st;
        bool began = false;
        st = agec_tx_begin(conn, opts, e);
        if (st == AGEC_OK) {
            began = true;
            agec__error_reset(e);
            st = fn(conn, user, e);
            if (st == AGEC_OK) {
                st = agec_tx_commit(conn, e);
            } else {
                if (e->code != st) /* fn failed without saying why (or with a stale err) */
                    agec__error_set(e, st, "transaction function returned %s",
                                    agec_status_name(st));
                (void)agec_tx_rollback(conn, NULL);
            }
        }
        if (st != AGEC_OK && src->cluster != NULL)
            agec_cluster_report(src->cluster, conn, e);
        agec_conn_release(conn);
        if (st == AGEC_OK || attempt >= opts->max_retries ||
            !(retryable(st, e) || (!began && begin_failover(src, e))))
            return st;
        backoff(opts->retry_base_ms > 0 ? opts->retry_base_ms : 1, attempt, &seed);
    }
}

agec_status agec_tx_run(agec_pool *pool, const agec_tx_opts *opts, agec_tx_fn fn, void *user,
                        agec_error *err)
{
    if (pool == NULL || fn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "pool and fn must not be NULL");
    tx_source src = { pool, NULL };
    return tx_run_from(&src, opts, fn, user, err);
}

agec_status agec_cluster_tx_run(agec_cluster *cluster, const agec_tx_opts *opts, agec_tx_fn fn,
                                void *user, agec_error *err)
{
    if (cluster == NULL || fn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "cluster and fn must not be NULL");
    tx_source src = { NULL, cluster };
    return tx_run_from(&src, opts, fn, user, err);
}
