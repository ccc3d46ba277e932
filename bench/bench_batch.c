/*
 * bench_batch (issue 28): one caller, batches of 100 INSERTs with a bound
 * parameter on PostgreSQL 15.
 *
 *   agec one at a time    agec_sql_exec per INSERT (prepared, cached)
 *   agec batch            agec_batch of 100, a Sync per statement
 *   agec batch all        agec_batch of 100, all-or-nothing (one Sync)
 *   libpq one at a time   PQexecPrepared per INSERT (the anchor of the first)
 *   libpq pipeline        PQsendQueryPrepared x 100, a Sync each, then read
 *                         (the physical anchor of the batches)
 *
 * Each path runs for AGEC_BENCH_SECONDS (default 2 s) per round, 3 rounds
 * interleaved; medians. Prints statements/s, the ratios (target: agec
 * batch >= 5x agec one at a time), p50/p99 per statement (one at a time:
 * each statement's latency; batches: the batch's time / 100, the cost per
 * statement when the caller waits for the batch) and client CPU per
 * statement (this process, CLOCK_PROCESS_CPUTIME_ID).
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "bench_common.h"
#include "bench_load_data.h"

#define BATCH 100
#define ROUNDS 3

typedef enum path { P_ONE, P_BATCH, P_BATCH_ALL, P_RAW_ONE, P_RAW_PIPE, P_COUNT } path;

static const char *const path_name[P_COUNT] = { "agec one at a time", "agec batch (Sync each)",
                                                "agec batch (all-or-nothing)",
                                                "libpq one at a time", "libpq pipeline" };

static const char *const INSERT = "INSERT INTO bench_batch (v) VALUES ($1::int)";

typedef struct sample {
    double *lat_us; /* per statement */
    size_t n, cap;
} sample;

typedef struct result {
    double rate, p50_us, p99_us, cpu_us;
} result;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_batch: %s: %s\n", what, msg);
    exit(1);
}

static void add_lat(sample *s, double us, size_t times)
{
    if (s->n + times > s->cap) {
        size_t cap = (s->cap ? s->cap : 4096);
        while (cap < s->n + times)
            cap *= 2;
        double *p = realloc(s->lat_us, cap * sizeof *p);
        if (p == NULL)
            die("memory", "out of memory");
        s->lat_us = p;
        s->cap = cap;
    }
    for (size_t i = 0; i < times; i++)
        s->lat_us[s->n++] = us;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void raw_check(PGresult *r, const char *what)
{
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_PIPELINE_SYNC)
        die(what, PQresultErrorMessage(r));
    PQclear(r);
}

/* One unit of work of a path: 1 statement or BATCH; returns statements. */
static size_t step(path p, agec_conn *conn, agec_batch *b, PGconn *raw, int *counter)
{
    char v[16];
    const char *vals[1] = { v };
    agec_error err = AGEC_ERROR_INIT;
    switch (p) {
    case P_ONE: {
        snprintf(v, sizeof v, "%d", (*counter)++);
        agec_result *r = NULL;
        if (agec_sql_exec(conn, INSERT, 1, vals, NULL, &r, &err) != AGEC_OK)
            die("agec_sql_exec", err.message);
        agec_result_free(r);
        return 1;
    }
    case P_BATCH:
    case P_BATCH_ALL:
        agec_batch_reset(b);
        for (int i = 0; i < BATCH; i++) {
            snprintf(v, sizeof v, "%d", (*counter)++);
            if (agec_batch_add_sql(b, INSERT, 1, vals, NULL, &err) != AGEC_OK)
                die("agec_batch_add_sql", err.message);
        }
        if (agec_batch_run(b, &err) != AGEC_OK)
            die("agec_batch_run", err.message);
        return BATCH;
    case P_RAW_ONE:
        snprintf(v, sizeof v, "%d", (*counter)++);
        raw_check(PQexecPrepared(raw, "ins", 1, vals, NULL, NULL, 0), "PQexecPrepared");
        return 1;
    case P_RAW_PIPE:
        if (!PQenterPipelineMode(raw))
            die("PQenterPipelineMode", PQerrorMessage(raw));
        for (int i = 0; i < BATCH; i++) {
            snprintf(v, sizeof v, "%d", (*counter)++);
            if (!PQsendQueryPrepared(raw, "ins", 1, vals, NULL, NULL, 0) || !PQpipelineSync(raw))
                die("PQsendQueryPrepared", PQerrorMessage(raw));
        }
        for (int i = 0; i < BATCH; i++) {
            raw_check(PQgetResult(raw), "pipeline result");
            PGresult *end = PQgetResult(raw); /* NULL after each statement */
            if (end != NULL)
                die("pipeline", "a second result");
            raw_check(PQgetResult(raw), "pipeline sync");
        }
        if (!PQexitPipelineMode(raw))
            die("PQexitPipelineMode", PQerrorMessage(raw));
        return BATCH;
    default:
        return 0;
    }
}

static int cmp(const void *a, const void *b)
{
    return bench_cmp_double(a, b);
}

static result measure(path p, agec_conn *conn, agec_batch *b, PGconn *raw, double secs)
{
    sample s = { 0 };
    int counter = 0;
    /* Warm up: prepare the statement, fill the caches. */
    for (int i = 0; i < 3; i++)
        (void)step(p, conn, b, raw, &counter);
    size_t total = 0;
    int64_t t0 = bench_now_ns(), c0 = cpu_ns(), end = t0 + (int64_t)(secs * 1e9);
    for (;;) {
        int64_t a = bench_now_ns();
        if (a >= end)
            break;
        size_t k = step(p, conn, b, raw, &counter);
        add_lat(&s, (double)(bench_now_ns() - a) / 1e3 / (double)k, k);
        total += k;
    }
    int64_t t1 = bench_now_ns(), c1 = cpu_ns();
    qsort(s.lat_us, s.n, sizeof *s.lat_us, cmp);
    result r = { .rate = (double)total / ((double)(t1 - t0) / 1e9),
                 .p50_us = s.lat_us[s.n / 2],
                 .p99_us = s.lat_us[(size_t)((double)(s.n - 1) * 0.99)],
                 .cpu_us = (double)(c1 - c0) / 1e3 / (double)total };
    free(s.lat_us);
    return r;
}

int main(void)
{
    const char *dsn = bench_require_env("AGEC_TEST_PG", "PostgreSQL 15 test server");
    bench_print_machine("bench_batch: one caller, batches of 100 INSERTs (PostgreSQL 15)");
    double secs = bench_seconds(2.0);

    agec_pool *pool = NULL;
    agec_conn *conn = bench_load_conn(dsn, AGEC_AGE_OFF, &pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_query_opts once;
    agec_query_opts_init(&once);
    once.prepare = false; /* several statements in one text */
    agec_result *r = NULL;
    if (agec_sql_exec(conn, "DROP TABLE IF EXISTS bench_batch; CREATE TABLE bench_batch (v int)", 0,
                      NULL, &once, &r, &err) != AGEC_OK)
        die("create table", err.message);
    agec_result_free(r);
    agec_batch_opts bo;
    agec_batch_opts_init(&bo);
    agec_batch *iso = NULL, *all = NULL;
    if (agec_batch_create(conn, &bo, &iso, &err) != AGEC_OK)
        die("agec_batch_create", err.message);
    bo.all_or_nothing = true;
    if (agec_batch_create(conn, &bo, &all, &err) != AGEC_OK)
        die("agec_batch_create", err.message);

    PGconn *raw = PQconnectdb(dsn);
    if (PQstatus(raw) != CONNECTION_OK)
        die("raw connect", PQerrorMessage(raw));
    raw_check(PQprepare(raw, "ins", INSERT, 1, NULL), "PQprepare");

    result rs[P_COUNT][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int k = 0; k < P_COUNT; k++) {
            path p = (path)((k + round) % P_COUNT); /* rotate the order */
            rs[p][round] = measure(p, conn, p == P_BATCH_ALL ? all : iso, raw, secs);
            PQclear(PQexec(raw, "TRUNCATE bench_batch"));
        }
    result med[P_COUNT];
    for (int p = 0; p < P_COUNT; p++) {
        double v[4][ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            v[0][i] = rs[p][i].rate;
            v[1][i] = rs[p][i].p50_us;
            v[2][i] = rs[p][i].p99_us;
            v[3][i] = rs[p][i].cpu_us;
        }
        med[p] = (result){ bench_median(v[0], ROUNDS), bench_median(v[1], ROUNDS),
                           bench_median(v[2], ROUNDS), bench_median(v[3], ROUNDS) };
    }
    printf("%d rounds of %.1f s per path, medians; per statement: p50/p99 latency (batches: "
           "batch time / %d), client CPU\n",
           ROUNDS, secs, BATCH);
    printf("%-30s %12s %10s %10s %10s\n", "path", "stmts/s", "p50 us", "p99 us", "cpu us");
    for (int p = 0; p < P_COUNT; p++) {
        char rate[32];
        bench_fmt_rate(rate, sizeof rate, med[p].rate);
        printf("%-30s %12s %10.1f %10.1f %10.2f\n", path_name[p], rate, med[p].p50_us,
               med[p].p99_us, med[p].cpu_us);
    }
    printf("ratio agec batch / agec one at a time:          %.2fx (target >= 5x)\n",
           med[P_BATCH].rate / med[P_ONE].rate);
    printf("ratio agec batch all-or-nothing / one at a time: %.2fx\n",
           med[P_BATCH_ALL].rate / med[P_ONE].rate);
    printf("ratio agec batch / libpq pipeline:               %.2f\n",
           med[P_BATCH].rate / med[P_RAW_PIPE].rate);
    printf("ratio libpq pipeline / libpq one at a time:      %.2fx\n",
           med[P_RAW_PIPE].rate / med[P_RAW_ONE].rate);
    printf("ratio agec one at a time / libpq one at a time:  %.2f\n",
           med[P_ONE].rate / med[P_RAW_ONE].rate);
    bench_print_load("load at end");

    PQclear(PQexec(raw, "DROP TABLE bench_batch"));
    PQfinish(raw);
    agec_batch_free(iso);
    agec_batch_free(all);
    agec_conn_release(conn);
    agec_pool_close(pool, 2000, NULL);
    return 0;
}
