/*
 * End-to-end check through plain libpq against the AGE server named by
 * AGEC_TEST_AGE (or the libpq environment): create a graph, insert a few
 * vertices with a bound agtype parameter, read them back, print them.
 */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

static int run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "demo: %s\n  failed: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

int main(void)
{
    const char *conninfo = getenv("AGEC_TEST_AGE");
    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "demo: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    int ok = run(c, "LOAD 'age'") && run(c, "SET search_path = ag_catalog, \"$user\", public") &&
             run(c, "SELECT drop_graph(name, true) FROM ag_graph WHERE name = 'demo_social'") &&
             run(c, "SELECT create_graph('demo_social')");
    const char *people[][2] = { { "Ada", "36" }, { "Grace", "85" }, { "Linus", "54" } };
    for (size_t i = 0; ok && i < sizeof people / sizeof people[0]; i++) {
        char params[128];
        snprintf(params, sizeof params, "{\"name\": \"%s\", \"age\": %s}", people[i][0],
                 people[i][1]);
        const char *values[1] = { params };
        PGresult *r = PQexecParams(c,
                                   "SELECT * FROM cypher('demo_social', $$CREATE (:Person "
                                   "{name: $name, age: $age})$$, $1) AS (v agtype)",
                                   1, NULL, values, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "demo: insert failed: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    if (ok) {
        PGresult *r = PQexec(c, "SELECT * FROM cypher('demo_social', $$MATCH (p:Person) RETURN p "
                                "ORDER BY p.name$$) AS (p agtype)");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (ok) {
            printf("vertices read back from Apache AGE:\n");
            for (int i = 0; i < PQntuples(r); i++)
                printf("  %s\n", PQgetvalue(r, i, 0));
        } else {
            fprintf(stderr, "demo: query failed: %s", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : 1;
}
