/*
 * Issue 25: Cypher reads on hot standbys with native Apache AGE 1.6 on every
 * node of the replicated test cluster (scripts/pg-cluster-server with
 * AGEC_CLUSTER_AGE=1), and the read routing that follows from them.
 *
 *  - Every construct of a table runs on a standby directly (asserting which
 *    ones AGE refuses there with 55000: the table is the measurement behind
 *    agec/cluster_cypher.h) and through agec_cluster_cypher_read (all of
 *    them succeed with the primary's rows; the refused ones went to the
 *    primary, counted in acquires_read_primary).
 *  - A read the classifier cannot see through (a user function that calls
 *    AGE's graph_stats) fails on the standby and is retried on the primary
 *    once, counted in the standby's recovery_errors; streaming too.
 *  - `agec --read-only --graph G query` with a variable-length path.
 *  - A read-only SERIALIZABLE agec_cluster_tx_run (a standby refuses it).
 *
 * One cluster for the program (group setup). Runs through tests/on-native-age.
 */
#include "test_cluster_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"

#ifndef AGEC_CLI_PATH
#error "AGEC_CLI_PATH must point to the agec binary"
#endif

#define GRAPH "it_cluster_age"

static test_cluster tc;
static agec_cluster *cl;

static agec_result *must_rows(agec_conn *c, const char *q)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH, q, NULL, NULL, &r, &err), &err, q);
    return r;
}

static agec_conn *acquire(agec_access access, agec_lsn token)
{
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(
        agec_cluster_acquire_at(cl, access, token, 30000, &c, &err, __FILE__, __LINE__, __func__),
        &err, "acquire");
    return c;
}

static uint64_t sum_stat(size_t offset)
{
    uint64_t s = 0;
    for (int i = 0; i < 3; i++) {
        agec_cluster_node_stats st = tc_node_stats(cl, i);
        s += *(const uint64_t *)(const void *)((const char *)&st + offset);
    }
    return s;
}
#define SUM(field) sum_stat(offsetof(agec_cluster_node_stats, field))

static int setup(void **state)
{
    (void)state;
    tc_start_age(&tc);
    static agec_cluster_config cfg;
    static agec_pool_config pool;
    tc_config(&tc, &cfg, &pool, 4);
    pool.age_mode = AGEC_AGE_LOAD;
    cfg.ryw_wait_ms = 10000; /* loopback standbys catch up well within it */
    cl = tc_open(&cfg);
    agec_conn *w = acquire(AGEC_ACCESS_WRITE, 0);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_create(w, GRAPH, &err), &err, "graph create");
    agec_result_free(must_rows(w, "CREATE (:P {n: 1})-[:K]->(:P {n: 2})-[:K]->(:P {n: 3})"));
    agec_test_sql(w, "CREATE FUNCTION public.agec_hidden_stats(g ag_catalog.agtype) "
                     "RETURNS ag_catalog.agtype LANGUAGE sql "
                     "AS $f$ SELECT ag_catalog.age_graph_stats(g) $f$");
    agec_lsn token = 0;
    agec_test_must(agec_cluster_commit_lsn(w, &token, &err), &err, "commit lsn");
    agec_conn_release(w);
    /* Both standbys have replayed it before the tests read there. */
    PGconn *p = tc_node(&tc, 0);
    for (int k = 0; k < 600 && pg_int(p, "SELECT count(*) FROM pg_stat_replication "
                                         "WHERE replay_lsn >= pg_current_wal_lsn()") < 2;
         k++)
        (void)pg_int(p, "SELECT 0 FROM pg_sleep(0.05)");
    assert_int_equal(pg_int(p, "SELECT count(*) FROM pg_stat_replication "
                               "WHERE replay_lsn >= pg_current_wal_lsn()"),
                     2);
    (void)token;
    PQfinish(p);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_error err = AGEC_ERROR_INIT;
    if (cl != NULL)
        (void)agec_cluster_close(cl, 2000, &err);
    tc_stop(&tc);
    return 0;
}

typedef struct construct {
    const char *query;
    size_t rows;
    bool refused_on_standby; /* AGE 1.6 fails it there with 55000 */
} construct;

static const construct CONSTRUCTS[] = {
    { "MATCH (a:P) RETURN count(a)", 1, false },
    { "MATCH p=(a:P {n:1})-[:K*1..3]->(b) RETURN length(p), b.n", 2, true },
    { "MATCH (a:P {n:1})-[*]->(b) RETURN b.n", 2, true },
    { "MATCH (a:P {n:3})<-[:K*1..2]-(b) RETURN b.n", 2, true },
    { "MATCH (a)-[*]-(b) RETURN count(*)", 1, true },
    { "MATCH (a:P {n:1}) OPTIONAL MATCH (a)-[:K*2]->(c) RETURN c.n", 1, true },
    { "MATCH (a:P) WHERE exists((a)-[:K*1..2]->()) RETURN a.n", 2, true },
    { "MATCH (a:P) WITH a MATCH (a)-[:K*0..1]->(b) RETURN count(b)", 1, true },
    { "MATCH p=(a:P {n:1})-[*1..2]->(b) RETURN relationships(p)", 2, true },
    { "MATCH (a:P)-[e:K]->() RETURN startNode(e).n", 2, true },
    { "MATCH (a:P)-[e:K]->() RETURN endNode(e).n", 2, true },
    { "MATCH (a:P {n:1}) RETURN vertex_stats(a)", 1, true },
    { "RETURN graph_stats('" GRAPH "')", 1, true },
    { "MATCH p=(a:P)-[:K]->(b) RETURN nodes(p)", 2, false },
    { "MATCH p=(a:P {n:1})-[:K]->(b) RETURN relationships(p)", 1, false },
    { "MATCH (a:P {n:1})-[:K]->()-[:K]->(c) RETURN c.n", 1, false },
    { "MATCH ()-[e]->() RETURN type(e)", 2, false },
    { "MATCH (a) RETURN labels(a)", 3, false },
    { "MATCH (a:P) WHERE exists((a)-[:K]->()) RETURN a.n", 2, false },
    { "MATCH (a:P) RETURN a.n ORDER BY a.n DESC LIMIT 1", 1, false },
    { "MATCH (a:P) RETURN collect(a.n)", 1, false },
    { "UNWIND [1, 2] AS x RETURN x", 2, false },
    { "MATCH (a:P) RETURN a.n UNION MATCH (b:P) RETURN b.n", 3, false },
    { "MATCH (a:P) WHERE a.n IN [1, 2] RETURN a.n", 2, false },
};
#define N_CONSTRUCTS (sizeof CONSTRUCTS / sizeof *CONSTRUCTS)

/* Each construct on a standby as it is, then through the cluster's read. */
static void test_constructs_on_standby(void **state)
{
    (void)state;
    size_t refused = 0;
    for (size_t i = 0; i < N_CONSTRUCTS; i++) {
        const construct *k = &CONSTRUCTS[i];
        agec_conn *s = acquire(AGEC_ACCESS_READ, 0);
        bool rec = false;
        (void)tc_conn_port(s, &rec);
        assert_true(rec);
        agec_error err = AGEC_ERROR_INIT;
        agec_result *r = NULL;
        agec_status st = agec_cypher_exec(s, GRAPH, k->query, NULL, NULL, &r, &err);
        fprintf(stderr, "standby: %-62s %s %s\n", k->query, st == AGEC_OK ? "ok" : err.sqlstate,
                st == AGEC_OK ? "" : err.message);
        if (k->refused_on_standby) {
            assert_int_equal(st, AGEC_ERR_SERVER);
            assert_string_equal(err.sqlstate, "55000");
            refused++;
        } else {
            agec_test_must(st, &err, k->query);
            assert_int_equal(agec_result_rows(r), k->rows);
        }
        agec_result_free(r);
        /* A refused VLE leaves AGE's graph-context mutex locked in that
         * session (see agec/cluster_cypher.h): never reuse it. */
        if (st != AGEC_OK)
            agec_conn_release_broken(s);
        else
            agec_conn_release(s);
        assert_int_equal(agec_cypher_needs_primary(k->query, NULL), k->refused_on_standby);
    }
    uint64_t on_primary = SUM(acquires_read_primary);
    uint64_t retried = SUM(recovery_errors);
    for (size_t i = 0; i < N_CONSTRUCTS; i++) {
        const construct *k = &CONSTRUCTS[i];
        agec_error err = AGEC_ERROR_INIT;
        agec_result *r = NULL;
        agec_test_must(
            agec_cluster_cypher_read(cl, 0, 30000, GRAPH, k->query, NULL, NULL, &r, &err), &err,
            k->query);
        assert_int_equal(agec_result_rows(r), k->rows);
        agec_result_free(r);
    }
    assert_int_equal(SUM(acquires_read_primary) - on_primary, refused);
    assert_int_equal(SUM(recovery_errors), retried); /* none needed the safety net */
}

typedef struct counted {
    size_t rows;
} counted;

static bool count_row(agec_result *row, void *user)
{
    (void)row;
    ((counted *)user)->rows++;
    return true;
}

/* The classifier cannot see AGE's graph context behind a user function:
 * the standby refuses it, and the read is run again on the primary. Four
 * rounds over two standbys: a refused session put back in a pool would be
 * reused in round 3 and wait forever on AGE's mutex (the statement timeout
 * turns that into a failure here). */
static void test_refused_read_retried_on_primary(void **state)
{
    (void)state;
    const char *q = "RETURN public.agec_hidden_stats('" GRAPH "')";
    assert_false(agec_cypher_needs_primary(q, NULL));
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 20000;
    for (int round = 0; round < 4; round++) {
        uint64_t retried = SUM(recovery_errors), on_primary = SUM(acquires_read_primary);
        agec_error err = AGEC_ERROR_INIT;
        if (round % 2 == 0) {
            agec_result *r = NULL;
            agec_test_must(agec_cluster_cypher_read(cl, 0, 30000, GRAPH, q, NULL, &o, &r, &err),
                           &err, q);
            assert_int_equal(agec_result_rows(r), 1);
            assert_non_null(strstr(agec_result_text(r, 0, 0, NULL), "num_loaded_vertices"));
            agec_result_free(r);
        } else {
            counted n = { 0 };
            agec_test_must(agec_cluster_cypher_read_stream(cl, 0, 30000, GRAPH, q, NULL, &o,
                                                           count_row, &n, &err),
                           &err, q);
            assert_int_equal(n.rows, 1);
        }
        assert_int_equal(SUM(recovery_errors), retried + 1);
        assert_int_equal(SUM(acquires_read_primary), on_primary + 1);
    }
}

/* The reproduction: agec --read-only on a variable-length path. */
static void test_cli_read_only_variable_length(void **state)
{
    (void)state;
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "%s --dsn '%s' --read-only --format json --graph " GRAPH
             " query 'MATCH p=(a:P {n:1})-[:K*1..3]->(b) RETURN length(p), b.n' 2>&1",
             AGEC_CLI_PATH, tc.conninfo);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int rc = pclose(f);
    fprintf(stderr, "agec --read-only: %s", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"b.n\": 2"));
    assert_non_null(strstr(out, "\"b.n\": 3"));
}

static agec_status select_one(agec_conn *c, void *user, agec_error *err)
{
    (void)user;
    agec_result *r = NULL;
    agec_status st = agec_sql_exec(c, "SELECT pg_is_in_recovery()", 0, NULL, NULL, &r, err);
    agec_result_free(r);
    return st;
}

/* Item 7: a hot standby refuses SERIALIZABLE (0A000): the primary runs it. */
static void test_serializable_read_only_tx(void **state)
{
    (void)state;
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.read_only = true;
    o.isolation = AGEC_ISOLATION_SERIALIZABLE;
    for (int i = 0; i < 3; i++) { /* whatever the round robin's turn */
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_cluster_tx_run(cl, &o, select_one, NULL, &err), &err,
                       "read-only serializable transaction");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructs_on_standby),
        cmocka_unit_test(test_refused_read_retried_on_primary),
        cmocka_unit_test(test_cli_read_only_variable_length),
        cmocka_unit_test(test_serializable_read_only_tx),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
