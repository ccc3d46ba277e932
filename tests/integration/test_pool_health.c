/*
 * Health and maintenance against PostgreSQL 15: min kept and restored after
 * the server kills every backend, dead idle connections replaced at acquire,
 * lifetime retirement and idle reaping, leak reports.
 */
#include "test_pool_util.h"

#include <string.h>

typedef struct stat_wait {
    agec_pool *p;
    int idle;
    int total;
} stat_wait;

static bool idle_is(void *arg)
{
    stat_wait *w = arg;
    agec_pool_stats s = pool_stats(w->p);
    return s.idle == w->idle && s.total == w->total;
}

static bool closed_reason_at_least(void *arg)
{
    stat_wait *w = arg; /* idle = reason, total = count */
    agec_pool_stats s = pool_stats(w->p);
    return s.closed[w->idle] >= (uint64_t)w->total;
}

static void test_min_reached_and_restored(void **state)
{
    (void)state;
    int fds = agec_test_fd_count();
    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "min", app, &log);
    cfg.idle_timeout_ms = 0;
    cfg.min = 3;
    cfg.max = 5;
    cfg.reconnect_backoff_initial_ms = 20;
    cfg.reconnect_backoff_max_ms = 200;
    agec_pool *p = pool_open_ok(&cfg);
    PGconn *admin = pg_admin();
    /* In the background, without any acquire. */
    stat_wait w = { p, 3, 3 };
    assert_true(agec_test_wait_until(idle_is, &w, 3000));
    assert_true(pg_wait_app_count(admin, app, 3, 2000));
    assert_int_equal(pool_stats(p).acquires, 0);

    /* Kill all pool backends: the maintenance thread notices the dead idle
     * sockets by itself and reopens up to min. */
    assert_int_equal(pg_kill_app(admin, app), 3);
    stat_wait k = { p, AGEC_CLOSE_BROKEN, 3 };
    assert_true(agec_test_wait_until(closed_reason_at_least, &k, 3000));
    /* ... and the maintenance thread restores min. */
    assert_true(pg_wait_app_count(admin, app, 3, 3000));
    w = (stat_wait){ p, 3, 3 };
    assert_true(agec_test_wait_until(idle_is, &w, 3000));
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.closed[AGEC_CLOSE_BROKEN], 3);
    assert_int_equal(s.opened, 6);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    assert_true(pg_wait_app_count(admin, app, 0, 2000));
    PQfinish(admin);
    ev_log_destroy(&log);
    assert_int_equal(agec_test_fd_count(), fds);
}

static void test_killed_idle_replaced_transparently(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "killidle", app, &log);
    cfg.max = 3;
    cfg.validate_idle_ms = 0; /* check every idle connection before use */
    agec_pool *p = pool_open_ok(&cfg);
    PGconn *admin = pg_admin();
    agec_conn *c[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(agec_pool_acquire(p, &c[i], NULL), AGEC_OK);
    for (int i = 0; i < 3; i++)
        agec_conn_release(c[i]);
    assert_int_equal(pg_kill_app(admin, app), 3);
    assert_true(pg_wait_app_count(admin, app, 0, 2000));
    /* Every idle connection is dead; each acquire still succeeds. */
    for (int i = 0; i < 3; i++) {
        agec_error err = AGEC_ERROR_INIT;
        assert_int_equal(agec_pool_acquire(p, &c[i], &err), AGEC_OK);
        char v[32];
        conn_value(c[i], "SELECT 41 + 1", v, sizeof v);
        assert_string_equal(v, "42");
    }
    for (int i = 0; i < 3; i++)
        agec_conn_release(c[i]);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.validation_failures, 3);
    assert_int_equal(s.closed[AGEC_CLOSE_VALIDATION], 3);
    assert_int_equal(s.opened, 6);
    assert_int_equal(s.total, 3);
    assert_int_equal(ev_log_count(&log, AGEC_EV_VALIDATION_FAILED), 3);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    PQfinish(admin);
    ev_log_destroy(&log);
}

static void test_lifetime_retirement(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "lifetime", app, NULL);
    cfg.min = 2;
    cfg.max = 3;
    cfg.max_lifetime_ms = 300;
    cfg.lifetime_jitter_pct = 5;
    agec_pool *p = pool_open_ok(&cfg);
    /* Idle ones are retired by the maintenance thread, and min kept. */
    stat_wait w = { p, AGEC_CLOSE_LIFETIME, 2 };
    assert_true(agec_test_wait_until(closed_reason_at_least, &w, 3000));
    stat_wait m = { p, 2, 2 };
    assert_true(agec_test_wait_until(idle_is, &m, 3000));
    /* An in-use one retires on release. */
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    uint64_t id = agec_conn_id(c);
    uint64_t before = pool_stats(p).closed[AGEC_CLOSE_LIFETIME];
    agec_test_sleep_ms(350); /* hold it past its lifetime (pacing, not synchronisation) */
    agec_conn_release(c);
    agec_pool_stats s = pool_stats(p);
    assert_true(s.closed[AGEC_CLOSE_LIFETIME] > before);
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_int_not_equal(agec_conn_id(c), id);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

static void test_idle_reaping_above_min(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "reap", app, NULL);
    cfg.min = 1;
    cfg.max = 4;
    cfg.idle_timeout_ms = 200;
    agec_pool *p = pool_open_ok(&cfg);
    PGconn *admin = pg_admin();
    agec_conn *c[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(agec_pool_acquire(p, &c[i], NULL), AGEC_OK);
    for (int i = 0; i < 4; i++)
        agec_conn_release(c[i]);
    assert_int_equal(pool_stats(p).idle, 4);
    stat_wait w = { p, 1, 1 };
    assert_true(agec_test_wait_until(idle_is, &w, 3000));
    assert_int_equal(pool_stats(p).closed[AGEC_CLOSE_IDLE], 3);
    assert_true(pg_wait_app_count(admin, app, 1, 2000));
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    PQfinish(admin);
}

typedef struct leak_wait {
    ev_log *log;
    agec_pool_event_type t;
} leak_wait;

static bool leak_seen(void *arg)
{
    leak_wait *w = arg;
    return ev_log_count(w->log, w->t) >= 1;
}

static void test_leak_reported_with_file_and_line(void **state)
{
    (void)state;
    ev_log log;
    ev_log_init(&log);
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "leak", app, &log);
    cfg.leak_threshold_ms = 100;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    int line = __LINE__ + 1;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    leak_wait w = { &log, AGEC_EV_LEAK_SUSPECTED };
    assert_true(agec_test_wait_until(leak_seen, &w, 2000));
    pthread_mutex_lock(&log.mu);
    assert_non_null(strstr(log.leak_file, "test_pool_health.c"));
    assert_int_equal(log.leak_line, line);
    assert_string_equal(log.leak_func, "test_leak_reported_with_file_and_line");
    assert_true(log.leak_held_ms >= 100);
    pthread_mutex_unlock(&log.mu);
    /* Once per borrow. */
    agec_test_sleep_ms(150);
    assert_int_equal(ev_log_count(&log, AGEC_EV_LEAK_SUSPECTED), 1);
    assert_int_equal(ev_log_count(&log, AGEC_EV_LEAK_RETURNED), 0);
    agec_conn_release(c);
    assert_int_equal(ev_log_count(&log, AGEC_EV_LEAK_RETURNED), 1);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.leaks_suspected, 1);
    assert_int_equal(s.leaks_returned, 1);
    /* A short borrow is not reported. */
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    assert_int_equal(ev_log_count(&log, AGEC_EV_LEAK_SUSPECTED), 1);
    ev_log_destroy(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_reached_and_restored),
        cmocka_unit_test(test_killed_idle_replaced_transparently),
        cmocka_unit_test(test_lifetime_retirement),
        cmocka_unit_test(test_idle_reaping_above_min),
        cmocka_unit_test(test_leak_reported_with_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
