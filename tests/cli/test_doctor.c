/*
 * Issue 27: `agec doctor` against every kind of server the suite has, read
 * through --format json (one object per check): PG15 without AGE, the PGlite
 * AGE server, PgBouncer in transaction mode (the test runs under
 * scripts/pgbouncer-test-server run), a replicated cluster
 * (scripts/pg-cluster-server), a closed port, a wrong password (role agec_pw,
 * scram-sha-256), a role without privileges on a graph (PG15 with the
 * stand-in of AGE's catalog), and a DSN that does not parse. With the
 * cluster at hand, also that `agec cluster --prometheus` parses. Exit status:
 * 0 all passed, 1 a check failed, 3 no session could be opened.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_run.h"
#include "stub_catalog.h"
#include "test_cluster_util.h"

/* The status of check `name` (of node `node` when not NULL) in r's JSON
 * Lines output; fails the test when the check is missing. */
static const char *status_of(const run_out *r, const char *name, const char *node)
{
    static char st[16];
    char want[128];
    snprintf(want, sizeof want, "{\"check\": \"%s\", \"node\": ", name);
    for (const char *p = strstr(r->out, want); p != NULL; p = strstr(p + 1, want)) {
        const char *eol = strchr(p, '\n');
        if (node != NULL) {
            const char *q = strstr(p, node);
            if (q == NULL || (eol != NULL && q > eol))
                continue;
        }
        const char *s = strstr(p, "\"status\": \"");
        assert_non_null(s);
        s += strlen("\"status\": \"");
        size_t n = strcspn(s, "\"");
        snprintf(st, sizeof st, "%.*s", (int)n, s);
        return st;
    }
    fail_msg("no check %s%s%s in:\n%s%s", name, node ? " of " : "", node ? node : "", r->out,
             r->err);
    return NULL;
}

/* Every line is one JSON object with a check, a status and a time. */
static void expect_json_lines(const run_out *r)
{
    int lines = 0;
    for (const char *p = r->out; *p != '\0'; p = strchr(p, '\n') + 1) {
        assert_true(strncmp(p, "{\"check\": \"", 11) == 0);
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        assert_true(eol[-1] == '}');
        const char *ms = strstr(p, "\"ms\": ");
        assert_true(ms != NULL && ms < eol);
        lines++;
    }
    assert_true(lines >= 1);
}

static run_out *doctor(const char *dsn, const char *const *extra)
{
    const char *args[16] = { "--dsn", dsn, "--format", "json" };
    int n = 4;
    for (; extra != NULL && *extra != NULL && n < 14; extra++)
        args[n++] = *extra;
    args[n++] = "doctor";
    args[n] = NULL;
    run_out *r = run_cli(NULL, args);
    expect_json_lines(r);
    return r;
}

#define EXTRA(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *pg_port(void)
{
    static char port[16];
    const char *p = strstr(agec_test_pg_conninfo(), "port=");
    assert_non_null(p);
    snprintf(port, sizeof port, "%.*s", (int)strspn(p + 5, "0123456789"), p + 5);
    return port;
}

static void test_pg15_without_age(void **state)
{
    (void)state;
    run_out *r = doctor(agec_test_pg_conninfo(), NULL);
    expect_status(r, 1);
    assert_string_equal(status_of(r, "dsn", NULL), "pass");
    assert_string_equal(status_of(r, "tcp", NULL), "pass");
    assert_string_equal(status_of(r, "auth", NULL), "pass");
    assert_string_equal(status_of(r, "server", NULL), "pass");
    assert_string_equal(status_of(r, "pgbouncer", NULL), "pass");
    assert_string_equal(status_of(r, "age_installed", NULL), "fail");
    assert_string_equal(status_of(r, "connections", NULL), "pass");
    assert_string_equal(status_of(r, "role", NULL), "pass");
    assert_non_null(strstr(r->out, "CREATE EXTENSION age"));
    free(r);
    /* Told not to use AGE, nothing fails. */
    r = doctor(agec_test_pg_conninfo(), EXTRA("--age-mode", "off"));
    expect_status(r, 0);
    assert_string_equal(status_of(r, "age", NULL), "skip");
    free(r);
}

static void test_age_server(void **state)
{
    (void)state;
    run_out *g = RUN(NULL, "--dsn", agec_test_age_conninfo(), "graph", "create", "doctor_g");
    free(g); /* exists already on a rerun: doctor says which */
    run_out *r = doctor(agec_test_age_conninfo(), EXTRA("--graph", "doctor_g"));
    expect_status(r, 0);
    assert_string_equal(status_of(r, "age_installed", NULL), "pass");
    assert_string_equal(status_of(r, "age_load", NULL), "pass");
    assert_string_equal(status_of(r, "search_path", NULL), "pass");
    assert_string_equal(status_of(r, "graph", NULL), "pass");
    free(r);
    r = doctor(agec_test_age_conninfo(), EXTRA("--graph", "doctor_missing"));
    expect_status(r, 1);
    assert_string_equal(status_of(r, "graph", NULL), "fail");
    assert_non_null(strstr(r->out, "agec graph create"));
    free(r);
    /* AGE is not preloaded there: --age-mode preloaded fails and names the mode that works. */
    r = doctor(agec_test_age_conninfo(), EXTRA("--age-mode", "preloaded"));
    expect_status(r, 1);
    assert_string_equal(status_of(r, "age_load", NULL), "fail");
    assert_non_null(strstr(r->out, "\"remedy\": \"--age-mode load\""));
    free(r);
}

static void test_pgbouncer(void **state)
{
    (void)state;
    const char *dsn = getenv("AGEC_TEST_PGBOUNCER_PG");
    if (dsn == NULL)
        fail_msg("AGEC_TEST_PGBOUNCER_PG not set: run through scripts/pgbouncer-test-server run");
    run_out *r = doctor(dsn, EXTRA("--age-mode", "off"));
    expect_status(r, 1);
    assert_string_equal(status_of(r, "pgbouncer", NULL), "fail");
    assert_non_null(strstr(r->out, "pool_mode transaction"));
    assert_non_null(strstr(r->out, "--statement-mode unnamed"));
    free(r);
    r = doctor(dsn, EXTRA("--age-mode", "off", "--statement-mode", "unnamed"));
    expect_status(r, 0);
    assert_string_equal(status_of(r, "pgbouncer", NULL), "pass");
    assert_non_null(strstr(r->out, "pool_mode transaction"));
    free(r);
}

static void test_replicated_cluster(void **state)
{
    (void)state;
    test_cluster tc;
    tc_start(&tc);
    run_out *r = doctor(tc.conninfo, EXTRA("--age-mode", "off"));
    int primaries = 0, standbys = 0;
    for (const char *p = strstr(r->out, "\"check\": \"role\""); p != NULL;
         p = strstr(p + 1, "\"check\": \"role\"")) {
        const char *eol = strchr(p, '\n');
        const char *pr = strstr(p, "\"detail\": \"primary"),
                   *sb = strstr(p, "\"detail\": \"hot standby");
        primaries += pr != NULL && pr < eol;
        standbys += sb != NULL && sb < eol;
    }
    /* The cluster's Prometheus text (every node pool's metrics) is one valid
     * exposition: a real parser takes it (tests/unit/check-prometheus). */
    run_out *prom = RUN(NULL, "--dsn", tc.conninfo, "--age-mode", "off", "cluster", "--prometheus");
    tc_stop(&tc);
    expect_status(prom, 0);
    FILE *chk = popen(AGEC_CHECK_PROMETHEUS " >/dev/null", "w");
    assert_non_null(chk);
    fputs(prom->out, chk);
    int chk_status = pclose(chk);
    if (chk_status != 0)
        fail_msg("agec cluster --prometheus is not a valid exposition:\n%s", prom->out);
    assert_non_null(strstr(prom->out, "db_client_connection_count{"));
    free(prom);
    expect_status(r, 0);
    assert_int_equal(primaries, 1);
    assert_int_equal(standbys, 2);
    assert_string_equal(status_of(r, "cluster", NULL), "pass");
    assert_non_null(strstr(r->out, "bytes behind the primary"));
    free(r);
}

static void test_closed_port(void **state)
{
    (void)state;
    /* A port that was free a moment ago: bound, then closed. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char dsn[128];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d user=postgres", ntohs(a.sin_port));
    run_out *r = doctor(dsn, NULL);
    expect_status(r, 3);
    assert_string_equal(status_of(r, "resolve", NULL), "pass");
    assert_string_equal(status_of(r, "tcp", NULL), "fail");
    assert_non_null(strstr(r->out, "Connection refused"));
    free(r);
    /* A name that does not resolve. */
    r = doctor("host=agec-doctor-no-such-host.invalid user=postgres", NULL);
    expect_status(r, 3);
    assert_string_equal(status_of(r, "resolve", NULL), "fail");
    free(r);
}

static void test_wrong_password(void **state)
{
    (void)state;
    const char *secret = "Planted-Doctor-Secret-27";
    char dsn[256];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%s dbname=postgres user=agec_pw password=%s",
             pg_port(), secret);
    run_out *r = doctor(dsn, NULL);
    expect_status(r, 3);
    assert_string_equal(status_of(r, "auth", NULL), "fail");
    assert_non_null(strstr(r->out, "password authentication failed"));
    assert_null(strstr(r->out, secret));
    assert_null(strstr(r->err, secret));
    free(r);
    /* In a URI too, and in the table format. */
    snprintf(dsn, sizeof dsn, "postgresql://agec_pw:%s@127.0.0.1:%s/postgres", secret, pg_port());
    r = RUN(NULL, "--dsn", dsn, "--format", "table", "doctor");
    expect_status(r, 3);
    assert_non_null(strstr(r->out, "password=***"));
    assert_null(strstr(r->out, secret));
    assert_null(strstr(r->err, secret));
    free(r);
    /* The right password: scram authentication passes. */
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%s dbname=postgres user=agec_pw password=%s",
             pg_port(),
             getenv("AGEC_TEST_PG_PW_PASSWORD") ? getenv("AGEC_TEST_PG_PW_PASSWORD")
                                                : "agec-test-pw");
    r = doctor(dsn, EXTRA("--age-mode", "off"));
    expect_status(r, 0);
    assert_string_equal(status_of(r, "auth", NULL), "pass");
    assert_non_null(strstr(r->out, "by password"));
    free(r);
}

static void pg_exec(PGconn *pg, const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static void test_role_without_privileges(void **state)
{
    (void)state;
    char db[64], sql[256], dsn[300];
    snprintf(db, sizeof db, "agec_doctor_%d", (int)getpid());
    PGconn *pg = PQconnectdb(agec_test_pg_conninfo());
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    pg_exec(pg, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    pg_exec(pg, sql);
    pg_exec(pg, "DROP ROLE IF EXISTS agec_doctor_nopriv");
    pg_exec(pg, "DROP ROLE IF EXISTS agec_doctor_priv");
    pg_exec(pg, "CREATE ROLE agec_doctor_nopriv LOGIN");
    pg_exec(pg, "CREATE ROLE agec_doctor_priv LOGIN");
    snprintf(dsn, sizeof dsn, "%s dbname=%s", agec_test_pg_conninfo(), db);
    PGconn *g = PQconnectdb(dsn);
    assert_int_equal(PQstatus(g), CONNECTION_OK);
    pg_exec(g, AGEC_STUB_AGE_SQL);
    pg_exec(g, "SELECT ag_catalog.create_graph('doctor_g')");
    pg_exec(g, "SELECT ag_catalog.create_vlabel('doctor_g', 'Person')");
    pg_exec(g, "GRANT USAGE ON SCHEMA ag_catalog TO PUBLIC");
    pg_exec(g, "GRANT SELECT ON ag_catalog.ag_graph TO PUBLIC");
    pg_exec(g, "GRANT USAGE ON SCHEMA doctor_g TO agec_doctor_priv");
    pg_exec(g, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA doctor_g TO "
               "agec_doctor_priv");
    PQfinish(g);

    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%s dbname=%s user=agec_doctor_nopriv", pg_port(),
             db);
    run_out *r = doctor(dsn, EXTRA("--age-mode", "off", "--graph", "doctor_g"));
    int nopriv = r->status;
    char *nopriv_out = strdup(r->out);
    free(r);
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%s dbname=%s user=agec_doctor_priv", pg_port(),
             db);
    r = doctor(dsn, EXTRA("--age-mode", "off", "--graph", "doctor_g"));

    snprintf(sql, sizeof sql, "DROP DATABASE %s", db);
    pg_exec(pg, sql);
    pg_exec(pg, "DROP ROLE agec_doctor_nopriv");
    pg_exec(pg, "DROP ROLE agec_doctor_priv");
    PQfinish(pg);

    expect_status(r, 0);
    assert_string_equal(status_of(r, "graph", NULL), "pass");
    free(r);
    if (nopriv != 1 || strstr(nopriv_out, "\"check\": \"graph\", \"node\": \"127.0.0.1:") == NULL ||
        strstr(nopriv_out, "\"status\": \"fail\"") == NULL ||
        strstr(nopriv_out, "on the graph's schema NO") == NULL ||
        strstr(nopriv_out, "GRANT USAGE ON SCHEMA") == NULL)
        fail_msg("a role without privileges on the graph: exit %d\n%s", nopriv, nopriv_out);
    free(nopriv_out);
}

static void test_bad_dsn(void **state)
{
    (void)state;
    run_out *r = doctor("host=127.0.0.1 bogus_keyword=1 password=Planted-Doctor-Secret-27", NULL);
    expect_status(r, 3);
    assert_string_equal(status_of(r, "dsn", NULL), "fail");
    assert_null(strstr(r->out, "Planted-Doctor-Secret-27"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_dsn),
        cmocka_unit_test(test_closed_port),
        cmocka_unit_test(test_pg15_without_age),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_role_without_privileges),
        cmocka_unit_test(test_pgbouncer),
        cmocka_unit_test(test_age_server),
        cmocka_unit_test(test_replicated_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
