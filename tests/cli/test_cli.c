/*
 * The agec command-line tool, run as a user would: the built binary against
 * the test servers. Exit codes, JSON output parsed back, errors, password
 * redaction, bench, and the interactive shell through a pseudo-terminal.
 */
#define _DEFAULT_SOURCE /* forkpty */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agec/agtype.h"
#include "agec/graph.h"

#include "cli_pty.h"
#include "cli_run.h"

static const char *age(void)
{
    return agec_test_age_conninfo();
}

static void test_version_and_usage(void **state)
{
    (void)state;
    run_out *r = RUN(NULL, "--version");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "agec 0."));
    free(r);
    r = RUN(NULL, "--help");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "exit status"));
    free(r);
    r = RUN(NULL, "frobnicate");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "unknown command"));
    free(r);
    r = RUN(NULL, "--pool-max", "x", "sql", "SELECT 1");
    expect_status(r, 2);
    free(r);
    r = RUN(NULL, "--dsn", age(), "query", "RETURN 1");
    expect_status(r, 2); /* --graph missing */
    assert_non_null(strstr(r->err, "--graph"));
    free(r);
}

static int64_t json_int(const agec_value *obj, const char *key)
{
    int64_t v = 0;
    if (agec_value_get_int64(agec_value_get(obj, key, strlen(key)), &v, NULL) != AGEC_OK)
        fail_msg("no integer \"%s\" in the JSON", key);
    return v;
}

static bool json_str_is(const agec_value *obj, const char *key, const char *want)
{
    const char *s;
    size_t len;
    return agec_value_get_string(agec_value_get(obj, key, strlen(key)), &s, &len, NULL) ==
               AGEC_OK &&
           len == strlen(want) && memcmp(s, want, len) == 0;
}

/* One row {a: vertex, e: edge a->b, b: vertex, p: path a-e-b} as JSON. */
static void check_edge_and_path(const char *out)
{
    agec_value *row = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_agtype_parse(out, strcspn(out, "\n"), AGEC_PARSE_JSON, &row, &err) != AGEC_OK)
        fail_msg("not JSON: %s (%s)", out, err.message);
    assert_string_equal(out + strcspn(out, "\n"), "\n"); /* one row */
    const agec_value *a = agec_value_get(row, "a", 1), *e = agec_value_get(row, "e", 1),
                     *b = agec_value_get(row, "b", 1), *p = agec_value_get(row, "p", 1);
    assert_true(json_str_is(e, "label", "KNOWS"));
    assert_int_equal(json_int(agec_value_get(e, "properties", 10), "since"), 1843);
    assert_true(json_int(a, "id") != json_int(b, "id"));
    assert_int_equal(json_int(e, "start_id"), json_int(a, "id"));
    assert_int_equal(json_int(e, "end_id"), json_int(b, "id"));
    assert_true(json_str_is(agec_value_get(b, "properties", 10), "name", "Charles"));
    /* The path: an array of vertex, edge, vertex, equal to a, e, b. */
    assert_int_equal(agec_value_type(p), AGEC_TYPE_ARRAY);
    assert_int_equal(agec_value_length(p), 3);
    assert_true(agec_value_equal(agec_value_at(p, 0), a));
    assert_true(agec_value_equal(agec_value_at(p, 1), e));
    assert_true(agec_value_equal(agec_value_at(p, 2), b));
    agec_value_free(row);
}

static void test_graph_and_query_json(void **state)
{
    (void)state;
    const char *dsn = age();
    run_out *r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_graph");
    free(r); /* may not exist */
    r = RUN(NULL, "--dsn", dsn, "graph", "create", "cli_graph");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "exists", "cli_graph");
    expect_status(r, 0);
    assert_string_equal(r->out, "true\n");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "query",
            "CREATE (p:Person {name: $name, tags: $tags, n: $n}) RETURN p", "--param",
            "name=\"Ada \\\"the\\\" Countess\"", "--params", "{\"tags\": [\"a\", \"b\"], \"n\": 1}",
            "--param", "n=36");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "json", "query",
            "MATCH (p:Person) RETURN p, p.name AS name, p.n AS n, 0.1::numeric AS x, "
            "(1e308 * 10) AS big");
    expect_status(r, 0);
    /* One JSON object per line; parse it back strictly. */
    agec_value *row = NULL;
    agec_error err = AGEC_ERROR_INIT;
    size_t len = strcspn(r->out, "\n");
    if (agec_agtype_parse(r->out, len, AGEC_PARSE_JSON, &row, &err) != AGEC_OK)
        fail_msg("not JSON: %s (%s)", r->out, err.message);
    const char *s;
    size_t slen;
    assert_int_equal(agec_value_get_string(agec_value_get(row, "name", 4), &s, &slen, NULL),
                     AGEC_OK);
    assert_int_equal(slen, strlen("Ada \"the\" Countess"));
    assert_memory_equal(s, "Ada \"the\" Countess", slen);
    int64_t n;
    assert_int_equal(agec_value_get_int64(agec_value_get(row, "n", 1), &n, NULL), AGEC_OK);
    assert_int_equal(n, 36); /* --param wins over --params */
    const agec_value *p = agec_value_get(row, "p", 1);
    assert_int_equal(agec_value_type(p), AGEC_TYPE_OBJECT);
    assert_non_null(agec_value_get(p, "id", 2));
    assert_non_null(agec_value_get(p, "label", 5));
    assert_int_equal(
        agec_value_length(agec_value_get(agec_value_get(p, "properties", 10), "tags", 4)), 2);
    /* numeric as a JSON number, infinity as a string */
    assert_int_equal(agec_value_type(agec_value_get(row, "x", 1)), AGEC_TYPE_FLOAT);
    assert_int_equal(agec_value_get_string(agec_value_get(row, "big", 3), &s, &slen, NULL),
                     AGEC_OK);
    assert_memory_equal(s, "Infinity", 8);
    agec_value_free(row);
    free(r);

    /* --columns names the output columns instead of the RETURN items. */
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "json", "query",
            "MATCH (p:Person) RETURN p.n, p.name", "--columns", "years,who");
    expect_status(r, 0);
    assert_string_equal(r->out, "{\"years\": 36, \"who\": \"Ada \\\"the\\\" Countess\"}\n");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "json", "query", "RETURN 1, 2",
            "--columns", "only_one");
    expect_status(r, 1); /* two RETURN items, one column name */
    free(r);

    /* An edge carries start_id/end_id; a path becomes an array. */
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "query",
            "MATCH (a:Person) CREATE (a)-[:KNOWS {since: 1843}]->(:Person {name: 'Charles'})");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "json", "query",
            "MATCH p = (a:Person)-[e:KNOWS]->(b:Person) RETURN a, e, b, p");
    expect_status(r, 0);
    check_edge_and_path(r->out);
    free(r);

    /* bench --cypher with a parameter: every run succeeds. */
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "json", "bench", "--cypher",
            "MATCH (p:Person {name: $name}) RETURN p.since", "--param", "name=\"Charles\"",
            "--threads", "2", "--count", "20");
    expect_status(r, 0);
    agec_value *b = NULL;
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &b, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    assert_int_equal(json_int(b, "ok"), 20);
    assert_int_equal(json_int(b, "errors"), 0);
    assert_int_equal(agec_value_length(agec_value_get(b, "errors_by_kind", 14)), 0);
    agec_value_free(b);
    free(r);

    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_graph", "--format", "csv", "query",
            "MATCH (p:Person) WHERE p.n = 36 RETURN p.name AS name");
    expect_status(r, 0);
    assert_string_equal(r->out, "name\n\"Ada \"\"the\"\" Countess\"\n");
    free(r);

    r = RUN(NULL, "--dsn", dsn, "--format", "json", "graph", "labels", "cli_graph");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "{\"name\": \"Person\", \"kind\": \"vertex\"}"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "index", "cli_graph");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--format", "json", "graph", "list");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "{\"graph\": \"cli_graph\"}"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_graph");
    expect_status(r, 0);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "exists", "cli_graph");
    assert_string_equal(r->out, "false\n");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "create", "x'); DROP TABLE t; --");
    expect_status(r, 2);
    free(r);
}

static void test_query_errors(void **state)
{
    (void)state;
    const char *dsn = age();
    run_out *r = RUN(NULL, "--dsn", dsn, "--graph", "no_such_graph_x", "query", "RETURN 1");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "SQLSTATE 3F000"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "create", "cli_err");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_err", "query", "MATCH (n RETURN n");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "SQLSTATE 42601"));
    assert_non_null(strstr(r->err, "AGEC_ERR_SERVER"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_err", "query", "RETURN $x", "--param",
            "x={\"a\": tru}");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "invalid JSON at byte 6"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_err", "query", "RETURN $x", "--params", "[1]");
    expect_status(r, 2);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_err", "query", "MATCH (n) RETURN *");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "RETURN *"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_err");
    free(r);
}

static void test_unreachable_and_redaction(void **state)
{
    (void)state;
    /* A port nobody listens on: exit 3 within the acquire timeout. */
    static const char *dsns[] = {
        "host=127.0.0.1 port=1 user=u password=sekrit123 dbname=d",
        "postgresql://u:sekrit123@127.0.0.1:1/d",
        "host=127.0.0.1 port=1 password = 'sekrit123 with space'",
    };
    for (size_t i = 0; i < 2 * sizeof dsns / sizeof dsns[0]; i++) {
        bool verbose = i % 2 == 1; /* -v adds the pool's events: no password there either */
        const char *dsn = dsns[i / 2];
        run_out *r = verbose ? RUN(NULL, "--dsn", dsn, "--acquire-timeout", "800",
                                   "--connect-timeout", "300", "-v", "sql", "SELECT 1")
                             : RUN(NULL, "--dsn", dsn, "--acquire-timeout", "800",
                                   "--connect-timeout", "300", "sql", "SELECT 1");
        expect_status(r, 3);
        assert_true(r->ms < 800 + 1500);
        /* One attempt, the cause said plainly once (issue 26, item 12:
         * it was retried for ~1.1 s and reported as "circuit breaker
         * opened"). */
        const char *said = strstr(r->err, "could not connect to the server: ");
        const char *refused = strstr(r->err, "Connection refused");
        if (said == NULL || refused == NULL ||
            (!verbose && (strstr(refused + 1, "Connection refused") != NULL ||
                          strstr(r->err, "breaker") != NULL)))
            fail_msg("want the cause once, plainly:\n%s", r->err);
        if (strstr(r->out, "sekrit") || strstr(r->err, "sekrit"))
            fail_msg("password leaked: %s %s", r->out, r->err);
        free(r);
    }
    /* A syntactically bad DSN: a clear error, no password. */
    run_out *r =
        RUN(NULL, "--dsn", "host=127.0.0.1 password=sekrit123 bogus_keyword=1", "sql", "SELECT 1");
    expect_status(r, 3); /* AGEC_ERR_CONFIG: no connection to be had */
    assert_non_null(strstr(r->err, "AGEC_ERR_CONFIG"));
    assert_non_null(strstr(r->err, "bogus_keyword"));
    assert_null(strstr(r->err, "sekrit"));
    free(r);
}

/* Issue 23: COPY through `agec sql` ends with an error (it used to spin at
 * 100% CPU for ever); a statement without rows prints its command tag. */
static void test_sql_copy_and_command_tag(void **state)
{
    (void)state;
    const char *dsn = agec_test_pg_conninfo();
    run_out *r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--statement-timeout", "1000", "sql",
                     "COPY (SELECT 1) TO STDOUT");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "AGEC_ERR_STATE"));
    assert_non_null(strstr(r->err, "COPY"));
    free(r);
    /* Item 11: duplicate column names give distinct JSON keys. */
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "sql",
            "SELECT 1 AS a, 2 AS a, 3 AS a_2, 4 AS a");
    expect_status(r, 0);
    assert_string_equal(r->out, "{\"a\": 1, \"a_3\": 2, \"a_2\": 3, \"a_4\": 4}\n");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "table", "sql",
            "CREATE TEMP TABLE t AS SELECT 1 AS a FROM generate_series(1, 5)");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "SELECT 5"));
    assert_null(strstr(r->out, "(0 rows)"));
    free(r);
}

/* Issue 23, item 3: `agec graph index` obeys --statement-timeout (it
 * waited behind a lock for as long as the lock was held). AGE's catalog is
 * stood in for on PG15 (fakeage/stub_catalog.h). */
static void test_graph_statement_timeout(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *admin = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &admin, &err), &err, "open");
    agec_pool *stub = agec_test_stub_age_pool(admin, "agec_stub_cli");
    agec_conn *c = agec_test_acquire(stub);
    agec_test_must(agec_graph_create(c, "cli_g", &err), &err, "graph");
    agec_test_must(agec_label_create(c, "cli_g", "Person", AGEC_LABEL_VERTEX, &err), &err, "label");
    agec_conn_release(c);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=agec_stub_cli", agec_test_pg_conninfo());
    PGconn *locker = PQconnectdb(dsn);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    PGresult *lr = PQexec(locker, "BEGIN; LOCK TABLE cli_g.\"Person\" IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(lr), PGRES_COMMAND_OK);
    PQclear(lr);
    run_out *r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--statement-timeout", "300", "graph",
                     "index", "cli_g");
    PQfinish(locker);
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "AGEC_ERR_TIMEOUT"));
    assert_true(r->ms < 30000); /* a hang check: the lock is held until RUN returns */
    free(r);
    agec_pool_close(stub, 1000, NULL);
    agec_pool_close(admin, 1000, NULL);
}

static void test_sql_and_bench_on_pg(void **state)
{
    (void)state;
    const char *dsn = agec_test_pg_conninfo();
    run_out *r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "sql",
                     "SELECT $1::int + 1 AS x, $2::text AS s, NULL AS n, true AS b", "41", "it's");
    expect_status(r, 0);
    assert_string_equal(r->out, "{\"x\": 42, \"s\": \"it's\", \"n\": null, \"b\": true}\n");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--statement-timeout", "200", "sql",
            "SELECT pg_sleep(10)");
    expect_status(r, 1);
    assert_non_null(strstr(r->err, "AGEC_ERR_TIMEOUT"));
    assert_true(r->ms < 5000);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "bench", "--sql",
            "SELECT 1", "--threads", "3", "--count", "300");
    expect_status(r, 0);
    agec_value *v = NULL;
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    int64_t ok;
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "ok", 2), &ok, NULL), AGEC_OK);
    assert_int_equal(ok, 300);
    assert_non_null(agec_value_get(agec_value_get(v, "latency_ms", 10), "p99", 3));
    agec_value_free(v);
    free(r);

    /* Every run fails the same way on three threads: one error kind, with
     * the count summed over the threads; exit 1 as nothing succeeded. */
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "bench", "--sql",
            "SELECT 1/0", "--threads", "3", "--count", "30");
    expect_status(r, 1);
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    assert_int_equal(json_int(v, "ok"), 0);
    assert_int_equal(json_int(v, "errors"), 30);
    assert_int_equal(json_int(v, "threads"), 3);
    const agec_value *kinds = agec_value_get(v, "errors_by_kind", 14);
    if (agec_value_length(kinds) != 1)
        fail_msg("want one error kind: %s", r->out);
    assert_true(json_str_is(agec_value_at(kinds, 0), "code", "AGEC_ERR_SERVER"));
    assert_true(json_str_is(agec_value_at(kinds, 0), "sqlstate", "22012"));
    assert_int_equal(json_int(agec_value_at(kinds, 0), "count"), 30);
    agec_value_free(v);
    free(r);
    /* The same as text: one line for the kind. */
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "table", "bench", "--sql",
            "SELECT 1/0", "--threads", "3", "--count", "30");
    expect_status(r, 1);
    const char *line = strstr(r->out, "error AGEC_ERR_SERVER 22012 x30: ");
    if (line == NULL || strstr(line + 1, "error AGEC_ERR_") != NULL)
        fail_msg("want exactly one error line, x30:\n%s", r->out);
    assert_non_null(strstr(line, "division by zero"));
    free(r);

    /* --pipeline N: statements N at a time in one batch (fewer acquires
     * than statements); --pipeline 0 is a usage error. */
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "bench", "--sql",
            "SELECT 1", "--threads", "2", "--count", "100", "--pipeline", "7");
    expect_status(r, 0);
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    assert_int_equal(json_int(v, "ok"), 100);
    assert_int_equal(json_int(v, "pipeline"), 7);
    assert_true(json_int(agec_value_get(v, "pool", 4), "acquires") < 100); /* batches */
    agec_value_free(v);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "bench", "--sql", "SELECT 1", "--pipeline",
            "0");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "--pipeline"));
    free(r);

    /* --pool-max/--pool-min are honoured by bench: 3 threads share 1. */
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "json", "--pool-max", "1", "bench",
            "--sql", "SELECT 1", "--threads", "3", "--count", "60");
    expect_status(r, 0);
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    assert_int_equal(json_int(v, "ok"), 60);
    assert_int_equal(json_int(agec_value_get(v, "pool", 4), "opened"), 1);
    agec_value_free(v);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--pool-max", "2", "--pool-min", "3", "bench", "--sql", "SELECT 1");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "--pool-min"));
    free(r);
}

/* ---- the shell, through a pseudo-terminal ---------------------------------- */

static void test_shell_on_age(void **state)
{
    (void)state;
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "create", "cli_shell");
    free(r);
    pty_session s;
    pty_start(&s, (const char *const[]){ "--dsn", age(), "--graph", "cli_shell", "shell", NULL });
    size_t at = pty_expect(&s, 0, "cli_shell=#", 10000);
    /* A multi-line Cypher statement ending with ';' */
    pty_send(&s, "UNWIND range(1, 3) AS i\r");
    at = pty_expect(&s, at, "cli_shell-#", 5000);
    pty_send(&s, "RETURN i * 10 AS tens;\r");
    at = pty_expect(&s, at, "tens", 10000);
    at = pty_expect(&s, at, "30", 5000);
    at = pty_expect(&s, at, "(3 rows)", 5000);
    at = pty_expect(&s, at, "Time:", 5000);
    pty_send(&s, ":sql SELECT 6 * 7 AS answer\r");
    at = pty_expect(&s, at, "42", 10000);
    at = pty_expect(&s, at, "(1 row)", 5000);
    pty_send(&s, ":params {\"who\": \"Ada\"}\r");
    at = pty_expect(&s, at, "parameters set", 5000);
    pty_send(&s, "RETURN $who AS who;\r");
    at = pty_expect(&s, at, " Ada", 10000); /* tables show strings plain, as CSV does */
    /* ';' at the end of a line inside a string or a block comment does not
     * end the statement; an escaped quote does not end the string. */
    pty_send(&s, "RETURN size('semi;\r");
    at = pty_expect(&s, at, "cli_shell-#", 5000);
    pty_send(&s, "colon') AS len /* a comment;\r");
    at = pty_expect(&s, at, "cli_shell-#", 5000);
    pty_send(&s, "still a comment */, 'it\\'s;' AS q;\r");
    at = pty_expect(&s, at, "len", 10000);
    at = pty_expect(&s, at, "11", 5000); /* "semi;\ncolon" */
    at = pty_expect(&s, at, "it's;", 5000);
    at = pty_expect(&s, at, "(1 row)", 5000);
    at = pty_expect(&s, at, "cli_shell=#", 5000);
    pty_send(&s, ":quit\r");
    assert_int_equal(pty_finish(&s), 0);
    r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", "cli_shell");
    free(r);
}

static bool sleeping_on_server(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb(agec_test_pg_conninfo());
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'agec-cli' AND state = 'active' AND query LIKE '%pg_sleep(30)%'");
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    PQfinish(c);
    return yes;
}

static void test_shell_ctrl_c_cancels(void **state)
{
    (void)state;
    pty_session s;
    pty_start(&s, (const char *const[]){ "--dsn", agec_test_pg_conninfo(), "--age-mode", "off",
                                         "shell", NULL });
    size_t at = pty_expect(&s, 0, "agec=#", 10000);
    pty_send(&s, ":sql SELECT pg_sleep(30)\r");
    /* Wait until the statement runs on the server, then press Ctrl-C. */
    at = pty_expect(&s, at, "pg_sleep(30)", 5000);
    assert_true(agec_test_wait_until(sleeping_on_server, NULL, 10000));
    int64_t t0 = agec_test_now_ms();
    pty_send(&s, "\x03");
    at = pty_expect(&s, at, "statement cancelled", 5000);
    assert_true(agec_test_now_ms() - t0 < 5000);
    /* Still in the shell, and it works. */
    pty_send(&s, ":sql SELECT 'still here' AS s\r");
    at = pty_expect(&s, at, "still here", 5000);
    pty_send(&s, ":quit\r");
    assert_int_equal(pty_finish(&s), 0);
}

/* bench keeps going through a server restart: its own throwaway cluster,
 * restarted while the bench runs; errors are counted, the run completes. */
typedef struct bench_run {
    char dsn[256];
    run_out *out;
} bench_run;

static void *bench_thread(void *arg)
{
    bench_run *b = arg;
    b->out = RUN(NULL, "--dsn", b->dsn, "--age-mode", "off", "--format", "json",
                 "--connect-timeout", "500", "--acquire-timeout", "1000", "bench", "--sql",
                 "SELECT 1", "--threads", "2", "--duration", "8");
    return NULL;
}

static char own_dir[256];

static bool bench_connected(void *arg)
{
    PGconn *c = PQconnectdb(arg);
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'agec-cli'");
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    PQfinish(c);
    return yes;
}

static void test_bench_survives_restart(void **state)
{
    (void)state;
    snprintf(own_dir, sizeof own_dir, "/tmp/agec-pg.cliXXXXXX");
    assert_non_null(mkdtemp(own_dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pg-test-server start %s >/dev/null", AGEC_SCRIPTS_DIR, own_dir);
    assert_int_equal(system(cmd), 0);
    char portfile[300], port[16] = "";
    snprintf(portfile, sizeof portfile, "%s/port", own_dir);
    FILE *f = fopen(portfile, "r");
    assert_non_null(f);
    assert_non_null(fgets(port, sizeof port, f));
    fclose(f);
    port[strcspn(port, "\n")] = '\0';
    bench_run b;
    snprintf(b.dsn, sizeof b.dsn, "host=127.0.0.1 port=%s user=postgres dbname=postgres", port);
    pthread_t t;
    pthread_create(&t, NULL, bench_thread, &b);
    bool up = agec_test_wait_until(bench_connected, b.dsn, 10000);
    snprintf(cmd, sizeof cmd, "%s/pg-test-server restart %s >/dev/null 2>&1", AGEC_SCRIPTS_DIR,
             own_dir);
    int restarted = up ? system(cmd) : -1;
    /* Back on the restarted server while the run goes on: it kept going. */
    bool reconnected = restarted == 0 && agec_test_wait_until(bench_connected, b.dsn, 10000);
    pthread_join(t, NULL);
    snprintf(cmd, sizeof cmd, "%s/pg-test-server stop %s >/dev/null 2>&1", AGEC_SCRIPTS_DIR,
             own_dir);
    assert_int_equal(system(cmd), 0);
    assert_true(up);
    assert_int_equal(restarted, 0);
    assert_true(reconnected);
    expect_status(b.out, 0);
    agec_value *v = NULL;
    if (agec_agtype_parse(b.out->out, strlen(b.out->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not JSON: %s", b.out->out);
    int64_t ok = 0, errors = 0;
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "ok", 2), &ok, NULL), AGEC_OK);
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "errors", 6), &errors, NULL), AGEC_OK);
    /* No rate asserted (a loaded machine restarts slowly): statements ran,
     * and the restart was seen and counted. */
    print_message("bench through a restart: %lld ok, %lld errors\n", (long long)ok,
                  (long long)errors);
    assert_true(ok > 0);
    assert_true(errors > 0);
    /* Each (code, SQLSTATE) once, merged over both threads; the counts add
     * up to the errors. */
    const agec_value *kinds = agec_value_get(v, "errors_by_kind", 14);
    size_t nk = agec_value_length(kinds);
    assert_true(nk > 0);
    int64_t sum = json_int(v, "errors_other_kinds");
    for (size_t i = 0; i < nk; i++) {
        const agec_value *ki = agec_value_at(kinds, i);
        sum += json_int(ki, "count");
        for (size_t j = 0; j < i; j++)
            if (agec_value_equal(agec_value_get(ki, "code", 4),
                                 agec_value_get(agec_value_at(kinds, j), "code", 4)) &&
                agec_value_equal(agec_value_get(ki, "sqlstate", 8),
                                 agec_value_get(agec_value_at(kinds, j), "sqlstate", 8)))
                fail_msg("error kind %zu repeats kind %zu: %s", i, j, b.out->out);
    }
    assert_int_equal(sum, errors);
    agec_value_free(v);
    free(b.out);
}

static void test_demo_small(void **state)
{
    (void)state;
    for (int run = 0; run < 2; run++) { /* re-runnable: the second run drops the graph */
        /* The second run sizes the pool with --pool-max/--pool-min. */
        run_out *r = run == 0 ? RUN(NULL, "--dsn", age(), "demo", "--size", "60")
                              : RUN(NULL, "--dsn", age(), "--pool-max", "2", "--pool-min", "1",
                                    "demo", "--size", "60");
        expect_status(r, 0);
        const char *pool = run == 0 ? "(max 4, min 2)" : "(max 2, min 1)";
        if (strstr(r->out, pool) == NULL)
            fail_msg("demo output lacks '%s':\n%s", pool, r->out);
        static const char *sections[] = {
            "1. graph demo_social created", "2. loaded 60 people and 300 KNOWS edges with the bulk",
            "3. label indexes created",     "4a. the 5 people with the most friends",
            "4b. friends of friends",       "4c. a shortest chain of KNOWS between two people",
            "4d. people per city",          "5. pool statistics",
            "breaker             closed",   "pool closed gracefully"
        };
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
            if (strstr(r->out, sections[i]) == NULL)
                fail_msg("demo output lacks '%s':\n%s\n%s", sections[i], r->out, r->err);
        /* With 60 people there is a target three hops out: 4c shows a path. */
        const char *c4 = strstr(r->out, "4c. "), *d4 = strstr(r->out, "4d. ");
        const char *row = strstr(c4, "(1 row)");
        const char *path = strstr(c4, "(:Person ");
        if (row == NULL || row > d4 || path == NULL || path > d4)
            fail_msg("4c shows no path:\n%s", r->out);
        free(r);
    }
    run_out *r = RUN(NULL, "--dsn", age(), "demo", "--size", "3");
    expect_status(r, 2);
    free(r);
}

/* libpq's conventions (issue 11): the DSN's application_name= and PGAPPNAME
 * win over the CLI's own name (agec-cli is only the fallback); server
 * notices on stderr with -v only. */
static void test_application_name_and_notices(void **state)
{
    (void)state;
    static const char who[] =
        "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()";
    const char *pg = agec_test_pg_conninfo();
    char dsn[512];
    unsetenv("PGAPPNAME");
    run_out *r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "csv", "sql", who);
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "agec-cli"));
    free(r);
    snprintf(dsn, sizeof dsn, "%s application_name=my-service", pg);
    r = RUN(NULL, "--dsn", dsn, "--age-mode", "off", "--format", "csv", "sql", who);
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "my-service"));
    free(r);
    setenv("PGAPPNAME", "env-service", 1);
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "--format", "csv", "sql", who);
    unsetenv("PGAPPNAME");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "env-service"));
    free(r);

    /* Notices and warnings on stderr as psql shows them, with or without
     * -v, in one format (issue 26, item 11: WARNINGs were dropped without
     * -v, and -v printed them in the pool's event format). */
    static const char raise[] = "DO $$BEGIN RAISE NOTICE 'cli-notice-text'; "
                                "RAISE WARNING 'cli-warning-text' USING HINT = 'cli-hint'; END$$";
    for (int verbose = 0; verbose < 2; verbose++) {
        r = verbose ? RUN(NULL, "--dsn", pg, "--age-mode", "off", "-v", "sql", raise)
                    : RUN(NULL, "--dsn", pg, "--age-mode", "off", "sql", raise);
        expect_status(r, 0);
        if (strstr(r->err, "NOTICE:  cli-notice-text\n") == NULL ||
            strstr(r->err, "WARNING:  cli-warning-text\nHINT:  cli-hint\n") == NULL)
            fail_msg("%s: notices not shown as psql does:\n%s", verbose ? "-v" : "no -v", r->err);
        free(r);
    }
    /* client_min_messages decides, as in psql. */
    r = RUN(NULL, "--dsn", pg, "--age-mode", "off", "sql",
            "DO $$BEGIN SET LOCAL client_min_messages = error; RAISE WARNING 'cli-hidden'; END$$");
    expect_status(r, 0);
    assert_null(strstr(r->err, "cli-hidden"));
    free(r);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* agec load: CSV and JSON Lines, summary as JSON, rejects to a file, and a
 * bad row failing with file:line and exit 2. */
static void test_load_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/agec-cli-load-XXXXXX", p[96], k[96], j[96], rej[96];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/people.csv", dir);
    snprintf(k, sizeof k, "%s/knows.csv", dir);
    snprintf(j, sizeof j, "%s/more.jsonl", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    put(p, "uid:int,name\n1,Ada\n2,\"Alan, \"\"the\"\" one\"\n");
    put(j, "{\"uid\": 3, \"tags\": [1, {\"a\": \"b\"}]}\n");
    put(k, ":START_ID(Person),:END_ID(Person),since:int\n1,2,1950\n3,1,\n2,9,1\n");
    char vp[128], vj[128], ek[128];
    snprintf(vp, sizeof vp, "Person=%s", p);
    snprintf(vj, sizeof vj, "Person=%s", j);
    snprintf(ek, sizeof ek, "KNOWS=%s", k);
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", "cli_load");
    free(r); /* a graph left by an earlier run, if any */
    r = RUN(NULL, "--dsn", age(), "--graph", "cli_load", "load", "--vertices", vp, "--vertices", vj,
            "--key", "uid", "--edges", ek, "--reject", rej, "--format", "json");
    expect_status(r, 0);
    agec_value *v = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_agtype_parse(r->out, strlen(r->out), 0, &v, &err), &err, r->out);
    int64_t n = 0;
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "vertices", 8), &n, NULL), AGEC_OK);
    if (n != 3)
        fail_msg("load summary: %s\n%s", r->out, r->err);
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "edges", 5), &n, NULL), AGEC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "rejected", 8), &n, NULL), AGEC_OK);
    assert_int_equal(n, 1);
    agec_value_free(v);
    free(r);
    FILE *f = fopen(rej, "r");
    char line[512] = "";
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "knows.csv:4: edge end vertex Person uid = 9 does not exist"));
    assert_non_null(strstr(line, "\t2,9,1\n")); /* the record itself, after a tab */
    /* Without --reject: exit 2, the file and line named, nothing loaded. */
    r = RUN(NULL, "--dsn", age(), "--graph", "cli_load_bad", "load", "--vertices", vp, "--vertices",
            vj, "--key", "uid", "--edges", ek);
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "knows.csv:4: edge end vertex Person uid = 9"));
    free(r);
    r = RUN(NULL, "--dsn", age(), "graph", "exists", "cli_load_bad");
    assert_non_null(strstr(r->out, "false"));
    free(r);
    r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", "cli_load");
    expect_status(r, 0);
    free(r);
    unlink(p);
    unlink(k);
    unlink(j);
    unlink(rej);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_usage),
        cmocka_unit_test(test_graph_and_query_json),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_unreachable_and_redaction),
        cmocka_unit_test(test_sql_and_bench_on_pg),
        cmocka_unit_test(test_sql_copy_and_command_tag),
        cmocka_unit_test(test_graph_statement_timeout),
        cmocka_unit_test(test_application_name_and_notices),
        cmocka_unit_test(test_shell_on_age),
        cmocka_unit_test(test_shell_ctrl_c_cancels),
        cmocka_unit_test(test_demo_small),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_bench_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
