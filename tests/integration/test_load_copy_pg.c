/*
 * The loader's COPY FROM STDIN code (src/load/copy.c) on PostgreSQL 15,
 * on plain tables (AGE is not installed there): data with every escape
 * round-trips; an error in the middle of the stream comes back with its
 * SQLSTATE, keeps nothing and leaves the connection clean; a server
 * process that dies in the middle of a COPY gives CONNECTION_LOST, the
 * connection is closed on release and the next one works; the loader
 * refuses to start on a database without AGE.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "load/copy.h"

static agec_pool *pool;

static agec_conn *get(void)
{
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    return c;
}

static void sql(agec_conn *c, const char *text)
{
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, text, 0, NULL, NULL, &r, &err), &err, text);
    agec_result_free(r);
}

static char *scalar(agec_conn *c, const char *text)
{
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, text, 0, NULL, NULL, &r, &err), &err, text);
    char *s = strdup(agec_result_text(r, 0, 0, NULL) ? agec_result_text(r, 0, 0, NULL) : "NULL");
    agec_result_free(r);
    return s;
}

static void expect(agec_conn *c, const char *text, const char *want)
{
    char *got = scalar(c, text);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", text, got, want);
    free(got);
}

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 2;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c = get();
    sql(c, "DROP TABLE IF EXISTS copy_t");
    sql(c, "CREATE TABLE copy_t (n int NOT NULL, s text)");
    sql(c, "CREATE OR REPLACE FUNCTION copy_die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.s = 'die' THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
           "PERFORM pg_sleep(5); END IF; RETURN NEW; END $$");
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c = get();
    sql(c, "DROP TABLE IF EXISTS copy_t");
    sql(c, "DROP TABLE IF EXISTS copy_d");
    sql(c, "DROP FUNCTION IF EXISTS copy_die()");
    agec_conn_release(c);
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

/* n rows "i\ttext i\n", with row `bad` (1-based; 0 = none) replaced. */
static char *rows(int n, int bad, const char *bad_row, size_t *len)
{
    size_t cap = (size_t)n * 40 + 64;
    char *b = malloc(cap);
    size_t k = 0;
    for (int i = 1; i <= n; i++)
        k += (size_t)(i == bad ? snprintf(b + k, cap - k, "%s", bad_row)
                               : snprintf(b + k, cap - k, "%d\trow %d\n", i, i));
    *len = k;
    return b;
}

static void test_copy_escapes_round_trip(void **state)
{
    (void)state;
    agec_conn *c = get();
    sql(c, "TRUNCATE copy_t");
    /* What the loader sends: backslash, newline, tab, quotes, 4-byte UTF-8. */
    static const char data[] = "1\tback\\\\slash\n2\tnew\\nline\\ttab\n3\t\"q\" \xf0\x9f\x98\x80\n";
    uint64_t n = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(
        agec__copy_in(c, "COPY copy_t (n, s) FROM STDIN", data, sizeof data - 1, &n, &err), &err,
        "copy");
    assert_int_equal(n, 3);
    expect(c, "SELECT s FROM copy_t WHERE n = 1", "back\\slash");
    expect(c, "SELECT s FROM copy_t WHERE n = 2", "new\nline\ttab");
    expect(c, "SELECT s FROM copy_t WHERE n = 3", "\"q\" \xf0\x9f\x98\x80");
    /* Large: many 64 KB pieces. */
    sql(c, "TRUNCATE copy_t");
    size_t len;
    char *big = rows(200000, 0, NULL, &len);
    agec_test_must(agec__copy_in(c, "COPY copy_t FROM STDIN", big, len, &n, &err), &err, "big");
    free(big);
    assert_int_equal(n, 200000);
    expect(c, "SELECT count(*) FROM copy_t", "200000");
    /* Not a COPY: refused, connection fine. */
    assert_int_equal(agec__copy_in(c, "SELECT 1", "", 0, NULL, &err), AGEC_ERR_INVALID_ARG);
    expect(c, "SELECT 1", "1");
    agec_conn_release(c);
}

static void test_copy_error_mid_stream(void **state)
{
    (void)state;
    agec_conn *c = get();
    sql(c, "TRUNCATE copy_t");
    size_t len;
    /* Row 150000 of 200000 is not an int: the server fails mid-stream. */
    char *data = rows(200000, 150000, "x\tbad\n", &len);
    agec_error err = AGEC_ERROR_INIT;
    uint64_t n = 99;
    assert_int_equal(agec__copy_in(c, "COPY copy_t FROM STDIN", data, len, &n, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_int_equal(n, 0);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
    expect(c, "SELECT count(*) FROM copy_t", "0");
    /* In a transaction: the block is failed, ROLLBACK brings it back. */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    sql(c, "INSERT INTO copy_t VALUES (1, 'before')");
    assert_int_equal(agec__copy_in(c, "COPY copy_t FROM STDIN", data, len, NULL, &err),
                     AGEC_ERR_SERVER);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_INERROR);
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    expect(c, "SELECT count(*) FROM copy_t", "0");
    /* A server error before any data (no such column). */
    assert_int_equal(agec__copy_in(c, "COPY copy_t (nope) FROM STDIN", data, len, NULL, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "42703");
    free(data);
    /* The same connection copies again, cleanly. */
    static const char ok[] = "7\tseven\n";
    agec_test_must(agec__copy_in(c, "COPY copy_t FROM STDIN", ok, sizeof ok - 1, &n, &err), &err,
                   "copy after errors");
    assert_int_equal(n, 1);
    uint64_t id = agec_conn_id(c);
    agec_conn_release(c);
    c = get();
    assert_int_equal(agec_conn_id(c), id); /* kept by the pool: it was clean */
    agec_conn_release(c);
}

static void test_server_dies_mid_copy(void **state)
{
    (void)state;
    agec_conn *c = get();
    sql(c, "DROP TABLE IF EXISTS copy_d");
    sql(c, "CREATE TABLE copy_d (n int, s text)");
    sql(c, "CREATE TRIGGER copy_d_die BEFORE INSERT ON copy_d FOR EACH ROW EXECUTE FUNCTION "
           "copy_die()");
    size_t len;
    /* Row 100000 makes its own server process terminate: FATAL mid-COPY. */
    char *data = rows(300000, 100000, "0\tdie\n", &len);
    agec_error err = AGEC_ERROR_INIT;
    uint64_t id = agec_conn_id(c);
    agec_status st = agec__copy_in(c, "COPY copy_d FROM STDIN", data, len, NULL, &err);
    free(data);
    assert_int_equal(st, AGEC_ERR_CONNECTION_LOST);
    assert_int_equal(PQstatus(agec_conn_pgconn(c)), CONNECTION_BAD);
    agec_conn_release(c); /* closed (broken) */
    c = get();
    assert_true(agec_conn_id(c) != id);
    expect(c, "SELECT count(*) FROM copy_d", "0");
    expect(c, "SELECT 41 + 1", "42");
    agec_conn_release(c);
}

static void test_loader_needs_age(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_loader *ld = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_loader_open(c, "no_age_here", NULL, &ld, &err);
    assert_int_equal(st, AGEC_ERR_AGE_MISSING);
    assert_null(ld);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_escapes_round_trip),
        cmocka_unit_test(test_copy_error_mid_stream),
        cmocka_unit_test(test_server_dies_mid_copy),
        cmocka_unit_test(test_loader_needs_age),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
