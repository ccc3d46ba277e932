/*
 * Cypher through the pool on the Apache AGE server: bound parameters,
 * exact round trips of values, injection attempts, errors with SQLSTATE and
 * position, graph management, transactions with Cypher, streaming.
 */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/agtype.h"
#include "agec/pool.h"

#define GRAPH "it_cypher"

static agec_pool *pool;

static int setup(void **state)
{
    (void)state;
    pool = agec_test_age_pool(2);
    agec_error err = AGEC_ERROR_INIT;
    agec_conn *c = agec_test_acquire(pool);
    agec_test_graph_fresh(c, GRAPH);
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "CREATE TABLE IF NOT EXISTS public.canary(x int)", 0, NULL,
                                 NULL, &r, &err),
                   &err, "canary");
    agec_result_free(r);
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_acquire(pool, &c, &err) == AGEC_OK) {
        (void)agec_graph_drop(c, GRAPH, true, NULL);
        agec_conn_release(c);
    }
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

static agec_conn *get(void)
{
    return agec_test_acquire(pool);
}

static void test_create_and_match_vertex(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH, "CREATE (:Person {name: $name, born: $born})",
                                    "{\"name\": \"Ada\", \"born\": 1815}", NULL, &r, &err),
                   &err, "create");
    agec_result_free(r);
    agec_test_must(agec_cypher_exec(c, GRAPH,
                                    "MATCH (p:Person {name: $name}) RETURN p, p.born AS born",
                                    "{\"name\": \"Ada\"}", NULL, &r, &err),
                   &err, "match");
    assert_int_equal(agec_result_rows(r), 1);
    assert_int_equal(agec_result_columns(r), 2);
    assert_string_equal(agec_result_column_name(r, 0), "p");
    assert_string_equal(agec_result_column_name(r, 1), "born");
    const agec_value *p;
    agec_test_must(agec_result_value(r, 0, 0, &p, &err), &err, "value");
    assert_int_equal(agec_value_type(p), AGEC_TYPE_VERTEX);
    const char *label;
    size_t len;
    agec_test_must(agec_element_label(p, &label, &len, &err), &err, "label");
    assert_int_equal(len, 6);
    assert_memory_equal(label, "Person", 6);
    const agec_value *born = agec_value_get(agec_element_properties(p), "born", 4);
    int64_t b;
    agec_test_must(agec_value_get_int64(born, &b, &err), &err, "born");
    assert_int_equal(b, 1815);
    agec_result_free(r);
    agec_conn_release(c);
}

/* Write a value as a parameter, RETURN it, parse, compare. */
static void roundtrip(agec_conn *c, const char *param_value)
{
    char params[4096];
    snprintf(params, sizeof params, "{\"v\": %s}", param_value);
    agec_value *want_map = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_agtype_parse(params, strlen(params), 0, &want_map, &err), &err, params);
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN $v", params, NULL, &r, &err), &err, params);
    const agec_value *got;
    agec_test_must(agec_result_value(r, 0, 0, &got, &err), &err, "parse");
    const agec_value *want = agec_value_get(want_map, "v", 1);
    if (!agec_value_equal(got, want))
        fail_msg("round trip of %s gave %s", param_value, agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    agec_value_free(want_map);
}

static void test_roundtrip_values(void **state)
{
    (void)state;
    agec_conn *c = get();
    static const char *values[] = {
        "9223372036854775807",
        "-9223372036854775808",
        "0",
        "1.5",
        "1e+300",
        "4.9406564584124654e-324", /* smallest subnormal */
        "2.2250738585072009e-308",
        "1.7976931348623157e+308",
        "NaN",
        "Infinity",
        "-Infinity",
        "123456789012345678901234567890.123456789::numeric",
        "-0.000000000000000000000000000001::numeric",
        "\"quote \\\" backslash \\\\ dollar $$ tag $agec$ $tag$\"",
        "\"new\\nline\\ttab\\r\\u0001\\u001f ctrl\"",
        "\"emoji \xf0\x9f\x98\x80 \xe6\xbc\xa2\xe5\xad\x97 \\ud83d\\ude00\"",
        "\"'); DROP TABLE canary; --\"",
        "true",
        "false",
        "[1, [2, [3, [4]]], {\"a\": {\"b\": null}}]",
        "{\"k\": [1.25, \"x\", {\"n\": -1}], \"e\": {}}",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        roundtrip(c, values[i]);
    agec_conn_release(c);
}

static void test_roundtrip_builder_params(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_builder *b;
    agec_test_must(agec_builder_new(&b, &err), &err, "builder");
    (void)agec_builder_begin_map(b, &err);
    (void)agec_builder_key(b, "s", 1, &err);
    static const char str[] = "it's $$ a \"test\"\n\\";
    (void)agec_builder_string(b, str, sizeof str - 1, &err);
    (void)agec_builder_key(b, "i", 1, &err);
    (void)agec_builder_int64(b, INT64_MIN, &err);
    (void)agec_builder_key(b, "f", 1, &err);
    (void)agec_builder_double(b, -INFINITY, &err);
    (void)agec_builder_end_map(b, &err);
    char *text;
    size_t len;
    agec_test_must(agec_builder_finish(b, &text, &len, &err), &err, "finish");
    agec_builder_free(b);
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN $s, $i, $f", text, NULL, &r, &err), &err,
                   "exec");
    const agec_value *v;
    const char *s;
    size_t slen;
    agec_test_must(agec_result_value(r, 0, 0, &v, &err), &err, "s");
    agec_test_must(agec_value_get_string(v, &s, &slen, &err), &err, "s");
    assert_int_equal(slen, sizeof str - 1);
    assert_memory_equal(s, str, sizeof str - 1);
    int64_t i;
    agec_test_must(agec_result_value(r, 0, 1, &v, &err), &err, "i");
    agec_test_must(agec_value_get_int64(v, &i, &err), &err, "i");
    assert_true(i == INT64_MIN);
    double f;
    agec_test_must(agec_result_value(r, 0, 2, &v, &err), &err, "f");
    agec_test_must(agec_value_get_double(v, &f, &err), &err, "f");
    assert_true(isinf(f) && f < 0);
    agec_result_free(r);
    agec_free(text);
    agec_conn_release(c);
}

static void test_injection_is_inert(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    /* Hostile graph names never reach the server. */
    static const char *graphs[] = { "x'); DROP TABLE canary; --", "it_cypher$$", "a\\b'c", "",
                                    "g\"x" };
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++)
        assert_int_equal(agec_cypher_exec(c, graphs[i], "RETURN 1", NULL, NULL, &r, &err),
                         AGEC_ERR_NAME);
    /* Hostile text in parameters and in the query is stored verbatim. */
    const char *evil = "{\"name\": \"'); DROP TABLE canary; -- $$ $agec$ \\\\\"}";
    agec_test_must(agec_cypher_exec(c, GRAPH, "CREATE (n:Evil {name: $name}) RETURN n.name", evil,
                                    NULL, &r, &err),
                   &err, "evil param");
    assert_string_equal(agec_result_text(r, 0, 0, NULL),
                        "\"'); DROP TABLE canary; -- $$ $agec$ \\\\\"");
    agec_result_free(r);
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN '$agec$); DROP TABLE canary; --' AS s", NULL,
                                    NULL, &r, &err),
                   &err, "evil query text");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "\"$agec$); DROP TABLE canary; --\"");
    agec_result_free(r);
    /* A NUL inside a parameter string is refused by the server, not truncated. */
    assert_int_not_equal(
        agec_cypher_exec(c, GRAPH, "RETURN $s", "{\"s\": \"a\\u0000b\"}", NULL, &r, &err), AGEC_OK);
    assert_null(r);
    agec_test_must(agec_sql_exec(c, "SELECT count(*) FROM public.canary", 0, NULL, NULL, &r, &err),
                   &err, "canary survives");
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_errors_carry_server_fields(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_status st = agec_cypher_exec(c, GRAPH, "MATCH (n RETURN n", NULL, NULL, &r, &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "42601");
    assert_int_equal(err.position, 10); /* "RETURN", within the Cypher text */
    assert_null(r);
    st = agec_cypher_exec(c, GRAPH, "MATCH (n) WHERE n.s = 'é' RETURN m", NULL, NULL, &r, &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_int_equal(err.position, 34); /* "m": characters (35 in bytes) */
    st = agec_cypher_exec(c, GRAPH, "RETURN 1 +", NULL, NULL, &r, &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_int_equal(err.position, 11); /* at end of input */
    st = agec_cypher_exec(c, "no_such_graph", "RETURN 1", NULL, NULL, &r, &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "3F000");
    assert_non_null(strstr(err.hint, "create the graph"));
    /* Column list mismatch gets a hint. */
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.ncolumns = 1;
    st = agec_cypher_exec(c, GRAPH, "RETURN 1, 2", NULL, &o, &r, &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_true(strlen(err.hint) > 0);
    /* The connection is still usable after errors. */
    agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN 1", NULL, NULL, &r, &err), &err,
                   "after errors");
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_prepared_past_generic_plan(void **state)
{
    (void)state;
    /* apache/age PR 2489: prepared cypher() with $1 past the 5th execution. */
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    for (int i = 0; i < 12; i++) {
        char p[64];
        snprintf(p, sizeof p, "{\"x\": %d, \"s\": \"v%d\"}", i, i);
        agec_result *r = NULL;
        agec_test_must(agec_cypher_exec(c, GRAPH, "RETURN $x + 1, $s", p, NULL, &r, &err), &err,
                       "exec");
        int64_t v;
        const agec_value *val;
        agec_test_must(agec_result_value(r, 0, 0, &val, &err), &err, "value");
        agec_test_must(agec_value_get_int64(val, &v, &err), &err, "int");
        assert_int_equal(v, i + 1);
        agec_result_free(r);
    }
    agec_conn_release(c);
}

static const char *one_text(agec_conn *c, const char *graph, const char *query, const char *params,
                            const agec_query_opts *o, agec_result **r)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cypher_exec(c, graph, query, params, o, r, &err), &err, query);
    assert_int_equal(agec_result_rows(*r), 1);
    return agec_result_text(*r, 0, 0, NULL);
}

/* The connection caches the SQL text built per (graph, query, params given)
 * when columns come from RETURN: none of the three may be mixed up, an
 * explicit column list bypasses it, and eviction keeps results right. */
static void test_text_cache_keys(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    const char *g2 = GRAPH "_b";
    bool exists;
    agec_test_must(agec_graph_exists(c, g2, &exists, &err), &err, "exists");
    if (exists)
        agec_test_must(agec_graph_drop(c, g2, true, &err), &err, "drop");
    agec_test_must(agec_graph_create(c, g2, &err), &err, "create");
    agec_result *r = NULL;
    one_text(c, GRAPH, "CREATE (n:K {g: 'a'}) RETURN n.g", NULL, NULL, &r);
    agec_result_free(r);
    one_text(c, g2, "CREATE (n:K {g: 'b'}) RETURN n.g", NULL, NULL, &r);
    agec_result_free(r);
    static const char q[] = "MATCH (n:K) RETURN n.g";
    const char *graphs[] = { GRAPH, g2, GRAPH, g2 };
    const char *want[] = { "\"a\"", "\"b\"", "\"a\"", "\"b\"" };
    for (int i = 0; i < 4; i++) {
        assert_string_equal(one_text(c, graphs[i], q, NULL, NULL, &r), want[i]);
        agec_result_free(r);
    }
    /* With and without parameters: two texts ($1 or not). */
    assert_string_equal(one_text(c, GRAPH, "RETURN 1 AS one", NULL, NULL, &r), "1");
    agec_result_free(r);
    assert_string_equal(one_text(c, GRAPH, "RETURN 1 AS one", "{}", NULL, &r), "1");
    agec_result_free(r);
    assert_string_equal(one_text(c, GRAPH, "RETURN 1 AS one", NULL, NULL, &r), "1");
    /* Explicit columns are not served from the cache. */
    assert_string_equal(agec_result_column_name(r, 0), "one");
    agec_result_free(r);
    agec_query_opts o;
    agec_query_opts_init(&o);
    const char *cols[] = { "x" };
    o.columns = cols;
    o.ncolumns = 1;
    one_text(c, GRAPH, "RETURN 1 AS one", NULL, &o, &r);
    assert_string_equal(agec_result_column_name(r, 0), "x");
    agec_result_free(r);
    one_text(c, GRAPH, "RETURN 1 AS one", NULL, NULL, &r);
    assert_string_equal(agec_result_column_name(r, 0), "one");
    agec_result_free(r);
    /* More distinct queries than the cache holds, twice over. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) {
            char qi[64], v[16];
            snprintf(qi, sizeof qi, "RETURN %d AS v", i);
            snprintf(v, sizeof v, "%d", i);
            assert_string_equal(one_text(c, GRAPH, qi, NULL, NULL, &r), v);
            agec_result_free(r);
        }
    }
    agec_test_must(agec_graph_drop(c, g2, true, &err), &err, "drop");
    agec_conn_release(c);
}

/* A parameter named like agec's dollar-quote tag, at the very end of the
 * query, must not close the quote early. */
static void test_param_named_like_the_tag(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_result *r = NULL;
    assert_string_equal(one_text(c, GRAPH, "RETURN $agec", "{\"agec\": 41}", NULL, &r), "41");
    agec_result_free(r);
    assert_string_equal(
        one_text(c, GRAPH, "RETURN $agec1 + $agec", "{\"agec\": 1, \"agec1\": 2}", NULL, &r), "3");
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_graph_management(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    char **names;
    size_t n;
    agec_test_must(agec_graph_list(c, &names, &n, &err), &err, "list");
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(names[i], GRAPH) == 0;
    assert_true(found);
    agec_strings_free(names);
    agec_test_must(agec_label_create(c, GRAPH, "City", AGEC_LABEL_VERTEX, &err), &err, "vlabel");
    agec_test_must(agec_label_create(c, GRAPH, "LIVES_IN", AGEC_LABEL_EDGE, &err), &err, "elabel");
    assert_int_equal(agec_label_create(c, GRAPH, "bad-label", AGEC_LABEL_EDGE, &err),
                     AGEC_ERR_NAME);
    agec_result *labels = NULL;
    agec_test_must(agec_label_list(c, GRAPH, &labels, &err), &err, "labels");
    int seen = 0;
    for (size_t i = 0; i < agec_result_rows(labels); i++) {
        const char *name = agec_result_text(labels, i, 0, NULL);
        const char *kind = agec_result_text(labels, i, 1, NULL);
        if (strcmp(name, "City") == 0 && strcmp(kind, "vertex") == 0)
            seen++;
        if (strcmp(name, "LIVES_IN") == 0 && strcmp(kind, "edge") == 0)
            seen++;
    }
    assert_int_equal(seen, 2);
    agec_result_free(labels);
    /* Indexes: twice, to prove idempotence; then they exist. */
    agec_test_must(agec_graph_create_indexes(c, GRAPH, NULL, &err), &err, "indexes");
    agec_test_must(agec_graph_create_indexes(c, GRAPH, NULL, &err), &err, "indexes again");
    agec_result *r = NULL;
    const char *v[1] = { GRAPH };
    agec_test_must(
        agec_sql_exec(c,
                      "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname "
                      "LIKE 'LIVES_IN_agec_%'",
                      1, v, NULL, &r, &err),
        &err, "pg_indexes");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "4");
    agec_result_free(r);
    assert_int_equal(agec_graph_create_indexes(c, GRAPH, "Nope", &err), AGEC_ERR_NOT_FOUND);

    /* Two long labels sharing a 56-byte prefix get indexes of their own. */
    static const char *longl[] = {
        "LongLabelLongLabelLongLabelLongLabelLongLabelLongLabel__one",
        "LongLabelLongLabelLongLabelLongLabelLongLabelLongLabel__two",
    };
    for (int i = 0; i < 2; i++) {
        agec_test_must(agec_label_create(c, GRAPH, longl[i], AGEC_LABEL_VERTEX, &err), &err,
                       "long label");
        agec_test_must(agec_graph_create_indexes(c, GRAPH, longl[i], &err), &err, "long indexes");
    }
    agec_test_must(agec_sql_exec(c,
                                 "SELECT count(DISTINCT indexname) FROM pg_indexes WHERE "
                                 "schemaname = $1 AND indexname LIKE 'LongLabel%agec%props'",
                                 1, v, NULL, &r, &err),
                   &err, "pg_indexes long");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "2"); /* props, twice */
    agec_result_free(r);
    /* And one unique index on id each: agec's where AGE made none (1.6),
     * AGE's primary key where it did (1.7), never two. */
    agec_test_must(agec_sql_exec(c,
                                 "SELECT count(*) FROM pg_index i "
                                 "JOIN pg_class t ON t.oid = i.indrelid "
                                 "JOIN pg_namespace n ON n.oid = t.relnamespace "
                                 "JOIN pg_attribute a ON a.attrelid = i.indrelid "
                                 "AND a.attnum = i.indkey[0] "
                                 "WHERE n.nspname = $1 AND t.relname LIKE 'LongLabel%' "
                                 "AND i.indisunique AND i.indnatts = 1 AND a.attname = 'id'",
                                 1, v, NULL, &r, &err),
                   &err, "unique id indexes");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "2");
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_cypher_transactions(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_test_must(
        agec_cypher_exec(c, GRAPH, "CREATE (:Tx {k: 'rolled back'})", NULL, NULL, &r, &err), &err,
        "create");
    agec_result_free(r);
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin 2");
    agec_test_must(agec_cypher_exec(c, GRAPH, "CREATE (:Tx {k: 'kept'})", NULL, NULL, &r, &err),
                   &err, "create 2");
    agec_result_free(r);
    unsigned sp;
    agec_test_must(agec_tx_savepoint(c, &sp, &err), &err, "savepoint");
    agec_test_must(agec_cypher_exec(c, GRAPH, "CREATE (:Tx {k: 'undone'})", NULL, NULL, &r, &err),
                   &err, "create 3");
    agec_result_free(r);
    agec_test_must(agec_tx_rollback_to(c, sp, &err), &err, "rollback to");
    agec_test_must(agec_tx_commit(c, &err), &err, "commit");
    agec_test_must(
        agec_cypher_exec(c, GRAPH, "MATCH (t:Tx) RETURN t.k ORDER BY t.k", NULL, NULL, &r, &err),
        &err, "match");
    assert_int_equal(agec_result_rows(r), 1);
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "\"kept\"");
    agec_result_free(r);
    agec_conn_release(c);
}

static bool count_row(agec_result *row, void *user)
{
    size_t *n = user;
    const agec_value *v;
    if (agec_result_value(row, 0, 0, &v, NULL) == AGEC_OK && agec_value_type(v) == AGEC_TYPE_INT)
        (*n)++;
    return true;
}

static void test_stream_rows(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    size_t n = 0;
    agec_test_must(agec_cypher_stream(c, GRAPH, "UNWIND range(1, 5000) AS i RETURN i", NULL, NULL,
                                      count_row, &n, &err),
                   &err, "stream");
    assert_int_equal(n, 5000);
    agec_conn_release(c);
}

/* Vertices, edges and paths as the server writes them: parse, write back
 * byte for byte, parse again, equal. */
static void test_roundtrip_graph_elements(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, GRAPH,
                                    "CREATE p = (:RT {name: 'a', n: 1, f: 1.5, l: [1, 'x'], "
                                    "m: {k: 'v'}})-[:RT_E {w: -2}]->(:RT {name: 'b'}) "
                                    "RETURN p, nodes(p)[0], relationships(p)[0], [p, p]",
                                    NULL, NULL, &r, &err),
                   &err, "create path");
    static const agec_type want[] = { AGEC_TYPE_PATH, AGEC_TYPE_VERTEX, AGEC_TYPE_EDGE,
                                      AGEC_TYPE_ARRAY };
    for (size_t col = 0; col < 4; col++) {
        size_t len;
        const char *text = agec_result_text(r, 0, col, &len);
        const agec_value *v;
        agec_test_must(agec_result_value(r, 0, col, &v, &err), &err, "parse");
        assert_int_equal(agec_value_type(v), want[col]);
        char *back;
        size_t blen;
        agec_test_must(agec_value_to_agtype(v, &back, &blen, &err), &err, "write");
        if (blen != len || memcmp(back, text, len) != 0)
            fail_msg("column %zu written back differs:\n server: %s\n agec:   %s", col, text, back);
        agec_value *again;
        agec_test_must(agec_agtype_parse(back, blen, 0, &again, &err), &err, "reparse");
        assert_true(agec_value_equal(v, again));
        agec_value_free(again);
        agec_free(back);
    }
    const agec_value *path;
    agec_test_must(agec_result_value(r, 0, 0, &path, &err), &err, "path");
    assert_int_equal(agec_path_length(path), 1);
    int64_t start, from;
    agec_test_must(agec_edge_start_id(agec_path_edge(path, 0), &start, &err), &err, "start");
    agec_test_must(agec_element_id(agec_path_vertex(path, 0), &from, &err), &err, "id");
    assert_true(start == from);
    agec_result_free(r);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_match_vertex),
        cmocka_unit_test(test_roundtrip_values),
        cmocka_unit_test(test_roundtrip_builder_params),
        cmocka_unit_test(test_roundtrip_graph_elements),
        cmocka_unit_test(test_injection_is_inert),
        cmocka_unit_test(test_errors_carry_server_fields),
        cmocka_unit_test(test_prepared_past_generic_plan),
        cmocka_unit_test(test_graph_management),
        cmocka_unit_test(test_text_cache_keys),
        cmocka_unit_test(test_param_named_like_the_tag),
        cmocka_unit_test(test_cypher_transactions),
        cmocka_unit_test(test_stream_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
