/*
 * Running one statement on a borrowed connection: prepared-statement cache,
 * bound parameters, statement timeout with server-side cancel, all-at-once
 * or row-by-row results, and errors with the server's own fields.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/agtype.h"
#include "agec/cypher.h"
#include "agec/pool.h"
#include "common/error_internal.h"
#include "common/sized.h"
#include "cypher/exec.h"
#include "cypher/result.h"
#include "cypher/stmt_cache.h"
#include "cypher/sqltext.h"
#include "pool/conn_ext.h"
#include "session/clock.h"
#include "session/pqerror.h"
#include "session/pgconn.h"

/* How long a cancelled statement may take to stop before the connection is
 * given up as broken (a black-holed network never answers the cancel). The
 * cancel is sent again every CANCEL_REPEAT_MS within it: the server ignores
 * a cancel that arrives before the statement has started. */
#define CANCEL_GRACE_MS 150
#define CANCEL_REPEAT_MS 50

/* A COPY TO STDOUT cancelled at its timeout still has rows in flight; they
 * are read and dropped for at most this long. */
#define COPY_DRAIN_MAX_MS 5000

void agec_query_opts_init(agec_query_opts *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->prepare = true;
}

agec_status agec__query_opts_get(const agec_query_opts *in, agec_query_opts *out, agec_error *err)
{
    agec_query_opts_init(out);
    /* The fields of the first sized version: up to `prepare`. */
    return agec__sized_opts(out, sizeof *out, in, offsetof(agec_query_opts, prepare) + sizeof(bool),
                            "agec_query_opts", err);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for input on the socket once and read it. 1 read, 0 deadline
 * passed (deadline < 0: none), -1 connection failure. */
static int wait_input(PGconn *pg, int64_t deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return 0;
            timeout = left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
        if (p.fd < 0)
            return -1;
        int r = poll(&p, 1, timeout);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0)
            return PQconsumeInput(pg) ? 1 : -1;
    }
}

/* Wait until a result can be read without blocking (in COPY state: until
 * more input has been read, since PQisBusy says nothing then). 1 ready, 0
 * deadline passed (deadline < 0: none), -1 connection failure. */
static int wait_ready(PGconn *pg, int64_t deadline, bool copy)
{
    if (copy)
        return wait_input(pg, deadline);
    while (PQisBusy(pg)) {
        int r = wait_input(pg, deadline);
        if (r <= 0)
            return r;
    }
    return 1;
}

/* Hints for errors users of AGE meet most. */
void agec__age_hint(agec_error *err)
{
    if (err == NULL || err->hint[0] != '\0')
        return;
    const char *m = err->message;
    const char *hint = NULL;
    if (strstr(m, "unhandled cypher(cstring) function call") != NULL) {
        err->code = AGEC_ERR_AGE_MISSING;
        hint = "AGE is not loaded in this session: open the pool with age_mode AGEC_AGE_LOAD "
               "(or AGEC_AGE_PLUGINS for non-superusers)";
    } else if (strcmp(err->sqlstate, "42883") == 0 && strstr(m, "cypher") != NULL) {
        err->code = AGEC_ERR_AGE_MISSING;
        hint = "the age extension is not installed in this database: CREATE EXTENSION age "
               "(or set age_create_extension)";
    } else if (strcmp(err->sqlstate, "3F000") == 0 && strstr(m, "ag_catalog") != NULL) {
        err->code = AGEC_ERR_AGE_MISSING;
        hint = "the age extension is not installed in this database: CREATE EXTENSION age "
               "(or set age_create_extension)";
    } else if (strcmp(err->sqlstate, "42P01") == 0 && strstr(m, "\"ag_catalog.") != NULL) {
        /* A catalog table (ag_graph, ag_label) of an absent extension. */
        err->code = AGEC_ERR_AGE_MISSING;
        hint = "the age extension is not installed in this database: CREATE EXTENSION age "
               "(or set age_create_extension)";
    } else if (strcmp(err->sqlstate, "3F000") == 0 && strncmp(m, "graph \"", 7) == 0 &&
               strstr(m, "\" does not exist") != NULL) {
        hint = "create the graph first (agec_graph_create or `agec graph create NAME`)";
    } else if (strstr(m, "column definition list") != NULL ||
               strstr(m, "return row and column definition list do not match") != NULL) {
        hint = "the column list must have exactly as many entries as the RETURN clause has "
               "items (one column for a query without RETURN)";
    }
    if (hint != NULL)
        agec__copy_text(err->hint, sizeof err->hint, hint);
}

typedef struct run_state {
    agec_conn *conn;
    PGconn *pg;
    int64_t deadline; /* -1: none; after a cancel: the next repeat */
    int64_t give_up;  /* after a cancel: end of the grace period */
    int timeout_ms;
    bool cancelled;
    bool broken; /* the connection failed: close it on release */
    bool stuck;  /* gave up at the end of the grace period; the statement may still run */
    agec__cancel_job *cancel; /* the latest cancel request, or NULL */
} run_state;

/* Ask the server to cancel the statement, without waiting for the answer:
 * PQcancel blocks with no timeout when the network does not answer (a
 * black hole), so it runs on its own thread (agec__cancel_start_key), on
 * the connection's key, so that nothing else runs on the connection until
 * it has been delivered (agec__cancel_key_settle). While
 * one request is still unanswered, another would only pile up. */
static void send_cancel(run_state *rs)
{
    if (rs->cancel != NULL && !agec__cancel_done(rs->cancel))
        return;
    agec__cancel_release(rs->cancel);
    rs->cancel = agec__cancel_start_key(agec__conn_cancel_key(rs->conn));
}

/* Wait for the next result, cancelling at the deadline (and again every
 * CANCEL_REPEAT_MS of the grace period). 1 ready, 0 gave up (the cancel was
 * not honoured: conn broken), -1 connection failure. */
static bool deadline_passed(const run_state *rs)
{
    return rs->deadline >= 0 && now_ms() >= rs->deadline;
}

/* The deadline (or a cancel's repeat time) has passed: cancel, or after the
 * grace period give up (returns false). */
static bool on_deadline(run_state *rs)
{
    int64_t now = now_ms();
    if (!rs->cancelled) {
        rs->cancelled = true;
        rs->give_up = now + CANCEL_GRACE_MS;
    } else if (now >= rs->give_up) {
        return false;
    }
    send_cancel(rs);
    rs->deadline = now + CANCEL_REPEAT_MS < rs->give_up ? now + CANCEL_REPEAT_MS : rs->give_up;
    return true;
}

static int next_ready(run_state *rs, bool copy)
{
    for (;;) {
        int r = wait_ready(rs->pg, rs->deadline, copy);
        if (r != 0)
            return r;
        if (!on_deadline(rs))
            return 0;
    }
}

static agec_status timeout_error(const run_state *rs, agec_error *err)
{
    return agec__error_set(err, AGEC_ERR_TIMEOUT,
                           "statement timeout: no result within %d ms; the statement was "
                           "cancelled%s",
                           rs->timeout_ms,
                           rs->stuck ? " but has not stopped yet: release cancels it again and "
                                       "waits for it (reset_timeout_ms), or closes the connection"
                                     : " on the server");
}

/* The wait for the server ended without an answer (r from next_ready: 0
 * gave up after the cancel's grace period, -1 connection failure). Not
 * answered within the grace period: the server may still run the statement.
 * Closing the connection now would leave its backend running beside a
 * replacement (more backends than max for a while); release cleans it up
 * (cancel and drain, like any statement still running) or closes it. */
static agec_status no_answer(run_state *rs, int r, bool have_error, agec_status st, agec_error *err)
{
    if (r == 0)
        rs->stuck = true;
    else
        rs->broken = true;
    if (have_error)
        return st;
    return r == 0 ? timeout_error(rs, err)
                  : agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, rs->pg);
}

/* A server error result: the first one decides the call's status. */
static agec_status server_error(run_state *rs, PGresult *res, agec_error *err)
{
    agec_status st = agec__error_from_result(err, AGEC_ERR_SERVER, res, rs->pg);
    if ((st == AGEC_ERR_TIMEOUT || st == AGEC_ERR_CANCELLED) && rs->cancelled) {
        /* Our own timeout's cancel; keeps SQLSTATE 57014. */
        st = AGEC_ERR_TIMEOUT;
        if (err != NULL) {
            err->code = st;
            snprintf(err->message, sizeof err->message,
                     "statement timeout: no result within %d ms; the statement "
                     "was cancelled on the server",
                     rs->timeout_ms);
        }
    } else {
        agec__age_hint(err);
    }
    return err ? err->code : st;
}

/* The statement entered a COPY state (COPY ... FROM STDIN / TO STDOUT):
 * agec does not run COPY through this path, so end it and let the COPY's
 * own final result come next. The data of a COPY OUT are read and dropped
 * until it ends or the statement's timeout cancels it, like any statement
 * (no cancel at once: a server may never answer one, as PGlite's socket
 * server does not, and the connection would then be unusable). Returns 1
 * when the COPY has ended, else r for no_answer (0 or -1). */
static int end_copy(run_state *rs, ExecStatusType copy)
{
    int64_t drain_until = -1;
    for (;;) {
        int c = agec__session_copy_step(rs->pg, copy);
        if (c != 0)
            return c > 0 ? 1 : -1;
        /* Rows that keep coming never let the wait below time out: the
         * first cancel is sent here. */
        if (!rs->cancelled && deadline_passed(rs))
            (void)on_deadline(rs);
        int r = next_ready(rs, true);
        if (r <= 0)
            return r;
        if (rs->cancelled) {
            /* Rows still in flight after the cancel (socket buffers full of
             * them): the server is alive; give up only after a grace period
             * without data, or COPY_DRAIN_MAX_MS after the first cancel. */
            int64_t now = now_ms();
            if (drain_until < 0)
                drain_until = now + COPY_DRAIN_MAX_MS;
            if (now < drain_until) {
                rs->give_up = now + CANCEL_GRACE_MS;
                if (rs->deadline < now || rs->deadline > rs->give_up)
                    rs->deadline = now + CANCEL_REPEAT_MS;
            }
        }
    }
}

/* Read every result of the statement sent last. Rows go to fn one at a time
 * (single-row mode) or into *out. Each result is classified by
 * agec__session_classify, as in the session layer. */
static agec_status collect(run_state *rs, agec_row_fn fn, void *user, agec_result **out,
                           agec_error *err)
{
    agec_status st = AGEC_OK;
    bool have_error = false, stop = false;
    agec_result *row = NULL;
    PGresult *keep = NULL;
    for (;;) {
        int r = next_ready(rs, false);
        if (r <= 0) {
            st = no_answer(rs, r, have_error, st, err);
            have_error = true;
            break;
        }
        PGresult *res = PQgetResult(rs->pg);
        if (res == NULL)
            break;
        ExecStatusType s = PQresultStatus(res);
        agec__res_kind kind = agec__session_classify(res);
        if (kind == AGEC__RES_ROWS && s == PGRES_SINGLE_TUPLE) {
            if (fn != NULL && !stop && !have_error) {
                if (row == NULL)
                    row = agec__result_wrap(res);
                else
                    agec__result_reset(row, res);
                res = NULL;
                if (row == NULL) {
                    st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
                    have_error = stop = true;
                } else if (!fn(row, user)) {
                    stop = true; /* read and discard the rest */
                }
            }
        } else if (kind == AGEC__RES_ROWS) {
            if (!have_error && fn == NULL) {
                PQclear(keep);
                keep = res;
                res = NULL;
            }
        } else if (kind == AGEC__RES_EMPTY) {
            if (!have_error)
                st = agec__error_set(err, AGEC_ERR_INVALID_ARG,
                                     "the statement is empty (only white space or comments)");
            have_error = true;
        } else if (kind == AGEC__RES_COPY) {
            if (!have_error)
                st = agec__error_set(err, AGEC_ERR_STATE, "%s", AGEC__COPY_REFUSED);
            have_error = true;
            PQclear(res);
            res = NULL;
            r = end_copy(rs, s);
            if (r <= 0) {
                st = no_answer(rs, r, true, st, err);
                break;
            }
        } else {
            if (!have_error)
                st = server_error(rs, res, err);
            have_error = true;
        }
        PQclear(res);
    }
    agec_result_free(row);
    if (PQstatus(rs->pg) == CONNECTION_BAD || st == AGEC_ERR_CONNECTION_LOST)
        rs->broken = true;
    if (rs->broken)
        agec__conn_mark_broken(rs->conn);
    if (have_error) {
        PQclear(keep);
        return st;
    }
    if (out != NULL) {
        *out = agec__result_wrap(keep);
        if (*out == NULL)
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    } else {
        PQclear(keep);
    }
    return AGEC_OK;
}

/* The statement's deadline on the session layer's clock (us), or none. */
static int64_t deadline_us(const run_state *rs)
{
    return rs->deadline < 0 ? AGEC__NEVER : rs->deadline * 1000;
}

/* libpq refused to send (PQsend* or PQsetnonblocking returned failure). With
 * the connection still up, nothing went out: libpq refused the arguments
 * (its message says why), and the connection goes back to blocking mode,
 * usable. Otherwise it is lost. Returns -1 after filling err. */
static int send_refused(run_state *rs, agec_error *err)
{
    if (PQstatus(rs->pg) == CONNECTION_BAD) {
        agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, rs->pg);
        agec__conn_mark_broken(rs->conn);
        return -1;
    }
    agec__error_from_result(err, AGEC_ERR_INVALID_ARG, NULL, rs->pg);
    if (PQsetnonblocking(rs->pg, 0) != 0)
        agec__conn_mark_broken(rs->conn);
    return -1;
}

/* After a PQsend* call made in non-blocking mode: push the message out by
 * the statement's deadline. A message half sent leaves the connection
 * unusable (broken). 1 sent, -1 after filling err. */
static int flush_sent(run_state *rs, int ok, agec_error *err)
{
    if (!ok)
        return send_refused(rs, err);
    agec_status st = agec__session_send_flush(rs->pg, deadline_us(rs), NULL, err);
    if (st == AGEC_OK)
        return 1;
    agec__conn_mark_broken(rs->conn);
    if (st == AGEC_ERR_TIMEOUT && err != NULL)
        snprintf(err->message, sizeof err->message,
                 "statement timeout: the statement could not be sent within %d ms (the server "
                 "or the network does not take data); the connection will be closed",
                 rs->timeout_ms);
    return -1;
}

/* Send sql, prepared through the connection's cache unless told otherwise.
 * Returns 1 when sent, or -1 after filling err. *used is the cached
 * statement sent (so that a 26000 can drop it), or NULL. */
static int send_statement(run_state *rs, agec__session *sess, const char *sql, int nparams,
                          const char *const *values, bool prepare, bool single_row,
                          agec__stmt **used, bool *fresh, agec_error *err)
{
    *used = NULL;
    *fresh = false;
    int ok;
    if (!agec__session_send_begin(rs->pg))
        return send_refused(rs, err);
    if ((!prepare || sess == NULL) && nparams == 0) {
        /* Simple protocol: one message, one round trip. It also keeps
         * servers that share one session between clients (PGlite's socket
         * server) from interleaving another client's messages inside ours. */
        ok = PQsendQuery(rs->pg, sql);
    } else if (!prepare || sess == NULL) {
        ok = PQsendQueryParams(rs->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    } else {
        agec__stmt *stmt = agec__session_find(sess, sql);
        if (stmt == NULL) {
            stmt = agec__session_add(sess, agec__conn_pool_nonce(rs->conn), sql);
            if (stmt == NULL) {
                agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
                return -1;
            }
            /* What the add evicted; runs in blocking-free mode itself. */
            if (agec__session_flush_pending(sess, rs->pg, deadline_us(rs), err) != AGEC_OK) {
                agec__session_forget(sess, stmt);
                agec__conn_mark_broken(rs->conn);
                return -1;
            }
            if (!agec__session_send_begin(rs->pg) ||
                flush_sent(rs, PQsendPrepare(rs->pg, stmt->name, sql, nparams, NULL), err) < 0) {
                agec__session_forget(sess, stmt);
                return -1;
            }
            agec_status st = collect(rs, NULL, NULL, NULL, err);
            if (st != AGEC_OK) {
                agec__session_forget(sess, stmt);
                return -1;
            }
            *fresh = true;
            if (!agec__session_send_begin(rs->pg))
                return send_refused(rs, err);
        }
        *used = stmt;
        ok = PQsendQueryPrepared(rs->pg, stmt->name, nparams, values, NULL, NULL, 0);
    }
    if (flush_sent(rs, ok, err) < 0)
        return -1;
    if (single_row)
        (void)PQsetSingleRowMode(rs->pg);
    return 1;
}

/* The server refused a cached prepared statement that was valid when it
 * was prepared. A 42804 of a statement prepared in this very call is the
 * statement's own error: no retry. */
static bool stale_statement(const agec_error *e, bool fresh)
{
    if (e->code != AGEC_ERR_SERVER)
        return false;
    return strcmp(e->sqlstate, "26000") == 0 || (!fresh && strcmp(e->sqlstate, "42804") == 0) ||
           (strcmp(e->sqlstate, "0A000") == 0 &&
            strstr(e->message, "cached plan must not change result type") != NULL);
}

/* Send and collect, preparing once more when a cached statement went
 * stale (agec__exec). */
static agec_status run_attempts(run_state *rs, agec__session *sess, const char *sql, int nparams,
                                const char *const *values, bool prepare, agec_row_fn fn, void *user,
                                agec_result **out, agec_error *err)
{
    agec_conn *conn = rs->conn;
    PGconn *pg = rs->pg;
    for (int attempt = 0;; attempt++) {
        agec__stmt *used;
        bool fresh;
        agec_error local = AGEC_ERROR_INIT;
        agec_error *e = err ? err : &local;
        int sent =
            send_statement(rs, sess, sql, nparams, values, prepare, fn != NULL, &used, &fresh, e);
        if (sent < 0) {
            if (rs->broken)
                agec__conn_mark_broken(conn);
            agec__cancel_release(rs->cancel);
            return e->code;
        }
        agec_status st = collect(rs, fn, user, out, e);
        /* A cancel that worked is all but finished: let it end, within the
         * grace period, so no thread or socket outlives the call. */
        if (rs->cancel != NULL)
            (void)agec__cancel_wait(rs->cancel, rs->give_up * 1000);
        agec__cancel_release(rs->cancel);
        rs->cancel = NULL;
        /* The cached statement is gone (26000: DEALLOCATE/DISCARD by someone
         * else, or a server that shares sessions) or no longer fits its
         * tables after DDL (0A000 "cached plan must not change result type",
         * 42804 a parameter's type changed): prepare it again once. */
        if (used != NULL && stale_statement(e, fresh)) {
            agec__session_forget(sess, used);
            /* Inside a transaction the error has aborted it: no retry. */
            if (attempt > 0 || PQtransactionStatus(pg) != PQTRANS_IDLE)
                return st;
            agec__error_reset(e);
            continue;
        }
        if (st == AGEC_OK && err != NULL)
            agec__error_reset(err); /* err->code is the call's status: AGEC_OK */
        return st;
    }
}

agec_status agec__exec(agec_conn *conn, const char *sql, int nparams, const char *const *values,
                       const agec_query_opts *opts, agec_row_fn fn, void *user, agec_result **out,
                       agec_error *err)
{
    agec_query_opts defaults;
    if (opts == NULL) {
        agec_query_opts_init(&defaults);
        opts = &defaults;
    }
    if (out != NULL)
        *out = NULL;
    if (conn == NULL || sql == NULL || (fn == NULL && out == NULL) || nparams < 0 ||
        (nparams > 0 && values == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "NULL or invalid argument");
    if (nparams > AGEC_MAX_PARAMS)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "%d parameters: the protocol allows at most %d per statement",
                               nparams, AGEC_MAX_PARAMS);
    if (opts->timeout_ms < 0)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "timeout_ms is negative");
    PGconn *pg = agec_conn_pgconn(conn);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return agec__error_set(err, AGEC_ERR_CONNECTION_LOST, "the connection is not open");
    if (PQtransactionStatus(pg) == PQTRANS_ACTIVE)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "a statement is already running on this connection");
    run_state rs = { .conn = conn, .pg = pg, .deadline = -1, .timeout_ms = opts->timeout_ms };
    if (opts->timeout_ms > 0)
        rs.deadline = now_ms() + opts->timeout_ms;
    /* A cancel request still in flight on this connection (an earlier
     * statement's timeout, agec_conn_cancel) would cancel this statement
     * when it arrives: let it be delivered first. */
    int64_t settle_by = agec__min64(deadline_us(&rs), agec__now_us() + AGEC__SETTLE_MAX_US);
    if (!agec__cancel_key_settle(agec__conn_cancel_key(conn), settle_by))
        return agec__error_set(err, AGEC_ERR_STATE,
                               "a cancel request sent earlier on this connection has not been "
                               "answered: running a statement now could get it cancelled; "
                               "release the connection (it is then closed)");
    /* Named statements only in the pool's named mode: in unnamed mode
     * nothing is prepared or deallocated (no cache, no pending DEALLOCATE),
     * so nothing depends on which server session the statement reaches. */
    bool prepare = opts->prepare && agec__conn_stmt_mode(conn) == AGEC_STMT_NAMED;
    agec__session *sess = prepare ? agec__session_get(conn) : NULL;
    /* The pool learns that a statement runs (exhaustion errors name the
     * holders' running statements) and how long it took
     * (db_client_operation_duration). */
    agec__conn_stmt_begin(conn);
    agec_status st = run_attempts(&rs, sess, sql, nparams, values, prepare, fn, user, out, err);
    agec__conn_stmt_end(conn);
    return st;
}

/* Resolve the column list: caller's names, generated names, or RETURN. */
agec_status agec__cypher_build(const char *graph, const char *query, bool params,
                               const agec_query_opts *opts, char **sql, agec_error *err)
{
    if (graph == NULL || query == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "graph and query must not be NULL");
    if (opts != NULL && (opts->columns != NULL || opts->ncolumns > 0))
        return agec__cypher_sql(graph, query, params, opts->columns, opts->ncolumns, sql, err);
    char **names;
    size_t n;
    agec_status st = agec_cypher_return_columns(query, &names, &n, err);
    if (st != AGEC_OK)
        return st;
    st = agec__cypher_sql(graph, query, params, (const char *const *)names, n, sql, err);
    agec_strings_free(names);
    return st;
}

static size_t utf8_chars(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* The server's error position counts characters of the SQL text agec built;
 * make it count within the caller's Cypher text (1-based, one past its end
 * for "at end of input"), or 0 when it points outside it. */
void agec__cypher_position(agec_error *err, const char *sql, const char *query)
{
    if (err == NULL || err->position <= 0)
        return;
    /* "...cypher('<graph>', $tag$<query>$tag$...": graph names hold no quote. */
    const char *open = strstr(sql, "', $");
    const char *tag_end = open ? strchr(open + 4, '$') : NULL;
    if (tag_end == NULL) {
        err->position = 0;
        return;
    }
    size_t pre = utf8_chars(sql, (size_t)(tag_end + 1 - sql));
    size_t len = utf8_chars(query, strlen(query));
    size_t pos = (size_t)err->position;
    err->position = pos > pre && pos <= pre + len + 1 ? (int)(pos - pre) : 0;
}

agec_status agec__cypher_text_get(agec_conn *conn, const char *graph, const char *query,
                                  bool params, const agec_query_opts *opts, const char **text,
                                  char **owned, agec_error *err)
{
    *text = NULL;
    *owned = NULL;
    /* Columns derived from RETURN: the text is a pure function of (graph,
     * query, params given), so the connection keeps it. */
    bool derived = opts->columns == NULL && opts->ncolumns == 0;
    agec__session *sess =
        derived && graph != NULL && query != NULL ? agec__session_get(conn) : NULL;
    const char *found = sess ? agec__session_text_find(sess, graph, query, params) : NULL;
    if (found != NULL) {
        *text = found;
        return AGEC_OK;
    }
    char *sql = NULL;
    agec_status st = agec__cypher_build(graph, query, params, opts, &sql, err);
    if (st != AGEC_OK)
        return st;
    *text = sql;
    if (sess == NULL || !agec__session_text_add(sess, graph, query, params, sql))
        *owned = sql; /* else the session owns it now */
    return AGEC_OK;
}

static agec_status cypher_run(agec_conn *conn, const char *graph, const char *query,
                              const char *params, const agec_query_opts *opts, agec_row_fn fn,
                              void *user, agec_result **out, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (conn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn must not be NULL");
    agec_query_opts o;
    agec_status ost = agec__query_opts_get(opts, &o, err);
    if (ost != AGEC_OK)
        return ost;
    const char *text;
    char *sql;
    agec_status st =
        agec__cypher_text_get(conn, graph, query, params != NULL, &o, &text, &sql, err);
    if (st != AGEC_OK)
        return st;
    const char *values[1] = { params };
    st = agec__exec(conn, text, params ? 1 : 0, values, &o, fn, user, out, err);
    if (st != AGEC_OK)
        agec__cypher_position(err, text, query);
    free(sql);
    return st;
}

agec_status agec_cypher_exec(agec_conn *conn, const char *graph, const char *query,
                             const char *params, const agec_query_opts *opts, agec_result **out,
                             agec_error *err)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "out must not be NULL");
    return cypher_run(conn, graph, query, params, opts, NULL, NULL, out, err);
}

agec_status agec_cypher_stream(agec_conn *conn, const char *graph, const char *query,
                               const char *params, const agec_query_opts *opts, agec_row_fn fn,
                               void *user, agec_error *err)
{
    if (fn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "fn must not be NULL");
    return cypher_run(conn, graph, query, params, opts, fn, user, NULL, err);
}

agec_status agec_sql_exec(agec_conn *conn, const char *sql, int nparams, const char *const *values,
                          const agec_query_opts *opts, agec_result **out, agec_error *err)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "out must not be NULL");
    *out = NULL;
    agec_query_opts o;
    agec_status st = agec__query_opts_get(opts, &o, err);
    if (st != AGEC_OK)
        return st;
    return agec__exec(conn, sql, nparams, values, &o, NULL, NULL, out, err);
}

agec_status agec_sql_stream(agec_conn *conn, const char *sql, int nparams,
                            const char *const *values, const agec_query_opts *opts, agec_row_fn fn,
                            void *user, agec_error *err)
{
    if (fn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "fn must not be NULL");
    agec_query_opts o;
    agec_status st = agec__query_opts_get(opts, &o, err);
    if (st != AGEC_OK)
        return st;
    return agec__exec(conn, sql, nparams, values, &o, fn, user, NULL, err);
}
