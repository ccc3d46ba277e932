/*
 * Health and maintenance against PostgreSQL 15: min kept and restored after
 * the server kills every backend, dead idle connections replaced at acquire,
 * lifetime retirement and idle reaping, leak reports.
 */
#include "test_pool_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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
    /* Each dead one was caught by the validation before use, or earlier by
     * the maintenance thread's scan of idle sockets (closed as broken): no
     * dead connection was handed out. */
    assert_int_equal(s.closed[AGEC_CLOSE_VALIDATION] + s.closed[AGEC_CLOSE_BROKEN], 3);
    assert_int_equal(s.validation_failures, s.closed[AGEC_CLOSE_VALIDATION]);
    assert_int_equal(s.opened, 6);
    assert_int_equal(s.total, 3);
    assert_int_equal(ev_log_count(&log, AGEC_EV_VALIDATION_FAILED), (int)s.validation_failures);
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

/* on_connect: counts its calls, and leaves a mark in the session. */
typedef struct hook_ctx {
    atomic_int calls;
    bool fail;
    bool fail_silently; /* fail without a message */
} hook_ctx;

static agec_status count_hook(PGconn *pg, void *user, agec_error *err)
{
    hook_ctx *h = user;
    atomic_fetch_add(&h->calls, 1);
    if (h->fail_silently)
        return AGEC_ERR_SERVER;
    if (h->fail) {
        snprintf(err->message, sizeof err->message, "hook says no");
        return AGEC_ERR_CONFIG;
    }
    PGresult *r = PQexec(pg, "SET work_mem = '7MB'");
    agec_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? AGEC_OK : AGEC_ERR_SERVER;
    PQclear(r);
    return st;
}

static void test_on_connect_once_per_connection(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    hook_ctx h;
    atomic_init(&h.calls, 0);
    h.fail = h.fail_silently = false;
    pool_test_config(&cfg, "onconn", app, NULL);
    cfg.max = 3;
    cfg.on_connect = count_hook;
    cfg.on_connect_user = &h;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(agec_pool_acquire(p, &c[i], NULL), AGEC_OK);
        char v[32];
        conn_value(c[i], "SHOW work_mem", v, sizeof v);
        assert_string_equal(v, "7MB"); /* ran on this very connection, before hand-out */
    }
    assert_int_equal(atomic_load(&h.calls), 3);
    for (int i = 0; i < 3; i++)
        agec_conn_release(c[i]);
    /* Reused connections are not initialised again. */
    for (int round = 0; round < 5; round++) {
        assert_int_equal(agec_pool_acquire(p, &c[0], NULL), AGEC_OK);
        agec_conn_release(c[0]);
    }
    assert_int_equal(atomic_load(&h.calls), 3);
    /* A replaced connection is. */
    assert_int_equal(agec_pool_acquire(p, &c[0], NULL), AGEC_OK);
    agec_conn_release_broken(c[0]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(agec_pool_acquire(p, &c[i], NULL), AGEC_OK);
    for (int i = 0; i < 3; i++)
        agec_conn_release(c[i]);
    assert_int_equal(atomic_load(&h.calls), 4);
    assert_int_equal(pool_stats(p).opened, 4);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

static void test_on_connect_failure_is_init_error(void **state)
{
    (void)state;
    PGconn *admin = pg_admin();
    for (int silent = 0; silent < 2; silent++) {
        agec_pool_config cfg;
        char app[64];
        ev_log log;
        ev_log_init(&log);
        hook_ctx h;
        atomic_init(&h.calls, 0);
        h.fail = true;
        h.fail_silently = silent != 0;
        pool_test_config(&cfg, silent ? "onconnsilent" : "onconnfail", app, &log);
        cfg.on_connect = count_hook;
        cfg.on_connect_user = &h;
        cfg.acquire_timeout_ms = 3000;
        cfg.reconnect_backoff_initial_ms = 10;
        agec_pool *p = pool_open_ok(&cfg);
        agec_conn *c = (agec_conn *)1;
        agec_error err = AGEC_ERROR_INIT;
        int64_t t0 = agec_test_now_ms();
        assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_ERR_INIT);
        assert_true(agec_test_now_ms() - t0 < 2000); /* not retried until the deadline */
        assert_null(c);
        assert_int_equal(err.code, AGEC_ERR_INIT);
        assert_non_null(
            strstr(err.message, silent ? "on_connect callback failed" : "hook says no"));
        assert_int_equal(atomic_load(&h.calls), 1);
        agec_pool_stats s = pool_stats(p);
        assert_int_equal(s.opened, 0);
        assert_int_equal(s.connect_failures, 1);
        assert_int_equal(ev_log_count(&log, AGEC_EV_CONNECT_FAILED), 1);
        assert_int_equal(ev_log_count(&log, AGEC_EV_CONNECT), 0);
        /* The refused connection was closed on the server too. */
        assert_true(pg_wait_app_count(admin, app, 0, 2000));
        /* Its slot was held until then (never more than max on the
         * server), and is free now. */
        assert_true(pool_wait_total(p, 0, 2000));
        assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
        assert_int_equal(atomic_load(&h.calls), 1);
        ev_log_destroy(&log);
    }
    PQfinish(admin);
}

typedef struct close_wait {
    ev_log *log;
    agec_close_reason reason;
    int n;
} close_wait;

static bool close_events_at_least(void *arg)
{
    close_wait *w = arg;
    pthread_mutex_lock(&w->log->mu);
    bool ok = w->log->closed[w->reason] >= w->n;
    pthread_mutex_unlock(&w->log->mu);
    return ok;
}

/* A reset_query that fails closes the connection on release (reason
 * "reset"); the next acquire opens a fresh one. */
static void test_failing_reset_query_closes(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "resetfail", app, &log);
    cfg.max = 2;
    cfg.reset_query = "SELECT 1/0";
    agec_pool *p = pool_open_ok(&cfg);
    PGconn *admin = pg_admin();
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    uint64_t first = agec_conn_id(c);
    char pid1[32];
    conn_value(c, "SELECT pg_backend_pid()", pid1, sizeof pid1);
    agec_conn_release(c);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.closed[AGEC_CLOSE_RESET], 1);
    assert_int_equal(s.total, 0);
    close_wait w = { &log, AGEC_CLOSE_RESET, 1 };
    assert_true(agec_test_wait_until(close_events_at_least, &w, 2000));
    assert_true(pg_wait_app_count(admin, app, 0, 2000));

    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    assert_int_not_equal(agec_conn_id(c), first);
    char pid2[32];
    conn_value(c, "SELECT pg_backend_pid()", pid2, sizeof pid2);
    assert_string_not_equal(pid1, pid2);
    conn_value(c, "SELECT 40 + 2", pid2, sizeof pid2);
    assert_string_equal(pid2, "42");
    agec_conn_release(c);
    s = pool_stats(p);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.closed[AGEC_CLOSE_RESET], 2);
    assert_int_equal(s.closed[AGEC_CLOSE_BROKEN], 0);
    w.n = 2;
    assert_true(agec_test_wait_until(close_events_at_least, &w, 2000));
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    PQfinish(admin);
    ev_log_destroy(&log);
}

/* A multi-host conninfo whose first host refuses connections: the pool
 * connects through the second. */
static void test_multi_host_uses_second_host(void **state)
{
    (void)state;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(agec_test_pg_conninfo(), &perr);
    if (opts == NULL)
        fail_msg("conninfo: %s", perr ? perr : "?");
    const char *port = NULL, *user = "postgres", *db = "postgres";
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    assert_non_null(port);
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1,127.0.0.1 port=1,%s user=%s dbname=%s",
             port, user, db);
    char real_port[16], user_buf[64], db_buf[64];
    snprintf(real_port, sizeof real_port, "%s", port);
    snprintf(user_buf, sizeof user_buf, "%s", user);
    snprintf(db_buf, sizeof db_buf, "%s", db);
    PQconninfoFree(opts);

    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "multihost", app, &log);
    cfg.conninfo = conninfo;
    cfg.max = 2;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c[2];
    for (int i = 0; i < 2; i++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_pool_acquire(p, &c[i], &err), &err, "acquire");
        assert_string_equal(PQport(agec_conn_pgconn(c[i])), real_port);
        char v[32];
        conn_value(c[i], "SELECT inet_server_port()", v, sizeof v);
        assert_string_equal(v, real_port);
    }
    for (int i = 0; i < 2; i++)
        agec_conn_release(c[i]);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.connect_failures, 0);
    assert_int_equal(ev_log_count(&log, AGEC_EV_CONNECT_FAILED), 0);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    ev_log_destroy(&log);

    /* Both hosts refusing: unreachable, not a hang. */
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1,127.0.0.1 port=1,2 user=%s dbname=%s",
             user_buf, db_buf);
    pool_test_config(&cfg, "multihostdown", app, NULL);
    cfg.conninfo = conninfo;
    cfg.acquire_timeout_ms = 500;
    p = pool_open_ok(&cfg);
    agec_conn *none = NULL;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_acquire(p, &none, &err), AGEC_ERR_UNREACHABLE);
    assert_null(none);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_reached_and_restored),
        cmocka_unit_test(test_killed_idle_replaced_transparently),
        cmocka_unit_test(test_lifetime_retirement),
        cmocka_unit_test(test_idle_reaping_above_min),
        cmocka_unit_test(test_leak_reported_with_file_and_line),
        cmocka_unit_test(test_on_connect_once_per_connection),
        cmocka_unit_test(test_on_connect_failure_is_init_error),
        cmocka_unit_test(test_failing_reset_query_closes),
        cmocka_unit_test(test_multi_host_uses_second_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
