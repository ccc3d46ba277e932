/*
 * agec/tx.h: transactions and savepoints on a borrowed connection, and a
 * helper that runs a function in a transaction with retries.
 *
 * A connection released with an open transaction is rolled back by the pool.
 * Thread-safety: as for any borrowed connection, one thread at a time.
 */
#ifndef AGEC_TX_H
#define AGEC_TX_H

#include <stdbool.h>

#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agec_conn agec_conn;
typedef struct agec_pool agec_pool;
typedef struct agec_cluster agec_cluster;

/** Isolation level of a transaction. DEFAULT leaves the server's setting. */
typedef enum agec_isolation {
    AGEC_ISOLATION_DEFAULT = 0,
    AGEC_ISOLATION_READ_COMMITTED = 1,
    AGEC_ISOLATION_REPEATABLE_READ = 2,
    AGEC_ISOLATION_SERIALIZABLE = 3,
} agec_isolation;

/** Transaction options; initialise with agec_tx_opts_init(), which also
 *  sets struct_size. Fields are only ever appended, and the library reads
 *  only struct_size bytes (older programs get the defaults of newer
 *  fields). */
typedef struct agec_tx_opts {
    size_t struct_size;       /**< set by agec_tx_opts_init(); do not change */
    agec_isolation isolation; /**< default AGEC_ISOLATION_DEFAULT */
    bool read_only;           /**< default false */
    bool deferrable;          /**< default false (meaningful with SERIALIZABLE READ ONLY) */
    int max_retries;          /**< agec_tx_run: retries after 40001/40P01 (and AGE's write
                                   conflicts, see agec_tx_run); default 5 */
    int retry_base_ms;        /**< first backoff, doubled each retry, with jitter; default 10 */
    int acquire_timeout_ms;   /**< agec_tx_run: per acquire; -1 = pool default (default) */
    /** Statement timeout of the transaction's own statements (BEGIN, COMMIT,
     *  ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO) in ms; 0 = none (default).
     *  Past it they fail with AGEC_ERR_TIMEOUT like any statement (see
     *  agec_query_opts.timeout_ms); a COMMIT that timed out may or may not
     *  have committed. Kept for the connection until the next agec_tx_begin. */
    int timeout_ms;
} agec_tx_opts;

/** Fill *opts with the defaults. */
AGEC_EXPORT void agec_tx_opts_init(agec_tx_opts *opts);

/**
 * BEGIN with the given options (NULL = defaults).
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_STATE (already in a transaction),
 * AGEC_ERR_SERVER, AGEC_ERR_CONNECTION_LOST.
 */
AGEC_EXPORT agec_status agec_tx_begin(agec_conn *conn, const agec_tx_opts *opts, agec_error *err);

/**
 * COMMIT. A transaction that had failed is rolled back by the server: that
 * is reported as AGEC_ERR_STATE ("transaction was rolled back"), never as
 * success. Errors as agec_tx_begin() (STATE: no transaction open), and
 * AGEC_ERR_SERVER for deferred-constraint or serialization failures.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_tx_commit(agec_conn *conn, agec_error *err);

/** ROLLBACK. Errors as agec_tx_begin() (STATE: no transaction open). */
AGEC_EXPORT agec_status agec_tx_rollback(agec_conn *conn, agec_error *err);

/**
 * SAVEPOINT inside the open transaction; *id identifies it for
 * agec_tx_release() and agec_tx_rollback_to(). Savepoints nest to any depth.
 * Errors as agec_tx_commit().
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_tx_savepoint(agec_conn *conn, unsigned *id,
                                                         agec_error *err);

/** RELEASE SAVEPOINT id (and those created after it). */
AGEC_EXPORT agec_status agec_tx_release(agec_conn *conn, unsigned id, agec_error *err);

/** ROLLBACK TO SAVEPOINT id: undoes what followed it; the savepoint stays. */
AGEC_EXPORT agec_status agec_tx_rollback_to(agec_conn *conn, unsigned id, agec_error *err);

/** Body of agec_tx_run(): do the work on conn; return AGEC_OK to commit,
 *  anything else to roll back (fill err to say why). */
typedef agec_status (*agec_tx_fn)(agec_conn *conn, void *user, agec_error *err);

/**
 * Acquire a connection from pool, BEGIN, call fn, COMMIT on AGEC_OK, else
 * ROLLBACK; release the connection in every path. When fn or COMMIT fails
 * with SQLSTATE 40001 (serialization failure) or 40P01 (deadlock), or with
 * AGE's own report of the same write conflict (AGE 1.6: XX000 "Entity failed
 * to be updated: 3" or ": 4" from SET, "Entity could not be locked for
 * updating" from DELETE, in every isolation level), or with
 * 0A000 "cached plan must not change result type" (a prepared statement
 * that DDL made stale: agec forgets it, the next attempt prepares it anew),
 * the whole transaction is retried (judged from the status fn returned, which
 * must be AGEC_ERR_SERVER with err->code the same: an fn that recovered
 * from a 40001 with agec_tx_rollback_to and then failed for another reason
 * is not retried, whatever err still holds; an fn that fails without
 * filling err gets "transaction function returned ..."), up to opts->max_retries times, after a
 * backoff of retry_base_ms doubling with random jitter. fn must therefore be
 * safe to run again. Returns the last status; err holds the last error.
 * Errors: those of acquire, begin, fn and commit.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_tx_run(agec_pool *pool, const agec_tx_opts *opts,
                                                   agec_tx_fn fn, void *user, agec_error *err);

/**
 * agec_tx_run() over a cluster (agec/cluster.h): a read-only transaction
 * (opts->read_only) runs on a standby by the cluster's read policy, any
 * other on the primary. Errors are reported to the cluster
 * (agec_cluster_report), and besides 40001/40P01 a transaction whose BEGIN
 * failed with 25006 or a lost connection (nothing ran: the node was no
 * longer the primary) is retried, so that it finds the new primary after a
 * failover. A failure later (in fn or COMMIT) is not retried for those: a
 * COMMIT whose answer was lost may have committed. Errors: those of
 * agec_cluster_acquire_at, begin, fn and commit.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_tx_run(agec_cluster *cluster,
                                                           const agec_tx_opts *opts, agec_tx_fn fn,
                                                           void *user, agec_error *err);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_TX_H */
