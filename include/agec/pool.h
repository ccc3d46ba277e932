/*
 * agec/pool.h: a thread-safe pool of libpq connections to PostgreSQL with
 * Apache AGE.
 *
 * Life of a connection
 *   1. acquire: the most recently used idle connection (checked first with an
 *      empty query if it was idle longer than validate_idle_ms), else a new one
 *      (opened with libpq's non-blocking API outside the pool lock) if fewer
 *      than `max` exist, else the caller waits. Waiting is fair within a
 *      bound: an idle connection goes to whoever asks first (usually the
 *      thread that just gave it back, with no wake-up), until the oldest
 *      waiter has waited fair_wait_ms; from then on it is served first. The
 *      whole call, retries included, is bounded by its timeout.
 *   2. init: every new connection runs its session init (AGE: LOAD 'age' and
 *      SET search_path) before anyone can use it.
 *   3. use: one thread at a time uses a borrowed connection (agec_conn_pgconn()
 *      gives its PGconn, or use the Cypher API).
 *   4. release: by transaction status: idle -> back to the pool with no round
 *      trip; in a (failed) transaction -> ROLLBACK; a query still running ->
 *      cancel, drain, then decide; broken -> closed. Then the optional
 *      reset_query, followed by the init's SET statements again. No cancel
 *      request sent on a connection (a statement timeout's, cleanup's,
 *      agec_conn_cancel's) can reach a later statement: each must have been
 *      delivered before anything else runs on the connection.
 *   5. connections past their lifetime, broken ones and ones whose reset failed
 *      are closed, never handed out again.
 *
 * Thread safety
 *   Every agec_pool_* function may be called from any thread at any time,
 *   except that no call may race agec_pool_close() (see there) and nothing
 *   may be called on a pool once close has been called (except agec_conn_*
 *   on connections still borrowed, see close).
 *   A borrowed agec_conn (and its PGconn) belongs to the thread that uses it:
 *   never use one connection from two threads at once. The exception is
 *   agec_conn_cancel(), which any thread may call while the connection is
 *   borrowed.
 *
 * Errors
 *   Functions that can fail return an agec_status and fill an optional
 *   caller-owned agec_error (NULL allowed). Nothing is stored on the pool.
 *   Passwords from conninfo never appear in messages.
 */
#ifndef AGEC_POOL_H
#define AGEC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A pool of connections. Opaque; created by agec_pool_open(). */
typedef struct agec_pool agec_pool;

/** A connection borrowed from a pool. Opaque; valid from a successful acquire
 *  until agec_conn_release() or agec_conn_release_broken(). */
typedef struct agec_conn agec_conn;

/** How each new connection prepares Apache AGE (REFERENCE: AGE installs its
 *  hooks when its library is loaded into the backend). */
typedef enum agec_age_mode {
    /** `LOAD 'age'` then `SET search_path = ag_catalog, "$user", public`.
     *  Needs a superuser (or a server that allows it). The default. */
    AGEC_AGE_LOAD = 0,
    /** The server preloads AGE (shared_preload_libraries = age, as managed
     *  services do): no LOAD, only the SET search_path. */
    AGEC_AGE_PRELOADED = 1,
    /** Non-superusers: `LOAD '$libdir/plugins/age'` then SET search_path. */
    AGEC_AGE_PLUGINS = 2,
    /** Plain PostgreSQL: no AGE setup at all. */
    AGEC_AGE_OFF = 3,
} agec_age_mode;

/** How statements are sent to the server (agec_pool_config.statement_mode),
 *  in the spirit of pgx's QueryExecMode and psycopg's prepare_threshold. */
typedef enum agec_stmt_mode {
    /** Named prepared statements, prepared once per connection and cached
     *  (agec_query_opts.prepare, AGEC_STMT_CACHE_MAX). The fastest for
     *  repeated statements; needs every statement of a connection to reach
     *  the same server session. The default. */
    AGEC_STMT_NAMED = 0,
    /** Unnamed extended protocol: Parse/Bind/Describe/Execute/Sync sent in
     *  one go for each statement (parameters still bound, never spliced
     *  into the text; statements without parameters use the simple
     *  protocol). Nothing outlives the statement on the server, so it works
     *  behind a transaction-mode pooler (PgBouncer pool_mode = transaction),
     *  where a named statement prepared by one transaction is missing on the
     *  server connection the next transaction gets (SQLSTATE 26000). The
     *  per-statement `prepare` option is then ignored. */
    AGEC_STMT_UNNAMED = 1,
} agec_stmt_mode;

/** Circuit breaker states (resilience4j names). */
typedef enum agec_breaker_state {
    /** Connecting works (or has not failed `breaker_threshold` times in a row). */
    AGEC_BREAKER_CLOSED = 0,
    /** Connecting is known to fail: an acquire that needs a new connection
     *  fails at once with AGEC_ERR_BREAKER_OPEN for breaker_open_ms. */
    AGEC_BREAKER_OPEN = 1,
    /** The open period is over and one probe connection attempt is under way;
     *  other attempts still fail fast. Success closes, failure reopens. */
    AGEC_BREAKER_HALF_OPEN = 2,
} agec_breaker_state;

/** Why the pool closed a connection (agec_pool_event.reason, stats counters). */
typedef enum agec_close_reason {
    AGEC_CLOSE_IDLE = 0,       /**< idle longer than idle_timeout_ms above `min` */
    AGEC_CLOSE_LIFETIME = 1,   /**< older than max_lifetime_ms (with jitter) */
    AGEC_CLOSE_BROKEN = 2,     /**< lost, fatal SQLSTATE, bad status, or released as broken */
    AGEC_CLOSE_VALIDATION = 3, /**< failed the check before use */
    AGEC_CLOSE_RESET = 4,      /**< ROLLBACK, cancel or reset_query failed on release */
    AGEC_CLOSE_SHUTDOWN = 5,   /**< agec_pool_close() */
} agec_close_reason;
#define AGEC_CLOSE_REASON_COUNT 6

/** What an agec_pool_event reports. */
typedef enum agec_pool_event_type {
    AGEC_EV_CONNECT = 0, /**< a new connection is open and initialised (info) */
    AGEC_EV_CONNECT_FAILED =
        1, /**< connect or session init failed (warning); status+message; not sent for an attempt the acquirer's own deadline cut short (not a failure) */
    AGEC_EV_CLOSE = 2,             /**< a connection was closed; reason (warning when broken
                                        or reset failed, else info) */
    AGEC_EV_ACQUIRE_TIMEOUT = 3,   /**< an acquire timed out (warning); status tells exhausted
                                        vs unreachable, message has the counts or last error */
    AGEC_EV_VALIDATION_FAILED = 4, /**< the check before use failed (warning) */
    AGEC_EV_BREAKER = 5,           /**< breaker changed state: breaker_from -> breaker (warning) */
    AGEC_EV_LEAK_SUSPECTED = 6,    /**< held longer than leak_threshold_ms (warning);
                                        file/line/func of the acquire, held_ms */
    AGEC_EV_LEAK_RETURNED = 7,     /**< a suspected leak came back after held_ms (warning) */
    AGEC_EV_NOTICE = 8,            /**< the server sent a notice (RAISE NOTICE, "graph created",
                                        WARNING, ...) on a pool connection: severity, sqlstate,
                                        message, detail, hint; `warning` for WARNING only */
} agec_pool_event_type;

/** One event. Every pointer in it is valid only during the callback.
 *  The library fills it and passes it to the callback; fields are only ever
 *  appended (struct_size says how many this library fills), so a callback
 *  built against an older header keeps working. */
typedef struct agec_pool_event {
    agec_pool_event_type type;
    bool warning;             /**< true for the events the default logger prints */
    const char *pool_name;    /**< agec_pool_config.name */
    uint64_t conn_id;         /**< the connection's id in this pool (1, 2, ...), 0 = none */
    agec_close_reason reason; /**< AGEC_EV_CLOSE only */
    agec_status status;       /**< error code for failures, else AGEC_OK */
    const char *sqlstate;     /**< server SQLSTATE for failures, else "" */
    const char *message;      /**< human-readable text, never NULL */
    const char *file;         /**< leak events: where the connection was acquired */
    int line;
    const char *func;
    int64_t held_ms;                 /**< leak events: how long it has been borrowed */
    agec_breaker_state breaker;      /**< current breaker state */
    agec_breaker_state breaker_from; /**< AGEC_EV_BREAKER: the previous state */
    size_t struct_size;              /**< sizeof(agec_pool_event) of the library */
    const char *severity; /**< AGEC_EV_NOTICE: "NOTICE", "WARNING", "INFO", "LOG", "DEBUG"
                               (never translated), else "" */
    const char *detail;   /**< AGEC_EV_NOTICE: the server's DETAIL; AGEC_EV_ACQUIRE_TIMEOUT:
                               the error's detail (the longest holders); else "" */
    const char *hint;     /**< AGEC_EV_NOTICE: the server's HINT, else "" */
} agec_pool_event;

/**
 * Event callback. Called from whichever thread caused the event (a caller's
 * thread in acquire/release/close, or the pool's maintenance thread), never
 * with the pool lock held, possibly from several threads at once: events
 * found under the lock are sent after it is dropped, and libpq is never
 * called under it (a server's FATAL on an idle connection reaches libpq's
 * notice receiver on the maintenance thread, outside the lock). So it may
 * call agec_pool_stats_get(), agec_pool_stats_prometheus(), the *_name
 * functions and agec_pool_breaker_probe(), take locks of its own, and
 * acquire with a timeout of 0 (agec_pool_acquire_timeout(pool, 0, ...):
 * it never waits for another caller) and release what it got; mind that
 * these send events of their own, so guard against recursion (a
 * thread-local flag). It must not call agec_pool_close() or wait for a
 * connection (a timeout other than 0). A slow callback delays only the thread
 * it runs on (for the maintenance thread: idle reaping, leak scans, top-up),
 * never other callers of the pool.
 */
typedef void (*agec_pool_event_fn)(const agec_pool_event *ev, void *user);

/** The default event callback: prints events with `warning` set to stderr as
 *  one line "agec pool NAME: ..." (so of the server's notices only WARNINGs
 *  are printed, never NOTICE or INFO). Thread-safe. Exported so a custom
 *  callback can chain to it. */
AGEC_EXPORT void agec_pool_event_log_stderr(const agec_pool_event *ev, void *user);

/** An event callback that does nothing: set on_event to it to silence the pool. */
AGEC_EXPORT void agec_pool_event_ignore(const agec_pool_event *ev, void *user);

/** Static English name of an event type ("connect", "leak suspected", ...). */
AGEC_EXPORT const char *agec_pool_event_name(agec_pool_event_type type);
/** Static name of a close reason ("idle", "lifetime", "broken", ...). */
AGEC_EXPORT const char *agec_close_reason_name(agec_close_reason reason);
/** Static name of a breaker state ("closed", "open", "half_open"). */
AGEC_EXPORT const char *agec_breaker_state_name(agec_breaker_state state);

/**
 * User hook run once on every new connection, after the AGE init and
 * init_sql, before the connection is handed out. Return AGEC_OK to accept;
 * anything else closes the connection and counts as a failed connection
 * attempt (fill *err to say why; err is never NULL). Runs without the pool
 * lock, on the thread that opens the connection.
 */
typedef agec_status (*agec_on_connect_fn)(PGconn *conn, void *user, agec_error *err);

/**
 * Pool configuration. Always start from agec_pool_config_init(), then change
 * fields: fields are only ever appended, and struct_size tells the library
 * which ones the caller's header knew. Strings are copied by agec_pool_open();
 * the struct may be freed right after it.
 *
 * | field                   | default | meaning |
 * |-------------------------|---------|---------|
 * | conninfo                | NULL    | libpq keyword string or URI, multi-host allowed; NULL or "" = libpq environment (PGHOST, ...) |
 * | max                     | 10      | hard limit of server processes: idle + in use + being opened + being checked + closing ones whose server process has not exited yet (>= 1; see docs/pool-design.md for the one exception, a host that stops answering) |
 * | min                     | 0       | connections kept open by the maintenance thread, restored after loss (<= max) |
 * | idle_timeout_ms         | 30000   | idle connections above `min` are closed after this; 0 = never |
 * | connect_timeout_ms      | 2000    | limit for opening one connection: TCP + auth + init (> 0) |
 * | acquire_timeout_ms      | 60000   | limit for one acquire, all retries included (>= 0; 0 = do not wait for others: see agec_pool_acquire_at) |
 * | max_lifetime_ms         | 1800000 | retire connections this old (minus a per-connection random jitter of up to lifetime_jitter_pct); in-use ones retire on release; 0 = never |
 * | lifetime_jitter_pct     | 2.5     | jitter of max_lifetime_ms in percent (0..50) |
 * | validate_idle_ms        | 500     | check a connection idle longer than this before handing it out; 0 = always check; -1 = never |
 * | validation_timeout_ms   | 5000    | limit for one check (also bounded by the acquire deadline) (> 0) |
 * | reset_timeout_ms        | 5000    | limit for the cleanup on release (cancel, ROLLBACK, reset_query) (> 0) |
 * | leak_threshold_ms       | 0       | report connections held longer than this (event); 0 = off |
 * | age_mode                | AGEC_AGE_LOAD | see agec_age_mode |
 * | age_create_extension    | false   | run CREATE EXTENSION IF NOT EXISTS age first |
 * | init_sql                | NULL    | extra SQL run on every new connection, and again after reset_query |
 * | reset_query             | NULL    | run on every release (e.g. "DISCARD ALL"), then the init SETs and init_sql again; if it contains DISCARD or DEALLOCATE the Cypher layer's prepared-statement cache is dropped with it, else (RESET ALL, say) the prepared statements and the cache are kept |
 * | on_connect, on_connect_user | NULL | agec_on_connect_fn run once per new connection |
 * | reconnect_backoff_initial_ms | 50 | first delay between failed connection attempts (> 0) |
 * | reconnect_backoff_max_ms | 5000   | the delay doubles up to this (>= initial); each delay gets random jitter |
 * | breaker_threshold       | 5       | consecutive connect failures that open the breaker; 0 = no breaker |
 * | breaker_open_ms         | 5000    | how long the breaker stays open before one probe (> 0) |
 * | on_event, event_user    | NULL    | agec_pool_event_fn; NULL = agec_pool_event_log_stderr |
 * | application_name        | NULL    | libpq fallback_application_name: the name in pg_stat_activity unless conninfo's application_name= or PGAPPNAME gives one (libpq's convention); with application_name_override it is application_name and wins over both |
 * | name                    | "agec"  | the pool's name in events and Prometheus labels |
 * | fair_wait_ms            | 50      | bound on unfairness: an idle connection goes to whoever asks first (the thread that just released it, typically, with no wake-up and no context switch), until the oldest waiter has waited this long; from then on only callers that arrived before it are served before it (direct hand-off, newcomers queue). 0 = strict first come, first served (>= 0) |
 * | statement_mode          | AGEC_STMT_NAMED | see agec_stmt_mode: AGEC_STMT_UNNAMED behind a transaction-mode pooler (PgBouncer) |
 * | application_name_override | false | true: application_name overrides conninfo's and PGAPPNAME instead of being the fallback |
 *
 * Connecting. Connections are opened with libpq's non-blocking API, and the
 * pool enforces connect_timeout_ms itself over the whole attempt (all hosts
 * of a multi-host conninfo, TCP, TLS, authentication and session init);
 * libpq's own connect_timeout keyword is ignored by that API. Host name
 * lookup (getaddrinfo) happens inside libpq and BLOCKS the connecting thread
 * regardless of any timeout: with a slow or dead DNS server an acquire can
 * overrun its deadline. Give `hostaddr=` (a numeric address, with `host=`
 * kept for TLS and .pgpass) to avoid lookups.
 *
 * Refusals at connect. libpq 15 exposes no SQLSTATE for a failed
 * connection, so the pool recognises the server's (English) message text
 * and puts the SQLSTATE in the error, the connect-failed event and the
 * breaker-open message ("last connection error: ... [53300]"):
 * 28P01/28000 authentication (AGEC_ERR_AUTH, not retried); 3D000 database
 * does not exist (AGEC_ERR_CONFIG: not retried and not counted toward the
 * breaker); 53300 too many clients, slots reserved, too many connections
 * for the role or database, and 57P03 starting up, shutting down, in
 * recovery (AGEC_ERR_UNREACHABLE with that SQLSTATE: retried within the
 * acquire, counted toward the breaker). A server with translated messages
 * gives AGEC_ERR_UNREACHABLE without SQLSTATE.
 *
 * Notices. Every pool connection gets a libpq notice receiver that turns
 * the server's notices into AGEC_EV_NOTICE events (nothing reaches stderr
 * unless the callback prints it). An on_connect hook that installs its own
 * receiver (PQsetNoticeReceiver) replaces it; PQsetNoticeProcessor has no
 * effect under a receiver.
 */
typedef struct agec_pool_config {
    size_t struct_size; /**< set by agec_pool_config_init(); do not change */
    const char *conninfo;
    int max;
    int min;
    int idle_timeout_ms;
    int connect_timeout_ms;
    int acquire_timeout_ms;
    int max_lifetime_ms;
    double lifetime_jitter_pct;
    int validate_idle_ms;
    int validation_timeout_ms;
    int reset_timeout_ms;
    int leak_threshold_ms;
    agec_age_mode age_mode;
    bool age_create_extension;
    const char *init_sql;
    const char *reset_query;
    agec_on_connect_fn on_connect;
    void *on_connect_user;
    int reconnect_backoff_initial_ms;
    int reconnect_backoff_max_ms;
    int breaker_threshold;
    int breaker_open_ms;
    agec_pool_event_fn on_event;
    void *event_user;
    const char *application_name;
    const char *name;
    int fair_wait_ms;
    agec_stmt_mode statement_mode;
    bool application_name_override;
} agec_pool_config;

/**
 * Fill *cfg with the defaults of the table above and set struct_size.
 * NULL is ignored. Thread-safe (touches only *cfg).
 */
AGEC_EXPORT void agec_pool_config_init(agec_pool_config *cfg);

/**
 * Check a configuration without opening anything: AGEC_OK, or
 * AGEC_ERR_CONFIG with a message that starts with the bad field's name
 * ("max: must be >= 1 (got 0)"), or AGEC_ERR_INVALID_ARG if cfg is NULL.
 * conninfo is parsed (PQconninfoParse) but not connected to.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_pool_config_check(const agec_pool_config *cfg,
                                                              agec_error *err);

/**
 * Create a pool: validate *cfg (as agec_pool_config_check), copy it and its
 * strings, start the maintenance thread (which opens `min` connections in
 * the background: open does not wait for them, nor connect at all).
 *
 * On success *out is the pool, to be closed with agec_pool_close().
 * Errors: AGEC_ERR_INVALID_ARG (cfg or out NULL), AGEC_ERR_CONFIG (names the
 * field), AGEC_ERR_NO_MEMORY, AGEC_ERR_SYSTEM (thread creation failed).
 * On error *out is NULL and nothing needs freeing.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_pool_open(const agec_pool_config *cfg, agec_pool **out,
                                                      agec_error *err);

/**
 * Shut a pool down gracefully:
 *  1. new acquires fail with AGEC_ERR_POOL_CLOSED, and every waiting acquire
 *     is woken with that error; idle connections are closed at once;
 *  2. borrowed connections are waited for until drain_timeout_ms
 *     (negative = wait forever; 0 = do not wait), except that shortly before
 *     the deadline (the last third of it, at most 500 ms) their running
 *     queries are cancelled (PQcancel, repeated every 100 ms; at least once,
 *     even with a drain of 0) so that borrowers get an error (SQLSTATE
 *     57014, AGEC_ERR_CANCELLED) and release them;
 *  3. the maintenance thread is joined, every connection the pool holds is
 *     closed and all memory is freed.
 *
 * Connections still borrowed when close returns stay valid for their
 * borrower (the pool never closes a socket under a thread that may be using
 * it); each is closed when released, and the pool's memory is freed by the
 * last such release (HikariCP-like: close returns at the deadline; no crash,
 * no leak). Then close returns AGEC_ERR_TIMEOUT with the number of such
 * connections in the message; otherwise AGEC_OK.
 *
 * Before draining, close waits for every thread inside agec_pool_acquire to
 * leave and for every connection being opened to finish: connects, session
 * init and checks in progress stop within a few milliseconds (an on_connect
 * callback runs to its end), so once close returns no event fires any more
 * but those of releases of connections still borrowed.
 *
 * NULL pool is accepted (AGEC_OK). Call it exactly once per pool, and call no
 * other agec_pool_* function on the pool once it has been called. Calls
 * racing close: a thread already waiting inside agec_pool_acquire (the
 * pool counts it) is woken with AGEC_ERR_POOL_CLOSED and close waits for
 * it to leave; a stats call that has taken its reference finishes. But the
 * pool cannot protect a call that enters it while close frees it (a thread
 * between the call and its first touch of the pool reads freed memory), so
 * the caller must not start calls that can race close: stop or join the
 * threads that use the pool (monitors included) before calling it.
 * Connections they still hold may be released after close, as said above.
 * (Earlier versions promised that stats and acquire calls racing close were
 * safe; no API without a separate free step can keep that promise, see
 * docs/pool-design.md.) Must not be called from an event callback.
 */
AGEC_EXPORT agec_status agec_pool_close(agec_pool *pool, int drain_timeout_ms, agec_error *err);

/**
 * Borrow a connection. Use through the macros agec_pool_acquire() and
 * agec_pool_acquire_timeout(), which record the caller's file, line and
 * function for leak reports (file and func must be static strings).
 *
 * timeout_ms: limit for the whole call; negative = the pool's
 * acquire_timeout_ms; 0 = never wait for another caller (an idle
 * connection, or a new one if below max, else AGEC_ERR_POOL_EXHAUSTED at
 * once): the connect or validation it does itself still gets the pool's
 * connect_timeout_ms or validation_timeout_ms. A positive limit bounds that
 * I/O too; a connect cut short by it (a deadline shorter than opening a
 * connection) fails the acquire with AGEC_ERR_UNREACHABLE, saying so, but
 * does not count as a connection failure toward the circuit breaker.
 *
 * On success *out is a ready connection (session init done, validated if it
 * was idle longer than validate_idle_ms), to be given back with
 * agec_conn_release(). Errors (then *out is NULL):
 *  - AGEC_ERR_INVALID_ARG: pool or out is NULL;
 *  - AGEC_ERR_POOL_EXHAUSTED: timed out while every connection was in use;
 *    the message has the counts by state and max, and the detail names the
 *    longest holders (up to 3, longest first): the acquire site
 *    (file:line, function), how long each is held and, when the layer
 *    running statements reports them, how long its statement runs (also in
 *    the AGEC_EV_ACQUIRE_TIMEOUT event's detail). Costs nothing until then;
 *  - AGEC_ERR_UNREACHABLE: timed out (or gave up) because connections could
 *    not be opened; the message has the last connection error;
 *  - AGEC_ERR_AUTH: the server rejected the credentials (not retried);
 *  - AGEC_ERR_CONFIG: the database does not exist (SQLSTATE 3D000; not
 *    retried, not counted toward the breaker);
 *  - AGEC_ERR_INIT: session init (LOAD 'age', SET, init_sql, on_connect)
 *    failed; sqlstate/message are the server's (not retried);
 *  - AGEC_ERR_BREAKER_OPEN: a new connection was needed while the circuit
 *    breaker is open: fails at once (an idle connection is still handed
 *    out). An acquire that already waits in the queue (the pool was
 *    exhausted) keeps waiting within its deadline for a connection in use
 *    to come back instead, as long as one can (in use, being checked or
 *    opened): a slot the breaker keeps shut wakes no waiter;
 *  - AGEC_ERR_POOL_CLOSED: the pool is closing;
 *  - AGEC_ERR_NO_MEMORY, AGEC_ERR_SYSTEM.
 * Thread-safe. Fairness: a caller may be overtaken by later ones (that is
 * what keeps a busy pool at the speed of its connections), but never once
 * it has waited fair_wait_ms plus one tick of the coarse clock (1-4 ms;
 * docs/pool-design.md says why): from then on only callers that arrived
 * before it are served before it (in arrival order), so its wait is at most
 * that plus the turns of those still ahead of it (fair_wait_ms = 0:
 * strict first come, first served with a direct hand-off).
 * A check before use that this call's deadline cuts short is not a failed
 * check: the connection is kept (the maintenance thread finishes the
 * check) and the call fails with its timeout, without starting to check
 * another connection past its deadline.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_pool_acquire_at(agec_pool *pool, int timeout_ms,
                                                            agec_conn **out, agec_error *err,
                                                            const char *file, int line,
                                                            const char *func);

/** Borrow a connection within the pool's acquire_timeout_ms (see agec_pool_acquire_at). */
#define agec_pool_acquire(pool, out, err) \
    agec_pool_acquire_at((pool), -1, (out), (err), __FILE__, __LINE__, __func__)
/** Borrow a connection within `ms` milliseconds (see agec_pool_acquire_at). */
#define agec_pool_acquire_timeout(pool, ms, out, err) \
    agec_pool_acquire_at((pool), (ms), (out), (err), __FILE__, __LINE__, __func__)

/**
 * Give a borrowed connection back. By transaction status: idle -> back to
 * the pool at once (no round trip); in a transaction or a failed one ->
 * ROLLBACK; a query still running -> cancel it, drain its results, then the
 * same; unknown or bad -> closed. With a reset_query, it runs next, then the
 * session init's SET statements and init_sql again. A connection past its
 * lifetime, broken (SQLSTATE class 08, 57P01-03, or marked broken), whose
 * cleanup failed, or released while the pool closes is closed instead.
 * All of this is bounded by reset_timeout_ms. A waiter that has waited
 * fair_wait_ms gets the connection straight away. Otherwise, if this
 * connection came to this thread that way and the thread it was taken from
 * waits, it goes back to that thread (give-back: the same threads keep
 * the same connections across a fairness phase); else it goes back to the
 * idle list and one waiter is woken for it (or, when this thread keeps
 * coming straight back for another, within 1 ms if it does not).
 *
 * NULL is ignored. The connection and its PGconn must not be used afterwards.
 * Call once per acquire, from the thread that used the connection (any
 * thread is fine as long as it is not in use elsewhere).
 */
AGEC_EXPORT void agec_conn_release(agec_conn *conn);

/** Like agec_conn_release() but always closes the connection (reason
 *  "broken"): use it when the session state is unknown. NULL is ignored. */
AGEC_EXPORT void agec_conn_release_broken(agec_conn *conn);

/**
 * The libpq connection of a borrowed connection (escape hatch). Valid until
 * the release; do not PQfinish() it, and leave it as you found it (blocking
 * mode, no pipeline, no COPY) or release it as broken. NULL gives NULL.
 */
AGEC_EXPORT PGconn *agec_conn_pgconn(agec_conn *conn);

/** The pool a connection was borrowed from. NULL gives NULL. */
AGEC_EXPORT agec_pool *agec_conn_pool(agec_conn *conn);

/** This connection's id in its pool (1, 2, ... in opening order, as in
 *  events). NULL gives 0. */
AGEC_EXPORT uint64_t agec_conn_id(agec_conn *conn);

/**
 * Ask the server to cancel the query running on a borrowed connection
 * (PQcancel with the cancel key taken at connect). The borrower's query then
 * fails with SQLSTATE 57014. Thread-safe: meant to be called from another
 * thread while the borrower waits; the connection must stay borrowed until
 * the call returns (it may be released right after, even on a timeout).
 * Blocks while the request (a short connection of its own) is sent and
 * acknowledged, at most the pool's connect_timeout_ms: libpq's PQcancel has
 * no timeout, so the request runs on a helper thread that ends by itself
 * when the network answers or fails.
 * Errors: AGEC_ERR_INVALID_ARG (NULL), AGEC_ERR_UNREACHABLE (the request
 * could not be sent; message from libpq), AGEC_ERR_TIMEOUT (not answered
 * within connect_timeout_ms: the server or the path to it does not respond;
 * the request may still arrive), AGEC_ERR_NO_MEMORY (no thread or memory
 * for the request).
 */
AGEC_EXPORT agec_status agec_conn_cancel(agec_conn *conn, agec_error *err);

/**
 * End an open circuit breaker's open period now, so that the next acquire
 * that needs a connection makes the half-open probe instead of failing
 * fast with AGEC_ERR_BREAKER_OPEN. For callers that know by other means
 * that the server answers again (agec_cluster's monitor does this when a
 * node it saw down answers its check). No effect unless the breaker is
 * OPEN; the probe's outcome decides as usual. NULL is ignored.
 * Thread-safe, no I/O; same rules as agec_pool_stats_get around close;
 * may be called from an event callback.
 */
AGEC_EXPORT void agec_pool_breaker_probe(agec_pool *pool);

/* ---- statistics ---------------------------------------------------------- */

/** Number of buckets of the Prometheus acquire-wait histogram. */
#define AGEC_POOL_WAIT_BUCKETS 12

/**
 * Upper bounds, in microseconds, of the cumulative acquire-wait buckets
 * (agec_pool_stats.wait_bucket): 100us, 250us, 500us, 1ms, 2.5ms, 5ms, 10ms,
 * 50ms, 100ms, 500ms, 1s, 5s; +Inf is wait_count. Static array.
 */
AGEC_EXPORT const int64_t *agec_pool_wait_bucket_bounds_us(void);

/**
 * A consistent snapshot of a pool. Gauges are the lengths of the pool's
 * state lists at one instant (never drifting counters), so
 * total == idle + in_use + opening + checking + closing always holds. Fields are
 * only appended, and the library fills only as much as the caller's header
 * knows (agec_pool_stats_get passes the caller's sizeof).
 */
typedef struct agec_pool_stats {
    size_t struct_size; /**< bytes filled: min(caller's sizeof, library's) */
    /* gauges */
    int total; /**< idle + in_use + opening + checking + closing (<= max) */
    int idle;
    int in_use;
    int opening; /**< being connected or initialised */
    int waiting; /**< acquires queued for a connection */
    int max;
    int min;
    agec_breaker_state breaker;
    /* counters since open */
    uint64_t opened;                          /**< connections opened and initialised */
    uint64_t closed[AGEC_CLOSE_REASON_COUNT]; /**< by agec_close_reason */
    uint64_t acquires;                        /**< successful acquires */
    uint64_t releases;                        /**< releases (each successful acquire has one) */
    uint64_t acquire_timeouts;                /**< exhausted + unreachable timeouts */
    uint64_t acquire_errors;                  /**< other failed acquires */
    uint64_t breaker_fast_fails;              /**< acquires failed with BREAKER_OPEN */
    uint64_t breaker_opens;                   /**< CLOSED/HALF_OPEN -> OPEN transitions */
    uint64_t validations;                     /**< checks before use */
    uint64_t validation_failures;
    uint64_t connect_failures; /**< failed connect or init attempts */
    uint64_t leaks_suspected;
    uint64_t leaks_returned;
    /* acquire wait (time inside successful acquires), microseconds */
    uint64_t wait_count;
    int64_t wait_sum_us;
    int64_t wait_p50_us; /**< percentiles within about 10% (log buckets) */
    int64_t wait_p90_us;
    int64_t wait_p99_us;
    int64_t wait_max_us;                          /**< exact */
    uint64_t wait_bucket[AGEC_POOL_WAIT_BUCKETS]; /**< cumulative counts, see bounds */
    int checking;      /**< idle connections whose check before use an acquirer's deadline cut
                       short; the maintenance thread finishes it (not a failed check) */
    int closing;       /**< being closed: the slot is held until the server process has exited
                       (a running statement is cancelled first), so the server never sees
                       more than max; freed earlier only if the host stops answering (a
                       cancel request unanswered for connect_timeout_ms) */
    uint64_t handoffs; /**< releases that gave their connection straight to the oldest waiter,
                            which had waited fair_wait_ms (the fairness bound at work) */
    uint64_t wakeups_deferred;      /**< releases with callers waiting that woke none, because the
                                    releasing thread was expected back at once (wake on miss;
                                    the wake-up follows within 1 ms if it does not come) */
    uint64_t wakeups_deferred_late; /**< deferred wake-ups the 1 ms tick (or maintenance
                                         going busy) had to end: the thread was not back in
                                         time (a misprediction: a caller may have waited) */
    uint64_t givebacks; /**< connections given back, at the end of a starving phase, to the
                             thread they were taken from for a hand-off (so that the same
                             threads run on the same connections before and after it) */
    /* OpenTelemetry's other pool histograms, with wait_bucket's bounds
     * (cumulative counts; +Inf is the count): */
    uint64_t create_count; /**< connections opened (connect + session init) */
    int64_t create_sum_us; /**< their time to open, summed */
    uint64_t create_bucket[AGEC_POOL_WAIT_BUCKETS];
    uint64_t use_count; /**< borrows ended by a release (acquire to release, read on
                                 the pool's coarse clock: about 1-4 ms resolution) */
    int64_t use_sum_us; /**< their time held, summed */
    uint64_t use_bucket[AGEC_POOL_WAIT_BUCKETS];
    uint64_t op_count; /**< statements run through agec's Cypher and SQL calls */
    int64_t op_sum_us; /**< their duration, summed (send to last result) */
    uint64_t op_bucket[AGEC_POOL_WAIT_BUCKETS];
} agec_pool_stats;

/**
 * Fill the first `size` bytes of *out (at most the library's
 * sizeof(agec_pool_stats)) with a snapshot of the pool's state and
 * counters, taken under the pool lock; out->struct_size says how much was
 * filled. Use it through agec_pool_stats_get(), which passes the caller's
 * sizeof, so that a program built against an older header never has its
 * stack overwritten by fields it does not know.
 * Thread-safe (but must not race agec_pool_close(), see there); cheap (no
 * I/O); may be called from an event callback.
 * Errors: AGEC_ERR_INVALID_ARG if pool or out is NULL or size is smaller
 * than the fields up to wait_bucket; AGEC_ERR_POOL_CLOSED if close has
 * gone past the point where the pool can be read.
 */
AGEC_EXPORT agec_status agec_pool_stats_get_sized(agec_pool *pool, agec_pool_stats *out,
                                                  size_t size);

/** Snapshot of a pool's statistics (see agec_pool_stats_get_sized). */
#define agec_pool_stats_get(pool, out) agec_pool_stats_get_sized((pool), (out), sizeof *(out))

/**
 * Write *stats in Prometheus text exposition format (version 0.0.4) into
 * buf[cap], NUL-terminated, like snprintf: returns the length the full text
 * needs (without the NUL), so a return >= cap means it was truncated. buf may
 * be NULL when cap is 0. agec's own metrics start with `agec_pool_` and have
 * the label pool="<pool_name>" (NULL = "agec"; quotes and backslashes are
 * escaped); then the same pool under OpenTelemetry's semantic-convention
 * names for connection pools (`db_client_connection_count`, `..._max`,
 * `..._pending_requests`, `..._wait_time_seconds`, ...) with the label
 * db_client_connection_pool_name (the mapping: docs/metrics.md). About
 * 8.5 KB. Thread-safe (pure).
 */
AGEC_EXPORT size_t agec_pool_stats_prometheus(const agec_pool_stats *stats, const char *pool_name,
                                              char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_POOL_H */
