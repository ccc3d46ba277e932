/*
 * The test servers themselves, through plain libpq: the PG15 server answers
 * as PostgreSQL 15, and the AGE server runs Cypher after LOAD 'age'.
 * These prove the harness before any agec code is trusted.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

static PGconn *connect_or_fail(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connect failed: %s", PQerrorMessage(c));
    }
    return c;
}

static PGresult *exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("'%s' failed: %s", sql, PQresultErrorMessage(r));
    return r;
}

static void test_pg15_server(void **state)
{
    (void)state;
    PGconn *c = connect_or_fail(agec_test_pg_conninfo());
    PGresult *r = exec_ok(c, "SHOW server_version_num");
    int v = atoi(PQgetvalue(r, 0, 0));
    assert_true(v >= 150000 && v < 160000);
    PQclear(r);
    /* Loopback only: the server must not listen on other addresses. */
    r = exec_ok(c, "SHOW listen_addresses");
    assert_string_equal(PQgetvalue(r, 0, 0), "127.0.0.1");
    PQclear(r);
    PQfinish(c);
}

static void test_age_create_and_read_vertex(void **state)
{
    (void)state;
    PGconn *c = connect_or_fail(agec_test_age_conninfo());
    PQclear(exec_ok(c, "LOAD 'age'"));
    PQclear(exec_ok(c, "SET search_path = ag_catalog, \"$user\", public"));
    PGresult *r = exec_ok(c, "SELECT count(*) FROM ag_graph WHERE name = 'it_libpq'");
    if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
        PQclear(exec_ok(c, "SELECT drop_graph('it_libpq', true)"));
    PQclear(r);
    PQclear(exec_ok(c, "SELECT create_graph('it_libpq')"));
    PQclear(exec_ok(c, "SELECT * FROM cypher('it_libpq', $$CREATE (:Person {name: 'Ada', "
                       "born: 1815})$$) AS (v agtype)"));
    r = exec_ok(c, "SELECT * FROM cypher('it_libpq', $$MATCH (p:Person) RETURN p.name, "
                   "p.born, p$$) AS (name agtype, born agtype, p agtype)");
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "\"Ada\"");
    assert_string_equal(PQgetvalue(r, 0, 1), "1815");
    const char *vertex = PQgetvalue(r, 0, 2);
    assert_non_null(strstr(vertex, "\"label\": \"Person\""));
    assert_non_null(strstr(vertex, "::vertex"));
    PQclear(r);
    PQclear(exec_ok(c, "SELECT drop_graph('it_libpq', true)"));
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg15_server),
        cmocka_unit_test(test_age_create_and_read_vertex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
