/*
 * Issue 22: the pool with its server host frozen (our proxy holding every
 * byte, a black hole) or refusing, PostgreSQL 15 behind it.
 *
 *  5. A slot freed while the breaker is open does not fail the waiters one
 *     after another: with a connection in use (about to come back), queued
 *     acquires wait for it instead of failing fast.
 *  4. Connections past their idle timeout are closed without waiting
 *     connect_timeout_ms each: with the host frozen, N of them do not stall
 *     the maintenance thread for N x connect_timeout_ms, and
 *     agec_pool_close(p, 0) returns at once.
 * 11. A check cut short by its acquirer's deadline and finished late by a
 *     busy maintenance thread counts the answer already in the socket: a
 *     healthy connection is not closed as a failed validation.
 *     Its acquire fails with AGEC_ERR_UNREACHABLE saying so, not "pool
 *     exhausted" (item 13).
 * 12. A connection past its lifetime is never handed out, also while the
 *     maintenance thread (which retires it) is busy.
 * 10. Close cancels what borrowed connections run, but starts no new cancel
 *     request for a connection while its previous one is still under way:
 *     behind a black hole, one blocked request per connection at most.
 *  6. A validation cut short at its acquirer's deadline, whose thread gets
 *     the lock back only after close has joined the maintenance thread
 *     (which drains `checking` on its way out), still closes the
 *     connection: nothing is left in `checking` for nobody to close (the
 *     PGconn, its socket and its server process leaked). The thread is
 *     held at that point by a link-time wrapper of agec__session_validate
 *     (-Wl,--wrap: the real validation runs against the server, then the
 *     thread waits for the test), and close's join is seen through a
 *     wrapper of agec__maint_join.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "agec/agec.h"
#include "fault_load.h"
#include "proxy.h"

#define CONNECT_MS 600
#define NCONN 4

typedef struct closing_wait {
    agec_pool *pool;
    int n;
} closing_wait;

static bool closing_reached(void *arg)
{
    closing_wait *w = arg;
    agec_pool_stats s;
    return agec_pool_stats_get(w->pool, &s) == AGEC_OK && s.closed[AGEC_CLOSE_IDLE] >= 1;
}

static void test_idle_expiry_behind_black_hole(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = NCONN;
    cfg.min = 0;
    cfg.connect_timeout_ms = CONNECT_MS;
    cfg.idle_timeout_ms = 300;
    cfg.validate_idle_ms = -1;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c[NCONN];
    for (int i = 0; i < NCONN; i++)
        agec_test_must(agec_pool_acquire(pool, &c[i], &err), &err, "acquire");
    for (int i = 0; i < NCONN; i++)
        agec_conn_release(c[i]);
    fproxy_set_mode(t.px, FPROXY_STALL);
    closing_wait w = { .pool = pool, .n = NCONN };
    assert_true(agec_test_wait_until(closing_reached, &w, 5000));
    /* All four went idle at once and expire together. */
    int64_t t0 = agec_test_now_ms();
    err = (agec_error)AGEC_ERROR_INIT;
    (void)agec_pool_close(pool, 0, &err);
    int64_t took = agec_test_now_ms() - t0;
    fproxy_set_mode(t.px, FPROXY_PASS);
    fl_proxied_stop(&t);
    if (took > CONNECT_MS)
        fail_msg("agec_pool_close(p, 0) took %lld ms behind a black hole: the maintenance thread "
                 "closed %d idle connections one after another, waiting up to "
                 "connect_timeout_ms (%d) each",
                 (long long)took, NCONN, CONNECT_MS);
}

typedef struct runner {
    agec_conn *conn;
} runner;

static void *run_sleep(void *arg)
{
    runner *r = arg;
    (void)PQsendQuery(agec_conn_pgconn(r->conn), "SELECT pg_sleep(30)");
    return NULL;
}

static bool sleep_running(void *arg)
{
    return fl_int(arg, "SELECT count(*) FROM pg_stat_activity "
                       "WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'") == 1;
}

static int THREADS_BEFORE;

static bool threads_back(void *arg)
{
    (void)arg;
    return agec_test_thread_count() <= THREADS_BEFORE;
}

static void test_close_cancel_threads_bounded(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    PGconn *admin = fl_admin(&t.cl);
    assert_non_null(admin);
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 1;
    cfg.connect_timeout_ms = CONNECT_MS;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    runner r;
    agec_test_must(agec_pool_acquire(pool, &r.conn, &err), &err, "acquire");
    run_sleep(&r);
    assert_true(agec_test_wait_until(sleep_running, admin, 10000));
    THREADS_BEFORE = agec_test_thread_count();
    fproxy_set_mode(t.px, FPROXY_STALL);
    /* 1 s of drain, a cancel every 100 ms in the last 500 ms. */
    err = (agec_error)AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_close(pool, 1000, &err), AGEC_ERR_TIMEOUT);
    int extra = agec_test_thread_count() - THREADS_BEFORE;
    fproxy_set_mode(t.px, FPROXY_PASS);
    agec_conn_release_broken(r.conn);
    /* Healed: the held requests are answered and their threads end. */
    assert_true(agec_test_wait_until(threads_back, NULL, 15000));
    PQfinish(admin);
    fl_proxied_stop(&t);
    /* The maintenance thread is gone (-1); one request may still wait. */
    if (extra > 0)
        fail_msg("%d cancel request threads left blocked behind the black hole after close, for "
                 "one borrowed connection (expected at most 1)",
                 extra + 1);
}

typedef struct acq_run {
    agec_pool *pool;
    agec_status st;
    agec_error err;
    atomic_bool done;
} acq_run;

/* Both callers are queued, or have failed already. */
static bool callers_settled(void *arg)
{
    acq_run *r = arg;
    agec_pool_stats s;
    int done = atomic_load(&r[0].done) + atomic_load(&r[1].done);
    return agec_pool_stats_get(r[0].pool, &s) == AGEC_OK && s.waiting + done == 2;
}

static void *acquire_main(void *arg)
{
    acq_run *r = arg;
    agec_conn *c = NULL;
    r->st = agec_pool_acquire_timeout(r->pool, 5000, &c, &r->err);
    if (r->st == AGEC_OK)
        agec_conn_release(c);
    atomic_store(&r->done, true);
    return NULL;
}

/* The breaker is open and no attempt is under way. */
static bool breaker_opened(void *arg)
{
    agec_pool_stats s;
    return agec_pool_stats_get(arg, &s) == AGEC_OK && s.breaker == AGEC_BREAKER_OPEN &&
           s.opening == 0;
}

static void test_breaker_open_with_free_slot(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 2;
    cfg.connect_timeout_ms = CONNECT_MS;
    cfg.breaker_threshold = 1;
    cfg.breaker_open_ms = 30000;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *a = NULL, *b = NULL;
    agec_test_must(agec_pool_acquire(pool, &a, &err), &err, "acquire a");
    agec_test_must(agec_pool_acquire(pool, &b, &err), &err, "acquire b");
    /* Two callers queue: the pool is exhausted. */
    acq_run r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (acq_run){ .pool = pool, .st = AGEC_ERR_STATE, .err = AGEC_ERROR_INIT };
        atomic_init(&r[i].done, false);
        assert_int_equal(pthread_create(&th[i], NULL, acquire_main, &r[i]), 0);
    }
    assert_true(agec_test_wait_until(callers_settled, r, 5000));
    /* New connections are refused; b goes broken: its slot frees, the
     * oldest waiter tries it, is refused, and the breaker opens. */
    fproxy_set_mode(t.px, FPROXY_REFUSE);
    agec_conn_release_broken(b);
    assert_true(agec_test_wait_until(breaker_opened, pool, 5000));
    /* a comes back: the waiters share it, one after the other. */
    agec_conn_release(a);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    fproxy_set_mode(t.px, FPROXY_PASS);
    assert_int_equal(agec_pool_close(pool, 1000, NULL), AGEC_OK);
    fl_proxied_stop(&t);
    for (int i = 0; i < 2; i++)
        if (r[i].st != AGEC_OK)
            fail_msg("waiter %d failed with %s (%s) though a connection in use came back within "
                     "its deadline: a slot freed while the breaker is open failed the queue",
                     i, agec_status_name(r[i].st), r[i].err.message);
}

/* ---- a gate that holds the maintenance thread in an event callback ------ */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    agec_pool_event_type type; /* the event that blocks (its first occurrence) */
    bool blocked, open;
} gate;

static void gate_init(gate *g, agec_pool_event_type type)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->type = type;
    g->blocked = g->open = false;
}

static void gate_cb(const agec_pool_event *ev, void *user)
{
    gate *g = user;
    pthread_mutex_lock(&g->mu);
    if (ev->type == g->type && !g->open) {
        g->blocked = true;
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

static bool gate_blocked(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    bool b = g->blocked;
    pthread_mutex_unlock(&g->mu);
    return b;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* Wait until ms have passed since t0 (a point in time the test needs to
 * be past, not synchronisation with a thread). */
static void wait_past(int64_t t0, int ms)
{
    while (agec_test_now_ms() - t0 < ms)
        agec_test_sleep_ms(10);
}

static bool checks_done(void *arg)
{
    agec_pool_stats s;
    return agec_pool_stats_get(arg, &s) == AGEC_OK && s.checking == 0;
}

static void test_late_check_counts_answer_in_socket(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, "sslmode=disable"))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    static gate g;
    gate_init(&g, AGEC_EV_LEAK_SUSPECTED);
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 3;
    cfg.validate_idle_ms = 0; /* always checked */
    cfg.validation_timeout_ms = 200;
    cfg.leak_threshold_ms = 50;
    cfg.on_event = gate_cb;
    cfg.event_user = &g;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *v = NULL, *l = NULL, *c = NULL;
    agec_test_must(agec_pool_acquire(pool, &v, &err), &err, "acquire v");
    agec_test_must(agec_pool_acquire(pool, &l, &err), &err, "acquire l");
    agec_conn_release(v); /* v idle, l held */
    /* l's leak report holds the maintenance thread in the callback. */
    assert_true(agec_test_wait_until(gate_blocked, &g, 5000));
    fproxy_set_latency(t.px, 60);
    int64_t t0 = agec_test_now_ms();
    err = (agec_error)AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire_timeout(pool, 30, &c, &err);
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(pool, &s), AGEC_OK);
    assert_int_equal(s.checking, 1); /* v: its check was cut short */
    wait_past(t0, 200 + 200);        /* past the check's deadline; the answer is in */
    gate_open(&g);
    assert_true(agec_test_wait_until(checks_done, pool, 5000));
    assert_int_equal(agec_pool_stats_get(pool, &s), AGEC_OK);
    fproxy_set_latency(t.px, 0);
    agec_conn_release(l);
    assert_int_equal(agec_pool_close(pool, 1000, NULL), AGEC_OK);
    fl_proxied_stop(&t);
    gate_destroy(&g);
    /* Item 13: not "pool exhausted" (nothing was in use). */
    if (st != AGEC_ERR_UNREACHABLE || strstr(err.message, "being checked") == NULL)
        fail_msg("an acquire whose check was cut short failed with %s: %s", agec_status_name(st),
                 err.message);
    if (s.validation_failures != 0 || s.closed[AGEC_CLOSE_VALIDATION] != 0)
        fail_msg("a check finished past its deadline closed a healthy connection whose answer "
                 "was already in the socket (%llu validation failures)",
                 (unsigned long long)s.validation_failures);
}

static void test_expired_idle_never_handed_out(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    static gate g;
    gate_init(&g, AGEC_EV_LEAK_SUSPECTED);
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 3;
    cfg.max_lifetime_ms = 500;
    cfg.lifetime_jitter_pct = 0;
    cfg.validate_idle_ms = -1;
    cfg.leak_threshold_ms = 50;
    cfg.on_event = gate_cb;
    cfg.event_user = &g;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *x = NULL, *l = NULL, *c = NULL;
    int64_t t0 = agec_test_now_ms();
    agec_test_must(agec_pool_acquire(pool, &x, &err), &err, "acquire x");
    uint64_t xid = agec_conn_id(x);
    agec_test_must(agec_pool_acquire(pool, &l, &err), &err, "acquire l");
    uint64_t lid = agec_conn_id(l);
    agec_conn_release(x); /* x idle, l held */
    /* The maintenance thread is held in l's leak report: it cannot retire x. */
    assert_true(agec_test_wait_until(gate_blocked, &g, 5000));
    wait_past(t0, 500 + 100);
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire after the lifetime");
    uint64_t got = agec_conn_id(c);
    agec_conn_release(c);
    gate_open(&g);
    agec_conn_release(l);
    assert_int_equal(agec_pool_close(pool, 1000, NULL), AGEC_OK);
    fl_proxied_stop(&t);
    gate_destroy(&g);
    assert_int_not_equal(got, lid);
    if (got == xid)
        fail_msg("connection %llu was handed out past its max_lifetime_ms (500)",
                 (unsigned long long)got);
}

/* ---- item 6: a check cut short as close joins the maintenance thread ---- */

agec_status __real_agec__session_validate(PGconn *pg, int64_t deadline_us,
                                          const atomic_bool *abort_flag, agec_error *err);
agec_status __wrap_agec__session_validate(PGconn *pg, int64_t deadline_us,
                                          const atomic_bool *abort_flag, agec_error *err);
void __real_agec__maint_join(agec_pool *p);
void __wrap_agec__maint_join(agec_pool *p);

/* 0: pass through; 1: hold the next validation that times out; 2: held;
 * 3: let it go. */
static atomic_int HOLD_CHECK;
static atomic_bool MAINT_JOINED;

agec_status __wrap_agec__session_validate(PGconn *pg, int64_t deadline_us,
                                          const atomic_bool *abort_flag, agec_error *err)
{
    agec_status st = __real_agec__session_validate(pg, deadline_us, abort_flag, err);
    int armed = 1;
    if (st == AGEC_ERR_TIMEOUT && atomic_compare_exchange_strong(&HOLD_CHECK, &armed, 2)) {
        int64_t until = agec_test_now_ms() + 20000; /* a hang check, not a timing */
        while (atomic_load(&HOLD_CHECK) != 3 && agec_test_now_ms() < until)
            agec_test_sleep_ms(1);
    }
    return st;
}

void __wrap_agec__maint_join(agec_pool *p)
{
    __real_agec__maint_join(p);
    atomic_store(&MAINT_JOINED, true);
}

static bool check_held(void *arg)
{
    (void)arg;
    return atomic_load(&HOLD_CHECK) == 2;
}

static bool maint_joined(void *arg)
{
    (void)arg;
    return atomic_load(&MAINT_JOINED);
}

static bool proxy_idle(void *arg)
{
    return fproxy_open_count(arg) == 0;
}

static void *acquire_30ms(void *arg)
{
    acq_run *r = arg;
    agec_conn *c = NULL;
    r->st = agec_pool_acquire_timeout(r->pool, 30, &c, &r->err);
    if (r->st == AGEC_OK)
        agec_conn_release(c);
    return NULL;
}

typedef struct closer {
    agec_pool *pool;
    agec_status st;
} closer;

static void *close_main(void *arg)
{
    closer *k = arg;
    k->st = agec_pool_close(k->pool, 2000, NULL);
    return NULL;
}

static void test_check_cut_short_during_close(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, "sslmode=disable"))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 1;
    cfg.validate_idle_ms = 0; /* always checked */
    cfg.validation_timeout_ms = 5000;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *v = NULL;
    agec_test_must(agec_pool_acquire(pool, &v, &err), &err, "acquire v");
    agec_conn_release(v); /* idle */
    fproxy_set_latency(t.px, 100);
    atomic_store(&HOLD_CHECK, 1);
    atomic_store(&MAINT_JOINED, false);
    acq_run a = { .pool = pool, .st = AGEC_ERR_SYSTEM, .err = AGEC_ERROR_INIT };
    pthread_t at, ct;
    assert_int_equal(pthread_create(&at, NULL, acquire_30ms, &a), 0);
    /* Its check of v timed out at its 30 ms deadline; the lock not yet retaken. */
    assert_true(agec_test_wait_until(check_held, NULL, 10000));
    closer k = { pool, AGEC_ERR_SYSTEM };
    assert_int_equal(pthread_create(&ct, NULL, close_main, &k), 0);
    assert_true(agec_test_wait_until(maint_joined, NULL, 10000));
    atomic_store(&HOLD_CHECK, 3); /* now it retakes the lock */
    assert_int_equal(pthread_join(at, NULL), 0);
    assert_int_equal(pthread_join(ct, NULL), 0);
    fproxy_set_latency(t.px, 0);
    bool closed = agec_test_wait_until(proxy_idle, t.px, 5000);
    int left = fproxy_open_count(t.px);
    fl_proxied_stop(&t);
    atomic_store(&HOLD_CHECK, 0);
    assert_int_equal(k.st, AGEC_OK);
    assert_int_not_equal(a.st, AGEC_OK);
    if (!closed)
        fail_msg("%d connection(s) still open 5 s after close: a check cut short as close joined "
                 "the maintenance thread was left in `checking`, where nobody closes it",
                 left);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_open_with_free_slot),
        cmocka_unit_test(test_late_check_counts_answer_in_socket),
        cmocka_unit_test(test_expired_idle_never_handed_out),
        cmocka_unit_test(test_idle_expiry_behind_black_hole),
        cmocka_unit_test(test_close_cancel_threads_bounded),
        cmocka_unit_test(test_check_cut_short_during_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
