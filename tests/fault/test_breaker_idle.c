/*
 * While the circuit breaker is open, an acquire that would need a new
 * connection fails fast with AGEC_ERR_BREAKER_OPEN, but an idle, valid
 * connection is still handed out. Set up with the proxy: existing proxied
 * connections keep working while new ones are refused.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/pool.h"
#include "fault_load.h"
#include "proxy.h"

static void test_idle_connection_served_while_breaker_open(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, ""))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    fproxy *px = t.px;
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 3;
    cfg.connect_timeout_ms = 300;
    cfg.acquire_timeout_ms = 1500;
    cfg.validate_idle_ms = 0; /* always validate: the idle one must pass a real check */
    cfg.breaker_threshold = 2;
    cfg.breaker_open_ms = 5000;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");

    agec_conn *held = NULL, *c = NULL;
    agec_test_must(agec_pool_acquire(pool, &held, &err), &err, "first acquire");

    /* New connections are refused from now on; the held one keeps working. */
    fproxy_set_mode(px, FPROXY_REFUSE);
    agec_status st = agec_pool_acquire(pool, &c, &err);
    assert_int_equal(st, AGEC_ERR_UNREACHABLE); /* its own attempts opened the breaker */
    agec_pool_stats s;
    agec_test_must(agec_pool_stats_get(pool, &s), &err, "stats");
    assert_int_equal(s.breaker, AGEC_BREAKER_OPEN);

    /* Needs a new connection: fails at once. */
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(agec_pool_acquire(pool, &c, &err), AGEC_ERR_BREAKER_OPEN);
    assert_true(agec_test_now_ms() - t0 < 50);
    assert_null(c);

    /* The held connection goes back idle; it is handed out although the
     * breaker is still open, validated, and it works. */
    agec_conn_release(held);
    t0 = agec_test_now_ms();
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire the idle one");
    assert_true(agec_test_now_ms() - t0 < 500);
    agec_test_must(agec_pool_stats_get(pool, &s), &err, "stats");
    assert_int_equal(s.breaker, AGEC_BREAKER_OPEN);
    assert_true(s.validations >= 1);
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "query");
    assert_int_equal(agec_result_rows(r), 1);
    agec_result_free(r);
    agec_conn_release(c);

    assert_int_equal(agec_pool_close(pool, 1000, &err), AGEC_OK);
    fl_proxied_stop(&t);
}

static atomic_int g_connect_failed_events;

static void count_connect_failed(const agec_pool_event *ev, void *user)
{
    (void)user;
    if (ev->type == AGEC_EV_CONNECT_FAILED)
        atomic_fetch_add(&g_connect_failed_events, 1);
}

/* An acquire whose deadline is shorter than opening a connection (here: a
 * slow network) fails with a message that says so, but the cut-short
 * attempts are not connection failures: the breaker stays closed, no
 * connect-failed event is sent (it_libpq_conventions once saw such an
 * event, with no SQLSTATE, land after the real refusal it was looking for),
 * and a caller with a normal deadline gets a connection. */
static void test_short_deadline_does_not_open_breaker(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, "sslmode=disable"))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    fproxy *px = t.px;
    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 2;
    cfg.connect_timeout_ms = 5000;
    cfg.breaker_threshold = 2;
    cfg.on_event = count_connect_failed;
    atomic_store(&g_connect_failed_events, 0);
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    fproxy_set_latency(px, 40); /* a connect takes several round trips: > 150 ms */

    for (int i = 0; i < 4; i++) {
        agec_conn *c = NULL;
        int64_t t0 = agec_test_now_ms();
        assert_int_equal(agec_pool_acquire_timeout(pool, 30, &c, &err), AGEC_ERR_UNREACHABLE);
        assert_true(agec_test_now_ms() - t0 < 30 + 250);
        assert_null(c);
        assert_non_null(strstr(err.message, "was still being opened"));
    }
    agec_pool_stats s;
    agec_test_must(agec_pool_stats_get(pool, &s), &err, "stats");
    assert_int_equal(s.breaker, AGEC_BREAKER_CLOSED);
    assert_int_equal(s.connect_failures, 0);
    assert_int_equal(s.breaker_opens, 0);
    assert_int_equal(atomic_load(&g_connect_failed_events), 0);

    agec_conn *c = NULL;
    agec_test_must(agec_pool_acquire_timeout(pool, 5000, &c, &err), &err, "patient acquire");
    agec_conn_release(c);
    fproxy_set_latency(px, 0);
    assert_int_equal(agec_pool_close(pool, 1000, &err), AGEC_OK);
    fl_proxied_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_deadline_does_not_open_breaker),
        cmocka_unit_test(test_idle_connection_served_while_breaker_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
