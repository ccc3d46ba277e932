/* Helpers of the cluster tests (see test_cluster_util.h). */
#include "test_cluster_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif

static void start_cluster(test_cluster *tc, bool age);

void tc_start(test_cluster *tc)
{
    start_cluster(tc, false);
}

void tc_start_age(test_cluster *tc)
{
    start_cluster(tc, true);
}

static void start_cluster(test_cluster *tc, bool age)
{
    memset(tc, 0, sizeof *tc);
    const char *tmp = getenv("TMPDIR");
    snprintf(tc->dir, sizeof tc->dir, "%s/agec-cluster.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(tc->dir) == NULL)
        fail_msg("mkdtemp failed");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "AGEC_CLUSTER_AGE=%d %s/pg-cluster-server start %s >%s.log 2>&1",
             age ? 1 : 0, AGEC_SCRIPTS_DIR, tc->dir, tc->dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.log >&2", tc->dir);
        (void)system(cmd);
        fail_msg("pg-cluster-server start failed (log above)");
    }
    for (int n = 0; n < 3; n++) {
        char path[300];
        snprintf(path, sizeof path, "%s/node%d/port", tc->dir, n);
        FILE *f = fopen(path, "r");
        if (f == NULL || fscanf(f, "%d", &tc->port[n]) != 1)
            fail_msg("cannot read %s", path);
        fclose(f);
    }
    snprintf(tc->conninfo, sizeof tc->conninfo,
             "host=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%d,%d user=postgres dbname=postgres",
             tc->port[0], tc->port[1], tc->port[2]);
    snprintf(tc->app, sizeof tc->app, "agec_cluster_%d", (int)getpid());
}

int tc_script(test_cluster *tc, const char *verb, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pg-cluster-server %s %s %s >>%s.log 2>&1", AGEC_SCRIPTS_DIR, verb,
             tc->dir, args ? args : "", tc->dir);
    return system(cmd);
}

void tc_stop(test_cluster *tc)
{
    if (tc->dir[0] == '\0')
        return;
    (void)tc_script(tc, "stop", "");
    char path[300];
    snprintf(path, sizeof path, "%s.log", tc->dir);
    unlink(path);
    rmdir(tc->dir);
    tc->dir[0] = '\0';
}

PGconn *tc_node(test_cluster *tc, int n)
{
    char ci[256];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=postgres dbname=postgres", tc->port[n]);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("node %d: %s", n, PQerrorMessage(c));
    return c;
}

void tc_exec(agec_conn *c, const char *sql)
{
    (void)pg_int(agec_conn_pgconn(c), sql);
}

int tc_conn_port(agec_conn *c, bool *in_recovery)
{
    PGresult *r = PQexec(agec_conn_pgconn(c), "SELECT inet_server_port(), pg_is_in_recovery()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("port query: %s", PQresultErrorMessage(r));
    int port = atoi(PQgetvalue(r, 0, 0));
    if (in_recovery)
        *in_recovery = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return port;
}

int tc_node_of_port(const test_cluster *tc, int port)
{
    for (int n = 0; n < 3; n++)
        if (tc->port[n] == port)
            return n;
    return -1;
}

void tc_config(test_cluster *tc, agec_cluster_config *cfg, agec_pool_config *pool, int max)
{
    agec_pool_config_init(pool);
    pool->age_mode = AGEC_AGE_OFF;
    pool->max = max;
    pool->connect_timeout_ms = 1000;
    pool->acquire_timeout_ms = 3000;
    pool->application_name = tc->app;
    pool->on_event = agec_pool_event_ignore;
    pool->breaker_open_ms = 300;
    pool->reconnect_backoff_max_ms = 100;
    agec_cluster_config_init(cfg);
    cfg->conninfo = tc->conninfo;
    cfg->pool = pool;
    cfg->recheck_ms = 100;
    cfg->name = "test";
}

agec_cluster *tc_open(const agec_cluster_config *cfg)
{
    agec_cluster *cl = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cluster_open(cfg, &cl, &err), &err, "agec_cluster_open");
    return cl;
}

agec_cluster_node_stats tc_node_stats(agec_cluster *cl, int n)
{
    agec_cluster_node_stats s;
    assert_int_equal(agec_cluster_node_stats_get(cl, n, &s), AGEC_OK);
    return s;
}
