/*
 * The pool against the real PostgreSQL 15 server: max is a hard limit,
 * exhaustion times out with counts, cleanup on release (ROLLBACK, cancel,
 * reset_query), plain-PostgreSQL mode, stats, no fd leaks.
 */
#include "test_pool_util.h"

#include <stdio.h>
#include <string.h>

#include "pool/conn_ext.h"

static void test_never_more_than_max(void **state)
{
    (void)state;
    int fds = agec_test_fd_count();
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "max", app, NULL);
    cfg.max = 3;
    agec_pool *p = pool_open_ok(&cfg);
    PGconn *admin = pg_admin();
    agec_conn *c[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(agec_pool_acquire(p, &c[i], NULL), AGEC_OK);
    assert_int_equal(pg_count_app(admin, app), 3);
    agec_conn *extra = NULL;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_acquire_timeout(p, 50, &extra, &err), AGEC_ERR_POOL_EXHAUSTED);
    assert_null(extra);
    assert_int_equal(pg_count_app(admin, app), 3);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.total, 3);
    assert_int_equal(s.in_use, 3);
    assert_int_equal(s.idle, 0);
    for (int i = 0; i < 3; i++)
        agec_conn_release(c[i]);
    s = pool_stats(p);
    assert_int_equal(s.idle, 3);
    assert_int_equal(s.releases, 3);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    assert_true(pg_wait_app_count(admin, app, 0, 2000));
    PQfinish(admin);
    assert_int_equal(agec_test_fd_count(), fds);
}

static void test_exhausted_timeout_message(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "exhaust", app, &log);
    cfg.max = 2;
    cfg.acquire_timeout_ms = 300;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *a, *b, *c = NULL;
    /* Connecting (TLS, a loaded machine) may take longer than 300 ms. */
    assert_int_equal(agec_pool_acquire_timeout(p, 5000, &a, NULL), AGEC_OK);
    assert_int_equal(agec_pool_acquire_timeout(p, 5000, &b, NULL), AGEC_OK);
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = agec_test_now_ms();
    agec_status st = agec_pool_acquire(p, &c, &err);
    int64_t took = agec_test_now_ms() - t0;
    assert_int_equal(st, AGEC_ERR_POOL_EXHAUSTED);
    assert_int_equal(err.code, AGEC_ERR_POOL_EXHAUSTED);
    if (took < 290 || took > 400)
        fail_msg("exhausted acquire took %lld ms (timeout 300)", (long long)took);
    assert_non_null(strstr(err.message, "pool exhausted"));
    assert_non_null(strstr(err.message, "total=2 in_use=2 idle=0"));
    assert_non_null(strstr(err.message, "max=2"));
    assert_int_equal(ev_log_count(&log, AGEC_EV_ACQUIRE_TIMEOUT), 1);
    /* timeout 0: fail at once */
    t0 = agec_test_now_ms();
    assert_int_equal(agec_pool_acquire_timeout(p, 0, &c, NULL), AGEC_ERR_POOL_EXHAUSTED);
    assert_true(agec_test_now_ms() - t0 < 50);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.acquire_timeouts, 2);
    agec_conn_release(a);
    agec_conn_release(b);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    ev_log_destroy(&log);
}

/* Timeout 0 means "do not queue behind others", not "do no I/O": an empty
 * pool still opens a connection, and stale idle connections are still
 * validated with validation_timeout_ms (none closed, breaker untouched). */
static void test_zero_timeout_still_connects_and_validates(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "zero", app, NULL);
    cfg.max = 2;
    cfg.validate_idle_ms = 0; /* every acquire validates */
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *a = NULL, *b = NULL;
    agec_error err = AGEC_ERROR_INIT;
    for (int round = 0; round < 6; round++) {
        agec_test_must(agec_pool_acquire_timeout(p, 0, &a, &err), &err, "acquire 0 (a)");
        agec_test_must(agec_pool_acquire_timeout(p, 0, &b, &err), &err, "acquire 0 (b)");
        char v[32];
        conn_value(a, "SELECT 1", v, sizeof v);
        assert_string_equal(v, "1");
        agec_conn_release(a);
        agec_conn_release(b);
    }
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.connect_failures, 0);
    assert_int_equal(s.validation_failures, 0);
    assert_true(s.validations >= 10);
    assert_int_equal(s.breaker, AGEC_BREAKER_CLOSED);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

static void test_release_in_transaction_rolls_back(void **state)
{
    (void)state;
    PGconn *admin = pg_admin();
    pg_int(admin, "CREATE TABLE IF NOT EXISTS agec_pool_rb (v int)");
    pg_int(admin, "TRUNCATE agec_pool_rb");
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "rollback", app, NULL);
    cfg.max = 1;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    uint64_t id = agec_conn_id(c);
    conn_exec_ok(c, "BEGIN");
    conn_exec_ok(c, "INSERT INTO agec_pool_rb VALUES (42)");
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_INTRANS);
    agec_conn_release(c);
    assert_int_equal(pg_int(admin, "SELECT count(*) FROM agec_pool_rb"), 0);
    /* Same connection again (max 1), idle and usable. */
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_int_equal(agec_conn_id(c), id);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
    /* A failed transaction too. */
    conn_exec_ok(c, "BEGIN");
    PQclear(PQexec(agec_conn_pgconn(c), "SELECT 1/0"));
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_INERROR);
    agec_conn_release(c);
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_int_equal(agec_conn_id(c), id);
    char v[64];
    conn_value(c, "SELECT 7", v, sizeof v);
    assert_string_equal(v, "7");
    agec_conn_release(c);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.opened, 1);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    pg_int(admin, "DROP TABLE agec_pool_rb");
    PQfinish(admin);
}

static void test_release_with_running_query_cancels(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "active", app, NULL);
    cfg.max = 1;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    uint64_t id = agec_conn_id(c);
    assert_true(PQsendQuery(agec_conn_pgconn(c), "SELECT pg_sleep(30)"));
    int64_t t0 = agec_test_now_ms();
    agec_conn_release(c);
    assert_true(agec_test_now_ms() - t0 < 2000);
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_int_equal(agec_conn_id(c), id); /* kept: cancel + drain left it idle */
    char v[64];
    conn_value(c, "SELECT 'ok'", v, sizeof v);
    assert_string_equal(v, "ok");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

static int ext_destroyed;
static void ext_destroy(void *ext)
{
    (void)ext;
    ext_destroyed++;
}

static void test_reset_query_restores_search_path(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "reset", app, NULL);
    cfg.max = 1;
    cfg.reset_query = "DISCARD ALL";
    cfg.init_sql = "SET search_path = pg_catalog, public";
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    char v[256];
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_string_equal(v, "pg_catalog, public");
    conn_exec_ok(c, "SET search_path = nowhere");
    conn_exec_ok(c, "PREPARE agec_s AS SELECT 1");
    ext_destroyed = 0;
    agec__conn_set_ext(c, &ext_destroyed, ext_destroy);
    agec_conn_release(c);
    assert_int_equal(ext_destroyed, 1);
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_null(agec__conn_ext(c));
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_string_equal(v, "pg_catalog, public");
    conn_value(c, "SELECT count(*) FROM pg_prepared_statements", v, sizeof v);
    assert_string_equal(v, "0");
    agec_conn_release(c);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.opened, 1);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

static void test_age_off_mode_and_broken_release(void **state)
{
    (void)state;
    ev_log log;
    ev_log_init(&log);
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "ageoff", app, &log);
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_ptr_equal(agec_conn_pool(c), p);
    char v[256];
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_string_equal(v, "\"$user\", public"); /* no AGE SET */
    ext_destroyed = 0;
    agec__conn_set_ext(c, &ext_destroyed, ext_destroy);
    agec_conn_release_broken(c);
    assert_int_equal(ext_destroyed, 1);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.closed[AGEC_CLOSE_BROKEN], 1);
    assert_int_equal(s.total, 0);
    /* mark_broken from an upper layer closes on release too */
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    agec__conn_mark_broken(c);
    agec_conn_release(c);
    s = pool_stats(p);
    assert_int_equal(s.closed[AGEC_CLOSE_BROKEN], 2);
    assert_int_equal(ev_log_count(&log, AGEC_EV_CLOSE), 2);
    assert_int_equal(ev_log_count(&log, AGEC_EV_CONNECT), 2);
    /* AGE LOAD mode where the server has no AGE fails init with the server's
     * SQLSTATE. The test makes "no AGE" itself rather than trusting the
     * machine (AGE users install AGE into PostgreSQL 15's $libdir, issue 11
     * item 5): LOAD 'age' looks the bare name up in dynamic_library_path, set
     * for this pool's sessions to a directory that cannot exist, so the
     * server answers 58P01 whether or not $libdir/age.so is there. */
    agec_pool_config bad;
    char app2[64], noage_dsn[1024];
    pool_test_config(&bad, "noage", app2, NULL);
    snprintf(noage_dsn, sizeof noage_dsn,
             "%s options='-c dynamic_library_path=/nonexistent/agec-no-age'", bad.conninfo);
    bad.conninfo = noage_dsn;
    bad.age_mode = AGEC_AGE_LOAD;
    agec_pool *q = pool_open_ok(&bad);
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_acquire(q, &c, &err), AGEC_ERR_INIT);
    assert_string_equal(err.sqlstate, "58P01");
    assert_non_null(strstr(err.message, "LOAD 'age'"));
    assert_int_equal(pool_stats(q).connect_failures, 1);
    assert_int_equal(agec_pool_close(q, 100, NULL), AGEC_OK);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    ev_log_destroy(&log);
}

static void test_open_errors_and_null(void **state)
{
    (void)state;
    agec_pool *p = (agec_pool *)1;
    agec_error err = AGEC_ERROR_INIT;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.max = 0;
    assert_int_equal(agec_pool_open(&cfg, &p, &err), AGEC_ERR_CONFIG);
    assert_null(p);
    assert_true(strncmp(err.message, "max:", 4) == 0);
    agec_pool_config_init(&cfg);
    cfg.conninfo = "host=x password=hunter2 bogus_keyword=1";
    assert_int_equal(agec_pool_open(&cfg, &p, &err), AGEC_ERR_CONFIG);
    assert_true(strncmp(err.message, "conninfo:", 9) == 0);
    assert_null(strstr(err.message, "hunter2"));
    assert_int_equal(agec_pool_open(NULL, &p, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_close(NULL, 0, NULL), AGEC_OK);
    agec_conn_release(NULL);
    agec_conn_release_broken(NULL);
    assert_null(agec_conn_pgconn(NULL));
    assert_null(agec_conn_pool(NULL));
    assert_int_equal(agec_conn_cancel(NULL, NULL), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_acquire(NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
}

static void test_unreachable_is_not_exhausted(void **state)
{
    (void)state;
    /* A port nobody listens on: connection refused at once. */
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "refused", app, NULL);
    cfg.conninfo = "host=127.0.0.1 port=1 user=postgres password=s3cret dbname=postgres";
    cfg.acquire_timeout_ms = 300;
    cfg.breaker_threshold = 0;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_ERR_UNREACHABLE);
    int64_t took = agec_test_now_ms() - t0;
    if (took < 250 || took > 400)
        fail_msg("unreachable acquire took %lld ms (timeout 300): %s", (long long)took,
                 err.message);
    assert_non_null(strstr(err.message, "unreachable"));
    assert_non_null(strstr(err.message, "port=1"));
    assert_null(strstr(err.message, "s3cret"));
    agec_pool_stats s = pool_stats(p);
    assert_true(s.connect_failures >= 2); /* retried with backoff inside the deadline */
    assert_int_equal(s.total, 0);
    assert_int_equal(agec_pool_close(p, 100, NULL), AGEC_OK);
}

static void test_auth_failure_is_distinct(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "auth", app, NULL);
    char conninfo[512];
    snprintf(conninfo, sizeof conninfo, "%s user=agec_no_such_role password=pw123",
             agec_test_pg_conninfo());
    cfg.conninfo = conninfo;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_ERR_AUTH);
    assert_true(agec_test_now_ms() - t0 < 1000); /* not retried until the deadline */
    assert_string_equal(err.sqlstate, "28000");
    assert_non_null(strstr(err.message, "agec_no_such_role"));
    assert_null(strstr(err.message, "pw123"));
    assert_int_equal(pool_stats(p).connect_failures, 1);
    assert_int_equal(agec_pool_close(p, 100, NULL), AGEC_OK);

    /* A wrong password for the scram user of the test server: 28P01. */
    snprintf(conninfo, sizeof conninfo, "%s user=agec_pw password=wrong-pw-42 sslmode=disable",
             agec_test_pg_conninfo());
    p = pool_open_ok(&cfg);
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_ERR_AUTH);
    assert_string_equal(err.sqlstate, "28P01");
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_null(strstr(err.message, "wrong-pw-42"));
    assert_int_equal(agec_pool_close(p, 100, NULL), AGEC_OK);
}

static void test_prometheus_from_live_pool(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "prom", app, NULL);
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
        agec_conn_release(c);
    }
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.acquires, 5);
    assert_int_equal(s.wait_count, 5);
    assert_true(s.wait_p50_us <= s.wait_p99_us && s.wait_p99_us <= s.wait_max_us);
    char buf[16384]; /* agec's names and OpenTelemetry's: about 8.5 KB */
    size_t n = agec_pool_stats_prometheus(&s, "prom", buf, sizeof buf);
    assert_true(n < sizeof buf);
    assert_non_null(strstr(buf, "agec_pool_acquires_total{pool=\"prom\"} 5\n"));
    assert_non_null(strstr(buf, "agec_pool_connections{pool=\"prom\",state=\"idle\"} 1\n"));
    /* Issue 22 (item 13): every state, and the total. */
    assert_non_null(strstr(buf, "agec_pool_connections{pool=\"prom\",state=\"checking\"} 0\n"));
    assert_non_null(strstr(buf, "agec_pool_connections{pool=\"prom\",state=\"closing\"} 0\n"));
    assert_non_null(strstr(buf, "agec_pool_connections_total{pool=\"prom\"} 1\n"));
    assert_non_null(strstr(buf, "agec_pool_acquire_wait_seconds_count{pool=\"prom\"} 5\n"));
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_more_than_max),
        cmocka_unit_test(test_exhausted_timeout_message),
        cmocka_unit_test(test_zero_timeout_still_connects_and_validates),
        cmocka_unit_test(test_release_in_transaction_rolls_back),
        cmocka_unit_test(test_release_with_running_query_cancels),
        cmocka_unit_test(test_reset_query_restores_search_path),
        cmocka_unit_test(test_age_off_mode_and_broken_release),
        cmocka_unit_test(test_open_errors_and_null),
        cmocka_unit_test(test_unreachable_is_not_exhausted),
        cmocka_unit_test(test_auth_failure_is_distinct),
        cmocka_unit_test(test_prometheus_from_live_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
