/*
 * Pipelined batches (agec/batch.h, issue 28) on PostgreSQL 15: results in
 * order with parameters (named and unnamed statement modes), per-statement
 * errors isolated, all-or-nothing rollback checked by a query afterwards,
 * batches inside a transaction, the batch deadline with pg_sleep (every
 * outcome by deadline + margin, the connection never reused dirty), a
 * backend terminated mid-pipeline (every statement gets an outcome, nothing
 * hangs), bad input with stable codes.
 */
#include "test_pool_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/agec.h"

static agec_pool *pool;  /* named statement mode (the default) */
static agec_pool *upool; /* unnamed statement mode */
static char app[64], uapp[64];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    pool_test_config(&cfg, "batch", app, NULL);
    cfg.max = 2;
    pool = pool_open_ok(&cfg);
    pool_test_config(&cfg, "ubatch", uapp, NULL);
    cfg.max = 2;
    cfg.statement_mode = AGEC_STMT_UNNAMED;
    upool = pool_open_ok(&cfg);
    agec_conn *c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP TABLE IF EXISTS it_batch");
    agec_test_sql(c, "CREATE TABLE it_batch (id int PRIMARY KEY, v text)");
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_pool_close(upool, 2000, NULL);
    agec_pool_close(pool, 2000, NULL);
    return 0;
}

static void clear_table(agec_conn *c)
{
    agec_test_sql(c, "DELETE FROM it_batch");
}

static long table_count(agec_conn *c, const char *where)
{
    char sql[256], buf[32];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM it_batch WHERE %s", where);
    conn_value(c, sql, buf, sizeof buf);
    return atol(buf);
}

static agec_batch *batch_new(agec_conn *c, bool all, int timeout_ms)
{
    agec_batch_opts o;
    agec_batch_opts_init(&o);
    o.all_or_nothing = all;
    o.timeout_ms = timeout_ms;
    agec_batch *b = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_create(c, &o, &b, &err), &err, "agec_batch_create");
    return b;
}

static void add_sql(agec_batch *b, const char *sql, int n, const char *const *v)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_add_sql(b, sql, n, v, NULL, &err), &err, sql);
}

static void insert(agec_batch *b, int id)
{
    char v[16];
    snprintf(v, sizeof v, "%d", id);
    const char *vals[2] = { v, "x" };
    add_sql(b, "INSERT INTO it_batch (id, v) VALUES ($1::int, $2)", 2, vals);
}

static void expect(agec_batch *b, size_t i, agec_status st, const char *sqlstate)
{
    agec_error e = AGEC_ERROR_INIT;
    agec_status got = agec_batch_status(b, i, &e);
    if (got != st)
        fail_msg("statement %zu: %s (%s) \"%s\", expected %s", i, agec_status_name(got), e.sqlstate,
                 e.message, agec_status_name(st));
    assert_int_equal(e.code, st);
    if (sqlstate != NULL)
        assert_string_equal(e.sqlstate, sqlstate);
    if (st != AGEC_OK)
        assert_true(e.message[0] != '\0');
    assert_true((agec_batch_result(b, i) != NULL) == (st == AGEC_OK));
}

/* 200 statements with parameters come back in order, with their own rows,
 * in both statement modes, and a second run reuses the cached statements. */
static void run_in_order(agec_pool *p)
{
    agec_conn *c = agec_test_acquire(p);
    clear_table(c);
    agec_batch *b = batch_new(c, false, 10000);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            char a[16], t[16];
            snprintf(a, sizeof a, "%d", i);
            snprintf(t, sizeof t, "s%d", i);
            const char *v[2] = { a, t };
            add_sql(b, "SELECT $1::int * 2 AS twice, $2::text AS s", 2, v);
            insert(b, round * 100 + i);
        }
        assert_int_equal(agec_batch_count(b), 200);
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_batch_run(b, &err), &err, "run");
        for (int i = 0; i < 100; i++) {
            agec_result *r = agec_batch_result(b, (size_t)(2 * i));
            assert_non_null(r);
            assert_int_equal(agec_result_rows(r), 1);
            assert_int_equal(atoi(agec_result_text(r, 0, 0, NULL)), 2 * i);
            char t[16];
            snprintf(t, sizeof t, "s%d", i);
            assert_string_equal(agec_result_text(r, 0, 1, NULL), t);
            expect(b, (size_t)(2 * i + 1), AGEC_OK, NULL);
            assert_int_equal(agec_result_affected(agec_batch_result(b, (size_t)(2 * i + 1))), 1);
        }
        agec_result *taken = agec_batch_take_result(b, 0);
        assert_non_null(taken);
        assert_null(agec_batch_result(b, 0));
        agec_result_free(taken);
        agec_batch_reset(b);
    }
    agec_batch_free(b);
    assert_int_equal(table_count(c, "true"), 200);
    /* Named mode: each text prepared once on this connection (the second
     * round used the cache); unnamed mode: nothing left on the server. */
    char buf[32];
    conn_value(c,
               "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
               "'SELECT $1::int * 2%' OR statement LIKE 'INSERT INTO it_batch%'",
               buf, sizeof buf);
    assert_int_equal(atol(buf), p == pool ? 2 : 0);
    agec_conn_release(c);
}

static void test_results_in_order(void **state)
{
    (void)state;
    run_in_order(pool);
    run_in_order(upool);
}

/* Sync per statement: a failure fails its statement only. */
static void test_errors_isolated(void **state)
{
    (void)state;
    agec_pool *pools[2] = { pool, upool };
    for (int k = 0; k < 2; k++) {
        agec_conn *c = agec_test_acquire(pools[k]);
        clear_table(c);
        agec_batch *b = batch_new(c, false, 10000);
        insert(b, 1);
        add_sql(b, "SELECT 1/0", 0, NULL);
        insert(b, 2);
        insert(b, 1); /* duplicate key */
        add_sql(b, "SELEC oops", 0, NULL);
        add_sql(b, "SELEC oops", 0, NULL); /* the same bad Parse again */
        add_sql(b, "SELECT count(*) FROM it_batch", 0, NULL);
        agec_error err = AGEC_ERROR_INIT;
        assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
        assert_string_equal(err.sqlstate, "22012");
        assert_non_null(strstr(err.message, "statement 1: "));
        expect(b, 0, AGEC_OK, NULL);
        expect(b, 1, AGEC_ERR_SERVER, "22012");
        expect(b, 2, AGEC_OK, NULL);
        expect(b, 3, AGEC_ERR_SERVER, "23505");
        expect(b, 4, AGEC_ERR_SERVER, "42601");
        expect(b, 5, AGEC_ERR_SERVER, "42601");
        expect(b, 6, AGEC_OK, NULL);
        assert_string_equal(agec_result_text(agec_batch_result(b, 6), 0, 0, NULL), "2");
        agec_batch_free(b);
        assert_int_equal(table_count(c, "id IN (1, 2)"), 2);
        /* The connection is out of pipeline mode and usable. */
        assert_int_equal(PQpipelineStatus(agec_conn_pgconn(c)), PQ_PIPELINE_OFF);
        assert_int_equal(table_count(c, "true"), 2);
        agec_conn_release(c);
    }
}

/* all_or_nothing: the first failure rolls back everything. */
static void test_all_or_nothing(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    clear_table(c);
    agec_batch *b = batch_new(c, true, 10000);
    insert(b, 10);
    insert(b, 11);
    add_sql(b, "SELECT 1/0", 0, NULL);
    insert(b, 12);
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "22012");
    expect(b, 0, AGEC_ERR_BATCH_ABORTED, "");
    expect(b, 1, AGEC_ERR_BATCH_ABORTED, "");
    expect(b, 2, AGEC_ERR_SERVER, "22012");
    expect(b, 3, AGEC_ERR_BATCH_ABORTED, "");
    agec_error e = AGEC_ERROR_INIT;
    (void)agec_batch_status(b, 0, &e);
    assert_non_null(strstr(e.message, "rolled back: statement 2"));
    (void)agec_batch_status(b, 3, &e);
    assert_non_null(strstr(e.message, "not run: statement 2"));
    agec_batch_free(b);
    assert_int_equal(table_count(c, "true"), 0);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);

    /* A Parse skipped after the failure left nothing on the server: the
     * statement cache must not think it prepared (the next batch would
     * fail with 26000). */
    b = batch_new(c, true, 10000);
    add_sql(b, "SELECT 1/0", 0, NULL);
    const char *arg[1] = { "a" };
    add_sql(b, "SELECT 'skipped parse ' || $1", 1, arg);
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
    expect(b, 1, AGEC_ERR_BATCH_ABORTED, "");
    agec_batch_reset(b);
    add_sql(b, "SELECT 'skipped parse ' || $1", 1, arg);
    agec_test_must(agec_batch_run(b, &err), &err, "the statement skipped before");
    assert_string_equal(agec_result_text(agec_batch_result(b, 0), 0, 0, NULL), "skipped parse a");
    agec_batch_free(b);

    /* Without a failure it commits all. */
    b = batch_new(c, true, 10000);
    for (int i = 20; i < 30; i++)
        insert(b, i);
    agec_test_must(agec_batch_run(b, &err), &err, "all-or-nothing run");
    agec_batch_free(b);
    assert_int_equal(table_count(c, "id >= 20 AND id < 30"), 10);
    agec_conn_release(c);
}

/* Inside agec_tx_begin: all-or-nothing within the caller's transaction. */
static void test_inside_transaction(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    clear_table(c);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_batch *b = batch_new(c, false, 10000);
    insert(b, 40);
    insert(b, 41);
    agec_test_must(agec_batch_run(b, &err), &err, "run in tx");
    agec_batch_free(b);
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    assert_int_equal(table_count(c, "true"), 0); /* it ran inside the transaction */

    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    b = batch_new(c, false, 10000);
    insert(b, 42);
    add_sql(b, "SELECT 1/0", 0, NULL);
    insert(b, 43);
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
    expect(b, 0, AGEC_OK, NULL);
    expect(b, 1, AGEC_ERR_SERVER, "22012");
    expect(b, 2, AGEC_ERR_BATCH_ABORTED, "");
    agec_batch_free(b);
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_STATE); /* rolled back */
    assert_int_equal(table_count(c, "true"), 0);
    agec_conn_release(c);
}

/* Past the deadline: cancelled, every outcome by deadline + margin, and
 * the connection is either clean or closed, never reused dirty. */
static void test_deadline(void **state)
{
    (void)state;
    for (int all = 0; all < 2; all++) {
        agec_conn *c = agec_test_acquire(pool);
        clear_table(c);
        agec_batch *b = batch_new(c, all, 300);
        insert(b, 50);
        add_sql(b, "SELECT pg_sleep(30)", 0, NULL);
        insert(b, 51);
        add_sql(b, "SELECT pg_sleep(30)", 0, NULL);
        double t0 = now_ms();
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_batch_run(b, &err);
        double took = now_ms() - t0;
        assert_true(took < 300 + 5000); /* a hang check: generous under load */
        assert_true(st != AGEC_OK);
        for (size_t i = 0; i < 4; i++) { /* every statement has an outcome */
            agec_status s = agec_batch_status(b, i, NULL);
            assert_int_not_equal(s, AGEC_ERR_STATE);
        }
        expect(b, 1, AGEC_ERR_TIMEOUT, NULL);
        if (!all) {
            expect(b, 0, AGEC_OK, NULL);
        } else {
            /* Rolled back with the rest; or, if the cancel was not honoured
             * within its grace period, its commit is unknown: a timeout. */
            agec_status s0 = agec_batch_status(b, 0, NULL);
            assert_true(s0 == AGEC_ERR_BATCH_ABORTED || s0 == AGEC_ERR_TIMEOUT);
        }
        agec_batch_free(b);
        agec_conn_release(c);
        /* Whatever connection comes next runs cleanly and nothing sleeps. */
        c = agec_test_acquire(pool);
        assert_int_equal(PQpipelineStatus(agec_conn_pgconn(c)), PQ_PIPELINE_OFF);
        assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
        assert_int_equal(table_count(c, "id = 50"), all ? 0 : 1);
        agec_conn_release(c);
        PGconn *admin = pg_admin();
        char q[256];
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND "
                 "query LIKE '%%pg_sleep%%' AND state = 'active'",
                 app);
        bool quiet = false;
        for (int i = 0; i < 100 && !quiet; i++) {
            quiet = pg_int(admin, q) == 0;
            if (!quiet)
                nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
        }
        assert_true(quiet);
        PQfinish(admin);
    }
}

typedef struct killer {
    const char *app;
    int killed;
} killer;

/* Terminate the backend once it runs the pg_sleep of the batch. */
static void *kill_when_sleeping(void *arg)
{
    killer *k = arg;
    PGconn *admin = pg_admin();
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s' AND query LIKE '%%pg_sleep%%' AND state = 'active'",
             k->app);
    double until = now_ms() + 20000;
    while (k->killed == 0 && now_ms() < until) {
        k->killed = (int)pg_int(admin, q);
        if (k->killed == 0)
            nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    }
    PQfinish(admin);
    return NULL;
}

static void test_backend_killed(void **state)
{
    (void)state;
    agec_pool *pools[2] = { pool, upool };
    const char *apps[2] = { app, uapp };
    for (int k = 0; k < 2; k++) {
        agec_pool_stats before = pool_stats(pools[k]);
        agec_conn *c = agec_test_acquire(pools[k]);
        agec_batch *b = batch_new(c, false, 0); /* no deadline: the kill ends it */
        add_sql(b, "SELECT 1", 0, NULL);
        add_sql(b, "SELECT pg_sleep(30)", 0, NULL);
        for (int i = 0; i < 5; i++)
            add_sql(b, "SELECT 2", 0, NULL);
        killer kl = { .app = apps[k] };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, kill_when_sleeping, &kl), 0);
        double t0 = now_ms();
        agec_error err = AGEC_ERROR_INIT;
        assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_CONNECTION_LOST);
        assert_true(now_ms() - t0 < 25000);
        pthread_join(t, NULL);
        assert_int_equal(kl.killed, 1);
        expect(b, 0, AGEC_OK, NULL);
        expect(b, 1, AGEC_ERR_CONNECTION_LOST, NULL); /* 57P01 or the socket's end */
        for (size_t i = 2; i < 7; i++)
            expect(b, i, AGEC_ERR_CONNECTION_LOST, "");
        agec_batch_free(b);
        agec_conn_release(c);
        /* Released broken: closed, not handed out again. */
        bool closed = false;
        for (int i = 0; i < 100 && !closed; i++) {
            closed =
                pool_stats(pools[k]).closed[AGEC_CLOSE_BROKEN] > before.closed[AGEC_CLOSE_BROKEN];
            if (!closed)
                nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
        }
        assert_true(closed);
        c = agec_test_acquire(pools[k]);
        char buf[16];
        conn_value(c, "SELECT 7", buf, sizeof buf);
        assert_string_equal(buf, "7");
        agec_conn_release(c);
    }
}

/* A batch far larger than the socket buffers (the server answers while we
 * still send: no deadlock), and more distinct statements than the
 * statement cache holds (evicted within the batch, deallocated later). */
static void test_large_batch(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    char pad[201];
    memset(pad, 'x', 200);
    pad[200] = '\0';
    for (int round = 0; round < 2; round++) {
        agec_batch *b = batch_new(c, round == 1, 60000);
        for (int i = 0; i < 20000; i++) {
            char sql[64];
            /* 300 distinct texts: more than AGEC_STMT_CACHE_MAX. */
            snprintf(sql, sizeof sql, "SELECT $1::text || '%d' AS c", i % 300);
            const char *v[1] = { pad };
            add_sql(b, sql, 1, v);
        }
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_batch_run(b, &err), &err, "large batch");
        for (int i = 0; i < 20000; i += 997) {
            char want[256];
            snprintf(want, sizeof want, "%s%d", pad, i % 300);
            assert_string_equal(agec_result_text(agec_batch_result(b, (size_t)i), 0, 0, NULL),
                                want);
        }
        agec_batch_free(b);
    }
    /* The cache kept at most its limit on the server once the evicted
     * statements were deallocated (by the next statement prepared outside
     * a transaction: this one). */
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, "SELECT count(*) AS n FROM pg_prepared_statements", 0, NULL,
                                 NULL, &r, &err),
                   &err, "count prepared");
    assert_true(atol(agec_result_text(r, 0, 0, NULL)) <= AGEC_STMT_CACHE_MAX);
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_bad_input(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_batch *b = NULL;
    assert_int_equal(agec_batch_create(NULL, NULL, &b, &err), AGEC_ERR_INVALID_ARG);
    assert_null(b);
    assert_int_equal(agec_batch_create(c, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    agec_batch_opts bad;
    memset(&bad, 0, sizeof bad);
    assert_int_equal(agec_batch_create(c, &bad, &b, &err), AGEC_ERR_INVALID_ARG);
    agec_batch_opts_init(&bad);
    bad.timeout_ms = -1;
    assert_int_equal(agec_batch_create(c, &bad, &b, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_run(NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_add_sql(NULL, "SELECT 1", 0, NULL, NULL, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_count(NULL), 0);
    assert_int_equal(agec_batch_status(NULL, 0, &err), AGEC_ERR_INVALID_ARG);
    assert_null(agec_batch_result(NULL, 0));
    agec_batch_free(NULL);
    agec_batch_reset(NULL);

    b = batch_new(c, false, 0);
    assert_int_equal(agec_batch_add_sql(b, NULL, 0, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_add_sql(b, "SELECT $1", 1, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_add_sql(b, "SELECT 1", -1, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    const char *one[1] = { "1" };
    assert_int_equal(agec_batch_add_sql(b, "SELECT 1", AGEC_MAX_PARAMS + 1, one, NULL, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_add_cypher(b, "bad graph!", "RETURN 1", NULL, NULL, &err),
                     AGEC_ERR_NAME);
    assert_int_equal(agec_batch_add_cypher(b, "g1", NULL, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_batch_count(b), 0); /* failed adds leave nothing */
    assert_int_equal(agec_batch_status(b, 0, &err), AGEC_ERR_INVALID_ARG);
    /* An empty batch. */
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "no statement"));
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_STATE); /* ran already */
    assert_int_equal(agec_batch_add_sql(b, "SELECT 1", 0, NULL, NULL, &err), AGEC_ERR_STATE);
    agec_batch_reset(b);

    /* Per-statement refusals: empty text, several statements in one text,
     * a parameter count that does not match; the rest still run. COPY is
     * refused when added. */
    add_sql(b, "", 0, NULL);
    add_sql(b, "SELECT 1; SELECT 2", 0, NULL);
    add_sql(b, "SELECT $1::int + $2::int", 1, one);
    assert_int_equal(
        agec_batch_add_sql(b, " /* c */ copy it_batch FROM STDIN", 0, NULL, NULL, &err),
        AGEC_ERR_STATE);
    assert_int_equal(agec_batch_count(b), 3);
    add_sql(b, "SELECT 3", 0, NULL);
    assert_int_equal(agec_batch_status(b, 0, &err), AGEC_ERR_STATE); /* not run yet */
    assert_int_not_equal(agec_batch_run(b, &err), AGEC_OK);
    expect(b, 0, AGEC_ERR_INVALID_ARG, NULL);
    expect(b, 1, AGEC_ERR_SERVER, "42601");
    expect(b, 2, AGEC_ERR_INVALID_ARG, "08P01");
    expect(b, 3, AGEC_OK, NULL);
    agec_batch_free(b);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_in_order), cmocka_unit_test(test_errors_isolated),
        cmocka_unit_test(test_all_or_nothing),   cmocka_unit_test(test_inside_transaction),
        cmocka_unit_test(test_deadline),         cmocka_unit_test(test_backend_killed),
        cmocka_unit_test(test_large_batch),      cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
