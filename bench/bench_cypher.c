/*
 * bench_cypher: Cypher round trips per second through the pool, side by side
 * with the same statement through raw libpq on one connection.
 *
 * usage: bench_cypher          (needs AGEC_TEST_AGE: run it through bench/run
 *                               or scripts/with-test-servers)
 * env:   AGEC_BENCH_SECONDS    default 0.6; the measured run lasts 20 times this
 *
 * Set-up (through agec): a graph with 1000 :Bench vertices and agec's label
 * indexes (unique btree on id, GIN on properties); dropped at the end. The
 * statement is a one-row `MATCH (n:Bench) WHERE id(n) = $id RETURN n`, the
 * id cycling over all vertices, bound as an agtype map parameter.
 *
 * Paths, all on one thread, interleaved trip by trip (agec, raw prepared,
 * agec without parse, raw params, then again in a rotated order), so that
 * the server's and the machine's drift hits every path alike; figures are
 * means over all trips, and the agec/raw ratio is also given per 1-second
 * block (median, min..max) to show the spread:
 *   agec: agec_pool_acquire + agec_cypher_exec (default options: columns
 *     derived from RETURN, statement prepared and cached per connection) +
 *     agec_result_value (the vertex is parsed into an agtype tree and its id
 *     checked) + agec_result_free + agec_conn_release: a realistic round trip;
 *   agec without the parse (informational);
 *   raw libpq on one connection: PQprepare once + PQexecPrepared with the
 *     very SQL text agec builds (agec__cypher_sql), the fair baseline since
 *     agec prepares too; and PQexecParams with that text (parse + plan each
 *     time). The raw paths only check PQntuples == 1 (no agtype parse).
 *
 * Exits 0 when every measurement ran (the target is printed met or not),
 * 1 on a failure, 2 when the AGE test server is missing, 124 on the watchdog.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agec/agtype.h"
#include "agec/cypher.h"
#include "agec/graph.h"
#include "agec/pool.h"
#include "bench_common.h"
#include "cypher/sqltext.h" /* the exact SQL text agec sends, for the raw path */

#define WATCHDOG_S 90
#define GRAPH "agec_bench_cypher"
#define NVERT 1000
static const char QUERY[] = "MATCH (n:Bench) WHERE id(n) = $id RETURN n";

static void on_alarm(int sig)
{
    static const char msg[] = "\nbench_cypher: stopped by the watchdog or a signal\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(sig == SIGALRM ? 124 : 128 + sig);
}

/* Server NOTICEs (create/drop graph) would interleave with the tables. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static agec_status quiet_on_connect(PGconn *conn, void *user, agec_error *err)
{
    (void)user;
    (void)err;
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    return AGEC_OK;
}

typedef enum path { P_AGEC, P_AGEC_NOPARSE, P_RAW_PREP, P_RAW_PARAMS, P_COUNT } path;

static const char *const path_label[P_COUNT] = {
    [P_AGEC] = "agec pool: acquire+cypher_exec+value+release",
    [P_AGEC_NOPARSE] = "agec pool, without agec_result_value",
    [P_RAW_PREP] = "raw libpq, 1 conn, PQexecPrepared",
    [P_RAW_PARAMS] = "raw libpq, 1 conn, PQexecParams",
};

typedef struct ctx {
    agec_pool *pool;
    PGconn *raw;
    const char *sql;
    int64_t ids[NVERT];
    size_t next;
    char stmt[64];
    char errmsg[1280];
} ctx;

static int one(ctx *x, path p)
{
    int64_t id = x->ids[x->next];
    x->next = (x->next + 1) % NVERT;
    char params[64];
    snprintf(params, sizeof params, "{\"id\": %lld}", (long long)id);
    agec_error err;
    if (p == P_AGEC || p == P_AGEC_NOPARSE) {
        agec_conn *c;
        if (agec_pool_acquire(x->pool, &c, &err) != AGEC_OK) {
            snprintf(x->errmsg, sizeof x->errmsg, "acquire: %s", err.message);
            return -1;
        }
        agec_result *res;
        if (agec_cypher_exec(c, GRAPH, QUERY, params, NULL, &res, &err) != AGEC_OK) {
            snprintf(x->errmsg, sizeof x->errmsg, "agec_cypher_exec: %s", err.message);
            agec_conn_release(c);
            return -1;
        }
        int rc = agec_result_rows(res) == 1 ? 0 : -1;
        if (rc == 0 && p == P_AGEC) {
            const agec_value *v;
            int64_t got = -1;
            if (agec_result_value(res, 0, 0, &v, &err) != AGEC_OK ||
                agec_value_type(v) != AGEC_TYPE_VERTEX ||
                agec_element_id(v, &got, NULL) != AGEC_OK || got != id)
                rc = -1;
        }
        agec_result_free(res);
        agec_conn_release(c);
        if (rc != 0)
            snprintf(x->errmsg, sizeof x->errmsg, "agec: unexpected result for id %lld",
                     (long long)id);
        return rc;
    }
    const char *vals[1] = { params };
    PGresult *r = p == P_RAW_PREP ? PQexecPrepared(x->raw, x->stmt, 1, vals, NULL, NULL, 0)
                                  : PQexecParams(x->raw, x->sql, 1, NULL, vals, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : -1;
    if (rc != 0)
        snprintf(x->errmsg, sizeof x->errmsg, "raw libpq: %s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall and thread-CPU time summed per path. */
typedef struct sums {
    int64_t wall_ns[P_COUNT], cpu_ns[P_COUNT];
    uint64_t n[P_COUNT];
} sums;

/* Run every path in turn, one trip each, for `secs`, adding into *s;
 * the order rotates every cycle. -1 on failure. */
static int interleave(ctx *x, double secs, sums *s)
{
    static const path order[P_COUNT] = { P_AGEC, P_RAW_PREP, P_AGEC_NOPARSE, P_RAW_PARAMS };
    int64_t end = bench_now_ns() + (int64_t)(secs * 1e9);
    for (size_t cycle = 0; bench_now_ns() < end; cycle++) {
        for (size_t k = 0; k < P_COUNT; k++) {
            path p = order[(k + cycle) % P_COUNT];
            int64_t c0 = cpu_ns(), t0 = bench_now_ns();
            if (one(x, p) != 0)
                return -1;
            s->wall_ns[p] += bench_now_ns() - t0;
            s->cpu_ns[p] += cpu_ns() - c0;
            s->n[p]++;
        }
    }
    return 0;
}

static double mean_us(const int64_t *ns, const uint64_t *n, path p)
{
    return n[p] ? (double)ns[p] / 1e3 / (double)n[p] : 0;
}

/* Create the graph, its vertices and indexes, and read back the ids. */
static int setup(ctx *x)
{
    agec_conn *c;
    agec_error err;
    if (agec_pool_acquire(x->pool, &c, &err) != AGEC_OK) {
        fprintf(stderr, "bench_cypher: acquire on the AGE server: %s\n", err.message);
        return -1;
    }
    int rc = -1;
    bool exists = false;
    agec_result *res = NULL;
    int64_t t0 = bench_now_ns();
    if (agec_graph_exists(c, GRAPH, &exists, &err) != AGEC_OK)
        goto out;
    if (exists && agec_graph_drop(c, GRAPH, true, &err) != AGEC_OK)
        goto out;
    if (agec_graph_create(c, GRAPH, &err) != AGEC_OK)
        goto out;
    char q[256];
    snprintf(q, sizeof q,
             "UNWIND range(1, %d) AS i CREATE (:Bench {i: i, name: 'vertex ' + toString(i), "
             "score: i * 0.5, tags: ['a', 'b']})",
             NVERT);
    if (agec_cypher_exec(c, GRAPH, q, NULL, NULL, &res, &err) != AGEC_OK)
        goto out;
    agec_result_free(res);
    res = NULL;
    if (agec_graph_create_indexes(c, GRAPH, "Bench", &err) != AGEC_OK)
        goto out;
    if (agec_cypher_exec(c, GRAPH, "MATCH (n:Bench) RETURN id(n) AS id", NULL, NULL, &res, &err) !=
        AGEC_OK)
        goto out;
    if (agec_result_rows(res) != NVERT) {
        snprintf(err.message, sizeof err.message, "expected %d vertices, got %zu", NVERT,
                 agec_result_rows(res));
        goto out;
    }
    for (size_t i = 0; i < NVERT; i++) {
        const agec_value *v;
        if (agec_result_value(res, i, 0, &v, &err) != AGEC_OK ||
            agec_value_get_int64(v, &x->ids[i], &err) != AGEC_OK)
            goto out;
    }
    /* spread consecutive lookups over the table */
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (size_t i = NVERT - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t j = (size_t)(s % (i + 1));
        int64_t t = x->ids[i];
        x->ids[i] = x->ids[j];
        x->ids[j] = t;
    }
    printf("set-up: graph %s with %d :Bench vertices + label indexes, through agec, in %.0f ms\n",
           GRAPH, NVERT, (double)(bench_now_ns() - t0) / 1e6);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_cypher: set-up failed: %s\n", err.message);
    agec_result_free(res);
    agec_conn_release(c);
    return rc;
}

static void teardown(ctx *x)
{
    agec_conn *c;
    agec_error err;
    if (agec_pool_acquire(x->pool, &c, &err) != AGEC_OK ||
        agec_graph_drop(c, GRAPH, true, &err) != AGEC_OK) {
        fprintf(stderr, "bench_cypher: dropping graph %s: %s\n", GRAPH, err.message);
        if (c != NULL)
            agec_conn_release(c);
        return;
    }
    agec_conn_release(c);
    printf("graph %s dropped\n", GRAPH);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_print_machine("bench_cypher");
    const char *age = bench_require_env("AGEC_TEST_AGE", "Apache AGE test server");
    printf("server: Apache AGE test server (%s)\n", age);
    fflush(stdout);
    signal(SIGALRM, on_alarm);
    signal(SIGINT, on_alarm);
    signal(SIGTERM, on_alarm);
    alarm(WATCHDOG_S);

    static ctx x;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = age;
    cfg.max = 1; /* one thread: a pool of one */
    cfg.min = 1;
    cfg.acquire_timeout_ms = 10000;
    cfg.name = "bench-cypher";
    cfg.on_connect = quiet_on_connect;
    agec_error err;
    if (agec_pool_open(&cfg, &x.pool, &err) != AGEC_OK) {
        fprintf(stderr, "bench_cypher: agec_pool_open: %s\n", err.message);
        return 1;
    }
    if (setup(&x) != 0) {
        agec_pool_close(x.pool, 1000, NULL);
        return 1;
    }
    int rc = 1;
    char *sql = NULL;
    const char *cols[] = { "n" };
    if (agec__cypher_sql(GRAPH, QUERY, true, cols, 1, &sql, &err) != AGEC_OK) {
        fprintf(stderr, "bench_cypher: agec__cypher_sql: %s\n", err.message);
        goto done;
    }
    x.sql = sql;
    printf("statement: %s\n", sql);
    x.raw = PQconnectdb(age);
    if (PQstatus(x.raw) != CONNECTION_OK) {
        fprintf(stderr, "bench_cypher: raw libpq connect: %s", PQerrorMessage(x.raw));
        goto done;
    }
    PQsetNoticeProcessor(x.raw, quiet_notice, NULL);
    /* the same session init agec runs (AGEC_AGE_LOAD) */
    static const char *const init[] = { "LOAD 'age'",
                                        "SET search_path = ag_catalog, \"$user\", public" };
    for (int i = 0; i < 2; i++) {
        PGresult *r = PQexec(x.raw, init[i]);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "bench_cypher: raw %s: %s", init[i], PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            goto done;
    }
    /* PGlite shares one session between its clients: a name of our own. */
    snprintf(x.stmt, sizeof x.stmt, "bench_cypher_raw_%ld", (long)getpid());
    PGresult *pr = PQprepare(x.raw, x.stmt, sql, 1, NULL);
    if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bench_cypher: PQprepare: %s", PQresultErrorMessage(pr));
        PQclear(pr);
        goto done;
    }
    PQclear(pr);

    /* Warm-up, then blocks of about a second, each interleaving all paths. */
    const double secs = bench_seconds(0.6) * 4 * 5; /* what 5 rounds of 4 paths took before */
    enum { MAX_BLOCKS = 120 };
    int nblocks = (int)(secs + 0.5);
    if (nblocks < 3)
        nblocks = 3;
    if (nblocks > MAX_BLOCKS)
        nblocks = MAX_BLOCKS;
    sums warm = { 0 }, all = { 0 };
    double block_ratio[MAX_BLOCKS];
    if (interleave(&x, 0.2, &warm) != 0) {
        fprintf(stderr, "bench_cypher: %s\n", x.errmsg);
        goto done;
    }
    for (int b = 0; b < nblocks; b++) {
        sums blk = { 0 };
        if (interleave(&x, secs / nblocks, &blk) != 0) {
            fprintf(stderr, "bench_cypher: %s\n", x.errmsg);
            goto done;
        }
        block_ratio[b] =
            mean_us(blk.wall_ns, blk.n, P_RAW_PREP) / mean_us(blk.wall_ns, blk.n, P_AGEC);
        for (int p = 0; p < P_COUNT; p++) {
            all.wall_ns[p] += blk.wall_ns[p];
            all.cpu_ns[p] += blk.cpu_ns[p];
            all.n[p] += blk.n[p];
        }
    }
    double lo = block_ratio[0], hi = block_ratio[0];
    for (int b = 1; b < nblocks; b++) {
        lo = block_ratio[b] < lo ? block_ratio[b] : lo;
        hi = block_ratio[b] > hi ? block_ratio[b] : hi;
    }
    double med = bench_median(block_ratio, nblocks);
    agec_pool_stats st;
    (void)agec_pool_stats_get(x.pool, &st);

    printf("\nCypher one-row MATCH by id, 1 thread, TCP to 127.0.0.1; the paths interleaved trip "
           "by trip for %.0f s (%d blocks); means over all trips\n",
           secs, nblocks);
    printf("%-46s %7s %13s %10s %18s\n", "path", "trips", "round trips/s", "us/trip",
           "client CPU us/trip");
    double wall[P_COUNT];
    for (int p = 0; p < P_COUNT; p++) {
        wall[p] = mean_us(all.wall_ns, all.n, (path)p);
        printf("%-46s %7llu %13.0f %10.1f %18.1f\n", path_label[p], (unsigned long long)all.n[p],
               1e6 / wall[p], wall[p], mean_us(all.cpu_ns, all.n, (path)p));
    }
    double ratio = wall[P_RAW_PREP] / wall[P_AGEC];
    printf("agec/raw prepared (agec path includes the agtype parse): %.3f  (target >= 0.95: %s)\n",
           ratio, ratio >= 0.95 ? "met" : "MISSED");
    printf("  per 1-s block: median %.3f, min %.3f, max %.3f\n", med, lo, hi);
    printf("info: agec/raw PQexecParams: %.3f; agec without parse/raw prepared: %.3f\n",
           wall[P_RAW_PARAMS] / wall[P_AGEC], wall[P_RAW_PREP] / wall[P_AGEC_NOPARSE]);
    printf("info: client CPU, agec minus raw prepared: %+.1f us/trip (the agtype parse: %+.1f)\n",
           mean_us(all.cpu_ns, all.n, P_AGEC) - mean_us(all.cpu_ns, all.n, P_RAW_PREP),
           mean_us(all.cpu_ns, all.n, P_AGEC) - mean_us(all.cpu_ns, all.n, P_AGEC_NOPARSE));
    printf("agec pool: %llu acquires, %llu validations, %llu opened\n",
           (unsigned long long)st.acquires, (unsigned long long)st.validations,
           (unsigned long long)st.opened);
    bench_print_load("load at end");
    rc = 0;
done:
    if (x.raw != NULL)
        PQfinish(x.raw);
    free(sql);
    teardown(&x);
    agec_pool_close(x.pool, 1000, NULL);
    return rc;
}
