/*
 * Issue 23 on the Apache AGE server (PGlite): COPY through agec_sql_exec
 * ends, a cached plan recovers after DDL, typed accessors on agtype and SQL
 * columns, command tags, an empty statement, err->code after a success,
 * UNION columns named by the first branch, the graph helpers with options,
 * and a 3F000 for an existing graph without the "create the graph first"
 * hint.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/agtype.h"
#include "agec/pool.h"

#define GRAPH "it_edges_age"

static agec_pool *pool;

static int setup(void **state)
{
    (void)state;
    pool = agec_test_age_pool(1);
    agec_conn *c = agec_test_acquire(pool);
    agec_test_graph_drop(c, GRAPH);
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c = NULL;
    if (agec_pool_acquire(pool, &c, NULL) == AGEC_OK) {
        (void)agec_graph_drop(c, GRAPH, true, NULL);
        agec_result *r = NULL;
        if (agec_sql_exec(c, "DROP TABLE IF EXISTS it_edges_age_t", 0, NULL, NULL, &r, NULL) !=
            AGEC_OK)
            print_message("teardown: could not drop it_edges_age_t\n");
        agec_result_free(r);
        agec_conn_release(c);
    }
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

static void test_sql_edges_on_age(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    /* COPY ends with an error, the connection stays usable. */
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 2000;
    agec_status st = agec_sql_exec(c, "COPY (SELECT 1) TO STDOUT", 0, NULL, &o, &r, &err);
    assert_int_not_equal(st, AGEC_OK);
    assert_int_not_equal(st, AGEC_ERR_TIMEOUT);
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "after COPY");
    assert_int_equal(err.code, AGEC_OK);
    agec_result_free(r);
    /* A cached plan after DDL. */
    agec_test_sql(c, "DROP TABLE IF EXISTS it_edges_age_t");
    agec_test_sql(c, "CREATE TABLE it_edges_age_t (a int)");
    agec_test_must(agec_sql_exec(c, "SELECT * FROM it_edges_age_t", 0, NULL, NULL, &r, &err), &err,
                   "select");
    agec_result_free(r);
    agec_test_sql(c, "ALTER TABLE it_edges_age_t ADD COLUMN b int");
    agec_test_must(agec_sql_exec(c, "SELECT * FROM it_edges_age_t", 0, NULL, NULL, &r, &err), &err,
                   "select after ALTER");
    assert_int_equal(agec_result_columns(r), 2);
    agec_result_free(r);
    /* Command tag; typed SQL values. */
    agec_test_must(agec_sql_exec(c,
                                 "INSERT INTO it_edges_age_t SELECT g, g FROM "
                                 "generate_series(1, 5) g",
                                 0, NULL, NULL, &r, &err),
                   &err, "insert");
    assert_string_equal(agec_result_command(r), "INSERT 0 5");
    assert_int_equal(agec_result_affected(r), 5);
    agec_result_free(r);
    agec_test_must(agec_sql_exec(c, "SELECT true, now()", 0, NULL, NULL, &r, &err), &err, "sel");
    bool b = false;
    agec_test_must(agec_result_get_bool(r, 0, 0, &b, &err), &err, "bool");
    assert_true(b);
    const agec_value *v = NULL;
    agec_test_must(agec_result_value(r, 0, 1, &v, &err), &err, "timestamptz as value");
    assert_int_equal(agec_value_type(v), AGEC_TYPE_STRING);
    agec_result_free(r);
    /* An empty statement. */
    assert_int_equal(agec_sql_exec(c, "-- nothing", 0, NULL, NULL, &r, &err), AGEC_ERR_INVALID_ARG);
    agec_conn_release(c);
}

static void test_cypher_edges_on_age(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = 10000;
    agec_test_must(agec_graph_create_opts(c, GRAPH, &o, &err), &err, "create");
    /* A graph that exists: no "create the graph first". */
    assert_int_not_equal(agec_graph_create(c, GRAPH, &err), AGEC_OK);
    assert_null(strstr(err.hint, "create the graph first"));
    /* The hint where it belongs. */
    agec_result *r = NULL;
    assert_int_not_equal(agec_cypher_exec(c, "it_edges_nope", "RETURN 1", NULL, NULL, &r, &err),
                         AGEC_OK);
    assert_non_null(strstr(err.hint, "create the graph first"));
    /* UNION: the first branch names the column. */
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN 1 UNION RETURN 2", NULL, NULL, &r, &err),
                   &err, "union");
    assert_string_equal(agec_result_column_name(r, 0), "1");
    assert_int_equal(agec_result_rows(r), 2);
    int64_t i = 0;
    agec_test_must(agec_result_get_int64(r, 0, 0, &i, &err), &err, "agtype int");
    assert_true(i == 1 || i == 2);
    agec_result_free(r);
    /* Parameters in one call, a property by C string. */
    char *params = NULL;
    agec_test_must(agec_params(&params, &err, AGEC_P_STR("name", "Ada"), AGEC_P_INT("born", 1815)),
                   &err, "params");
    agec_test_must(agec_cypher_exec(c, GRAPH, "CREATE (p:P {name: $name, born: $born}) RETURN p",
                                    params, NULL, &r, &err),
                   &err, "create vertex");
    agec_free(params);
    const agec_value *p = NULL;
    agec_test_must(agec_result_value(r, 0, 0, &p, &err), &err, "vertex");
    int64_t born = 0;
    agec_test_must(agec_value_get_int64(agec_element_property(p, "born"), &born, &err), &err,
                   "born");
    assert_true(born == 1815);
    agec_result_free(r);
    /* err->code after a success. */
    assert_int_not_equal(agec_cypher_exec(c, GRAPH, "RETURN nope(", NULL, NULL, &r, &err), AGEC_OK);
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN 1", NULL, NULL, &r, &err), &err, "ok");
    assert_int_equal(err.code, AGEC_OK);
    agec_result_free(r);
    agec_test_must(agec_graph_create_indexes_opts(c, GRAPH, NULL, &o, &err), &err, "indexes");
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_edges_on_age),
        cmocka_unit_test(test_cypher_edges_on_age),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
