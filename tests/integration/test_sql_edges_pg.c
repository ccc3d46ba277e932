/*
 * Issue 23: SQL execution at the edges, on PostgreSQL 15. COPY through
 * agec_sql_exec ends (no spin) and leaves the connection usable; a cached
 * plan recovers after DDL; SQL values read through typed accessors and
 * agec_result_value; command tags; errors that say what happened (wrong
 * parameter count, too many parameters, empty statement, a 3F000 that is
 * not a missing graph); err->code reset by a success; agec_tx_run retrying
 * from fn's status, not from a stale error.
 */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "agec/pool.h"

static agec_pool *pool;

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1; /* one connection: every test reuses its statement cache */
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.application_name = "agec_it_sql_edges";
    cfg.on_event = agec_pool_event_ignore;
    cfg.acquire_timeout_ms = 10000;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The connection still answers, in blocking mode, with no transaction. */
static void assert_usable(agec_conn *c)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "SELECT 41 + 1", 0, NULL, NULL, &r, &err), &err, "after");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "42");
    agec_result_free(r);
    assert_int_equal(PQisnonblocking(agec_conn_pgconn(c)), 0);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
}

/* Item 1: COPY TO STDOUT used to spin for ever (PQisBusy is false in COPY
 * state). A hang here is caught by the test's TIMEOUT. */
static void test_copy_out_ends(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 1000;
    for (int prepare = 0; prepare < 2; prepare++) {
        o.prepare = prepare != 0;
        agec_error err = AGEC_ERROR_INIT;
        agec_result *r = NULL;
        assert_int_equal(agec_sql_exec(c, "COPY (SELECT 1) TO STDOUT", 0, NULL, &o, &r, &err),
                         AGEC_ERR_STATE);
        assert_null(r);
        assert_int_equal(err.code, AGEC_ERR_STATE);
        assert_non_null(strstr(err.message, "COPY"));
        assert_usable(c);
    }
    /* A COPY that would stream for minutes ends at its timeout (its rows
     * are dropped meanwhile). The bound is a hang check, not a speed one. */
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    double t0 = now_s();
    assert_int_equal(agec_sql_exec(c, "COPY (SELECT generate_series(1, 2000000000)) TO STDOUT", 0,
                                   NULL, &o, &r, &err),
                     AGEC_ERR_STATE);
    assert_true(now_s() - t0 < 60.0);
    assert_usable(c);
    agec_conn_release(c);
}

static void test_copy_in_ends(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP TABLE IF EXISTS it_edges_copy");
    agec_test_sql(c, "CREATE TABLE it_edges_copy (id int)");
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    assert_int_equal(agec_sql_exec(c, "COPY it_edges_copy FROM STDIN", 0, NULL, NULL, &r, &err),
                     AGEC_ERR_STATE);
    assert_non_null(strstr(err.message, "COPY"));
    assert_usable(c);
    agec_test_must(agec_sql_exec(c, "SELECT count(*) FROM it_edges_copy", 0, NULL, NULL, &r, &err),
                   &err, "count");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "0");
    agec_result_free(r);
    agec_conn_release(c);
}

static agec_status select_ddl_table(agec_conn *conn, void *user, agec_error *err)
{
    ++*(int *)user;
    agec_result *r = NULL;
    agec_status st = agec_sql_exec(conn, "SELECT * FROM it_edges_ddl", 0, NULL, NULL, &r, err);
    if (st == AGEC_OK && agec_result_columns(r) != 4)
        st = AGEC_ERR_STATE; /* not the table as altered */
    agec_result_free(r);
    return st;
}

/* Item 2: a cached plan after DDL is prepared again (outside a
 * transaction); inside one the error is returned and the statement
 * forgotten, so the next run prepares it afresh. */
static void test_cached_plan_after_ddl(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP TABLE IF EXISTS it_edges_ddl");
    agec_test_sql(c, "CREATE TABLE it_edges_ddl (a int)");
    agec_test_sql(c, "INSERT INTO it_edges_ddl VALUES (1)");
    const char *q = "SELECT * FROM it_edges_ddl";
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), &err, "first");
    assert_int_equal(agec_result_columns(r), 1);
    agec_result_free(r);
    agec_test_sql(c, "ALTER TABLE it_edges_ddl ADD COLUMN b int");
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), &err, "after ALTER");
    assert_int_equal(agec_result_columns(r), 2);
    agec_result_free(r);

    /* Inside a transaction: forget and fail, then recover outside. */
    agec_test_sql(c, "ALTER TABLE it_edges_ddl ADD COLUMN c int");
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    assert_int_equal(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "0A000");
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), &err, "after the transaction");
    assert_int_equal(agec_result_columns(r), 3);
    agec_result_free(r);

    /* agec_tx_run retries such a transaction: its statement was forgotten. */
    agec_test_sql(c, "ALTER TABLE it_edges_ddl ADD COLUMN d int");
    agec_conn_release(c);
    int calls = 0;
    agec_test_must(agec_tx_run(pool, NULL, select_ddl_table, &calls, &err), &err, "tx_run");
    assert_int_equal(calls, 2);
    c = agec_test_acquire(pool);

    /* 42804: a parameter's type no longer fits the column. */
    const char *ins = "INSERT INTO it_edges_ddl (b) VALUES ($1)";
    const char *v[1] = { "7" };
    agec_test_must(agec_sql_exec(c, ins, 1, v, NULL, &r, &err), &err, "insert");
    agec_result_free(r);
    agec_test_sql(c, "ALTER TABLE it_edges_ddl ALTER COLUMN b TYPE text");
    agec_test_must(agec_sql_exec(c, ins, 1, v, NULL, &r, &err), &err, "insert after TYPE");
    assert_int_equal(agec_result_affected(r), 1);
    agec_result_free(r);
    agec_conn_release(c);
}

/* Item 5: every SQL value readable. */
static void test_typed_accessors(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c,
                                 "SELECT true, false, 9223372036854775807::int8, -7::int2, "
                                 "1.5::float8, 'NaN'::float8, 12::numeric, 12.5::numeric, "
                                 "'2026-12-07 10:00:00+00'::timestamptz, NULL::int, 'x é'::text, "
                                 "'99999999999999999999'::numeric, '-Infinity'::float4",
                                 0, NULL, NULL, &r, &err),
                   &err, "select");
    bool b = false;
    agec_test_must(agec_result_get_bool(r, 0, 0, &b, &err), &err, "bool");
    assert_true(b);
    agec_test_must(agec_result_get_bool(r, 0, 1, &b, &err), &err, "bool f");
    assert_false(b);
    assert_int_equal(agec_result_column_type(r, 0), 16);
    int64_t i = 0;
    agec_test_must(agec_result_get_int64(r, 0, 2, &i, &err), &err, "int8");
    assert_true(i == INT64_MAX);
    agec_test_must(agec_result_get_int64(r, 0, 3, &i, &err), &err, "int2");
    assert_true(i == -7);
    double d = 0;
    agec_test_must(agec_result_get_double(r, 0, 4, &d, &err), &err, "float8");
    assert_true(d == 1.5);
    agec_test_must(agec_result_get_double(r, 0, 5, &d, &err), &err, "NaN");
    assert_true(isnan(d));
    agec_test_must(agec_result_get_int64(r, 0, 6, &i, &err), &err, "whole numeric");
    assert_true(i == 12);
    assert_int_equal(agec_result_get_int64(r, 0, 7, &i, &err), AGEC_ERR_TYPE);
    agec_test_must(agec_result_get_double(r, 0, 7, &d, &err), &err, "numeric as double");
    assert_true(d == 12.5);
    assert_int_equal(agec_result_get_int64(r, 0, 9, &i, &err), AGEC_ERR_TYPE); /* NULL */
    assert_non_null(strstr(err.message, "NULL"));
    assert_int_equal(agec_result_get_bool(r, 0, 10, &b, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_result_get_int64(r, 0, 11, &i, &err), AGEC_ERR_RANGE);
    agec_test_must(agec_result_get_double(r, 0, 12, &d, &err), &err, "-Infinity");
    assert_true(isinf(d) && d < 0);
    assert_int_equal(agec_result_get_int64(r, 0, 99, &i, &err), AGEC_ERR_RANGE);

    /* agec_result_value converts built-in types instead of failing. */
    const agec_value *v = NULL;
    agec_test_must(agec_result_value(r, 0, 0, &v, &err), &err, "value of bool");
    assert_int_equal(agec_value_type(v), AGEC_TYPE_BOOL);
    agec_test_must(agec_result_value(r, 0, 8, &v, &err), &err, "value of timestamptz");
    assert_int_equal(agec_value_type(v), AGEC_TYPE_STRING);
    const char *s = NULL;
    size_t len = 0;
    agec_test_must(agec_value_get_string(v, &s, &len, &err), &err, "string");
    assert_string_equal(s, agec_result_text(r, 0, 8, NULL));
    /* Text is parsed as agtype (agtype cast to text arrives as text). */
    assert_int_equal(agec_result_value(r, 0, 10, &v, &err), AGEC_ERR_PARSE);
    assert_string_equal(agec_result_text(r, 0, 10, NULL), "x é");
    agec_test_must(agec_result_value(r, 0, 2, &v, &err), &err, "value of int8");
    agec_test_must(agec_value_get_int64(v, &i, &err), &err, "int");
    assert_true(i == INT64_MAX);
    agec_result_free(r);
    agec_conn_release(c);
}

/* Item 6: the command tag and affected rows, also of several statements. */
static void test_command_tag(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP TABLE IF EXISTS it_edges_tag");
    agec_test_sql(c, "CREATE TABLE it_edges_tag (a int)");
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "INSERT INTO it_edges_tag SELECT generate_series(1, 5)", 0,
                                 NULL, NULL, &r, &err),
                   &err, "insert");
    assert_string_equal(agec_result_command(r), "INSERT 0 5");
    assert_int_equal(agec_result_affected(r), 5);
    assert_int_equal(agec_result_rows(r), 0);
    agec_result_free(r);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.prepare = false;
    agec_test_must(agec_sql_exec(c,
                                 "INSERT INTO it_edges_tag VALUES (6); UPDATE it_edges_tag SET a "
                                 "= a + 1 WHERE a > 3",
                                 0, NULL, &o, &r, &err),
                   &err, "two statements");
    assert_string_equal(agec_result_command(r), "UPDATE 3");
    assert_int_equal(agec_result_affected(r), 3);
    agec_result_free(r);
    assert_string_equal(agec_result_command(NULL), "");
    agec_conn_release(c);
}

/* Item 7: errors that say what happened. */
static void test_error_mapping(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    const char *v[1] = { "1" };
    for (int prepare = 0; prepare < 2; prepare++) {
        agec_query_opts o;
        agec_query_opts_init(&o);
        o.prepare = prepare != 0;
        assert_int_equal(agec_sql_exec(c, "SELECT $1::int + $2::int", 1, v, &o, &r, &err),
                         AGEC_ERR_INVALID_ARG);
        assert_string_equal(err.sqlstate, "08P01");
        assert_usable(c);
    }
    /* More parameters than the protocol can carry: refused before sending. */
    int n = 70000;
    const char **many = calloc((size_t)n, sizeof *many);
    assert_non_null(many);
    for (int k = 0; k < n; k++)
        many[k] = "1";
    assert_int_equal(agec_sql_exec(c, "SELECT $1::int", n, many, NULL, &r, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "65535"));
    free(many);
    assert_usable(c);
    /* Empty and comment-only statements. */
    const char *empties[] = { "", "  ", "-- nothing", "/* nothing */" };
    for (size_t k = 0; k < sizeof empties / sizeof empties[0]; k++) {
        for (int prepare = 0; prepare < 2; prepare++) {
            agec_query_opts o;
            agec_query_opts_init(&o);
            o.prepare = prepare != 0;
            assert_int_equal(agec_sql_exec(c, empties[k], 0, NULL, &o, &r, &err),
                             AGEC_ERR_INVALID_ARG);
            assert_non_null(strstr(err.message, "empty"));
            assert_usable(c);
        }
    }
    /* A 3F000 about an existing graph does not get "create the graph first". */
    assert_int_equal(agec_sql_exec(c,
                                   "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '3F000', "
                                   "MESSAGE = 'graph \"g\" already exists'; END $$",
                                   0, NULL, NULL, &r, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "3F000");
    assert_null(strstr(err.hint, "create the graph"));
    assert_int_equal(agec_sql_exec(c,
                                   "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '3F000', "
                                   "MESSAGE = 'graph \"g\" does not exist'; END $$",
                                   0, NULL, NULL, &r, &err),
                     AGEC_ERR_SERVER);
    assert_non_null(strstr(err.hint, "create the graph"));
    agec_conn_release(c);
}

/* Item 8: err->code is the call's status, also after a success. */
static void test_error_reset_on_success(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    assert_int_equal(agec_sql_exec(c, "SELECT 1/0", 0, NULL, NULL, &r, &err), AGEC_ERR_SERVER);
    assert_int_equal(err.code, AGEC_ERR_SERVER);
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "success");
    assert_int_equal(err.code, AGEC_OK);
    assert_string_equal(err.sqlstate, "");
    assert_string_equal(err.message, "");
    int64_t i = 0;
    assert_int_equal(agec_result_get_int64(r, 0, 7, &i, &err), AGEC_ERR_RANGE);
    agec_test_must(agec_result_get_int64(r, 0, 0, &i, &err), &err, "int");
    assert_int_equal(err.code, AGEC_OK);
    agec_result_free(r);
    agec_conn_release(c);
}

/* Item 10: fn recovered from a 40001 with ROLLBACK TO SAVEPOINT, then
 * failed for another reason without touching err: no retry. */
static agec_status recovered_fn(agec_conn *conn, void *user, agec_error *err)
{
    ++*(int *)user;
    unsigned sp = 0;
    agec_status st = agec_tx_savepoint(conn, &sp, err);
    if (st != AGEC_OK)
        return st;
    agec_result *r = NULL;
    st = agec_sql_exec(conn,
                       "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = "
                       "'simulated serialization failure'; END $$",
                       0, NULL, NULL, &r, err);
    if (st != AGEC_ERR_SERVER)
        return AGEC_ERR_STATE;
    agec_error e2 = AGEC_ERROR_INIT;
    if (agec_tx_rollback_to(conn, sp, &e2) != AGEC_OK)
        return AGEC_ERR_STATE;
    return AGEC_ERR_NOT_FOUND; /* err still holds the 40001 */
}

static void test_tx_run_retry_from_status(void **state)
{
    (void)state;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.max_retries = 3;
    o.retry_base_ms = 1;
    int calls = 0;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_tx_run(pool, &o, recovered_fn, &calls, &err), AGEC_ERR_NOT_FOUND);
    assert_int_equal(calls, 1);
    assert_int_equal(err.code, AGEC_ERR_NOT_FOUND);
}

/* Item 3: the graph helpers take options; their statements time out
 * (here behind a lock another session holds on a label table), on AGE's
 * catalog stood in for on PG15. */
static void test_graph_helpers_timeout(void **state)
{
    (void)state;
    agec_pool *stub = agec_test_stub_age_pool(pool, "agec_stub_edges");
    agec_conn *a = agec_test_acquire(stub);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_create(a, "edges_g", &err), &err, "graph");
    agec_test_must(agec_label_create(a, "edges_g", "Person", AGEC_LABEL_VERTEX, &err), &err,
                   "label");
    agec_conn_release(a);
    /* Another session locks the label table. */
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=agec_stub_edges", agec_test_pg_conninfo());
    PGconn *locker = PQconnectdb(dsn);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    PGresult *lr = PQexec(locker, "BEGIN; LOCK TABLE edges_g.\"Person\" IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(lr), PGRES_COMMAND_OK);
    PQclear(lr);
    a = agec_test_acquire(stub);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 300;
    double t0 = now_s();
    assert_int_equal(agec_graph_create_indexes_opts(a, "edges_g", "Person", &o, &err),
                     AGEC_ERR_TIMEOUT);
    assert_true(now_s() - t0 < 30.0); /* a hang check: the lock is never released */
    assert_int_equal(err.code, AGEC_ERR_TIMEOUT);
    o.struct_size = 0;
    assert_int_equal(agec_graph_exists_opts(a, "edges_g", &(bool){ false }, &o, &err),
                     AGEC_ERR_INVALID_ARG);
    agec_conn_release(a);
    PQfinish(locker);
    agec_pool_close(stub, 1000, NULL);
}

/* API item: agec_loader_finish does not trust an uninitialised stats
 * struct (one filled with 0xAB came back with edges = 0xabab...); the
 * struct has an initialiser. */
static void test_load_stats_uninitialised(void **state)
{
    (void)state;
    agec_pool *stub = agec_test_stub_age_pool(pool, "agec_stub_edges_ld");
    for (int form = 0; form < 2; form++) {
        agec_conn *c = agec_test_acquire(stub);
        agec_error err = AGEC_ERROR_INIT;
        agec_loader *ld = NULL;
        agec_test_must(agec_loader_open(c, form == 0 ? "ld_a" : "ld_b", NULL, &ld, &err), &err,
                       "open");
        for (int i = 0; i < 3; i++)
            agec_test_must(agec_loader_vertex(ld, "Doc", "{\"n\": 1}", SIZE_MAX, &err), &err,
                           "vertex");
        agec_load_stats st;
        memset(&st, 0xAB, sizeof st);
        st.size = 16;  /* stack garbage that looks like a size: rows only */
        if (form == 0) /* the macro: the caller's sizeof, st.size unread */
            agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
        else /* the exported function of the older header: st.size is garbage */
            agec_test_must((agec_loader_finish)(ld, &st, &err), &err, "finish");
        assert_true(st.vertices == 3);
        assert_true(st.edges == 0);
        assert_true(st.rows == 3);
        assert_true(st.size <= sizeof st);
        agec_loader_free(ld);
        agec_conn_release(c);
    }
    agec_load_stats z = AGEC_LOAD_STATS_INIT;
    assert_int_equal(z.size, sizeof z);
    memset(&z, 0xAB, sizeof z);
    agec_load_stats_init(&z);
    assert_int_equal(z.size, sizeof z);
    assert_true(z.edges == 0 && z.input_bytes == 0);
    agec_pool_close(stub, 1000, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_out_ends),
        cmocka_unit_test(test_copy_in_ends),
        cmocka_unit_test(test_cached_plan_after_ddl),
        cmocka_unit_test(test_typed_accessors),
        cmocka_unit_test(test_command_tag),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_error_reset_on_success),
        cmocka_unit_test(test_tx_run_retry_from_status),
        cmocka_unit_test(test_graph_helpers_timeout),
        cmocka_unit_test(test_load_stats_uninitialised),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
