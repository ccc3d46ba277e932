/*
 * bench_contention: more callers than connections. SELECT 1 through a pool
 * of 4 connections with 1, 4, 16 and 64 caller threads, side by side with
 * the ceiling for 4 connections: raw libpq, 4 threads on 4 dedicated
 * connections, PQexecPrepared (no pool at all).
 *
 * usage: bench_contention      (needs AGEC_TEST_PG: run it through bench/run
 *                               or scripts/with-test-servers)
 * env:   AGEC_BENCH_SECONDS    seconds per measurement (default 0.6)
 *        AGEC_BENCH_FAIR_MS    fair_wait_ms of the barging path (default: the
 *                              pool's default)
 *        AGEC_BENCH_STRICT     0: leave out the strict path (bench/ablation)
 *        AGEC_POOL_ABLATE      read by the pool (benchmark-only): contention
 *                              mechanisms switched off, printed in the header
 *                              (docs/pool-design.md; bench/ablation)
 *        AGEC_BENCH_TIMELINE   N: instead, print queries, hand-offs and
 *                              callers that ran a query, per millisecond,
 *                              and every 10 ms how many of those callers
 *                              ran on another CPU than their server
 *                              process; ceiling then N callers
 *
 * Pool paths, each with a fresh pool of max = min = 4 whose connections
 * prepared "SELECT 1" at connect (on_connect), so that the pool path and
 * the ceiling send exactly the same messages:
 *   barging   the default fair_wait_ms: an idle connection goes to whoever
 *             asks first, until the oldest waiter has waited that long;
 *   strict    fair_wait_ms 0: strict first come, first served with a
 *             direct hand-off to the oldest waiter (the previous design).
 * Each caller loops agec_pool_acquire + PQexecPrepared on agec_conn_pgconn
 * + agec_conn_release, timing its own acquires (log buckets, merged), so
 * the run prints acquire-wait p50/p99/max and the spread of turns between
 * callers (fewest and most queries of one caller) next to the rate.
 * Paths are measured in interleaved rounds; each figure is the median of
 * the rounds (rates) or the worst round (max wait).
 *
 * Exits 0 when every measurement ran (targets met or not: they are
 * printed), 1 on a failure, 2 when the test server is missing.
 */
#define _GNU_SOURCE /* sched_getcpu, for the timeline's placement column */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agec/pool.h"
#include "bench_common.h"

#define CONNS 4
#define MAX_CALLERS 64
#define ROUNDS 7    /* the machine's noise is about +-20% per measurement */
#define NBUCKETS 64 /* wait buckets: 2^(i/2) microseconds, about 41% wide */

typedef enum path { P_CEILING, P_BARGING, P_STRICT, P_COUNT } path;
static const char *path_name[P_COUNT] = {
    "raw libpq, 4 threads x 4 own connections",
    "agec pool of 4, barging",
    "agec pool of 4, fair_wait_ms 0 (strict FIFO)",
};

typedef struct worker {
    _Alignas(64) atomic_uint_fast64_t count;
    pthread_t th;
    path kind;
    agec_pool *pool;
    PGconn *conn;
    uint64_t wait_bucket[NBUCKETS];
    int64_t wait_max_ns;
    bool failed;
    char errmsg[1100];
    atomic_int cpu, backend; /* after its latest query: its CPU, its server process */
} worker;

static atomic_int g_stop;
static bool g_timeline;    /* AGEC_BENCH_TIMELINE: the workers note their CPU and server process */
static int g_fair_ms = -1; /* the barging path's fair_wait_ms: the default, or AGEC_BENCH_FAIR_MS */

static int bucket_of(int64_t ns)
{
    /* i such that 2^(i/2) us >= the wait: twice per power of two */
    double us = (double)ns / 1000.0;
    int i = 0;
    double bound = 1.0;
    while (i < NBUCKETS - 1 && us > bound) {
        i++;
        bound = (i % 2) ? bound * 1.4142135623730951 : (double)(1LL << (i / 2));
    }
    return i;
}

static double bucket_upper_us(int i)
{
    double b = (double)(1LL << (i / 2));
    return (i % 2) ? b * 1.4142135623730951 : b;
}

static int select1(worker *w, PGconn *pg)
{
    if (g_timeline) { /* where the pair runs: only the timeline reads it */
        atomic_store_explicit(&w->cpu, sched_getcpu(), memory_order_relaxed);
        atomic_store_explicit(&w->backend, PQbackendPID(pg), memory_order_relaxed);
    }
    PGresult *r = PQexecPrepared(pg, "bench_s1", 0, NULL, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    if (!ok) {
        w->failed = true;
        snprintf(w->errmsg, sizeof w->errmsg, "PQexecPrepared: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint_fast64_t n = 0;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        if (w->kind == P_CEILING) {
            if (select1(w, w->conn) != 0)
                break;
        } else {
            agec_conn *c;
            agec_error err = AGEC_ERROR_INIT;
            int64_t t0 = bench_now_ns();
            if (agec_pool_acquire_timeout(w->pool, 30000, &c, &err) != AGEC_OK) {
                w->failed = true;
                snprintf(w->errmsg, sizeof w->errmsg, "acquire: %s", err.message);
                break;
            }
            int64_t waited = bench_now_ns() - t0;
            w->wait_bucket[bucket_of(waited)]++;
            if (waited > w->wait_max_ns)
                w->wait_max_ns = waited;
            int rc = select1(w, agec_conn_pgconn(c));
            agec_conn_release(c);
            if (rc != 0)
                break;
        }
        atomic_store_explicit(&w->count, ++n, memory_order_relaxed);
    }
    return NULL;
}

static agec_status prepare_select1(PGconn *conn, void *user, agec_error *err)
{
    (void)user;
    PGresult *r = PQprepare(conn, "bench_s1", "SELECT 1", 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && err != NULL)
        snprintf(err->message, sizeof err->message, "PQprepare: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? AGEC_OK : AGEC_ERR_SERVER;
}

static agec_pool *open_pool(const char *conninfo, int fair_wait_ms)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = cfg.min = CONNS;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.fair_wait_ms = fair_wait_ms;
    cfg.on_connect = prepare_select1;
    cfg.name = "bench_contention";
    agec_pool *p;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, &p, &err) != AGEC_OK) {
        fprintf(stderr, "bench_contention: agec_pool_open: %s\n", err.message);
        return NULL;
    }
    int64_t until = bench_now_ns() + 15000000000LL;
    for (;;) {
        agec_pool_stats s;
        (void)agec_pool_stats_get(p, &s);
        if (s.idle + s.in_use >= CONNS)
            return p;
        if (bench_now_ns() > until) {
            fprintf(stderr, "bench_contention: the pool did not open %d connections\n", CONNS);
            (void)agec_pool_close(p, 1000, NULL);
            return NULL;
        }
        bench_sleep_ms(5);
    }
}

typedef struct result {
    double rate;
    double p50_us, p99_us, max_us;
    uint64_t min_turns, max_turns;
    double handoffs_per_k, givebacks_per_k, deferred_per_k, late_per_k; /* per 1000 acquires */
} result;

/* Quantile of merged buckets, as the bucket's upper bound. */
static double quantile(const uint64_t *b, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < NBUCKETS; i++)
        total += b[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)total * q);
    uint64_t cum = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        cum += b[i];
        if (cum > want)
            return bucket_upper_us(i);
    }
    return bucket_upper_us(NBUCKETS - 1);
}

/* A running measurement: its threads and what they use. */
typedef struct run {
    worker *ws;
    int n;
    agec_pool *pool;
    PGconn *own[CONNS];
} run;

static worker g_ws[MAX_CALLERS];

/* Open the connections or the pool of `kind` and start the callers. */
static int run_start(const char *conninfo, path kind, int callers, run *rn)
{
    worker *ws = g_ws;
    agec_pool *pool = NULL;
    PGconn **own = rn->own;
    memset(own, 0, sizeof rn->own);
    int n = kind == P_CEILING ? CONNS : callers;
    if (kind == P_CEILING) {
        for (int i = 0; i < CONNS; i++) {
            own[i] = PQconnectdb(conninfo);
            if (PQstatus(own[i]) != CONNECTION_OK ||
                prepare_select1(own[i], NULL, NULL) != AGEC_OK) {
                fprintf(stderr, "bench_contention: connect: %s", PQerrorMessage(own[i]));
                for (int j = 0; j <= i; j++)
                    PQfinish(own[j]);
                return -1;
            }
        }
    } else {
        pool = open_pool(conninfo, kind == P_BARGING ? g_fair_ms : 0);
        if (pool == NULL)
            return -1;
    }
    atomic_store(&g_stop, 0);
    for (int i = 0; i < n; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        atomic_init(&ws[i].count, 0);
        atomic_init(&ws[i].cpu, -1);
        atomic_init(&ws[i].backend, 0);
        ws[i].kind = kind;
        ws[i].pool = pool;
        ws[i].conn = kind == P_CEILING ? own[i] : NULL;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "bench_contention: pthread_create failed\n");
            atomic_store(&g_stop, 1);
            for (int j = 0; j < i; j++)
                pthread_join(ws[j].th, NULL);
            return -1;
        }
    }
    rn->ws = ws;
    rn->n = n;
    rn->pool = pool;
    bench_sleep_ms(150); /* warm-up: every thread running, caches warm */
    return 0;
}

/* Stop the callers, close what run_start opened; -1 if a caller failed. */
static int run_stop(run *rn)
{
    atomic_store(&g_stop, 1);
    int failed = 0;
    for (int i = 0; i < rn->n; i++) {
        pthread_join(rn->ws[i].th, NULL);
        if (rn->ws[i].failed && !failed) {
            fprintf(stderr, "bench_contention: thread %d: %s\n", i, rn->ws[i].errmsg);
            failed = 1;
        }
    }
    if (rn->pool != NULL)
        (void)agec_pool_close(rn->pool, 2000, NULL);
    for (int i = 0; i < CONNS; i++)
        PQfinish(rn->own[i]);
    return failed ? -1 : 0;
}

static int measure(const char *conninfo, path kind, int callers, double secs, result *out)
{
    run rn;
    if (run_start(conninfo, kind, callers, &rn) != 0)
        return -1;
    worker *ws = rn.ws;
    int n = rn.n;
    agec_pool *pool = rn.pool;
    uint64_t c0[MAX_CALLERS];
    for (int i = 0; i < n; i++)
        c0[i] = atomic_load(&ws[i].count);
    uint64_t b0[MAX_CALLERS][NBUCKETS];
    for (int i = 0; i < n; i++)
        memcpy(b0[i], ws[i].wait_bucket, sizeof b0[i]); /* racy read: counts only grow */
    int64_t t0 = bench_now_ns();
    bench_sleep_ms((int64_t)(secs * 1000));
    uint64_t c1[MAX_CALLERS];
    for (int i = 0; i < n; i++)
        c1[i] = atomic_load(&ws[i].count);
    int64_t t1 = bench_now_ns();
    out->handoffs_per_k = out->givebacks_per_k = out->deferred_per_k = out->late_per_k = 0;
    if (pool != NULL) {
        agec_pool_stats s;
        if (agec_pool_stats_get(pool, &s) == AGEC_OK && s.acquires > 0) {
            out->handoffs_per_k = 1000.0 * (double)s.handoffs / (double)s.acquires;
            out->givebacks_per_k = 1000.0 * (double)s.givebacks / (double)s.acquires;
            out->deferred_per_k = 1000.0 * (double)s.wakeups_deferred / (double)s.acquires;
            out->late_per_k = 1000.0 * (double)s.wakeups_deferred_late / (double)s.acquires;
        }
    }
    int failed = run_stop(&rn) != 0;
    uint64_t merged[NBUCKETS] = { 0 };
    uint64_t total = 0, mn = UINT64_MAX, mx = 0;
    int64_t maxw = 0;
    for (int i = 0; i < n; i++) {
        uint64_t d = c1[i] - c0[i];
        total += d;
        mn = d < mn ? d : mn;
        mx = d > mx ? d : mx;
        for (int k = 0; k < NBUCKETS; k++)
            merged[k] += ws[i].wait_bucket[k] - b0[i][k];
        maxw = ws[i].wait_max_ns > maxw ? ws[i].wait_max_ns : maxw;
    }
    out->rate = (double)total / ((double)(t1 - t0) / 1e9);
    out->p50_us = quantile(merged, 0.50);
    out->p99_us = quantile(merged, 0.99);
    out->max_us = (double)maxw / 1000.0; /* whole run incl. warm-up: the worst seen */
    out->min_turns = mn;
    out->max_turns = mx;
    return failed ? -1 : 0;
}

/* The CPU a process last ran on (/proc/PID/stat, field 39), or -1. */
static int process_cpu(int pid)
{
    char file[64], buf[1024];
    snprintf(file, sizeof file, "/proc/%d/stat", pid);
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *x = strrchr(buf, ')'); /* the name may hold spaces */
    int field = 2;
    for (; x != NULL && *x != '\0'; x++)
        if (*x == ' ' && ++field == 39)
            return atoi(x + 1);
    return -1;
}

/* AGEC_BENCH_TIMELINE=N: per millisecond, queries / the pool's hand-offs /
 * callers that ran a query, for the ceiling and then N callers on the
 * barging path, to see where a rate goes; every 10 ms, [split S/A]: of the
 * A callers that ran in those 10 ms, S ran on another CPU than their
 * server process (a loopback server: the test server). A split pair sends
 * every message across CPUs and runs at about half speed. */
static int timeline(const char *pg, int callers, double secs)
{
    for (path k = P_CEILING; k <= P_BARGING; k++) {
        run rn;
        if (run_start(pg, k, callers, &rn) != 0)
            return 1;
        printf("\n%s, %d callers: queries/hand-offs/callers active per ms, 10 ms a line\n",
               path_name[k], k == P_CEILING ? CONNS : callers);
        uint64_t last_q = 0, last_h = 0, last_c[MAX_CALLERS];
        bool ran[MAX_CALLERS] = { false };
        for (int i = 0; i < rn.n; i++) {
            last_c[i] = atomic_load(&rn.ws[i].count);
            last_q += last_c[i];
        }
        int64_t next = bench_now_ns();
        int ms = (int)(secs * 1000);
        for (int t = 0; t < ms; t++) {
            next += 1000000;
            int64_t rem = next - bench_now_ns();
            if (rem > 0) {
                struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)rem };
                nanosleep(&ts, NULL);
            }
            uint64_t q = 0, h = last_h;
            int active = 0;
            for (int i = 0; i < rn.n; i++) {
                uint64_t ci = atomic_load(&rn.ws[i].count);
                if (ci != last_c[i]) {
                    active++;
                    ran[i] = true;
                }
                last_c[i] = ci;
                q += ci;
            }
            agec_pool_stats s;
            if (rn.pool != NULL && agec_pool_stats_get(rn.pool, &s) == AGEC_OK)
                h = s.handoffs;
            printf("%4llu/%-3llu/%-2d ", (unsigned long long)(q - last_q),
                   (unsigned long long)(h - last_h), active);
            last_q = q;
            last_h = h;
            if (t % 10 == 9) {
                int split = 0, seen = 0;
                for (int i = 0; i < rn.n; i++) {
                    if (!ran[i])
                        continue;
                    ran[i] = false;
                    int bcpu = process_cpu(atomic_load(&rn.ws[i].backend));
                    if (bcpu < 0)
                        continue;
                    seen++;
                    split += bcpu != atomic_load(&rn.ws[i].cpu);
                }
                printf("[split %d/%d]\n", split, seen);
            }
        }
        if (run_stop(&rn) != 0)
            return 1;
    }
    return 0;
}

int main(void)
{
    const char *pg = bench_require_env("AGEC_TEST_PG", "PostgreSQL test server");
    double secs = bench_seconds(0.6);
    agec_pool_config dflt;
    agec_pool_config_init(&dflt);
    g_fair_ms = dflt.fair_wait_ms;
    const char *fe = getenv("AGEC_BENCH_FAIR_MS");
    if (fe != NULL && fe[0] != '\0')
        g_fair_ms = atoi(fe);
    static char barging_name[80];
    snprintf(barging_name, sizeof barging_name, "agec pool of 4, fair_wait_ms %d%s", g_fair_ms,
             g_fair_ms == dflt.fair_wait_ms ? " (default)" : "");
    path_name[P_BARGING] = barging_name;
    static const int callers[] = { 1, 4, 16, 64 };
    enum { NC = sizeof callers / sizeof callers[0] };
    bench_print_machine("bench_contention: callers > connections, SELECT 1, pool of 4");
    const char *tl = getenv("AGEC_BENCH_TIMELINE");
    if (tl != NULL && tl[0] != '\0') {
        int n = atoi(tl);
        if (n < 1 || n > MAX_CALLERS) {
            fprintf(stderr, "bench_contention: AGEC_BENCH_TIMELINE must be 1..%d\n", MAX_CALLERS);
            return 1;
        }
        g_timeline = true;
        return timeline(pg, n, secs);
    }
    printf("server: PostgreSQL test server (%s); %d interleaved rounds x %.2f s per figure\n", pg,
           ROUNDS, secs);
    const char *abl = getenv("AGEC_POOL_ABLATE");
    printf("pool mechanisms switched off (AGEC_POOL_ABLATE): %s\n",
           abl != NULL && abl[0] != '\0' ? abl : "none");
    const char *strict_env = getenv("AGEC_BENCH_STRICT");
    path last = strict_env != NULL && strcmp(strict_env, "0") == 0 ? P_BARGING : P_STRICT;
    static result r[ROUNDS][P_COUNT][NC];
    double ceiling[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        if (measure(pg, P_CEILING, CONNS, secs, &r[round][P_CEILING][0]) != 0)
            return 1;
        ceiling[round] = r[round][P_CEILING][0].rate;
        for (int ci = 0; ci < NC; ci++)
            for (path k = P_BARGING; k <= last; k++)
                if (measure(pg, k, callers[ci], secs, &r[round][k][ci]) != 0)
                    return 1;
    }
    double ceil_med = bench_median(ceiling, ROUNDS);
    printf("\nceiling: %s: %.0f queries/s (median)\n", path_name[P_CEILING], ceil_med);
    printf("\n%-46s %8s %10s %7s %9s %9s %10s %13s %8s %8s %9s %6s\n", "path", "callers",
           "queries/s", "ratio", "wait p50", "wait p99", "wait max", "turns max/min", "handoff",
           "giveback", "deferred", "late");
    for (path k = P_BARGING; k <= last; k++) {
        for (int ci = 0; ci < NC; ci++) {
            double rates[ROUNDS], ratios[ROUNDS], p50[ROUNDS], p99[ROUNDS], ho[ROUNDS], gb[ROUNDS],
                df[ROUNDS];
            double lt[ROUNDS], mx = 0, spread = 0;
            for (int round = 0; round < ROUNDS; round++) {
                result *x = &r[round][k][ci];
                rates[round] = x->rate;
                ratios[round] = x->rate / ceiling[round];
                p50[round] = x->p50_us;
                p99[round] = x->p99_us;
                ho[round] = x->handoffs_per_k;
                gb[round] = x->givebacks_per_k;
                df[round] = x->deferred_per_k;
                lt[round] = x->late_per_k;
                mx = x->max_us > mx ? x->max_us : mx;
                double sp = (double)x->max_turns / (double)(x->min_turns ? x->min_turns : 1);
                spread = sp > spread ? sp : spread;
            }
            printf(
                "%-46s %8d %10.0f %7.2f %7.0fus %7.0fus %8.1fms %12.1f %8.1f %8.1f %9.1f %6.1f\n",
                path_name[k], callers[ci], bench_median(rates, ROUNDS),
                bench_median(ratios, ROUNDS), bench_median(p50, ROUNDS), bench_median(p99, ROUNDS),
                mx / 1000.0, spread, bench_median(ho, ROUNDS), bench_median(gb, ROUNDS),
                bench_median(df, ROUNDS), bench_median(lt, ROUNDS));
        }
    }
    /* Targets (issue 10): the ratio is to the ceiling measured in the same round. */
    printf("\ntargets (ratio to the ceiling, same round, median of rounds):\n");
    static const struct {
        int ci;
        double target;
    } targets[] = { { 2, 0.90 }, { 3, 0.85 } };
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        int ci = targets[t].ci;
        double ratios[ROUNDS];
        for (int round = 0; round < ROUNDS; round++)
            ratios[round] = r[round][P_BARGING][ci].rate / ceiling[round];
        double m = bench_median(ratios, ROUNDS);
        printf("  %2d callers: %.2f >= %.2f: %s\n", callers[ci], m, targets[t].target,
               m >= targets[t].target ? "met" : "MISSED");
    }
    printf("  1 and 4 callers: barging vs strict (the previous design), same rounds:");
    for (int ci = 0; ci < 2 && last == P_STRICT; ci++) {
        double ratios[ROUNDS];
        for (int round = 0; round < ROUNDS; round++)
            ratios[round] = r[round][P_BARGING][ci].rate / r[round][P_STRICT][ci].rate;
        printf(" %d: %.2f", callers[ci], bench_median(ratios, ROUNDS));
    }
    printf("\nwait max is over the whole run of a figure (warm-up included), worst round; turns "
           "max/min: most queries of one caller over fewest, worst round; handoff, deferred: "
           "direct hand-offs to a waiter past fair_wait_ms, connections given back after such a "
           "phase to the thread they were taken from, and deferred wake-ups (wake on miss) "
           "per 1000 acquires; late: deferred wake-ups the 1 ms tick had to end.\n");
    bench_print_load("load at end");
    return 0;
}
