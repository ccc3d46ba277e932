#include "test_pool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ev_log_init(ev_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

void ev_log_destroy(ev_log *l)
{
    pthread_mutex_destroy(&l->mu);
}

int ev_log_count(ev_log *l, agec_pool_event_type t)
{
    pthread_mutex_lock(&l->mu);
    int n = l->count[t];
    pthread_mutex_unlock(&l->mu);
    return n;
}

void ev_log_cb(const agec_pool_event *ev, void *user)
{
    ev_log *l = user;
    pthread_mutex_lock(&l->mu);
    l->count[ev->type]++;
    if (ev->type == AGEC_EV_CLOSE)
        l->closed[ev->reason]++;
    if (ev->type == AGEC_EV_LEAK_SUSPECTED || ev->type == AGEC_EV_LEAK_RETURNED) {
        snprintf(l->leak_file, sizeof l->leak_file, "%s", ev->file ? ev->file : "");
        snprintf(l->leak_func, sizeof l->leak_func, "%s", ev->func ? ev->func : "");
        l->leak_line = ev->line;
        l->leak_held_ms = ev->held_ms;
    }
    if (ev->type == AGEC_EV_BREAKER && l->breaker_n < 8)
        l->breaker_seen[l->breaker_n++] = ev->breaker;
    if (ev->status != AGEC_OK) {
        l->last_status = ev->status;
        snprintf(l->last_message, sizeof l->last_message, "%s", ev->message);
    }
    pthread_mutex_unlock(&l->mu);
}

void pool_test_config(agec_pool_config *cfg, const char *tag, char app[64], ev_log *log)
{
    agec_pool_config_init(cfg);
    snprintf(app, 64, "agec_%s_%d", tag, (int)getpid());
    cfg->conninfo = agec_test_pg_conninfo();
    cfg->application_name = app;
    cfg->age_mode = AGEC_AGE_OFF;
    cfg->max = 4;
    cfg->connect_timeout_ms = 2000;
    cfg->acquire_timeout_ms = 3000;
    cfg->name = tag;
    if (log != NULL) {
        cfg->on_event = ev_log_cb;
        cfg->event_user = log;
    } else {
        cfg->on_event = agec_pool_event_ignore;
    }
}

agec_pool *pool_open_ok(const agec_pool_config *cfg)
{
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_open(cfg, &p, &err);
    if (st != AGEC_OK)
        fail_msg("agec_pool_open: %s: %s", agec_status_name(st), err.message);
    return p;
}

agec_pool *pgbouncer_pool(const char *conninfo, agec_stmt_mode mode, int max, agec_age_mode age)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = max;
    cfg.statement_mode = mode;
    cfg.age_mode = age;
    cfg.acquire_timeout_ms = 30000;
    cfg.connect_timeout_ms = 10000;
    cfg.on_event = agec_pool_event_ignore;
    cfg.name = "pgbouncer";
    return pool_open_ok(&cfg);
}

PGconn *pg_admin(void)
{
    PGconn *c = PQconnectdb(agec_test_pg_conninfo());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("admin connect: %s", PQerrorMessage(c));
    return c;
}

long pg_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("'%s': %s", sql, PQresultErrorMessage(r));
    long v = (st == PGRES_TUPLES_OK && PQntuples(r) > 0) ? atol(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

int pg_count_app(PGconn *c, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return (int)pg_int(c, sql);
}

int pg_kill_app(PGconn *c, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s'",
             app);
    return (int)pg_int(c, sql);
}

void conn_exec_ok(agec_conn *c, const char *sql)
{
    PGresult *r = PQexec(agec_conn_pgconn(c), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("'%s': %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

void conn_value(agec_conn *c, const char *sql, char *buf, size_t cap)
{
    PGresult *r = PQexec(agec_conn_pgconn(c), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("'%s': %s", sql, PQresultErrorMessage(r));
    snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

agec_pool_stats pool_stats(agec_pool *p)
{
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(p, &s), AGEC_OK);
    return s;
}

typedef struct app_wait {
    PGconn *c;
    const char *app;
    int n;
} app_wait;

static bool app_count_is(void *arg)
{
    app_wait *w = arg;
    return pg_count_app(w->c, w->app) == w->n;
}

bool pg_wait_app_count(PGconn *c, const char *app, int n, int timeout_ms)
{
    app_wait w = { c, app, n };
    return agec_test_wait_until(app_count_is, &w, timeout_ms);
}

typedef struct gauge_wait {
    agec_pool *p;
    int n;
    char which; /* 'i' idle, 'w' waiting, 't' total */
} gauge_wait;

static bool gauge_is(void *arg)
{
    gauge_wait *w = arg;
    agec_pool_stats s = pool_stats(w->p);
    return (w->which == 'i' ? s.idle : w->which == 'w' ? s.waiting : s.total) == w->n;
}

bool pool_wait_waiting(agec_pool *p, int n, int timeout_ms)
{
    gauge_wait w = { p, n, 'w' };
    return agec_test_wait_until(gauge_is, &w, timeout_ms);
}

bool pool_wait_idle(agec_pool *p, int n, int timeout_ms)
{
    gauge_wait w = { p, n, 'i' };
    return agec_test_wait_until(gauge_is, &w, timeout_ms);
}

bool pool_wait_total(agec_pool *p, int n, int timeout_ms)
{
    gauge_wait w = { p, n, 't' };
    return agec_test_wait_until(gauge_is, &w, timeout_ms);
}

const char *pgbouncer_conninfo(const char *var)
{
    const char *v = getenv(var);
    if (v == NULL || v[0] == '\0')
        fail_msg("%s is not set: run this test through scripts/pgbouncer-test-server run "
                 "(its CTest registration does) under scripts/with-test-servers",
                 var);
    return v;
}
