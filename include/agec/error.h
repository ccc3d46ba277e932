/*
 * agec/error.h: status codes and caller-owned error details.
 *
 * Every agec function that can fail returns an agec_status and takes an
 * optional `agec_error *err` (may be NULL) that it fills on failure. The
 * statement calls (agec/cypher.h execution and result accessors, agec/tx.h,
 * agec/graph.h) also clear it on success, so that err->code is always the
 * last call's status; other calls leave it untouched on success. Nothing
 * about an error is stored on a shared object, so two threads never see each
 * other's errors.
 *
 * Status codes are stable: new codes are appended, never renumbered.
 */
#ifndef AGEC_ERROR_H
#define AGEC_ERROR_H

#include <stddef.h>

#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible agec call. AGEC_OK is 0; the rest are errors. */
typedef enum agec_status {
    AGEC_OK = 0,
    /** An argument was NULL where the API forbids it, or out of its domain. */
    AGEC_ERR_INVALID_ARG = 1,
    /** Memory allocation failed. */
    AGEC_ERR_NO_MEMORY = 2,
    /** A pool configuration field is invalid; the message names the field.
     *  Also a connection refused because the database does not exist
     *  (SQLSTATE 3D000): a configuration error, not retried. */
    AGEC_ERR_CONFIG = 3,
    /** The database could not be reached (connect failed or timed out);
     *  the message carries the last connection error, and sqlstate the
     *  server's reason when it refused (53300 too many connections, 57P03
     *  starting up / shutting down / in recovery). */
    AGEC_ERR_UNREACHABLE = 4,
    /** The server rejected the credentials (SQLSTATE 28000 / 28P01). */
    AGEC_ERR_AUTH = 5,
    /** An acquire timed out because every connection was in use; the message
     *  carries total/in-use/idle/waiting counts. */
    AGEC_ERR_POOL_EXHAUSTED = 6,
    /** The circuit breaker is open: the acquire would have needed a new
     *  connection and connecting is known to fail. Fails fast. */
    AGEC_ERR_BREAKER_OPEN = 7,
    /** The pool is closing or closed; no new acquires are served. */
    AGEC_ERR_POOL_CLOSED = 8,
    /** A statement ran past its timeout and was cancelled on the server
     *  (agec's timeout_ms, or the server's statement_timeout: SQLSTATE
     *  57014). Also a deadline passed in a call that has one (e.g. close). */
    AGEC_ERR_TIMEOUT = 9,
    /** The server reported an error; sqlstate/message/detail/hint/position
     *  hold the server's own text. */
    AGEC_ERR_SERVER = 10,
    /** The connection broke while in use (SQLSTATE class 08, 57P01..57P03,
     *  or the socket died); the connection must be released. */
    AGEC_ERR_CONNECTION_LOST = 11,
    /** Session initialisation (LOAD 'age', SET, user init SQL, on_connect)
     *  failed on a new connection; sqlstate is set when the server failed. */
    AGEC_ERR_INIT = 12,
    /** Malformed agtype/JSON text; `position` is the byte offset. */
    AGEC_ERR_PARSE = 13,
    /** A graph or label name breaks AGE's naming rules. */
    AGEC_ERR_NAME = 14,
    /** A value accessor was used on a value of another type. */
    AGEC_ERR_TYPE = 15,
    /** A number does not fit the requested type, or an index is out of range. */
    AGEC_ERR_RANGE = 16,
    /** A key, graph, label or row was not found. */
    AGEC_ERR_NOT_FOUND = 17,
    /** The call is not valid in the object's current state (for example a
     *  commit with no open transaction, or a query on a busy connection). */
    AGEC_ERR_STATE = 18,
    /** Apache AGE is not available on the server or not loaded. */
    AGEC_ERR_AGE_MISSING = 19,
    /** The RETURN-column helper could not derive columns (e.g. RETURN *). */
    AGEC_ERR_COLUMNS = 20,
    /** An operating-system call failed (threads, sockets, poll). */
    AGEC_ERR_SYSTEM = 21,
    /** A statement was cancelled by a caller (agec_conn_cancel, or
     *  pg_cancel_backend from another session) or by pool shutdown
     *  (SQLSTATE 57014), or a connection attempt was aborted by close. */
    AGEC_ERR_CANCELLED = 22,
    /** A cluster had no node of the kind the call needed within its
     *  deadline (no primary for a write during a failover, no standby in the
     *  read rotation under AGEC_READ_STANDBY_ONLY); the message lists every
     *  node with its role and lag. */
    AGEC_ERR_NO_NODE = 23,
    /** Bad input to the bulk loader (agec/load.h): malformed JSON or CSV, a
     *  value of the wrong type for its column, a missing or duplicate key,
     *  an edge endpoint that does not exist. The message names the source
     *  (file), line and column. */
    AGEC_ERR_INPUT = 24,
    /** A statement of a pipelined batch (agec/batch.h) did not take effect
     *  because another statement of the batch failed: in an all-or-nothing
     *  batch (or a batch inside a transaction) it was not run, or it ran and
     *  was rolled back with the rest. The message names the statement that
     *  failed. */
    AGEC_ERR_BATCH_ABORTED = 25,
} agec_status;

/** Size of the text fields of agec_error, including the terminating NUL.
 *  Longer texts are truncated on a UTF-8 character boundary. */
#define AGEC_ERROR_TEXT_MAX 1024

/**
 * Details of one failure, owned by the caller (usually on the stack).
 * Initialise with AGEC_ERROR_INIT or agec_error_clear(); agec never allocates
 * anything inside it, so it needs no freeing. Passwords from connection
 * strings never appear in any field.
 *
 * Growing safely: fields are only appended, and `size` (set by
 * AGEC_ERROR_INIT and agec_error_clear() to sizeof(agec_error) as the
 * CALLER's header sees it) tells the library how much of the struct the
 * caller has: the library never writes past it, so a program built against
 * an older header keeps working with a newer library. The fields up to
 * `hint` are always there and always written; an uninitialised struct gets
 * exactly those.
 */
typedef struct agec_error {
    size_t size;                       /**< sizeof(agec_error) of the caller's header */
    agec_status code;                  /**< same as the call's return value
                                            (on success: see above) */
    char sqlstate[6];                  /**< server SQLSTATE or "" */
    int position;                      /**< 1-based character position from the
                                            server (within the Cypher text for
                                            Cypher calls), or byte offset for parse
                                            errors; 0 = none */
    char message[AGEC_ERROR_TEXT_MAX]; /**< primary message, never empty on error */
    char detail[AGEC_ERROR_TEXT_MAX];  /**< server DETAIL or "" */
    char hint[AGEC_ERROR_TEXT_MAX];    /**< server HINT, or agec's own hint, or "" */
} agec_error;

/** Static initialiser for an agec_error. */
/* clang-format off */
#define AGEC_ERROR_INIT { sizeof(agec_error), AGEC_OK, "", 0, "", "", "" }
/* clang-format on */

/**
 * Reset *err to the AGEC_ERROR_INIT state, for a struct of `size` bytes.
 * Use it through agec_error_clear(), which passes the caller's sizeof.
 * NULL is accepted and ignored. Thread-safe (touches only *err).
 */
AGEC_EXPORT void agec_error_clear_sized(agec_error *err, size_t size);

/** Reset *err to the AGEC_ERROR_INIT state (see agec_error_clear_sized). */
#define agec_error_clear(err) agec_error_clear_sized((err), sizeof *(err))

/**
 * Static, never-NULL English name of a status code, e.g. "pool exhausted".
 * Unknown codes give "unknown error". Thread-safe.
 */
AGEC_EXPORT const char *agec_strerror(agec_status code);

/**
 * Stable machine-readable identifier of a status code, e.g.
 * "AGEC_ERR_POOL_EXHAUSTED" (what the CLI prints). Static, never NULL.
 */
AGEC_EXPORT const char *agec_status_name(agec_status code);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_ERROR_H */
