/*
 * Hostile and malformed input to every public entry point: NULL pointers
 * (documented policy: every function returns AGEC_ERR_INVALID_ARG, or is a
 * no-op for release/free functions; nothing aborts), bad names, bad
 * configuration, hostile text from the server, and a million-row result
 * consumed row by row within a fixed memory bound.
 */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/agtype.h"
#include "agec/pool.h"

static agec_pool *pool;

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 2;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.acquire_timeout_ms = 5000;
    cfg.on_event = agec_pool_event_ignore;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return agec_pool_close(pool, 1000, NULL) == AGEC_OK ? 0 : -1;
}

static void test_null_arguments(void **state)
{
    (void)state;
    agec_error err = AGEC_ERROR_INIT;
    agec_pool *p = NULL;
    agec_conn *c = NULL;
    agec_result *r = NULL;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    assert_int_equal(agec_pool_open(NULL, &p, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_open(&cfg, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_acquire(NULL, &c, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_acquire(pool, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_close(NULL, 0, &err), AGEC_OK);
    agec_conn_release(NULL);
    agec_conn_release_broken(NULL);
    assert_null(agec_conn_pgconn(NULL));
    assert_null(agec_conn_pool(NULL));
    assert_int_equal(agec_conn_cancel(NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_pool_stats_get(NULL, NULL), AGEC_ERR_INVALID_ARG);
    char prom[16] = "x";
    assert_int_equal(agec_pool_stats_prometheus(NULL, "p", prom, sizeof prom), 0);
    assert_string_equal(prom, "");
    assert_int_equal(agec_pool_stats_prometheus(NULL, NULL, NULL, 0), 0);

    assert_int_equal(agec_cypher_exec(NULL, "abc", "RETURN 1", NULL, NULL, &r, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_null(r);
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    assert_int_equal(agec_cypher_exec(c, NULL, "RETURN 1", NULL, NULL, &r, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_cypher_exec(c, "abc", NULL, NULL, NULL, &r, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_cypher_exec(c, "abc", "RETURN 1", NULL, NULL, NULL, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_cypher_stream(c, "abc", "RETURN 1", NULL, NULL, NULL, NULL, &err),
                     AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_sql_exec(c, NULL, 0, NULL, NULL, &r, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_sql_exec(c, "SELECT $1", 1, NULL, NULL, &r, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_sql_exec(c, "SELECT 1", -1, NULL, NULL, &r, &err), AGEC_ERR_INVALID_ARG);
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = -5;
    assert_int_equal(agec_sql_exec(c, "SELECT 1", 0, NULL, &o, &r, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_tx_begin(NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_tx_savepoint(c, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_tx_run(NULL, NULL, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    bool exists;
    assert_int_equal(agec_graph_exists(c, "abc", NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_graph_exists(c, NULL, &exists, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_graph_list(c, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_label_list(c, "abc", NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_cypher_return_columns(NULL, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    /* The connection is unharmed. */
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "after NULLs");
    assert_int_equal(agec_result_rows(r), 1);
    /* Results: out of range and NULL. */
    const agec_value *v = (const agec_value *)1;
    assert_int_equal(agec_result_value(r, 5, 0, &v, &err), AGEC_ERR_RANGE);
    assert_int_equal(agec_result_value(r, 0, 9, &v, &err), AGEC_ERR_RANGE);
    assert_int_equal(agec_result_value(NULL, 0, 0, &v, &err), AGEC_ERR_INVALID_ARG);
    assert_null(agec_result_text(r, 0, 7, NULL));
    assert_null(agec_result_column_name(r, 3));
    assert_true(agec_result_is_null(r, 2, 0));
    assert_int_equal(agec_result_rows(NULL), 0);
    agec_result_free(r);
    agec_result_free(NULL);
    agec_conn_release(c);

    /* agtype API */
    agec_value *root = NULL;
    assert_int_equal(agec_agtype_parse(NULL, 3, 0, &root, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_agtype_parse("1", 1, 0, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_value_type(NULL), AGEC_TYPE_NULL);
    int64_t i;
    assert_int_not_equal(agec_value_get_int64(NULL, &i, &err), AGEC_OK);
    assert_null(agec_value_get(NULL, "a", 1));
    assert_null(agec_value_at(NULL, 0));
    agec_value_free(NULL);
    agec_builder_free(NULL);
    assert_int_equal(agec_builder_new(NULL, &err), AGEC_ERR_INVALID_ARG);
    agec_strings_free(NULL);
    agec_free(NULL);
    agec_error_clear(NULL);
}

static void test_bad_names_never_reach_the_server(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "ab",
        "x'y",
        "a$$b",
        "abc$tag$",
        "1graph",
        "g\"; DROP TABLE x; --",
        "graph\xe2\x80\x8bzw", /* zero-width space */
        "gr\xd0\xb0ph'",       /* Cyrillic a, then a quote */
        "\xef\xbc\x87quote",   /* fullwidth apostrophe */
        "abc\xff",
        "a0123456789012345678901234567890123456789012345678901234567890123",
    };
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        agec_result *r = NULL;
        assert_int_equal(agec_graph_create(c, bad[i], &err), AGEC_ERR_NAME);
        assert_int_equal(agec_graph_drop(c, bad[i], true, &err), AGEC_ERR_NAME);
        assert_int_equal(agec_cypher_exec(c, bad[i], "RETURN 1", NULL, NULL, &r, &err),
                         AGEC_ERR_NAME);
        assert_int_equal(agec_label_create(c, "good_graph", bad[i], AGEC_LABEL_VERTEX, &err),
                         strcmp(bad[i], "ab") == 0
                             ? AGEC_ERR_AGE_MISSING /* a fine label name; no AGE here */
                             : AGEC_ERR_NAME);
        assert_null(r);
    }
    agec_conn_release(c);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        int value;
    } cases[] = {
        { "max", 0 },
        { "max", -3 },
        { "min", -1 },
        { "min", 99 }, /* > max */
        { "connect_timeout_ms", 0 },
        { "connect_timeout_ms", -1 },
        { "acquire_timeout_ms", -2 },
        { "idle_timeout_ms", -1 },
        { "max_lifetime_ms", -1 },
        { "validation_timeout_ms", 0 },
        { "leak_threshold_ms", -1 },
        { "breaker_open_ms", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agec_pool_config cfg;
        agec_pool_config_init(&cfg);
        cfg.conninfo = agec_test_pg_conninfo();
        const char *f = cases[i].field;
        int v = cases[i].value;
        if (!strcmp(f, "max"))
            cfg.max = v;
        else if (!strcmp(f, "min"))
            cfg.min = v;
        else if (!strcmp(f, "connect_timeout_ms"))
            cfg.connect_timeout_ms = v;
        else if (!strcmp(f, "acquire_timeout_ms"))
            cfg.acquire_timeout_ms = v;
        else if (!strcmp(f, "idle_timeout_ms"))
            cfg.idle_timeout_ms = v;
        else if (!strcmp(f, "max_lifetime_ms"))
            cfg.max_lifetime_ms = v;
        else if (!strcmp(f, "validation_timeout_ms"))
            cfg.validation_timeout_ms = v;
        else if (!strcmp(f, "leak_threshold_ms"))
            cfg.leak_threshold_ms = v;
        else
            cfg.breaker_open_ms = v;
        agec_pool *p = (agec_pool *)1;
        agec_error err = AGEC_ERROR_INIT;
        assert_int_equal(agec_pool_open(&cfg, &p, &err), AGEC_ERR_CONFIG);
        assert_null(p);
        if (strncmp(err.message, f, strlen(f)) != 0)
            fail_msg("case %zu: message '%s' does not name %s", i, err.message, f);
    }
    /* A malformed conninfo is refused at open, and its password is not echoed. */
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = "host=127.0.0.1 password=hunter2secret 'unterminated";
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_open(&cfg, &p, &err), AGEC_ERR_CONFIG);
    assert_null(strstr(err.message, "hunter2secret"));
    cfg.conninfo = "postgresql://u:hunter2secret@127.0.0.1:1/x?bogus=1";
    assert_int_not_equal(agec_pool_open(&cfg, &p, &err), AGEC_OK);
    assert_null(strstr(err.message, "hunter2secret"));
    /* Uninitialised config (struct_size 0) is refused, not read. */
    agec_pool_config raw;
    memset(&raw, 0, sizeof raw);
    assert_int_equal(agec_pool_open(&raw, &p, &err), AGEC_ERR_CONFIG);
}

/* Text a hostile server could send, parsed through agec_result_value. */
static void test_hostile_server_text(void **state)
{
    (void)state;
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    static const struct {
        const char *sql;
        agec_status want;
    } cases[] = {
        { "SELECT repeat('[', 1000000)", AGEC_ERR_PARSE },                  /* deep, truncated */
        { "SELECT repeat('[', 1000000) || repeat(']', 1000000)", AGEC_OK }, /* deep, valid */
        { "SELECT '{\"a\": [1, 2'", AGEC_ERR_PARSE },                       /* truncated */
        { "SELECT '99999999999999999999999'", AGEC_ERR_RANGE },             /* past int64 */
        { "SELECT '1e999'", AGEC_ERR_RANGE },                               /* past double */
        { "SELECT '\"bad \\x escape\"'", AGEC_ERR_PARSE },
        { "SELECT '\"\\ud800 lone surrogate\"'", AGEC_ERR_PARSE },
        { "SELECT '{\"id\": 1}::vertex'", AGEC_ERR_PARSE }, /* missing fields */
        { "SELECT '[1, 2]::path'", AGEC_ERR_PARSE },
        { "SELECT '1 2'", AGEC_ERR_PARSE },
        { "SELECT repeat('9', 100000) || '::numeric'", AGEC_OK }, /* huge numeric */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agec_result *r = NULL;
        agec_test_must(agec_sql_exec(c, cases[i].sql, 0, NULL, NULL, &r, &err), &err, cases[i].sql);
        const agec_value *v = NULL;
        agec_status st = agec_result_value(r, 0, 0, &v, &err);
        if (st != cases[i].want)
            fail_msg("%s: got %s, want %s (%s)", cases[i].sql, agec_status_name(st),
                     agec_status_name(cases[i].want), err.message);
        if (st == AGEC_ERR_PARSE) {
            size_t len;
            agec_result_text(r, 0, 0, &len);
            assert_true(err.position >= 0 && (size_t)err.position <= len);
        }
        agec_result_free(r);
    }
    agec_conn_release(c);
}

/* Resident set size in kB from /proc/self/statm. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * 4;
}

typedef struct rows_ctx {
    long rows;
    long rss_at_100k;
    long rss_max;
} rows_ctx;

static bool count_row(agec_result *row, void *user)
{
    rows_ctx *c = user;
    c->rows++;
    const agec_value *v;
    if (agec_result_value(row, 0, 1, &v, NULL) != AGEC_OK || v == NULL)
        return false;
    if (c->rows == 100000)
        c->rss_at_100k = rss_kb();
    if (c->rows > 100000 && c->rows % 50000 == 0) {
        long r = rss_kb();
        if (r > c->rss_max)
            c->rss_max = r;
    }
    return true;
}

static void test_million_rows_in_bounded_memory(void **state)
{
    (void)state;
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    rows_ctx ctx = { 0, 0, 0 };
    agec_test_must(agec_sql_stream(c,
                                   "SELECT g, '{\"n\": ' || g || ', \"s\": \"row text\"}' FROM "
                                   "generate_series(1, 1000000) g",
                                   0, NULL, NULL, count_row, &ctx, &err),
                   &err, "stream");
    assert_int_equal(ctx.rows, 1000000);
    /* From row 100,000 to row 1,000,000 memory does not grow with the rows
     * (collecting them would take well over 100 MB). */
    long growth = ctx.rss_max - ctx.rss_at_100k;
    if (growth > 16 * 1024)
        fail_msg("RSS grew by %ld kB while streaming 900,000 rows", growth);
    agec_conn_release(c);
}

/* A failed statement must not leave the connection unusable. */
static void expect_connection_works(agec_conn *c)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    const char *vals[1] = { "caf\xc3\xa9" };
    agec_test_must(agec_sql_exec(c, "SELECT $1::text || '!', 6 * 7", 1, vals, NULL, &r, &err), &err,
                   "after invalid UTF-8");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "caf\xc3\xa9!");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "42");
    agec_result_free(r);
}

/* Parameter values and statement text that are not valid UTF-8 reach the
 * server and come back as a clean error (22021), prepared or not, inside a
 * transaction or not; the connection keeps working and is not closed. */
static void test_invalid_utf8_reaching_the_server(void **state)
{
    (void)state;
    static const char *const bad_values[] = {
        "abc\xff",             /* never valid */
        "\xc3",                /* truncated sequence */
        "\xed\xa0\x80",        /* a UTF-16 surrogate */
        "\xc0\xaf",            /* overlong '/' */
        "ok\xf4\x90\x80\x80!", /* past U+10FFFF */
    };
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    uint64_t id = agec_conn_id(c);
    agec_query_opts unprepared;
    agec_query_opts_init(&unprepared);
    unprepared.prepare = false;
    const agec_query_opts *opts[2] = { NULL, &unprepared };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        for (int o = 0; o < 2; o++) {
            const char *vals[2] = { "1", bad_values[i] };
            agec_result *r = NULL;
            err = (agec_error)AGEC_ERROR_INIT;
            agec_status st =
                agec_sql_exec(c, "SELECT $1::int, length($2::text)", 2, vals, opts[o], &r, &err);
            if (st != AGEC_ERR_SERVER && st != AGEC_ERR_INVALID_ARG)
                fail_msg("value %zu (%s): got %s [%s] %s", i, o ? "unprepared" : "prepared",
                         agec_status_name(st), err.sqlstate, err.message);
            if (st == AGEC_ERR_SERVER)
                assert_string_equal(err.sqlstate, "22021");
            assert_true(err.message[0] != '\0');
            assert_null(r);
            expect_connection_works(c);
        }
    }
    /* Inside a transaction the error fails it like any other. */
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    const char *vals[1] = { "x\xfe" };
    agec_result *r = NULL;
    assert_int_not_equal(agec_sql_exec(c, "SELECT $1::text", 1, vals, NULL, &r, &err), AGEC_OK);
    assert_null(r);
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_STATE);
    expect_connection_works(c);
    /* Invalid UTF-8 in the statement text itself. */
    agec_query_opts *text_opts[2] = { NULL, &unprepared };
    for (int o = 0; o < 2; o++) {
        err = (agec_error)AGEC_ERROR_INIT;
        agec_status st = agec_sql_exec(c, "SELECT 'abc\xff'", 0, NULL, text_opts[o], &r, &err);
        assert_true(st == AGEC_ERR_SERVER || st == AGEC_ERR_INVALID_ARG);
        if (st == AGEC_ERR_SERVER)
            assert_string_equal(err.sqlstate, "22021");
        assert_null(r);
        expect_connection_works(c);
    }
    agec_conn_release(c);
    /* Released as healthy: the same connection comes back, nothing closed. */
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire again");
    assert_int_equal(agec_conn_id(c), id);
    agec_conn_release(c);
    agec_pool_stats s;
    assert_int_equal(agec_pool_stats_get(pool, &s), AGEC_OK);
    for (int reason = 0; reason < AGEC_CLOSE_REASON_COUNT; reason++)
        assert_int_equal(s.closed[reason], 0);
}

static bool count_rows(agec_result *row, void *user)
{
    (void)row;
    (*(int *)user)++;
    return true;
}

static void expect_age_missing(agec_status st, const agec_error *err, const char *what)
{
    if (st != AGEC_ERR_AGE_MISSING)
        fail_msg("%s: got %s [%s] %s", what, agec_status_name(st), err->sqlstate, err->message);
    assert_int_equal(err->code, AGEC_ERR_AGE_MISSING);
    assert_true(err->message[0] != '\0');
    assert_non_null(strstr(err->hint, "CREATE EXTENSION age"));
}

/* Every Cypher and graph call on plain PostgreSQL (an AGEC_AGE_OFF pool, no
 * AGE installed) says AGE is missing, with a hint, and leaves the
 * connection usable, also inside a transaction (which it fails). */
static void test_cypher_on_plain_pg_is_age_missing(void **state)
{
    (void)state;
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    agec_result *r = NULL;
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_cypher_exec(c, "plain_pg", "RETURN 1", NULL, NULL, &r, &err), &err,
                       "cypher_exec");
    assert_null(r);
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_cypher_exec(c, "plain_pg", "RETURN $x", "{\"x\": 1}", NULL, &r, &err),
                       &err, "cypher_exec with params");
    int rows = 0;
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_cypher_stream(c, "plain_pg", "MATCH (n) RETURN n", NULL, NULL,
                                          count_rows, &rows, &err),
                       &err, "cypher_stream");
    assert_int_equal(rows, 0);
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_graph_create(c, "plain_pg", &err), &err, "graph_create");
    bool exists = true;
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_graph_exists(c, "plain_pg", &exists, &err), &err, "graph_exists");
    char **names = NULL;
    size_t n = 0;
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_graph_list(c, &names, &n, &err), &err, "graph_list");
    assert_null(names);
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_label_list(c, "plain_pg", &r, &err), &err, "label_list");
    agec_test_must(agec_tx_begin(c, NULL, &err), &err, "begin");
    err = (agec_error)AGEC_ERROR_INIT;
    expect_age_missing(agec_cypher_exec(c, "plain_pg", "RETURN 1", NULL, NULL, &r, &err), &err,
                       "cypher_exec in a transaction");
    assert_int_equal(agec_tx_commit(c, &err), AGEC_ERR_STATE);
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "after");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1");
    agec_result_free(r);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_bad_names_never_reach_the_server),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_hostile_server_text),
        cmocka_unit_test(test_million_rows_in_bounded_memory),
        cmocka_unit_test(test_invalid_utf8_reaching_the_server),
        cmocka_unit_test(test_cypher_on_plain_pg_is_age_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
