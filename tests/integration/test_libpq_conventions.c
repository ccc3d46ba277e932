/*
 * The conventions of libpq (issue 11, section 2), against real PG15 servers:
 *  - application_name is libpq's fallback_application_name: the DSN's
 *    application_name= and PGAPPNAME win, unless the config asks to override;
 *  - refusals at connect carry their SQLSTATE: 53300 (too many connections
 *    for a role with CONNECTION LIMIT 1), 3D000 (missing database: a
 *    configuration error, not retried, not counted toward the breaker),
 *    57P03 (a throwaway cluster in smart shutdown while a session holds it);
 *    in the error, the connect-failed event and the breaker-open message;
 *  - server notices become AGEC_EV_NOTICE events, and the default logger
 *    prints none of them but WARNINGs;
 *  - prepared-statement names carry a per-pool random nonce, not the pid.
 */
#include "test_pool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif

/* ---- an event recorder that keeps SQLSTATEs and notices --------------------- */

typedef struct recorder {
    pthread_mutex_t mu;
    int connect_failed;
    char connect_failed_sqlstate[6];
    int notices;
    char severity[16], sqlstate[6], message[256], detail[256], hint[256];
    bool warning;
} recorder;

static void record(const agec_pool_event *ev, void *user)
{
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    if (ev->type == AGEC_EV_CONNECT_FAILED) {
        r->connect_failed++;
        snprintf(r->connect_failed_sqlstate, sizeof r->connect_failed_sqlstate, "%s", ev->sqlstate);
    } else if (ev->type == AGEC_EV_NOTICE) {
        r->notices++;
        assert_true(ev->struct_size >= sizeof *ev);
        snprintf(r->severity, sizeof r->severity, "%s", ev->severity);
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", ev->sqlstate);
        snprintf(r->message, sizeof r->message, "%s", ev->message);
        snprintf(r->detail, sizeof r->detail, "%s", ev->detail);
        snprintf(r->hint, sizeof r->hint, "%s", ev->hint);
        r->warning = ev->warning;
    }
    pthread_mutex_unlock(&r->mu);
}

/* A small pool on conninfo with AGE off. */
static void small_config(agec_pool_config *cfg, const char *conninfo, int max)
{
    agec_pool_config_init(cfg);
    cfg->conninfo = conninfo;
    cfg->age_mode = AGEC_AGE_OFF;
    cfg->max = max;
    cfg->on_event = agec_pool_event_ignore;
}

static agec_pool *recorded_pool(const char *conninfo, recorder *rec, int breaker_threshold,
                                int acquire_timeout_ms)
{
    memset(rec, 0, sizeof *rec);
    pthread_mutex_init(&rec->mu, NULL);
    agec_pool_config cfg;
    small_config(&cfg, conninfo, 2);
    cfg.breaker_threshold = breaker_threshold;
    cfg.acquire_timeout_ms = acquire_timeout_ms;
    cfg.reconnect_backoff_initial_ms = 20;
    cfg.reconnect_backoff_max_ms = 100;
    cfg.on_event = record;
    cfg.event_user = rec;
    return pool_open_ok(&cfg);
}

/* ---- application_name ----------------------------------------------------- */

/* The application_name pg_stat_activity shows for a pool connection. */
static void app_name_seen(const char *conninfo, const char *cfg_name, bool override, char *out,
                          size_t cap)
{
    agec_pool_config cfg;
    small_config(&cfg, conninfo, 1);
    cfg.application_name = cfg_name;
    cfg.application_name_override = override;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    conn_value(c, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()", out,
               cap);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
}

static void test_application_name_is_a_fallback(void **state)
{
    (void)state;
    char dsn[512], got[128];
    const char *pg = agec_test_pg_conninfo();
    unsetenv("PGAPPNAME");
    /* Nothing else names the program: the config's name. */
    app_name_seen(pg, "agec-fallback", false, got, sizeof got);
    assert_string_equal(got, "agec-fallback");
    /* The DSN's application_name= wins (libpq's convention). */
    snprintf(dsn, sizeof dsn, "%s application_name=from-dsn", pg);
    app_name_seen(dsn, "agec-fallback", false, got, sizeof got);
    assert_string_equal(got, "from-dsn");
    /* So does PGAPPNAME. */
    setenv("PGAPPNAME", "from-env", 1);
    app_name_seen(pg, "agec-fallback", false, got, sizeof got);
    assert_string_equal(got, "from-env");
    /* Unless the program asks to override both. */
    app_name_seen(dsn, "agec-forced", true, got, sizeof got);
    assert_string_equal(got, "agec-forced");
    unsetenv("PGAPPNAME");
}

/* ---- refusals at connect -------------------------------------------------- */

static void test_refusal_53300_too_many_for_role(void **state)
{
    (void)state;
    char role[64], sql[256], dsn[512];
    snprintf(role, sizeof role, "agec_lim_%d", (int)getpid());
    PGconn *admin = pg_admin();
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
    pg_int(admin, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN CONNECTION LIMIT 1", role);
    pg_int(admin, sql);
    snprintf(dsn, sizeof dsn, "%s user=%s", agec_test_pg_conninfo(), role);

    recorder rec;
    agec_pool *p = recorded_pool(dsn, &rec, 2, 1000);
    agec_conn *c1, *c2 = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c1, &err), &err, "first connection of the role");
    /* The role's one slot is taken: the server refuses with 53300. */
    agec_status st = agec_pool_acquire(p, &c2, &err);
    fprintf(stderr, "second connection: %s [%s] %s\n", agec_status_name(st), err.sqlstate,
            err.message);
    assert_int_equal(st, AGEC_ERR_UNREACHABLE);
    assert_string_equal(err.sqlstate, "53300");
    assert_non_null(strstr(err.message, "too many connections for role"));
    assert_non_null(strstr(err.message, "[53300]"));
    pthread_mutex_lock(&rec.mu);
    assert_true(rec.connect_failed >= 2);
    assert_string_equal(rec.connect_failed_sqlstate, "53300");
    pthread_mutex_unlock(&rec.mu);
    /* Two refusals opened the breaker: it names the cause, not just "open". */
    agec_error_clear(&err);
    st = agec_pool_acquire(p, &c2, &err);
    fprintf(stderr, "breaker: %s [%s] %s\n", agec_status_name(st), err.sqlstate, err.message);
    assert_int_equal(st, AGEC_ERR_BREAKER_OPEN);
    assert_string_equal(err.sqlstate, "53300");
    assert_non_null(strstr(err.message, "last connection error: "));
    assert_non_null(strstr(err.message, "[53300]"));
    agec_conn_release(c1);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    snprintf(sql, sizeof sql, "DROP ROLE %s", role);
    pg_int(admin, sql);
    PQfinish(admin);
    pthread_mutex_destroy(&rec.mu);
}

static void test_refusal_3D000_is_a_config_error(void **state)
{
    (void)state;
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=agec_no_such_db_%d", agec_test_pg_conninfo(),
             (int)getpid());
    recorder rec;
    /* A breaker that opens on one failure, a long acquire timeout: a
     * refusal that counted or was retried would show. */
    agec_pool *p = recorded_pool(dsn, &rec, 1, 20000);
    for (int i = 0; i < 3; i++) {
        agec_conn *c = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_pool_acquire(p, &c, &err);
        if (i == 0)
            fprintf(stderr, "missing database: %s [%s] %s\n", agec_status_name(st), err.sqlstate,
                    err.message);
        assert_int_equal(st, AGEC_ERR_CONFIG);
        assert_string_equal(err.sqlstate, "3D000");
        assert_non_null(strstr(err.message, "does not exist"));
    }
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.connect_failures, 3); /* one attempt per acquire: not retried */
    assert_int_equal(s.breaker_opens, 0);
    assert_int_equal(s.breaker, AGEC_BREAKER_CLOSED);
    pthread_mutex_lock(&rec.mu);
    assert_string_equal(rec.connect_failed_sqlstate, "3D000");
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    pthread_mutex_destroy(&rec.mu);
}

static int pg_server(const char *what, const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pg-test-server %s %s >/dev/null 2>&1", AGEC_SCRIPTS_DIR, what,
             dir);
    return system(cmd);
}

static bool refuses_shutting_down(void *arg)
{
    PGconn *c = PQconnectdb(arg);
    bool yes = PQstatus(c) == CONNECTION_BAD && strstr(PQerrorMessage(c), "shutting down");
    PQfinish(c);
    return yes;
}

static void test_refusal_57P03_shutting_down(void **state)
{
    (void)state;
    /* A cluster of our own: smart shutdown waits for its sessions, and
     * refuses new ones meanwhile. */
    char dir[] = "/tmp/agec-pg.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pg_server("start", dir), 0);
    char path[512], port[32] = "", dsn[512];
    snprintf(path, sizeof path, "%s/port", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(port, sizeof port, f));
    fclose(f);
    port[strcspn(port, "\n")] = '\0';
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%s user=postgres dbname=postgres", port);
    PGconn *holder = PQconnectdb(dsn);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    assert_int_equal(pg_server("stop-smart", dir), 0);
    assert_true(agec_test_wait_until(refuses_shutting_down, dsn, 10000));

    recorder rec;
    agec_pool *p = recorded_pool(dsn, &rec, 100, 300);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire(p, &c, &err);
    fprintf(stderr, "shutting down: %s [%s] %s\n", agec_status_name(st), err.sqlstate, err.message);
    assert_int_equal(st, AGEC_ERR_UNREACHABLE);
    assert_string_equal(err.sqlstate, "57P03");
    assert_non_null(strstr(err.message, "[57P03]"));
    pthread_mutex_lock(&rec.mu);
    assert_string_equal(rec.connect_failed_sqlstate, "57P03");
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    PQfinish(holder);
    assert_int_equal(pg_server("stop", dir), 0);
    pthread_mutex_destroy(&rec.mu);
}

/* ---- notices ---------------------------------------------------------------- */

static void test_notices_reach_the_callback(void **state)
{
    (void)state;
    recorder rec;
    agec_pool *p = recorded_pool(agec_test_pg_conninfo(), &rec, 5, 5000);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    conn_exec_ok(c, "DO $$BEGIN RAISE NOTICE 'hello %', 42 USING DETAIL = 'the detail', "
                    "HINT = 'the hint'; END$$");
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.notices, 1);
    assert_string_equal(rec.severity, "NOTICE");
    assert_string_equal(rec.sqlstate, "00000");
    assert_string_equal(rec.message, "hello 42");
    assert_string_equal(rec.detail, "the detail");
    assert_string_equal(rec.hint, "the hint");
    assert_false(rec.warning);
    pthread_mutex_unlock(&rec.mu);
    conn_exec_ok(c, "DO $$BEGIN RAISE WARNING 'careful' USING ERRCODE = '01000'; END$$");
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.notices, 2);
    assert_string_equal(rec.severity, "WARNING");
    assert_string_equal(rec.sqlstate, "01000");
    assert_true(rec.warning);
    pthread_mutex_unlock(&rec.mu);
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    pthread_mutex_destroy(&rec.mu);
}

static void test_default_logger_prints_only_warnings(void **state)
{
    (void)state;
    agec_test_capture cap;
    agec_test_stderr_begin(&cap);

    agec_pool_config cfg;
    small_config(&cfg, agec_test_pg_conninfo(), 1);
    cfg.on_event = NULL; /* the default stderr logger */
    cfg.name = "notices";
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire(p, &c, &err);
    if (st == AGEC_OK) {
        conn_exec_ok(c, "DO $$BEGIN RAISE NOTICE 'quiet-notice'; RAISE INFO 'quiet-info'; END$$");
        conn_exec_ok(c, "DO $$BEGIN RAISE WARNING 'loud-warning'; END$$");
        agec_conn_release(c);
    }
    (void)agec_pool_close(p, 5000, NULL);
    char *text = agec_test_stderr_end(&cap);
    agec_test_must(st, &err, "acquire");
    fprintf(stderr, "stderr of the pool: <<%s>>\n", text);
    assert_null(strstr(text, "quiet-notice"));
    assert_null(strstr(text, "quiet-info"));
    assert_non_null(strstr(text, "loud-warning"));
    assert_non_null(strstr(text, "agec pool notices: notice WARNING"));
    free(text);
}

/* ---- statement names ---------------------------------------------------------- */

/* The name of the one prepared statement `SELECT $1::int` gets on a pool. */
static void stmt_name(agec_pool *p, char *out, size_t cap)
{
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    const char *vals[1] = { "7" };
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "SELECT $1::int", 1, vals, NULL, &r, &err), &err, "exec");
    agec_result_free(r);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.prepare = false;
    agec_test_must(
        agec_sql_exec(c, "SELECT name FROM pg_prepared_statements", 0, NULL, &o, &r, &err), &err,
        "pg_prepared_statements");
    assert_int_equal(agec_result_rows(r), 1);
    snprintf(out, cap, "%s", agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    agec_conn_release(c);
}

static void test_statement_names_per_pool_not_per_pid(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64], a[64], b[64], pid[32];
    pool_test_config(&cfg, "names", app, NULL);
    agec_pool *pa = pool_open_ok(&cfg);
    agec_pool *pb = pool_open_ok(&cfg);
    stmt_name(pa, a, sizeof a);
    stmt_name(pb, b, sizeof b);
    fprintf(stderr, "statement names: %s, %s\n", a, b);
    /* agec_<16 hex digits of the pool's nonce>_<n> */
    assert_int_equal(strncmp(a, "agec_", 5), 0);
    assert_int_equal(strspn(a + 5, "0123456789abcdef"), 16);
    assert_int_equal(a[21], '_');
    assert_int_equal(strspn(b + 5, "0123456789abcdef"), 16);
    /* Two pools of one process differ in the nonce, so two processes with
     * the same pid would too; the pid is not what names them. */
    assert_memory_not_equal(a, b, 22);
    snprintf(pid, sizeof pid, "_%d_", (int)getpid());
    assert_null(strstr(a, pid));
    assert_int_equal(agec_pool_close(pa, 5000, NULL), AGEC_OK);
    assert_int_equal(agec_pool_close(pb, 5000, NULL), AGEC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_application_name_is_a_fallback),
        cmocka_unit_test(test_refusal_53300_too_many_for_role),
        cmocka_unit_test(test_refusal_3D000_is_a_config_error),
        cmocka_unit_test(test_refusal_57P03_shutting_down),
        cmocka_unit_test(test_notices_reach_the_callback),
        cmocka_unit_test(test_default_logger_prints_only_warnings),
        cmocka_unit_test(test_statement_names_per_pool_not_per_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
