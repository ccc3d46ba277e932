/*
 * Issue 27: agec_pool_stats_prometheus's text goes through a real Prometheus
 * text parser (Debian's python3-prometheus-client, through
 * tests/unit/check-prometheus, which also checks grouping, TYPE lines and
 * histogram buckets), and carries OpenTelemetry's semantic-convention names
 * (db_client_connection_*) beside agec's own, with the values of the stats.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agec/agec.h"
#include "cluster/prom_merge.h"

/* The parser's normalised samples of text, one a line; fails the test when
 * the parser rejects the text. Caller frees. */
static char *parse(const char *text)
{
    char out[] = "/tmp/agec-prom.XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s >%s", AGEC_CHECK_PROMETHEUS, out);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int st = pclose(p);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *samples = calloc(1, 1 << 20);
    size_t n = fread(samples, 1, (1 << 20) - 1, f);
    samples[n] = '\0';
    fclose(f);
    unlink(out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the Prometheus parser rejected the exposition (status %d):\n%s", st, text);
    return samples;
}

static void expect_sample(const char *samples, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    char *all = malloc(strlen(samples) + 3);
    sprintf(all, "\n%s\n", samples);
    bool found = strstr(all, want) != NULL;
    free(all);
    if (!found)
        fail_msg("sample %s missing from:\n%s", line, samples);
}

static agec_pool_stats sample_stats(void)
{
    agec_pool_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.idle = 3;
    s.in_use = 5;
    s.opening = 1;
    s.total = 9;
    s.waiting = 7;
    s.max = 12;
    s.min = 2;
    s.acquires = 1000;
    s.releases = 995;
    s.acquire_timeouts = 4;
    s.wait_count = 100;
    s.wait_sum_us = 250000;
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++)
        s.wait_bucket[i] = (uint64_t)(10 + i * 5);
    return s;
}

static void test_exposition_parses_with_otel_names(void **state)
{
    (void)state;
    agec_pool_stats s = sample_stats();
    const char *name = "app \"main\" \\ pool";
    size_t need = agec_pool_stats_prometheus(&s, name, NULL, 0);
    char *text = malloc(need + 1);
    assert_int_equal(agec_pool_stats_prometheus(&s, name, text, need + 1), need);
    char *samples = parse(text);
    const char *pn = "db_client_connection_pool_name=\"app \\\"main\\\" \\\\ pool\"";
    char line[512];
    snprintf(line, sizeof line,
             "db_client_connection_count{%s,db_client_connection_state=\"idle\"} 3.0", pn);
    expect_sample(samples, line);
    snprintf(line, sizeof line,
             "db_client_connection_count{%s,db_client_connection_state=\"used\"} 5.0", pn);
    expect_sample(samples, line);
    static const struct {
        const char *name;
        const char *value;
    } ONE[] = {
        { "db_client_connection_idle_max", "12.0" },
        { "db_client_connection_idle_min", "2.0" },
        { "db_client_connection_max", "12.0" },
        { "db_client_connection_pending_requests", "7.0" },
        { "db_client_connection_timeouts_total", "4.0" },
        { "db_client_connection_wait_time_seconds_count", "100.0" },
        { "db_client_connection_wait_time_seconds_sum", "0.25" },
    };
    for (size_t i = 0; i < sizeof ONE / sizeof ONE[0]; i++) {
        snprintf(line, sizeof line, "%s{%s} %s", ONE[i].name, pn, ONE[i].value);
        expect_sample(samples, line);
    }
    snprintf(line, sizeof line,
             "db_client_connection_wait_time_seconds_bucket{%s,le=\"0.0001\"} 10.0", pn);
    expect_sample(samples, line);
    snprintf(line, sizeof line,
             "db_client_connection_wait_time_seconds_bucket{%s,le=\"+Inf\"} 100.0", pn);
    expect_sample(samples, line);
    /* agec's own names are still there, and parse too. */
    expect_sample(samples,
                  "agec_pool_connections{pool=\"app \\\"main\\\" \\\\ pool\",state=\"idle\"} 3.0");
    expect_sample(samples, "agec_pool_acquires_total{pool=\"app \\\"main\\\" \\\\ pool\"} 1000.0");
    free(samples);
    free(text);
}

/* Exit status of the checker on text (0: valid). */
static int check_status(const char *text)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", AGEC_CHECK_PROMETHEUS);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_checker_rejects_bad_text(void **state)
{
    (void)state;
    /* The checker itself fails on what Prometheus refuses (so a pass means
     * something): a family whose samples are split in two groups, and an
     * unterminated label value. */
    assert_int_not_equal(
        check_status("# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\nb 2\na{x=\"2\"} 3\n"), 0);
    assert_int_not_equal(check_status("# TYPE a gauge\na{x=\"1} 1\n"), 0);
    assert_int_equal(check_status("# TYPE a gauge\na{x=\"1\"} 1\n"), 0);
}

static void test_cluster_merge(void **state)
{
    (void)state;
    /* A cluster's text holds every node pool's metrics: concatenated, each
     * family would be declared once per node (what agec cluster --prometheus
     * wrote before; Prometheus refuses it); merged, once. */
    agec_pool_stats a = sample_stats(), b = sample_stats();
    b.idle = 11;
    b.acquire_timeouts = 9;
    char ta[16384], tb[16384], cat[32768];
    assert_true(agec_pool_stats_prometheus(&a, "c:db1:5432", ta, sizeof ta) < sizeof ta);
    assert_true(agec_pool_stats_prometheus(&b, "c:db2:5432", tb, sizeof tb) < sizeof tb);
    snprintf(cat, sizeof cat, "%s%s", ta, tb);
    assert_int_not_equal(check_status(cat), 0);
    const char *texts[] = { ta, tb };
    size_t len = 0;
    assert_true(agec__prom_merge(texts, 2, NULL, 0, &len));
    size_t headers = 0; /* the second text's HELP and TYPE lines are dropped */
    for (const char *p = tb; *p != '\0'; p = strchr(p, '\n') + 1)
        if (*p == '#')
            headers += (size_t)(strchr(p, '\n') + 1 - p);
    assert_int_equal(len, strlen(ta) + strlen(tb) - headers);
    char *merged = malloc(len + 1);
    size_t len2 = 0;
    assert_true(agec__prom_merge(texts, 2, merged, len + 1, &len2));
    assert_int_equal(len2, len);
    assert_int_equal(strlen(merged), len);
    char *samples = parse(merged);
    expect_sample(samples,
                  "db_client_connection_count{db_client_connection_pool_name=\"c:db1:5432\","
                  "db_client_connection_state=\"idle\"} 3.0");
    expect_sample(samples,
                  "db_client_connection_count{db_client_connection_pool_name=\"c:db2:5432\","
                  "db_client_connection_state=\"idle\"} 11.0");
    expect_sample(
        samples,
        "db_client_connection_timeouts_total{db_client_connection_pool_name=\"c:db2:5432\"} "
        "9.0");
    expect_sample(samples, "agec_pool_acquires_total{pool=\"c:db1:5432\"} 1000.0");
    /* Truncated like snprintf: NUL-terminated within cap, full length returned. */
    size_t len3 = 0;
    char small[100];
    assert_true(agec__prom_merge(texts, 2, small, sizeof small, &len3));
    assert_int_equal(len3, len);
    assert_int_equal(strlen(small), sizeof small - 1);
    free(samples);
    free(merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition_parses_with_otel_names),
        cmocka_unit_test(test_checker_rejects_bad_text),
        cmocka_unit_test(test_cluster_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
