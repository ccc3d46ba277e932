/*
 * Issue 28: the multiplexer behind PgBouncer 1.18 in transaction mode
 * (default_pool_size = 2, scripts/pgbouncer-test-server). Every statement
 * is followed by its own Sync, so each is a transaction of its own, which
 * transaction pooling routes correctly even when pipelined: each caller
 * gets its own result and error. In named statement mode the mux's cached
 * prepared statements meet other server sessions (26000): the mux then
 * sends that statement again unnamed, and everything after it, by itself.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_pool_util.h"

#define STMTS 300

static agec_mux *mux_open(agec_pool *p)
{
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 3; /* more client connections than PgBouncer's 2 servers */
    agec_mux *m = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_open(p, &mc, &m, &err), &err, "mux open");
    return m;
}

enum { WORKERS = 8, MUXES = 3 };

/* One mux over its own pool on the PgBouncer conninfo in `var`, with
 * WORKERS threads; the muxes of a test run side by side, so that their
 * connections compete for PgBouncer's 2 server connections (the race
 * behind the lost answers needs a server released and handed on). */
typedef struct mux_run {
    const char *var;
    agec_stmt_mode mode;
    int index;
    agec_mux *m;
    agec_test_mux_caller w[WORKERS];
    agec_mux_stats s;
} mux_run;

/* (No cmocka assertion in here: it runs on a thread of its own.) */
static void *run_mux(void *arg)
{
    mux_run *r = arg;
    agec_mux *m = r->m;
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        /* ids unique over every mux: an answer handed to another client
         * of PgBouncer shows as a wrong value */
        r->w[i] = (agec_test_mux_caller){ .mux = m,
                                          .id = r->index * 100 + i + 1,
                                          .stmts = STMTS,
                                          .fail_every = 2,
                                          .timeout_ms = 15000 };
        if (pthread_create(&t[i], NULL, agec_test_mux_caller_run, &r->w[i]) != 0)
            abort();
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    agec_mux_stats_get(m, &r->s);
    return NULL;
}

/* MUXES muxes at once; every worker of each gets its own answers. */
static void run_muxes(const char *var, agec_stmt_mode mode, mux_run *r)
{
    pthread_t t[MUXES];
    agec_pool *p[MUXES];
    for (int k = 0; k < MUXES; k++) {
        p[k] = pgbouncer_pool(pgbouncer_conninfo(var), mode, 4, AGEC_AGE_OFF);
        r[k] = (mux_run){ .var = var, .mode = mode, .index = k, .m = mux_open(p[k]) };
    }
    for (int k = 0; k < MUXES; k++)
        assert_int_equal(pthread_create(&t[k], NULL, run_mux, &r[k]), 0);
    for (int k = 0; k < MUXES; k++) {
        pthread_join(t[k], NULL);
        agec_mux_close(r[k].m);
        agec_pool_close(p[k], 5000, NULL);
    }
    for (int k = 0; k < MUXES; k++) {
        for (int i = 0; i < WORKERS; i++) {
            const agec_test_mux_caller *w = &r[k].w[i];
            assert_int_equal(w->bad, 0);
            assert_int_equal(w->own_errors, STMTS / 2);
            assert_int_equal(w->ok, STMTS / 2);
        }
        assert_int_equal(r[k].s.completed, WORKERS * STMTS);
    }
}

static void test_unnamed_pipelined(void **state)
{
    (void)state;
    mux_run r[MUXES];
    run_muxes("AGEC_TEST_PGBOUNCER_PG", AGEC_STMT_UNNAMED, r);
    for (int k = 0; k < MUXES; k++)
        assert_true(r[k].s.pooler); /* one transaction in flight per connection */
}

static void test_named_falls_back(void **state)
{
    (void)state;
    mux_run r[MUXES];
    run_muxes("AGEC_TEST_PGBOUNCER_PGNAMED", AGEC_STMT_NAMED, r);
    /* The pooler was recognised: statements go unnamed from the start. */
    for (int k = 0; k < MUXES; k++) {
        assert_true(r[k].s.unnamed_fallback);
        assert_true(r[k].s.pooler);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unnamed_pipelined),
        cmocka_unit_test(test_named_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
