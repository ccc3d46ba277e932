/*
 * agec bench: N threads run one statement through one pool for a duration
 * or a count; throughput, latency percentiles, acquire wait, errors by
 * code/SQLSTATE, and the pool's statistics (with --format json: all of
 * agec_pool_stats, see stats_json.c); with a multi-host DSN (cluster mode)
 * "pool" is the primary's pool and every node's statistics follow (role,
 * lag, in use, errors, ...: agec_cluster_node_stats). Errors are counted, not fatal:
 * a server restart during a bench is reported, not a crash.
 *
 * Readers (--read-sql/--read-cypher with --read-threads) run a second
 * statement beside the first on connections acquired for reading (a
 * standby in cluster mode). --unique-key binds a key unique to each call of
 * the first statement; --record writes one JSON line per call (bench_record.c):
 * what an outside check of a failover needs. SIGINT and SIGTERM end the run
 * early with the summary of what ran.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_record.h"
#include "cli.h"

#define MAX_ERROR_KINDS 16

typedef struct err_kind {
    agec_status code;
    char sqlstate[6];
    char example[160];
    uint64_t count;
} err_kind;

typedef struct bench_thread {
    struct bench *b;
    pthread_t tid;
    int index;
    bool reader;  /* runs the read statement on read connections */
    uint64_t seq; /* calls made: the unique key's last part */
    uint64_t failed;
    double *lat_ms; /* latencies of successful operations */
    size_t n, cap;
    err_kind errors[MAX_ERROR_KINDS];
    size_t nerrors;
    uint64_t other_errors;
} bench_thread;

typedef struct bench {
    cli *c;
    const char *cypher, *sql;           /* the statement of the writers */
    const char *read_cypher, *read_sql; /* the readers' statement, if any */
    char *params;
    int pipeline;          /* statements per batch; 1 = one at a time */
    bool unique_key;       /* bind a unique key to each call of cypher/sql */
    bench_record rec;      /* --record FILE */
    double deadline_ms;    /* 0 = by count */
    atomic_long remaining; /* by count */
    atomic_long done, failed;
    atomic_int stop;
} bench;

/* Count one error of a kind in kinds[0..*n) (at most MAX_ERROR_KINDS
 * kinds; beyond that into *other). */
static void add_error(err_kind *kinds, size_t *n, uint64_t *other, agec_status st,
                      const char *sqlstate, const char *message, uint64_t count)
{
    for (size_t i = 0; i < *n; i++)
        if (kinds[i].code == st && strcmp(kinds[i].sqlstate, sqlstate) == 0) {
            kinds[i].count += count;
            return;
        }
    if (*n == MAX_ERROR_KINDS) {
        *other += count;
        return;
    }
    err_kind *k = &kinds[(*n)++];
    k->code = st;
    snprintf(k->sqlstate, sizeof k->sqlstate, "%.5s", sqlstate);
    snprintf(k->example, sizeof k->example, "%.159s", message);
    k->count = count;
}

static void record_error(bench_thread *t, agec_status st, const agec_error *err)
{
    add_error(t->errors, &t->nerrors, &t->other_errors, st, err->sqlstate, err->message, 1);
}

/* SIGINT/SIGTERM: end the run early (the summary covers what ran). A
 * lock-free atomic: set in the handler, read by every thread. */
static atomic_int interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&interrupted, 1);
    errno = saved;
}

static bool take_one(bench *b)
{
    if (atomic_load(&b->stop) || atomic_load(&interrupted))
        return false;
    if (b->deadline_ms > 0)
        return cli_now_ms() < b->deadline_ms;
    return atomic_fetch_sub(&b->remaining, 1) > 0;
}

static agec_status acquire(bench_thread *t, agec_conn **conn, agec_error *err)
{
    cli *c = t->b->c;
    if (c->cluster != NULL && t->reader)
        return agec_cluster_acquire_at(c->cluster, AGEC_ACCESS_READ, 0, -1, conn, err, __FILE__,
                                       __LINE__, __func__);
    return cli_acquire_st(c, conn, err);
}

/* The Cypher parameters of one call: b->params with "key" added. */
static char *params_with_key(const char *params, const char *key, char *buf, size_t cap)
{
    const char *rest = params != NULL ? strchr(params, '{') : NULL;
    rest = rest != NULL ? rest + 1 : "}";
    while (*rest == ' ' || *rest == '\n' || *rest == '\t')
        rest++;
    int n = snprintf(buf, cap, "{\"key\": \"%s\"%s%s", key, *rest == '}' ? "" : ", ", rest);
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

/* One call: acquire, the statement, release; recorded with --record. */
static agec_status one_call(bench_thread *t, double *lat_ms, agec_error *err)
{
    bench *b = t->b;
    cli *c = b->c;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms;
    const char *cypher = t->reader ? b->read_cypher : b->cypher;
    const char *sql = t->reader ? b->read_sql : b->sql;
    const char *params = b->params;
    char key[64], pbuf[4096];
    bench_call call = {
        .reader = t->reader, .thread = t->index, .sqlstate = "", .timeline = -1, .in_recovery = -1
    };
    if (b->unique_key && !t->reader) {
        snprintf(key, sizeof key, "%ld-%d-%llu", (long)getpid(), t->index,
                 (unsigned long long)++t->seq);
        call.key = key;
        if (cypher != NULL &&
            (params = params_with_key(b->params, key, pbuf, sizeof pbuf)) == NULL) {
            snprintf(err->message, sizeof err->message, "--params too long with the key");
            return AGEC_ERR_INVALID_ARG;
        }
    }
    const char *const args[1] = { key };
    call.start = bench_record_epoch_ms();
    double t0 = cli_now_ms();
    agec_conn *conn = NULL;
    agec_status st = acquire(t, &conn, err);
    call.acquire_ms = cli_now_ms() - t0;
    if (st == AGEC_OK) {
        agec_result *res = NULL;
        st = cypher ? agec_cypher_exec(conn, c->graph, cypher, params, &o, &res, err)
                    : agec_sql_exec(conn, sql, call.key != NULL ? 1 : 0, call.key ? args : NULL, &o,
                                    &res, err);
        agec_result_free(res);
        call.ms = cli_now_ms() - t0;
        if (st != AGEC_OK && c->cluster != NULL)
            agec_cluster_report(c->cluster, conn, err); /* a failover is noticed at once */
        if (b->rec.f != NULL && st != AGEC_ERR_CONNECTION_LOST)
            bench_record_node(conn, &call,
                              c->statement_timeout_ms > 0 ? c->statement_timeout_ms : 10000);
        double r0 = cli_now_ms();
        agec_conn_release(conn);
        call.release_ms = cli_now_ms() - r0;
    } else {
        call.ms = call.acquire_ms;
    }
    *lat_ms = call.ms + call.release_ms; /* without the recording's round trip */
    call.st = st;
    call.sqlstate = err->sqlstate;
    bench_record_write(&b->rec, &call);
    return st;
}

/* One successful statement and its latency; false when out of memory. */
static bool record_ok(bench_thread *t, double ms)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        double *p = realloc(t->lat_ms, cap * sizeof *p);
        if (p == NULL)
            return false;
        t->lat_ms = p;
        t->cap = cap;
    }
    t->lat_ms[t->n++] = ms;
    atomic_fetch_add(&t->b->done, 1);
    return true;
}

static void record_failed(bench_thread *t, agec_status st, const agec_error *err)
{
    record_error(t, st, err);
    t->failed++;
    atomic_fetch_add(&t->b->failed, 1);
}

/* Do not spin on a dead server: errors are fast. */
static void error_pause(void)
{
    nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
}

/* --pipeline N: up to N statements in one agec_batch; each statement's
 * latency is the batch's (what its caller waits for its outcome). Writers
 * only, without --unique-key/--record (refused at parse time). */
static void run_batch(bench_thread *t, int want)
{
    bench *b = t->b;
    double t0 = cli_now_ms();
    agec_conn *conn = NULL;
    agec_batch *batch = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = acquire(t, &conn, &err);
    agec_batch_opts bo;
    agec_batch_opts_init(&bo);
    bo.timeout_ms = b->c->statement_timeout_ms;
    if (st == AGEC_OK)
        st = agec_batch_create(conn, &bo, &batch, &err);
    for (int i = 0; st == AGEC_OK && i < want; i++)
        st = b->cypher ? agec_batch_add_cypher(batch, b->c->graph, b->cypher, b->params, NULL, &err)
                       : agec_batch_add_sql(batch, b->sql, 0, NULL, NULL, &err);
    if (st == AGEC_OK)
        (void)agec_batch_run(batch, &err);
    double ms = cli_now_ms() - t0;
    for (int i = 0; i < want; i++) {
        agec_status s = st;
        if (st == AGEC_OK)
            s = agec_batch_status(batch, (size_t)i, &err);
        if (s == AGEC_OK)
            (void)record_ok(t, ms);
        else
            record_failed(t, s, &err);
    }
    agec_batch_free(batch);
    if (conn != NULL)
        agec_conn_release(conn);
    if (st != AGEC_OK)
        error_pause();
}

static void *run_thread(void *arg)
{
    bench_thread *t = arg;
    bench *b = t->b;
    while (take_one(b)) {
        if (b->pipeline > 1 && !t->reader) {
            int want = 1;
            while (want < b->pipeline && take_one(b))
                want++;
            run_batch(t, want);
            continue;
        }
        agec_error err = AGEC_ERROR_INIT;
        double lat = 0;
        agec_status st = one_call(t, &lat, &err);
        if (st == AGEC_OK) {
            if (!record_ok(t, lat))
                break;
        } else {
            record_failed(t, st, &err);
            error_pause();
        }
    }
    return NULL;
}

/* Cluster mode: one line (text) or one object of "nodes" (JSON) per node. */
static void print_nodes(agec_cluster *cl, bool json)
{
    int n = agec_cluster_node_count(cl), primary = agec_cluster_primary_index(cl);
    if (json)
        fputs(", \"nodes\": [", stdout);
    else
        printf("%-4s %-24s %-8s %-5s %-7s %-6s %-5s %-10s %-10s %-7s %s\n", "node", "address",
               "role", "reads", "lag_ms", "in_use", "idle", "acq_write", "acq_read", "errors",
               "breaker");
    for (int i = 0; i < n; i++) {
        agec_cluster_node_stats s;
        if (agec_cluster_node_stats_get(cl, i, &s) != AGEC_OK)
            continue;
        if (json) {
            fputs(i ? ", " : "", stdout);
            cli_node_stats_json(&s, i, i == primary, stdout);
            continue;
        }
        char addr[300], lag[24];
        snprintf(addr, sizeof addr, "%s:%d", s.host, s.port);
        if (s.lag_ms >= 0)
            snprintf(lag, sizeof lag, "%lld", (long long)s.lag_ms);
        else
            snprintf(lag, sizeof lag, "-");
        printf("%-4d %-24s %-8s %-5s %-7s %-6d %-5d %-10llu %-10llu %-7llu %s\n", i, addr,
               agec_node_role_name(s.role), s.in_rotation ? "yes" : "no", lag, s.in_use, s.idle,
               (unsigned long long)s.acquires_write, (unsigned long long)s.acquires_read,
               (unsigned long long)(s.acquire_errors + s.check_failures),
               agec_breaker_state_name(s.breaker));
    }
    if (json)
        fputc(']', stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int cmd_bench(cli *c, int argc, char **argv)
{
    bench b = { .c = c, .pipeline = 1 };
    int threads = 4, read_threads = -1, duration_s = 0, count = 0;
    const char *params_json = NULL, *record = NULL;
    const char **pairs = calloc((size_t)argc, sizeof *pairs);
    int npairs = 0, rc = EXIT_USAGE;
    if (pairs == NULL)
        return EXIT_QUERY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--unique-key") == 0) {
            b.unique_key = true;
            continue;
        }
        if (v == NULL) {
            rc = cli_usage_error("bench: %s needs a value", a);
            goto out;
        }
        i++;
        if (strcmp(a, "--cypher") == 0)
            b.cypher = v;
        else if (strcmp(a, "--sql") == 0)
            b.sql = v;
        else if (strcmp(a, "--read-cypher") == 0)
            b.read_cypher = v;
        else if (strcmp(a, "--read-sql") == 0)
            b.read_sql = v;
        else if (strcmp(a, "--record") == 0)
            record = v;
        else if (strcmp(a, "--read-threads") == 0 && cli_parse_int(v, &read_threads) &&
                 read_threads <= 1024)
            continue;
        else if (strcmp(a, "--pipeline") == 0 && cli_parse_int(v, &b.pipeline) && b.pipeline > 0 &&
                 b.pipeline <= 100000)
            continue;
        else if (strcmp(a, "--param") == 0)
            pairs[npairs++] = v;
        else if (strcmp(a, "--params") == 0)
            params_json = v;
        else if (strcmp(a, "--threads") == 0 && cli_parse_int(v, &threads) && threads > 0 &&
                 threads <= 1024)
            continue;
        else if (strcmp(a, "--duration") == 0 && cli_parse_int(v, &duration_s) && duration_s > 0)
            continue;
        else if (strcmp(a, "--count") == 0 && cli_parse_int(v, &count) && count > 0)
            continue;
        else {
            rc = cli_usage_error("bench: bad option or value: %s %s", a, v);
            goto out;
        }
    }
    if ((b.cypher == NULL) == (b.sql == NULL)) {
        rc = cli_usage_error("bench: give exactly one of --cypher Q and --sql Q");
        goto out;
    }
    if (b.read_cypher != NULL && b.read_sql != NULL) {
        rc = cli_usage_error("bench: give at most one of --read-cypher Q and --read-sql Q");
        goto out;
    }
    if ((b.cypher != NULL || b.read_cypher != NULL) && c->graph == NULL) {
        rc = cli_usage_error("bench --cypher: --graph NAME is required");
        goto out;
    }
    bool readers = b.read_cypher != NULL || b.read_sql != NULL;
    if (read_threads > 0 && !readers) {
        rc = cli_usage_error("bench: --read-threads needs --read-sql Q or --read-cypher Q");
        goto out;
    }
    if (!readers)
        read_threads = 0;
    else if (read_threads < 0)
        read_threads = threads;
    if (threads + read_threads > 1024) {
        rc = cli_usage_error("bench: at most 1024 threads in all");
        goto out;
    }
    if (b.pipeline > 1 && (b.unique_key || record != NULL)) {
        rc = cli_usage_error("bench: --pipeline cannot be combined with --unique-key or --record");
        goto out;
    }
    if (duration_s > 0 && count > 0) {
        rc = cli_usage_error("bench: give --duration or --count, not both");
        goto out;
    }
    if (duration_s == 0 && count == 0)
        duration_s = 10;
    if ((rc = cli_build_params(params_json, pairs, npairs, &b.params)) != EXIT_OK)
        goto out;
    if (record != NULL && (rc = bench_record_open(&b.rec, record)) != EXIT_OK)
        goto out;
    b.rec.acquire_timeout_ms = c->acquire_timeout_ms;
    b.rec.statement_timeout_ms = c->statement_timeout_ms;
    if ((rc = cli_open_pool(c, 4, 0, true)) != EXIT_OK)
        goto out;
    int all_threads = threads + read_threads;
    bench_thread *ts = calloc((size_t)all_threads, sizeof *ts);
    if (ts == NULL) {
        rc = EXIT_QUERY;
        goto out;
    }
    double t0 = cli_now_ms();
    b.deadline_ms = duration_s > 0 ? t0 + duration_s * 1000.0 : 0;
    atomic_store(&b.remaining, count);
    atomic_store(&interrupted, 0);
    struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int started = 0;
    for (; started < all_threads; started++) {
        ts[started].b = &b;
        ts[started].index = started;
        ts[started].reader = started >= threads;
        if (pthread_create(&ts[started].tid, NULL, run_thread, &ts[started]) != 0)
            break;
    }
    bool live = !c->quiet && isatty(STDERR_FILENO);
    while (live) {
        bool finished = b.deadline_ms > 0 ? cli_now_ms() >= b.deadline_ms
                                          : atomic_load(&b.done) + atomic_load(&b.failed) >= count;
        double el = (cli_now_ms() - t0) / 1000.0;
        fprintf(stderr, "\r  %.1f s  %ld ok  %ld errors  %.0f ops/s   ", el, atomic_load(&b.done),
                atomic_load(&b.failed), el > 0 ? (double)atomic_load(&b.done) / el : 0.0);
        if (finished || atomic_load(&interrupted))
            break;
        nanosleep(&(struct timespec){ 0, 250000000 }, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double elapsed = (cli_now_ms() - t0) / 1000.0;
    if (live)
        fputc('\n', stderr);

    size_t n = 0;
    for (int i = 0; i < started; i++)
        n += ts[i].n;
    double *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; all && i < started; i++) {
        if (ts[i].n > 0) /* lat_ms is NULL when a thread had no success */
            memcpy(all + k, ts[i].lat_ms, ts[i].n * sizeof *all);
        k += ts[i].n;
    }
    if (all)
        qsort(all, n, sizeof *all, cmp_double);
    agec_pool_stats s;
    (void)agec_pool_stats_get(c->pool, &s);
    long failed = atomic_load(&b.failed);
    double tput = elapsed > 0 ? (double)n / elapsed : 0;
    bool json = cli_format(c) == FMT_JSON;
    if (json) {
        printf("{\"threads\": %d, \"pipeline\": %d, \"seconds\": %.3f, \"ok\": %zu, "
               "\"errors\": %ld, \"ops_per_sec\": %.1f, \"latency_ms\": {\"p50\": %.3f, \"p90\": "
               "%.3f, \"p99\": %.3f, \"max\": %.3f}, \"acquire_wait_p99_ms\": %.3f, ",
               started, b.pipeline, elapsed, n, failed, tput, pct(all, n, .5), pct(all, n, .9),
               pct(all, n, .99), n ? all[n - 1] : 0.0, (double)s.wait_p99_us / 1000.0);
    } else {
        printf("threads %d, %.2f s: %zu ok, %ld errors, %.0f ops/s", started, elapsed, n, failed,
               tput);
        if (b.pipeline > 1)
            printf(" (batches of %d statements; latency = the batch's)", b.pipeline);
        putchar('\n');
        printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", pct(all, n, .5),
               pct(all, n, .9), pct(all, n, .99), n ? all[n - 1] : 0.0);
        printf("acquire wait ms: p99 %.3f  max %.3f\n", (double)s.wait_p99_us / 1000.0,
               (double)s.wait_max_us / 1000.0);
    }
    if (read_threads > 0) {
        unsigned long long ok[2] = { 0, 0 }, bad[2] = { 0, 0 };
        for (int i = 0; i < started; i++) {
            ok[ts[i].reader] += ts[i].n;
            bad[ts[i].reader] += ts[i].failed;
        }
        printf(json ? "\"writes\": {\"ok\": %llu, \"errors\": %llu}, "
                      "\"reads\": {\"ok\": %llu, \"errors\": %llu}, "
                    : "writes %llu ok, %llu errors; reads %llu ok, %llu errors\n",
               ok[0], bad[0], ok[1], bad[1]);
    }
    if (json)
        fputs("\"errors_by_kind\": [", stdout);
    /* One line per (code, SQLSTATE) over all threads, counts summed. */
    err_kind kinds[MAX_ERROR_KINDS];
    size_t nkinds = 0;
    uint64_t other = 0;
    for (int i = 0; i < started; i++) {
        other += ts[i].other_errors;
        for (size_t e = 0; e < ts[i].nerrors; e++) {
            const err_kind *ek = &ts[i].errors[e];
            add_error(kinds, &nkinds, &other, ek->code, ek->sqlstate, ek->example, ek->count);
        }
    }
    for (size_t e = 0; e < nkinds; e++) {
        const err_kind *ek = &kinds[e];
        if (json)
            printf("%s{\"code\": \"%s\", \"sqlstate\": \"%s\", \"count\": %llu}", e ? ", " : "",
                   agec_status_name(ek->code), ek->sqlstate, (unsigned long long)ek->count);
        else
            printf("error %s%s%s x%llu: %s\n", agec_status_name(ek->code),
                   ek->sqlstate[0] ? " " : "", ek->sqlstate, (unsigned long long)ek->count,
                   ek->example);
    }
    if (json)
        printf("], \"errors_other_kinds\": %llu", (unsigned long long)other);
    else if (other > 0)
        printf("errors of further kinds: %llu\n", (unsigned long long)other);
    if (json) {
        fputs(", \"pool\": ", stdout);
        cli_pool_stats_json(&s, stdout); /* every field of agec_pool_stats */
        if (c->cluster != NULL)
            print_nodes(c->cluster, true);
        fputs("}\n", stdout);
    } else {
        const char *pl = c->cluster != NULL ? "primary's pool" : "pool";
        printf("%s: opened %llu, acquires %llu, acquire timeouts %llu, connect failures %llu, "
               "breaker fast-fails %llu, breaker %s\n",
               pl, (unsigned long long)s.opened, (unsigned long long)s.acquires,
               (unsigned long long)s.acquire_timeouts, (unsigned long long)s.connect_failures,
               (unsigned long long)s.breaker_fast_fails, agec_breaker_state_name(s.breaker));
        printf("%s: closed", pl);
        for (int r = 0; r < AGEC_CLOSE_REASON_COUNT; r++)
            printf(" %s %llu", agec_close_reason_name((agec_close_reason)r),
                   (unsigned long long)s.closed[r]);
        printf(", validations %llu (failed %llu), breaker opened %llu times, leaks %llu "
               "(returned %llu)\n",
               (unsigned long long)s.validations, (unsigned long long)s.validation_failures,
               (unsigned long long)s.breaker_opens, (unsigned long long)s.leaks_suspected,
               (unsigned long long)s.leaks_returned);
        if (c->cluster != NULL)
            print_nodes(c->cluster, false);
    }
    free(all);
    for (int i = 0; i < started; i++)
        free(ts[i].lat_ms);
    free(ts);
    rc = n > 0 || failed == 0 ? EXIT_OK : EXIT_QUERY;
out:
    if (bench_record_close(&b.rec) != EXIT_OK && rc == EXIT_OK)
        rc = EXIT_QUERY;
    agec_free(b.params);
    free(pairs);
    return rc;
}
