/* Statistics snapshot and the Prometheus text format writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pool/pool_internal.h"

void agec__stats_fill_locked(agec_pool *p, agec_pool_stats *s, int64_t now)
{
    (void)now;
    memset(s, 0, sizeof *s);
    s->struct_size = sizeof *s;
    s->idle = p->idle.count;
    s->in_use = p->in_use.count;
    s->opening = p->opening.count;
    s->checking = p->checking.count;
    s->closing = p->closing_list.count;
    s->total = s->idle + s->in_use + s->opening + s->checking + s->closing;
    s->waiting = p->waiting;
    s->max = p->cfg.c.max;
    s->min = p->cfg.c.min;
    s->breaker = p->breaker.state;
    const pool_counters *n = &p->n;
    s->opened = n->opened;
    memcpy(s->closed, n->closed, sizeof s->closed);
    s->acquires = n->acquires;
    s->releases = n->releases;
    s->acquire_timeouts = n->acquire_timeouts;
    s->acquire_errors = n->acquire_errors;
    s->breaker_fast_fails = n->breaker_fast_fails;
    s->breaker_opens = p->breaker.opens;
    s->validations = n->validations;
    s->validation_failures = n->validation_failures;
    s->connect_failures = n->connect_failures;
    s->leaks_suspected = n->leaks_suspected;
    s->leaks_returned = n->leaks_returned;
    s->handoffs = n->handoffs;
    s->wakeups_deferred = n->wakeups_deferred;
    s->wakeups_deferred_late = n->wakeups_deferred_late;
    s->givebacks = n->givebacks;
    const agec__histogram *h = &p->wait_hist;
    s->wait_count = h->count;
    s->wait_sum_us = h->sum;
    s->wait_max_us = h->max;
    s->wait_p50_us = agec__hist_quantile(h, 0.50);
    s->wait_p90_us = agec__hist_quantile(h, 0.90);
    s->wait_p99_us = agec__hist_quantile(h, 0.99);
    agec__hist_cumulative(h->prom, s->wait_bucket);
    agec__hist_cumulative(p->use_hist.prom, s->use_bucket);
    s->use_count = p->use_hist.count;
    s->use_sum_us = p->use_hist.sum;
    agec__ahist_read(&p->create_hist, &s->create_count, &s->create_sum_us, s->create_bucket);
    agec__ahist_read(&p->op_hist, &s->op_count, &s->op_sum_us, s->op_bucket);
}

/* The fields every caller's agec_pool_stats has (the first layout). */
#define STATS_BASE_SIZE \
    (offsetof(agec_pool_stats, wait_bucket) + sizeof(((agec_pool_stats *)0)->wait_bucket))

agec_status agec_pool_stats_get_sized(agec_pool *pool, agec_pool_stats *out, size_t size)
{
    if (pool == NULL || out == NULL || size < STATS_BASE_SIZE)
        return AGEC_ERR_INVALID_ARG;
    /* A reference for the snapshot: a monitor racing close must not read
     * (or unlock) a pool that close frees meanwhile. */
    if (!agec__pool_enter(pool))
        return AGEC_ERR_POOL_CLOSED;
    agec_pool_stats full;
    pthread_mutex_lock(&pool->mu);
    agec__stats_fill_locked(pool, &full, 0);
    pthread_mutex_unlock(&pool->mu);
    agec__pool_leave(pool);
    size_t n = size < sizeof full ? size : sizeof full;
    full.struct_size = n;
    memcpy(out, &full, n);
    return AGEC_OK;
}

/* An appender that counts what it could not write (snprintf semantics). */
typedef struct out {
    char *buf;
    size_t cap, len;
    char label[256]; /* pool="name", escaped */
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void metric(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP agec_pool_%s %s\n# TYPE agec_pool_%s %s\n", name, help, name, type);
}

static void sample_u(out *o, const char *name, const char *extra, uint64_t v)
{
    put(o, "agec_pool_%s{%s%s} %llu\n", name, o->label, extra, (unsigned long long)v);
}

static void gauge(out *o, const char *name, const char *help, uint64_t v)
{
    metric(o, name, "gauge", help);
    sample_u(o, name, "", v);
}

static void counter(out *o, const char *name, const char *help, uint64_t v)
{
    metric(o, name, "counter", help);
    sample_u(o, name, "", v);
}

/* key="value" into dst[cap], the value escaped per the exposition format
 * (backslash, double quote and newline); cut short rather than overflow. */
static void label(char *dst, size_t cap, const char *key, const char *value)
{
    size_t k = (size_t)snprintf(dst, cap, "%s=\"", key);
    for (const char *c = value; *c != '\0' && k + 4 < cap; c++) {
        if (*c == '\\' || *c == '"')
            dst[k++] = '\\';
        if (*c == '\n') {
            dst[k++] = '\\';
            dst[k++] = 'n';
            continue;
        }
        dst[k++] = *c;
    }
    dst[k++] = '"';
    dst[k] = '\0';
}

/* A histogram of the fixed bounds as metric `name` (full name, seconds). */
static void histogram(out *o, const char *name, const char *lbl, const uint64_t *bucket,
                      uint64_t count, int64_t sum_us)
{
    const int64_t *bounds = agec_pool_wait_bucket_bounds_us();
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++)
        put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lbl, (double)bounds[i] / 1e6,
            (unsigned long long)bucket[i]);
    put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lbl, (unsigned long long)count);
    put(o, "%s_sum{%s} %.6f\n", name, lbl, (double)sum_us / 1e6);
    put(o, "%s_count{%s} %llu\n", name, lbl, (unsigned long long)count);
}

/* The acquire-wait histogram as metric `name`. */
static void wait_histogram(out *o, const char *name, const char *lbl, const agec_pool_stats *s)
{
    histogram(o, name, lbl, s->wait_bucket, s->wait_count, s->wait_sum_us);
}

/* One sample of a metric with a HELP and TYPE of its own (OpenTelemetry names). */
static void otel_one(out *o, const char *name, const char *type, const char *help, const char *lbl,
                     unsigned long long v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %llu\n", name, help, name, type, name, lbl, v);
}

/*
 * The same pool under OpenTelemetry's semantic conventions for database
 * client connection pools (db.client.connection.*), in Prometheus spelling:
 * dots become underscores, the unit is a suffix (_seconds), counters end in
 * _total; the attributes db.client.connection.pool.name and
 * db.client.connection.state become labels. The mapping from agec's own
 * names is in docs/metrics.md. db_client_operation_duration_seconds counts
 * the statements of agec's Cypher and SQL calls (the upper layer tells the
 * pool when one starts and ends), labelled with the pool's name only.
 */
static void otel(out *o, const agec_pool_stats *s, const char *pool_name)
{
    char lbl[300], st[360];
    label(lbl, sizeof lbl, "db_client_connection_pool_name", pool_name);
    put(o, "# HELP db_client_connection_count Connections by state: idle, or used (borrowed).\n"
           "# TYPE db_client_connection_count gauge\n");
    put(o, "db_client_connection_count{%s,db_client_connection_state=\"idle\"} %d\n", lbl, s->idle);
    snprintf(st, sizeof st, "%s,db_client_connection_state=\"used\"", lbl);
    put(o, "db_client_connection_count{%s} %d\n", st, s->in_use);
    otel_one(o, "db_client_connection_idle_max", "gauge",
             "Most idle connections allowed (agec: the pool's max).", lbl,
             (unsigned long long)s->max);
    otel_one(o, "db_client_connection_idle_min", "gauge",
             "Fewest idle connections kept (agec: the pool's min).", lbl,
             (unsigned long long)s->min);
    otel_one(o, "db_client_connection_max", "gauge", "Most open connections allowed.", lbl,
             (unsigned long long)s->max);
    otel_one(o, "db_client_connection_pending_requests", "gauge",
             "Requests waiting for a connection.", lbl, (unsigned long long)s->waiting);
    otel_one(o, "db_client_connection_timeouts_total", "counter",
             "Acquires that timed out waiting for a connection.", lbl,
             (unsigned long long)s->acquire_timeouts);
    put(o, "# HELP db_client_connection_wait_time_seconds Time to obtain a connection.\n"
           "# TYPE db_client_connection_wait_time_seconds histogram\n");
    wait_histogram(o, "db_client_connection_wait_time_seconds", lbl, s);
    put(o, "# HELP db_client_connection_create_time_seconds Time to create a connection.\n"
           "# TYPE db_client_connection_create_time_seconds histogram\n");
    histogram(o, "db_client_connection_create_time_seconds", lbl, s->create_bucket, s->create_count,
              s->create_sum_us);
    put(o, "# HELP db_client_connection_use_time_seconds Time between borrowing a connection "
           "and returning it.\n"
           "# TYPE db_client_connection_use_time_seconds histogram\n");
    histogram(o, "db_client_connection_use_time_seconds", lbl, s->use_bucket, s->use_count,
              s->use_sum_us);
    put(o, "# HELP db_client_operation_duration_seconds Duration of database client "
           "operations (statements through agec).\n"
           "# TYPE db_client_operation_duration_seconds histogram\n");
    histogram(o, "db_client_operation_duration_seconds", lbl, s->op_bucket, s->op_count,
              s->op_sum_us);
}

size_t agec_pool_stats_prometheus(const agec_pool_stats *s, const char *pool_name, char *buf,
                                  size_t cap)
{
    if (s == NULL) {
        if (buf != NULL && cap > 0)
            buf[0] = '\0';
        return 0;
    }
    out o = { .buf = buf, .cap = buf ? cap : 0, .len = 0 };
    const char *nm = pool_name ? pool_name : "agec";
    label(o.label, sizeof o.label, "pool", nm);
    if (o.cap > 0)
        o.buf[0] = '\0';

    /* Every state a slot can be in (checking and closing take slots too),
     * so that the states sum to connections_total. */
    metric(&o, "connections", "gauge", "Connections by state.");
    static const char *const states[] = { "idle", "in_use", "opening", "checking", "closing" };
    const int vals[] = { s->idle, s->in_use, s->opening, s->checking, s->closing };
    for (int i = 0; i < 5; i++) {
        char extra[40];
        snprintf(extra, sizeof extra, ",state=\"%s\"", states[i]);
        sample_u(&o, "connections", extra, (uint64_t)vals[i]);
    }
    gauge(&o, "connections_total", "Slots taken: connections in every state (<= max).",
          (uint64_t)s->total);
    gauge(&o, "connections_max", "Configured maximum connections.", (uint64_t)s->max);
    gauge(&o, "connections_min", "Configured minimum connections.", (uint64_t)s->min);
    gauge(&o, "waiting", "Acquires waiting for a connection.", (uint64_t)s->waiting);
    metric(&o, "breaker_state", "gauge", "Circuit breaker state (1 for the current one).");
    for (int i = AGEC_BREAKER_CLOSED; i <= AGEC_BREAKER_HALF_OPEN; i++) {
        char extra[40];
        snprintf(extra, sizeof extra, ",state=\"%s\"",
                 agec_breaker_state_name((agec_breaker_state)i));
        sample_u(&o, "breaker_state", extra, s->breaker == (agec_breaker_state)i);
    }
    counter(&o, "connections_opened_total", "Connections opened.", s->opened);
    metric(&o, "connections_closed_total", "counter", "Connections closed, by reason.");
    for (int i = 0; i < AGEC_CLOSE_REASON_COUNT; i++) {
        char extra[40];
        snprintf(extra, sizeof extra, ",reason=\"%s\"",
                 agec_close_reason_name((agec_close_reason)i));
        sample_u(&o, "connections_closed_total", extra, s->closed[i]);
    }
    counter(&o, "acquires_total", "Successful acquires.", s->acquires);
    counter(&o, "releases_total", "Releases.", s->releases);
    counter(&o, "acquire_timeouts_total", "Acquires that timed out.", s->acquire_timeouts);
    counter(&o, "acquire_errors_total", "Acquires that failed otherwise.", s->acquire_errors);
    counter(&o, "breaker_fast_fails_total", "Acquires failed fast by the open breaker.",
            s->breaker_fast_fails);
    counter(&o, "breaker_opens_total", "Times the breaker opened.", s->breaker_opens);
    counter(&o, "validations_total", "Checks before use.", s->validations);
    counter(&o, "validation_failures_total", "Failed checks before use.", s->validation_failures);
    counter(&o, "connect_failures_total", "Failed connection attempts.", s->connect_failures);
    counter(&o, "leaks_suspected_total", "Borrows held past leak_threshold_ms.",
            s->leaks_suspected);
    counter(&o, "handoffs_total", "Releases handed straight to a waiter past fair_wait_ms.",
            s->handoffs);
    counter(&o, "wakeups_deferred_total",
            "Releases with waiters that woke none (their thread was expected back).",
            s->wakeups_deferred);
    counter(&o, "wakeups_deferred_late_total",
            "Deferred wake-ups the tick had to end (the thread was not back in time).",
            s->wakeups_deferred_late);
    counter(&o, "givebacks_total",
            "Connections given back to the thread they were handed off from, after a starving "
            "phase.",
            s->givebacks);

    metric(&o, "acquire_wait_seconds", "histogram", "Time spent in successful acquires.");
    wait_histogram(&o, "agec_pool_acquire_wait_seconds", o.label, s);
    metric(&o, "acquire_wait_quantile_seconds", "gauge",
           "Acquire wait percentiles since open (p50, p90, p99, max).");
    const struct {
        const char *q;
        int64_t v;
    } qs[] = { { "0.5", s->wait_p50_us },
               { "0.9", s->wait_p90_us },
               { "0.99", s->wait_p99_us },
               { "1", s->wait_max_us } };
    for (int i = 0; i < 4; i++)
        put(&o, "agec_pool_acquire_wait_quantile_seconds{%s,quantile=\"%s\"} %.6f\n", o.label,
            qs[i].q, (double)qs[i].v / 1e6);
    otel(&o, s, nm);
    return o.len;
}
