/*
 * One libpq connection: connect with a deadline, session init (AGE modes),
 * statements with a deadline, validation, cleanup on release, cancel.
 * Knows nothing of the pool: every call works on one PGconn owned by the
 * calling thread, and every wait is bounded by an absolute deadline
 * (src/session/clock.h).
 */
#ifndef AGEC_SESSION_PGCONN_H
#define AGEC_SESSION_PGCONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/error.h"
#include "agec/pool.h"

/* What a new connection runs before anyone may use it. */
typedef struct agec__session_init {
    agec_age_mode age_mode;
    bool age_create_extension;
    const char *init_sql; /* NULL = none */
    agec_on_connect_fn on_connect;
    void *on_connect_user;
} agec__session_init;

/*
 * Open a connection with libpq's non-blocking API (PQconnectStartParams +
 * PQconnectPoll + poll) so that the whole attempt, all hosts of a multi-host
 * string included, ends by deadline_us (libpq's own connect_timeout is
 * ignored by this API). Host name lookup happens inside libpq and blocks
 * regardless: use hostaddr= to avoid it. keys/vals are NULL-terminated arrays
 * for PQconnectStartParams (expand_dbname = 0).
 * `abort_flag` (may be NULL) is checked every 50 ms; when it becomes true
 * the attempt stops with AGEC_ERR_CANCELLED.
 * Errors: AGEC_ERR_UNREACHABLE (refused, timed out, ...; sqlstate 53300
 * for too many connections, 57P03 for starting up / shutting down / in
 * recovery), AGEC_ERR_AUTH (credentials or pg_hba rejected: sqlstate
 * 28P01/28000), AGEC_ERR_CONFIG (the database does not exist: 3D000),
 * AGEC_ERR_NO_MEMORY, AGEC_ERR_CANCELLED. The SQLSTATEs are recognised from
 * the server's English message text (libpq 15 exposes none for a failed
 * connection). On error *out is NULL. `peer_fd` (may be NULL): on a
 * timeout or an abort after authentication, a duplicate of the socket (the
 * server process is there: the caller can see it exit), else -1; the caller
 * closes it.
 */
agec_status agec__session_connect(const char *const *keys, const char *const *vals,
                                  int64_t deadline_us, const atomic_bool *abort_flag, PGconn **out,
                                  int *peer_fd, agec_error *err);

/* PQfinish(pg), keeping a duplicate of its socket (non-blocking,
 * close-on-exec) to see the server close it: returns it, or -1 if there is
 * none; the caller closes it. The duplicate is half-closed (shutdown
 * SHUT_WR) after PQfinish, so the server sees our end close as it would
 * without it: PostgreSQL exits on Terminate anyway, but the PGlite socket
 * server closes its end only after the client's, and a server process
 * still authenticating waits for the client until authentication_timeout. */
int agec__session_finish_watched(PGconn *pg);

/* Run the session init on a fresh connection: CREATE EXTENSION (optional),
 * LOAD, SET search_path (per age_mode), init_sql, on_connect. Fails with
 * AGEC_ERR_INIT carrying the server's SQLSTATE and message (prefixed with the
 * step), AGEC_ERR_TIMEOUT past the deadline, AGEC_ERR_CONNECTION_LOST, and
 * AGEC_ERR_CANCELLED when abort_flag (may be NULL; checked every few ms while
 * waiting for the server) becomes true. The on_connect callback is the
 * caller's code and is not interrupted. */
agec_status agec__session_setup(PGconn *pg, const agec__session_init *init, int64_t deadline_us,
                                const atomic_bool *abort_flag, agec_error *err);

/* The part of the init a reset_query undoes: SET search_path and init_sql. */
agec_status agec__session_reapply(PGconn *pg, const agec__session_init *init, int64_t deadline_us,
                                  agec_error *err);

/* Run `sql` (simple query protocol, may hold several statements), read every
 * result, succeed only if none failed. Errors: AGEC_ERR_SERVER (or whatever
 * agec__error_from_result maps the SQLSTATE to), AGEC_ERR_TIMEOUT past the
 * deadline (the connection is then mid-query: close it),
 * AGEC_ERR_CONNECTION_LOST, AGEC_ERR_STATE for a COPY to or from the client
 * (ended with agec__session_copy_step; the connection stays usable). */
agec_status agec__session_exec(PGconn *pg, const char *sql, int64_t deadline_us, agec_error *err);

/* Check that the server answers: one empty query, by deadline_us (or
 * AGEC_ERR_CANCELLED when abort_flag, which may be NULL, becomes true).
 * On AGEC_ERR_TIMEOUT the query is still out: agec__session_drain can
 * finish the check later, within the check's own deadline. */
agec_status agec__session_validate(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                   agec_error *err);

/* Read and drop every pending result of what was sent last, by
 * deadline_us; the first failure decides the status (AGEC_ERR_TIMEOUT:
 * still not answered; AGEC_ERR_CANCELLED: abort_flag, may be NULL). */
agec_status agec__session_drain(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                agec_error *err);

/* What one PGresult of a statement means, decided in one place for every
 * reader of results (the session layer's own statements, and the Cypher/SQL
 * executor in src/cypher/exec.c). */
typedef enum agec__res_kind {
    AGEC__RES_ROWS,  /* TUPLES_OK, SINGLE_TUPLE, COMMAND_OK: a statement's success */
    AGEC__RES_EMPTY, /* EMPTY_QUERY: the text held no statement */
    AGEC__RES_COPY,  /* COPY_IN, COPY_OUT, COPY_BOTH: the server waits for or sends COPY data */
    AGEC__RES_ERROR, /* FATAL_ERROR, BAD_RESPONSE, NONFATAL_ERROR, anything unknown */
} agec__res_kind;

agec__res_kind agec__session_classify(const PGresult *res);

/* Leave a COPY state entered by a statement agec does not run COPY for:
 * COPY FROM STDIN is ended with a client-side failure (the server answers
 * with an error, SQLSTATE 57014 "COPY from stdin failed"); the data of COPY
 * TO STDOUT are read and dropped. Never blocks. Returns 1 when the COPY has
 * ended (PQgetResult then gives the COPY's final status), 0 when more input
 * must arrive first (wait until the socket is readable, PQconsumeInput, and
 * call again), -1 when the connection failed or the COPY is COPY BOTH
 * (replication only: the connection must be closed). */
int agec__session_copy_step(PGconn *pg, ExecStatusType copy);

/* The error text of a COPY refused by `who` (e.g. "agec_sql_exec"). */
#define AGEC__COPY_REFUSED                                                             \
    "COPY to or from the client (STDIN/STDOUT) is not supported here; use the loader " \
    "(agec/load.h) or COPY ... FROM/TO a server file, or run COPY through agec_conn_pgconn()"

/* Sending without blocking past a deadline. libpq in blocking mode (what
 * users of the escape hatch get) waits with no limit inside PQsend* when the
 * socket buffer is full, e.g. a multi-MB parameter behind a dead peer. So:
 * agec__session_send_begin (non-blocking mode; false on failure), then
 * PQsendQuery/PQsendQueryParams/..., then agec__session_send_flush, which
 * sends what is buffered by deadline_us (reading meanwhile) and restores
 * blocking mode. On AGEC_ERR_TIMEOUT or AGEC_ERR_CANCELLED a message is half
 * sent: the connection is unusable (close it; it stays non-blocking so that
 * closing it cannot block). */
bool agec__session_send_begin(PGconn *pg);
/* Wait until the next PQgetResult(pg) would not block (a result, or the
 * end of results, has arrived), by deadline_us. AGEC_ERR_TIMEOUT past it,
 * AGEC_ERR_CANCELLED on abort_flag (may be NULL), AGEC_ERR_CONNECTION_LOST
 * if the connection broke (err filled). */
agec_status agec__session_wait_ready(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                     agec_error *err);
agec_status agec__session_send_flush(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                     agec_error *err);

/* Outcome of the cleanup on release. */
typedef enum agec__cleanup {
    AGEC__CLEAN_OK = 0, /* idle, no transaction: reusable */
    AGEC__CLEAN_BROKEN, /* bad or unknown state: close (reason broken) */
    AGEC__CLEAN_FAILED, /* cancel/drain/ROLLBACK failed or timed out: close (reason reset) */
} agec__cleanup;

typedef struct agec__cancel_key agec__cancel_key;

/* Bring a released connection back to "idle, no transaction" by its
 * transaction status: IDLE -> nothing (no round trip); INTRANS/INERROR ->
 * ROLLBACK; ACTIVE -> drain if the results are already there, else cancel
 * (on `key`, the connection's cancel key; repeated while unanswered) +
 * drain, then the same; UNKNOWN or CONNECTION_BAD or pipeline/COPY mode ->
 * broken. Before anything is sent, and before it reports the connection
 * clean, every cancel request on `key` must have been delivered
 * (agec__cancel_key_settle), else FAILED. Returns by deadline_us whatever the
 * network does. */
agec__cleanup agec__session_cleanup(PGconn *pg, agec__cancel_key *key, int64_t deadline_us);

/*
 * A cancel request that cannot hold up the caller. PQcancel blocks, with no
 * timeout, until the server closes the cancel connection: behind a black
 * hole (a peer or proxy that accepts bytes and never answers) it never
 * returns. So the request runs on a short-lived detached thread, and the
 * caller only waits for it as long as its own deadline allows; a job still
 * blocked when the caller gives up ends by itself once the network answers
 * or fails.
 *
 * A cancel key is the connection's PGcancel with a reference count, made
 * once at connect by the thread that owns the connection (PQgetCancel reads
 * the PGconn), then shared: any thread may start jobs on it while the
 * connection is in use, and each job keeps its own reference, so a job may
 * outlive the connection.
 */
/* PQgetCancel(pg) with one reference; NULL when out of memory or pg has no
 * socket. */
agec__cancel_key *agec__cancel_key_make(PGconn *pg);
/* Drop one reference; the last frees the key. NULL is ignored. */
void agec__cancel_key_unref(agec__cancel_key *k);
/* True while a request started on k has not finished (cheap; NULL: false). */
bool agec__cancel_key_busy(agec__cancel_key *k);
/* Wait until no request started on k is in flight, or deadline_us passes;
 * true when none is. A finished request has been acknowledged by the
 * server (or has failed): its signal cannot reach a later statement.
 * NULL: true. */
bool agec__cancel_key_settle(agec__cancel_key *k, int64_t deadline_us);

typedef struct agec__cancel_job agec__cancel_job;
/* Start a request on a thread of its own. NULL when it could not be
 * started (key NULL, memory, threads). */
agec__cancel_job *agec__cancel_start_key(agec__cancel_key *key);
/* The request has been sent and acknowledged by the server, or failed. */
bool agec__cancel_done(agec__cancel_job *j);
/* The caller is no longer interested; the job frees itself when it ends.
 * NULL is ignored. */
void agec__cancel_release(agec__cancel_job *j);
/* Wait until the request has finished or deadline_us passes (AGEC__NEVER:
 * no limit); true when it finished. Used so that a cancel that did its job
 * leaves no thread or socket behind the call that sent it. NULL: true. */
bool agec__cancel_wait(agec__cancel_job *j, int64_t deadline_us);
/* How the request went: AGEC_OK (sent and acknowledged), AGEC_ERR_TIMEOUT
 * (not finished yet), AGEC_ERR_UNREACHABLE (libpq's reason, passwords
 * redacted). */
agec_status agec__cancel_result(agec__cancel_job *j, agec_error *err);

#endif
