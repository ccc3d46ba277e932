/*
 * bench_pool: the pool's own cost, and SELECT 1 throughput through the pool
 * side by side with raw libpq, PgBouncer and a new connection per query.
 *
 * usage: bench_pool [cycle]    (needs AGEC_TEST_PG: run it through bench/run
 *                               or scripts/with-test-servers; `cycle` runs
 *                               only part (a), for profiling)
 * env:   AGEC_BENCH_SECONDS    seconds per throughput measurement (default 0.6)
 *        AGEC_BENCH_RUNDIR     where PgBouncer's temporary directory goes
 *                              (default $TMPDIR or /tmp)
 *
 * (a) acquire + release with no I/O: a pool on the PostgreSQL 15 test server
 *     with all its connections open and recently used (so none is validated),
 *     threads looping agec_pool_acquire + agec_conn_release for a fixed time.
 *     Median of several runs; the stats prove no validation or connect
 *     happened inside the measured windows.
 * (b) SELECT 1 queries/s at 1, 4 and 16 caller threads, every path over TCP
 *     to 127.0.0.1:
 *       agec pool (max = callers) acquire + agec_sql_exec + release (the
 *         realistic agec path: prepared statement, extended protocol), and
 *         acquire + PQexec on the escape hatch + release (pool cost alone);
 *       raw libpq, one dedicated connection per thread, PQexec (the
 *         baseline of the ratio) and PQexecPrepared (same protocol as agec);
 *       PgBouncer (Debian package) in transaction mode, started here as user
 *         postgres on a free loopback port and stopped at the end, also on
 *         failure, interrupt or watchdog; one client connection per thread;
 *       a new connection per query (PQconnectdb + PQexec + PQfinish),
 *         time-boxed.
 *     Paths are measured in interleaved rounds; each figure is the median.
 *
 * Exits 0 when every measurement ran (targets met or not: they are printed),
 * 1 on a failure, 2 when the test server is missing, 124 on the watchdog.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agec/cypher.h"
#include "agec/pool.h"
#include "bench_common.h"

#define WATCHDOG_S 150

#include "pgbouncer.h"

/* ---- workers -------------------------------------------------------------------- */

typedef enum path {
    P_CYCLE,       /* acquire + release, no query */
    P_POOL_SQL,    /* acquire + agec_sql_exec("SELECT 1") + release */
    P_POOL_PQ,     /* acquire + PQexec on agec_conn_pgconn + release */
    P_RAW,         /* PQexec on an own connection */
    P_RAW_PREP,    /* PQexecPrepared on an own connection */
    P_BOUNCER,     /* PQexec on an own connection to PgBouncer */
    P_NEWCONN,     /* PQconnectdb + PQexec + PQfinish */
    P_NEWCONN_TLS, /* the same with scram-sha-256 and TLS (verify-full) */
    P_COUNT
} path;

typedef struct worker {
    _Alignas(64) atomic_uint_fast64_t count; /* own cache line: written by one thread */
    pthread_t th;
    path kind;
    agec_pool *pool;
    PGconn *conn;
    const char *conninfo;
    bool failed;
    char errmsg[1280];
} worker;

static atomic_int g_stop;

static int fail(worker *w, const char *what, const char *msg)
{
    w->failed = true;
    snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", what, msg);
    return -1;
}

static int check_select1(worker *w, PGresult *r, const char *what)
{
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return fail(w, what, msg[0] ? msg : "unexpected result");
    }
    PQclear(r);
    return 0;
}

static int one_query(worker *w)
{
    agec_conn *c;
    agec_error err;
    switch (w->kind) {
    case P_CYCLE:
        if (agec_pool_acquire(w->pool, &c, &err) != AGEC_OK)
            return fail(w, "acquire", err.message);
        agec_conn_release(c);
        return 0;
    case P_POOL_SQL: {
        if (agec_pool_acquire(w->pool, &c, &err) != AGEC_OK)
            return fail(w, "acquire", err.message);
        agec_result *res;
        if (agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &res, &err) != AGEC_OK) {
            agec_conn_release(c);
            return fail(w, "agec_sql_exec", err.message);
        }
        const char *v = agec_result_text(res, 0, 0, NULL);
        bool ok = agec_result_rows(res) == 1 && v != NULL && strcmp(v, "1") == 0;
        agec_result_free(res);
        agec_conn_release(c);
        return ok ? 0 : fail(w, "agec_sql_exec", "unexpected result");
    }
    case P_POOL_PQ: {
        if (agec_pool_acquire(w->pool, &c, &err) != AGEC_OK)
            return fail(w, "acquire", err.message);
        int rc = check_select1(w, PQexec(agec_conn_pgconn(c), "SELECT 1"), "PQexec (pool)");
        agec_conn_release(c);
        return rc;
    }
    case P_RAW:
    case P_BOUNCER:
        return check_select1(w, PQexec(w->conn, "SELECT 1"), "PQexec");
    case P_RAW_PREP:
        return check_select1(w, PQexecPrepared(w->conn, "bench_s1", 0, NULL, NULL, NULL, 0),
                             "PQexecPrepared");
    case P_NEWCONN:
    case P_NEWCONN_TLS: {
        PGconn *nc = PQconnectdb(w->conninfo);
        if (PQstatus(nc) != CONNECTION_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", PQerrorMessage(nc));
            PQfinish(nc);
            return fail(w, "PQconnectdb", msg);
        }
        int rc = check_select1(w, PQexec(nc, "SELECT 1"), "PQexec (new connection)");
        PQfinish(nc);
        return rc;
    }
    case P_COUNT:
        break;
    }
    return fail(w, "internal", "bad path");
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint_fast64_t n = 0;
    if (w->kind == P_CYCLE) {
        /* the tight loop of (a): nothing but the pool */
        agec_pool *pool = w->pool;
        while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
            agec_conn *c;
            if (agec_pool_acquire_timeout(pool, 10000, &c, NULL) != AGEC_OK) {
                fail(w, "acquire", "failed (timeout or error)");
                break;
            }
            agec_conn_release(c);
            atomic_store_explicit(&w->count, ++n, memory_order_relaxed);
        }
        return NULL;
    }
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        if (one_query(w) != 0)
            break;
        atomic_store_explicit(&w->count, ++n, memory_order_relaxed);
    }
    return NULL;
}

static uint64_t total_count(worker *ws, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += atomic_load_explicit(&ws[i].count, memory_order_relaxed);
    return s;
}

typedef struct window {
    double rate;          /* operations per second, all threads */
    uint64_t validations; /* pool stats deltas over the window */
    uint64_t opened;
    double cpu_us; /* this process's CPU time (all threads) per operation */
} window;

static int64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Borrow every connection of the pool at once and give them back, so that
 * all are recently used: a connection idle longer than validate_idle_ms
 * would be checked (one round trip) at its next acquire, which must not
 * happen inside a measured window. */
static void refresh_pool(agec_pool *pool)
{
    agec_pool_stats s;
    if (agec_pool_stats_get(pool, &s) != AGEC_OK)
        return;
    agec_conn *held[64];
    int k = 0;
    while (k < s.max && k < 64 && agec_pool_acquire_timeout(pool, 5000, &held[k], NULL) == AGEC_OK)
        k++;
    while (k > 0)
        agec_conn_release(held[--k]);
}

/* Run `kind` on n threads: warm up, then count operations over `secs`. */
static int measure(worker *ws, int n, path kind, agec_pool *pool, double warm_s, double secs,
                   window *out)
{
    if (pool != NULL)
        refresh_pool(pool);
    atomic_store(&g_stop, 0);
    for (int i = 0; i < n; i++) {
        atomic_store(&ws[i].count, 0);
        ws[i].kind = kind;
        ws[i].pool = pool;
        ws[i].failed = false;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "bench_pool: pthread_create failed\n");
            atomic_store(&g_stop, 1);
            for (int j = 0; j < i; j++)
                pthread_join(ws[j].th, NULL);
            return -1;
        }
    }
    bench_sleep_ms((int64_t)(warm_s * 1000));
    agec_pool_stats s0, s1;
    if (pool != NULL)
        (void)agec_pool_stats_get(pool, &s0);
    int64_t t0 = bench_now_ns(), p0 = process_cpu_ns();
    uint64_t c0 = total_count(ws, n);
    bench_sleep_ms((int64_t)(secs * 1000));
    uint64_t c1 = total_count(ws, n);
    int64_t t1 = bench_now_ns(), p1 = process_cpu_ns();
    if (pool != NULL)
        (void)agec_pool_stats_get(pool, &s1);
    atomic_store(&g_stop, 1);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].th, NULL);
        if (ws[i].failed) {
            if (!failed)
                fprintf(stderr, "bench_pool: thread %d: %s\n", i, ws[i].errmsg);
            failed = 1;
        }
    }
    if (failed)
        return -1;
    out->rate = (double)(c1 - c0) / ((double)(t1 - t0) / 1e9);
    out->cpu_us = c1 > c0 ? (double)(p1 - p0) / 1e3 / (double)(c1 - c0) : 0;
    out->validations = pool ? s1.validations - s0.validations : 0;
    out->opened = pool ? s1.opened - s0.opened : 0;
    return 0;
}

/* ---- pools and connections ---------------------------------------------------------- */

static agec_pool *open_pool(const char *conninfo, int max, const char *name)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = max;
    cfg.min = max; /* opened in the background before we measure */
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.acquire_timeout_ms = 10000;
    cfg.name = name;
    agec_pool *p;
    agec_error err;
    if (agec_pool_open(&cfg, &p, &err) != AGEC_OK) {
        fprintf(stderr, "bench_pool: agec_pool_open: %s\n", err.message);
        return NULL;
    }
    /* wait until min connections are open */
    int64_t until = bench_now_ns() + 15000000000LL;
    for (;;) {
        agec_pool_stats s;
        (void)agec_pool_stats_get(p, &s);
        if (s.idle + s.in_use >= max)
            break;
        if (bench_now_ns() > until) {
            fprintf(stderr, "bench_pool: the pool did not open %d connections in 15 s\n", max);
            agec_pool_close(p, 1000, NULL);
            return NULL;
        }
        bench_sleep_ms(5);
    }
    return p;
}

static PGconn *connect_or_report(const char *conninfo, const char *what)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_pool: %s: %s", what, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* ---- (a) ----------------------------------------------------------------------------- */

static int bench_cycle(const char *conninfo, double *one_thread_ns)
{
    static const int threads[] = { 1, 2, 8, 32 };
    static const int pools[] = { 4, 8 };
    enum { NT = 4, NP = 2, RUNS = 5 };
    const double secs = 0.2, warm = 0.05;
    double agg[NT][NP], per[NT][NP];
    uint64_t io_valid = 0, io_open = 0;
    agec_pool *pool[NP] = { NULL, NULL };
    worker *ws = aligned_alloc(64, sizeof(worker) * 32);
    if (ws == NULL)
        return -1;
    memset(ws, 0, sizeof(worker) * 32);
    int rc = 0;
    for (int pi = 0; pi < NP && rc == 0; pi++) {
        pool[pi] = open_pool(conninfo, pools[pi], "bench-cycle");
        if (pool[pi] == NULL)
            rc = -1;
    }
    window settle; /* discarded: lets the new backends and the CPU settle */
    for (int pi = 0; pi < NP && rc == 0; pi++)
        if (measure(ws, 1, P_CYCLE, pool[pi], 0.1, 0.1, &settle) != 0)
            rc = -1;
    /* the runs of both pool sizes are interleaved, so that drift in the
     * machine's load hits both alike */
    for (int ti = 0; ti < NT && rc == 0; ti++) {
        double r[NP][RUNS];
        for (int k = 0; k < RUNS && rc == 0; k++) {
            for (int pi = 0; pi < NP && rc == 0; pi++) {
                window w;
                if (measure(ws, threads[ti], P_CYCLE, pool[pi], warm, secs, &w) != 0) {
                    rc = -1;
                    break;
                }
                r[pi][k] = w.rate;
                io_valid += w.validations;
                io_open += w.opened;
            }
        }
        for (int pi = 0; pi < NP && rc == 0; pi++) {
            double rate = bench_median(r[pi], RUNS);
            agg[ti][pi] = 1e9 / rate;
            per[ti][pi] = 1e9 * threads[ti] / rate;
        }
    }
    for (int pi = 0; pi < NP; pi++)
        if (pool[pi] != NULL)
            agec_pool_close(pool[pi], 1000, NULL);
    free(ws);
    if (rc != 0)
        return rc;
    printf("\n(a) acquire + release, no I/O: pool on PG15, all connections open and recently "
           "used\n    median of %d runs x %.2f s per cell; \"wall\" = elapsed / all threads' "
           "cycles, \"per thread\" = what one thread waits per cycle (wall x threads)\n",
           RUNS, secs);
    printf("%-9s | %12s %14s | %12s %14s\n", "threads", "pool 4: wall", "per thread",
           "pool 8: wall", "per thread");
    for (int ti = 0; ti < NT; ti++)
        printf("%-9d | %9.0f ns %11.0f ns | %9.0f ns %11.0f ns\n", threads[ti], agg[ti][0],
               per[ti][0], agg[ti][1], per[ti][1]);
    printf("I/O inside the measured windows: %llu validations, %llu new connections%s\n",
           (unsigned long long)io_valid, (unsigned long long)io_open,
           io_valid + io_open == 0 ? " (none, as intended)" : " (NOT pure: see above)");
    double worst = agg[0][0] > agg[0][1] ? agg[0][0] : agg[0][1];
    printf("target: uncontended (1 thread) median <= 100 ns: pool 4 %.0f ns, pool 8 %.0f ns: %s\n",
           agg[0][0], agg[0][1], worst <= 100 ? "met" : "MISSED");
    *one_thread_ns = worst;
    return 0;
}

/* ---- (b) ----------------------------------------------------------------------------- */

static const char *const path_label[P_COUNT] = {
    [P_CYCLE] = "acquire+release only",
    [P_POOL_SQL] = "agec pool: acquire+agec_sql_exec+release",
    [P_POOL_PQ] = "agec pool: acquire+PQexec(escape)+release",
    [P_RAW] = "raw libpq, 1 conn/thread, PQexec",
    [P_RAW_PREP] = "raw libpq, 1 conn/thread, PQexecPrepared",
    [P_BOUNCER] = "PgBouncer transaction mode, PQexec",
    [P_NEWCONN] = "new connection per query",
    [P_NEWCONN_TLS] = "new connection per query, scram + TLS",
};

/* The test server's scram-sha-256 user over TLS with certificate checks:
 * what a new connection costs against a production-like server. NULL when
 * the test server's CA or port is not known. The text holds a password:
 * never printed. */
static const char *tls_conninfo(void)
{
    static char ci[1024];
    const char *ca = getenv("AGEC_TEST_PG_CA"), *port = getenv("PGPORT");
    if (ca == NULL || port == NULL)
        return NULL;
    snprintf(ci, sizeof ci,
             "host=localhost port=%s dbname=postgres user=agec_pw password=agec-test-pw "
             "sslmode=verify-full sslrootcert=%s connect_timeout=5",
             port, ca);
    return ci;
}

static int bench_throughput(const char *pg, const char *bouncer)
{
    static const int callers[] = { 1, 4, 16 };
    enum { NC = 3, ROUNDS = 5 };
    static const path order[] = { P_POOL_SQL, P_RAW, P_BOUNCER, P_POOL_PQ, P_RAW_PREP };
    const int norder = (int)(sizeof order / sizeof order[0]);
    const double secs = bench_seconds(0.6), warm = 0.1, newconn_secs = 2.0;
    double rate[P_COUNT][NC], cpu[P_COUNT][NC];
    memset(rate, 0, sizeof rate);
    memset(cpu, 0, sizeof cpu);
    agec_pool_stats pst[NC];
    uint64_t win_io = 0;
    worker *ws = aligned_alloc(64, sizeof(worker) * 16);
    if (ws == NULL)
        return -1;
    int rc = 0;
    for (int ci = 0; ci < NC && rc == 0; ci++) {
        int n = callers[ci];
        memset(ws, 0, sizeof(worker) * 16);
        agec_pool *pool = open_pool(pg, n, "bench-select1");
        if (pool == NULL) {
            rc = -1;
            break;
        }
        PGconn *raw[16] = { 0 }, *pgb[16] = { 0 };
        for (int i = 0; i < n && rc == 0; i++) {
            raw[i] = connect_or_report(pg, "raw libpq connect");
            pgb[i] = connect_or_report(bouncer, "PgBouncer connect");
            if (raw[i] == NULL || pgb[i] == NULL) {
                rc = -1;
                break;
            }
            PGresult *r = PQprepare(raw[i], "bench_s1", "SELECT 1", 0, NULL);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "bench_pool: PQprepare: %s", PQresultErrorMessage(r));
                rc = -1;
            }
            PQclear(r);
        }
        double runs[P_COUNT][ROUNDS], cpus[P_COUNT][ROUNDS];
        for (int round = 0; round < ROUNDS && rc == 0; round++) {
            for (int k = 0; k < norder && rc == 0; k++) {
                path pth = order[k];
                for (int i = 0; i < n; i++) {
                    ws[i].conn = pth == P_BOUNCER ? pgb[i] : raw[i];
                    ws[i].conninfo = pg;
                }
                window w = { 0, 0, 0, 0 };
                bool pooled = pth == P_POOL_SQL || pth == P_POOL_PQ;
                if (measure(ws, n, pth, pooled ? pool : NULL, warm, secs, &w) != 0)
                    rc = -1;
                else
                    runs[pth][round] = w.rate, cpus[pth][round] = w.cpu_us;
                win_io += w.validations + w.opened;
            }
        }
        for (int k = 0; k < norder && rc == 0; k++)
            rate[order[k]][ci] = bench_median(runs[order[k]], ROUNDS),
            cpu[order[k]][ci] = bench_median(cpus[order[k]], ROUNDS);
        for (int i = 0; i < n; i++) {
            PQfinish(raw[i]);
            PQfinish(pgb[i]);
        }
        if (rc == 0) {
            /* time-boxed: one run */
            window w;
            for (int i = 0; i < n; i++)
                ws[i].conninfo = pg;
            if (measure(ws, n, P_NEWCONN, NULL, 0.1, newconn_secs, &w) != 0)
                rc = -1;
            else
                rate[P_NEWCONN][ci] = w.rate, cpu[P_NEWCONN][ci] = w.cpu_us;
            const char *tls = tls_conninfo();
            for (int i = 0; i < n && tls != NULL; i++)
                ws[i].conninfo = tls;
            if (rc == 0 && tls != NULL) {
                if (measure(ws, n, P_NEWCONN_TLS, NULL, 0.1, newconn_secs, &w) != 0)
                    rc = -1;
                else
                    rate[P_NEWCONN_TLS][ci] = w.rate, cpu[P_NEWCONN_TLS][ci] = w.cpu_us;
            }
        }
        (void)agec_pool_stats_get(pool, &pst[ci]);
        agec_pool_close(pool, 1000, NULL);
    }
    free(ws);
    if (rc != 0)
        return rc;

    printf("\n(b) SELECT 1 throughput, queries/s; TCP to 127.0.0.1 on every path; agec pool max "
           "= callers (pool of N for N callers)\n    median of %d interleaved runs x %.1f s "
           "(new connection per query: one run, time-boxed to %.0f s)\n",
           ROUNDS, secs, newconn_secs);
    printf("%-44s %12s %12s %12s\n", "path", "1 caller", "4 callers", "16 callers");
    static const path rows[] = { P_POOL_SQL, P_POOL_PQ, P_RAW,        P_RAW_PREP,
                                 P_BOUNCER,  P_NEWCONN, P_NEWCONN_TLS };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        printf("%-44s", path_label[rows[k]]);
        for (int ci = 0; ci < NC; ci++)
            printf(" %12.0f", rate[rows[k]][ci]);
        printf("\n");
    }
    printf("\n%-44s %12s %12s %12s\n", "client CPU us/query (this process, all threads)",
           "1 caller", "4 callers", "16 callers");
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        printf("%-44s", path_label[rows[k]]);
        for (int ci = 0; ci < NC; ci++)
            printf(" %12.1f", cpu[rows[k]][ci]);
        printf("\n");
    }
    printf("\n%-44s %12s %12s %12s   %s\n", "ratio (agec_sql_exec path / other)", "1", "4", "16",
           "target");
    struct {
        const char *name;
        path other;
        double target; /* 0 = informational */
    } ratios[] = {
        { "pool/raw (raw = PQexec)", P_RAW, 0.95 },
        { "pool/pgbouncer", P_BOUNCER, 1.5 },
        { "pool/new-conn", P_NEWCONN, 100 },
        { "info: pool/new-conn (scram + TLS)", P_NEWCONN_TLS, 0 },
        { "info: pool/raw-prepared (same protocol)", P_RAW_PREP, 0 },
        { "info: pool(PQexec escape)/raw PQexec", P_RAW, -1 },
    };
    int missed = 0;
    for (size_t k = 0; k < sizeof ratios / sizeof ratios[0]; k++) {
        printf("%-44s", ratios[k].name);
        bool met = true;
        for (int ci = 0; ci < NC; ci++) {
            path num = ratios[k].target < 0 ? P_POOL_PQ : P_POOL_SQL;
            double r = rate[num][ci] / rate[ratios[k].other][ci];
            if (ratios[k].target > 0 && r < ratios[k].target)
                met = false;
            char cell[32];
            snprintf(cell, sizeof cell, "%.2f%s", r,
                     ratios[k].target > 0 ? (r >= ratios[k].target ? " ok" : " NO") : "");
            printf(" %12s", cell);
        }
        if (ratios[k].target > 0) {
            printf("   >= %g: %s\n", ratios[k].target, met ? "met" : "MISSED");
            missed += !met;
        } else {
            printf("\n");
        }
    }
    printf("agec pool stats per run (1/4/16 callers): opened %llu/%llu/%llu, validations "
           "%llu/%llu/%llu, acquire wait p99 %lld/%lld/%lld us\n",
           (unsigned long long)pst[0].opened, (unsigned long long)pst[1].opened,
           (unsigned long long)pst[2].opened, (unsigned long long)pst[0].validations,
           (unsigned long long)pst[1].validations, (unsigned long long)pst[2].validations,
           (long long)pst[0].wait_p99_us, (long long)pst[1].wait_p99_us,
           (long long)pst[2].wait_p99_us);
    printf("pool I/O inside the measured windows (validations + connects): %llu%s\n",
           (unsigned long long)win_io,
           win_io == 0 ? " (none: the pool is refreshed before each "
                         "run, outside the window)"
                       : "");
    printf("note: agec_sql_exec prepares \"SELECT 1\" once per connection and then runs it with "
           "the extended protocol (Bind/Execute/Sync), so the \"raw-prepared\" row is the "
           "like-for-like protocol; the targets use raw PQexec as the baseline.\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* `bench_pool cycle`: only part (a), for profiling */
    bool cycle_only = argc > 1 && strcmp(argv[1], "cycle") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_print_machine("bench_pool");
    const char *pg = bench_require_env("AGEC_TEST_PG", "PostgreSQL 15 test server");
    printf("server: PostgreSQL test server (%s)\n", pg);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bouncer_on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    alarm(WATCHDOG_S);

    double one_ns = 0;
    if (bench_cycle(pg, &one_ns) != 0) {
        fprintf(stderr, "bench_pool: the acquire/release benchmark failed\n");
        return 1;
    }
    fflush(stdout);
    if (cycle_only)
        return 0;

    char bouncer[512];
    if (bouncer_start(pg, bouncer, sizeof bouncer) != 0) {
        fprintf(stderr, "bench_pool: could not start PgBouncer\n");
        return 1;
    }
    atexit(bouncer_stop);
    printf("\nPgBouncer %s started as user postgres: %s (pool_mode=transaction, "
           "default_pool_size=32)\n",
           PGBOUNCER_BIN, bouncer);
    fflush(stdout);
    int rc = bench_throughput(pg, bouncer);
    bouncer_stop();
    printf("PgBouncer stopped\n");
    bench_print_load("load at end");
    if (rc != 0) {
        fprintf(stderr, "bench_pool: the throughput benchmark failed\n");
        return 1;
    }
    return 0;
}
