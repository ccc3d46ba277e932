/*
 * AGE session init on the Apache AGE server: each new connection is ready
 * for Cypher before it is handed out (LOAD 'age', SET search_path, optional
 * CREATE EXTENSION). The PGlite server is one shared session: this test is
 * labelled `age` and serialised on it.
 */
#include "test_pool_util.h"

#include <string.h>

#include "session/clock.h"

#define GRAPH "agec_pool_age"

static agec_pool *age_pool(agec_age_mode mode, bool create_ext)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "age", app, NULL);
    cfg.conninfo = agec_test_age_conninfo();
    cfg.application_name = NULL; /* PGlite: one session, keep it simple */
    cfg.age_mode = mode;
    cfg.age_create_extension = create_ext;
    cfg.max = 1;
    cfg.acquire_timeout_ms = 10000;
    cfg.connect_timeout_ms = 10000;
    return pool_open_ok(&cfg);
}

/* Undo what earlier tests left in PGlite's one shared session, through a
 * pool that does no AGE init: afterwards only our own init can make
 * unqualified AGE names resolve. */
static void search_path_public(void)
{
    agec_pool *p = age_pool(AGEC_AGE_OFF, false);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire (AGE off)");
    conn_exec_ok(c, "SET search_path = public");
    char v[256];
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_string_equal(v, "public");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
}

static void expect_age_search_path(agec_conn *c)
{
    char v[256];
    conn_value(c, "SHOW search_path", v, sizeof v);
    if (strncmp(v, "ag_catalog", strlen("ag_catalog")) != 0)
        fail_msg("search_path of a fresh connection is '%s'", v);
}

static void test_age_init_before_first_use(void **state)
{
    (void)state;
    search_path_public();
    agec_pool *p = age_pool(AGEC_AGE_LOAD, true);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    expect_age_search_path(c);
    bool exists = true;
    agec_test_must(agec_graph_exists(c, GRAPH, &exists, &err), &err, "exists");
    if (exists)
        agec_test_must(agec_graph_drop(c, GRAPH, true, &err), &err, "drop stale");
    agec_test_must(agec_graph_create(c, GRAPH, &err), &err, "create");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);

    /* A fresh pool, a fresh connection, the shared session's path reset
     * again: the first statement is unqualified Cypher. */
    search_path_public();
    p = age_pool(AGEC_AGE_LOAD, false);
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire 2");
    char v[256];
    conn_value(c, "SELECT * FROM cypher('" GRAPH "', $$RETURN 1$$) AS (a agtype)", v, sizeof v);
    assert_string_equal(v, "1");
    expect_age_search_path(c);
    agec_test_must(agec_graph_drop(c, GRAPH, true, &err), &err, "drop");
    agec_test_must(agec_graph_exists(c, GRAPH, &exists, &err), &err, "exists after drop");
    assert_false(exists);
    agec_conn_release(c);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.opened, 1);
    assert_int_equal(s.connect_failures, 0);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
}

static void test_age_preloaded_mode_sets_path_only(void **state)
{
    (void)state;
    /* PRELOADED skips LOAD; the SET still makes unqualified AGE names work. */
    agec_pool *p = age_pool(AGEC_AGE_PRELOADED, false);
    agec_conn *c;
    assert_int_equal(agec_pool_acquire(p, &c, NULL), AGEC_OK);
    char v[256];
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_string_equal(v, "ag_catalog, \"$user\", public");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);
}

/* Closing a connection waits for the server to close its end (the slot is
 * free only then), bounded by connect_timeout_ms. The PGlite socket server
 * closes its end only after the client's: the pool's own handle on the
 * socket must not hold that back. It did: every close on PGlite waited out
 * the full bound (10 s here; 2 s, the default, for every CLI command). */
static void test_close_does_not_wait_out_its_bound(void **state)
{
    (void)state;
    agec_pool *p = age_pool(AGEC_AGE_LOAD, false);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    conn_exec_ok(c, "SELECT 1");
    agec_conn_release(c);
    int64_t t0 = agec__now_us();
    assert_int_equal(agec_pool_close(p, 30000, NULL), AGEC_OK);
    int64_t ms = (agec__now_us() - t0) / 1000;
    /* The bound is 10,000 ms (connect_timeout_ms); half of it is far more
     * than a close needs, and far less than waiting it out. */
    if (ms >= 5000)
        fail_msg("agec_pool_close took %lld ms: it waited out the 10,000 ms bound for the "
                 "server to close a socket we still held open",
                 (long long)ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_init_before_first_use),
        cmocka_unit_test(test_age_preloaded_mode_sets_path_only),
        cmocka_unit_test(test_close_does_not_wait_out_its_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
