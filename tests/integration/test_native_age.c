/*
 * What only native Apache AGE (1.6 on PostgreSQL 15, multi-session) can
 * show; the PGlite server is one shared session with no replication.
 *
 *  - Many sessions at once: 8 threads run Cypher with bound parameters in
 *    REPEATABLE READ transactions through a pool of 4 (agec_tx_run), all
 *    incrementing one counter vertex, so concurrent updates conflict and
 *    are retried (40001); every fifth transaction is rolled back on purpose.
 *    Oracle: the counter equals the number of commits, the items created are
 *    exactly the committed ones, and pg_stat_activity never shows more than
 *    4 server processes of the pool.
 *  - AGE on the replicated cluster (scripts/pg-cluster-server with
 *    AGEC_CLUSTER_AGE=1: AGE on every node): a graph written on the primary
 *    is read with Cypher on a standby (read-your-writes token), then after
 *    a failover (primary stopped, standby 1 promoted, standby 2 following
 *    it) writes reach the new primary and reads see them.
 *
 * Runs through tests/on-native-age (AGEC_TEST_AGE is the native server).
 */
#include "test_cluster_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"

#define GRAPH_TX "it_native_tx"
#define GRAPH_CL "it_native_cl"
#define THREADS 8
#define ITERATIONS 20
#define POOL_MAX 4
#define APP "agec_it_native_tx"

static agec_result *cypher_rows(agec_conn *c, const char *g, const char *q, const char *params)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, g, q, params, NULL, &r, &err), &err, q);
    return r;
}

static long cypher_long(agec_conn *c, const char *g, const char *q)
{
    agec_result *r = cypher_rows(c, g, q, NULL);
    assert_int_equal(agec_result_rows(r), 1);
    long v = atol(agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    return v;
}

/* ---- many sessions: Cypher, parameters, transactions ------------------------ */

typedef struct worker {
    agec_pool *pool;
    int id, iteration;
    int committed, rolled_back, failed;
    char first_failure[1200];
} worker;

static atomic_int running;

static agec_status tx_body(agec_conn *c, void *user, agec_error *err)
{
    worker *w = user;
    char params[64];
    snprintf(params, sizeof params, "{\"t\": %d, \"i\": %d}", w->id, w->iteration);
    agec_result *r = NULL;
    agec_status st = agec_cypher_exec(
        c, GRAPH_TX, "MATCH (k:Counter {id: 0}) SET k.n = k.n + 1 RETURN k.n", NULL, NULL, &r, err);
    agec_result_free(r);
    r = NULL;
    if (st == AGEC_OK)
        st = agec_cypher_exec(c, GRAPH_TX, "CREATE (:Item {t: $t, i: $i})", params, NULL, &r, err);
    agec_result_free(r);
    if (st == AGEC_OK && w->iteration % 5 == 4) {
        snprintf(err->message, sizeof err->message, "rolled back on purpose");
        return AGEC_ERR_INVALID_ARG;
    }
    return st;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.isolation = AGEC_ISOLATION_REPEATABLE_READ;
    o.max_retries = 1000; /* 8 threads on one vertex: conflicts are the point */
    o.retry_base_ms = 1;
    o.acquire_timeout_ms = 60000;
    for (w->iteration = 0; w->iteration < ITERATIONS; w->iteration++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_tx_run(w->pool, &o, tx_body, w, &err);
        if (st == AGEC_OK)
            w->committed++;
        else if (w->iteration % 5 == 4 && st == AGEC_ERR_INVALID_ARG)
            w->rolled_back++;
        else if (w->failed++ == 0)
            snprintf(w->first_failure, sizeof w->first_failure, "%s [%s] %s", agec_status_name(st),
                     err.sqlstate, err.message);
    }
    atomic_fetch_sub(&running, 1);
    return NULL;
}

static void test_cypher_transactions_many_sessions(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_age_conninfo();
    cfg.max = POOL_MAX;
    cfg.application_name = APP;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "pool open");
    agec_conn *c = agec_test_acquire(pool);
    agec_test_graph_fresh(c, GRAPH_TX);
    agec_result_free(cypher_rows(c, GRAPH_TX, "CREATE (:Counter {id: 0, n: 0})", NULL));
    agec_conn_release(c);

    PGconn *watch = PQconnectdb(agec_test_age_conninfo());
    assert_int_equal(PQstatus(watch), CONNECTION_OK);
    worker w[THREADS];
    pthread_t t[THREADS];
    atomic_store(&running, THREADS);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .pool = pool, .id = i };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    /* Server processes of the pool, sampled all along: never above max. */
    int most = 0, samples = 0;
    while (atomic_load(&running) > 0) {
        int n = pg_count_app(watch, APP);
        most = n > most ? n : most;
        samples++;
    }
    int committed = 0, rolled_back = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        committed += w[i].committed;
        rolled_back += w[i].rolled_back;
        failed += w[i].failed;
        if (w[i].failed > 0)
            fprintf(stderr, "thread %d: %d failed, first: %s\n", i, w[i].failed,
                    w[i].first_failure);
    }
    PQfinish(watch);
    agec_pool_stats s = pool_stats(pool);
    fprintf(stderr,
            "%d committed, %d rolled back, %d failed; at most %d server processes in %d "
            "samples; %llu connections opened\n",
            committed, rolled_back, failed, most, samples, (unsigned long long)s.opened);
    assert_int_equal(failed, 0);
    assert_int_equal(rolled_back, THREADS * (ITERATIONS / 5));
    assert_int_equal(committed + rolled_back, THREADS * ITERATIONS);
    assert_true(most <= POOL_MAX);
    assert_true(most >= 1);

    c = agec_test_acquire(pool);
    assert_int_equal(cypher_long(c, GRAPH_TX, "MATCH (k:Counter {id: 0}) RETURN k.n"), committed);
    assert_int_equal(cypher_long(c, GRAPH_TX, "MATCH (n:Item) RETURN count(n)"), committed);
    assert_int_equal(cypher_long(c, GRAPH_TX, "MATCH (n:Item) WHERE n.i % 5 = 4 RETURN count(n)"),
                     0);
    /* Each committed (t, i) exactly once. */
    assert_int_equal(cypher_long(c, GRAPH_TX,
                                 "MATCH (n:Item) WITH n.t AS t, n.i AS i, count(*) AS k "
                                 "WITH k WHERE k > 1 RETURN count(*)"),
                     0);
    agec_error derr = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_drop(c, GRAPH_TX, true, &derr), &derr, "graph drop");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(pool, 5000, &err), AGEC_OK);
}

/* ---- AGE on the replicated cluster -------------------------------------------- */

/* Write a vertex P {n} on the primary; returns the read-your-writes token. */
static agec_lsn write_vertex(agec_cluster *cl, int n, int *primary_node, test_cluster *tc)
{
    agec_conn *w = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cluster_acquire_at(cl, AGEC_ACCESS_WRITE, 0, 30000, &w, &err, __FILE__,
                                           __LINE__, __func__),
                   &err, "acquire write");
    bool in_recovery = true;
    *primary_node = tc_node_of_port(tc, tc_conn_port(w, &in_recovery));
    assert_false(in_recovery);
    char params[32];
    snprintf(params, sizeof params, "{\"n\": %d}", n);
    agec_result_free(cypher_rows(w, GRAPH_CL, "CREATE (:P {n: $n})", params));
    agec_lsn token = 0;
    agec_test_must(agec_cluster_commit_lsn(w, &token, &err), &err, "commit lsn");
    agec_conn_release(w);
    return token;
}

/* Count P vertices on a read connection that sees `token`; *standby tells
 * whether a standby answered. */
static long read_count(agec_cluster *cl, agec_lsn token, bool *standby)
{
    agec_conn *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cluster_acquire_at(cl, AGEC_ACCESS_READ, token, 30000, &r, &err, __FILE__,
                                           __LINE__, __func__),
                   &err, "acquire read");
    (void)tc_conn_port(r, standby);
    long n = cypher_long(r, GRAPH_CL, "MATCH (p:P) RETURN count(p)");
    agec_conn_release(r);
    return n;
}

static void test_age_on_cluster_with_failover(void **state)
{
    (void)state;
    test_cluster tc;
    tc_start_age(&tc);
    agec_cluster_config cfg;
    agec_pool_config pool;
    tc_config(&tc, &cfg, &pool, 4);
    pool.age_mode = AGEC_AGE_LOAD;
    cfg.ryw_wait_ms = 5000; /* the standbys stream on loopback: they catch up */
    agec_cluster *cl = tc_open(&cfg);

    agec_conn *w = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cluster_acquire_write(cl, &w, &err), &err, "acquire write");
    agec_test_graph_fresh(w, GRAPH_CL);
    agec_conn_release(w);
    int primary = -1;
    agec_lsn token = 0;
    for (int n = 1; n <= 3; n++)
        token = write_vertex(cl, n, &primary, &tc);
    assert_int_equal(primary, 0);
    bool standby = false;
    assert_int_equal(read_count(cl, token, &standby), 3);
    assert_true(standby); /* Cypher on a hot standby, AGE loaded there */

    /* Failover: node 0 down, node 1 promoted, node 2 follows node 1. */
    assert_int_equal(tc_script(&tc, "stop-node", "0"), 0);
    assert_int_equal(tc_script(&tc, "promote", "1"), 0);
    assert_int_equal(tc_script(&tc, "follow", "2 1"), 0);
    token = write_vertex(cl, 4, &primary, &tc);
    assert_int_equal(primary, 1);
    assert_int_equal(read_count(cl, token, &standby), 4);
    fprintf(stderr, "after failover: read of 4 vertices answered by a %s\n",
            standby ? "standby" : "primary");

    assert_int_equal(agec_cluster_close(cl, 2000, &err), AGEC_OK);
    tc_stop(&tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cypher_transactions_many_sessions),
        cmocka_unit_test(test_age_on_cluster_with_failover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
