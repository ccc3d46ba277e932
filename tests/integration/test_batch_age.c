/*
 * Cypher in pipelined batches (agec/batch.h, issue 28) on the AGE server
 * (and, labelled `age`, on native AGE as it_batch_age_native): CREATE with
 * bound agtype parameters and MATCH in one batch, results in order; a bad
 * Cypher statement fails alone with the server's SQLSTATE and a position
 * inside the Cypher text; all-or-nothing rolls the graph writes back.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"

#define GRAPH "it_batch"

static agec_pool *pool;

static int setup(void **state)
{
    (void)state;
    pool = agec_test_age_pool(1);
    agec_conn *c = agec_test_acquire(pool);
    agec_test_graph_fresh(c, GRAPH);
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c;
    if (agec_pool_acquire(pool, &c, NULL) == AGEC_OK) {
        agec_test_graph_drop(c, GRAPH);
        agec_conn_release(c);
    }
    agec_pool_close(pool, 2000, NULL);
    return 0;
}

static long people(agec_conn *c)
{
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(
        agec_cypher_exec(c, GRAPH, "MATCH (p:Person) RETURN count(p)", NULL, NULL, &r, &err), &err,
        "count");
    int64_t n = -1;
    agec_test_must(agec_result_get_int64(r, 0, 0, &n, &err), &err, "count value");
    agec_result_free(r);
    return (long)n;
}

static agec_batch *batch_new(agec_conn *c, bool all)
{
    agec_batch_opts o;
    agec_batch_opts_init(&o);
    o.all_or_nothing = all;
    o.timeout_ms = 20000;
    agec_batch *b = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_create(c, &o, &b, &err), &err, "create");
    return b;
}

static void add_create(agec_batch *b, int i)
{
    char params[64];
    snprintf(params, sizeof params, "{\"i\": %d, \"name\": \"p%d\"}", i, i);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_add_cypher(b, GRAPH,
                                         "CREATE (p:Person {i: $i, name: $name}) RETURN p.i",
                                         params, NULL, &err),
                   &err, "add create");
}

static void test_cypher_in_order(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_batch *b = batch_new(c, false);
    for (int i = 0; i < 20; i++)
        add_create(b, i);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_add_cypher(b, GRAPH,
                                         "MATCH (p:Person) WHERE p.i < $n RETURN p.name ORDER BY "
                                         "p.i",
                                         "{\"n\": 3}", NULL, &err),
                   &err, "add match");
    /* A bad one in the middle of the batch fails alone. */
    agec_test_must(
        agec_batch_add_cypher(b, GRAPH, "MATCH (p:Person) RETURN p.i +", NULL, NULL, &err), &err,
        "add bad");
    add_create(b, 20);
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
    assert_non_null(strstr(err.message, "statement 21: "));
    for (int i = 0; i < 20; i++) {
        agec_result *r = agec_batch_result(b, (size_t)i);
        assert_non_null(r);
        int64_t v = -1;
        agec_test_must(agec_result_get_int64(r, 0, 0, &v, &err), &err, "p.i");
        assert_int_equal(v, i);
    }
    agec_result *m = agec_batch_result(b, 20);
    assert_non_null(m);
    assert_int_equal(agec_result_rows(m), 3);
    assert_string_equal(agec_result_text(m, 2, 0, NULL), "\"p2\"");
    agec_error e = AGEC_ERROR_INIT;
    assert_int_equal(agec_batch_status(b, 21, &e), AGEC_ERR_SERVER);
    assert_string_equal(e.sqlstate, "42601");
    /* The position counts within the Cypher text (1-based), not the SQL. */
    assert_true(e.position > 0 && e.position <= (int)strlen("MATCH (p:Person) RETURN p.i +") + 1);
    assert_int_equal(agec_batch_status(b, 22, NULL), AGEC_OK);
    agec_batch_free(b);
    assert_int_equal(people(c), 21);
    agec_conn_release(c);
}

static void test_cypher_all_or_nothing(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    long before = people(c);
    agec_batch *b = batch_new(c, true);
    for (int i = 100; i < 105; i++)
        add_create(b, i);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_add_cypher(b, GRAPH, "RETURN 1 / 0", NULL, NULL, &err), &err,
                   "add failing");
    add_create(b, 105);
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_SERVER);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(agec_batch_status(b, i, NULL),
                         i == 5 ? AGEC_ERR_SERVER : AGEC_ERR_BATCH_ABORTED);
    agec_batch_free(b);
    assert_int_equal(people(c), before); /* rolled back */
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cypher_in_order),
        cmocka_unit_test(test_cypher_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
