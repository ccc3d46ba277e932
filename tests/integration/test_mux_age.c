/*
 * Issue 28: Cypher through the multiplexer on Apache AGE (PGlite, and
 * native AGE 1.6 as the _native twin): the same SQL text and parameter
 * binding as agec_cypher_exec, each caller its own rows, its own error
 * with the position inside its Cypher text, callbacks and handles.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "agec/agec.h"

#define GRAPH "it_mux_age"

static agec_pool *pool;
static agec_mux *mux;

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_age_conninfo();
    cfg.max = 3;
    cfg.age_mode = AGEC_AGE_LOAD;
    cfg.on_event = agec_pool_event_ignore;
    cfg.acquire_timeout_ms = 5000;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c = agec_test_acquire(pool);
    agec_test_graph_fresh(c, GRAPH);
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH, "UNWIND range(0, 49) AS i CREATE (:P {k: i})", NULL,
                                    NULL, &r, &err),
                   &err, "create");
    agec_result_free(r);
    agec_conn_release(c);
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 2;
    agec_test_must(agec_mux_open(pool, &mc, &mux, &err), &err, "mux");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_mux_close(mux);
    agec_conn *c;
    if (agec_pool_acquire(pool, &c, NULL) == AGEC_OK) {
        (void)agec_graph_drop(c, GRAPH, true, NULL);
        agec_conn_release(c);
    }
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

typedef struct caller {
    int id, wrong, errors;
} caller;

static void *match_own(void *arg)
{
    caller *c = arg;
    for (int i = 0; i < 30; i++) {
        int k = (c->id * 7 + i) % 50;
        char params[32];
        snprintf(params, sizeof params, "{\"k\": %d}", k);
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st =
            agec_mux_cypher(mux, GRAPH, "MATCH (v:P) WHERE v.k = $k RETURN v.k, v.k * 2 AS twice",
                            params, NULL, &r, &err);
        if (st != AGEC_OK) {
            fprintf(stderr, "caller %d: %s %s\n", c->id, agec_status_name(st), err.message);
            c->errors++;
            continue;
        }
        int64_t a = -1, b = -1;
        if (agec_result_rows(r) != 1 || agec_result_get_int64(r, 0, 0, &a, NULL) != AGEC_OK ||
            agec_result_get_int64(r, 0, 1, &b, NULL) != AGEC_OK || a != k || b != 2 * k ||
            strcmp(agec_result_column_name(r, 1), "twice") != 0)
            c->wrong++;
        agec_result_free(r);
    }
    return NULL;
}

static void test_cypher_own_rows(void **state)
{
    (void)state;
    enum { N = 6 };
    pthread_t t[N];
    caller c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (caller){ .id = i };
        assert_int_equal(pthread_create(&t[i], NULL, match_own, &c[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].errors, 0);
        assert_int_equal(c[i].wrong, 0);
    }
}

/* A Cypher error reaches only its caller, with the position in its query,
 * while other callers' statements pipelined beside it succeed. */
static void test_cypher_error_is_own(void **state)
{
    (void)state;
    agec_mux_op *ok1 = NULL, *bad = NULL, *ok2 = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_submit_cypher(mux, GRAPH, "MATCH (v:P) RETURN count(v)", NULL, NULL,
                                          NULL, NULL, &ok1, &err),
                   &err, "ok1");
    agec_test_must(agec_mux_submit_cypher(mux, GRAPH, "MATCH (v:P) RETURN v.k +", NULL, NULL, NULL,
                                          NULL, &bad, &err),
                   &err, "bad");
    agec_test_must(agec_mux_submit_cypher(mux, GRAPH, "MATCH (v:P {k: 3}) RETURN v.k", NULL, NULL,
                                          NULL, NULL, &ok2, &err),
                   &err, "ok2");
    agec_result *r = NULL;
    agec_test_must(agec_mux_wait(ok1, 10000, &r, &err), &err, "wait ok1");
    int64_t n = 0;
    assert_int_equal(agec_result_get_int64(r, 0, 0, &n, NULL), AGEC_OK);
    assert_int_equal(n, 50);
    agec_result_free(r);
    agec_error e = AGEC_ERROR_INIT;
    assert_int_equal(agec_mux_wait(bad, 10000, &r, &e), AGEC_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42601");
    /* Inside the Cypher text (1-based; "+" ends at 24), not the SQL around it. */
    assert_true(e.position > 0 && e.position <= 26);
    agec_test_must(agec_mux_wait(ok2, 10000, &r, &err), &err, "wait ok2");
    assert_int_equal(agec_result_get_int64(r, 0, 0, &n, NULL), AGEC_OK);
    assert_int_equal(n, 3);
    agec_result_free(r);
    agec_mux_op_free(ok1);
    agec_mux_op_free(bad);
    agec_mux_op_free(ok2);
    /* A bad graph name is refused before anything is sent. */
    assert_int_equal(agec_mux_cypher(mux, "no such graph", "RETURN 1", NULL, NULL, &r, &e),
                     AGEC_ERR_NAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cypher_own_rows),
        cmocka_unit_test(test_cypher_error_is_own),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
