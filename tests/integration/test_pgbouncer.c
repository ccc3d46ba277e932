/*
 * Behind a transaction-mode pooler (issue 11, section 1): PgBouncer with
 * pool_mode = transaction and default_pool_size = 2 (scripts/pgbouncer-test-server,
 * one of its own for this test), 8 agec threads.
 *  - unnamed statement mode: thousands of SQL statements with parameters,
 *    transactions and savepoints in front of PG15, and Cypher with
 *    parameters (graph and label helpers included) in front of the AGE
 *    server: zero errors;
 *  - named mode fails there with SQLSTATE 26000, driven deterministically:
 *    the statement is prepared on one server connection, another client
 *    holds that one in a transaction, and the next transaction lands on the
 *    other server connection;
 *  - the CLI's --statement-mode flag.
 */
#include "test_pool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8

/* Server connections PgBouncer holds for database `db` (admin console). */
static int bouncer_servers(const char *db)
{
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=pgbouncer", pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_PG"));
    PGconn *c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SHOW SERVERS");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int col = PQfnumber(r, "database"), n = 0;
    assert_true(col >= 0);
    for (int i = 0; i < PQntuples(r); i++)
        n += strcmp(PQgetvalue(r, i, col), db) == 0;
    PQclear(r);
    PQfinish(c);
    return n;
}

/* ---- SQL through PgBouncer in front of PG15 --------------------------------- */

/* One load thread (SQL or Cypher); counts its statements and errors. */
typedef struct worker {
    agec_pool *pool;
    int id;
    int iterations;
    int statements;
    int errors;
    char first_error[2200];
} worker;

/* Run `fn` on THREADS workers of `iterations` each; zero errors expected.
 * Returns the number of statements they ran. */
static int run_load(agec_pool *p, void *(*fn)(void *), int iterations, const char *what)
{
    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .pool = p, .id = i, .iterations = iterations };
        assert_int_equal(pthread_create(&t[i], NULL, fn, &w[i]), 0);
    }
    int statements = 0, errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        statements += w[i].statements;
        errors += w[i].errors;
        if (w[i].errors > 0)
            fprintf(stderr, "thread %d: %d errors, first: %s\n", i, w[i].errors, w[i].first_error);
    }
    fprintf(stderr, "%s: %d statements, %d errors\n", what, statements, errors);
    assert_int_equal(errors, 0);
    return statements;
}

static void note_error(worker *w, const char *what, const agec_error *err)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%s: %s [%s] %s", what,
                 agec_status_name(err->code), err->sqlstate, err->message);
}

/* One parameterised statement expecting `want` in the first cell. */
static void check_value(worker *w, agec_conn *c, const char *sql, const char *arg, const char *want)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    const char *vals[1] = { arg };
    w->statements++;
    agec_status st = agec_sql_exec(c, sql, 1, vals, NULL, &r, &err);
    if (st != AGEC_OK) {
        note_error(w, sql, &err);
        return;
    }
    const char *got = agec_result_rows(r) == 1 ? agec_result_text(r, 0, 0, NULL) : NULL;
    if (got == NULL || strcmp(got, want) != 0) {
        err.code = AGEC_ERR_SERVER;
        snprintf(err.message, sizeof err.message, "got %s, want %s", got ? got : "(none)", want);
        note_error(w, sql, &err);
    }
    agec_result_free(r);
}

static void step(worker *w, agec_status st, const char *what, const agec_error *err)
{
    w->statements++;
    if (st != AGEC_OK)
        note_error(w, what, err);
}

static void *sql_main(void *warg)
{
    worker *w = warg;
    for (int i = 0; i < w->iterations; i++) {
        agec_conn *c;
        agec_error err = AGEC_ERROR_INIT;
        if (agec_pool_acquire(w->pool, &c, &err) != AGEC_OK) {
            note_error(w, "acquire", &err);
            continue;
        }
        char arg[32], want[32];
        snprintf(arg, sizeof arg, "%d", i);
        snprintf(want, sizeof want, "%d", i + 1);
        check_value(w, c, "SELECT $1::int + 1", arg, want);
        if (i % 4 == 0) {
            /* A transaction with a savepoint rolled back and one released. */
            char key[32];
            snprintf(key, sizeof key, "%d", w->id * 100000 + i);
            const char *vals[2] = { key, "kept" };
            const char *gone[2] = { key, "undone" };
            agec_result *r = NULL;
            unsigned sp1 = 0, sp2 = 0;
            step(w, agec_tx_begin(c, NULL, &err), "begin", &err);
            step(w,
                 agec_sql_exec(c, "INSERT INTO agec_pgb_t (k, v) VALUES ($1::int, $2)", 2, vals,
                               NULL, &r, &err),
                 "insert", &err);
            agec_result_free(r);
            step(w, agec_tx_savepoint(c, &sp1, &err), "savepoint", &err);
            step(w,
                 agec_sql_exec(c, "INSERT INTO agec_pgb_t (k, v) VALUES ($1::int, $2)", 2, gone,
                               NULL, &r, &err),
                 "insert 2", &err);
            agec_result_free(r);
            step(w, agec_tx_rollback_to(c, sp1, &err), "rollback to", &err);
            step(w, agec_tx_savepoint(c, &sp2, &err), "savepoint 2", &err);
            check_value(w, c, "SELECT count(*) FROM agec_pgb_t WHERE k = $1::int", key, "1");
            step(w, agec_tx_release(c, sp2, &err), "release", &err);
            step(w, agec_tx_commit(c, &err), "commit", &err);
            check_value(w, c, "SELECT v FROM agec_pgb_t WHERE k = $1::int", key, "kept");
        }
        agec_conn_release(c);
    }
    return NULL;
}

/* A fresh table agec_pgb_t, a pool on the PgBouncer PG database, and
 * THREADS workers of `fn` for `iterations`: at least min_statements ran,
 * exactly want_kept rows say 'kept' and none 'undone' (every transaction
 * committed its kept row, rolled back the rest), and the load shared 2
 * server connections (the pooler was in between). Returns the pool. */
static agec_pool *load_on_fresh_table(PGconn *admin, void *(*fn)(void *), int iterations,
                                      const char *what, int min_statements, long want_kept)
{
    pg_int(admin, "DROP TABLE IF EXISTS agec_pgb_t");
    pg_int(admin, "CREATE TABLE agec_pgb_t (k int, v text)");
    agec_pool *p = pgbouncer_pool(pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_PG"), AGEC_STMT_UNNAMED,
                                  THREADS, AGEC_AGE_OFF);
    int statements = run_load(p, fn, iterations, what);
    assert_true(statements >= min_statements);
    assert_int_equal(pg_int(admin, "SELECT count(*) FROM agec_pgb_t WHERE v = 'kept'"), want_kept);
    assert_int_equal(pg_int(admin, "SELECT count(*) FROM agec_pgb_t WHERE v = 'undone'"), 0);
    assert_true(bouncer_servers("pg") <= 2);
    return p;
}

static void test_unnamed_sql_through_pgbouncer(void **state)
{
    (void)state;
    PGconn *admin = pg_admin();
    agec_pool *p = load_on_fresh_table(admin, sql_main, 150, "unnamed mode through PgBouncer", 4000,
                                       THREADS * ((150 + 3) / 4));
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    pg_int(admin, "DROP TABLE agec_pgb_t");
    PQfinish(admin);
}

/* ---- pipelined batches through PgBouncer (issue 28) ------------------------- */

/* Batches of 30 with a failing statement in the middle (a Sync each: it
 * fails alone), and all-or-nothing batches that fail (nothing inserted) or
 * succeed (all inserted). */
static void *batch_main(void *warg)
{
    worker *w = warg;
    for (int i = 0; i < w->iterations; i++) {
        agec_conn *c;
        agec_error err = AGEC_ERROR_INIT;
        if (agec_pool_acquire(w->pool, &c, &err) != AGEC_OK) {
            note_error(w, "acquire", &err);
            continue;
        }
        agec_batch *b = NULL;
        step(w, agec_batch_create(c, NULL, &b, &err), "batch create", &err);
        char args[30][16];
        for (int k = 0; b != NULL && k < 30; k++) {
            snprintf(args[k], sizeof args[k], "%d", i * 100 + k);
            const char *v[1] = { args[k] };
            agec_status st = k == 10
                                 ? agec_batch_add_sql(b, "SELECT 1/0", 0, NULL, NULL, &err)
                                 : agec_batch_add_sql(b, "SELECT $1::int + 1", 1, v, NULL, &err);
            if (st != AGEC_OK)
                note_error(w, "batch add", &err);
        }
        if (b != NULL && agec_batch_run(b, &err) != AGEC_ERR_SERVER)
            note_error(w, "batch run: expected the failure of statement 10", &err);
        for (int k = 0; b != NULL && k < 30; k++) {
            w->statements++;
            agec_status st = agec_batch_status(b, (size_t)k, &err);
            if (k == 10) {
                if (st != AGEC_ERR_SERVER || strcmp(err.sqlstate, "22012") != 0)
                    note_error(w, "batch statement 10", &err);
                continue;
            }
            char want[16];
            snprintf(want, sizeof want, "%d", i * 100 + k + 1);
            const char *got = st == AGEC_OK
                                  ? agec_result_text(agec_batch_result(b, (size_t)k), 0, 0, NULL)
                                  : NULL;
            if (got == NULL || strcmp(got, want) != 0)
                note_error(w, "batch statement", &err);
        }
        agec_batch_free(b);
        if (i % 4 == 0) {
            for (int fail = 0; fail < 2; fail++) {
                agec_batch_opts o;
                agec_batch_opts_init(&o);
                o.all_or_nothing = true;
                b = NULL;
                step(w, agec_batch_create(c, &o, &b, &err), "batch create", &err);
                for (int k = 0; b != NULL && k < 5; k++) {
                    char key[32];
                    snprintf(key, sizeof key, "%d", w->id * 100000 + i * 10 + k);
                    const char *v[2] = { key, fail ? "undone" : "kept" };
                    if (agec_batch_add_sql(b, "INSERT INTO agec_pgb_t (k, v) VALUES ($1::int, $2)",
                                           2, v, NULL, &err) != AGEC_OK)
                        note_error(w, "batch add", &err);
                    if (fail && k == 3 &&
                        agec_batch_add_sql(b, "SELECT 1/0", 0, NULL, NULL, &err) != AGEC_OK)
                        note_error(w, "batch add", &err);
                }
                w->statements += fail ? 6 : 5;
                agec_status st = b ? agec_batch_run(b, &err) : AGEC_ERR_NO_MEMORY;
                if (st != (fail ? AGEC_ERR_SERVER : AGEC_OK))
                    note_error(w, "all-or-nothing batch", &err);
                agec_batch_free(b);
            }
        }
        agec_conn_release(c);
    }
    return NULL;
}

typedef struct sleeper_kill {
    int killed;
} sleeper_kill;

static void *kill_sleeper(void *arg)
{
    sleeper_kill *k = arg;
    PGconn *admin = pg_admin();
    for (int i = 0; i < 2000 && k->killed == 0; i++) {
        k->killed = (int)pg_int(admin, "SELECT count(pg_terminate_backend(pid)) FROM "
                                       "pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(31)%' "
                                       "AND state = 'active'");
        if (k->killed == 0)
            nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    }
    PQfinish(admin);
    return NULL;
}

static void test_batches_through_pgbouncer(void **state)
{
    (void)state;
    PGconn *admin = pg_admin();
    agec_pool *p = load_on_fresh_table(admin, batch_main, 40, "pipelined batches through PgBouncer",
                                       THREADS * 40 * 30, THREADS * 10 * 5);

    /* The batch deadline through PgBouncer: the cancel goes through it. */
    agec_conn *c = agec_test_acquire(p);
    agec_batch_opts o;
    agec_batch_opts_init(&o);
    o.timeout_ms = 300;
    agec_batch *b = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_batch_create(c, &o, &b, &err), &err, "create");
    agec_test_must(agec_batch_add_sql(b, "SELECT 1", 0, NULL, NULL, &err), &err, "add");
    agec_test_must(agec_batch_add_sql(b, "SELECT pg_sleep(30)", 0, NULL, NULL, &err), &err, "add");
    agec_test_must(agec_batch_add_sql(b, "SELECT 2", 0, NULL, NULL, &err), &err, "add");
    assert_int_equal(agec_batch_run(b, &err), AGEC_ERR_TIMEOUT);
    assert_int_equal(agec_batch_status(b, 0, NULL), AGEC_OK);
    assert_int_equal(agec_batch_status(b, 1, NULL), AGEC_ERR_TIMEOUT);
    assert_int_not_equal(agec_batch_status(b, 2, NULL), AGEC_ERR_STATE); /* has an outcome */
    agec_batch_free(b);
    agec_conn_release(c);

    /* The server connection killed mid-pipeline: every statement gets an
     * outcome, nothing hangs, the pool goes on. */
    c = agec_test_acquire(p);
    agec_batch_opts_init(&o);
    agec_test_must(agec_batch_create(c, &o, &b, &err), &err, "create");
    agec_test_must(agec_batch_add_sql(b, "SELECT 1", 0, NULL, NULL, &err), &err, "add");
    agec_test_must(agec_batch_add_sql(b, "SELECT pg_sleep(31)", 0, NULL, NULL, &err), &err, "add");
    for (int i = 0; i < 3; i++)
        agec_test_must(agec_batch_add_sql(b, "SELECT 2", 0, NULL, NULL, &err), &err, "add");
    sleeper_kill k = { 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, kill_sleeper, &k), 0);
    assert_int_not_equal(agec_batch_run(b, &err), AGEC_OK);
    pthread_join(t, NULL);
    assert_int_equal(k.killed, 1);
    fprintf(stderr, "killed behind PgBouncer: %s [%s] %s\n", agec_status_name(err.code),
            err.sqlstate, err.message);
    assert_int_equal(agec_batch_status(b, 0, NULL), AGEC_OK);
    for (size_t i = 1; i < 5; i++) {
        agec_status st = agec_batch_status(b, i, NULL);
        assert_true(st != AGEC_OK && st != AGEC_ERR_STATE);
    }
    agec_batch_free(b);
    agec_conn_release(c);
    c = agec_test_acquire(p);
    char buf[16];
    conn_value(c, "SELECT 1 + 1", buf, sizeof buf);
    assert_string_equal(buf, "2");
    agec_conn_release(c);

    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
    pg_int(admin, "DROP TABLE agec_pgb_t");
    PQfinish(admin);
}

/* ---- named mode fails there: 26000 ------------------------------------------ */

/* Run `SELECT $1::int * 2` in a transaction on c; the status. */
static agec_status doubled_in_tx(agec_conn *c, agec_error *err)
{
    agec_status st = agec_tx_begin(c, NULL, err);
    if (st != AGEC_OK)
        return st;
    const char *vals[1] = { "21" };
    agec_result *r = NULL;
    st = agec_sql_exec(c, "SELECT $1::int * 2", 1, vals, NULL, &r, err);
    if (st == AGEC_OK)
        assert_string_equal(agec_result_text(r, 0, 0, NULL), "42");
    agec_result_free(r);
    if (st == AGEC_OK)
        return agec_tx_commit(c, err);
    (void)agec_tx_rollback(c, NULL);
    return st;
}

/* The scenario, on PgBouncer's `pgnamed` pool (2 server connections, used by
 * nothing else): prepare on server connection S1; another client takes S1
 * in a transaction; the next transaction gets S2, where the statement does
 * not exist. Returns the status of that second transaction. */
static agec_status alternate_servers(agec_stmt_mode mode, agec_error *err)
{
    const char *dsn = pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_PGNAMED");
    agec_pool *p = pgbouncer_pool(dsn, mode, 1, AGEC_AGE_OFF);
    agec_conn *c;
    agec_test_must(agec_pool_acquire(p, &c, err), err, "acquire");
    agec_test_must(doubled_in_tx(c, err), err, "first transaction (prepares on S1)");
    /* S1 is idle in PgBouncer now: the holder's transaction gets it. */
    PGconn *holder = PQconnectdb(dsn);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    PGresult *res = PQexec(holder, "BEGIN");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    res = PQexec(holder, "SELECT 1");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    agec_status st = doubled_in_tx(c, err); /* on S2 */
    res = PQexec(holder, "COMMIT");
    PQclear(res);
    PQfinish(holder);
    agec_conn_release(c);
    (void)agec_pool_close(p, 5000, NULL);
    return st;
}

static void test_named_mode_fails_26000(void **state)
{
    (void)state;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = alternate_servers(AGEC_STMT_NAMED, &err);
    fprintf(stderr, "named mode, second server connection: %s [%s] %s\n", agec_status_name(st),
            err.sqlstate, err.message);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "26000");
    /* The same moves in unnamed mode: nothing depends on the server connection. */
    agec_error_clear(&err);
    agec_test_must(alternate_servers(AGEC_STMT_UNNAMED, &err), &err, "unnamed mode");
}

/* ---- Cypher through PgBouncer in front of the AGE server ------------------- */

#define GRAPH "agec_pgbouncer"

static void *cypher_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->iterations; i++) {
        agec_conn *c = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_pool_acquire(w->pool, &c, &err);
        agec_result *r = NULL;
        char params[64];
        snprintf(params, sizeof params, "{\"w\": %d, \"i\": %d}", w->id, i);
        /* In a transaction: the PGlite server shares one session between
         * its clients and may interleave extended-protocol messages of
         * clients outside transactions (docs/development.md, Tests). */
        if (st == AGEC_OK)
            st = agec_tx_begin(c, NULL, &err);
        if (st == AGEC_OK) {
            w->statements++;
            st = agec_cypher_exec(c, GRAPH, "CREATE (n:Item {w: $w, i: $i}) RETURN n.i", params,
                                  NULL, &r, &err);
            agec_result_free(r);
            r = NULL;
        }
        if (st == AGEC_OK) {
            w->statements++;
            st = agec_cypher_exec(c, GRAPH,
                                  "MATCH (n:Item) WHERE n.w = $w AND n.i = $i RETURN count(n) AS k",
                                  params, NULL, &r, &err);
            if (st == AGEC_OK &&
                (agec_result_rows(r) != 1 || strcmp(agec_result_text(r, 0, 0, NULL), "1") != 0)) {
                st = AGEC_ERR_SERVER;
                snprintf(err.message, sizeof err.message, "MATCH found %s",
                         agec_result_rows(r) ? agec_result_text(r, 0, 0, NULL) : "no row");
            }
            agec_result_free(r);
        }
        if (st == AGEC_OK)
            st = agec_tx_commit(c, &err);
        if (st != AGEC_OK && w->errors++ == 0)
            snprintf(w->first_error, sizeof w->first_error, "%s [%s] %s", agec_status_name(st),
                     err.sqlstate, err.message);
        agec_conn_release(c); /* NULL when the acquire failed; rolls back a failed tx */
    }
    return NULL;
}

static void test_unnamed_cypher_through_pgbouncer(void **state)
{
    (void)state;
    /* The recipe: AGE preloaded (PGlite loads it), search_path set by the
     * init, unnamed statements. */
    agec_pool *p = pgbouncer_pool(pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_AGE"), AGEC_STMT_UNNAMED,
                                  THREADS, AGEC_AGE_PRELOADED);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_test_graph_fresh(c, GRAPH);
    agec_test_must(agec_label_create(c, GRAPH, "Item", AGEC_LABEL_VERTEX, &err), &err,
                   "label create");
    agec_result *labels = NULL;
    agec_test_must(agec_label_list(c, GRAPH, &labels, &err), &err, "label list");
    assert_true(agec_result_rows(labels) >= 1);
    agec_result_free(labels);
    agec_conn_release(c);

    int statements = run_load(p, cypher_main, 40, "Cypher through PgBouncer (unnamed)");
    assert_int_equal(statements, THREADS * 40 * 2);

    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_result *r = NULL;
    agec_test_must(
        agec_cypher_exec(c, GRAPH, "MATCH (n:Item) RETURN count(n) AS n", NULL, NULL, &r, &err),
        &err, "count");
    char want[16];
    snprintf(want, sizeof want, "%d", THREADS * 40);
    assert_string_equal(agec_result_text(r, 0, 0, NULL), want);
    agec_result_free(r);
    agec_test_must(agec_graph_drop(c, GRAPH, true, &err), &err, "graph drop");
    agec_conn_release(c);
    (void)agec_pool_close(p, 5000, NULL);
}

/* ---- the CLI's flag ---------------------------------------------------------- */

/* Run the CLI with args; exit status, stdout into out[cap]. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(AGEC_CLI_PATH, (char *const *)args);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli_statement_mode(void **state)
{
    (void)state;
    const char *dsn = pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_PG");
    char out[4096];
    const char *ok[] = { AGEC_CLI_PATH,
                         "--dsn",
                         dsn,
                         "--age-mode",
                         "off",
                         "--format",
                         "csv",
                         "--statement-mode",
                         "unnamed",
                         "sql",
                         "SELECT $1::int * 3 AS v",
                         "14",
                         NULL };
    assert_int_equal(run_cli(ok, out, sizeof out), 0);
    assert_non_null(strstr(out, "42"));
    const char *bad[] = { AGEC_CLI_PATH, "--statement-mode", "sometimes", "sql", "SELECT 1", NULL };
    assert_int_equal(run_cli(bad, out, sizeof out), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_mode_fails_26000),
        cmocka_unit_test(test_unnamed_sql_through_pgbouncer),
        cmocka_unit_test(test_unnamed_cypher_through_pgbouncer),
        cmocka_unit_test(test_batches_through_pgbouncer),
        cmocka_unit_test(test_cli_statement_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
