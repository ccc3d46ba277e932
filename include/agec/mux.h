/*
 * agec/mux.h: many callers, few connections. Statements (SQL with bound
 * parameters, or Cypher) from any number of threads, or from one event
 * loop, are pipelined (libpq pipeline mode) onto a few connections the mux
 * borrows from an agec_pool, and each caller gets its own result, error
 * and SQLSTATE. Design and figures: docs/mux.md.
 *
 * What runs through the mux and what does not
 *   Each statement runs on its own, in its own implicit transaction (a Sync
 *   follows every statement), on whichever connection has the fewest
 *   statements outstanding. Two statements of one caller may run on two
 *   different server sessions, in any order relative to other callers'.
 *   So nothing that keeps state in the session belongs here: transactions
 *   (BEGIN ... COMMIT), SET, temporary tables, cursors, LISTEN, advisory
 *   session locks, COPY. For those borrow a connection (agec_pool_acquire,
 *   agec/tx.h). The mux refuses, with AGEC_ERR_INVALID_ARG before anything
 *   is sent, statements whose first keyword is BEGIN, START, COMMIT, END,
 *   ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE, SET, RESET, DISCARD,
 *   LISTEN, UNLISTEN, DECLARE, FETCH, MOVE, CLOSE, COPY, LOAD, DEALLOCATE.
 *   This is a keyword check, not a parser: a set_config() inside a SELECT
 *   is not caught (and would leak into later statements of other callers:
 *   don't). Several statements in one string are refused by the server
 *   (the extended protocol takes one statement).
 *
 * Deadlines (agec_query_opts.timeout_ms)
 *   A deadline never cancels another caller's statement. A statement whose
 *   deadline passes before it is sent is removed and fails with
 *   AGEC_ERR_TIMEOUT; one already sent fails with AGEC_ERR_TIMEOUT for its
 *   caller at its deadline, and its result is dropped when it arrives. The
 *   backend is cancelled only when every statement in flight on its
 *   connection has passed its deadline; no new statement is sent to it
 *   until the cancel has been delivered and every result drained (else, 1 s
 *   after the cancel, the connection is closed and replaced).
 *
 * Threads
 *   Every function may be called from any thread, except that no call may
 *   race agec_mux_close(). There is no mux thread: a caller that submits a
 *   statement sends it itself when the connection's I/O role is free (and
 *   sends what others queued with it); a caller waiting for a result reads
 *   results for everyone on that connection while it holds the role, and
 *   passes the role on to another waiter when its own result is in.
 *   Callbacks (agec_mux_submit_* with fn) run only inside
 *   agec_mux_dispatch() and agec_mux_shutdown(), on the calling thread,
 *   with no lock held: they may call any agec_mux_* function but
 *   agec_mux_shutdown/agec_mux_close.
 *
 * Errors
 *   Each statement's status and agec_error are its own: a failed statement
 *   aborts nothing else (PGRES_PIPELINE_ABORTED never reaches another
 *   caller). A connection lost mid-pipeline fails every statement in flight
 *   on it with AGEC_ERR_CONNECTION_LOST (the one the server was running
 *   gets the server's message, e.g. 57P01), and the mux borrows a fresh
 *   connection for the statements still queued.
 *
 * PgBouncer (transaction mode)
 *   Each statement is followed by a Sync, so it is a transaction of its
 *   own, which transaction pooling routes correctly as long as it reaches
 *   the pooler only once the previous transaction's Sync is answered:
 *   PgBouncer 1.18 releases the server when every Sync it has seen is
 *   answered, so a transaction sent earlier could run on one server and
 *   end on another (its answer lost, another client's gained). The mux
 *   finds a pooler by itself: when a connection's backend pid
 *   (PQbackendPID, from the session key) is not the pid of the server
 *   process that answers (pg_backend_pid()), a pooler is in between, and
 *   that connection carries one transaction at a time, each sent after the
 *   previous one's Sync answer: callers are still multiplexed onto few
 *   connections, without pipelining (agec_mux_stats.pooler). In
 *   AGEC_STMT_NAMED mode the mux
 *   keeps a cache of named prepared statements per connection (64); when
 *   the server does not know one of them (26000: the statements of one
 *   client connection reach several server sessions), the statement (which
 *   did not run) is sent again unnamed, and so is every statement of the
 *   mux from then on (agec_mux_stats.unnamed_fallback). Use
 *   AGEC_STMT_UNNAMED behind a pooler anyway. docs/mux.md has the findings.
 */
#ifndef AGEC_MUX_H
#define AGEC_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/cypher.h"
#include "agec/error.h"
#include "agec/export.h"
#include "agec/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A multiplexer over some of a pool's connections. Opaque. */
typedef struct agec_mux agec_mux;

/** One submitted statement, when the caller asked for a handle. Opaque. */
typedef struct agec_mux_op agec_mux_op;

/**
 * Mux configuration. Start from agec_mux_config_init(); fields are only
 * appended.
 *
 * | field              | default | meaning |
 * |--------------------|---------|---------|
 * | connections        | 4       | connections borrowed from the pool (1..64), each lazily on first use; keep it below the pool's max so that transactions can still borrow |
 * | acquire_timeout_ms | 5000    | limit for borrowing (or replacing) one connection; also bounded by the deadline of the statement that needs it |
 * | max_depth          | 0       | most statements in flight on one connection (0 = no limit) |
 * | group_max          | 1       | statements sent together that share one Sync (1..256); see below |
 *
 * group_max > 1 (opt-in) trades isolation for throughput: up to group_max
 * statements sent in one write share one Sync, so the server runs them as
 * ONE implicit transaction, flushes once and the client wakes once (on 2
 * vCPUs: a Sync per statement caps raw libpq pipelining at ~1.3x the
 * synchronous ceiling, one Sync per 16 reaches ~8x; docs/mux.md). Results
 * are handed out only after the group's Sync (its commit). When a statement
 * of a group fails, it gets its own error, and the others of the group,
 * rolled back or skipped by the server, are sent again, each with a Sync of
 * its own: no caller sees another's error. What changes: a group holds its
 * locks until its Sync (deadlocks between connections become possible
 * where single statements would only wait), a statement rolled back by
 * another's error runs a second time (effects outside transactions, such
 * as nextval() or a NOTICE, repeat), and statements that cannot run inside
 * a transaction block (VACUUM, CREATE DATABASE, ... CONCURRENTLY) fail in a
 * group. For read-mostly traffic of independent statements.
 */
typedef struct agec_mux_config {
    size_t struct_size; /**< set by agec_mux_config_init(); do not change */
    int connections;
    int acquire_timeout_ms;
    int max_depth;
    int group_max;
} agec_mux_config;

/** Fill *cfg with the defaults. NULL is ignored. Thread-safe. */
AGEC_EXPORT void agec_mux_config_init(agec_mux_config *cfg);

/**
 * Create a mux on `pool` (which must outlive it: close the mux first).
 * cfg NULL = defaults. Nothing is connected yet.
 * Errors: AGEC_ERR_INVALID_ARG (pool or out NULL), AGEC_ERR_CONFIG (names
 * the field), AGEC_ERR_NO_MEMORY, AGEC_ERR_SYSTEM (eventfd/epoll).
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_mux_open(agec_pool *pool, const agec_mux_config *cfg,
                                                     agec_mux **out, agec_error *err);

/**
 * Completion callback: `st` is the statement's status, `res` its rows on
 * AGEC_OK (owned by the callback: free it with agec_result_free), else
 * NULL; `err` its error details (valid during the call only). Runs inside
 * agec_mux_dispatch() or agec_mux_shutdown() (see Threads above).
 */
typedef void (*agec_mux_done_fn)(agec_status st, agec_result *res, const agec_error *err,
                                 void *user);

/**
 * Submit one SQL statement with `nparams` text parameters (NULL = SQL
 * NULL). Returns at once (it may have sent the statement, never waits for
 * the server). opts: NULL or agec_query_opts_init'ed; timeout_ms is the
 * statement's deadline (0 = none), `prepare` as for agec_sql_exec (named
 * mode only), columns ignored. sql and values are copied.
 * Exactly one of `fn` (completion by callback, in agec_mux_dispatch) and
 * `op` (a handle for agec_mux_wait, freed with agec_mux_op_free) must be
 * given. On error nothing was submitted and fn is never called.
 * Errors: AGEC_ERR_INVALID_ARG (NULLs, both or neither of fn/op, too many
 * parameters, a session-changing statement: see above),
 * AGEC_ERR_POOL_CLOSED (after agec_mux_shutdown), AGEC_ERR_NO_MEMORY.
 * Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_mux_submit_sql(agec_mux *mux, const char *sql,
                                                           int nparams, const char *const *values,
                                                           const agec_query_opts *opts,
                                                           agec_mux_done_fn fn, void *user,
                                                           agec_mux_op **op, agec_error *err);

/**
 * Submit one Cypher query on `graph` with an optional agtype map `params`
 * ($1), built exactly as agec_cypher_exec builds it (columns from opts or
 * from RETURN; graph name checked; positions in errors count within the
 * query). Otherwise as agec_mux_submit_sql. Errors also AGEC_ERR_NAME,
 * AGEC_ERR_COLUMNS.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_mux_submit_cypher(agec_mux *mux, const char *graph,
                                                              const char *query, const char *params,
                                                              const agec_query_opts *opts,
                                                              agec_mux_done_fn fn, void *user,
                                                              agec_mux_op **op, agec_error *err);

/**
 * Wait up to timeout_ms (negative = until the statement completes; its own
 * deadline still applies) for a submitted statement. While waiting the
 * thread may do the connection's I/O for everyone on it. When the
 * statement has completed, returns its status, sets *out (NULL allowed:
 * the rows are then dropped) to its rows on AGEC_OK and fills err; the
 * result is handed out once (a second wait gives AGEC_ERR_STATE).
 * Not completed in time: AGEC_ERR_TIMEOUT with agec_mux_op_done() still
 * false (the statement keeps running; wait again or free the handle).
 * Thread-safe, but one waiter per handle.
 */
AGEC_EXPORT agec_status agec_mux_wait(agec_mux_op *op, int timeout_ms, agec_result **out,
                                      agec_error *err);

/** True once the statement has completed (no wait, no I/O). NULL: false. */
AGEC_EXPORT bool agec_mux_op_done(agec_mux_op *op);

/** Free a handle. A statement not completed yet is abandoned: dropped if
 *  not sent, else its result is discarded on arrival (it is never
 *  cancelled on another caller's account). NULL is ignored. A handle may be
 *  freed after agec_mux_shutdown, and must be before agec_mux_close. */
AGEC_EXPORT void agec_mux_op_free(agec_mux_op *op);

/** Run one SQL statement and wait for it: agec_mux_submit_sql + wait.
 *  *out as agec_sql_exec (required). Thread-safe. */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_mux_sql(agec_mux *mux, const char *sql, int nparams,
                                                    const char *const *values,
                                                    const agec_query_opts *opts, agec_result **out,
                                                    agec_error *err);

/** Run one Cypher query and wait for it (agec_mux_submit_cypher + wait). */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_mux_cypher(agec_mux *mux, const char *graph,
                                                       const char *query, const char *params,
                                                       const agec_query_opts *opts,
                                                       agec_result **out, agec_error *err);

/**
 * A file descriptor for an event loop (epoll, poll, libuv's uv_poll,
 * libevent): it becomes readable when agec_mux_dispatch() has work (a
 * connection has data, a completion is queued, a statement waits to be
 * sent). Watch it for reading, level-triggered; never read or close it.
 * Valid until agec_mux_close. (It is an epoll descriptor over the
 * connections' sockets and an eventfd.) -1 for NULL.
 */
AGEC_EXPORT int agec_mux_fd(agec_mux *mux);

/**
 * Drive the mux from an event loop: wait up to timeout_ms (0 = not at all,
 * negative = until something happens) for agec_mux_fd() to be readable,
 * then do the I/O of every connection whose I/O role is free (send queued
 * statements, read the results that are in, expire deadlines) without
 * blocking, and run the completion callbacks that are due, in this thread.
 * Returns the number of callbacks run (>= 0), or -1 on a bad argument.
 * Thread-safe (several threads may dispatch).
 */
AGEC_EXPORT int agec_mux_dispatch(agec_mux *mux, int timeout_ms);

/** Milliseconds until the earliest statement deadline in the mux, for an
 *  event loop's timer (then call agec_mux_dispatch); -1 = none. */
AGEC_EXPORT int agec_mux_next_timeout_ms(agec_mux *mux);

/** Counters since open (cumulative) and current depth. */
typedef struct agec_mux_stats {
    size_t struct_size;
    uint64_t submitted;     /**< statements accepted */
    uint64_t completed;     /**< statements completed (any status) */
    uint64_t timeouts;      /**< completed with AGEC_ERR_TIMEOUT by their deadline */
    uint64_t cancels;       /**< cancel requests sent (all in flight had expired) */
    uint64_t replaced;      /**< connections closed as broken or undrainable */
    uint64_t batches;       /**< flushes (each sends >= 1 statement) */
    uint64_t role_handoffs; /**< I/O role passed from one waiter to another */
    int outstanding;        /**< submitted, not completed */
    uint64_t resent;        /**< statements sent again alone because another statement of
                                 their group (group_max) failed */
    bool pooler;            /**< a connection's backend pid differed from its session key's:
                                 a transaction-mode pooler is in between, and such
                                 connections carry one transaction at a time */
    bool unnamed_fallback;  /**< named mode met a cached statement missing on the server
                                 (26000: a transaction-mode pooler): the mux sends every
                                 statement unnamed since (see PgBouncer above) */
    int64_t round_trip_us;  /**< the round trip the mux measured (send to result): per
                                 connection the least of its last 64-128 statements, the
                                 smallest over connections; -1 before any result. From
                                 1000 us on (a server across a network) every new statement
                                 is sent at once instead of with the next results' flush */
} agec_mux_stats;

/** Fill *out (its first `size` bytes) with the mux's counters; use
 *  agec_mux_stats_get(). Thread-safe. */
AGEC_EXPORT void agec_mux_stats_get_sized(agec_mux *mux, agec_mux_stats *out, size_t size);
#define agec_mux_stats_get(mux, out) agec_mux_stats_get_sized((mux), (out), sizeof *(out))

/**
 * Stop the mux: new submissions fail with AGEC_ERR_POOL_CLOSED; every
 * outstanding statement completes now with AGEC_ERR_POOL_CLOSED (in flight
 * ones are dropped on their connection: connections with statements still
 * running are closed, idle ones go back to the pool); callbacks still due
 * run on this thread; waiters are woken. Waits for threads inside the mux
 * to leave (they leave at once). Idempotent. Handles stay valid until
 * freed; the mux stays valid (every call fails with POOL_CLOSED) until
 * agec_mux_close. Must not be called from a callback.
 */
AGEC_EXPORT agec_status agec_mux_shutdown(agec_mux *mux, agec_error *err);

/** agec_mux_shutdown if not done, then free the mux. No other call may race
 *  it, and every handle must have been freed. NULL is ignored. */
AGEC_EXPORT void agec_mux_close(agec_mux *mux);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_MUX_H */
