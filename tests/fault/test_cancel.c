/*
 * agec_conn_cancel, called from another thread: it cancels the borrower's
 * running statement (SQLSTATE 57014); and behind a black hole (our proxy
 * holding every byte) it returns AGEC_ERR_TIMEOUT within the pool's
 * connect_timeout_ms instead of blocking in PQcancel, whose request thread
 * ends by itself once the path heals.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "agec/agec.h"
#include "fault_load.h"
#include "proxy.h"

#define CONNECT_MS 300
#define SLACK_MS 250

typedef struct sleeper {
    agec_conn *conn;
    agec_status st;
    agec_error err;
    int64_t ms;
} sleeper;

static void *run_sleep(void *arg)
{
    sleeper *s = arg;
    int64_t t0 = agec_test_now_ms();
    agec_result *r = NULL;
    s->st = agec_sql_exec(s->conn, "SELECT pg_sleep(30)", 0, NULL, NULL, &r, &s->err);
    agec_result_free(r);
    s->ms = agec_test_now_ms() - t0;
    return NULL;
}

static bool sleep_running(void *arg)
{
    return fl_int(arg, "SELECT count(*) FROM pg_stat_activity "
                       "WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'") == 1;
}

static int THREADS_BEFORE;

static bool request_thread_gone(void *arg)
{
    (void)arg;
    return agec_test_thread_count() <= THREADS_BEFORE;
}

static void test_cancel_running_and_black_hole(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    fproxy *px = t.px;
    PGconn *admin = fl_admin(&t.cl);
    assert_non_null(admin);

    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 1;
    cfg.connect_timeout_ms = CONNECT_MS;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    sleeper s = { .st = AGEC_OK, .err = AGEC_ERROR_INIT };
    agec_test_must(agec_pool_acquire(pool, &s.conn, &err), &err, "acquire");

    /* 1. A running statement is cancelled, and the call says so. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_sleep, &s), 0);
    assert_true(agec_test_wait_until(sleep_running, admin, 10000));
    agec_test_must(agec_conn_cancel(s.conn, &err), &err, "cancel");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(s.st, AGEC_ERR_CANCELLED);
    assert_string_equal(s.err.sqlstate, "57014");
    assert_true(s.ms < 10000);

    /* 2. Black hole: the request cannot be answered; the call gives up at
     * connect_timeout_ms, and says why. */
    THREADS_BEFORE = agec_test_thread_count();
    fproxy_set_mode(px, FPROXY_STALL);
    int64_t t0 = agec_test_now_ms();
    err = (agec_error)AGEC_ERROR_INIT;
    assert_int_equal(agec_conn_cancel(s.conn, &err), AGEC_ERR_TIMEOUT);
    int64_t took = agec_test_now_ms() - t0;
    assert_true(took >= CONNECT_MS - 5);
    assert_true(took < CONNECT_MS + SLACK_MS);
    assert_int_equal(err.code, AGEC_ERR_TIMEOUT);
    assert_non_null(strstr(err.message, "connect_timeout_ms"));
    /* The connection may go back at once, although the request is pending. */
    agec_conn_release(s.conn);

    /* 3. Healed: the held request reaches the server, which answers it, and
     * the request's thread ends. */
    fproxy_set_mode(px, FPROXY_PASS);
    assert_true(agec_test_wait_until(request_thread_gone, NULL, 10000));

    assert_int_equal(agec_pool_close(pool, 1000, &err), AGEC_OK);
    PQfinish(admin);
    fl_proxied_stop(&t);
}

/* A statement timeout whose cancel cannot take effect within the 150 ms
 * grace (here: 250 ms of network latency each way) returns at once, but the
 * connection is not thrown away while its statement may still run on the
 * server: release cancels again, waits for the end, and keeps it. */
static void test_stuck_statement_drained_on_release(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, "sslmode=disable"))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    fproxy *px = t.px;
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 1;
    cfg.connect_timeout_ms = 5000;
    cfg.reset_timeout_ms = 5000;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c = NULL;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    uint64_t id = agec_conn_id(c);

    fproxy_set_latency(px, 250);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 200;
    agec_result *r = NULL;
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_sql_exec(c, "SELECT pg_sleep(30)", 0, NULL, &o, &r, &err),
                     AGEC_ERR_TIMEOUT);
    assert_true(agec_test_now_ms() - t0 < 200 + 150 + SLACK_MS);
    assert_non_null(strstr(err.message, "has not stopped yet"));
    assert_null(r);
    /* Still running: the connection refuses a second statement meanwhile. */
    assert_int_equal(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), AGEC_ERR_STATE);
    agec_conn_release(c); /* cancels again and drains: 57014 comes back */

    fproxy_set_latency(px, 0);
    agec_pool_stats s;
    agec_test_must(agec_pool_stats_get(pool, &s), &err, "stats");
    assert_int_equal(s.closed[AGEC_CLOSE_BROKEN], 0);
    assert_int_equal(s.closed[AGEC_CLOSE_RESET], 0);
    assert_int_equal(s.total, 1);
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire again");
    assert_int_equal(agec_conn_id(c), id); /* the same connection, kept */
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "works");
    agec_result_free(r);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(pool, 1000, &err), AGEC_OK);
    fl_proxied_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuck_statement_drained_on_release),
        cmocka_unit_test(test_cancel_running_and_black_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
