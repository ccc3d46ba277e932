/*
 * Randomized stress of the pool's acquire/release/wait protocol (issue 10),
 * on a PostgreSQL 15 cluster of its own, with min = 0 and min = 2: 12
 * threads on a pool of 4 acquire with random timeouts (0 ms to 2 s) and
 * then, at random, run a statement and release, release as broken, release
 * in the middle of a statement, let a statement time out (cancel), or
 * cancel their own statement from a second thread; meanwhile a killer
 * terminates random backends of the pool. Checked all along or at the end:
 *  - never more than max backends of the pool (pg_stat_activity sampler);
 *  - no statement fails with 57014 (cancelled) unless it was cancelled on
 *    purpose: no borrower's cleanup reaches another borrower's statement;
 *  - no acquire with a timeout of 2 s times out: holds are at most ~100 ms
 *    and fairness bounds a wait to fair_wait_ms plus the turns of the
 *    waiters ahead, so a lost wake-up or an unused free slot shows here;
 *  - the pool's counters match an independent tally kept by the threads
 *    (acquires, releases, acquire timeouts, broken releases).
 *  - an event callback calling agec_pool_stats_get on every event never
 *    deadlocks the pool and always gets its snapshot (issue 22);
 * Broken releases happen half the time in the middle of a half-second
 * statement (issue 22: the backend must not outlive its slot).
 * Run under ThreadSanitizer too (label concurrency). The seed is printed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_load.h"
#include "testutil.h"

#define THREADS 12
#define MAX 4
#define RUN_MS 3000

typedef struct tally {
    atomic_uint_fast64_t acquired, released, broken, timeouts, timeouts_long, other_acq;
    atomic_uint_fast64_t stmt_ok, stmt_lost, stmt_cancel_ok, stmt_bad;
    char bad_msg[400];
    pthread_mutex_t mu;
} tally;

typedef struct run {
    agec_pool *pool;
    tally t;
    atomic_bool stop;
    unsigned seed;
} run;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void note_bad(tally *t, const char *what, const agec_error *e)
{
    atomic_fetch_add(&t->stmt_bad, 1);
    pthread_mutex_lock(&t->mu);
    if (t->bad_msg[0] == '\0')
        snprintf(t->bad_msg, sizeof t->bad_msg, "%s: %s [%s] %.300s", what,
                 agec_status_name(e->code), e->sqlstate, e->message);
    pthread_mutex_unlock(&t->mu);
}

/* A statement that failed because the killer terminated the backend is
 * fine; anything else must not happen. */
static void judge(tally *t, const char *what, agec_status st, const agec_error *e)
{
    if (st == AGEC_OK)
        atomic_fetch_add(&t->stmt_ok, 1);
    else if (st == AGEC_ERR_CONNECTION_LOST || strcmp(e->sqlstate, "57P01") == 0 ||
             strncmp(e->sqlstate, "08", 2) == 0)
        atomic_fetch_add(&t->stmt_lost, 1);
    else
        note_bad(t, what, e);
}

typedef struct canceller {
    agec_conn *c;
    pthread_t th;
} canceller;

static void *cancel_main(void *arg)
{
    canceller *k = arg;
    agec_test_sleep_ms(10);
    (void)agec_conn_cancel(k->c, NULL);
    return NULL;
}

static void one_op(run *r, unsigned *seed)
{
    tally *t = &r->t;
    static const int timeouts[] = { 0, 5, 50, 500, 2000, 2000 };
    int tmo = timeouts[next_rand(seed) % 6];
    agec_conn *c = NULL;
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire_timeout(r->pool, tmo, &c, &e);
    if (st != AGEC_OK) {
        if (st == AGEC_ERR_POOL_EXHAUSTED || st == AGEC_ERR_UNREACHABLE) {
            atomic_fetch_add(&t->timeouts, 1);
            if (tmo >= 2000) {
                atomic_fetch_add(&t->timeouts_long, 1);
                note_bad(t, "acquire with a 2 s timeout", &e);
            }
        } else {
            atomic_fetch_add(&t->other_acq, 1);
        }
        return;
    }
    atomic_fetch_add(&t->acquired, 1);
    agec_query_opts o;
    agec_query_opts_init(&o);
    agec_result *res = NULL;
    unsigned what = next_rand(seed) % 10;
    if (what <= 4) { /* a statement of a few ms, then release */
        o.timeout_ms = 1500;
        st = agec_sql_exec(c, "SELECT pg_sleep(0.003), 1", 0, NULL, &o, &res, &e);
        judge(t, "plain statement", st, &e);
        agec_result_free(res);
        agec_conn_release(c);
    } else if (what == 5) { /* released as broken, half the time mid-statement */
        atomic_fetch_add(&t->broken, 1);
        if (next_rand(seed) % 2)
            (void)PQsendQuery(agec_conn_pgconn(c), "SELECT pg_sleep(0.5)");
        agec_conn_release_broken(c);
    } else if (what == 6) { /* released mid-statement: cleanup cancels or drains */
        (void)PQsendQuery(agec_conn_pgconn(c), "SELECT pg_sleep(0.02)");
        if (next_rand(seed) % 2) {
            /* wait for the answer and read only part of it */
            PGconn *pg = agec_conn_pgconn(c);
            int64_t until = agec_test_now_ms() + 1000;
            while (PQconsumeInput(pg) && PQisBusy(pg) && agec_test_now_ms() < until)
                agec_test_sleep_ms(1);
            PQclear(PQgetResult(pg));
        }
        agec_conn_release(c);
    } else if (what == 7) { /* a statement timeout: cancelled by agec */
        o.timeout_ms = 20;
        st = agec_sql_exec(c, "SELECT pg_sleep(0.1)", 0, NULL, &o, &res, &e);
        if (st == AGEC_ERR_TIMEOUT)
            atomic_fetch_add(&t->stmt_cancel_ok, 1);
        else
            judge(t, "timed-out statement", st, &e);
        agec_result_free(res);
        agec_conn_release(c);
    } else if (what == 8) { /* cancelled by a second thread */
        canceller k = { .c = c };
        bool started = pthread_create(&k.th, NULL, cancel_main, &k) == 0;
        o.timeout_ms = 1500;
        st = agec_sql_exec(c, "SELECT pg_sleep(0.05)", 0, NULL, &o, &res, &e);
        if (started)
            pthread_join(k.th, NULL);
        if (st == AGEC_ERR_CANCELLED || st == AGEC_OK)
            atomic_fetch_add(&t->stmt_cancel_ok, 1);
        else
            judge(t, "cancelled statement", st, &e);
        agec_result_free(res);
        agec_conn_release(c);
    } else { /* a transaction left open: release rolls it back */
        o.timeout_ms = 1500;
        st = agec_sql_exec(c, "BEGIN", 0, NULL, &o, &res, &e);
        agec_result_free(res);
        res = NULL;
        if (st == AGEC_OK)
            st = agec_sql_exec(c, "SELECT 1", 0, NULL, &o, &res, &e);
        judge(t, "statement in a transaction", st, &e);
        agec_result_free(res);
        agec_conn_release(c);
    }
    atomic_fetch_add(&t->released, 1);
}

/* Every event: a callback that calls the pool (stats), as the header allows. */
static agec_pool *_Atomic g_pool;
static atomic_uint_fast64_t g_events, g_event_stats;

static void stats_on_event(const agec_pool_event *ev, void *user)
{
    (void)ev;
    (void)user;
    atomic_fetch_add(&g_events, 1);
    agec_pool *p = atomic_load(&g_pool);
    agec_pool_stats s;
    if (p != NULL && agec_pool_stats_get(p, &s) == AGEC_OK && s.total <= MAX)
        atomic_fetch_add(&g_event_stats, 1);
}

static void *worker(void *arg)
{
    run *r = arg;
    static atomic_uint n;
    unsigned seed = r->seed + 7919u * atomic_fetch_add(&n, 1);
    while (!atomic_load(&r->stop))
        one_op(r, &seed);
    return NULL;
}

static void chaos(int min)
{
    fl_cluster cl;
    assert_true(fl_cluster_start(&cl, AGEC_SCRIPTS_DIR));
    PGconn *admin = fl_admin(&cl);
    assert_non_null(admin);
    char ci[160], app[64];
    snprintf(ci, sizeof ci, "hostaddr=127.0.0.1 port=%d user=postgres dbname=postgres", cl.port);
    snprintf(app, sizeof app, "agec_chaos_%d_%d", min, (int)getpid());
    agec_pool_config cfg;
    fl_pool_config(&cfg, ci, app, "chaos", MAX, min);
    cfg.breaker_threshold = 0; /* kills are not an outage */
    cfg.on_event = stats_on_event;
    atomic_store(&g_pool, NULL);
    atomic_store(&g_events, 0);
    atomic_store(&g_event_stats, 0);
    run r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.t.mu, NULL);
    r.seed = (unsigned)agec_test_now_ms();
    print_message("chaos min=%d seed=%u\n", min, r.seed);
    assert_int_equal(agec_pool_open(&cfg, &r.pool, NULL), AGEC_OK);
    atomic_store(&g_pool, r.pool);
    fl_sampler *smp = fl_sampler_start(&cl, app, 5);
    assert_non_null(smp);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &r), 0);
    int kills = 0;
    char kill_sql[256];
    snprintf(kill_sql, sizeof kill_sql,
             "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
             "WHERE application_name = '%s' ORDER BY random() LIMIT 1) s",
             app);
    int64_t end = agec_test_now_ms() + RUN_MS;
    while (agec_test_now_ms() < end) {
        agec_test_sleep_ms(150); /* the killer's pace (not a synchronisation) */
        long k = fl_int(admin, kill_sql);
        kills += k > 0 ? (int)k : 0;
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(r.pool, &s), AGEC_OK);
    tally *t = &r.t;
    print_message("chaos min=%d: %llu acquires, %llu statements ok, %llu lost to kills, %llu "
                  "cancelled on purpose, %llu timeouts, %d kills, max backends %d (%d samples); "
                  "acquire wait p99 %lld us max %lld us\n",
                  min, (unsigned long long)atomic_load(&t->acquired),
                  (unsigned long long)atomic_load(&t->stmt_ok),
                  (unsigned long long)atomic_load(&t->stmt_lost),
                  (unsigned long long)atomic_load(&t->stmt_cancel_ok),
                  (unsigned long long)atomic_load(&t->timeouts), kills, fl_sampler_max(smp),
                  fl_sampler_samples(smp), (long long)s.wait_p99_us, (long long)s.wait_max_us);
    if (t->bad_msg[0] != '\0')
        print_message("first unexpected failure: %s\n", t->bad_msg);
    assert_int_equal(atomic_load(&t->stmt_bad), 0);
    assert_int_equal(atomic_load(&t->timeouts_long), 0);
    assert_true(fl_sampler_samples(smp) >= 10);
    assert_true(fl_sampler_max(smp) <= MAX);
    /* The pool's books against the threads' own. */
    assert_int_equal(s.acquires, atomic_load(&t->acquired));
    assert_int_equal(s.releases, atomic_load(&t->released));
    assert_int_equal(s.acquire_timeouts, atomic_load(&t->timeouts));
    assert_true(s.closed[AGEC_CLOSE_BROKEN] >= atomic_load(&t->broken));
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.waiting, 0);
    assert_true(s.total <= MAX);
    assert_true(atomic_load(&t->stmt_ok) > 100); /* it did real work */
    /* Every event's callback got its stats (no deadlock, no refusal). */
    assert_true(atomic_load(&g_events) > 0);
    assert_int_equal(atomic_load(&g_event_stats), atomic_load(&g_events));
    fl_sampler_stop(smp);
    atomic_store(&g_pool, NULL); /* no stats call may race close */
    assert_int_equal(agec_pool_close(r.pool, 2000, NULL), AGEC_OK);
    pthread_mutex_destroy(&r.t.mu);
    PQfinish(admin);
    fl_cluster_remove(&cl);
}

static void test_chaos_min0(void **state)
{
    (void)state;
    chaos(0);
}

static void test_chaos_min2(void **state)
{
    (void)state;
    chaos(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_min0),
        cmocka_unit_test(test_chaos_min2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
