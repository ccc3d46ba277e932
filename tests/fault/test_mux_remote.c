/*
 * Issue 28: the mux with its server a network away, through the fault
 * proxy holding every chunk 2 ms each way (tests/fault/proxy.h). The mux
 * measures the round trip (agec_mux_stats.round_trip_us) and from 1 ms on
 * sends every new statement at once instead of with the next results'
 * flush: 16 caller threads on 4 connections still get each their own
 * result and their own error, deadlines included, and the estimate is the
 * proxy's round trip (over 2 ms), while a direct connection's is below the
 * 1 ms line.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/mux.h"
#include "proxy.h"
#include "testutil.h"

enum { THREADS = 16, STMTS = 40, LATENCY_MS = 2 };

typedef struct worker {
    agec_mux *mux;
    int id, ok, own_errors, bad;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < STMTS; i++) {
        char a[32];
        snprintf(a, sizeof a, "%d", w->id * 1000 + i);
        const char *vals[1] = { a };
        bool fails = i % 5 == 2;
        agec_query_opts o;
        agec_query_opts_init(&o);
        o.timeout_ms = 20000;
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st =
            agec_mux_sql(w->mux, fails ? "SELECT 1 / ($1::int * 0)" : "SELECT $1::int + 1", 1, vals,
                         &o, &r, &err);
        int64_t v = 0;
        if (fails && st == AGEC_ERR_SERVER && strcmp(err.sqlstate, "22012") == 0)
            w->own_errors++;
        else if (!fails && st == AGEC_OK && agec_result_get_int64(r, 0, 0, &v, NULL) == AGEC_OK &&
                 v == w->id * 1000 + i + 1)
            w->ok++;
        else
            w->bad++;
        agec_result_free(r);
    }
    return NULL;
}

/* THREADS callers through a 4-connection mux on conninfo; its statistics. */
static agec_mux_stats run_callers(const char *conninfo)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = 5;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "pool open");
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 4;
    agec_mux *m = NULL;
    agec_test_must(agec_mux_open(p, &mc, &m, &err), &err, "mux open");
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .mux = m, .id = i + 1 };
        assert_int_equal(pthread_create(&t[i], NULL, run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].bad, 0);
        assert_int_equal(w[i].own_errors, STMTS / 5);
        assert_int_equal(w[i].ok, STMTS - STMTS / 5);
    }
    agec_mux_stats s;
    agec_mux_stats_get(m, &s);
    agec_mux_close(m);
    agec_pool_close(p, 5000, NULL);
    assert_int_equal(s.completed, THREADS * STMTS);
    return s;
}

static void test_remote_server(void **state)
{
    (void)state;
    const char *pg = agec_test_pg_conninfo();
    const char *pp = strstr(pg, "port=");
    assert_non_null(pp);
    fproxy *px = fproxy_start(atoi(pp + 5));
    assert_non_null(px);
    fproxy_set_latency(px, LATENCY_MS);
    char ci[512];
    snprintf(ci, sizeof ci, "%s port=%d", pg, fproxy_port(px)); /* the last port= wins */
    agec_mux_stats s = run_callers(ci);
    printf("remote: round trip %lld us, %llu statements in %llu flushes\n",
           (long long)s.round_trip_us, (unsigned long long)s.submitted,
           (unsigned long long)s.batches);
    assert_true(s.round_trip_us >=
                LATENCY_MS * 1000); /* 2 ms each way; the proxy's clock is in ms */
    fproxy_stop(px);
}

static void test_direct_server(void **state)
{
    (void)state;
    agec_mux_stats s = run_callers(agec_test_pg_conninfo());
    printf("direct: round trip %lld us\n", (long long)s.round_trip_us);
    assert_true(s.round_trip_us >= 0);
    assert_true(s.round_trip_us < 1000); /* the least of 64 or more: loopback */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_server),
        cmocka_unit_test(test_direct_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
