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

/* THREADS callers through a 4-connection mux on conninfo; its statistics. */
static agec_mux_stats run_callers(const char *conninfo)
{
    agec_pool *p = agec_test_plain_pool(conninfo, 5);
    agec_error err = AGEC_ERROR_INIT;
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 4;
    agec_mux *m = NULL;
    agec_test_must(agec_mux_open(p, &mc, &m, &err), &err, "mux open");
    pthread_t t[THREADS];
    agec_test_mux_caller w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (agec_test_mux_caller){
            .mux = m, .id = i + 1, .stmts = STMTS, .fail_every = 5, .timeout_ms = 20000
        };
        assert_int_equal(pthread_create(&t[i], NULL, agec_test_mux_caller_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].bad, 0);
        assert_int_equal(w[i].own_errors, agec_test_mux_failing(STMTS, 5));
        assert_int_equal(w[i].ok, STMTS - agec_test_mux_failing(STMTS, 5));
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
    char ci[512];
    fproxy *px = fproxy_start_for(agec_test_pg_conninfo(), ci, sizeof ci);
    assert_non_null(px);
    fproxy_set_latency(px, LATENCY_MS);
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
