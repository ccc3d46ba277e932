/*
 * agec/batch.h: pipelined batches of SQL and Cypher statements on a borrowed
 * connection (libpq pipeline mode).
 *
 * Queue statements with agec_batch_add_sql() / agec_batch_add_cypher(),
 * then agec_batch_run() sends them all in one flush and reads every result
 * in order: one round trip for the whole batch instead of one per
 * statement. Each statement gets its own outcome: a result
 * (agec_batch_result) or its own error with the server's SQLSTATE
 * (agec_batch_status). docs/pipeline.md has the design and the figures.
 *
 * Isolation of statements. By default each statement is followed by a Sync
 * of its own: it runs in its own implicit transaction, exactly as if it had
 * been run alone, and one failing statement does not fail the others.
 * With all_or_nothing the batch is one implicit transaction (one Sync at
 * the end): the first failure rolls back every statement, and every other
 * statement reports AGEC_ERR_BATCH_ABORTED ("not run" or "rolled back",
 * naming the statement that failed).
 *
 * Inside a transaction (agec_tx_begin) a batch always behaves as
 * all-or-nothing within that transaction: a failure aborts the caller's
 * transaction (as any failed statement does), the statements after it
 * report AGEC_ERR_BATCH_ABORTED, the statements before it keep their
 * results (they ran inside the transaction, which the caller must now roll
 * back; agec_tx_commit reports AGEC_ERR_STATE). Nothing is committed or
 * rolled back by the batch itself there.
 *
 * Statement mode. Statements are prepared through the connection's
 * statement cache (as agec_sql_exec does) when the pool's statement_mode is
 * AGEC_STMT_NAMED and the statement's opts->prepare is true (the default);
 * a statement not yet cached is prepared in the same pipeline, just before
 * its first execution. In AGEC_STMT_UNNAMED mode (behind a transaction-mode
 * pooler such as PgBouncer) every statement is an unnamed
 * Parse/Bind/Execute/Sync that leaves nothing on the server: safe there
 * (docs/pgbouncer.md has the measurements).
 *
 * Behind a transaction pooler. A batch with a Sync per statement (not
 * all_or_nothing, not in a transaction) asks once per connection whether a
 * pooler is in between (one round trip, `SELECT pg_backend_pid()` against
 * the session key's pid, kept with the connection) and behind one sends
 * its statements one at a time, each after the previous one's Sync answer:
 * PgBouncer 1.18 may end a transaction sent earlier on another server
 * (docs/pgbouncer.md). An all-or-nothing batch is one transaction and is
 * pipelined everywhere.
 *
 * A cached statement that went
 * stale (26000, "cached plan must not change result type") fails its
 * statement and is forgotten, without the retry agec_sql_exec makes (the
 * next batch prepares it again).
 *
 * What a pipeline cannot carry: COPY FROM STDIN / TO STDOUT (a text that
 * starts with COPY is refused by the add with AGEC_ERR_STATE; one that
 * reaches the server anyway fails with AGEC_ERR_STATE, and the connection
 * is given up), several statements in one text (the server
 * answers 42601), transaction control statements (BEGIN/COMMIT) inside an
 * all-or-nothing batch (they end its implicit transaction: use agec_tx_begin
 * around the batch instead).
 *
 * Thread-safety: a batch belongs to the thread that borrowed its
 * connection; it holds no state shared with other threads. Results read
 * from it may be read by any one thread at a time.
 */
#ifndef AGEC_BATCH_H
#define AGEC_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "agec/cypher.h"
#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agec_batch agec_batch;

/** Most statements one batch may hold. */
#define AGEC_BATCH_MAX 1000000

/**
 * Options of a batch. Initialise with agec_batch_opts_init(), which also
 * sets struct_size; fields are only ever appended. NULL means all defaults.
 */
typedef struct agec_batch_opts {
    size_t struct_size; /**< set by agec_batch_opts_init(); do not change */
    /** One implicit transaction for the whole batch: the first failure rolls
     *  back every statement (see above). Default false: each statement is
     *  its own transaction. Always in effect inside agec_tx_begin. */
    bool all_or_nothing;
    /** Deadline of the whole batch in ms, from agec_batch_run(); 0 = none
     *  (default). Past it the running statement is cancelled on the server
     *  (the cancel repeated every 50 ms for a grace period of 150 ms, as a
     *  statement timeout does); outcomes that arrive within the grace period
     *  are kept (a statement hit by the cancel reports AGEC_ERR_TIMEOUT);
     *  every statement still without an outcome then reports
     *  AGEC_ERR_TIMEOUT ("may or may not have run"), and the connection is
     *  closed on release (it is left mid-pipeline). */
    int timeout_ms;
} agec_batch_opts;

/** Fill *opts with the defaults above. Thread-safe. */
AGEC_EXPORT void agec_batch_opts_init(agec_batch_opts *opts);

/**
 * Create an empty batch on a borrowed connection. The batch does not own
 * conn: free the batch before releasing conn. Nothing is sent until
 * agec_batch_run().
 * On success *out is owned by the caller: free it with agec_batch_free().
 * Errors: AGEC_ERR_INVALID_ARG (NULL conn or out, timeout_ms < 0, opts not
 * initialised), AGEC_ERR_NO_MEMORY. *out is NULL on failure.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_batch_create(agec_conn *conn,
                                                         const agec_batch_opts *opts,
                                                         agec_batch **out, agec_error *err);

/**
 * Queue one SQL statement with text parameters $1..$n (values[i] NULL =
 * SQL NULL). The text and the values are copied: the caller may free them
 * when the call returns. opts (NULL: defaults): `prepare` as for
 * agec_sql_exec; `timeout_ms` and the column fields are ignored (the batch
 * has one deadline).
 * Errors: AGEC_ERR_INVALID_ARG (NULL b or sql, nparams < 0 or >
 * AGEC_MAX_PARAMS, values NULL with nparams > 0, AGEC_BATCH_MAX statements
 * already queued), AGEC_ERR_STATE (the batch has run: agec_batch_reset()
 * first; a text that starts with COPY), AGEC_ERR_NO_MEMORY. A failed add leaves the batch as it was.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_batch_add_sql(agec_batch *b, const char *sql,
                                                          int nparams, const char *const *values,
                                                          const agec_query_opts *opts,
                                                          agec_error *err);

/**
 * Queue one Cypher query on `graph`, built exactly as agec_cypher_exec()
 * builds it (checked graph name, dollar-quoted query, `params` an agtype
 * map bound as $1, columns from opts->columns / ncolumns or from RETURN,
 * the connection's text cache). Copies what it needs. Errors:
 * AGEC_ERR_INVALID_ARG, AGEC_ERR_NAME, AGEC_ERR_COLUMNS, AGEC_ERR_STATE,
 * AGEC_ERR_NO_MEMORY, as agec_batch_add_sql() and agec_cypher_exec().
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_batch_add_cypher(agec_batch *b, const char *graph,
                                                             const char *query, const char *params,
                                                             const agec_query_opts *opts,
                                                             agec_error *err);

/** Statements queued (0 for NULL). */
AGEC_EXPORT size_t agec_batch_count(const agec_batch *b);

/**
 * Send every queued statement in one flush (pipeline mode, non-blocking,
 * within the batch deadline) and read every outcome in order. Returns only
 * when every statement has an outcome.
 *
 * Returns AGEC_OK when every statement succeeded. Otherwise the status of
 * the first statement (by index) that failed for its own reason, and err
 * holds that statement's error with "statement K: " before the message
 * (K counts from 0, as agec_batch_status does). Failures of the whole batch
 * give every statement the same outcome: AGEC_ERR_INVALID_ARG (NULL b, an
 * empty batch), AGEC_ERR_STATE (the batch has run already, a statement is
 * running on the connection, a cancel still in flight), AGEC_ERR_CONNECTION_LOST
 * (the connection is not open, or broke: statements without an outcome
 * report "may or may not have run"), AGEC_ERR_TIMEOUT (see timeout_ms).
 * After a lost connection or a timeout the connection is closed on release;
 * otherwise it leaves pipeline mode and is usable as before.
 */
AGEC_EXPORT agec_status agec_batch_run(agec_batch *b, agec_error *err);

/**
 * Outcome of statement i (0-based) after agec_batch_run(): AGEC_OK, or its
 * error, copied into err (may be NULL): the server's SQLSTATE, message,
 * detail, hint and position (for Cypher, counted in the query's
 * characters), or agec's own (AGEC_ERR_BATCH_ABORTED, AGEC_ERR_TIMEOUT,
 * AGEC_ERR_CONNECTION_LOST, ...). AGEC_ERR_INVALID_ARG for NULL b or i out
 * of range, AGEC_ERR_STATE before the batch has run. Thread-safe for
 * concurrent readers of a batch no one modifies.
 */
AGEC_EXPORT agec_status agec_batch_status(const agec_batch *b, size_t i, agec_error *err);

/**
 * Result of statement i when it succeeded, else NULL (also before the run,
 * or i out of range). Owned by the batch: valid until agec_batch_reset() or
 * agec_batch_free(), or until taken with agec_batch_take_result().
 */
AGEC_EXPORT agec_result *agec_batch_result(const agec_batch *b, size_t i);

/**
 * Like agec_batch_result(), but hands the result to the caller (free it
 * with agec_result_free()); the batch then holds none for statement i.
 */
AGEC_EXPORT agec_result *agec_batch_take_result(agec_batch *b, size_t i);

/** Drop every statement and outcome, keeping the connection and options,
 *  so the batch can be filled and run again. NULL is accepted. */
AGEC_EXPORT void agec_batch_reset(agec_batch *b);

/** Free a batch and every result it still holds. NULL is accepted. Does
 *  not release the connection. */
AGEC_EXPORT void agec_batch_free(agec_batch *b);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_BATCH_H */
