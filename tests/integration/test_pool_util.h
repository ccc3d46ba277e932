/*
 * Helpers shared by the pool's integration tests: a config with short
 * timeouts and a unique application_name, an event recorder, and a separate
 * plain libpq connection to look at pg_stat_activity.
 */
#ifndef AGEC_TEST_POOL_UTIL_H
#define AGEC_TEST_POOL_UTIL_H

#include <pthread.h>

#include "testutil.h"

#include "agec/agec.h"

/* Records every event the pool sends (thread-safe). */
typedef struct ev_log {
    pthread_mutex_t mu;
    int count[16]; /* by agec_pool_event_type */
    int closed[AGEC_CLOSE_REASON_COUNT];
    char leak_file[256];
    int leak_line;
    char leak_func[64];
    int64_t leak_held_ms;
    agec_status last_status;
    char last_message[512];
    agec_breaker_state breaker_seen[8]; /* breaker transitions in order */
    int breaker_n;
} ev_log;

void ev_log_init(ev_log *l);
void ev_log_destroy(ev_log *l);
int ev_log_count(ev_log *l, agec_pool_event_type t);
void ev_log_cb(const agec_pool_event *ev, void *user);

/* agec_pool_config_init + the PG15 server, AGEC_AGE_OFF, application_name
 * "agec_<tag>_<pid>" (stored in app[64]), short timeouts, events to log
 * (NULL = silent). */
void pool_test_config(agec_pool_config *cfg, const char *tag, char app[64], ev_log *log);

/* Open a pool or fail the test with the error. */
agec_pool *pool_open_ok(const agec_pool_config *cfg);

/* The conninfo scripts/pgbouncer-test-server exports in `var`
 * (AGEC_TEST_PGBOUNCER_PG, ..._PGNAMED); fails the test when it is unset. */
const char *pgbouncer_conninfo(const char *var);

/* The pool the PgBouncer tests open (also on a direct conninfo, as their
 * control case): statement mode, max and AGE mode as given, 30 s acquire,
 * 10 s connect, silent, named "pgbouncer". Fails the test if it cannot. */
agec_pool *pgbouncer_pool(const char *conninfo, agec_stmt_mode mode, int max, agec_age_mode age);

/* A plain libpq connection to the PG15 server (not through the pool). */
PGconn *pg_admin(void);
/* Run one statement, fail the test on error; returns the first value as int
 * (0 if no rows). */
long pg_int(PGconn *c, const char *sql);
/* Backends with this application_name. */
int pg_count_app(PGconn *c, const char *app);
/* Wait until exactly n backends have this application_name. */
bool pg_wait_app_count(PGconn *c, const char *app, int n, int timeout_ms);
/* pg_terminate_backend every backend with this application_name; returns count. */
int pg_kill_app(PGconn *c, const char *app);

/* Run a statement on a borrowed connection, fail the test on error. */
void conn_exec_ok(agec_conn *c, const char *sql);
/* First value of a one-row query on a borrowed connection, into buf. */
void conn_value(agec_conn *c, const char *sql, char *buf, size_t cap);

agec_pool_stats pool_stats(agec_pool *p);
/* Wait until the pool's `waiting` (or `idle`) gauge is n, at most timeout_ms. */
bool pool_wait_waiting(agec_pool *p, int n, int timeout_ms);
bool pool_wait_idle(agec_pool *p, int n, int timeout_ms);
/* Wait until the pool's total (slots taken, closing included) is n. */
bool pool_wait_total(agec_pool *p, int n, int timeout_ms);

#endif
