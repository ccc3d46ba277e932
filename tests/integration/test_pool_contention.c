/*
 * Issue 10, the pool under contention, on PostgreSQL 15 (public API only):
 *  1. a borrower's cleanup (the cancel release starts for a statement whose
 *     results were not all read) must never reach the next borrower's
 *     statement;
 *  2. slots freed at the same moment are all used while callers wait: a
 *     waiter is served within a bound after a slot frees;
 *  4. a connection given up during its set-up (the caller's deadline) keeps
 *     its slot until its server process is gone: never more than max
 *     backends, however short the callers' deadlines;
 *  5. no prepared statements pile up on the server (a reset_query that does
 *     not deallocate; names evicted inside a long transaction), and a
 *     transaction timeout does not carry over to the next borrower.
 * Each runs with min = 0 and with min > 0.
 */
#include "test_pool_util.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. cleanup hits the next borrower ---------------------------------- */

#define CLEANUP_ROUNDS 10

/* Wait (with a deadline) until the statement sent on pg has a result that
 * can be read without blocking: the query has finished on the server. */
static bool wait_result_ready(PGconn *pg, int timeout_ms)
{
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    for (;;) {
        if (!PQconsumeInput(pg))
            return false;
        if (!PQisBusy(pg))
            return true;
        int64_t left = deadline - agec_test_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN, .revents = 0 };
        (void)poll(&p, 1, (int)left);
    }
}

static void cleanup_hits_next_borrower(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "cleanup", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    agec_pool *p = pool_open_ok(&cfg);
    int failures = 0;
    char first[600] = "";
    for (int i = 0; i < CLEANUP_ROUNDS; i++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_conn *a = NULL;
        agec_test_must(agec_pool_acquire(p, &a, &err), &err, "acquire A");
        PGconn *pg = agec_conn_pgconn(a);
        assert_int_equal(PQsendQuery(pg, "SELECT pg_sleep(0.05)"), 1);
        assert_true(wait_result_ready(pg, 5000));
        PGresult *r = PQgetResult(pg); /* one result; the final NULL stays unread */
        /* A is itself the next borrower of the previous round's cleanup. */
        if (PQresultStatus(r) != PGRES_TUPLES_OK && failures++ == 0)
            snprintf(first, sizeof first, "round %d, borrower A: [%s] %.400s", i + 1,
                     PQresultErrorField(r, PG_DIAG_SQLSTATE)
                         ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
                         : "",
                     PQresultErrorMessage(r));
        PQclear(r);
        agec_conn_release(a);

        agec_conn *b = NULL;
        agec_test_must(agec_pool_acquire(p, &b, &err), &err, "acquire B");
        agec_result *res = NULL;
        agec_status st = agec_sql_exec(b, "SELECT pg_sleep(0.3)", 0, NULL, NULL, &res, &err);
        agec_result_free(res);
        if (st != AGEC_OK && failures++ == 0)
            snprintf(first, sizeof first, "round %d: %s [%s] %.400s", i + 1, agec_status_name(st),
                     err.sqlstate, err.message);
        agec_conn_release(b);
    }
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    if (failures > 0)
        fail_msg(
            "min=%d: a statement after another borrower's cleanup failed %d times in %d rounds "
            "(2 statements each); first: %s",
            min, failures, CLEANUP_ROUNDS, first);
}

static void test_cleanup_never_hits_next_borrower(void **state)
{
    cleanup_hits_next_borrower(*(const int *)*state);
}

/* ---- 2. a freed slot is not lost ----------------------------------------- */

#define NWAITERS 4
#define WORK_SQL "SELECT pg_sleep(0.25)"
/* Both slots free at once, so the 2nd waiter must be served within this of
 * the 1st: they connect side by side (a connect alone takes 10 to 120 ms
 * here under the sanitizers, so the bound is on the gap, not from the
 * release; 76 ms was seen with the machine loaded to 4x its cores). The
 * bug serves the 2nd only when the 1st has done its 250 ms of work. */
#define SERVE_GAP_MS 150

typedef struct slot_shared {
    agec_pool *p;
    atomic_int holding;     /* waiters holding a connection now */
    atomic_int max_holding; /* most at once */
} slot_shared;

typedef struct slot_waiter {
    slot_shared *sh;
    agec_status st;
    agec_status work;
    agec_error err;
    int64_t served_ms, released_ms;
} slot_waiter;

static void *slot_waiter_main(void *arg)
{
    slot_waiter *w = arg;
    agec_conn *c = NULL;
    w->st = agec_pool_acquire_timeout(w->sh->p, 10000, &c, &w->err);
    if (w->st != AGEC_OK)
        return NULL;
    w->served_ms = agec_test_now_ms();
    int now = atomic_fetch_add(&w->sh->holding, 1) + 1;
    int seen = atomic_load(&w->sh->max_holding);
    while (now > seen && !atomic_compare_exchange_weak(&w->sh->max_holding, &seen, now)) {
    }
    agec_result *r = NULL;
    w->work = agec_sql_exec(c, WORK_SQL, 0, NULL, NULL, &r, NULL);
    agec_result_free(r);
    atomic_fetch_sub(&w->sh->holding, 1);
    w->released_ms = agec_test_now_ms();
    agec_conn_release(c);
    return NULL;
}

typedef struct broken_releaser {
    agec_conn *c;
    pthread_barrier_t *barrier;
    int64_t at_ms;
} broken_releaser;

static void *release_broken_main(void *arg)
{
    broken_releaser *b = arg;
    pthread_barrier_wait(b->barrier);
    b->at_ms = agec_test_now_ms();
    agec_conn_release_broken(b->c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One round: two borrowers, four waiters, both borrowers release as broken
 * at once. Returns false with a description in msg when a freed slot was
 * left unused. */
static bool freed_slots_round(int min, char *msg, size_t cap)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "slots", app, NULL);
    cfg.max = 2;
    cfg.min = min;
    cfg.acquire_timeout_ms = 10000;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *b1 = NULL, *b2 = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &b1, &err), &err, "borrower 1");
    agec_test_must(agec_pool_acquire(p, &b2, &err), &err, "borrower 2");

    slot_shared sh = { .p = p };
    atomic_init(&sh.holding, 0);
    atomic_init(&sh.max_holding, 0);
    slot_waiter w[NWAITERS];
    pthread_t th[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        w[i] = (slot_waiter){ .sh = &sh, .err = AGEC_ERROR_INIT };
        assert_int_equal(pthread_create(&th[i], NULL, slot_waiter_main, &w[i]), 0);
    }
    assert_true(pool_wait_waiting(p, NWAITERS, 10000));

    /* Both borrowers give their connections up as broken at the same moment. */
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    broken_releaser r1 = { b1, &barrier, 0 }, r2 = { b2, &barrier, 0 };
    pthread_t rt1, rt2;
    assert_int_equal(pthread_create(&rt1, NULL, release_broken_main, &r1), 0);
    assert_int_equal(pthread_create(&rt2, NULL, release_broken_main, &r2), 0);
    pthread_join(rt1, NULL);
    pthread_join(rt2, NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < NWAITERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    int64_t freed = r1.at_ms > r2.at_ms ? r1.at_ms : r2.at_ms;

    int64_t served[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        if (w[i].st != AGEC_OK)
            fail_msg("min=%d: waiter %d: %s: %s", min, i, agec_status_name(w[i].st),
                     w[i].err.message);
        assert_int_equal(w[i].work, AGEC_OK);
        served[i] = w[i].served_ms - freed;
    }
    qsort(served, NWAITERS, sizeof served[0], cmp_i64);
    int most = atomic_load(&sh.max_holding);
    snprintf(msg, cap,
             "min=%d: waiters served +%lld, +%lld, +%lld, +%lld ms after both slots freed; at "
             "most %d held a connection at once",
             min, (long long)served[0], (long long)served[1], (long long)served[2],
             (long long)served[3], most);
    /* Two slots freed, four callers waiting: two work at once, and the
     * second slot is taken as soon as the first, not when the first
     * waiter's work is over. */
    return most == 2 && served[1] - served[0] <= SERVE_GAP_MS;
}

/* The race is in how the two releases meet: repeat it. */
#define SLOT_ROUNDS 8

static void freed_slots_all_used(int min)
{
    int lost = 0;
    char msg[256], first[256] = "";
    for (int i = 0; i < SLOT_ROUNDS; i++) {
        bool ok = freed_slots_round(min, msg, sizeof msg);
        print_message("round %d: %s\n", i + 1, msg);
        if (!ok && lost++ == 0)
            snprintf(first, sizeof first, "%s", msg);
    }
    if (lost > 0)
        fail_msg("a freed slot was left unused while callers waited in %d of %d rounds (bound: "
                 "the 2nd waiter within %d ms of the 1st); first: %s",
                 lost, SLOT_ROUNDS, SERVE_GAP_MS, first);
}

static void test_freed_slots_all_used(void **state)
{
    freed_slots_all_used(*(const int *)*state);
}

/* ---- 5. prepared statements do not pile up; no timeout carry-over -------- */

static long conn_prepared_count(agec_conn *c)
{
    char buf[32];
    conn_value(c, "SELECT count(*) FROM pg_prepared_statements", buf, sizeof buf);
    return atol(buf);
}

#define RESET_BORROWS 6

static void reset_all_no_pileup(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "resetall", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    cfg.reset_query = "RESET ALL";
    agec_pool *p = pool_open_ok(&cfg);
    const char *v[1] = { "41" };
    long count = -1;
    uint64_t id = 0;
    for (int i = 0; i < RESET_BORROWS; i++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_conn *c = NULL;
        agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
        if (i == 0)
            id = agec_conn_id(c);
        assert_int_equal(agec_conn_id(c), id); /* max = 1: always the same connection */
        agec_result *r = NULL;
        agec_test_must(agec_sql_exec(c, "SELECT $1::int + 1", 1, v, NULL, &r, &err), &err, "exec");
        assert_string_equal(agec_result_text(r, 0, 0, NULL), "42");
        agec_result_free(r);
        count = conn_prepared_count(c);
        agec_conn_release(c);
    }
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    if (count != 1)
        fail_msg("min=%d, reset_query RESET ALL: after %d borrows running the same statement the "
                 "connection holds %ld prepared statements (expected 1)",
                 min, RESET_BORROWS, count);
}

static void test_reset_all_no_prepared_pileup(void **state)
{
    reset_all_no_pileup(*(const int *)*state);
}

/* More distinct statements inside one transaction than the cache holds
 * plus what may wait for deallocation: after COMMIT and one more statement
 * the server keeps no more than the cache's worth. */
#define LONG_TX_STATEMENTS (AGEC_STMT_CACHE_MAX + 16 + 5)

static void long_tx_evictions(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "evict", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    agec_pool *p = pool_open_ok(&cfg);
    agec_error err = AGEC_ERROR_INIT;
    agec_conn *c = NULL;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    const char *v[1] = { "1" };
    char sql[64];
    for (int i = 0; i < LONG_TX_STATEMENTS; i++) {
        snprintf(sql, sizeof sql, "SELECT $1::int + %d", i);
        agec_result *r = NULL;
        agec_test_must(agec_sql_exec(c, sql, 1, v, NULL, &r, &err), &err, "exec in tx");
        agec_result_free(r);
    }
    agec_test_must(agec_tx_commit(c, &err), &err, "commit");
    snprintf(sql, sizeof sql, "SELECT $1::int - 1");
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, sql, 1, v, NULL, &r, &err), &err, "exec after commit");
    agec_result_free(r);
    long count = conn_prepared_count(c);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    if (count > AGEC_STMT_CACHE_MAX)
        fail_msg("min=%d: %d distinct statements in one transaction, commit, one more: the "
                 "server holds %ld prepared statements (cache size %d)",
                 min, LONG_TX_STATEMENTS, count, AGEC_STMT_CACHE_MAX);
}

static void test_long_tx_evictions_deallocated(void **state)
{
    long_tx_evictions(*(const int *)*state);
}

/* Borrower A's agec_tx_opts.timeout_ms (100 ms) must not apply to borrower
 * B on the same connection (no reset query): B's COMMIT runs a deferred
 * trigger that sleeps 300 ms and must succeed. */
static void tx_timeout_no_carry_over(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "txcarry", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    agec_pool *p = pool_open_ok(&cfg);
    agec_error err = AGEC_ERROR_INIT;

    agec_conn *a = NULL;
    agec_test_must(agec_pool_acquire(p, &a, &err), &err, "acquire A");
    uint64_t id = agec_conn_id(a);
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.timeout_ms = 100;
    agec_test_must(agec_tx_begin(a, &o, &err), &err, "A begin");
    agec_test_must(agec_tx_commit(a, &err), &err, "A commit");
    agec_conn_release(a);

    agec_conn *b = NULL;
    agec_test_must(agec_pool_acquire(p, &b, &err), &err, "acquire B");
    assert_int_equal(agec_conn_id(b), id);
    conn_exec_ok(b, "CREATE TEMP TABLE agec_carry (x int)");
    conn_exec_ok(b, "CREATE FUNCTION pg_temp.agec_slow() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END$$");
    conn_exec_ok(b, "CREATE CONSTRAINT TRIGGER agec_slow AFTER INSERT ON agec_carry DEFERRABLE "
                    "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.agec_slow()");
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(b, "BEGIN", 0, NULL, NULL, &r, &err), &err, "B begin");
    agec_result_free(r);
    agec_test_must(agec_sql_exec(b, "INSERT INTO agec_carry VALUES (1)", 0, NULL, NULL, &r, &err),
                   &err, "B insert");
    agec_result_free(r);
    int64_t t0 = agec_test_now_ms();
    agec_status st = agec_tx_commit(b, &err);
    int64_t took = agec_test_now_ms() - t0;
    agec_conn_release(b);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    if (st != AGEC_OK)
        fail_msg("min=%d: borrower B's COMMIT (no timeout of its own) failed after %lld ms with "
                 "%s [%s] %s: borrower A's tx timeout_ms 100 carried over",
                 min, (long long)took, agec_status_name(st), err.sqlstate, err.message);
    assert_true(took >= 300);
}

static void test_tx_timeout_no_carry_over(void **state)
{
    tx_timeout_no_carry_over(*(const int *)*state);
}

/* ---- 4. a connect given up mid set-up keeps its slot -------------------- */

/* max = 1 and a set-up that takes 300 ms on the server: an acquire whose
 * deadline (50 ms) cuts the set-up short gives the connection up while its
 * backend still sleeps. The next acquire must not open a second backend
 * beside it (the previous pool did: 2 backends of a pool of 1). min = 0
 * only: with min > 0 the maintenance thread's own connects come and go. */
static void cut_short_setup_keeps_slot(int min)
{
    PGconn *admin = pg_admin();
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "reap", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    cfg.init_sql = "SELECT pg_sleep(0.3)";
    cfg.connect_timeout_ms = 5000;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    for (int round = 0; round < 3; round++) {
        assert_int_not_equal(agec_pool_acquire_timeout(p, 50, &c, &err), AGEC_OK);
        assert_null(c);
        /* At most one backend of this pool while the given-up one sleeps
         * (a second acquire would otherwise be connecting beside it). */
        agec_status st = agec_pool_acquire_timeout(p, 100, &c, &err);
        if (st == AGEC_OK)
            agec_conn_release(c);
        c = NULL;
        int n = pg_count_app(admin, app);
        if (n > 1)
            fail_msg("min=%d round %d: %d backends of a pool of max 1 (a given-up connect's "
                     "backend was still running beside a new one)",
                     min, round, n);
        assert_true(pg_wait_app_count(admin, app, 0, 3000));
        assert_true(pool_wait_total(p, 0, 3000));
    }
    /* And the pool still serves a patient caller. */
    agec_test_must(agec_pool_acquire_timeout(p, 5000, &c, &err), &err, "patient acquire");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    PQfinish(admin);
}

/* ---- 2b. no hand-off to a caller on its way out ------------------------- */

/* A caller that timed out reports it (the acquire-timeout event) before it
 * leaves; a release in that window handed its connection to it as the
 * starving head of the queue, and the connection stayed "in use" for ever
 * (found by the chaos test under TSan on a fresh machine). */
typedef struct timeout_gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool in_event, go;
} timeout_gate;

static void gate_event(const agec_pool_event *ev, void *user)
{
    timeout_gate *g = user;
    if (ev->type != AGEC_EV_ACQUIRE_TIMEOUT)
        return;
    pthread_mutex_lock(&g->mu);
    g->in_event = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->go)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

typedef struct gate_caller {
    agec_pool *p;
    agec_status st;
} gate_caller;

static void *gate_caller_main(void *arg)
{
    gate_caller *gc = arg;
    agec_conn *c = NULL;
    gc->st = agec_pool_acquire_timeout(gc->p, 100, &c, NULL);
    if (c != NULL)
        agec_conn_release(c);
    return NULL;
}

static void test_no_handoff_to_leaving_caller(void **state)
{
    (void)state;
    timeout_gate g = { .in_event = false, .go = false };
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cond, NULL);
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "leaving", app, NULL);
    cfg.max = 1;
    cfg.min = 0;
    cfg.fair_wait_ms = 1; /* the waiter is starving (direct hand-off) at once */
    cfg.on_event = gate_event;
    cfg.event_user = &g;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *held = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &held, &err), &err, "borrower");
    gate_caller gc = { p, AGEC_OK };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gate_caller_main, &gc), 0);
    /* The caller times out and is reporting it: release now. */
    pthread_mutex_lock(&g.mu);
    while (!g.in_event)
        pthread_cond_wait(&g.cond, &g.mu);
    pthread_mutex_unlock(&g.mu);
    agec_conn_release(held);
    pthread_mutex_lock(&g.mu);
    g.go = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mu);
    pthread_join(th, NULL);
    assert_int_equal(gc.st, AGEC_ERR_POOL_EXHAUSTED);
    agec_pool_stats s = pool_stats(p);
    if (s.in_use != 0)
        fail_msg("%d connection(s) in use with no borrower: the release handed its connection "
                 "to a caller that had timed out",
                 s.in_use);
    agec_conn *c = NULL;
    agec_test_must(agec_pool_acquire_timeout(p, 2000, &c, &err), &err, "next acquire");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 1000, NULL), AGEC_OK);
    pthread_cond_destroy(&g.cond);
    pthread_mutex_destroy(&g.mu);
}

static void test_cut_short_setup_keeps_slot(void **state)
{
    cut_short_setup_keeps_slot(*(const int *)*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AGEC_TEST_MIN(test_cleanup_never_hits_next_borrower, 0, NULL),
        AGEC_TEST_MIN(test_cleanup_never_hits_next_borrower, 1, NULL),
        AGEC_TEST_MIN(test_freed_slots_all_used, 0, NULL),
        AGEC_TEST_MIN(test_freed_slots_all_used, 1, NULL),
        AGEC_TEST_MIN(test_reset_all_no_prepared_pileup, 0, NULL),
        AGEC_TEST_MIN(test_reset_all_no_prepared_pileup, 1, NULL),
        AGEC_TEST_MIN(test_long_tx_evictions_deallocated, 0, NULL),
        AGEC_TEST_MIN(test_long_tx_evictions_deallocated, 1, NULL),
        AGEC_TEST_MIN(test_tx_timeout_no_carry_over, 0, NULL),
        AGEC_TEST_MIN(test_tx_timeout_no_carry_over, 1, NULL),
        AGEC_TEST_MIN(test_cut_short_setup_keeps_slot, 0, NULL),
        cmocka_unit_test(test_no_handoff_to_leaving_caller),
    };
    if (getenv("AGEC_TEST_FILTER") != NULL) /* e.g. AGEC_TEST_FILTER='*min0' */
        cmocka_set_test_filter(getenv("AGEC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
