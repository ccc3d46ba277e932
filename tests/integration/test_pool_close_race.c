/*
 * Issue 10, items 4 and 6 on PostgreSQL 15 (public API only): close is
 * bounded while a connection is being set up (the maintenance thread's
 * session init; an acquirer's connect), no event callback runs after close
 * returned, and a monitoring thread or an acquirer racing close touches no
 * freed memory (ASan / TSan must stay clean). min = 0 and min > 0.
 *
 * The racing tests keep within the contract (no call after close has
 * returned): a borrowed connection holds close in its drain while the racer
 * calls stats or acquire, and the racer stops before that connection goes
 * back. On the previous pool, stats taken while close freed the pool read
 * freed memory.
 */
#include "test_pool_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 4. close while the maintenance thread runs the session init ---------- */

#define CLOSE_BOUND_MS 1000

typedef struct app_active {
    PGconn *admin;
    const char *app;
    const char *query;
} app_active;

/* A backend of this application_name is running `query`. */
static bool init_running(void *arg)
{
    app_active *a = arg;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND query = "
             "'%s' AND state = 'active'",
             a->app, a->query);
    return pg_int(a->admin, sql) >= 1;
}

static void test_close_during_maintenance_init(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "closeinit", app, NULL);
    cfg.max = 2;
    cfg.min = 1;
    cfg.connect_timeout_ms = 20000; /* the init may take its 5 s: only close must be quick */
    cfg.init_sql = "SELECT pg_sleep(5)";
    PGconn *admin = pg_admin();
    agec_pool *p = pool_open_ok(&cfg);
    app_active aa = { admin, app, "SELECT pg_sleep(5)" };
    assert_true(agec_test_wait_until(init_running, &aa, 10000));
    int64_t t0 = agec_test_now_ms();
    agec_status st = agec_pool_close(p, 0, NULL);
    int64_t took = agec_test_now_ms() - t0;
    /* The abandoned backend goes away (its socket was closed). */
    bool gone = pg_wait_app_count(admin, app, 0, 10000);
    PQfinish(admin);
    if (took >= CLOSE_BOUND_MS)
        fail_msg("agec_pool_close(p, 0) took %lld ms while the maintenance thread ran "
                 "init_sql 'SELECT pg_sleep(5)' (bound %d ms)",
                 (long long)took, CLOSE_BOUND_MS);
    assert_int_equal(st, AGEC_OK);
    assert_true(gone);
}

/* ---- 4. no event after close returned ------------------------------------ */

typedef struct ev_after {
    atomic_bool closed; /* agec_pool_close has returned */
    atomic_int after;   /* events delivered after that */
    atomic_int before;
    atomic_int last_type;
} ev_after;

static void ev_after_cb(const agec_pool_event *ev, void *user)
{
    ev_after *e = user;
    if (atomic_load(&e->closed)) {
        atomic_fetch_add(&e->after, 1);
        atomic_store(&e->last_type, (int)ev->type);
    } else {
        atomic_fetch_add(&e->before, 1);
    }
}

typedef struct acquirer {
    agec_pool *p;
    agec_status st;
    agec_error err;
} acquirer;

static void *acquirer_main(void *arg)
{
    acquirer *a = arg;
    agec_conn *c = NULL;
    a->st = agec_pool_acquire_timeout(a->p, 10000, &c, &a->err);
    if (a->st == AGEC_OK)
        agec_conn_release(c);
    return NULL;
}

static void no_event_after_close(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "evclose", app, NULL);
    ev_after e;
    atomic_init(&e.closed, false);
    atomic_init(&e.after, 0);
    atomic_init(&e.before, 0);
    atomic_init(&e.last_type, -1);
    cfg.on_event = ev_after_cb;
    cfg.event_user = &e;
    cfg.max = min + 1;
    cfg.min = min;
    cfg.connect_timeout_ms = 20000;
    /* Every new connection takes 0.5 s to set up: the acquirer's connect is
     * still in progress when close runs. */
    cfg.init_sql = "SELECT pg_sleep(0.5)";
    PGconn *admin = pg_admin();
    agec_pool *p = pool_open_ok(&cfg);
    /* With min > 0, let the maintenance thread open its connections, then
     * keep them borrowed: the acquirer below must open one of its own. */
    assert_true(pool_wait_idle(p, min, 10000));
    agec_conn *held[4] = { NULL };
    agec_error err = AGEC_ERROR_INIT;
    for (int i = 0; i < min; i++)
        agec_test_must(agec_pool_acquire(p, &held[i], &err), &err, "hold");
    acquirer a = { .p = p, .st = AGEC_OK, .err = AGEC_ERROR_INIT };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acquirer_main, &a), 0);
    app_active aa = { admin, app, "SELECT pg_sleep(0.5)" };
    assert_true(agec_test_wait_until(init_running, &aa, 10000));
    for (int i = 0; i < min; i++)
        agec_conn_release(held[i]);
    agec_status st = agec_pool_close(p, 0, NULL);
    atomic_store(&e.closed, true);
    pthread_join(th, NULL);
    assert_true(pg_wait_app_count(admin, app, 0, 10000));
    PQfinish(admin);
    assert_int_equal(st, AGEC_OK);
    assert_int_not_equal(a.st, AGEC_OK);
    if (atomic_load(&e.after) != 0)
        fail_msg("min=%d: %d event(s) delivered after agec_pool_close returned (the last: %s); "
                 "the acquirer got %s",
                 min, atomic_load(&e.after),
                 agec_pool_event_name((agec_pool_event_type)atomic_load(&e.last_type)),
                 agec_status_name(a.st));
}

static void test_no_event_after_close(void **state)
{
    no_event_after_close(*(const int *)*state);
}

/* ---- 6. a monitoring thread and an acquirer racing close ----------------- */

#define RACE_ROUNDS 60

typedef struct racer {
    agec_pool *p;
    atomic_bool stop;
    atomic_int calls, calls_closing; /* all calls; those made after close began */
    atomic_bool *close_started;
    bool acquire;    /* acquire + release instead of stats */
    bool saw_closed; /* an acquire already failed with AGEC_ERR_POOL_CLOSED */
    int bad;         /* stats that broke an invariant, or unexpected statuses */
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    while (!atomic_load(&r->stop)) {
        bool during = atomic_load(r->close_started);
        if (r->acquire) {
            agec_conn *c = NULL;
            agec_status st = agec_pool_acquire_timeout(r->p, 0, &c, NULL);
            if (st == AGEC_OK)
                agec_conn_release(c);
            else if (st != AGEC_ERR_POOL_CLOSED && st != AGEC_ERR_POOL_EXHAUSTED)
                r->bad++;
            if (st == AGEC_OK && r->saw_closed)
                r->bad++; /* close has begun: no acquire may be served after that */
            if (st == AGEC_ERR_POOL_CLOSED)
                r->saw_closed = true;
        } else {
            agec_pool_stats s;
            if (agec_pool_stats_get(r->p, &s) == AGEC_OK &&
                (s.total != s.idle + s.in_use + s.opening + s.checking + s.closing ||
                 s.total > s.max))
                r->bad++;
        }
        atomic_fetch_add(&r->calls, 1);
        if (during)
            atomic_fetch_add(&r->calls_closing, 1);
    }
    return NULL;
}

static bool racer_started(void *arg)
{
    racer *r = arg;
    return atomic_load(&r->calls) > 0;
}

static bool racer_overlapped(void *arg)
{
    racer *r = arg;
    return atomic_load(&r->calls_closing) >= 20;
}

typedef struct closer {
    agec_pool *p;
    agec_status st;
} closer;

static void *closer_main(void *arg)
{
    closer *k = arg;
    k->st = agec_pool_close(k->p, 5000, NULL);
    return NULL;
}

/* One racer (stats or acquire) against close, RACE_ROUNDS times. Calls
 * overlap close for real: a borrowed connection holds close in its drain
 * while the racer runs, and the racer stops before that connection is
 * released (after close has returned, no call is allowed: the contract). */
static void race_close(int min, bool acquire)
{
    int bad = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        agec_pool_config cfg;
        char app[64];
        pool_test_config(&cfg, "closerace", app, NULL);
        cfg.max = 2;
        cfg.min = min;
        agec_pool *p = pool_open_ok(&cfg);
        agec_conn *held = NULL;
        assert_int_equal(agec_pool_acquire(p, &held, NULL), AGEC_OK);
        atomic_bool close_started;
        atomic_init(&close_started, false);
        racer r = { .p = p, .close_started = &close_started, .acquire = acquire };
        atomic_init(&r.stop, false);
        atomic_init(&r.calls, 0);
        atomic_init(&r.calls_closing, 0);
        pthread_t th, ct;
        assert_int_equal(pthread_create(&th, NULL, racer_main, &r), 0);
        assert_true(agec_test_wait_until(racer_started, &r, 10000));
        closer k = { .p = p, .st = AGEC_OK };
        atomic_store(&close_started, true);
        assert_int_equal(pthread_create(&ct, NULL, closer_main, &k), 0);
        assert_true(agec_test_wait_until(racer_overlapped, &r, 10000));
        atomic_store(&r.stop, true);
        pthread_join(th, NULL);
        agec_conn_release(held); /* close returns now */
        pthread_join(ct, NULL);
        bad += r.bad;
        assert_int_equal(k.st, AGEC_OK);
    }
    assert_int_equal(bad, 0);
}

static void test_stats_racing_close(void **state)
{
    race_close(*(const int *)*state, false);
}

static void test_acquire_racing_close(void **state)
{
    race_close(*(const int *)*state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_during_maintenance_init),
        AGEC_TEST_MIN(test_no_event_after_close, 0, NULL),
        AGEC_TEST_MIN(test_no_event_after_close, 1, NULL),
        AGEC_TEST_MIN(test_stats_racing_close, 0, NULL),
        AGEC_TEST_MIN(test_stats_racing_close, 1, NULL),
        AGEC_TEST_MIN(test_acquire_racing_close, 0, NULL),
        AGEC_TEST_MIN(test_acquire_racing_close, 1, NULL),
    };
    if (getenv("AGEC_TEST_FILTER") != NULL) /* e.g. AGEC_TEST_FILTER='*min0' */
        cmocka_set_test_filter(getenv("AGEC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
