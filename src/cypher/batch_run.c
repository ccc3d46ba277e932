/*
 * The pipeline of a batch: statement names from the statement cache, every
 * message queued in non-blocking mode and sent in one flush, then every
 * result read in order within the batch deadline, cancelling at it.
 *
 * What the server answers, item by item (libpq pipeline mode): a Parse
 * gives one result (COMMAND_OK or an error), an Execute its result(s), each
 * followed by a NULL; a Sync gives PGRES_PIPELINE_SYNC. After an error the
 * server skips everything up to the next Sync: each skipped item gives
 * PGRES_PIPELINE_ABORTED.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/pool.h"
#include "common/error_internal.h"
#include "cypher/batch_internal.h"
#include "cypher/exec.h"
#include "cypher/pooler.h"
#include "cypher/result.h"
#include "pool/conn_ext.h"
#include "session/clock.h"
#include "session/pqerror.h"
#include "session/pgconn.h"

/* As a statement timeout (src/cypher/exec.c): the cancel is sent again
 * every CANCEL_REPEAT of a grace period in which outcomes are still read. */
#define CANCEL_GRACE_US 150000
#define CANCEL_REPEAT_US 50000

typedef enum item_kind { ITEM_PARSE, ITEM_EXEC, ITEM_SYNC } item_kind;

typedef struct item {
    item_kind kind;
    size_t stmt; /* PARSE, EXEC: the statement; SYNC: the last one before it */
} item;

typedef struct pipe {
    agec_batch *b;
    PGconn *pg;
    agec__session *sess;
    item *items;
    size_t nitems;
    int64_t deadline; /* the batch's, then the next cancel repeat */
    int64_t give_up;  /* after the first cancel: end of the grace period */
    bool cancelled;
    agec__cancel_job *cancel;
} pipe;

/* ---- statement names -------------------------------------------------- */

/* Name each statement that wants one from the connection's cache; a
 * statement not cached gets a new name and its Parse goes in this batch.
 * The name is copied: a later add may evict the slot within the batch
 * (more than AGEC_STMT_CACHE_MAX new statements), and the eviction's
 * DEALLOCATE waits for a later statement. */
static void name_statements(pipe *p)
{
    agec_batch *b = p->b;
    uint64_t nonce = agec__conn_pool_nonce(b->conn);
    for (size_t i = 0; i < b->n; i++) {
        agec__bstmt *s = &b->stmts[i];
        s->name[0] = '\0';
        s->parse_sent = false;
        if (!s->prepare || p->sess == NULL)
            continue;
        agec__stmt *c = agec__session_find(p->sess, s->sql);
        if (c != NULL) {
            memcpy(s->name, c->name, sizeof s->name);
            s->prep_owner = b->n; /* prepared before this batch */
            for (size_t j = 0; j < i; j++)
                if (b->stmts[j].parse_sent && strcmp(b->stmts[j].name, s->name) == 0)
                    s->prep_owner = j;
            continue;
        }
        c = agec__session_add(p->sess, nonce, s->sql);
        if (c == NULL)
            continue; /* out of memory: unnamed, which works as well */
        memcpy(s->name, c->name, sizeof s->name);
        s->parse_sent = true;
        s->prep_owner = i;
    }
}

/* Drop statement i's name from the cache (its Parse failed or its outcome
 * is unknown, or the server no longer knows it). */
static void forget_name(pipe *p, size_t i)
{
    agec__bstmt *s = &p->b->stmts[i];
    if (p->sess == NULL || s->name[0] == '\0')
        return;
    agec__stmt *c = agec__session_find(p->sess, s->sql);
    if (c != NULL && strcmp(c->name, s->name) == 0)
        agec__session_forget(p->sess, c);
}

/* ---- sending ------------------------------------------------------------ */

static void push(pipe *p, item_kind kind, size_t stmt)
{
    p->items[p->nitems++] = (item){ .kind = kind, .stmt = stmt };
}

/* Statements from..n get `kind` (never sent, or no outcome read) and lose
 * a name whose Parse may not have reached the server. */
static void give_up_from(pipe *p, size_t from, agec__bout kind)
{
    for (size_t i = from; i < p->b->n; i++) {
        if (p->b->stmts[i].parse_sent)
            forget_name(p, i);
        if (!p->b->stmts[i].done)
            agec__batch_mark(p->b, i, kind, 0);
    }
}

/* Queue the messages of statements from..to (libpq sends what it can as
 * its buffer fills, never blocking), then flush within the deadline. The
 * first call enters pipeline mode. false after giving every statement from
 * `from` on an outcome. */
static bool send_range(pipe *p, size_t from, size_t to, bool one_sync)
{
    agec_batch *b = p->b;
    PGconn *pg = p->pg;
    if (from == 0 && (!agec__session_send_begin(pg) || !PQenterPipelineMode(pg)))
        goto refused;
    for (size_t i = from; i < to; i++) {
        agec__bstmt *s = &b->stmts[i];
        const char *const *v = (const char *const *)s->values;
        if (s->parse_sent) {
            if (!PQsendPrepare(pg, s->name, s->sql, s->nparams, NULL))
                goto refused;
            push(p, ITEM_PARSE, i);
        }
        int ok = s->name[0] ? PQsendQueryPrepared(pg, s->name, s->nparams, v, NULL, NULL, 0)
                            : PQsendQueryParams(pg, s->sql, s->nparams, NULL, v, NULL, NULL, 0);
        if (!ok)
            goto refused;
        push(p, ITEM_EXEC, i);
        if (!one_sync || i + 1 == b->n) {
            if (!PQpipelineSync(pg))
                goto refused;
            push(p, ITEM_SYNC, i);
        }
    }
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec__session_send_flush(pg, p->deadline, NULL, &e);
    if (st == AGEC_OK)
        return true;
    /* Half sent: the connection cannot be used again, and the statements
     * sent may have run. */
    agec__conn_mark_broken(b->conn);
    give_up_from(p, from, st == AGEC_ERR_TIMEOUT ? AGEC__BOUT_TIMEOUT : AGEC__BOUT_LOST);
    return false;
refused:;
    /* libpq refused a message (out of memory, or the connection broke):
     * what was queued may be partly out; the connection is given up. */
    agec_error r = AGEC_ERROR_INIT;
    agec__error_from_result(&r, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    agec__conn_mark_broken(b->conn);
    for (size_t i = from; i < b->n; i++) {
        if (b->stmts[i].parse_sent)
            forget_name(p, i);
        agec__batch_fail(b, i, r.code, &r, NULL);
    }
    return false;
}

/* ---- reading ------------------------------------------------------------ */

/* The deadline (or a cancel repeat time) has passed: cancel (again), or
 * after the grace period give up (false). */
static bool on_deadline(pipe *p)
{
    int64_t now = agec__now_us();
    if (!p->cancelled) {
        p->cancelled = true;
        p->give_up = now + CANCEL_GRACE_US;
    } else if (now >= p->give_up) {
        return false;
    }
    /* One request at a time: another would only pile up behind it. */
    if (p->cancel == NULL || agec__cancel_done(p->cancel)) {
        agec__cancel_release(p->cancel);
        p->cancel = agec__cancel_start_key(agec__conn_cancel_key(p->b->conn));
    }
    p->deadline = agec__min64(now + CANCEL_REPEAT_US, p->give_up);
    return true;
}

/* Wait until PQgetResult will not block. 1 ready, 0 gave up at the end of
 * the grace period, -1 the connection failed. */
static int wait_ready(pipe *p)
{
    while (PQisBusy(p->pg)) {
        int fd = PQsocket(p->pg);
        if (fd < 0)
            return -1;
        int64_t now = agec__now_us();
        int ms = agec__poll_ms(p->deadline, now);
        if (ms == 0) {
            if (!on_deadline(p))
                return 0;
            continue;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0 && !PQconsumeInput(p->pg))
            return -1;
    }
    return 1;
}

/* A server error for statement i. */
static void server_error(pipe *p, size_t i, const PGresult *res, bool at_commit)
{
    agec_batch *b = p->b;
    agec__bstmt *s = &b->stmts[i];
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec__error_from_result(&e, AGEC_ERR_SERVER, res, p->pg);
    if ((st == AGEC_ERR_TIMEOUT || st == AGEC_ERR_CANCELLED) && p->cancelled) {
        e.code = AGEC_ERR_TIMEOUT; /* our deadline's cancel; SQLSTATE 57014 kept */
        snprintf(e.message, sizeof e.message,
                 "batch timeout: the statement was cancelled on the server at the batch "
                 "deadline (%d ms)",
                 b->opts.timeout_ms);
    } else {
        agec__age_hint(&e);
        if (s->query != NULL)
            agec__cypher_position(&e, s->sql, s->query);
    }
    if (at_commit) {
        char msg[AGEC_ERROR_TEXT_MAX], cut[AGEC_ERROR_TEXT_MAX - 40];
        snprintf(msg, sizeof msg, "at commit: %s", agec__utf8_cut(cut, sizeof cut, e.message));
        agec__copy_text(e.message, sizeof e.message, msg);
    }
    if (agec__sqlstate_is_fatal(e.sqlstate) || PQstatus(p->pg) == CONNECTION_BAD)
        agec__conn_mark_broken(b->conn);
    agec__batch_fail(b, i, e.code, &e, NULL);
}

/* The first statement that failed on its own, for NOT_RUN's reference. */
static size_t first_failure(const agec_batch *b, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (b->stmts[i].done && b->stmts[i].out == AGEC__BOUT_OWN)
            return i;
    return upto;
}

/* Leave a COPY state the statement entered (a pipeline cannot carry COPY
 * data): 1 ended, else the connection is given up. */
static int end_copy(pipe *p, ExecStatusType copy)
{
    for (;;) {
        int c = agec__session_copy_step(p->pg, copy);
        if (c != 0)
            return c;
        struct pollfd pfd = { .fd = PQsocket(p->pg), .events = POLLIN };
        int ms = agec__poll_ms(p->deadline, agec__now_us());
        if (pfd.fd < 0 || ms == 0 || poll(&pfd, 1, ms) <= 0 || !PQconsumeInput(p->pg))
            return -1;
    }
}

/* The next result, waited for within the deadline: 1 with *res (NULL at
 * the end of an item's results), 0 / -1 as wait_ready. */
static int next_result(pipe *p, PGresult **res)
{
    int r = wait_ready(p);
    *res = r > 0 ? PQgetResult(p->pg) : NULL;
    return r;
}

/* Read the results of one Parse or Execute item up to its NULL. 1 read,
 * 0 / -1 as wait_ready. */
static int read_item(pipe *p, const item *it)
{
    agec_batch *b = p->b;
    agec__bstmt *s = &b->stmts[it->stmt];
    for (;;) {
        PGresult *res;
        int r = next_result(p, &res);
        if (r <= 0)
            return r;
        if (res == NULL)
            break;
        ExecStatusType rs = PQresultStatus(res);
        if (rs == PGRES_PIPELINE_ABORTED) {
            /* Skipped after an earlier failure: this statement's own Parse,
             * or another statement (all-or-nothing, or a transaction). A
             * skipped Parse prepared nothing. */
            if (it->kind == ITEM_PARSE)
                forget_name(p, it->stmt);
            if (!(s->done && s->out == AGEC__BOUT_OWN))
                agec__batch_mark(b, it->stmt, AGEC__BOUT_NOT_RUN, first_failure(b, it->stmt));
            PQclear(res);
            continue;
        }
        agec__res_kind kind = agec__session_classify(res);
        if (kind == AGEC__RES_ROWS) {
            if (it->kind == ITEM_EXEC && !s->done) {
                agec_result_free(s->res);
                s->res = agec__result_wrap(res);
                res = NULL;
                if (s->res == NULL)
                    agec__batch_fail(b, it->stmt, AGEC_ERR_NO_MEMORY, NULL, "out of memory");
            }
        } else if (kind == AGEC__RES_EMPTY) {
            agec__batch_fail(b, it->stmt, AGEC_ERR_INVALID_ARG, NULL,
                             "the statement is empty (only white space or comments)");
        } else if (kind == AGEC__RES_COPY) {
            agec__batch_fail(b, it->stmt, AGEC_ERR_STATE, NULL, "%s", AGEC__COPY_REFUSED);
            ExecStatusType copy = rs;
            PQclear(res);
            res = NULL;
            if (end_copy(p, copy) <= 0)
                return -1;
        } else if (it->kind == ITEM_EXEC && !s->parse_sent && s->prep_owner < b->n &&
                   b->stmts[s->prep_owner].out == AGEC__BOUT_OWN &&
                   b->stmts[s->prep_owner].err != NULL) {
            /* Its statement was to be prepared earlier in this batch, and
             * that Parse failed: the same error, not "does not exist". */
            const agec__bstmt *o = &b->stmts[s->prep_owner];
            agec__batch_fail(b, it->stmt, o->st, o->err, NULL);
        } else {
            if (it->kind == ITEM_PARSE)
                forget_name(p, it->stmt);
            server_error(p, it->stmt, res, false);
        }
        PQclear(res);
    }
    if (it->kind == ITEM_EXEC && !s->done) {
        s->done = true;
        s->out = AGEC__BOUT_OK;
        s->st = AGEC_OK;
    }
    return 1;
}

/* Read a Sync's PIPELINE_SYNC. An error before it failed the implicit
 * COMMIT: it belongs to the statement(s) the Sync closes. */
static int read_sync(pipe *p, const item *it)
{
    for (;;) {
        PGresult *res;
        int r = next_result(p, &res);
        if (r <= 0)
            return r;
        if (res == NULL)
            return -1; /* out of step with the server: give the connection up */
        ExecStatusType rs = PQresultStatus(res);
        if (rs == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return 1;
        }
        if (agec__session_classify(res) == AGEC__RES_ERROR)
            server_error(p, it->stmt, res, true);
        PQclear(res);
        if (PQstatus(p->pg) == CONNECTION_BAD)
            return -1;
    }
}

/* Outcomes of the statements the read did not reach (stopped at `from`).
 * A Sync not reached leaves the commit of what it closes unknown: those
 * statements (all of them with one Sync) lose their success too. */
static void unreached(pipe *p, size_t from, int why, bool one_sync)
{
    agec_batch *b = p->b;
    agec__bout kind = why == 0 ? AGEC__BOUT_TIMEOUT : AGEC__BOUT_LOST;
    agec__conn_mark_broken(b->conn);
    for (size_t i = from; i < p->nitems; i++) {
        const item *it = &p->items[i];
        if (it->kind == ITEM_PARSE)
            forget_name(p, it->stmt); /* its outcome is unknown */
        if (it->kind != ITEM_SYNC) {
            if (!b->stmts[it->stmt].done)
                agec__batch_mark(b, it->stmt, kind, 0);
        } else if (one_sync) {
            for (size_t k = 0; k <= it->stmt; k++)
                agec__batch_mark(b, k, kind, 0); /* keeps failures */
        } else {
            agec__batch_mark(b, it->stmt, kind, 0);
        }
    }
    /* Statements not sent yet (behind a pooler they go one at a time). */
    give_up_from(p, p->nitems > 0 ? p->items[p->nitems - 1].stmt + 1 : 0, kind);
}

/* Read the outcomes of every item sent, from *i on. false: the read
 * stopped (every statement from there on has its outcome). */
static bool read_sent(pipe *p, size_t *i, bool one_sync)
{
    for (; *i < p->nitems; (*i)++) {
        const item *it = &p->items[*i];
        int r = it->kind == ITEM_SYNC ? read_sync(p, it) : read_item(p, it);
        if (r <= 0 || PQstatus(p->pg) == CONNECTION_BAD) {
            unreached(p, r <= 0 ? *i : *i + 1, r, one_sync);
            return false;
        }
    }
    return true;
}

/* Behind a transaction pooler a batch with a Sync per statement goes one
 * statement at a time (cypher/pooler.h: PgBouncer 1.18 may end a
 * transaction sent while an earlier Sync is unanswered on another server).
 * false: the check failed, every statement has its error. */
static bool check_pooler(pipe *p, bool *serial)
{
    agec_batch *b = p->b;
    *serial = false;
    if (b->n < 2)
        return true;
    int64_t left = p->deadline == AGEC__NEVER ? 5000000 : p->deadline - agec__now_us();
    int ms = left <= 0 ? 1 : (int)agec__min64((left + 999) / 1000, INT32_MAX);
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec__conn_behind_pooler(b->conn, ms, serial, &e);
    if (st == AGEC_OK)
        return true;
    for (size_t i = 0; i < b->n; i++)
        agec__batch_fail(b, i, st, &e, NULL);
    return false;
}

void agec__batch_pipeline(agec_batch *b, bool one_sync, agec__session *sess)
{
    pipe p = { .b = b, .pg = agec_conn_pgconn(b->conn), .sess = sess, .deadline = AGEC__NEVER };
    if (b->opts.timeout_ms > 0)
        p.deadline = agec__deadline_after(agec__now_us(), b->opts.timeout_ms);
    const int64_t deadline = p.deadline; /* p.deadline moves on with cancel repeats */
    bool serial = false;
    if (!one_sync && !check_pooler(&p, &serial))
        return;
    p.items = malloc(3 * b->n * sizeof *p.items);
    if (p.items == NULL) {
        for (size_t i = 0; i < b->n; i++)
            agec__batch_fail(b, i, AGEC_ERR_NO_MEMORY, NULL, "out of memory");
        return;
    }
    name_statements(&p);
    size_t i = 0;
    for (size_t from = 0; from < b->n;) {
        size_t to = serial ? from + 1 : b->n;
        if (from > 0 && agec__now_us() >= deadline) {
            give_up_from(&p, from, AGEC__BOUT_TIMEOUT); /* never sent */
            break;
        }
        if (!send_range(&p, from, to, one_sync)) {
            free(p.items);
            return;
        }
        if (!read_sent(&p, &i, one_sync))
            break;
        from = to;
    }
    /* Cached statements that went stale fail their statement: forget them
     * so that the next use prepares them again. */
    for (size_t k = 0; k < b->n; k++) {
        const agec__bstmt *s = &b->stmts[k];
        if (s->name[0] && !s->parse_sent && s->out == AGEC__BOUT_OWN && s->err != NULL &&
            (strcmp(s->err->sqlstate, "26000") == 0 || strcmp(s->err->sqlstate, "0A000") == 0))
            forget_name(&p, k);
    }
    if (i == p.nitems && PQexitPipelineMode(p.pg) != 1)
        agec__conn_mark_broken(b->conn);
    /* A cancel that did its job is all but finished: let it end within the
     * grace period, so no thread outlives the call needlessly. */
    if (p.cancel != NULL)
        (void)agec__cancel_wait(p.cancel, p.give_up);
    agec__cancel_release(p.cancel);
    free(p.items);
}
