/* Names, RETURN columns and the SQL text around Cypher: table-driven. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "cypher/names.h"
#include "cypher/sqltext.h"

static void test_graph_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        agec_status want;
    } cases[] = {
        { "abc", AGEC_OK },
        { "demo_social", AGEC_OK },
        { "_g1", AGEC_OK },
        { "my.graph-2", AGEC_OK },
        { "graphe_\xc3\xa9t\xc3\xa9", AGEC_OK },             /* é */
        { "\xd0\xb3\xd1\x80\xd0\xb0\xd1\x84", AGEC_OK },     /* граф */
        { "\xe5\x9b\xbe\xe5\xbd\xa2\xe5\x9b\xbe", AGEC_OK }, /* CJK */
        { "", AGEC_ERR_NAME },
        { "ab", AGEC_ERR_NAME },
        { "1abc", AGEC_ERR_NAME },
        { ".abc", AGEC_ERR_NAME },
        { "abc.", AGEC_ERR_NAME },
        { "abc-", AGEC_ERR_NAME },
        { "a'b'c", AGEC_ERR_NAME },
        { "abc$$", AGEC_ERR_NAME },
        { "g'); DROP TABLE canary; --", AGEC_ERR_NAME },
        { "with space", AGEC_ERR_NAME },
        { "quo\"te", AGEC_ERR_NAME },
        { "back\\slash", AGEC_ERR_NAME },
        { "abc\xe2\x80\x8b", AGEC_ERR_NAME }, /* zero-width space */
        { "ab\xca\xbc\x63", AGEC_OK }, /* U+02BC: a modifier letter (ID_Start), AGE takes it */
        { "ab\xef\xbc\x87\x63", AGEC_ERR_NAME }, /* U+FF07 fullwidth apostrophe, c */
        { "ab\xc3", AGEC_ERR_NAME },             /* truncated UTF-8 */
        { "\xe0\xb8\x81", AGEC_ERR_NAME },       /* one Thai letter: 3 bytes, 1 char */
        { " ab", AGEC_ERR_NAME },                /* AGE accepts a leading space; agec does not */
        { "ab\xc0\xafz", AGEC_ERR_NAME },        /* overlong '/' */
        { "ab\xed\xa0\x80z", AGEC_ERR_NAME },    /* surrogate */
        { "a123456789012345678901234567890123456789012345678901234567890123", AGEC_ERR_NAME },
        { "a12345678901234567890123456789012345678901234567890123456789012", AGEC_OK },
        { NULL, AGEC_ERR_INVALID_ARG },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_graph_name_check(cases[i].name, &err);
        if (st != cases[i].want)
            fail_msg("case %zu (%s): got %s, want %s (%s)", i,
                     cases[i].name ? cases[i].name : "NULL", agec_status_name(st),
                     agec_status_name(cases[i].want), err.message);
        if (st != AGEC_OK)
            assert_true(strlen(err.message) > 0);
    }
    /* 63 bytes of 2-byte letters is too long though 32 characters. */
    char big[70] = "a";
    for (int i = 0; i < 32; i++)
        strcat(big, "\xc3\xa9");
    assert_int_equal(agec_graph_name_check(big, NULL), AGEC_ERR_NAME);
}

static void test_label_names(void **state)
{
    (void)state;
    assert_int_equal(agec_label_name_check("P", NULL), AGEC_OK);
    assert_int_equal(agec_label_name_check("KNOWS_2", NULL), AGEC_OK);
    assert_int_equal(agec_label_name_check("", NULL), AGEC_ERR_NAME);
    assert_int_equal(agec_label_name_check("a.b", NULL), AGEC_ERR_NAME);
    assert_int_equal(agec_label_name_check("a-b", NULL), AGEC_ERR_NAME);
    assert_int_equal(agec_label_name_check("9a", NULL), AGEC_ERR_NAME);
    assert_int_equal(agec_label_name_check("a\"b", NULL), AGEC_ERR_NAME);
}

static void expect_columns(const char *query, const char *const *want, size_t nwant)
{
    char **names = NULL;
    size_t n = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_cypher_return_columns(query, &names, &n, &err);
    if (st != AGEC_OK)
        fail_msg("%s: %s", query, err.message);
    if (n != nwant)
        fail_msg("%s: got %zu columns, want %zu", query, n, nwant);
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], want[i]) != 0)
            fail_msg("%s: column %zu is '%s', want '%s'", query, i, names[i], want[i]);
    assert_null(names[n]);
    agec_strings_free(names);
}

#define COLS(...)                         \
    (const char *const[]){ __VA_ARGS__ }, \
        sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *)

static void test_return_columns(void **state)
{
    (void)state;
    expect_columns("MATCH (n) RETURN n", COLS("n"));
    expect_columns("MATCH (n) RETURN n.name, n.age AS age", COLS("n.name", "age"));
    expect_columns(
        "match (n) return distinct n.city as city, count(*) as c order by c desc limit 5",
        COLS("city", "c"));
    expect_columns("MATCH (a)-[r]->(b) RETURN a, r, b SKIP 1", COLS("a", "r", "b"));
    expect_columns("RETURN {a: 1, b: [1, 2]} AS m, [x IN range(1, 3) | x * 2]",
                   COLS("m", "[x IN range(1, 3) | x * 2]"));
    expect_columns("RETURN 'RETURN x, y' AS s", COLS("s"));
    expect_columns("WITH 1 AS x RETURN x // RETURN a, b\n", COLS("x"));
    expect_columns("MATCH (n) WITH n RETURN n.a /* RETURN z */, `weird, name` AS `my col`",
                   COLS("n.a", "my col"));
    expect_columns("RETURN 1 AS a UNION RETURN 2 AS a", COLS("a"));
    /* Issue 23, item 11: columns are named by the first branch, as in SQL
     * and Neo4j. */
    expect_columns("RETURN 1 UNION RETURN 2", COLS("1"));
    expect_columns("MATCH (n) RETURN n.x AS x UNION ALL MATCH (m) RETURN m.y AS y", COLS("x"));
    expect_columns("CALL { MATCH (a) RETURN a } RETURN a.name", COLS("a.name"));
    expect_columns("RETURN 1, 1", COLS("1", "1_2"));
    expect_columns("RETURN x AS a, y AS a, z AS a", COLS("a", "a_2", "a_3"));
    expect_columns("CREATE (:Person {name: $name})", COLS("result"));
    expect_columns("MATCH (n) SET n.returned = true", COLS("result"));
    expect_columns("MATCH (n) RETURN   n.first +\n   n.last ;", COLS("n.first + n.last"));
    expect_columns("RETURN \"a\\\"RETURN\" AS q", COLS("q"));
}

static void test_return_columns_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        "MATCH (n) RETURN *",       "MATCH (n) RETURN n, ", "RETURN 'unterminated",
        "RETURN 1 /* open comment", "RETURN `open",         "RETURN 1 AS// comment only\n",
        "RETURN /* nothing */",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char **names = (char **)1;
        size_t n = 99;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_cypher_return_columns(bad[i], &names, &n, &err);
        if (st != AGEC_ERR_COLUMNS)
            fail_msg("'%s': got %s", bad[i], agec_status_name(st));
        assert_null(names);
        assert_int_equal(n, 0);
        assert_true(strlen(err.message) > 0);
    }
    agec_error err = AGEC_ERROR_INIT;
    char **names;
    size_t n;
    assert_int_equal(agec_cypher_return_columns("MATCH (n) RETURN *", &names, &n, &err),
                     AGEC_ERR_COLUMNS);
    assert_non_null(strstr(err.message, "RETURN *"));
    assert_int_equal(agec_cypher_return_columns(NULL, &names, &n, NULL), AGEC_ERR_INVALID_ARG);
}

static void test_cypher_sql_text(void **state)
{
    (void)state;
    char *sql = NULL;
    const char *cols[] = { "n", "we\"ird" };
    assert_int_equal(agec__cypher_sql("demo", "MATCH (n) RETURN n, 1", true, cols, 2, &sql, NULL),
                     AGEC_OK);
    assert_string_equal(sql, "SELECT * FROM ag_catalog.cypher('demo', $agec$MATCH (n) RETURN n, "
                             "1$agec$, $1) AS (\"n\" ag_catalog.agtype, \"we\"\"ird\" "
                             "ag_catalog.agtype)");
    free(sql);
    /* The tag never occurs in the query text. */
    assert_int_equal(
        agec__cypher_sql("demo", "RETURN '$agec$ $agec1$ $$'", false, NULL, 1, &sql, NULL),
        AGEC_OK);
    assert_string_equal(sql, "SELECT * FROM ag_catalog.cypher('demo', $agec2$RETURN '$agec$ "
                             "$agec1$ $$'$agec2$) AS (\"c1\" ag_catalog.agtype)");
    free(sql);
    /* Nor does the text's end form it with the closing tag: a query ending
     * in the parameter $agec would close "$agec$" early. */
    assert_int_equal(agec__cypher_sql("demo", "RETURN $agec", true, NULL, 1, &sql, NULL), AGEC_OK);
    assert_string_equal(sql, "SELECT * FROM ag_catalog.cypher('demo', $agec1$RETURN "
                             "$agec$agec1$, $1) AS (\"c1\" ag_catalog.agtype)");
    free(sql);
    assert_int_equal(agec__cypher_sql("demo", "RETURN $", false, NULL, 1, &sql, NULL), AGEC_OK);
    assert_string_equal(sql, "SELECT * FROM ag_catalog.cypher('demo', $agec$RETURN "
                             "$$agec$) AS (\"c1\" ag_catalog.agtype)");
    free(sql);
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(
        agec__cypher_sql("x'); DROP TABLE t; --", "RETURN 1", false, NULL, 1, &sql, &err),
        AGEC_ERR_NAME);
    assert_null(sql);
    assert_int_equal(agec__cypher_sql("demo", "RETURN 1", false, NULL, 0, &sql, &err),
                     AGEC_ERR_COLUMNS);
}

static void test_quote_ident(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(agec__quote_ident("a\"b", buf, sizeof buf), 6);
    assert_string_equal(buf, "\"a\"\"b\"");
    assert_int_equal(agec__quote_ident("0123456789abcdef", buf, sizeof buf), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_names),     cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_return_columns),  cmocka_unit_test(test_return_columns_errors),
        cmocka_unit_test(test_cypher_sql_text), cmocka_unit_test(test_quote_ident),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
