/*
 * Database down and back, for real: a PostgreSQL 15 cluster of this test's
 * own (scripts/pg-test-server, so that stopping it cannot disturb tests
 * running in parallel on the shared one) is stopped under a pool.
 *   acquires fail with "unreachable" within their deadlines
 *   -> the breaker opens and acquires fail fast (< 10 ms)
 *   -> the server is restarted -> the pool serves again within the open
 *      period plus a second.
 * The cluster is removed in the teardown, also when an assertion failed.
 */
#include "test_pool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif

static char dir[256];
static char conninfo[256];

static int run(const char *what)
{
    char cmd[768];
    snprintf(cmd, sizeof cmd, "%s/pg-test-server %s %s >/dev/null 2>&1", AGEC_SCRIPTS_DIR, what,
             dir);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/agec-pg.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (run("start") != 0)
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/port", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int port = 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    run("stop"); /* stops it if running and removes the directory */
    return 0;
}

static void test_breaker_down_and_back(void **state)
{
    (void)state;
    int fds = agec_test_fd_count();
    ev_log log;
    ev_log_init(&log);
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "breaker", app, &log);
    cfg.conninfo = conninfo;
    cfg.max = 2;
    cfg.acquire_timeout_ms = 300;
    cfg.connect_timeout_ms = 1000; /* refused connections fail at once anyway */
    cfg.validate_idle_ms = 0;
    cfg.breaker_threshold = 3;
    cfg.breaker_open_ms = 1000;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c = NULL;
    assert_int_equal(agec_pool_acquire_timeout(p, 5000, &c, NULL), AGEC_OK);
    agec_conn_release(c);

    assert_int_equal(run("stop-server"), 0);

    /* Unreachable, each within its deadline, until the breaker opens. */
    int unreachable = 0;
    agec_status st = AGEC_OK;
    for (int i = 0; i < 10; i++) {
        agec_error err = AGEC_ERROR_INIT;
        int64_t t0 = agec_test_now_ms();
        st = agec_pool_acquire(p, &c, &err);
        int64_t took = agec_test_now_ms() - t0;
        assert_null(c);
        assert_true(took <= 300 + 100);
        if (st == AGEC_ERR_BREAKER_OPEN)
            break;
        assert_int_equal(st, AGEC_ERR_UNREACHABLE);
        assert_non_null(strstr(err.message, "unreachable"));
        assert_non_null(strstr(err.message, "last connection error"));
        unreachable++;
    }
    assert_true(unreachable >= 1);
    assert_int_equal(st, AGEC_ERR_BREAKER_OPEN);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.breaker, AGEC_BREAKER_OPEN);
    assert_true(s.connect_failures >= 3);

    /* Fast fail while open. */
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_ERR_BREAKER_OPEN);
    assert_true(agec_test_now_ms() - t0 < 10);
    assert_non_null(strstr(err.message, "circuit breaker open"));
    assert_true(pool_stats(p).breaker_fast_fails >= 1);

    /* Back up: served again within the open period + 1 s. */
    assert_int_equal(run("start-server"), 0);
    int64_t up = agec_test_now_ms();
    st = AGEC_ERR_BREAKER_OPEN;
    while (agec_test_now_ms() - up <= 1000 + 1000) {
        st = agec_pool_acquire_timeout(p, 1000, &c, NULL);
        if (st == AGEC_OK)
            break;
        agec_test_sleep_ms(20); /* pacing the retries, not synchronisation */
    }
    assert_int_equal(st, AGEC_OK);
    assert_true(agec_test_now_ms() - up <= 1000 + 1000);
    char v[16];
    conn_value(c, "SELECT 1", v, sizeof v);
    agec_conn_release(c);
    s = pool_stats(p);
    assert_int_equal(s.breaker, AGEC_BREAKER_CLOSED);
    assert_true(s.breaker_opens >= 1);
    /* Transitions were reported: ... -> open -> half_open -> closed. */
    pthread_mutex_lock(&log.mu);
    int n = log.breaker_n;
    assert_true(n >= 3);
    assert_int_equal(log.breaker_seen[0], AGEC_BREAKER_OPEN);
    assert_int_equal(log.breaker_seen[n - 2], AGEC_BREAKER_HALF_OPEN);
    assert_int_equal(log.breaker_seen[n - 1], AGEC_BREAKER_CLOSED);
    pthread_mutex_unlock(&log.mu);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    ev_log_destroy(&log);
    assert_int_equal(agec_test_fd_count(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breaker_down_and_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
