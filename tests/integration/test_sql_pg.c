/*
 * SQL execution and transactions on PostgreSQL 15 (real multi-session
 * server): statement timeout, commit/rollback visibility, savepoints, the
 * retrying transaction runner against a real serialization failure, and
 * row-by-row streaming of a large result.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/pool.h"

static agec_pool *pool;

static agec_conn *get(void)
{
    return agec_test_acquire(pool);
}

static long count(agec_conn *c, const char *text)
{
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, text, 0, NULL, NULL, &r, &err), &err, text);
    long n = atol(agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    return n;
}

/* count() without preparing the counting statement itself. */
static long count_unprepared(agec_conn *c, const char *text)
{
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.prepare = false;
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, text, 0, NULL, &o, &r, &err), &err, text);
    long n = atol(agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    return n;
}

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 4;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.application_name = "agec_it_sql";
    cfg.on_event = agec_pool_event_ignore;
    cfg.acquire_timeout_ms = 5000;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c = get();
    agec_test_sql(c, "DROP TABLE IF EXISTS it_sql");
    agec_test_sql(c, "CREATE TABLE it_sql (id int PRIMARY KEY, v text)");
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

static void test_bound_parameters(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    const char *v[2] = { "1", "'); DROP TABLE it_sql; --" };
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "INSERT INTO it_sql VALUES ($1, $2)", 2, v, NULL, &r, &err),
                   &err, "insert");
    assert_int_equal(agec_result_affected(r), 1);
    agec_result_free(r);
    agec_test_must(agec_sql_exec(c, "SELECT v, NULL::text AS n FROM it_sql WHERE id = $1", 1, v,
                                 NULL, &r, &err),
                   &err, "select");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), v[1]);
    assert_true(agec_result_is_null(r, 0, 1));
    assert_string_equal(agec_result_column_name(r, 1), "n");
    agec_result_free(r);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(c);
}

static agec_status count_run(agec_conn *conn, void *user, agec_error *err)
{
    (void)conn;
    (void)err;
    ++*(int *)user;
    return AGEC_OK;
}

/* Options structs grow: the library reads only struct_size bytes (a
 * program built against an older header passes a shorter struct: here one
 * allocated to exactly the first version's size, so that ASan catches any
 * read past it) and refuses a struct that was never initialised. */
static void test_options_sized(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    size_t qmin = offsetof(agec_query_opts, prepare) + sizeof(bool);
    agec_query_opts full;
    agec_query_opts_init(&full);
    full.timeout_ms = 5000;
    full.struct_size = qmin;
    agec_query_opts *q = malloc(qmin);
    assert_non_null(q);
    memcpy(q, &full, qmin);
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, q, &r, &err), &err, "short query opts");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1");
    agec_result_free(r);
    free(q);
    agec_query_opts raw;
    memset(&raw, 0, sizeof raw);
    agec_error_clear(&err);
    assert_int_equal(agec_sql_exec(c, "SELECT 1", 0, NULL, &raw, &r, &err), AGEC_ERR_INVALID_ARG);
    assert_null(r);
    assert_non_null(strstr(err.message, "agec_query_opts_init"));
    agec_error_clear(&err);
    assert_int_equal(agec_cypher_exec(c, "g_sized", "RETURN 1", NULL, &raw, &r, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "agec_query_opts_init"));

    size_t tmin = offsetof(agec_tx_opts, timeout_ms) + sizeof(int);
    agec_tx_opts tfull;
    agec_tx_opts_init(&tfull);
    tfull.read_only = true;
    tfull.struct_size = tmin;
    agec_tx_opts *t = malloc(tmin);
    assert_non_null(t);
    memcpy(t, &tfull, tmin);
    agec_test_must(agec_tx_begin(c, t, &err), &err, "short tx opts");
    agec_error_clear(&err);
    assert_int_not_equal(
        agec_sql_exec(c, "INSERT INTO it_sql VALUES (99, 'x')", 0, NULL, NULL, &r, &err),
        AGEC_OK); /* READ ONLY was read from the short struct */
    assert_string_equal(err.sqlstate, "25006");
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    free(t);
    agec_tx_opts traw;
    memset(&traw, 0, sizeof traw);
    agec_error_clear(&err);
    assert_int_equal(agec_tx_begin(c, &traw, &err), AGEC_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "agec_tx_opts_init"));
    agec_error_clear(&err);
    int ran = 0;
    assert_int_equal(agec_tx_run(pool, &traw, count_run, &ran, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(ran, 0);
    agec_conn_release(c);
}

static void test_statement_timeout_cancels(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 200;
    agec_result *r = NULL;
    int64_t t0 = agec_test_now_ms();
    agec_status st = agec_sql_exec(c, "SELECT pg_sleep(30)", 0, NULL, &o, &r, &err);
    int64_t took = agec_test_now_ms() - t0;
    assert_int_equal(st, AGEC_ERR_TIMEOUT);
    assert_string_equal(err.sqlstate, "57014");
    assert_true(took < 200 + 250);
    assert_null(r);
    /* The same connection works afterwards. */
    assert_int_equal(count(c, "SELECT 41 + 1"), 42);

    /* The server's own statement_timeout is a timeout too (57014 with the
     * timeout text), not a caller's cancel. */
    agec_test_sql(c, "SET statement_timeout = 100");
    err = (agec_error)AGEC_ERROR_INIT;
    st = agec_sql_exec(c, "SELECT pg_sleep(30)", 0, NULL, NULL, &r, &err);
    assert_int_equal(st, AGEC_ERR_TIMEOUT);
    assert_string_equal(err.sqlstate, "57014");
    assert_null(r);
    agec_test_sql(c, "RESET statement_timeout");
    agec_conn_release(c);
}

static void test_commit_rollback_savepoint(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_conn *other = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (10, 'rolled back')");
    assert_int_equal(agec_tx_begin(c, NULL, &err), AGEC_ERR_STATE);
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    assert_int_equal(agec_tx_rollback(c, &err), AGEC_ERR_STATE);
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id = 10"), 0);

    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (11, 'kept')");
    unsigned sp1, sp2;
    agec_test_must(agec_tx_savepoint(c, &sp1, &err), &err, "sp1");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (12, 'undone')");
    agec_test_must(agec_tx_savepoint(c, &sp2, &err), &err, "sp2");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (13, 'undone too')");
    assert_int_not_equal(sp1, sp2);
    agec_test_must(agec_tx_rollback_to(c, sp1, &err), &err, "rollback to sp1");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (14, 'kept too')");
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id >= 10"), 0);
    agec_test_must(agec_tx_commit(c, &err), &err, "commit");
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id IN (11, 14)"), 2);
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id IN (12, 13)"), 0);

    /* A failed transaction's COMMIT is not reported as success. */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (20, 'x')");
    agec_result *r = NULL;
    assert_int_equal(agec_sql_exec(c, "SELECT 1/0", 0, NULL, NULL, &r, &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "22012");
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_STATE);
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id = 20"), 0);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(other);
    agec_conn_release(c);
}

/* Two SERIALIZABLE transactions that each read what the other writes: one
 * must fail with 40001; the runner retries it. */
typedef struct serial_ctx {
    pthread_barrier_t *barrier;
    int calls;
    int id;
    int always_fail_after_barrier;
} serial_ctx;

static agec_status serial_body(agec_conn *c, void *user, agec_error *err)
{
    serial_ctx *ctx = user;
    ctx->calls++;
    agec_result *r = NULL;
    agec_status st =
        agec_sql_exec(c, "SELECT coalesce(sum(id), 0) FROM it_sql", 0, NULL, NULL, &r, err);
    agec_result_free(r);
    if (st != AGEC_OK)
        return st;
    if (ctx->calls == 1)
        pthread_barrier_wait(ctx->barrier); /* both have read before either writes */
    char id[16];
    snprintf(id, sizeof id, "%d", ctx->id * 100 + ctx->calls);
    const char *v[1] = { id };
    st = agec_sql_exec(c, "INSERT INTO it_sql VALUES ($1, 'serial')", 1, v, NULL, &r, err);
    agec_result_free(r);
    return st;
}

static void *serial_thread(void *arg)
{
    serial_ctx *ctx = arg;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.isolation = AGEC_ISOLATION_SERIALIZABLE;
    agec_error err = AGEC_ERROR_INIT;
    intptr_t st = agec_tx_run(pool, &o, serial_body, ctx, &err);
    return (void *)st;
}

static void test_tx_run_retries_serialization_failure(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    serial_ctx a = { &barrier, 0, 1, 0 }, b = { &barrier, 0, 2, 0 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, serial_thread, &a);
    pthread_create(&tb, NULL, serial_thread, &b);
    void *ra, *rb;
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    pthread_barrier_destroy(&barrier);
    assert_int_equal((intptr_t)ra, AGEC_OK);
    assert_int_equal((intptr_t)rb, AGEC_OK);
    /* One of them ran twice: it was retried after 40001. */
    assert_int_equal(a.calls + b.calls, 3);
    agec_conn *c = get();
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE v = 'serial'"), 2);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(c);
}

static agec_status always_serial_failure(agec_conn *c, void *user, agec_error *err)
{
    int *calls = user;
    (*calls)++;
    agec_result *r = NULL;
    agec_status st = agec_sql_exec(
        c, "DO $$BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END$$", 0,
        NULL, NULL, &r, err);
    agec_result_free(r);
    return st;
}

static void test_tx_run_gives_up_after_limit(void **state)
{
    (void)state;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.max_retries = 3;
    o.retry_base_ms = 1;
    int calls = 0;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_tx_run(pool, &o, always_serial_failure, &calls, &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "40001");
    assert_string_equal(err.message, "forced");
    assert_int_equal(calls, 4);
}

typedef struct stream_ctx {
    long rows;
    long sum;
    long stop_at;
} stream_ctx;

static bool stream_row(agec_result *row, void *user)
{
    stream_ctx *s = user;
    s->rows++;
    s->sum += atol(agec_result_text(row, 0, 0, NULL));
    return s->stop_at == 0 || s->rows < s->stop_at;
}

static void test_stream_large_result(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    stream_ctx s = { 0, 0, 0 };
    agec_test_must(agec_sql_stream(c, "SELECT generate_series(1, 200000)", 0, NULL, NULL,
                                   stream_row, &s, &err),
                   &err, "stream");
    assert_int_equal(s.rows, 200000);
    assert_true(s.sum == 200000L * 200001L / 2);
    /* Stopping early discards the rest and leaves the connection usable. */
    stream_ctx t = { 0, 0, 10 };
    agec_test_must(
        agec_sql_stream(c, "SELECT generate_series(1, 50000)", 0, NULL, NULL, stream_row, &t, &err),
        &err, "stream stop");
    assert_int_equal(t.rows, 10);
    assert_int_equal(count(c, "SELECT 7"), 7);
    /* An error mid-stream is reported. */
    stream_ctx u = { 0, 0, 0 };
    assert_int_equal(agec_sql_stream(c, "SELECT 1 / (3 - g) FROM generate_series(1, 5) g", 0, NULL,
                                     NULL, stream_row, &u, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "22012");
    agec_conn_release(c);
}

static void test_statement_cache_cap_and_reset(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    /* More distinct statements than the cache holds: the server never keeps
     * more than AGEC_STMT_CACHE_MAX of ours. */
    for (int i = 0; i < AGEC_STMT_CACHE_MAX + 40; i++) {
        char q[64], v[16];
        snprintf(q, sizeof q, "SELECT $1::int + %d", i);
        snprintf(v, sizeof v, "%d", i);
        const char *vals[1] = { v };
        agec_result *r = NULL;
        agec_test_must(agec_sql_exec(c, q, 1, vals, NULL, &r, &err), &err, q);
        assert_int_equal(atol(agec_result_text(r, 0, 0, NULL)), 2 * i);
        agec_result_free(r);
    }
    long n =
        count_unprepared(c, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'agec_%'");
    assert_true(n > 0 && n <= AGEC_STMT_CACHE_MAX);
    /* Someone drops our statements behind our back: the next call prepares
     * again instead of failing. */
    agec_test_sql(c, "DEALLOCATE ALL");
    const char *vals[1] = { "1" };
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "SELECT $1::int + 0", 1, vals, NULL, &r, &err), &err,
                   "re-prepare");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1");
    agec_result_free(r);
    /* A full cache evicting inside a transaction, after DEALLOCATE ALL: the
     * evicted statements no longer exist, yet the transaction is unharmed
     * (deallocation waits until the transaction ends). */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    for (int i = 0; i < 20; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT $1::int + %d + 1000", i);
        agec_test_must(agec_sql_exec(c, q, 1, vals, NULL, &r, &err), &err, q);
        agec_result_free(r);
    }
    agec_test_sql(c, "INSERT INTO it_sql VALUES (55, 'evictions inside a transaction')");
    agec_test_must(agec_tx_commit(c, &err), &err, "commit");
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE id = 55"), 1);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(c);

    /* With reset_query = DISCARD ALL the pool drops the statement cache on
     * every release, so statements are prepared again on the next borrow. */
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.reset_query = "DISCARD ALL";
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open");
    for (int round = 0; round < 3; round++) {
        agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
        assert_int_equal(count_unprepared(c, "SELECT count(*) FROM pg_prepared_statements"), 0);
        agec_test_must(agec_sql_exec(c, "SELECT $1::int + 0", 1, vals, NULL, &r, &err), &err,
                       "exec");
        agec_result_free(r);
        assert_int_equal(count_unprepared(c, "SELECT count(*) FROM pg_prepared_statements"), 1);
        agec_conn_release(c);
    }
    assert_int_equal(agec_pool_close(p, 1000, &err), AGEC_OK);
}

/* Issue 27: OpenTelemetry's create_time, use_time and operation duration
 * histograms count what happened: 1 connection opened, 3 borrows, 4
 * statements (one slept 20 ms: its bucket says so), in the stats and in the
 * Prometheus text. */
static void test_otel_histograms(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    cfg.name = "otel";
    agec_pool *p;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open");
    for (int round = 0; round < 3; round++) {
        agec_conn *c = agec_test_acquire(p);
        agec_test_sql(c, "SELECT 1");
        if (round == 2)
            agec_test_sql(c, "SELECT pg_sleep(0.02)");
        agec_conn_release(c);
    }
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(p, &s), AGEC_OK);
    assert_int_equal(s.create_count, 1);
    assert_true(s.create_sum_us > 0);
    assert_int_equal(s.use_count, 3);
    assert_int_equal(s.op_count, 4);
    assert_true(s.op_sum_us >= 20000);
    /* Cumulative buckets: the 20 ms statement is above the 10 ms bound. */
    const int64_t *bounds = agec_pool_wait_bucket_bounds_us();
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++) {
        if (bounds[i] == 10000)
            assert_true(s.op_bucket[i] <= 3);
        if (i > 0)
            assert_true(s.op_bucket[i] >= s.op_bucket[i - 1]);
    }
    assert_int_equal(s.op_bucket[AGEC_POOL_WAIT_BUCKETS - 1], 4);
    char text[32768];
    assert_true(agec_pool_stats_prometheus(&s, "otel", text, sizeof text) < sizeof text);
    static const char *const want[] = {
        "db_client_connection_create_time_seconds_count{db_client_connection_pool_name=\"otel\"} "
        "1\n",
        "db_client_connection_use_time_seconds_count{db_client_connection_pool_name=\"otel\"} 3\n",
        "db_client_operation_duration_seconds_count{db_client_connection_pool_name=\"otel\"} 4\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("Prometheus text lacks %s", want[i]);
    assert_int_equal(agec_pool_close(p, 1000, &err), AGEC_OK);
}

/* Issue 22: pool exhaustion names its holders with the statement they
 * run and for how long (the Cypher/SQL layer marks statements). */
typedef struct sleeper {
    agec_pool *pool;
    atomic_bool running;
} sleeper;

static void *sleep_holder(void *arg)
{
    sleeper *sl = arg;
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(sl->pool, &c, &err), &err, "acquire"); /* this site */
    atomic_store(&sl->running, true);
    agec_test_sql(c, "SELECT pg_sleep(1.5)");
    agec_conn_release(c);
    return NULL;
}

static bool sleeper_on_server(void *arg)
{
    (void)arg;
    PGconn *pg = PQconnectdb(agec_test_pg_conninfo());
    PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'agec_holder_stmt' AND state = 'active'");
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    PQfinish(pg);
    return yes;
}

static void test_exhaustion_names_running_statement(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    cfg.application_name = "agec_holder_stmt";
    cfg.application_name_override = true;
    sleeper sl = { 0 };
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &sl.pool, &err), &err, "open");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sleep_holder, &sl), 0);
    assert_true(agec_test_wait_until(sleeper_on_server, NULL, 10000));
    agec_conn *c = NULL;
    assert_int_equal(agec_pool_acquire_timeout(sl.pool, 100, &c, &err), AGEC_ERR_POOL_EXHAUSTED);
    if (strstr(err.detail, "sleep_holder") == NULL ||
        strstr(err.detail, "statement running for") == NULL)
        fail_msg("exhaustion detail: %s", err.detail);
    pthread_join(t, NULL);
    assert_int_equal(agec_pool_close(sl.pool, 1000, &err), AGEC_OK);
}

/* BEGIN options reach the server: isolation level, READ ONLY, DEFERRABLE. */
static void test_begin_options(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.isolation = AGEC_ISOLATION_SERIALIZABLE;
    o.read_only = true;
    o.deferrable = true;
    agec_test_must(agec_tx_begin(c, &o, &err), &err, "begin");
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c,
                                 "SELECT current_setting('transaction_isolation'), "
                                 "current_setting('transaction_read_only'), "
                                 "current_setting('transaction_deferrable')",
                                 0, NULL, NULL, &r, &err),
                   &err, "settings");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "serializable");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "on");
    assert_string_equal(agec_result_text(r, 0, 2, NULL), "on");
    agec_result_free(r);
    assert_int_equal(
        agec_sql_exec(c, "INSERT INTO it_sql VALUES (99, 'no')", 0, NULL, NULL, &r, &err),
        AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "25006"); /* read-only transaction */
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    o.isolation = (agec_isolation)7;
    assert_int_equal(agec_tx_begin(c, &o, &err), AGEC_ERR_INVALID_ARG);
    agec_conn_release(c);
}

/* A COMMIT slower than the transaction's timeout (a deferred trigger that
 * sleeps): cancelled, reported as a timeout, nothing committed, and the
 * connection still works. */
static void test_tx_timeout_on_commit(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_sql(c, "CREATE OR REPLACE FUNCTION it_sql_slow() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN PERFORM pg_sleep(5); RETURN NULL; END$$");
    agec_test_sql(c, "DROP TRIGGER IF EXISTS it_sql_slow_commit ON it_sql");
    agec_test_sql(c, "CREATE CONSTRAINT TRIGGER it_sql_slow_commit AFTER INSERT ON it_sql "
                     "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION it_sql_slow()");
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.timeout_ms = 200;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_tx_begin(c, &o, &err), &err, "begin");
    agec_test_sql(c, "INSERT INTO it_sql VALUES (77, 'slow commit')");
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_TIMEOUT);
    assert_true(agec_test_now_ms() - t0 < 200 + 250);
    agec_test_sql(c, "DROP TRIGGER it_sql_slow_commit ON it_sql");
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE id = 77"), 0);
    agec_conn_release(c);
}

/* Cypher on a server without AGE: a clear code and hint, not a bare 3F000. */
static void test_cypher_without_age(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    assert_int_equal(agec_cypher_exec(c, "some_graph", "RETURN 1", NULL, NULL, &r, &err),
                     AGEC_ERR_AGE_MISSING);
    assert_string_equal(err.sqlstate, "3F000");
    assert_non_null(strstr(err.hint, "CREATE EXTENSION age"));
    assert_null(r);
    assert_int_equal(count(c, "SELECT 5"), 5);
    agec_conn_release(c);
}

/* Ids of it_sql's rows in order, comma-separated, into buf. */
static void ids(agec_conn *c, const char *where, char *buf, size_t cap)
{
    char q[256];
    snprintf(q, sizeof q,
             "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM it_sql %s", where);
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), &err, q);
    snprintf(buf, cap, "%s", agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
}

static void insert_id(agec_conn *c, int id)
{
    char v[16];
    snprintf(v, sizeof v, "%d", id);
    const char *vals[1] = { v };
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(
        agec_sql_exec(c, "INSERT INTO it_sql VALUES ($1, 'sp')", 1, vals, NULL, &r, &err), &err,
        "insert");
    agec_result_free(r);
}

/* Twenty nested savepoints, one row after each: rolling back to one in the
 * middle (twice: it stays), releasing a range (its rows stay), rolling back
 * to a released one (a server error that fails the transaction), and
 * recovering through a later savepoint. Exactly the expected rows commit. */
static void test_savepoints_nested_deep(void **state)
{
    (void)state;
    enum { DEPTH = 20 };
    agec_conn *c = get();
    agec_conn *other = get();
    agec_error err = AGEC_ERROR_INIT;
    unsigned sp[DEPTH];
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    for (int i = 0; i < DEPTH; i++) {
        agec_test_must(agec_tx_savepoint(c, &sp[i], &err), &err, "savepoint");
        for (int j = 0; j < i; j++)
            assert_int_not_equal(sp[i], sp[j]);
        insert_id(c, 100 + i);
    }
    char got[512];
    ids(c, "WHERE id >= 100", got, sizeof got);
    assert_string_equal(got, "100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,"
                             "117,118,119");
    /* Undo the rows after sp[15]; sp[15] stays and undoes again. */
    agec_test_must(agec_tx_rollback_to(c, sp[15], &err), &err, "rollback to sp15");
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE id >= 100"), 15);
    insert_id(c, 200);
    agec_test_must(agec_tx_rollback_to(c, sp[15], &err), &err, "rollback to sp15 again");
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE id = 200"), 0);
    insert_id(c, 201);
    /* Release sp[10] and every savepoint after it: their rows stay. */
    agec_test_must(agec_tx_release(c, sp[10], &err), &err, "release sp10");
    ids(c, "WHERE id >= 100", got, sizeof got);
    assert_string_equal(got, "100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,201");
    unsigned after;
    agec_test_must(agec_tx_savepoint(c, &after, &err), &err, "savepoint after release");
    for (int j = 0; j < DEPTH; j++)
        assert_int_not_equal(after, sp[j]);
    /* A released savepoint is gone: the server says so (3B001) and the
     * transaction is failed until a rollback to a live savepoint. */
    assert_int_equal(agec_tx_rollback_to(c, sp[12], &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "3B001");
    assert_int_equal(agec_tx_release(c, sp[19], &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "25P02"); /* in failed transaction */
    agec_result *r = NULL;
    assert_int_equal(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "25P02");
    assert_null(r);
    agec_test_must(agec_tx_rollback_to(c, after, &err), &err, "rollback to the live savepoint");
    assert_int_equal(count(c, "SELECT 6 * 7"), 42);
    insert_id(c, 202); /* the transaction works again */
    agec_test_must(agec_tx_release(c, after, &err), &err, "release after");
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id >= 100"), 0);
    agec_test_must(agec_tx_commit(c, &err), &err, "commit");
    ids(other, "WHERE id >= 100", got, sizeof got);
    assert_string_equal(got, "100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,201,202");

    /* sp[9] survives the release of sp[10], and rolling back to it undoes
     * the released rows too; releasing the outermost one releases them all. */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin 2");
    for (int i = 0; i < DEPTH; i++) {
        agec_test_must(agec_tx_savepoint(c, &sp[i], &err), &err, "savepoint 2");
        insert_id(c, 300 + i);
    }
    agec_test_must(agec_tx_release(c, sp[10], &err), &err, "release sp10 (2)");
    agec_test_must(agec_tx_rollback_to(c, sp[9], &err), &err, "rollback to sp9 (2)");
    assert_int_equal(count(c, "SELECT count(*) FROM it_sql WHERE id >= 300"), 9);
    agec_test_must(agec_tx_release(c, sp[0], &err), &err, "release sp0");
    assert_int_equal(agec_tx_rollback_to(c, sp[5], &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "3B001");
    /* Nothing live to roll back to: the COMMIT of the failed transaction is
     * not a success and nothing of it is kept. */
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_STATE);
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id >= 300"), 0);
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin 3");
    for (int i = 0; i < DEPTH; i++) {
        agec_test_must(agec_tx_savepoint(c, &sp[i], &err), &err, "savepoint 3");
        insert_id(c, 300 + i);
    }
    agec_test_must(agec_tx_release(c, sp[0], &err), &err, "release sp0 (3)");
    agec_test_must(agec_tx_commit(c, &err), &err, "commit 3");
    assert_int_equal(count(other, "SELECT count(*) FROM it_sql WHERE id >= 300"), DEPTH);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(other);
    agec_conn_release(c);
}

/* Two transactions that lock two rows in opposite order: the server breaks
 * the deadlock (40P01) by failing one; the runner retries it and both commit
 * exactly once. */
typedef struct deadlock_ctx {
    pthread_barrier_t *barrier;
    const char *first, *second; /* ids locked in this order */
    int calls;
    int deadlocks; /* attempts that failed with 40P01 */
    agec_status result;
    agec_error err;
} deadlock_ctx;

static agec_status lock_row(agec_conn *c, const char *id, agec_error *err)
{
    const char *v[1] = { id };
    agec_result *r = NULL;
    agec_status st =
        agec_sql_exec(c, "UPDATE it_sql SET v = v || 'x' WHERE id = $1", 1, v, NULL, &r, err);
    if (st == AGEC_OK && agec_result_affected(r) != 1)
        st = AGEC_ERR_NOT_FOUND;
    agec_result_free(r);
    return st;
}

static agec_status deadlock_body(agec_conn *c, void *user, agec_error *err)
{
    deadlock_ctx *x = user;
    x->calls++;
    agec_result *r = NULL;
    agec_status st =
        agec_sql_exec(c, "SET LOCAL deadlock_timeout = '50ms'", 0, NULL, NULL, &r, err);
    agec_result_free(r);
    if (st == AGEC_OK)
        st = lock_row(c, x->first, err);
    if (st != AGEC_OK)
        return st;
    if (x->calls == 1)
        pthread_barrier_wait(x->barrier); /* each holds its first row */
    st = lock_row(c, x->second, err);
    if (st != AGEC_OK && strcmp(err->sqlstate, "40P01") == 0)
        x->deadlocks++;
    return st;
}

static void *deadlock_thread(void *arg)
{
    deadlock_ctx *x = arg;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.retry_base_ms = 5;
    x->err = (agec_error)AGEC_ERROR_INIT;
    x->result = agec_tx_run(pool, &o, deadlock_body, x, &x->err);
    return NULL;
}

static void test_tx_run_retries_deadlock(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_sql(c, "INSERT INTO it_sql VALUES (501, ''), (502, '')");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    deadlock_ctx a = { &barrier, "501", "502", 0, 0, AGEC_OK, AGEC_ERROR_INIT };
    deadlock_ctx b = { &barrier, "502", "501", 0, 0, AGEC_OK, AGEC_ERROR_INIT };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, deadlock_thread, &a);
    pthread_create(&tb, NULL, deadlock_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&barrier);
    if (a.result != AGEC_OK || b.result != AGEC_OK)
        fail_msg("a: %s [%s] %s; b: %s [%s] %s", agec_status_name(a.result), a.err.sqlstate,
                 a.err.message, agec_status_name(b.result), b.err.sqlstate, b.err.message);
    /* Exactly one was the deadlock victim, and it ran again. */
    assert_int_equal(a.deadlocks + b.deadlocks, 1);
    assert_int_equal(a.calls + b.calls, 3);
    assert_int_equal(a.deadlocks ? a.calls : b.calls, 2);
    /* Each committed once: both rows updated twice, no more. */
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, "SELECT v FROM it_sql WHERE id IN (501, 502) ORDER BY id", 0,
                                 NULL, NULL, &r, &err),
                   &err, "select");
    assert_int_equal(agec_result_rows(r), 2);
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "xx");
    assert_string_equal(agec_result_text(r, 1, 0, NULL), "xx");
    agec_result_free(r);
    /* SET LOCAL did not outlive the transactions. */
    agec_test_must(agec_sql_exec(c, "SHOW deadlock_timeout", 0, NULL, NULL, &r, &err), &err,
                   "show");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1s");
    agec_result_free(r);
    agec_test_sql(c, "DELETE FROM it_sql");
    agec_conn_release(c);
}

static bool never_called_row(agec_result *row, void *user)
{
    (void)row;
    (*(int *)user)++;
    return true;
}

static void expect_boom(const agec_error *err)
{
    assert_int_equal(err->code, AGEC_ERR_SERVER);
    assert_string_equal(err->sqlstate, "22023");
    assert_string_equal(err->message, "boom");
    assert_string_equal(err->detail, "d-text");
    assert_string_equal(err->hint, "h-text");
}

/* The server's error fields reach the caller untouched, prepared or not,
 * collected or streamed; a syntax error carries its position. */
static void test_server_error_fields_pass_through(void **state)
{
    (void)state;
    static const char boom[] = "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd-text', "
                               "HINT = 'h-text', ERRCODE = '22023'; END $$";
    agec_conn *c = get();
    agec_query_opts unprepared;
    agec_query_opts_init(&unprepared);
    unprepared.prepare = false;
    const agec_query_opts *opts[2] = { NULL, &unprepared };
    for (int i = 0; i < 2; i++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_result *r = NULL;
        assert_int_equal(agec_sql_exec(c, boom, 0, NULL, opts[i], &r, &err), AGEC_ERR_SERVER);
        expect_boom(&err);
        assert_null(r);
        err = (agec_error)AGEC_ERROR_INIT;
        int rows = 0;
        assert_int_equal(agec_sql_stream(c, boom, 0, NULL, opts[i], never_called_row, &rows, &err),
                         AGEC_ERR_SERVER);
        expect_boom(&err);
        assert_int_equal(rows, 0);
        /* A syntax error: the 1-based position of the offending token. */
        static const char bad[] = "SELECT 1 FROM FROM";
        err = (agec_error)AGEC_ERROR_INIT;
        assert_int_equal(agec_sql_exec(c, bad, 0, NULL, opts[i], &r, &err), AGEC_ERR_SERVER);
        assert_string_equal(err.sqlstate, "42601");
        assert_int_equal(err.position, (int)(strstr(bad, "FROM FROM") - bad) + 6);
        assert_non_null(strstr(err.message, "FROM"));
        assert_null(r);
        /* ... and a semantic one too (undefined column). */
        static const char nocol[] = "SELECT id, nosuchcolumn FROM it_sql";
        err = (agec_error)AGEC_ERROR_INIT;
        assert_int_equal(agec_sql_exec(c, nocol, 0, NULL, opts[i], &r, &err), AGEC_ERR_SERVER);
        assert_string_equal(err.sqlstate, "42703");
        assert_int_equal(err.position, (int)(strstr(nocol, "nosuch") - nocol) + 1);
        assert_null(r);
    }
    /* A server hint is never replaced by agec's own (here one agec gives for
     * 3F000 errors that mention a graph). */
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    assert_int_equal(agec_sql_exec(c,
                                   "DO $$ BEGIN RAISE EXCEPTION 'graph \"g\" does not exist' USING "
                                   "HINT = 'h-text', ERRCODE = '3F000'; END $$",
                                   0, NULL, NULL, &r, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "3F000");
    assert_string_equal(err.message, "graph \"g\" does not exist");
    assert_string_equal(err.hint, "h-text");
    assert_string_equal(err.detail, "");
    /* The connection still works. */
    assert_int_equal(count(c, "SELECT 3"), 3);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_parameters),
        cmocka_unit_test(test_options_sized),
        cmocka_unit_test(test_statement_timeout_cancels),
        cmocka_unit_test(test_commit_rollback_savepoint),
        cmocka_unit_test(test_tx_run_retries_serialization_failure),
        cmocka_unit_test(test_tx_run_gives_up_after_limit),
        cmocka_unit_test(test_stream_large_result),
        cmocka_unit_test(test_statement_cache_cap_and_reset),
        cmocka_unit_test(test_cypher_without_age),
        cmocka_unit_test(test_tx_timeout_on_commit),
        cmocka_unit_test(test_begin_options),
        cmocka_unit_test(test_savepoints_nested_deep),
        cmocka_unit_test(test_tx_run_retries_deadlock),
        cmocka_unit_test(test_server_error_fields_pass_through),
        cmocka_unit_test(test_otel_histograms),
        cmocka_unit_test(test_exhaustion_names_running_statement),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
