/*
 * Pipelined batches (agec/batch.h): queueing statements, running the batch
 * (checks, statement mode, all-or-nothing) and each statement's outcome.
 * The pipeline I/O is in batch_run.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agec/batch.h"
#include "agec/pool.h"
#include "common/error_internal.h"
#include "common/sized.h"
#include "cypher/batch_internal.h"
#include "cypher/exec.h"
#include "cypher/result.h"
#include "pool/conn_ext.h"
#include "session/clock.h"
#include "session/pgconn.h"

void agec_batch_opts_init(agec_batch_opts *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

agec_status agec_batch_create(agec_conn *conn, const agec_batch_opts *opts, agec_batch **out,
                              agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (conn == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn and out must not be NULL");
    agec_batch_opts o;
    agec_batch_opts_init(&o);
    agec_status st =
        agec__sized_opts(&o, sizeof o, opts, offsetof(agec_batch_opts, timeout_ms) + sizeof(int),
                         "agec_batch_opts", err);
    if (st != AGEC_OK)
        return st;
    if (o.timeout_ms < 0)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "timeout_ms is negative");
    agec_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    b->conn = conn;
    b->opts = o;
    agec_error_clear(&b->wide);
    *out = b;
    return agec__error_ok(err);
}

size_t agec_batch_count(const agec_batch *b)
{
    return b ? b->n : 0;
}

static void stmt_clear(agec__bstmt *s)
{
    free(s->sql);
    free(s->query);
    free(s->values);
    free(s->err);
    agec_result_free(s->res);
}

void agec_batch_reset(agec_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        stmt_clear(&b->stmts[i]);
    b->n = 0;
    b->ran = false;
    agec_error_clear(&b->wide);
}

void agec_batch_free(agec_batch *b)
{
    if (b == NULL)
        return;
    agec_batch_reset(b);
    free(b->stmts);
    free(b);
}

/* Copies of values[0..n) in one allocation: the pointers, then the texts. */
static char **copy_values(int n, const char *const *values)
{
    size_t bytes = (size_t)n * sizeof(char *);
    for (int i = 0; i < n; i++)
        bytes += values[i] ? strlen(values[i]) + 1 : 0;
    char **v = malloc(bytes ? bytes : 1);
    if (v == NULL)
        return NULL;
    char *p = (char *)(v + n);
    for (int i = 0; i < n; i++) {
        if (values[i] == NULL) {
            v[i] = NULL;
            continue;
        }
        size_t len = strlen(values[i]) + 1;
        memcpy(p, values[i], len);
        v[i] = p;
        p += len;
    }
    return v;
}

/* Checks every add makes (the caller's options into *o), and room for
 * one more statement. */
static agec_status add_check(agec_batch *b, const agec_query_opts *opts, agec_query_opts *o,
                             agec_error *err)
{
    agec_status st = agec__query_opts_get(opts, o, err);
    if (st != AGEC_OK)
        return st;
    if (b->ran)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "the batch has run: agec_batch_reset() before adding statements");
    if (b->n >= AGEC_BATCH_MAX)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "the batch holds %d statements already (AGEC_BATCH_MAX)",
                               AGEC_BATCH_MAX);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        agec__bstmt *v = realloc(b->stmts, cap * sizeof *v);
        if (v == NULL)
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        b->stmts = v;
        b->cap = cap;
    }
    return AGEC_OK;
}

/* Queue sql (copied) with its parameters; query is the Cypher text. */
static agec_status add(agec_batch *b, const char *sql, const char *query, int nparams,
                       const char *const *values, bool prepare, agec_error *err)
{
    agec__bstmt s;
    memset(&s, 0, sizeof s);
    s.sql = strdup(sql);
    s.query = query ? strdup(query) : NULL;
    s.values = copy_values(nparams, values);
    if (s.sql == NULL || (query != NULL && s.query == NULL) || s.values == NULL) {
        stmt_clear(&s);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    s.nparams = nparams;
    s.prepare = prepare;
    b->stmts[b->n++] = s;
    return agec__error_ok(err);
}

/* True when sql starts with the keyword COPY (after white space and
 * comments). A pipeline cannot carry COPY data: libpq 15 loses step with
 * the server after a COPY inside one, so it is refused up front. */
static bool is_copy(const char *sql)
{
    const char *p = sql;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (end == NULL)
                return false;
            p = end + 2;
        } else {
            break;
        }
    }
    return strncasecmp(p, "copy", 4) == 0 && !isalnum((unsigned char)p[4]) && p[4] != '_';
}

agec_status agec_batch_add_sql(agec_batch *b, const char *sql, int nparams,
                               const char *const *values, const agec_query_opts *opts,
                               agec_error *err)
{
    if (b == NULL || sql == NULL || nparams < 0 || (nparams > 0 && values == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "NULL or invalid argument");
    if (nparams > AGEC_MAX_PARAMS)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "%d parameters: the protocol allows at most %d per statement",
                               nparams, AGEC_MAX_PARAMS);
    agec_query_opts o;
    agec_status st = add_check(b, opts, &o, err);
    if (st != AGEC_OK)
        return st;
    if (is_copy(sql))
        return agec__error_set(err, AGEC_ERR_STATE, "%s (and not in a pipelined batch)",
                               AGEC__COPY_REFUSED);
    return add(b, sql, NULL, nparams, values, o.prepare, err);
}

agec_status agec_batch_add_cypher(agec_batch *b, const char *graph, const char *query,
                                  const char *params, const agec_query_opts *opts, agec_error *err)
{
    if (b == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "b must not be NULL");
    agec_query_opts o;
    agec_status st = add_check(b, opts, &o, err);
    if (st != AGEC_OK)
        return st;
    const char *text;
    char *owned;
    st = agec__cypher_text_get(b->conn, graph, query, params != NULL, &o, &text, &owned, err);
    if (st != AGEC_OK)
        return st;
    const char *values[1] = { params };
    st = add(b, text, query, params ? 1 : 0, values, o.prepare, err);
    free(owned);
    return st;
}

/* ---- outcomes ------------------------------------------------------------ */

static bool failed(const agec__bstmt *s)
{
    return s->done && s->out != AGEC__BOUT_OK;
}

static void drop_result(agec__bstmt *s)
{
    agec_result_free(s->res);
    s->res = NULL;
}

void agec__batch_fail(agec_batch *b, size_t i, agec_status st, const agec_error *e, const char *fmt,
                      ...)
{
    agec__bstmt *s = &b->stmts[i];
    if (failed(s))
        return;
    drop_result(s);
    s->done = true;
    s->out = AGEC__BOUT_OWN;
    s->err = malloc(sizeof *s->err);
    if (s->err != NULL) {
        agec_error_clear(s->err);
        if (e != NULL) {
            agec__error_copy(s->err, e);
        } else {
            char msg[AGEC_ERROR_TEXT_MAX];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
            agec__error_set(s->err, st, "%s", msg);
        }
        st = s->err->code;
    }
    s->st = st; /* without memory for the details, the code alone */
}

void agec__batch_mark(agec_batch *b, size_t i, agec__bout kind, size_t ref)
{
    agec__bstmt *s = &b->stmts[i];
    if (failed(s))
        return;
    drop_result(s);
    s->done = true;
    s->out = kind;
    s->ref = ref;
    s->st = kind == AGEC__BOUT_LOST      ? AGEC_ERR_CONNECTION_LOST
            : kind == AGEC__BOUT_TIMEOUT ? AGEC_ERR_TIMEOUT
            : kind == AGEC__BOUT_WIDE    ? b->wide.code
                                         : AGEC_ERR_BATCH_ABORTED;
}

/* The message of a shared outcome. */
static void shared_error(const agec_batch *b, const agec__bstmt *s, agec_error *err)
{
    switch (s->out) {
    case AGEC__BOUT_NOT_RUN:
        agec__error_set(err, s->st, "not run: statement %zu of the batch failed%s", s->ref,
                        b->opts.all_or_nothing ? " (all-or-nothing: nothing was committed)"
                                               : " and aborted the transaction");
        break;
    case AGEC__BOUT_ROLLED_BACK:
        agec__error_set(err, s->st,
                        "rolled back: statement %zu of the batch failed (all-or-nothing: "
                        "nothing was committed)",
                        s->ref);
        break;
    case AGEC__BOUT_LOST:
        agec__error_set(err, s->st,
                        "the connection was lost before this statement's outcome arrived: it "
                        "may or may not have run");
        break;
    case AGEC__BOUT_TIMEOUT:
        agec__error_set(err, s->st,
                        "batch timeout: no outcome within %d ms (and the cancel's grace "
                        "period): the statement may or may not have run; the connection will "
                        "be closed on release",
                        b->opts.timeout_ms);
        break;
    case AGEC__BOUT_WIDE:
        agec__error_copy(err, &b->wide);
        break;
    default:
        agec__error_set(err, s->st, "%s", agec_strerror(s->st));
    }
}

agec_status agec_batch_status(const agec_batch *b, size_t i, agec_error *err)
{
    if (b == NULL || i >= b->n)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "no statement %zu in the batch", i);
    const agec__bstmt *s = &b->stmts[i];
    if (!b->ran || !s->done)
        return agec__error_set(err, AGEC_ERR_STATE, "the batch has not run");
    if (s->out == AGEC__BOUT_OK)
        return agec__error_ok(err);
    if (err == NULL)
        return s->st;
    if (s->out == AGEC__BOUT_OWN && s->err != NULL)
        agec__error_copy(err, s->err);
    else if (s->out == AGEC__BOUT_OWN)
        agec__error_set(err, s->st, "%s (no memory for the details)", agec_strerror(s->st));
    else
        shared_error(b, s, err);
    return s->st;
}

agec_result *agec_batch_result(const agec_batch *b, size_t i)
{
    if (b == NULL || i >= b->n || !b->ran)
        return NULL;
    return b->stmts[i].res;
}

agec_result *agec_batch_take_result(agec_batch *b, size_t i)
{
    agec_result *r = agec_batch_result(b, i);
    if (r != NULL)
        b->stmts[i].res = NULL;
    return r;
}

/* ---- run ------------------------------------------------------------------ */

/* The whole batch fails before anything is sent: every statement gets it. */
static agec_status fail_all(agec_batch *b, agec_error *err, agec_status code, const char *msg)
{
    agec__error_set(&b->wide, code, "%s", msg);
    for (size_t i = 0; i < b->n; i++)
        agec__batch_mark(b, i, AGEC__BOUT_WIDE, 0);
    return agec__error_set(err, code, "%s", msg);
}

/* The outcome the run returns: the first statement that failed for a
 * reason of its own (not one it shares with others because another one
 * failed), else the first failure of any kind. */
static agec_status run_status(agec_batch *b, agec_error *err)
{
    size_t first = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const agec__bstmt *s = &b->stmts[i];
        if (s->out == AGEC__BOUT_OK)
            continue;
        if (first == b->n)
            first = i;
        if (s->out != AGEC__BOUT_NOT_RUN && s->out != AGEC__BOUT_ROLLED_BACK) {
            first = i;
            break;
        }
    }
    if (first == b->n)
        return agec__error_ok(err);
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec_batch_status(b, first, &e);
    if (err != NULL) {
        char msg[AGEC_ERROR_TEXT_MAX], cut[AGEC_ERROR_TEXT_MAX - 40];
        snprintf(msg, sizeof msg, "statement %zu: %s", first,
                 agec__utf8_cut(cut, sizeof cut, e.message));
        agec__copy_text(e.message, sizeof e.message, msg);
        agec__error_copy(err, &e);
    }
    return st;
}

/* All-or-nothing outside a transaction: the implicit transaction was rolled
 * back when a statement failed, so the statements before it took no effect
 * either (those after it were skipped by the server: NOT_RUN already). */
static void roll_back_all(agec_batch *b)
{
    size_t k = b->n;
    for (size_t i = 0; i < b->n && k == b->n; i++)
        if (b->stmts[i].out != AGEC__BOUT_OK && b->stmts[i].out != AGEC__BOUT_NOT_RUN)
            k = i;
    if (k == b->n)
        return;
    for (size_t i = 0; i < b->n; i++)
        if (i != k && b->stmts[i].out == AGEC__BOUT_OK)
            agec__batch_mark(b, i, AGEC__BOUT_ROLLED_BACK, k);
}

agec_status agec_batch_run(agec_batch *b, agec_error *err)
{
    if (b == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "b must not be NULL");
    if (b->ran)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "the batch has run already: agec_batch_reset() to run another");
    b->ran = true;
    if (b->n == 0)
        return fail_all(b, err, AGEC_ERR_INVALID_ARG, "the batch holds no statement");
    PGconn *pg = agec_conn_pgconn(b->conn);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return fail_all(b, err, AGEC_ERR_CONNECTION_LOST, "the connection is not open");
    PGTransactionStatusType ts = PQtransactionStatus(pg);
    if (ts == PQTRANS_ACTIVE || PQpipelineStatus(pg) != PQ_PIPELINE_OFF)
        return fail_all(b, err, AGEC_ERR_STATE,
                        "a statement is already running on this connection");
    int64_t deadline = b->opts.timeout_ms > 0
                           ? agec__deadline_after(agec__now_us(), b->opts.timeout_ms)
                           : AGEC__NEVER;
    /* A cancel request still in flight would cancel a statement of ours. */
    if (!agec__cancel_key_settle(agec__conn_cancel_key(b->conn),
                                 agec__min64(deadline, agec__now_us() + AGEC__SETTLE_MAX_US)))
        return fail_all(b, err, AGEC_ERR_STATE,
                        "a cancel request sent earlier on this connection has not been "
                        "answered: running statements now could get them cancelled; release "
                        "the connection (it is then closed)");
    bool in_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
    bool named = agec__conn_stmt_mode(b->conn) == AGEC_STMT_NAMED;
    agec__session *sess = NULL;
    for (size_t i = 0; named && sess == NULL && i < b->n; i++)
        if (b->stmts[i].prepare)
            sess = agec__session_get(b->conn);
    if (sess != NULL) {
        /* Evicted statements are deallocated before the pipeline starts
         * (nothing runs outside it once it has). */
        agec_error e = AGEC_ERROR_INIT;
        if (agec__session_flush_pending(sess, pg, deadline, &e) != AGEC_OK) {
            agec__conn_mark_broken(b->conn);
            return fail_all(b, err, e.code, e.message);
        }
    }
    agec__conn_stmt_begin(b->conn);
    agec__batch_pipeline(b, b->opts.all_or_nothing || in_tx, sess);
    agec__conn_stmt_end(b->conn);
    if (b->opts.all_or_nothing && !in_tx)
        roll_back_all(b);
    return run_status(b, err);
}
