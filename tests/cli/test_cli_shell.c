/*
 * The agec shell as psql and cypher-shell users expect it (issue 26, items
 * 1-4): one session for the whole shell (transactions, SET), the
 * transaction state in the prompt, Ctrl-C at the prompt clears the input
 * and stays, history recall runs a statement again, scripts run a last
 * statement without ';', stop on the first error with --on-error-stop
 * (exit 1), end with exit 3 when the connection is lost, honour --format,
 * accept \q; :sql runs several statements; :graph checks the graph.
 * Against the AGE server under test (PGlite, and native AGE as
 * cli_shell_native) and PG15 for the lost connection.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_pty.h"
#include "cli_run.h"

#define GRAPH "cli_shell_t"

static const char *age(void)
{
    return agec_test_age_conninfo();
}

static int setup(void **state)
{
    (void)state;
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", GRAPH);
    free(r);
    r = RUN(NULL, "--dsn", age(), "graph", "create", GRAPH);
    expect_status(r, 0);
    free(r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    run_out *r = RUN(NULL, "--dsn", age(), "graph", "drop", "--cascade", GRAPH);
    free(r);
    return 0;
}

/* Fail unless `needles` appear in r->out in this order. */
static void in_order(const run_out *r, const char *const *needles, size_t n)
{
    const char *at = r->out;
    for (size_t i = 0; i < n; i++) {
        const char *p = strstr(at, needles[i]);
        if (p == NULL)
            fail_msg("output lacks '%s' (in order):\n%s\nstderr:\n%s", needles[i], r->out, r->err);
        at = p + strlen(needles[i]);
    }
}

/* Item 1: the shell is one session. A rolled-back CREATE is gone, with
 * :sql BEGIN/ROLLBACK and with plain BEGIN; ... COMMIT;, and SET stays on the
 * session with a pool of two. Before: the release rolled every BEGIN back
 * at once (count 1 after the ROLLBACK), SET landed on any connection. */
static void test_one_session(void **state)
{
    (void)state;
    run_out *r =
        RUN(":sql BEGIN\n"
            "CREATE (:X {v: 1});\n"
            ":sql ROLLBACK\n"
            "MATCH (n:X) RETURN count(n) AS after_rollback;\n"
            "BEGIN;\n"
            "CREATE (:X {v: 2});\n"
            "commit;\n"
            "MATCH (n:X) RETURN n.v AS after_commit;\n"
            ":sql SET application_name = 'agec_shell_one_session'\n"
            ":sql SELECT current_setting('application_name') AS app\n",
            "--dsn", age(), "--graph", GRAPH, "--pool-max", "2", "--format", "csv", "shell");
    expect_status(r, 0);
    static const char *const want[] = { "after_rollback\n0\n", "after_commit\n2\n",
                                        "app\nagec_shell_one_session\n" };
    in_order(r, want, 3);
    free(r);
}

/* Item 3: psql's script behaviour. */
static void test_script_behaviour(void **state)
{
    (void)state;
    /* Without --on-error-stop every statement runs, exit 0 (as psql); the
     * last one without ';' runs too. Before: it was dropped. */
    run_out *r = RUN("RETURN 1 AS one;\nRETURN nosuch;\nRETURN 2 AS two;\nRETURN 3 AS last",
                     "--dsn", age(), "--graph", GRAPH, "--format", "csv", "shell");
    expect_status(r, 0);
    static const char *const all[] = { "one\n1\n", "two\n2\n", "last\n3\n" };
    in_order(r, all, 3);
    assert_non_null(strstr(r->err, "query failed"));
    free(r);
    /* --on-error-stop: the first failure ends the script with exit 1. */
    r = RUN("RETURN 1 AS one;\nRETURN nosuch;\nRETURN 2 AS two;\n", "--dsn", age(), "--graph",
            GRAPH, "--format", "csv", "shell", "--on-error-stop");
    expect_status(r, 1);
    assert_non_null(strstr(r->out, "one\n1\n"));
    assert_null(strstr(r->out, "two"));
    free(r);
    /* --format json is honoured (before: always tables); \q ends the shell,
     * also right after a statement without ';' (before: glued to it). */
    r = RUN("RETURN 5 AS five;\nRETURN 6 AS six\n\\q\nRETURN 7 AS seven;\n", "--dsn", age(),
            "--graph", GRAPH, "--format", "json", "shell");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "{\"five\": 5}"));
    assert_null(strstr(r->out, "six"));
    assert_null(strstr(r->out, "seven"));
    assert_null(strstr(r->out, "Time:"));
    free(r);
}

/* Item 4: :sql runs several statements (before: 42601, it was prepared);
 * :graph takes a trailing blank and refuses a graph that does not exist. */
static void test_commands(void **state)
{
    (void)state;
    run_out *r = RUN(":sql SELECT 1 AS x; SELECT 2 AS y\n"
                     ":graph " GRAPH "  \n"
                     ":graph nc_nosuch\n"
                     "RETURN 8 AS eight;\n",
                     "--dsn", age(), "--format", "csv", "shell", "--on-error-stop");
    /* The missing graph fails the script (exit 1) after :graph took GRAPH. */
    expect_status(r, 1);
    assert_non_null(strstr(r->out, "y\n2\n"));
    assert_non_null(strstr(r->err, "graph nc_nosuch does not exist"));
    assert_null(strstr(r->err, "42601"));
    free(r);
    r = RUN(":graph " GRAPH "  \n:graph nc_nosuch\nRETURN 8 AS eight;\n", "--dsn", age(),
            "--format", "csv", "shell");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "eight\n8\n")); /* still on GRAPH */
    free(r);
}

/* Items 1, 2, 4 on a terminal: the prompt shows the transaction, Ctrl-C at
 * the prompt clears the input and stays (before: the shell exited, rc 0),
 * Up + Enter runs the last statement again (before: its ';' was dropped). */
static void test_terminal(void **state)
{
    (void)state;
    pty_session s;
    pty_start(&s, (const char *const[]){ "--dsn", age(), "--graph", GRAPH, "shell", NULL });
    size_t at = pty_expect(&s, 0, GRAPH "=#", 10000);
    pty_send(&s, "BEGIN;\r");
    at = pty_expect(&s, at, GRAPH "=*#", 10000);
    pty_send(&s, "RETURN nosuch;\r");
    at = pty_expect(&s, at, GRAPH "=!#", 10000);
    pty_send(&s, "ROLLBACK;\r");
    at = pty_expect(&s, at, GRAPH "=#", 10000);
    /* Ctrl-C on a half-typed statement, then on an empty prompt. */
    pty_send(&s, "RETURN 1 AS\r");
    at = pty_expect(&s, at, GRAPH "-#", 5000);
    pty_send(&s, "\x03");
    at = pty_expect(&s, at, GRAPH "=#", 5000);
    pty_send(&s, "\x03");
    at = pty_expect(&s, at, GRAPH "=#", 5000);
    pty_send(&s, "RETURN 41 + 1 AS answer;\r");
    at = pty_expect(&s, at, "42", 10000);
    at = pty_expect(&s, at, GRAPH "=#", 5000);
    pty_send(&s, "\x1b[A\r"); /* Up, Enter: the same statement again */
    at = pty_expect(&s, at, "42", 10000);
    at = pty_expect(&s, at, "(1 row)", 5000);
    pty_send(&s, ":quit\r");
    assert_int_equal(pty_finish(&s), 0);
}

/* Item 3 and 1: a lost connection ends a script with exit 3; on a terminal
 * the shell says so and reconnects. PG15: its own server process ends. */
static void test_connection_lost(void **state)
{
    (void)state;
    const char *pg = agec_test_pg_conninfo();
    run_out *r = RUN(":sql SELECT pg_terminate_backend(pg_backend_pid())\n:sql SELECT 1 AS after\n",
                     "--dsn", pg, "--age-mode", "off", "--format", "csv", "shell");
    expect_status(r, 3);
    assert_non_null(strstr(r->err, "connection to the server was lost"));
    assert_null(strstr(r->out, "after"));
    free(r);
    pty_session s;
    pty_start(&s, (const char *const[]){ "--dsn", pg, "--age-mode", "off", "shell", NULL });
    size_t at = pty_expect(&s, 0, "agec=#", 10000);
    pty_send(&s, ":sql BEGIN\r");
    at = pty_expect(&s, at, "agec=*#", 10000);
    pty_send(&s, ":sql SELECT pg_terminate_backend(pg_backend_pid())\r");
    at = pty_expect(&s, at, "its open transaction is gone", 10000);
    at = pty_expect(&s, at, "Reconnecting: succeeded", 10000);
    at = pty_expect(&s, at, "agec=#", 5000);
    pty_send(&s, ":sql SELECT 'back' AS s\r");
    at = pty_expect(&s, at, "back", 10000);
    pty_send(&s, ":quit\r");
    assert_int_equal(pty_finish(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_session),     cmocka_unit_test(test_script_behaviour),
        cmocka_unit_test(test_commands),        cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_connection_lost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
