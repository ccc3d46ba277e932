/*
 * Issue 10 behind our proxy (one PostgreSQL 15 cluster for the file):
 *  1. a statement's cancel that exec abandoned at the end of its grace must
 *     not reach the next borrower's statement;
 *  2. a head waiter whose deadline passes during its reconnect backoff must
 *     not leave the next waiter asleep beside a free slot;
 *  3. validation cut short by a caller's short deadline (60 ms round trip,
 *     a 30 ms acquire) is not a failed validation: no healthy connection
 *     is closed;
 *  4. a statement behind a black hole returns by its timeout_ms (+ grace),
 *     also when it sends a multi-MB parameter or the deferred DEALLOCATE of
 *     an evicted statement; and so does the loader's COPY FROM STDIN of
 *     24 MB (issue 13: it sent with libpq's blocking calls);
 *  5. a leak scan that runs while a connection is validated for its next
 *     borrower reports no leak with the previous borrower's file:line.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agec/agec.h"
#include "fault_load.h"
#include "load/copy.h"
#include "proxy.h"
#include "session/clock.h"

static fl_proxied T;
static PGconn *ADMIN;

static int group_setup(void **state)
{
    (void)state;
    if (!fl_proxied_start(&T, AGEC_SCRIPTS_DIR, "sslmode=disable")) {
        fprintf(stderr, "could not start a PostgreSQL 15 cluster behind the proxy\n");
        return -1;
    }
    ADMIN = fl_admin(&T.cl);
    return ADMIN != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(ADMIN);
    fl_proxied_stop(&T);
    return 0;
}

/* Every test starts with the proxy passing everything at once. */
static int heal(void **state)
{
    (void)state;
    fproxy_set_mode(T.px, FPROXY_PASS);
    fproxy_set_latency(T.px, 0);
    return 0;
}

static void pool_cfg(agec_pool_config *cfg, const char *tag, char app[64])
{
    fl_proxied_pool_config(&T, cfg);
    snprintf(app, 64, "agec_%s_%d", tag, (int)getpid());
    cfg->application_name = app;
    cfg->name = tag;
    cfg->connect_timeout_ms = 2000;
    cfg->acquire_timeout_ms = 5000;
}

static agec_pool *open_ok(const agec_pool_config *cfg)
{
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(cfg, &p, &err), &err, "open");
    return p;
}

static agec_pool_stats stats_of(agec_pool *p)
{
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(p, &s), AGEC_OK);
    return s;
}

typedef struct pool_n {
    agec_pool *p;
    int n;
} pool_n;

static bool idle_is(void *arg)
{
    pool_n *w = arg;
    return stats_of(w->p).idle == w->n;
}

static bool waiting_is(void *arg)
{
    pool_n *w = arg;
    agec_pool_stats s = stats_of(w->p);
    return s.waiting == w->n && s.connect_failures >= 1;
}

/* ---- 2. head waiter's deadline passes during its backoff ----------------- */

typedef struct waiter_run {
    agec_pool *p;
    int timeout_ms;
    agec_status st;
    agec_error err;
    int64_t end_ms;
} waiter_run;

static void *waiter_main(void *arg)
{
    waiter_run *w = arg;
    agec_conn *c = NULL;
    w->st = agec_pool_acquire_timeout(w->p, w->timeout_ms, &c, &w->err);
    w->end_ms = agec_test_now_ms();
    agec_conn_release(c);
    return NULL;
}

/* After the head waiter left, the next one must be served within this. */
#define SERVE_AFTER_MS 500

static void head_waiter_backoff(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_cfg(&cfg, "backoff", app);
    cfg.max = 1;
    cfg.min = min;
    cfg.breaker_threshold = 0;
    /* The first retry comes 1 to 2 s after a failure: far past W1's deadline. */
    cfg.reconnect_backoff_initial_ms = 2000;
    cfg.reconnect_backoff_max_ms = 2000;
    fproxy_set_mode(T.px, FPROXY_REFUSE);
    agec_pool *p = open_ok(&cfg);
    waiter_run w1 = { .p = p, .timeout_ms = 300, .err = AGEC_ERROR_INIT };
    pthread_t t1;
    assert_int_equal(pthread_create(&t1, NULL, waiter_main, &w1), 0);
    /* W1 failed to connect and queues in its backoff; the database is back. */
    pool_n wn = { p, 1 };
    assert_true(agec_test_wait_until(waiting_is, &wn, 5000));
    fproxy_set_mode(T.px, FPROXY_PASS);
    waiter_run w2 = { .p = p, .timeout_ms = 3000, .err = AGEC_ERROR_INIT };
    int64_t w2_start = agec_test_now_ms();
    pthread_t t2;
    assert_int_equal(pthread_create(&t2, NULL, waiter_main, &w2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    /* The bound: once W1 gave up (if it did), W2 is served promptly. */
    int64_t from = w1.st == AGEC_OK ? w2_start : w1.end_ms;
    if (w2.st != AGEC_OK || w2.end_ms - from > SERVE_AFTER_MS)
        fail_msg("min=%d: W1 (300 ms) ended with %s; W2 (3000 ms) got %s %lld ms after it: %s", min,
                 agec_status_name(w1.st), agec_status_name(w2.st), (long long)(w2.end_ms - from),
                 w2.err.message);
}

static void test_head_waiter_backoff(void **state)
{
    head_waiter_backoff(*(const int *)*state);
}

/* ---- 3. a short deadline closes no healthy connection -------------------- */

#define TEN 10

static void short_deadline_keeps_connections(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_cfg(&cfg, "shortdl", app);
    cfg.max = TEN;
    cfg.min = min;
    cfg.validate_idle_ms = 1;
    cfg.validation_timeout_ms = 5000;
    agec_pool *p = open_ok(&cfg);
    agec_conn *c[TEN];
    agec_error err = AGEC_ERROR_INIT;
    for (int i = 0; i < TEN; i++)
        agec_test_must(agec_pool_acquire(p, &c[i], &err), &err, "acquire");
    for (int i = 0; i < TEN; i++)
        agec_conn_release(c[i]);
    pool_n in = { p, TEN };
    assert_true(agec_test_wait_until(idle_is, &in, 5000));
    agec_test_sleep_ms(
        20); /* makes them stale (idle > validate_idle_ms): not a wait for an event */

    fproxy_set_latency(T.px, 30); /* 60 ms round trip */
    agec_conn *x = NULL;
    agec_status st = agec_pool_acquire_timeout(p, 30, &x, &err);
    agec_conn_release(x);
    agec_pool_stats s = stats_of(p);
    int backends = fl_count_app(ADMIN, app);
    fproxy_set_latency(T.px, 0);

    /* Later acquires with a long timeout are served by the same ten. */
    int served = 0;
    for (int i = 0; i < TEN; i++)
        if (agec_pool_acquire_timeout(p, 5000, &c[i], &err) == AGEC_OK)
            served++;
        else
            c[i] = NULL;
    agec_pool_stats after = stats_of(p);
    for (int i = 0; i < TEN; i++)
        agec_conn_release(c[i]);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    if (s.closed[AGEC_CLOSE_VALIDATION] != 0 || s.total != TEN || backends != TEN)
        fail_msg("min=%d: one acquire with a 30 ms deadline (%s) over %d stale idle connections "
                 "on a 60 ms round trip closed %llu of them as failed validations (total %d, "
                 "backends %d)",
                 min, agec_status_name(st), TEN,
                 (unsigned long long)s.closed[AGEC_CLOSE_VALIDATION], s.total, backends);
    assert_int_equal(served, TEN);
    assert_int_equal(after.opened, TEN); /* no replacement was needed */
}

static void test_short_deadline_keeps_connections(void **state)
{
    short_deadline_keeps_connections(*(const int *)*state);
}

/* ---- 4. statements behind a black hole keep their deadline --------------- */

#define STMT_TIMEOUT_MS 500
#define RETURN_BOUND_MS 3000  /* timeout + 150 ms grace, generous for a loaded machine */
#define GIVE_UP_MS 8000       /* then the test unblocks it by resetting the connection */
#define BIG_PARAM (24u << 20) /* more than the proxy holds (1 MB) plus the socket buffers */

typedef enum bh_kind { BH_UNNAMED, BH_PREPARED, BH_DEALLOCATE, BH_COPY } bh_kind;

typedef struct bh_run {
    agec_conn *c;
    bh_kind kind;
    const char *big;
    agec_status st;
    agec_error err;
    atomic_bool done;
} bh_run;

static void *bh_main(void *arg)
{
    bh_run *r = arg;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = STMT_TIMEOUT_MS;
    agec_result *res = NULL;
    if (r->kind == BH_COPY) {
        int64_t deadline = agec__now_us() + (int64_t)STMT_TIMEOUT_MS * 1000;
        r->st = agec__copy_in(r->c, "COPY bh_copy FROM STDIN", r->big, BIG_PARAM, deadline, NULL,
                              &r->err);
    } else if (r->kind == BH_DEALLOCATE) {
        /* A new statement past a full cache: the evicted one is deallocated first. */
        const char *v[1] = { "1" };
        r->st = agec_sql_exec(r->c, "SELECT $1::int + 1000000", 1, v, &o, &res, &r->err);
    } else {
        o.prepare = r->kind == BH_PREPARED;
        const char *v[1] = { r->big };
        r->st = agec_sql_exec(r->c, "SELECT length($1)", 1, v, &o, &res, &r->err);
    }
    agec_result_free(res);
    atomic_store(&r->done, true);
    return NULL;
}

static bool bh_done(void *arg)
{
    return atomic_load(&((bh_run *)arg)->done);
}

static void black_hole_statement(bh_kind kind)
{
    static const char *const names[] = { "unnamed statement with a 24 MB parameter",
                                         "prepared statement with a 24 MB parameter",
                                         "DEALLOCATE of an evicted statement",
                                         "COPY FROM STDIN of 24 MB" };
    agec_pool_config cfg;
    char app[64];
    pool_cfg(&cfg, "blackhole", app);
    cfg.max = 1;
    cfg.reset_timeout_ms = 500;
    agec_pool *p = open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    const char *small[1] = { "x" };
    agec_result *res = NULL;
    if (kind == BH_PREPARED) {
        agec_test_must(agec_sql_exec(c, "SELECT length($1)", 1, small, NULL, &res, &err), &err,
                       "prepare");
        agec_result_free(res);
    }
    if (kind == BH_DEALLOCATE) {
        char sql[64];
        const char *v[1] = { "1" };
        for (int i = 0; i < AGEC_STMT_CACHE_MAX; i++) { /* fill the cache */
            snprintf(sql, sizeof sql, "SELECT $1::int + %d", i);
            agec_test_must(agec_sql_exec(c, sql, 1, v, NULL, &res, &err), &err, "fill");
            agec_result_free(res);
        }
    }
    char *big = NULL;
    if (kind != BH_DEALLOCATE) {
        big = malloc(BIG_PARAM + 1);
        assert_non_null(big);
        memset(big, 'a', BIG_PARAM);
        if (kind == BH_COPY) /* rows of a one-column table */
            for (size_t i = 1023; i < BIG_PARAM; i += 1024)
                big[i] = '\n';
        big[BIG_PARAM] = '\0';
    }
    if (kind == BH_COPY) {
        agec_test_must(
            agec_sql_exec(c, "CREATE TEMP TABLE bh_copy (s text)", 0, NULL, NULL, &res, &err), &err,
            "create");
        agec_result_free(res);
        res = NULL;
    }
    bh_run r = { .c = c, .kind = kind, .big = big, .err = AGEC_ERROR_INIT };
    atomic_init(&r.done, false);
    fproxy_set_mode(T.px, FPROXY_STALL);
    int64_t t0 = agec_test_now_ms();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bh_main, &r), 0);
    bool returned = agec_test_wait_until(bh_done, &r, GIVE_UP_MS);
    int64_t took = agec_test_now_ms() - t0;
    if (!returned)
        (void)fproxy_reset_all(T.px); /* unblock it: the send fails */
    pthread_join(th, NULL);
    (void)fproxy_reset_all(T.px); /* what the black hole held is of no use now */
    fproxy_set_mode(T.px, FPROXY_PASS);
    agec_conn_release_broken(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    free(big);
    if (!returned)
        fail_msg("%s behind a black hole, timeout_ms %d: still blocked after %d ms (bound %d ms)",
                 names[kind], STMT_TIMEOUT_MS, GIVE_UP_MS, RETURN_BOUND_MS);
    if (took > RETURN_BOUND_MS)
        fail_msg("%s behind a black hole, timeout_ms %d: returned after %lld ms (bound %d ms)",
                 names[kind], STMT_TIMEOUT_MS, (long long)took, RETURN_BOUND_MS);
    assert_int_not_equal(r.st, AGEC_OK);
    if (kind == BH_COPY)
        assert_int_equal(r.st, AGEC_ERR_TIMEOUT);
}

static void test_black_hole_big_param_unnamed(void **state)
{
    (void)state;
    black_hole_statement(BH_UNNAMED);
}

static void test_black_hole_big_param_prepared(void **state)
{
    (void)state;
    black_hole_statement(BH_PREPARED);
}

static void test_black_hole_copy(void **state)
{
    (void)state;
    black_hole_statement(BH_COPY);
}

static void test_black_hole_deferred_deallocate(void **state)
{
    (void)state;
    black_hole_statement(BH_DEALLOCATE);
}

/* ---- 5. no false leak report during validation --------------------------- */

typedef struct leak_log {
    atomic_int suspected;
    atomic_int returned;
    atomic_int line; /* of the latest report */
} leak_log;

static void leak_cb(const agec_pool_event *ev, void *user)
{
    leak_log *l = user;
    if (ev->type == AGEC_EV_LEAK_SUSPECTED) {
        atomic_fetch_add(&l->suspected, 1);
        atomic_store(&l->line, ev->line);
    } else if (ev->type == AGEC_EV_LEAK_RETURNED) {
        atomic_fetch_add(&l->returned, 1);
    }
}

static void no_leak_report_during_validation(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_cfg(&cfg, "leakval", app);
    leak_log l;
    atomic_init(&l.suspected, 0);
    atomic_init(&l.returned, 0);
    atomic_init(&l.line, 0);
    cfg.on_event = leak_cb;
    cfg.event_user = &l;
    cfg.max = 1;
    cfg.min = min;
    cfg.validate_idle_ms = 0; /* every acquire checks the connection: one round trip */
    cfg.leak_threshold_ms = 80;
    agec_pool *p = open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "connect");
    agec_conn_release(c);

    fproxy_set_latency(T.px, 150); /* each check now takes 300 ms */
    /* Borrower A holds it for no time at all; B's check spans A's threshold. */
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "A");
    int a_line = __LINE__ - 1;
    agec_conn_release(c);
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "B");
    agec_conn_release(c);
    fproxy_set_latency(T.px, 0);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    if (atomic_load(&l.suspected) != 0)
        fail_msg("min=%d: %d leak report(s) (line %d; borrower A acquired at line %d, held it for "
                 "no time) and %d 'returned' event(s): a borrow was reported while the next one "
                 "was being validated",
                 min, atomic_load(&l.suspected), atomic_load(&l.line), a_line,
                 atomic_load(&l.returned));
}

static void test_no_leak_report_during_validation(void **state)
{
    no_leak_report_during_validation(*(const int *)*state);
}

/* ---- 1. exec's abandoned cancel must not reach the next borrower --------- */

/* A's statement (pg_sleep 0.6 s, timeout_ms 300) outlives the 150 ms grace
 * because its cancel request is held by the proxy for 1 s (the latency is
 * on while the request is read, off again for everything after); exec gives
 * up and leaves the request in flight. The next borrower's 2 s statement is
 * running when that request arrives: it must not be cancelled. */
typedef struct stuck_run {
    agec_conn *c;
    agec_status st;
    agec_error err;
    atomic_bool done;
} stuck_run;

static void *stuck_main(void *arg)
{
    stuck_run *r = arg;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 300;
    agec_result *res = NULL;
    r->st = agec_sql_exec(r->c, "SELECT pg_sleep(0.6)", 0, NULL, &o, &res, &r->err);
    agec_result_free(res);
    atomic_store(&r->done, true);
    return NULL;
}

static bool stuck_done(void *arg)
{
    return atomic_load(&((stuck_run *)arg)->done);
}

static bool sleep_active(void *arg)
{
    (void)arg;
    return fl_int(ADMIN, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT "
                         "pg_sleep(0.6)' AND state = 'active'") == 1;
}

static void abandoned_cancel(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_cfg(&cfg, "abandon", app);
    cfg.max = 1;
    cfg.min = min;
    cfg.reset_timeout_ms = 5000;
    agec_pool *p = open_ok(&cfg);
    agec_error err = AGEC_ERROR_INIT;
    stuck_run r = { .st = AGEC_OK, .err = AGEC_ERROR_INIT };
    atomic_init(&r.done, false);
    agec_test_must(agec_pool_acquire(p, &r.c, &err), &err, "acquire A");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stuck_main, &r), 0);
    assert_true(agec_test_wait_until(sleep_active, NULL, 5000));
    fproxy_set_latency(T.px, 1000); /* what is read now (the cancel) waits 1 s */
    assert_true(agec_test_wait_until(stuck_done, &r, 5000));
    fproxy_set_latency(T.px, 0);
    pthread_join(th, NULL);
    agec_conn_release(r.c);

    agec_conn *b = NULL;
    agec_test_must(agec_pool_acquire(p, &b, &err), &err, "acquire B");
    agec_result *res = NULL;
    int64_t b0 = agec_test_now_ms();
    agec_status st = agec_sql_exec(b, "SELECT pg_sleep(2)", 0, NULL, NULL, &res, &err);
    int64_t b_ms = agec_test_now_ms() - b0;
    agec_result_free(res);
    agec_conn_release(b);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    if (st != AGEC_OK)
        fail_msg("min=%d: A's statement ended with %s (%s); the next borrower's pg_sleep(2) "
                 "failed after %lld ms: %s [%s] %s",
                 min, agec_status_name(r.st), r.err.message, (long long)b_ms, agec_status_name(st),
                 err.sqlstate, err.message);
    assert_int_equal(r.st, AGEC_ERR_TIMEOUT);
}

static void test_abandoned_cancel(void **state)
{
    abandoned_cancel(*(const int *)*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AGEC_TEST_MIN(test_abandoned_cancel, 0, heal),
        AGEC_TEST_MIN(test_abandoned_cancel, 1, heal),
        AGEC_TEST_MIN(test_head_waiter_backoff, 0, heal),
        AGEC_TEST_MIN(test_head_waiter_backoff, 1, heal),
        AGEC_TEST_MIN(test_short_deadline_keeps_connections, 0, heal),
        AGEC_TEST_MIN(test_short_deadline_keeps_connections, 10, heal),
        cmocka_unit_test_setup(test_black_hole_big_param_unnamed, heal),
        cmocka_unit_test_setup(test_black_hole_big_param_prepared, heal),
        cmocka_unit_test_setup(test_black_hole_deferred_deallocate, heal),
        cmocka_unit_test_setup(test_black_hole_copy, heal),
        AGEC_TEST_MIN(test_no_leak_report_during_validation, 0, heal),
        AGEC_TEST_MIN(test_no_leak_report_during_validation, 1, heal),
    };
    if (getenv("AGEC_TEST_FILTER") != NULL) /* e.g. AGEC_TEST_FILTER='*min0' */
        cmocka_set_test_filter(getenv("AGEC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
