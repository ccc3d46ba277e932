/*
 * agec_pool_stats as one JSON object, every field of the struct (include/
 * agec/pool.h) under its own name: `agec bench --format json` prints it as
 * "pool". FIELDS is kept next to the struct's order; the cli test
 * (test_bench_reports_every_pool_stat) reads the struct from the header and
 * fails when a field is missing here. Also a cluster node's statistics
 * (agec_cluster_node_stats), for `agec cluster` and `agec bench` with a
 * multi-host DSN.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"

typedef enum { F_INT, F_U64, F_I64 } field_type;

static const struct {
    const char *name;
    size_t offset;
    field_type type;
} FIELDS[] = {
#define INT_FIELD(f)                            \
    {                                           \
#f, offsetof(agec_pool_stats, f), F_INT \
    }
#define U64_FIELD(f)                            \
    {                                           \
#f, offsetof(agec_pool_stats, f), F_U64 \
    }
#define I64_FIELD(f)                            \
    {                                           \
#f, offsetof(agec_pool_stats, f), F_I64 \
    }
    INT_FIELD(total),
    INT_FIELD(idle),
    INT_FIELD(in_use),
    INT_FIELD(opening),
    INT_FIELD(checking),
    INT_FIELD(closing),
    INT_FIELD(waiting),
    INT_FIELD(max),
    INT_FIELD(min),
    U64_FIELD(opened),
    U64_FIELD(acquires),
    U64_FIELD(releases),
    U64_FIELD(acquire_timeouts),
    U64_FIELD(acquire_errors),
    U64_FIELD(breaker_fast_fails),
    U64_FIELD(breaker_opens),
    U64_FIELD(validations),
    U64_FIELD(validation_failures),
    U64_FIELD(connect_failures),
    U64_FIELD(leaks_suspected),
    U64_FIELD(leaks_returned),
    U64_FIELD(handoffs),
    U64_FIELD(wakeups_deferred),
    U64_FIELD(wakeups_deferred_late),
    U64_FIELD(givebacks),
    U64_FIELD(wait_count),
    I64_FIELD(wait_sum_us),
    I64_FIELD(wait_p50_us),
    I64_FIELD(wait_p90_us),
    I64_FIELD(wait_p99_us),
    I64_FIELD(wait_max_us),
    U64_FIELD(create_count),
    I64_FIELD(create_sum_us),
    U64_FIELD(use_count),
    I64_FIELD(use_sum_us),
    U64_FIELD(op_count),
    I64_FIELD(op_sum_us),
#undef INT_FIELD
#undef U64_FIELD
#undef I64_FIELD
};

void cli_pool_stats_json(const agec_pool_stats *s, FILE *out)
{
    const char *base = (const char *)s;
    fputc('{', out);
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        const void *p = base + FIELDS[i].offset;
        fprintf(out, "%s\"%s\": ", i ? ", " : "", FIELDS[i].name);
        if (FIELDS[i].type == F_INT)
            fprintf(out, "%d", *(const int *)p);
        else if (FIELDS[i].type == F_U64)
            fprintf(out, "%" PRIu64, *(const uint64_t *)p);
        else
            fprintf(out, "%" PRId64, *(const int64_t *)p);
    }
    /* The enum and the arrays, by name. */
    fprintf(out, ", \"breaker\": \"%s\", \"closed\": {", agec_breaker_state_name(s->breaker));
    for (int r = 0; r < AGEC_CLOSE_REASON_COUNT; r++)
        fprintf(out, "%s\"%s\": %" PRIu64, r ? ", " : "",
                agec_close_reason_name((agec_close_reason)r), s->closed[r]);
    fputs("}", out);
    /* The cumulative histograms, with the same bounds. */
    const struct {
        const char *name;
        const uint64_t *bucket;
    } hists[] = { { "wait_bucket", s->wait_bucket },
                  { "create_bucket", s->create_bucket },
                  { "use_bucket", s->use_bucket },
                  { "op_bucket", s->op_bucket } };
    const int64_t *bounds = agec_pool_wait_bucket_bounds_us();
    for (size_t h = 0; h < sizeof hists / sizeof hists[0]; h++) {
        fprintf(out, ", \"%s\": [", hists[h].name);
        for (int b = 0; b < AGEC_POOL_WAIT_BUCKETS; b++)
            fprintf(out, "%s{\"le_us\": %" PRId64 ", \"count\": %" PRIu64 "}", b ? ", " : "",
                    bounds[b], hists[h].bucket[b]);
        fputs("]", out);
    }
    fputs("}", out);
}

void cli_node_stats_json(const agec_cluster_node_stats *s, int index, bool primary, FILE *out)
{
    char lsn[24];
    /* host comes from the DSN: escape what JSON needs. */
    fprintf(out, "{\"node\": %d, \"host\": \"", index);
    for (const char *p = s->host; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fprintf(out,
            "\", \"port\": %d, \"role\": \"%s\", \"primary\": %s, \"in_rotation\": %s, "
            "\"lag_ms\": %" PRId64 ", \"lsn\": \"%s\", \"checked_ms_ago\": %" PRId64
            ", \"checks\": %" PRIu64 ", \"check_failures\": %" PRIu64 ", \"role_changes\": %" PRIu64
            ", \"acquires_write\": %" PRIu64 ", \"acquires_read\": %" PRIu64
            ", \"acquire_errors\": %" PRIu64 ", \"errors_reported\": %" PRIu64
            ", \"errors\": %" PRIu64 ", \"in_use\": %d, \"idle\": %d, \"total\": %d, "
            "\"waiting\": %d, \"breaker\": \"%s\", \"timeline\": %" PRIu32
            ", \"on_timeline\": %s, \"acquires_read_primary\": %" PRIu64
            ", \"recovery_errors\": %" PRIu64 "}",
            s->port, agec_node_role_name(s->role), primary ? "true" : "false",
            s->in_rotation ? "true" : "false", s->lag_ms, agec_lsn_format(s->lsn, lsn, sizeof lsn),
            s->checked_ms_ago, s->checks, s->check_failures, s->role_changes, s->acquires_write,
            s->acquires_read, s->acquire_errors, s->errors_reported,
            s->acquire_errors + s->check_failures, s->in_use, s->idle, s->total, s->waiting,
            agec_breaker_state_name(s->breaker), s->timeline, s->on_timeline ? "true" : "false",
            s->acquires_read_primary, s->recovery_errors);
}
