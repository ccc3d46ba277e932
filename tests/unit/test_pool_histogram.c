/* Acquire-wait histogram (bucket layout, percentiles) and the Prometheus
 * text writer. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "pool/histogram.h"

static void test_bucket_layout(void **state)
{
    (void)state;
    /* Every value lands in a bucket whose upper bound is >= it and within 12.5%. */
    for (int64_t v = 0; v < 5000000; v = v < 100 ? v + 1 : v + v / 7) {
        int i = agec__hist_index(v);
        assert_true(i >= 0 && i < AGEC__HIST_BUCKETS);
        int64_t up = agec__hist_upper(i);
        assert_true(up >= v);
        assert_true((double)(up - v) <= 0.125 * (double)v + 1);
        if (i > 0)
            assert_true(agec__hist_upper(i - 1) < v);
    }
    assert_true(agec__hist_index(INT64_MAX) < AGEC__HIST_BUCKETS);
}

static void test_quantiles(void **state)
{
    (void)state;
    agec__histogram *h = calloc(1, sizeof *h);
    assert_int_equal(agec__hist_quantile(h, 0.5), 0);
    /* 1..1000 us */
    for (int64_t v = 1; v <= 1000; v++)
        agec__hist_record(h, v);
    int64_t p50 = agec__hist_quantile(h, 0.50);
    int64_t p90 = agec__hist_quantile(h, 0.90);
    int64_t p99 = agec__hist_quantile(h, 0.99);
    assert_true(p50 >= 500 && p50 <= 500 * 1.125);
    assert_true(p90 >= 900 && p90 <= 900 * 1.125);
    assert_true(p99 >= 990 && p99 <= 1000);
    assert_int_equal(agec__hist_quantile(h, 1.0), 1000);
    assert_int_equal(h->max, 1000);
    assert_int_equal(h->count, 1000);
    assert_int_equal(h->sum, 500500);
    /* one outlier moves max and p100, not p50 */
    agec__hist_record(h, 3000000);
    assert_int_equal(agec__hist_quantile(h, 1.0), 3000000);
    assert_true(agec__hist_quantile(h, 0.5) <= 600);
    free(h);
}

static void test_prometheus_format(void **state)
{
    (void)state;
    agec_pool_stats s;
    memset(&s, 0, sizeof s);
    s.total = 3;
    s.idle = 2;
    s.in_use = 1;
    s.max = 10;
    s.acquires = 7;
    s.closed[AGEC_CLOSE_LIFETIME] = 4;
    s.breaker = AGEC_BREAKER_OPEN;
    s.wait_count = 7;
    s.wait_sum_us = 1500;
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++)
        s.wait_bucket[i] = i < 2 ? 5 : 7;
    char buf[16384]; /* agec's names and OpenTelemetry's: about 8.5 KB */
    size_t n = agec_pool_stats_prometheus(&s, "a\"b", buf, sizeof buf);
    assert_true(n > 0 && n < sizeof buf);
    assert_int_equal(strlen(buf), n);
    assert_non_null(strstr(buf, "# TYPE agec_pool_acquires_total counter\n"));
    assert_non_null(strstr(buf, "agec_pool_acquires_total{pool=\"a\\\"b\"} 7\n"));
    assert_non_null(
        strstr(buf, "agec_pool_connections_closed_total{pool=\"a\\\"b\",reason=\"lifetime\"} 4\n"));
    assert_non_null(strstr(buf, "agec_pool_breaker_state{pool=\"a\\\"b\",state=\"open\"} 1\n"));
    assert_non_null(strstr(buf, "agec_pool_breaker_state{pool=\"a\\\"b\",state=\"closed\"} 0\n"));
    assert_non_null(
        strstr(buf, "agec_pool_acquire_wait_seconds_bucket{pool=\"a\\\"b\",le=\"0.0001\"} 5\n"));
    assert_non_null(
        strstr(buf, "agec_pool_acquire_wait_seconds_bucket{pool=\"a\\\"b\",le=\"+Inf\"} 7\n"));
    assert_non_null(strstr(buf, "agec_pool_acquire_wait_seconds_sum{pool=\"a\\\"b\"} 0.001500\n"));
    /* Every line is a comment or `name{labels} value`. */
    for (char *line = buf; *line != '\0';) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        if (line[0] != '#') {
            assert_true(strncmp(line, "agec_pool_", 10) == 0 ||
                        strncmp(line, "db_client_connection_", 21) == 0 ||
                        strncmp(line, "db_client_operation_", 20) == 0);
            char *brace = strchr(line, '}');
            assert_true(brace != NULL && brace < end && brace[1] == ' ');
        }
        line = end + 1;
    }
    /* snprintf semantics: short buffers are truncated but the length is exact. */
    char small[64];
    assert_int_equal(agec_pool_stats_prometheus(&s, "a\"b", small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(agec_pool_stats_prometheus(&s, "a\"b", NULL, 0), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_prometheus_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
