/*
 * AGE session init on the Apache AGE server: each new connection is ready
 * for Cypher before it is handed out (LOAD 'age', SET search_path, optional
 * CREATE EXTENSION). The PGlite server is one shared session: this test is
 * labelled `age` and serialised on it.
 */
#include "test_pool_util.h"

#include <string.h>

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

static void test_age_init_before_first_use(void **state)
{
    (void)state;
    agec_pool *p = age_pool(AGEC_AGE_LOAD, true);
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_OK);
    char v[256];
    conn_value(c, "SHOW search_path", v, sizeof v);
    assert_non_null(strstr(v, "ag_catalog"));
    conn_value(c, "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = '" GRAPH "'", v, sizeof v);
    if (strcmp(v, "0") != 0)
        conn_exec_ok(c, "SELECT ag_catalog.drop_graph('" GRAPH "', true)");
    conn_exec_ok(c, "SELECT ag_catalog.create_graph('" GRAPH "')");
    agec_conn_release(c);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);

    /* A fresh pool, a fresh connection: the first statement is Cypher. */
    p = age_pool(AGEC_AGE_LOAD, false);
    assert_int_equal(agec_pool_acquire(p, &c, &err), AGEC_OK);
    conn_value(
        c, "SELECT * FROM ag_catalog.cypher('" GRAPH "', $$RETURN 1$$) AS (a ag_catalog.agtype)", v,
        sizeof v);
    assert_string_equal(v, "1");
    conn_exec_ok(c, "SELECT ag_catalog.drop_graph('" GRAPH "', true)");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_init_before_first_use),
        cmocka_unit_test(test_age_preloaded_mode_sets_path_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
