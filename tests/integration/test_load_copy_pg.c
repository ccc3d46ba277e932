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
#include "session/clock.h"

static agec_pool *pool;

static agec_conn *get(void)
{
    return agec_test_acquire(pool);
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
    agec_test_sql(c, "DROP TABLE IF EXISTS copy_t");
    agec_test_sql(c, "CREATE TABLE copy_t (n int NOT NULL, s text)");
    agec_test_sql(
        c, "CREATE OR REPLACE FUNCTION copy_die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.s = 'die' THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
           "PERFORM pg_sleep(5); END IF; RETURN NEW; END $$");
    agec_conn_release(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_sql(c, "DROP TABLE IF EXISTS copy_t");
    agec_test_sql(c, "DROP TABLE IF EXISTS copy_d");
    agec_test_sql(c, "DROP FUNCTION IF EXISTS copy_die()");
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
    agec_test_sql(c, "TRUNCATE copy_t");
    /* What the loader sends: backslash, newline, tab, quotes, 4-byte UTF-8. */
    static const char data[] = "1\tback\\\\slash\n2\tnew\\nline\\ttab\n3\t\"q\" \xf0\x9f\x98\x80\n";
    uint64_t n = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec__copy_in(c, "COPY copy_t (n, s) FROM STDIN", data, sizeof data - 1,
                                 AGEC__NEVER, &n, &err),
                   &err, "copy");
    assert_int_equal(n, 3);
    expect(c, "SELECT s FROM copy_t WHERE n = 1", "back\\slash");
    expect(c, "SELECT s FROM copy_t WHERE n = 2", "new\nline\ttab");
    expect(c, "SELECT s FROM copy_t WHERE n = 3", "\"q\" \xf0\x9f\x98\x80");
    /* Large: many 64 KB pieces. */
    agec_test_sql(c, "TRUNCATE copy_t");
    size_t len;
    char *big = rows(200000, 0, NULL, &len);
    agec_test_must(agec__copy_in(c, "COPY copy_t FROM STDIN", big, len, AGEC__NEVER, &n, &err),
                   &err, "big");
    free(big);
    assert_int_equal(n, 200000);
    expect(c, "SELECT count(*) FROM copy_t", "200000");
    /* Not a COPY: refused, connection fine. */
    assert_int_equal(agec__copy_in(c, "SELECT 1", "", 0, AGEC__NEVER, NULL, &err),
                     AGEC_ERR_INVALID_ARG);
    expect(c, "SELECT 1", "1");
    agec_conn_release(c);
}

static void test_copy_error_mid_stream(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_sql(c, "TRUNCATE copy_t");
    size_t len;
    /* Row 150000 of 200000 is not an int: the server fails mid-stream. */
    char *data = rows(200000, 150000, "x\tbad\n", &len);
    agec_error err = AGEC_ERROR_INIT;
    uint64_t n = 99;
    assert_int_equal(agec__copy_in(c, "COPY copy_t FROM STDIN", data, len, AGEC__NEVER, &n, &err),
                     AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "22P02");
    assert_int_equal(n, 0);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_IDLE);
    expect(c, "SELECT count(*) FROM copy_t", "0");
    /* In a transaction: the block is failed, ROLLBACK brings it back. */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    agec_test_sql(c, "INSERT INTO copy_t VALUES (1, 'before')");
    assert_int_equal(agec__copy_in(c, "COPY copy_t FROM STDIN", data, len, AGEC__NEVER, NULL, &err),
                     AGEC_ERR_SERVER);
    assert_int_equal(PQtransactionStatus(agec_conn_pgconn(c)), PQTRANS_INERROR);
    agec_test_must(agec_tx_rollback(c, &err), &err, "rollback");
    expect(c, "SELECT count(*) FROM copy_t", "0");
    /* A server error before any data (no such column). */
    assert_int_equal(
        agec__copy_in(c, "COPY copy_t (nope) FROM STDIN", data, len, AGEC__NEVER, NULL, &err),
        AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "42703");
    free(data);
    /* The same connection copies again, cleanly. */
    static const char ok[] = "7\tseven\n";
    agec_test_must(
        agec__copy_in(c, "COPY copy_t FROM STDIN", ok, sizeof ok - 1, AGEC__NEVER, &n, &err), &err,
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
    agec_test_sql(c, "DROP TABLE IF EXISTS copy_d");
    agec_test_sql(c, "CREATE TABLE copy_d (n int, s text)");
    agec_test_sql(c,
                  "CREATE TRIGGER copy_d_die BEFORE INSERT ON copy_d FOR EACH ROW EXECUTE FUNCTION "
                  "copy_die()");
    size_t len;
    /* Row 100000 makes its own server process terminate: FATAL mid-COPY. */
    char *data = rows(300000, 100000, "0\tdie\n", &len);
    agec_error err = AGEC_ERROR_INIT;
    uint64_t id = agec_conn_id(c);
    agec_status st = agec__copy_in(c, "COPY copy_d FROM STDIN", data, len, AGEC__NEVER, NULL, &err);
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

/* The stand-in for AGE's catalog in a database of its own: the other
 * tests need a database without AGE. */
static agec_pool *stub_pool(void)
{
    return agec_test_stub_age_pool(pool, "agec_stub_age");
}

/* Load n Doc vertices into graph stub_h from `source`, row `bad` (0-based)
 * too long for the stub's CHECK: the load must fail with 23514. Returns how
 * many vertex calls were made (n + 1 when finish reported it). */
static int load_with_bad_row(agec_conn *c, const agec_load_opts *o, const char *source, int n,
                             int bad, agec_error *err)
{
    agec_loader *ld;
    agec_error_clear(err);
    agec_test_must(agec_loader_open(c, "stub_h", o, &ld, err), err, "open");
    agec_loader_source(ld, source, 1);
    int calls = 0;
    for (int i = 0; i < n && err->code == AGEC_OK; i++, calls++) {
        char big[700];
        snprintf(big, sizeof big, "{\"n\": %d, \"pad\": \"%0*d\"}", i, i == bad ? 600 : 1, 0);
        (void)agec_loader_vertex(ld, "Doc", big, SIZE_MAX, err);
    }
    if (err->code == AGEC_OK && agec_loader_finish(ld, NULL, err) == AGEC_OK)
        fail_msg("finish succeeded with a bad row");
    assert_int_equal(err->code, AGEC_ERR_SERVER);
    assert_string_equal(err->sqlstate, "23514");
    agec_loader_free(ld);
    return calls;
}

static void test_loader_copy_path(void **state)
{
    (void)state;
    agec_pool *p = stub_pool();
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_loader *ld;
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.batch_rows = 7;
    o.timeout_ms = -1;
    agec_error bad = AGEC_ERROR_INIT;
    assert_int_equal(agec_loader_open(c, "stub_g", &o, &ld, &bad), AGEC_ERR_INVALID_ARG);
    /* Options not initialised by agec_load_opts_init: refused, not read. */
    agec_load_opts raw;
    memset(&raw, 0, sizeof raw);
    agec_error_clear(&bad);
    assert_int_equal(agec_loader_open(c, "stub_g", &raw, &ld, &bad), AGEC_ERR_INVALID_ARG);
    assert_non_null(strstr(bad.message, "agec_load_opts_init"));
    o.timeout_ms = 10000; /* every batch under a deadline: the path with the limit */
    agec_test_must(agec_loader_open(c, "stub_g", &o, &ld, &err), &err, "open");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    char b[256];
    for (int i = 0; i < 50; i++) {
        snprintf(b, sizeof b,
                 "{\"uid\": %d, \"s\": \"a\\\\b\\nc\\td \\\"q\\\" %d \xf0\x9f\x98\x80\"}", i, i);
        agec_test_must(agec_loader_vertex(ld, "Person", b, SIZE_MAX, &err), &err, "vertex");
    }
    for (int j = 0; j < 40; j++) {
        char ks[16], ke[16];
        snprintf(ks, sizeof ks, "%d", j);
        snprintf(ke, sizeof ke, "%d", (j * 7 + 3) % 50);
        agec_test_must(agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", ks),
                                        &AGEC_ENDPOINT_KEY("Person", ke), "{\"w\": 1}", SIZE_MAX,
                                        &err),
                       &err, "edge");
    }
    agec_load_stats st = { .size = sizeof st };
    agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    assert_int_equal(st.method, AGEC_LOAD_COPY); /* AUTO on PostgreSQL */
    /* COPY's escapes came through: backslash, newline, tab, quotes, UTF-8. */
    expect(c,
           "SELECT properties::jsonb ->> 's' FROM stub_g.\"Person\" WHERE "
           "(properties::jsonb ->> 'uid')::int = 7",
           "a\\b\nc\td \"q\" 7 \xf0\x9f\x98\x80");
    expect(c, "SELECT count(DISTINCT id) FILTER (WHERE id >> 48 = 3) FROM stub_g.\"Person\"", "50");
    /* Every edge joins the vertices its keys named. */
    expect(
        c,
        "SELECT count(*) FROM stub_g.\"KNOWS\" e JOIN stub_g.\"Person\" a ON a.id = e.start_id "
        "JOIN stub_g.\"Person\" b ON b.id = e.end_id WHERE ((b.properties::jsonb ->> 'uid')::int) "
        "= ((a.properties::jsonb ->> 'uid')::int * 7 + 3) % 50",
        "40");
    /* The sequence lies past every id: the next default id is new. */
    expect(c,
           "SELECT count(*) FROM stub_g.\"Person\" WHERE id >= (3::bigint << 48) | "
           "(SELECT last_value FROM stub_g.\"Person_id_seq\") + 1",
           "0");
    expect(c,
           "SELECT count(*) FROM pg_indexes WHERE schemaname = 'stub_g' AND indexdef LIKE "
           "'%agtype_access_operator%uid%'",
           "1");
    /* A row the server refuses mid-COPY (the stub's CHECK): the batch's lines named, nothing kept. */
    int calls = load_with_bad_row(c, &o, "big.jsonl", 10, 9, &err);
    assert_non_null(strstr(err.message, "big.jsonl lines 8-10 (label Doc, 3 rows)"));
    assert_int_equal(calls, 10); /* at finish */
    expect(c, "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = 'stub_h'", "0");
    /* The same in the first batch, with batches after it: a batch's outcome
     * is read while the next one is built, so a later call reports it, but
     * it names the batch that failed, and nothing of the load stays. */
    calls = load_with_bad_row(c, &o, "early.jsonl", 30, 1, &err);
    assert_non_null(strstr(err.message, "early.jsonl lines 1-7 (label Doc, 7 rows)"));
    assert_true(calls > 7 && calls < 30); /* reported while the load went on */
    expect(c, "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = 'stub_h'", "0");
    expect(c, "SELECT 1", "1");
    agec_conn_release(c);
    agec_pool_close(p, 1000, NULL);
    c = get();
    agec_test_sql(c, "DROP DATABASE agec_stub_age");
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_escapes_round_trip),
        cmocka_unit_test(test_copy_error_mid_stream),
        cmocka_unit_test(test_server_dies_mid_copy),
        cmocka_unit_test(test_loader_needs_age),
        cmocka_unit_test(test_loader_copy_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
