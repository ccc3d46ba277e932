/*
 * Stress: 16 threads on a pool of 4 doing 10,000 acquire/query/release
 * cycles in total against PostgreSQL 15. Afterwards the stats must add up
 * (acquires == releases, never more than max, no connection counted twice:
 * opened and closed against the connect/close events and pg_stat_activity)
 * and close must leave no descriptor behind. Also run under ThreadSanitizer.
 */
#include "test_pool_util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 16
#define CYCLES 10000
#define MAX 4

typedef struct shared {
    agec_pool *p;
    atomic_int next;
    atomic_int ok;
    atomic_int failed;
    atomic_int max_seen; /* largest `total` a thread observed */
} shared;

static void *worker(void *arg)
{
    shared *sh = arg;
    while (atomic_fetch_add(&sh->next, 1) < CYCLES) {
        agec_conn *c = NULL;
        agec_error err;
        if (agec_pool_acquire(sh->p, &c, &err) != AGEC_OK) {
            atomic_fetch_add(&sh->failed, 1);
            continue;
        }
        PGresult *r = PQexec(agec_conn_pgconn(c), "SELECT 1");
        bool good = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
        agec_pool_stats s;
        if (agec_pool_stats_get(sh->p, &s) == AGEC_OK) {
            int seen = atomic_load(&sh->max_seen);
            while (s.total > seen && !atomic_compare_exchange_weak(&sh->max_seen, &seen, s.total)) {
            }
            if (s.total != s.idle + s.in_use + s.opening + s.checking + s.closing)
                atomic_fetch_add(&sh->failed, 1);
        }
        agec_conn_release(c);
        atomic_fetch_add(good ? &sh->ok : &sh->failed, 1);
    }
    return NULL;
}

static void test_stress_16_threads_pool_of_4(void **state)
{
    (void)state;
    int fds = agec_test_fd_count();
    agec_pool_config cfg;
    char app[64];
    ev_log log;
    ev_log_init(&log);
    pool_test_config(&cfg, "stress", app, &log);
    cfg.max = MAX;
    cfg.acquire_timeout_ms = 10000;
    agec_pool *p = pool_open_ok(&cfg);
    shared sh = { .p = p };
    atomic_init(&sh.next, 0);
    atomic_init(&sh.ok, 0);
    atomic_init(&sh.failed, 0);
    atomic_init(&sh.max_seen, 0);
    pthread_t th[THREADS];
    int64_t t0 = agec_test_now_ms();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int64_t took = agec_test_now_ms() - t0;
    print_message("10000 cycles on 16 threads, pool of 4: %lld ms\n", (long long)took);
    assert_int_equal(atomic_load(&sh.failed), 0);
    assert_int_equal(atomic_load(&sh.ok), CYCLES);
    assert_true(atomic_load(&sh.max_seen) <= MAX);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.acquires, CYCLES);
    assert_int_equal(s.releases, CYCLES);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.opening, 0);
    assert_true(s.total <= MAX);
    assert_int_equal(s.total, s.idle);
    /* No connection counted twice, checked against tallies the stats are
     * not computed from: the pool's connect and close events (one each per
     * connection, sent by the thread that did it) and the server's own
     * count of our backends. */
    int connects = ev_log_count(&log, AGEC_EV_CONNECT);
    int closes = ev_log_count(&log, AGEC_EV_CLOSE);
    assert_int_equal((uint64_t)connects, s.opened);
    assert_int_equal(connects - closes, s.total);
    for (int i = 0; i < AGEC_CLOSE_REASON_COUNT; i++)
        assert_int_equal((uint64_t)log.closed[i], s.closed[i]);
    PGconn *admin = pg_admin();
    assert_true(pg_wait_app_count(admin, app, s.total, 5000));
    PQfinish(admin);
    assert_int_equal(s.wait_count, CYCLES);
    assert_true(s.wait_p50_us <= s.wait_p90_us && s.wait_p90_us <= s.wait_p99_us &&
                s.wait_p99_us <= s.wait_max_us);
    assert_int_equal(s.acquire_timeouts, 0);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
    ev_log_destroy(&log);
    assert_int_equal(agec_test_fd_count(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_16_threads_pool_of_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
