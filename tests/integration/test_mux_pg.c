/*
 * Issue 28: the multiplexer on PostgreSQL 15. Every caller gets its own
 * result and its own error; deadlines never cancel another caller's
 * statement; a killed backend fails only what was in flight on it and the
 * connection is replaced; shutdown completes everything; callbacks through
 * the event-loop side.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_pool_util.h"

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct fixture {
    agec_pool *pool;
    agec_mux *mux;
    char app[64];
} fixture;

static fixture *fx_open_group(const char *tag, int connections, int group_max)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    agec_pool_config cfg;
    pool_test_config(&cfg, tag, f->app, NULL);
    cfg.max = connections + 1;
    f->pool = pool_open_ok(&cfg);
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = connections;
    mc.group_max = group_max;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_open(f->pool, &mc, &f->mux, &err), &err, "mux open");
    return f;
}

static fixture *fx_open(const char *tag, int connections)
{
    return fx_open_group(tag, connections, 1);
}

static void fx_close(fixture *f)
{
    agec_mux_close(f->mux);
    agec_test_must(agec_pool_close(f->pool, 5000, NULL), NULL, "pool close");
    free(f);
}

static long res_long(agec_result *r, size_t row, size_t col)
{
    int64_t v = -1;
    assert_int_equal(agec_result_get_int64(r, row, col, &v, NULL), AGEC_OK);
    return (long)v;
}

/* ---- every caller its own result and error ---------------------------------------- */

typedef struct worker {
    agec_mux *mux;
    int id;
    int rounds;
    int wrong, errors, own_errors;
} worker;

static void *own_results(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        char a[32];
        snprintf(a, sizeof a, "%d", w->id * 100000 + i);
        const char *vals[1] = { a };
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        if (i % 5 == 3) {
            /* This caller's own error: division by zero, with its number. */
            agec_status st = agec_mux_sql(w->mux, "SELECT $1::int / 0", 1, vals, NULL, &r, &err);
            if (st == AGEC_ERR_SERVER && strcmp(err.sqlstate, "22012") == 0)
                w->own_errors++;
            else
                w->errors++;
            continue;
        }
        agec_status st = agec_mux_sql(w->mux, "SELECT $1::int + 1", 1, vals, NULL, &r, &err);
        if (st != AGEC_OK) {
            fprintf(stderr, "worker %d: %s %s %s\n", w->id, agec_status_name(st), err.sqlstate,
                    err.message);
            w->errors++;
            continue;
        }
        int64_t v = 0;
        if (agec_result_get_int64(r, 0, 0, &v, NULL) != AGEC_OK || v != w->id * 100000 + i + 1)
            w->wrong++;
        agec_result_free(r);
    }
    return NULL;
}

static void test_own_results_and_errors(void **state)
{
    int group = state != NULL && *state != NULL ? *(int *)*state : 1;
    fixture *f = fx_open_group("mux_own", 2, group);
    enum { N = 12 };
    pthread_t t[N];
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){ .mux = f->mux, .id = i + 1, .rounds = 150 };
        assert_int_equal(pthread_create(&t[i], NULL, own_results, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].wrong, 0);
        assert_int_equal(w[i].errors, 0);
        assert_int_equal(w[i].own_errors, 30);
    }
    agec_mux_stats s;
    agec_mux_stats_get(f->mux, &s);
    assert_int_equal(s.submitted, N * 150);
    assert_int_equal(s.completed, N * 150);
    assert_int_equal(s.outstanding, 0);
    assert_false(s.pooler); /* a direct connection is not taken for a pooler */
    /* Pipelining happened: fewer flushes than statements. */
    assert_true(s.batches < s.submitted);
    fx_close(f);
}

/* ---- groups: a statement rolled back by another's error runs again ------------ */

typedef struct inserter {
    agec_mux *mux;
    int id, inserted, dup_errors, other;
} inserter;

static void *insert_rows(void *arg)
{
    inserter *w = arg;
    for (int i = 0; i < 60; i++) {
        /* Every 6th insert repeats this thread's previous key: 23505, its own. */
        int key = w->id * 1000 + (i % 6 == 5 ? i - 1 : i);
        char a[32];
        snprintf(a, sizeof a, "%d", key);
        const char *vals[1] = { a };
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_mux_sql(w->mux, "INSERT INTO mux_grp (k) VALUES ($1::int)", 1, vals,
                                      NULL, &r, &err);
        if (st == AGEC_OK)
            w->inserted++;
        else if (st == AGEC_ERR_SERVER && strcmp(err.sqlstate, "23505") == 0 && i % 6 == 5)
            w->dup_errors++;
        else {
            fprintf(stderr, "inserter %d: %s %s %s\n", w->id, agec_status_name(st), err.sqlstate,
                    err.message);
            w->other++;
        }
        agec_result_free(r);
    }
    return NULL;
}

static void test_group_rollback_reruns(void **state)
{
    (void)state;
    fixture *f = fx_open_group("mux_grp", 1, 16);
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_sql(f->mux, "DROP TABLE IF EXISTS mux_grp", 0, NULL, NULL, &r, &err),
                   &err, "drop");
    agec_result_free(r);
    agec_test_must(
        agec_mux_sql(f->mux, "CREATE TABLE mux_grp (k int PRIMARY KEY)", 0, NULL, NULL, &r, &err),
        &err, "create");
    agec_result_free(r);
    enum { N = 8 };
    pthread_t t[N];
    inserter w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (inserter){ .mux = f->mux, .id = i + 1 };
        assert_int_equal(pthread_create(&t[i], NULL, insert_rows, &w[i]), 0);
    }
    int inserted = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].other, 0);
        assert_int_equal(w[i].dup_errors, 10);
        assert_int_equal(w[i].inserted, 50);
        inserted += w[i].inserted;
    }
    /* Every insert reported done is there (re-run after its group failed
     * on another's duplicate), none twice (the key). */
    agec_test_must(agec_mux_sql(f->mux, "SELECT count(*) FROM mux_grp", 0, NULL, NULL, &r, &err),
                   &err, "count");
    assert_int_equal(res_long(r, 0, 0), inserted);
    agec_result_free(r);
    agec_mux_stats s;
    agec_mux_stats_get(f->mux, &s);
    /* Groups formed (fewer flushes than statements), and some failed on
     * another's duplicate: their other statements were sent again. */
    fprintf(stderr, "group test: %llu statements, %llu flushes, %llu sent again\n",
            (unsigned long long)s.submitted, (unsigned long long)s.batches,
            (unsigned long long)s.resent);
    assert_true(s.batches < s.submitted);
    assert_true(s.resent > 0);
    agec_test_must(agec_mux_sql(f->mux, "DROP TABLE mux_grp", 0, NULL, NULL, &r, &err), &err,
                   "drop");
    agec_result_free(r);
    fx_close(f);
}

/* ---- session-changing statements are refused ------------------------------------------ */

static void test_session_statements_refused(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_refuse", 1);
    const char *bad[] = { "BEGIN",          "  set search_path = x", "/* c */ COMMIT",
                          "-- x\nLISTEN y", "copy t from stdin",     "DISCARD ALL",
                          "(rollback)" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        assert_int_equal(agec_mux_sql(f->mux, bad[i], 0, NULL, NULL, &r, &err),
                         AGEC_ERR_INVALID_ARG);
        assert_non_null(strstr(err.message, "borrow a connection"));
    }
    /* Words that only start like one are fine. */
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_sql(f->mux, "SELECT 1 AS settings", 0, NULL, NULL, &r, &err), &err,
                   "select");
    agec_result_free(r);
    /* Two statements in one string: the server refuses (extended protocol). */
    assert_int_equal(agec_mux_sql(f->mux, "SELECT 1; SELECT 2", 0, NULL, NULL, &r, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "42601");
    fx_close(f);
}

/* ---- deadlines never cancel another caller's statement ------------------------------- */

typedef struct slow_caller {
    agec_mux *mux;
    int id;
    agec_status st;
    long value;
    int64_t took_ms;
} slow_caller;

static void *slow_call(void *arg)
{
    slow_caller *c = arg;
    char a[16];
    snprintf(a, sizeof a, "%d", c->id);
    const char *vals[1] = { a };
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 30000;
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = ms_now();
    c->st = agec_mux_sql(c->mux, "SELECT $1::int * 10 FROM pg_sleep(0.2)", 1, vals, &o, &r, &err);
    c->took_ms = ms_now() - t0;
    if (c->st == AGEC_OK)
        c->value = res_long(r, 0, 0);
    else
        fprintf(stderr, "caller %d: %s %s\n", c->id, agec_status_name(c->st), err.message);
    agec_result_free(r);
    return NULL;
}

static void test_deadline_spares_others(void **state)
{
    (void)state;
    /* One connection: the long sleep and everyone else share one pipeline. */
    fixture *f = fx_open("mux_deadline", 1);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 300;
    agec_mux_op *sleeper = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(
        agec_mux_submit_sql(f->mux, "SELECT pg_sleep(3)", 0, NULL, &o, NULL, NULL, &sleeper, &err),
        &err, "submit sleeper");
    enum { N = 6 };
    pthread_t t[N];
    slow_caller c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (slow_caller){ .mux = f->mux, .id = i + 1 };
        assert_int_equal(pthread_create(&t[i], NULL, slow_call, &c[i]), 0);
    }
    int64_t t0 = ms_now();
    agec_result *r = NULL;
    assert_int_equal(agec_mux_wait(sleeper, -1, &r, &err), AGEC_ERR_TIMEOUT);
    assert_true(agec_mux_op_done(sleeper));
    assert_null(r);
    /* At its deadline, not when the sleep ends. */
    assert_true(ms_now() - t0 < 2500);
    agec_mux_op_free(sleeper);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].st, AGEC_OK);
        assert_int_equal(c[i].value, (i + 1) * 10);
    }
    agec_mux_stats s;
    agec_mux_stats_get(f->mux, &s);
    /* Others were in flight behind the sleeper: nobody was cancelled. */
    assert_int_equal(s.cancels, 0);
    assert_int_equal(s.timeouts, 1);
    fx_close(f);
}

static void test_deadline_alone_cancels(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_cancel", 1);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 200;
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = ms_now();
    assert_int_equal(agec_mux_sql(f->mux, "SELECT pg_sleep(20)", 0, NULL, &o, &r, &err),
                     AGEC_ERR_TIMEOUT);
    assert_true(ms_now() - t0 < 2000);
    /* Alone in flight: its backend is cancelled, and the next statement on
     * the same connection does not wait for the sleep nor get the cancel. */
    t0 = ms_now();
    agec_test_must(agec_mux_sql(f->mux, "SELECT 42", 0, NULL, NULL, &r, &err), &err, "after");
    assert_int_equal(res_long(r, 0, 0), 42);
    agec_result_free(r);
    assert_true(ms_now() - t0 < 5000);
    agec_mux_stats s;
    agec_mux_stats_get(f->mux, &s);
    assert_true(s.cancels >= 1);
    assert_int_equal(s.replaced, 0);
    fx_close(f);
}

/* A statement whose deadline passes while it waits to be sent is never sent. */
static void test_deadline_before_send(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_unsent", 1);
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    agec_error err = AGEC_ERROR_INIT;
    agec_mux *m = NULL;
    mc.connections = 1;
    mc.max_depth = 1;
    agec_test_must(agec_mux_open(f->pool, &mc, &m, &err), &err, "open depth 1");
    agec_mux_op *a = NULL, *b = NULL;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 5000;
    agec_test_must(
        agec_mux_submit_sql(m, "SELECT 1 FROM pg_sleep(0.5)", 0, NULL, &o, NULL, NULL, &a, &err),
        &err, "a");
    o.timeout_ms = 100;
    agec_test_must(agec_mux_submit_sql(m, "CREATE TABLE mux_never_sent (x int)", 0, NULL, &o, NULL,
                                       NULL, &b, &err),
                   &err, "b");
    assert_int_equal(agec_mux_wait(b, -1, NULL, &err), AGEC_ERR_TIMEOUT);
    assert_non_null(strstr(err.message, "never reached the server"));
    agec_test_must(agec_mux_wait(a, -1, NULL, &err), &err, "a done");
    agec_mux_op_free(a);
    agec_mux_op_free(b);
    agec_result *r = NULL;
    agec_test_must(agec_mux_sql(m, "SELECT count(*) FROM pg_class WHERE relname = 'mux_never_sent'",
                                0, NULL, NULL, &r, &err),
                   &err, "check");
    assert_int_equal(res_long(r, 0, 0), 0);
    agec_result_free(r);
    agec_mux_close(m);
    fx_close(f);
}

/* ---- a killed backend ------------------------------------------------------------------ */

static void test_killed_backend(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_kill", 1);
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_sql(f->mux, "SELECT pg_backend_pid()", 0, NULL, NULL, &r, &err), &err,
                   "pid");
    long pid = res_long(r, 0, 0);
    agec_result_free(r);
    enum { N = 5 };
    agec_mux_op *ops[N];
    for (int i = 0; i < N; i++)
        agec_test_must(agec_mux_submit_sql(f->mux, "SELECT 1 FROM pg_sleep(1)", 0, NULL, NULL, NULL,
                                           NULL, &ops[i], &err),
                       &err, "submit");
    PGconn *admin = pg_admin();
    char q[96];
    snprintf(q, sizeof q, "SELECT pg_terminate_backend(%ld)::int", pid);
    assert_int_equal(pg_int(admin, q), 1);
    PQfinish(admin);
    for (int i = 0; i < N; i++) {
        agec_error e = AGEC_ERROR_INIT;
        agec_status st = agec_mux_wait(ops[i], 10000, NULL, &e);
        assert_true(agec_mux_op_done(ops[i]));
        assert_int_equal(st, AGEC_ERR_CONNECTION_LOST);
        if (i == 0)
            assert_string_equal(e.sqlstate, "57P01");
        agec_mux_op_free(ops[i]);
    }
    /* Replaced: the next statement runs on a new backend. */
    agec_test_must(agec_mux_sql(f->mux, "SELECT pg_backend_pid()", 0, NULL, NULL, &r, &err), &err,
                   "pid after");
    assert_true(res_long(r, 0, 0) != pid);
    agec_result_free(r);
    agec_mux_stats s;
    agec_mux_stats_get(f->mux, &s);
    assert_int_equal(s.replaced, 1);
    fx_close(f);
}

/* ---- shutdown racing submitters ------------------------------------------------------- */

typedef struct racer {
    agec_mux *mux;
    int ok, closed, other;
    bool async;
} racer;

static void *race(void *arg)
{
    racer *c = arg;
    for (;;) {
        agec_error err = AGEC_ERROR_INIT;
        agec_status st;
        if (c->async) {
            agec_mux_op *op = NULL;
            st = agec_mux_submit_sql(c->mux, "SELECT 1 FROM pg_sleep(0.01)", 0, NULL, NULL, NULL,
                                     NULL, &op, &err);
            if (st == AGEC_OK) {
                st = agec_mux_wait(op, -1, NULL, &err);
                agec_mux_op_free(op);
            }
        } else {
            agec_result *r = NULL;
            st = agec_mux_sql(c->mux, "SELECT 1 FROM pg_sleep(0.01)", 0, NULL, NULL, &r, &err);
            agec_result_free(r);
        }
        if (st == AGEC_OK)
            c->ok++;
        else if (st == AGEC_ERR_POOL_CLOSED)
            c->closed++;
        else
            c->other++;
        if (c->closed > 0)
            return NULL;
    }
}

static void test_shutdown_races_submitters(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_close", 2);
    enum { N = 8 };
    pthread_t t[N];
    racer c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (racer){ .mux = f->mux, .async = i % 2 == 1 };
        assert_int_equal(pthread_create(&t[i], NULL, race, &c[i]), 0);
    }
    /* Let them run until some statements completed. */
    agec_mux_stats s;
    for (int64_t until = ms_now() + 10000; ms_now() < until;) {
        agec_mux_stats_get(f->mux, &s);
        if (s.completed >= 40)
            break;
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    int64_t t0 = ms_now();
    agec_test_must(agec_mux_shutdown(f->mux, NULL), NULL, "shutdown");
    assert_true(ms_now() - t0 < 3000);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].other, 0);
        assert_int_equal(c[i].closed, 1);
        ok += c[i].ok;
    }
    assert_true(ok > 0);
    agec_mux_stats_get(f->mux, &s);
    assert_int_equal(s.outstanding, 0);
    assert_int_equal(s.submitted, s.completed);
    /* The connections went back to the pool (or were closed). */
    agec_pool_stats ps = pool_stats(f->pool);
    assert_int_equal(ps.in_use, 0);
    fx_close(f);
}

/* ---- callbacks and the event-loop side ------------------------------------------------- */

typedef struct cb_state {
    agec_mux *mux;
    int done, wrong, chained;
} cb_state;

typedef struct cb_call {
    cb_state *s;
    long expect;
} cb_call;

static void on_done(agec_status st, agec_result *res, const agec_error *err, void *user)
{
    cb_call *c = user;
    (void)err;
    int64_t v = -1;
    if (st != AGEC_OK || agec_result_get_int64(res, 0, 0, &v, NULL) != AGEC_OK || v != c->expect)
        c->s->wrong++;
    agec_result_free(res);
    c->s->done++;
    /* Callbacks may call back into the mux: chain one more statement. */
    if (c->expect < 1000) {
        c->expect += 1000;
        char a[24];
        snprintf(a, sizeof a, "%ld", c->expect);
        const char *vals[1] = { a };
        if (agec_mux_submit_sql(c->s->mux, "SELECT $1::int", 1, vals, NULL, on_done, c, NULL,
                                NULL) == AGEC_OK)
            c->s->chained++;
    }
}

static void test_callbacks_dispatch(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_cb", 2);
    enum { N = 64 };
    cb_state s = { .mux = f->mux };
    cb_call calls[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (cb_call){ .s = &s, .expect = i };
        char a[16];
        snprintf(a, sizeof a, "%d", i);
        const char *vals[1] = { a };
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_mux_submit_sql(f->mux, "SELECT $1::int", 1, vals, NULL, on_done,
                                           &calls[i], NULL, &err),
                       &err, "submit");
    }
    /* No callback runs outside dispatch. */
    assert_int_equal(s.done, 0);
    assert_true(agec_mux_fd(f->mux) >= 0);
    for (int64_t until = ms_now() + 10000; s.done < 2 * N && ms_now() < until;)
        assert_true(agec_mux_dispatch(f->mux, 100) >= 0);
    assert_int_equal(s.done, 2 * N);
    assert_int_equal(s.chained, N);
    assert_int_equal(s.wrong, 0);
    fx_close(f);
}

/* A handle waited with a short limit: not done yet, then done. */
static void test_wait_limit(void **state)
{
    (void)state;
    fixture *f = fx_open("mux_wait", 1);
    agec_mux_op *op = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_submit_sql(f->mux, "SELECT 7 FROM pg_sleep(0.3)", 0, NULL, NULL, NULL,
                                       NULL, &op, &err),
                   &err, "submit");
    agec_result *r = NULL;
    assert_int_equal(agec_mux_wait(op, 20, &r, &err), AGEC_ERR_TIMEOUT);
    assert_false(agec_mux_op_done(op));
    agec_test_must(agec_mux_wait(op, 10000, &r, &err), &err, "wait");
    assert_int_equal(res_long(r, 0, 0), 7);
    agec_result_free(r);
    assert_int_equal(agec_mux_wait(op, 0, &r, &err), AGEC_ERR_STATE);
    agec_mux_op_free(op);
    /* A handle freed before completion: the statement is dropped, nothing leaks. */
    agec_test_must(agec_mux_submit_sql(f->mux, "SELECT 8 FROM pg_sleep(0.1)", 0, NULL, NULL, NULL,
                                       NULL, &op, &err),
                   &err, "submit 2");
    agec_mux_op_free(op);
    agec_test_must(agec_mux_sql(f->mux, "SELECT 9", 0, NULL, NULL, &r, &err), &err, "after");
    assert_int_equal(res_long(r, 0, 0), 9);
    agec_result_free(r);
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_results_and_errors),
        { "test_own_results_and_errors_group16", test_own_results_and_errors, NULL, NULL,
          &(int){ 16 } },
        cmocka_unit_test(test_group_rollback_reruns),
        cmocka_unit_test(test_session_statements_refused),
        cmocka_unit_test(test_deadline_spares_others),
        cmocka_unit_test(test_deadline_alone_cancels),
        cmocka_unit_test(test_deadline_before_send),
        cmocka_unit_test(test_killed_backend),
        cmocka_unit_test(test_shutdown_races_submitters),
        cmocka_unit_test(test_callbacks_dispatch),
        cmocka_unit_test(test_wait_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
