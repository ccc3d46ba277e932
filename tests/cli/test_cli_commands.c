/*
 * The agec commands as psql and cypher-shell users expect them (issue 26,
 * items 5-7 and 9): one trailing ';' accepted, the statement from -f FILE
 * or stdin, psql's -h -p -U -d, global options after the command, a
 * missing graph is an error, drop of an empty graph needs no --cascade,
 * `graph index` adds no second unique index where AGE has a primary key.
 * bench's writers and readers, --unique-key and --record (issue 25).
 * Against the AGE server under test (and cli_commands_native) and PG15.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cli_run.h"

#define GRAPH "cli_cmd_t"

static const char *age(void)
{
    return agec_test_age_conninfo();
}

static void drop_graph(const char *name)
{
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", name);
    free(r);
}

static int setup(void **state)
{
    (void)state;
    drop_graph(GRAPH);
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "create", GRAPH);
    expect_status(r, 0);
    free(r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    drop_graph(GRAPH);
    return 0;
}

static void want_out(run_out *r, int status, const char *out)
{
    expect_status(r, status);
    if (strcmp(r->out, out) != 0)
        fail_msg("want output '%s', got '%s' (stderr: %s)", out, r->out, r->err);
    free(r);
}

/* Items 5 and 7: 'RETURN 1;' (before: 42601 at ';'), global options after
 * the command (before: "unknown option"), `--` ends them. */
static void test_semicolon_and_trailing_options(void **state)
{
    (void)state;
    want_out(
        RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query", "RETURN 1 AS one;"),
        0, "one\n1\n");
    want_out(RUN(NULL, "--dsn", age(), "query", "RETURN 2 AS two ; \n", "--graph", GRAPH,
                 "--format", "json"),
             0, "{\"two\": 2}\n");
    want_out(RUN(NULL, "--dsn", agec_test_pg_conninfo(), "sql", "SELECT $1::int + 1 AS n",
                 "--format", "csv", "--age-mode", "off", "--", "-5"),
             0, "n\n-4\n");
    /* A ';' inside the text is the server's business: two statements are
     * not one. */
    run_out *r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "query", "RETURN 1; RETURN 2;");
    expect_status(r, 1);
    free(r);
}

/* Item 6: -f FILE, - for stdin, and psql's connection flags. */
static void test_files_stdin_and_psql_flags(void **state)
{
    (void)state;
    char path[] = "/tmp/agec-cli-cmd-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char q[] = "UNWIND [1, 2] AS i\nRETURN i * 3 AS x;\n";
    assert_int_equal(write(fd, q, sizeof q - 1), (ssize_t)(sizeof q - 1));
    close(fd);
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query", "-f", path), 0,
             "x\n3\n6\n");
    want_out(RUN("RETURN 'from stdin' AS s;\n", "--dsn", age(), "--graph", GRAPH, "--format", "csv",
                 "query", "-"),
             0, "s\nfrom stdin\n");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("SELECT 1 AS a;\nSELECT 2 AS b;\n", f);
    fclose(f);
    const char *pg = agec_test_pg_conninfo();
    want_out(RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "json", "sql", "-f", path), 0,
             "{\"a\": 1}\n{\"b\": 2}\n");
    unlink(path);
    /* -h -p -U -d instead of a DSN (the environment points elsewhere). */
    PQconninfoOption *o = PQconninfoParse(pg, NULL);
    assert_non_null(o);
    char host[128] = "", port[16] = "";
    for (PQconninfoOption *p = o; p->keyword; p++) {
        if (p->val && strcmp(p->keyword, "host") == 0)
            snprintf(host, sizeof host, "%s", p->val);
        if (p->val && strcmp(p->keyword, "port") == 0)
            snprintf(port, sizeof port, "%s", p->val);
    }
    PQconninfoFree(o);
    setenv("PGHOST", "nosuch.invalid", 1);
    setenv("PGUSER", "nobody", 1);
    want_out(RUN(NULL, "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "--age-mode",
                 "off", "--format", "csv", "sql", "SELECT current_user AS u"),
             0, "u\npostgres\n");
    unsetenv("PGHOST");
    unsetenv("PGUSER");
}

/* Item 9: graph commands on a missing graph fail (before: exit 0 with
 * "indexes ... created" or 0 rows); drop of a graph with no labels needs no
 * --cascade (before: 2BP01 always), one with labels does. */
static void test_graph_commands(void **state)
{
    (void)state;
    static const char *const verbs[] = { "index", "labels", "drop" };
    for (size_t i = 0; i < 3; i++) {
        run_out *r = RUN(NULL, "--dsn", age(), "graph", verbs[i], "nc_nosuch");
        expect_status(r, 1);
        if (strstr(r->err, "graph nc_nosuch does not exist") == NULL)
            fail_msg("graph %s nc_nosuch: %s", verbs[i], r->err);
        free(r);
    }
    drop_graph("cli_cmd_empty");
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "create", "cli_cmd_empty");
    expect_status(r, 0);
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "-q", "graph", "drop", "cli_cmd_empty"), 0, "");
    want_out(RUN(NULL, "--dsn", age(), "graph", "exists", "cli_cmd_empty"), 0, "false\n");
    /* With a label: refused without --cascade, naming it; kept. */
    r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "query", "CREATE (:P {n: 1})");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", age(), "graph", "drop", GRAPH);
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "--cascade"));
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "graph", "exists", GRAPH), 0, "true\n");
    /* graph index: the label tables get theirs; AGE's base tables keep their
     * one unique index on id (their primary key), no second. */
    r = RUN(NULL, "--dsn", age(), "graph", "index", GRAPH);
    expect_status(r, 0);
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "--format", "csv", "sql",
                 "SELECT c.relname AS t, count(*) AS unique_id FROM pg_index i "
                 "JOIN pg_class c ON c.oid = i.indrelid "
                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                 "WHERE n.nspname = '" GRAPH "' AND i.indisunique AND i.indnatts = 1 "
                 "AND a.attname = 'id' GROUP BY 1 ORDER BY 1"),
             0, "t,unique_id\nP,1\n_ag_label_edge,1\n_ag_label_vertex,1\n");
}

/* Item 8: a string without quotes is named as such (before: "invalid JSON
 * at byte 0"); a statement with $parameters and none given gets a hint
 * naming --param (before: AGE's "parameters argument is missing" alone). */
static void test_parameter_messages(void **state)
{
    (void)state;
    run_out *r =
        RUN(NULL, "--dsn", age(), "--graph", GRAPH, "query", "RETURN $x AS x", "--param", "x=abc");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "a string needs its quotes: --param 'x=\"abc\"'"));
    free(r);
    r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "query", "RETURN $x AS x");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "HINT: the statement uses $parameters: give them with --param"));
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query",
                 "RETURN $x AS x", "--param", "x=\"abc\""),
             0, "x\nabc\n");
}

/* Item 16: cluster --format csv (before: the table). One node: PG15. */
static void test_cluster_csv(void **state)
{
    (void)state;
    run_out *r = RUN(NULL, "--dsn", agec_test_pg_conninfo(), "--age-mode", "off", "--format", "csv",
                     "cluster");
    expect_status(r, 0);
    static const char head[] = "node,address,role,reads,lag_ms,lsn,timeline\n0,";
    if (strncmp(r->out, head, sizeof head - 1) != 0 || strstr(r->out, ",primary,") == NULL ||
        strstr(r->out, "nodes, primary") != NULL)
        fail_msg("cluster --format csv:\n%s", r->out);
    free(r);
}

/* Items 13-15: tables escape what could act on a terminal and show Cypher
 * values as CSV does, wide characters count two columns; CSV has its
 * header for no rows, one result's rows, NaN plain; a Cypher statement
 * without RETURN prints no made-up column; SQL prints its command tag. */
static void test_output(void **state)
{
    (void)state;
    const char *pg = agec_test_pg_conninfo();
    run_out *r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "table", "sql",
                     "SELECT E'a\\rb\\x1b[31mRED' AS s, E'x\\\\ny' AS b");
    expect_status(r, 0);
    if (strchr(r->out, '\r') != NULL || strchr(r->out, 0x1b) != NULL ||
        strstr(r->out, "a\\rb\\x1b[31mRED") == NULL || strstr(r->out, "x\\\\ny") == NULL)
        fail_msg("control characters or backslashes not escaped:\n%s", r->out);
    free(r);
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "table", "sql",
            "SELECT * FROM (VALUES ('\xe6\xbc\xa2\xe5\xad\x97', 1), ('abcde', 2)) v(c, n)");
    expect_status(r, 0);
    if (strstr(r->out, " \xe6\xbc\xa2\xe5\xad\x97  | 1") == NULL ||
        strstr(r->out, " abcde | 2") == NULL)
        fail_msg("wide characters misaligned:\n%s", r->out);
    free(r);
    r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "table", "query",
            "CREATE (v:V {name: 'Ada'}) RETURN v.name AS name, v");
    expect_status(r, 0);
    if (strstr(r->out, " Ada ") == NULL || strstr(r->out, " \"Ada\" ") != NULL ||
        strstr(r->out, "::vertex") != NULL)
        fail_msg("table: strings and vertices not as CSV shows them:\n%s", r->out);
    free(r);
    r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "table", "query",
            "CREATE (:V {name: 'Bob'})");
    expect_status(r, 0);
    if (strstr(r->out, "result") != NULL || strstr(r->out, "(0 rows)") == NULL)
        fail_msg("CREATE without RETURN:\n%s", r->out);
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query",
                 "MATCH (z:Nope) RETURN z.v AS v"),
             0, "v\n");
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query",
                 "RETURN 'NaN'::float AS f, 'a,b' AS s"),
             0, "f,s\nNaN,\"a,b\"\n");
    want_out(RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "csv", "sql",
                 "SELECT 1 AS a WHERE false"),
             0, "a\n");
    want_out(RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "csv", "sql",
                 "SELECT 1 AS a; SELECT 2 AS b"),
             0, "b\n2\n");
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "table", "sql", "DO $$BEGIN END$$");
    expect_status(r, 0);
    if (strncmp(r->out, "DO\n", 3) != 0)
        fail_msg("command tag: %s", r->out);
    free(r);
}

/* Item 10: demo uses --graph and drops only a graph it made (before: it
 * ignored --graph and dropped demo_social whatever it was). */
static void test_demo_graph(void **state)
{
    (void)state;
    /* GRAPH exists, made by hand, with a vertex: left alone. */
    run_out *r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "query", "CREATE (:Mine {n: 7})");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", age(), "--graph", GRAPH, "demo", "--size", "10");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "--replace"));
    free(r);
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query",
                 "MATCH (m:Mine) RETURN m.n AS n"),
             0, "n\n7\n");
    /* --replace: the demo's graph now, which a second run may replace. */
    for (int run = 0; run < 2; run++) {
        r = run == 0
                ? RUN(NULL, "--dsn", age(), "--graph", GRAPH, "demo", "--size", "10", "--replace")
                : RUN(NULL, "--dsn", age(), "--graph", GRAPH, "demo", "--size", "10");
        expect_status(r, 0);
        assert_non_null(strstr(r->out, "1. graph " GRAPH " created"));
        free(r);
    }
    want_out(RUN(NULL, "--dsn", age(), "--graph", GRAPH, "--format", "csv", "query",
                 "MATCH (p:Person) RETURN count(p) AS people"),
             0, "people\n10\n");
}

/* bench --read-sql, --unique-key and --record: one JSON line per call with
 * its kind, a unique key bound to $1 for the writers (the rows are there),
 * the node and its timeline; usage errors for the new options. */
static void test_bench_readers_and_record(void **state)
{
    (void)state;
    const char *pg = agec_test_pg_conninfo();
    char path[] = "/tmp/agec-bench-record.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    run_out *r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "sql",
                     "DROP TABLE IF EXISTS cli_bench_keys; CREATE TABLE cli_bench_keys (k text "
                     "PRIMARY KEY)");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--statement-timeout", "5000", "--format",
            "json", "bench", "--sql", "INSERT INTO cli_bench_keys VALUES ($1)", "--unique-key",
            "--threads", "2", "--read-sql", "SELECT count(*) FROM cli_bench_keys", "--read-threads",
            "2", "--count", "40", "--record", path);
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "\"writes\": {\"ok\": "));
    assert_non_null(strstr(r->out, "\"errors\": 0,"));
    free(r);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int reads = 0, writes = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        bool read = strstr(line, "{\"kind\": \"read\"") == line;
        bool write = strstr(line, "{\"kind\": \"write\"") == line;
        if (!read && !write)
            fail_msg("not a record line: %s", line);
        reads += read;
        writes += write;
        if (strstr(line, "\"ok\": true, \"code\": \"AGEC_OK\"") == NULL ||
            strstr(line, "\"deadline_ms\": ") == NULL || strstr(line, "\"node\": \"") == NULL ||
            strstr(line, "\"timeline\": 1, \"in_recovery\": false}") == NULL ||
            (write && strstr(line, "\"key\": \"") == NULL) ||
            (read && strstr(line, "\"key\": null") == NULL))
            fail_msg("record line: %s", line);
    }
    fclose(f);
    unlink(path);
    assert_int_equal(reads + writes, 40);
    assert_true(reads > 0 && writes > 0);
    char want[32];
    snprintf(want, sizeof want, "\n%d\n", writes); /* every acknowledged key, once */
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "csv", "sql",
            "SELECT count(DISTINCT k) FROM cli_bench_keys WHERE k LIKE '%-%-%'");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, want));
    free(r);
    r = RUN(NULL, "--dsn", pg, "bench", "--sql", "SELECT 1", "--read-threads", "2");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "--read-threads needs"));
    free(r);
    r = RUN(NULL, "--dsn", pg, "bench", "--sql", "SELECT 1", "--read-sql", "SELECT 1",
            "--read-cypher", "RETURN 1");
    expect_status(r, 2);
    free(r);
    r = RUN(NULL, "--dsn", pg, "bench", "--sql", "SELECT 1", "--record", "/nonexistent/dir/x");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "--record"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semicolon_and_trailing_options),
        cmocka_unit_test(test_files_stdin_and_psql_flags),
        cmocka_unit_test(test_graph_commands),
        cmocka_unit_test(test_parameter_messages),
        cmocka_unit_test(test_cluster_csv),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_demo_graph),
        cmocka_unit_test(test_bench_readers_and_record),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
