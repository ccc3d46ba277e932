/*
 * Failover under a load of writers, on a real primary + 2 hot standbys
 * (node 1 synchronous, node 2 asynchronous), a fresh cluster per test.
 *
 * test_failover_under_writers: stop the primary, promote node 1, and assert
 * that writes resume on it (the time from the promotion to the first
 * acknowledged write is printed; the target is 2 s), that every
 * write acknowledged as committed is on the new primary (0 lost with the
 * synchronous standby), that no acquire or statement ran past its deadline
 * + 250 ms, that no node pool ever had more than `max` connections, and
 * that the old primary, rewound and restarted as a standby of the new one,
 * joins the read rotation.
 *
 * test_async_failover_loss: crash the primary (immediate stop: a fast stop
 * sends all WAL to every standby before it exits, so only a crash can lose
 * anything) and promote the ASYNCHRONOUS standby, node 2. The acknowledged
 * commits missing on it are PostgreSQL's own behaviour: printed, not
 * asserted; the same resume and deadline assertions hold.
 */
#include "test_cluster_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITERS 4
#define MAX_ACKED 200000
#define POOL_MAX 3
#define ACQUIRE_MS 1500

static test_cluster tc;
static agec_cluster *cl;

static atomic_bool stop_writers;
static atomic_int next_id;
static atomic_int acked_n;
static int acked[MAX_ACKED];
static atomic_llong first_ack_after_ms; /* first ack with a start after `failover_at_ms` */
static atomic_llong failover_at_ms;
static atomic_llong worst_overrun_ms;
static atomic_int write_errors;
static pthread_t th[WRITERS];
static int started; /* writer threads running */

static void note_overrun(int64_t took, int64_t limit)
{
    long long over = (long long)(took - limit);
    long long cur = atomic_load(&worst_overrun_ms);
    while (over > cur && !atomic_compare_exchange_weak(&worst_overrun_ms, &cur, over))
        ;
}

static void *writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_writers)) {
        agec_conn *c = NULL;
        agec_error err = AGEC_ERROR_INIT;
        int64_t t0 = agec_test_now_ms();
        agec_status st = agec_cluster_acquire_at(cl, AGEC_ACCESS_WRITE, 0, ACQUIRE_MS, &c, &err,
                                                 __FILE__, __LINE__, __func__);
        note_overrun(agec_test_now_ms() - t0, ACQUIRE_MS);
        if (st != AGEC_OK) {
            atomic_fetch_add(&write_errors, 1);
            continue;
        }
        int id = atomic_fetch_add(&next_id, 1);
        char sql[128];
        /* statement_timeout bounds a commit that hangs on a dying server. */
        snprintf(sql, sizeof sql,
                 "SET statement_timeout = 1000; INSERT INTO t VALUES (%d); RESET statement_timeout",
                 id);
        int64_t t1 = agec_test_now_ms();
        PGresult *r = PQexec(agec_conn_pgconn(c), sql);
        int64_t done = agec_test_now_ms();
        note_overrun(done - t1, 1000);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            int k = atomic_fetch_add(&acked_n, 1);
            if (k < MAX_ACKED)
                acked[k] = id;
            long long fa = atomic_load(&failover_at_ms);
            long long zero = 0;
            if (fa > 0 && t0 >= fa)
                atomic_compare_exchange_strong(&first_ack_after_ms, &zero, (long long)done);
            PQclear(r);
            agec_conn_release(c);
        } else {
            agec_error e = AGEC_ERROR_INIT;
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            e.code = PQstatus(agec_conn_pgconn(c)) == CONNECTION_OK ? AGEC_ERR_SERVER
                                                                    : AGEC_ERR_CONNECTION_LOST;
            snprintf(e.sqlstate, sizeof e.sqlstate, "%s", ss ? ss : "");
            agec_cluster_report(cl, c, &e);
            PQclear(r);
            atomic_fetch_add(&write_errors, 1);
            agec_conn_release(c);
        }
    }
    return NULL;
}

static bool enough_acked(void *arg)
{
    return atomic_load(&acked_n) >= *(int *)arg;
}

static bool first_ack_seen(void *arg)
{
    (void)arg;
    return atomic_load(&first_ack_after_ms) != 0;
}

typedef struct role_wait {
    int node;
    agec_node_role role;
    bool rotation;
} role_wait;

static int max_total_seen[3];

static void sample_totals(void)
{
    for (int i = 0; i < 3; i++) {
        agec_pool_stats ps;
        if (agec_pool_stats_get(agec_cluster_node_pool(cl, i), &ps) == AGEC_OK &&
            ps.total > max_total_seen[i])
            max_total_seen[i] = ps.total;
    }
}

static bool node_is(void *arg)
{
    role_wait *w = arg;
    sample_totals();
    agec_cluster_node_stats s = tc_node_stats(cl, w->node);
    return s.role == w->role && (!w->rotation || s.in_rotation);
}

static bool read_lands_on_node0(void *arg)
{
    (void)arg;
    agec_conn *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cluster_acquire_read(cl, &r, &err), &err, "read after rejoin");
    bool rec = false;
    bool on0 = tc_conn_port(r, &rec) == tc.port[0];
    assert_true(rec);
    agec_conn_release(r);
    return on0;
}

/* Acknowledged ids missing on node n: one query over all of them. */
static int count_lost(int n_acked, PGconn *p)
{
    size_t cap = (size_t)n_acked * 12 + 128, len = 0;
    char *sql = malloc(cap);
    assert_non_null(sql);
    len += (size_t)snprintf(sql + len, cap - len, "SELECT count(*) FROM unnest('{");
    for (int i = 0; i < n_acked; i++)
        len += (size_t)snprintf(sql + len, cap - len, "%s%d", i ? "," : "", acked[i]);
    snprintf(sql + len, cap - len,
             "}'::int[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a.id)");
    long lost = pg_int(p, sql);
    free(sql);
    return (int)lost;
}

/*
 * Writers on a new cluster; then node 0 is stopped (crash: an immediate
 * stop) and node `promote` promoted. Asserts that writes resume on it
 * within 2 s of the promotion, that no call ran past its deadline + 250 ms
 * and no node pool past `max`; prints the figures. Returns the number of
 * acknowledged writes missing on the new primary; *conn is a plain
 * connection to it (caller finishes it).
 */
static int failover_under_writers(int promote, bool crash, PGconn **conn)
{
    PGconn *p = tc_node(&tc, 0);
    (void)pg_int(p, "CREATE TABLE t (id int PRIMARY KEY)");
    PQfinish(p);
    agec_cluster_config cfg;
    agec_pool_config pool;
    tc_config(&tc, &cfg, &pool, POOL_MAX);
    /* Idle connections on the standby from before the promotion: they
     * still say in_hot_standby = on until they run a command. */
    pool.min = 1;
    /* A breaker that opens while the old primary is down stays open for a
     * minute unless the monitor, seeing the node answer, lets it probe
     * (agec_pool_breaker_probe): the rejoin has 10 s. */
    pool.breaker_open_ms = 60000;
    cl = tc_open(&cfg);

    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, writer, NULL), 0);
        started = i + 1;
    }
    int want = 200;
    assert_true(agec_test_wait_until(enough_acked, &want, 20000));

    char node[16];
    snprintf(node, sizeof node, "%d", promote);
    assert_int_equal(tc_script(&tc, crash ? "kill-node" : "stop-node", "0"), 0);
    int64_t t_promote = agec_test_now_ms();
    atomic_store(&failover_at_ms, (long long)t_promote);
    assert_int_equal(tc_script(&tc, "promote", node), 0);
    int64_t t_promoted = agec_test_now_ms();
    if (promote == 1) /* node 2 follows the new primary (timeline switch) */
        assert_int_equal(tc_script(&tc, "follow", "2 1"), 0);
    /* (Promoting node 2, node 1 may hold WAL node 2 never got: it cannot
     * follow without a rewind, and is not needed for writes.) */
    assert_true(agec_test_wait_until(first_ack_seen, NULL, 10000));
    long long first = atomic_load(&first_ack_after_ms);
    printf("failover to node %d (%s standby, primary %s): promote took %lld ms; first "
           "acknowledged write %lld ms after the promote command started (%lld ms after it "
           "returned)\n",
           promote, promote == 1 ? "synchronous" : "asynchronous", crash ? "crashed" : "stopped",
           (long long)(t_promoted - t_promote), first - (long long)t_promote,
           first - (long long)t_promoted);
    assert_true(first - t_promoted < 2000);
    assert_int_equal(agec_cluster_primary_index(cl), promote);
    int after = atomic_load(&acked_n) + 100;
    assert_true(agec_test_wait_until(enough_acked, &after, 10000));
    atomic_store(&stop_writers, true);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    started = 0;
    sample_totals();

    int n = atomic_load(&acked_n);
    assert_true(n <= MAX_ACKED);
    p = tc_node(&tc, promote);
    long rows = pg_int(p, "SELECT count(*) FROM t");
    int lost = count_lost(n, p);
    printf("failover to node %d: %d writes acknowledged, %ld rows on the new primary, %d "
           "acknowledged writes lost, %d failed calls (not acknowledged), worst overrun past a "
           "deadline %lld ms\n",
           promote, n, rows, lost, atomic_load(&write_errors), atomic_load(&worst_overrun_ms));
    assert_true(atomic_load(&worst_overrun_ms) <= 250);
    for (int i = 0; i < 3; i++)
        assert_true(max_total_seen[i] <= POOL_MAX);
    *conn = p;
    return lost;
}

static void test_failover_under_writers(void **state)
{
    (void)state;
    PGconn *p = NULL;
    /* Every acknowledged commit is on the synchronous standby. */
    assert_int_equal(failover_under_writers(1, false, &p), 0);

    /* The old primary comes back as a standby of the new one. */
    assert_int_equal(tc_script(&tc, "rejoin", "0 1"), 0);
    role_wait w = { 0, AGEC_NODE_STANDBY, true };
    assert_true(agec_test_wait_until(node_is, &w, 20000));
    (void)pg_int(p, "INSERT INTO t VALUES (-1)");
    PQfinish(p);
    /* Its pool's breaker opened during the outage: reads go to the other
     * standby until the probe the monitor allows has succeeded. */
    assert_true(agec_test_wait_until(read_lands_on_node0, NULL, 10000));
    agec_error err = AGEC_ERROR_INIT;
    agec_cluster_node_stats s0 = tc_node_stats(cl, 0);
    assert_true(s0.role_changes >= 2); /* primary -> down -> standby */
    assert_int_equal(agec_cluster_close(cl, 1000, &err), AGEC_OK);
    cl = NULL;
}

static void test_async_failover_loss(void **state)
{
    (void)state;
    PGconn *p = NULL;
    int lost = failover_under_writers(2, true, &p);
    PQfinish(p);
    /* Not asserted: what an asynchronous standby lacks at a crash is
     * PostgreSQL's behaviour (docs/cluster.md). */
    printf("asynchronous failover: %d acknowledged commits lost\n", lost);
    assert_true(lost >= 0);
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_cluster_close(cl, 1000, &err), AGEC_OK);
    cl = NULL;
}

/* Each test starts a cluster of its own and removes it in its teardown,
 * so that a failed assertion (which ends the test function) does not leave
 * it running. */
static int setup(void **state)
{
    (void)state;
    atomic_store(&stop_writers, false);
    atomic_store(&next_id, 1);
    atomic_store(&acked_n, 0);
    atomic_store(&first_ack_after_ms, 0);
    atomic_store(&failover_at_ms, 0);
    atomic_store(&worst_overrun_ms, 0);
    atomic_store(&write_errors, 0);
    memset(max_total_seen, 0, sizeof max_total_seen);
    tc_start(&tc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&stop_writers, true);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    started = 0;
    if (cl != NULL)
        (void)agec_cluster_close(cl, 1000, NULL);
    cl = NULL;
    tc_stop(&tc);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_under_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_failover_loss, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
