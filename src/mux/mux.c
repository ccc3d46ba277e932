/*
 * The multiplexer's API: open and shut down, submit (choosing the lane with
 * the fewest statements outstanding), wait (taking a lane's I/O role when
 * free), handles, and the event-loop side (fd, dispatch). Lane I/O is in
 * lane.c. docs/mux.md has the design.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error_internal.h"
#include "common/sized.h"
#include "cypher/exec.h"
#include "mux/mux_internal.h"
#include "session/clock.h"

void agec_mux_config_init(agec_mux_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->connections = 4;
    cfg->acquire_timeout_ms = 5000;
    cfg->max_depth = 0;
    cfg->group_max = 1;
}

void agec__mux_signal(agec_mux *m)
{
    uint64_t one = 1;
    ssize_t w = write(m->evfd, &one, sizeof one);
    (void)w;
}

agec_status agec_mux_open(agec_pool *pool, const agec_mux_config *cfg, agec_mux **out,
                          agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (pool == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "pool and out must not be NULL");
    agec_mux_config c;
    agec_mux_config_init(&c);
    if (cfg != NULL) {
        agec_status st = agec__sized_opts(&c, sizeof c, cfg, sizeof *cfg, "agec_mux_config", err);
        if (st != AGEC_OK)
            return st;
    }
    if (c.connections < 1 || c.connections > MUX_MAX_CONNECTIONS)
        return agec__error_set(err, AGEC_ERR_CONFIG, "connections: must be 1..%d (got %d)",
                               MUX_MAX_CONNECTIONS, c.connections);
    if (c.acquire_timeout_ms < 0)
        return agec__error_set(err, AGEC_ERR_CONFIG, "acquire_timeout_ms: must be >= 0 (got %d)",
                               c.acquire_timeout_ms);
    if (c.group_max < 1 || c.group_max > 256)
        return agec__error_set(err, AGEC_ERR_CONFIG, "group_max: must be 1..256 (got %d)",
                               c.group_max);
    if (c.max_depth < 0)
        return agec__error_set(err, AGEC_ERR_CONFIG, "max_depth: must be >= 0 (got %d)",
                               c.max_depth);
    agec_pool_stats ps;
    if (agec_pool_stats_get(pool, &ps) == AGEC_OK && c.connections > ps.max)
        return agec__error_set(err, AGEC_ERR_CONFIG,
                               "connections: must be <= the pool's max (%d > %d)", c.connections,
                               ps.max);
    agec_mux *m = calloc(1, sizeof *m);
    mux_lane *lanes = calloc((size_t)c.connections, sizeof *lanes);
    if (m == NULL || lanes == NULL) {
        free(m);
        free(lanes);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    m->pool = pool;
    m->cfg = c;
    m->lanes = lanes;
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    m->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    bool ok = m->epfd >= 0 && m->evfd >= 0 && epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->evfd, &ev) == 0;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    for (int i = 0; i < c.connections; i++) {
        mux_lane *l = &lanes[i];
        l->mux = m;
        l->index = i;
        pthread_mutex_init(&l->mu, NULL);
        l->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        l->rtt_cur_min = l->rtt_prev_min = AGEC__NEVER;
        ok = ok && l->kickfd >= 0;
        m->nlanes = i + 1;
    }
    if (!ok) {
        agec__error_set(err, AGEC_ERR_SYSTEM, "eventfd/epoll: %s", strerror(errno));
        m->shut = true;
        atomic_store(&m->closed, true);
        agec_mux_close(m);
        return AGEC_ERR_SYSTEM;
    }
    *out = m;
    return AGEC_OK;
}

/* ---- statements ------------------------------------------------------------------ */

/* Statements that change or need session state, by their first keyword. */
static const char *const session_words[] = {
    "BEGIN",   "START",   "COMMIT", "END",   "ROLLBACK", "ABORT",  "SAVEPOINT",
    "RELEASE", "PREPARE", "SET",    "RESET", "DISCARD",  "LISTEN", "UNLISTEN",
    "DECLARE", "FETCH",   "MOVE",   "CLOSE", "COPY",     "LOAD",   "DEALLOCATE",
};

static const char *skip_space(const char *s)
{
    for (;;) {
        while (isspace((unsigned char)*s) || *s == '(')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s != '\0' && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e ? e + 2 : s + strlen(s);
        } else {
            return s;
        }
    }
}

static const char *session_word(const char *sql)
{
    const char *s = skip_space(sql);
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    for (size_t i = 0; i < sizeof session_words / sizeof *session_words; i++)
        if (strlen(session_words[i]) == n && strncasecmp(s, session_words[i], n) == 0)
            return session_words[i];
    return NULL;
}

static agec_mux_op *op_new(agec_mux *m)
{
    agec_mux_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return NULL;
    atomic_init(&op->refs, 2);
    op->mux = m;
    op->deadline_us = AGEC__NEVER;
    op->stmt_slot = -1;
    op->cmds_left = 1;
    pthread_mutex_init(&op->mu, NULL);
    pthread_cond_init(&op->cv, NULL);
    agec_error_clear(&op->err);
    return op;
}

void agec__op_unref(agec_mux_op *op)
{
    if (op == NULL || atomic_fetch_sub(&op->refs, 1) != 1)
        return;
    agec_result_free(op->res);
    PQclear(op->pres);
    free(op->owned);
    free(op->owned_sql);
    pthread_mutex_destroy(&op->mu);
    pthread_cond_destroy(&op->cv);
    free(op);
}

/* Copy sql, values (and the Cypher query) into one block owned by op. */
static bool op_copy(agec_mux_op *op, const char *sql, int nparams, const char *const *values,
                    const char *query)
{
    size_t size = (size_t)nparams * sizeof(char *) + strlen(sql) + 1;
    for (int i = 0; i < nparams; i++)
        size += values[i] ? strlen(values[i]) + 1 : 0;
    if (query != NULL)
        size += strlen(query) + 1;
    char *block = malloc(size);
    if (block == NULL)
        return false;
    char **vals = (char **)(void *)block;
    char *p = block + (size_t)nparams * sizeof(char *);
    for (int i = 0; i < nparams; i++) {
        vals[i] = NULL;
        if (values[i] != NULL) {
            size_t n = strlen(values[i]) + 1;
            vals[i] = memcpy(p, values[i], n);
            p += n;
        }
    }
    size_t n = strlen(sql) + 1;
    op->text = memcpy(p, sql, n);
    p += n;
    if (query != NULL)
        op->cypher_query = memcpy(p, query, strlen(query) + 1);
    op->vals = (const char *const *)vals;
    op->owned = block;
    return true;
}

/* The first lane with nothing outstanding (so that a lone caller keeps
 * using one warm connection), else the one with the fewest statements
 * outstanding (ties spread by a per-thread start), avoiding lanes that
 * drain a cancel. */
static mux_lane *pick_lane(agec_mux *m)
{
    for (int k = 0; k < m->nlanes; k++) {
        mux_lane *l = &m->lanes[k];
        if (atomic_load_explicit(&l->load, memory_order_relaxed) == 0 && !l->draining)
            return l;
    }
    static _Thread_local unsigned start;
    unsigned s = start++;
    mux_lane *best = NULL;
    int best_load = 0;
    for (int k = 0; k < m->nlanes; k++) {
        mux_lane *l = &m->lanes[(s + (unsigned)k) % (unsigned)m->nlanes];
        int load = atomic_load_explicit(&l->load, memory_order_relaxed);
        if (l->draining)
            load += 1 << 20;
        if (best == NULL || load < best_load) {
            best = l;
            best_load = load;
        }
    }
    return best;
}

/* Queue op on a lane; with `push` (a submit) send it at once if the lane's
 * role is free. */
static agec_status enqueue(agec_mux *m, agec_mux_op *op, bool push, agec_error *err)
{
    mux_lane *l = pick_lane(m);
    pthread_mutex_lock(&l->mu);
    if (atomic_load(&m->closed)) {
        pthread_mutex_unlock(&l->mu);
        return agec__error_set(err, AGEC_ERR_POOL_CLOSED, "the mux is shut down");
    }
    op->lane = l;
    agec__lane_queue(l, op);
    atomic_fetch_add(&m->submitted, 1);
    atomic_fetch_add(&m->outstanding, 1);
    /* A submit sends at once only on an idle connection; behind statements
     * in flight it is sent with the next pass (the driver's, or dispatch's
     * when their results arrive), together with whatever else came. */
    bool drive = push && l->ninflight == 0 && agec__lane_try_role(l);
    if (!drive)
        agec__lane_kick(l);
    pthread_mutex_unlock(&l->mu);
    if (drive)
        agec__lane_drive(l, NULL, AGEC__NEVER);
    return AGEC_OK;
}

static agec_status check_args(agec_mux *m, const char *sql, int nparams, const char *const *values,
                              const agec_query_opts *opts, agec_query_opts *o, agec_error *err)
{
    if (m == NULL || sql == NULL || nparams < 0 || (nparams > 0 && values == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "NULL or invalid argument");
    if (nparams > AGEC_MAX_PARAMS)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "%d parameters: the protocol allows at most %d per statement",
                               nparams, AGEC_MAX_PARAMS);
    agec_status st = agec__query_opts_get(opts, o, err);
    if (st != AGEC_OK)
        return st;
    if (o->timeout_ms < 0)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "timeout_ms is negative");
    const char *w = session_word(sql);
    if (w != NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "%s cannot run through the mux: each multiplexed statement runs "
                               "alone on whichever connection is free, so session state and "
                               "transactions do not carry over; borrow a connection "
                               "(agec_pool_acquire) for it",
                               w);
    if (atomic_load(&m->closed))
        return agec__error_set(err, AGEC_ERR_POOL_CLOSED, "the mux is shut down");
    return AGEC_OK;
}

/* Build an op for sql (copied when `copy`), queue it. */
static agec_status submit(agec_mux *m, const char *sql, char *owned_sql, const char *query,
                          int nparams, const char *const *values, const agec_query_opts *o,
                          agec_mux_done_fn fn, void *user, bool copy, bool push, agec_mux_op **out,
                          agec_error *err)
{
    agec_mux_op *op = op_new(m);
    if (op == NULL || (copy && !op_copy(op, sql, nparams, values, query))) {
        free(op);
        free(owned_sql);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    if (!copy) {
        op->text = sql;
        op->vals = values;
        op->cypher_query = query;
    }
    op->owned_sql = owned_sql;
    op->nparams = nparams;
    op->prepare = o->prepare;
    op->timeout_ms = o->timeout_ms;
    if (o->timeout_ms > 0)
        op->deadline_us = agec__deadline_after(agec__now_us(), o->timeout_ms);
    op->fn = fn;
    op->user = user;
    agec_status st = enqueue(m, op, push, err);
    if (st != AGEC_OK) {
        atomic_store(&op->refs, 1);
        agec__op_unref(op);
        return st;
    }
    if (out != NULL)
        *out = op;
    return AGEC_OK;
}

static void enter(agec_mux *m)
{
    atomic_fetch_add(&m->inside, 1);
}

static void leave(agec_mux *m)
{
    if (atomic_fetch_sub(&m->inside, 1) == 1 && atomic_load(&m->closed)) {
        pthread_mutex_lock(&m->mu);
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
}

static agec_status submit_any(agec_mux *m, const char *graph, const char *query, const char *params,
                              const char *sql, int nparams, const char *const *values,
                              const agec_query_opts *opts, agec_mux_done_fn fn, void *user,
                              bool async, agec_mux_op **op, agec_error *err)
{
    if (op != NULL)
        *op = NULL;
    agec_query_opts o;
    char *text = NULL;
    const char *pv[1] = { params };
    if (query != NULL) {
        agec_status st = agec__query_opts_get(opts, &o, err);
        if (st == AGEC_OK)
            st = agec__cypher_build(graph, query, params != NULL, &o, &text, err);
        if (st != AGEC_OK)
            return st;
        sql = text;
        nparams = params ? 1 : 0;
        values = pv;
    }
    agec_status st = check_args(m, sql, nparams, values, opts, &o, err);
    if (st != AGEC_OK) {
        free(text);
        return st;
    }
    enter(m);
    /* A synchronous call's strings outlive its statement's time in the
     * lane; a Cypher call's parameter array is local here: copied. */
    bool copy = async || query != NULL;
    st = submit(m, sql, text, query, nparams, values, &o, fn, user, copy, async, op, err);
    leave(m);
    return st;
}

agec_status agec_mux_submit_sql(agec_mux *mux, const char *sql, int nparams,
                                const char *const *values, const agec_query_opts *opts,
                                agec_mux_done_fn fn, void *user, agec_mux_op **op, agec_error *err)
{
    if ((fn == NULL) == (op == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "give exactly one of fn and op");
    return submit_any(mux, NULL, NULL, NULL, sql, nparams, values, opts, fn, user, true, op, err);
}

agec_status agec_mux_submit_cypher(agec_mux *mux, const char *graph, const char *query,
                                   const char *params, const agec_query_opts *opts,
                                   agec_mux_done_fn fn, void *user, agec_mux_op **op,
                                   agec_error *err)
{
    if ((fn == NULL) == (op == NULL) || query == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "query must not be NULL; give exactly one of fn and op");
    return submit_any(mux, graph, query, params, NULL, 0, NULL, opts, fn, user, true, op, err);
}

/* ---- waiting ------------------------------------------------------------------------ */

static bool op_is_done(agec_mux_op *op)
{
    pthread_mutex_lock(&op->mu);
    bool d = op->done;
    pthread_mutex_unlock(&op->mu);
    return d;
}

bool agec_mux_op_done(agec_mux_op *op)
{
    return op != NULL && op_is_done(op);
}

/* Wait for op until `until`: drive its lane when the role is free, else
 * sleep until completed or offered the role. true when completed. */
static bool wait_op(agec_mux_op *op, int64_t until)
{
    mux_lane *l = op->lane;
    /* Offered the role and not (yet) taken it: leaving without it must
     * pass the offer on, or the other waiters sleep with nobody reading
     * for them (found by the spin model, src/mux/mux.pml BUG_LOST_OFFER). */
    bool offered = false, done;
    for (;;) {
        if ((done = op_is_done(op)))
            break;
        int64_t now = agec__now_us();
        pthread_mutex_lock(&l->mu);
        op->waiting = false;
        if (op->where != OP_NONE && !op->abandoned) {
            if (now >= op->deadline_us) {
                agec__lane_expire(l, now);
                pthread_mutex_unlock(&l->mu);
                continue;
            }
            if (now >= until) {
                pthread_mutex_unlock(&l->mu);
                done = op_is_done(op);
                break;
            }
            if (agec__lane_try_role(l)) {
                offered = false;
                pthread_mutex_unlock(&l->mu);
                agec__lane_drive(l, op, until);
                continue;
            }
            op->waiting = true;
        }
        pthread_mutex_unlock(&l->mu);
        if (now >= until) {
            done = op_is_done(op);
            break;
        }
        int64_t by = agec__min64(until, op->deadline_us);
        struct timespec ts = agec__timespec_at(by);
        pthread_mutex_lock(&op->mu);
        while (!op->done && !op->role_offer) {
            if (pthread_cond_timedwait(&op->cv, &op->mu, &ts) == ETIMEDOUT)
                break;
        }
        offered = offered || op->role_offer;
        op->role_offer = false;
        pthread_mutex_unlock(&op->mu);
    }
    if (offered) {
        pthread_mutex_lock(&l->mu);
        op->waiting = false;
        if (!l->driving)
            agec__lane_offer(l);
        pthread_mutex_unlock(&l->mu);
    }
    return done;
}

/* The outcome of a completed op, handed out once. */
static agec_status take(agec_mux_op *op, agec_result **out, agec_error *err)
{
    pthread_mutex_lock(&op->mu);
    if (op->taken) {
        pthread_mutex_unlock(&op->mu);
        return agec__error_set(err, AGEC_ERR_STATE, "the result was already taken");
    }
    op->taken = true;
    agec_status st = op->st;
    agec_result *res = op->res;
    op->res = NULL;
    if (err != NULL)
        agec__error_copy(err, &op->err);
    pthread_mutex_unlock(&op->mu);
    if (out != NULL)
        *out = res;
    else
        agec_result_free(res);
    return st;
}

agec_status agec_mux_wait(agec_mux_op *op, int timeout_ms, agec_result **out, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (op == NULL || op->fn != NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "op must be a handle");
    int64_t until = agec__deadline_after(agec__now_us(), timeout_ms);
    agec_mux *m = op->mux;
    enter(m);
    bool done = wait_op(op, until);
    leave(m);
    if (!done)
        return agec__error_set(err, AGEC_ERR_TIMEOUT,
                               "the statement has not completed within %d ms (it keeps running: "
                               "wait again or free the handle)",
                               timeout_ms);
    return take(op, out, err);
}

void agec_mux_op_free(agec_mux_op *op)
{
    if (op == NULL)
        return;
    mux_lane *l = op->lane;
    pthread_mutex_lock(&l->mu);
    if (op->where != OP_NONE && !op->abandoned) {
        /* Nobody wants it any more: drop it if not sent, else drop its
         * result when it comes (a cancel only if nothing else is in flight). */
        agec_error e = AGEC_ERROR_INIT;
        agec__error_set(&e, AGEC_ERR_CANCELLED, "the handle was freed");
        if (op->where == OP_PENDING) {
            agec__lane_unqueue(l, op);
            agec__lane_complete(l, op, AGEC_ERR_CANCELLED, NULL, &e);
            agec__op_unref(op);
        } else {
            if (op->where == OP_INFLIGHT)
                l->nlive--;
            op->abandoned = true;
            agec__lane_complete(l, op, AGEC_ERR_CANCELLED, NULL, &e);
            agec__lane_expire(l, agec__now_us());
        }
    }
    pthread_mutex_unlock(&l->mu);
    agec__op_unref(op);
}

static agec_status run_sync(agec_mux *m, const char *graph, const char *query, const char *params,
                            const char *sql, int nparams, const char *const *values,
                            const agec_query_opts *opts, agec_result **out, agec_error *err)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "out must not be NULL");
    *out = NULL;
    agec_mux_op *op;
    agec_status st = submit_any(m, graph, query, params, sql, nparams, values, opts, NULL, NULL,
                                false, &op, err);
    if (st != AGEC_OK)
        return st;
    enter(m);
    (void)wait_op(op, AGEC__NEVER);
    leave(m);
    st = take(op, out, err);
    /* Completed: the lane holds no reference any more unless the op was
     * abandoned in flight (then its text was sent already). */
    agec__op_unref(op);
    return st;
}

agec_status agec_mux_sql(agec_mux *mux, const char *sql, int nparams, const char *const *values,
                         const agec_query_opts *opts, agec_result **out, agec_error *err)
{
    return run_sync(mux, NULL, NULL, NULL, sql, nparams, values, opts, out, err);
}

agec_status agec_mux_cypher(agec_mux *mux, const char *graph, const char *query, const char *params,
                            const agec_query_opts *opts, agec_result **out, agec_error *err)
{
    if (query == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "query must not be NULL");
    return run_sync(mux, graph, query, params, NULL, 0, NULL, opts, out, err);
}
