/*
 * bench_mux: many callers multiplexed onto 4 connections (agec/mux.h)
 * against the synchronous ceiling and raw libpq pipelining, in one run.
 *
 * usage: bench_mux            (needs AGEC_TEST_PG; AGEC_TEST_AGE_NATIVE adds
 *                              the Cypher workload; run it through bench/run)
 * env:   AGEC_BENCH_SECONDS   seconds per measurement (default 0.6)
 *
 * Workloads, SELECT 1 over TCP to 127.0.0.1, each measured in 3 interleaved
 * rounds (median):
 *   ceiling   raw libpq, 4 threads on 4 dedicated connections,
 *             PQexecPrepared one at a time (the baseline of every ratio);
 *   pipe4/16  raw libpq pipeline mode, 4 threads on 4 connections, batches
 *             of 4 / 16 prepared statements and one Sync (the physical anchor);
 *   mux16/64  agec_mux_sql from 16 / 64 threads, mux on 4 connections;
 *   1 caller  agec_mux_sql vs the plain agec path (acquire + agec_sql_exec +
 *             release), latency per statement;
 *   cypher16  (native AGE) 1-row MATCH by id from 16 threads through the mux
 *             vs the pool path (acquire + agec_cypher_exec + release).
 *   remote    the same through the fault proxy (tests/fault/proxy.h) holding
 *             every chunk REMOTE_MS ms each way: a database on another
 *             machine (a round trip of a few ms, as across zones of a cloud
 *             region), where the mux's pipelining pays and CPU sharing on
 *             loopback no longer decides; ratio to the ceiling through it.
 * Each line: statements/s, ratio to the ceiling, p50/p99 per statement,
 * client CPU per statement (getrusage of the process).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "bench_common.h"
#include "proxy.h"

#define MAX_SAMPLES 100000
#define ROUNDS 3

typedef enum kind {
    K_CEILING,
    K_PIPE,
    K_MUX,
    K_SYNC,
    K_MUX_CYPHER,
    K_SYNC_CYPHER,
    K_MUX_ASYNC
} kind;

typedef struct job {
    kind k;
    int threads;
    int depth;
    bool sync_each; /* K_PIPE: a Sync after every statement (what the mux sends) */
    const char *conninfo;
    agec_mux *mux;
    agec_pool *pool;
    double secs;
    atomic_bool go, stop;
    atomic_int ready;
} job;

typedef struct worker {
    job *j;
    int id;
    long n;
    int failed;
    float *lat; /* microseconds, first MAX_SAMPLES statements */
    int nlat;
} worker;

static void sample(worker *w, int64_t t0, int64_t t1, int per)
{
    for (int i = 0; i < per && w->nlat < MAX_SAMPLES; i++)
        w->lat[w->nlat++] = (float)(t1 - t0) / 1000.0f;
}

static PGconn *raw_conn(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
        exit(1);
    }
    PGresult *r = PQprepare(c, "s1", "SELECT 1", 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "prepare: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    return c;
}

static void run_ceiling(worker *w, PGconn *c)
{
    while (!atomic_load(&w->j->stop)) {
        int64_t t0 = bench_now_ns();
        PGresult *r = PQexecPrepared(c, "s1", 0, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            w->failed++;
        PQclear(r);
        sample(w, t0, bench_now_ns(), 1);
        w->n++;
    }
}

static void run_pipe(worker *w, PGconn *c)
{
    int d = w->j->depth;
    if (PQenterPipelineMode(c) != 1)
        exit(1);
    while (!atomic_load(&w->j->stop)) {
        int64_t t0 = bench_now_ns();
        for (int i = 0; i < d; i++) {
            (void)PQsendQueryPrepared(c, "s1", 0, NULL, NULL, NULL, 0);
            if (w->j->sync_each)
                (void)PQpipelineSync(c);
        }
        if (!w->j->sync_each)
            (void)PQpipelineSync(c);
        int got = 0, syncs = w->j->sync_each ? d : 1;
        for (;;) {
            PGresult *r = PQgetResult(c);
            if (r == NULL)
                continue;
            ExecStatusType s = PQresultStatus(r);
            PQclear(r);
            if (s == PGRES_PIPELINE_SYNC && --syncs == 0)
                break;
            if (s == PGRES_PIPELINE_SYNC)
                continue;
            if (s == PGRES_TUPLES_OK)
                got++;
            else
                w->failed++;
        }
        if (got != d)
            w->failed++;
        sample(w, t0, bench_now_ns(), d);
        w->n += d;
    }
    (void)PQexitPipelineMode(c);
}

/* One event-loop thread keeping `depth` statements outstanding through
 * callbacks (each completion submits the next), driven by agec_mux_dispatch. */
typedef struct slot {
    worker *w;
    int64_t t0;
} slot;

static void async_done(agec_status st, agec_result *res, const agec_error *err, void *user);

static void async_submit(slot *s)
{
    s->t0 = bench_now_ns();
    if (agec_mux_submit_sql(s->w->j->mux, "SELECT 1", 0, NULL, NULL, async_done, s, NULL, NULL) !=
        AGEC_OK)
        s->w->failed++;
}

static void async_done(agec_status st, agec_result *res, const agec_error *err, void *user)
{
    slot *s = user;
    (void)err;
    if (st != AGEC_OK || agec_result_rows(res) != 1)
        s->w->failed++;
    agec_result_free(res);
    sample(s->w, s->t0, bench_now_ns(), 1);
    s->w->n++;
    s->t0 = 0;
    if (!atomic_load(&s->w->j->stop))
        async_submit(s);
}

static void run_async(worker *w)
{
    int d = w->j->depth;
    slot *slots = calloc((size_t)d, sizeof *slots);
    for (int i = 0; i < d; i++) {
        slots[i].w = w;
        async_submit(&slots[i]);
    }
    for (;;) {
        int busy = 0;
        for (int i = 0; i < d; i++)
            busy += slots[i].t0 != 0;
        if (busy == 0)
            break;
        (void)agec_mux_dispatch(w->j->mux, 100);
    }
    free(slots);
}

static const char *cypher_q = "MATCH (v:P) WHERE id(v) = $id RETURN v.k";
static int64_t cypher_ids[1000];

static void *work(void *arg)
{
    worker *w = arg;
    job *j = w->j;
    PGconn *c = j->k == K_CEILING || j->k == K_PIPE ? raw_conn(j->conninfo) : NULL;
    atomic_fetch_add(&j->ready, 1);
    while (!atomic_load(&j->go)) {
    }
    unsigned seed = (unsigned)w->id * 7919u + 1;
    if (j->k == K_CEILING)
        run_ceiling(w, c);
    else if (j->k == K_PIPE)
        run_pipe(w, c);
    else if (j->k == K_MUX_ASYNC)
        run_async(w);
    while (c == NULL && j->k != K_MUX_ASYNC && !atomic_load(&j->stop)) {
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = AGEC_OK;
        char params[64];
        seed = seed * 1103515245u + 12345u;
        snprintf(params, sizeof params, "{\"id\": %lld}",
                 (long long)cypher_ids[(seed >> 8) % 1000]);
        int64_t t0 = bench_now_ns();
        if (j->k == K_MUX) {
            st = agec_mux_sql(j->mux, "SELECT 1", 0, NULL, NULL, &r, &err);
        } else if (j->k == K_MUX_CYPHER) {
            st = agec_mux_cypher(j->mux, "bench_mux", cypher_q, params, NULL, &r, &err);
        } else {
            agec_conn *cn = NULL;
            st = agec_pool_acquire(j->pool, &cn, &err);
            if (st == AGEC_OK) {
                if (j->k == K_SYNC)
                    st = agec_sql_exec(cn, "SELECT 1", 0, NULL, NULL, &r, &err);
                else
                    st = agec_cypher_exec(cn, "bench_mux", cypher_q, params, NULL, &r, &err);
                agec_conn_release(cn);
            }
        }
        if (st != AGEC_OK || agec_result_rows(r) != 1) {
            if (w->failed++ == 0)
                fprintf(stderr, "statement failed: %s %s\n", agec_status_name(st), err.message);
        }
        agec_result_free(r);
        sample(w, t0, bench_now_ns(), 1);
        w->n++;
    }
    PQfinish(c);
    return NULL;
}

typedef struct figure {
    double rate, p50, p99, cpu_us, csw;
} figure;

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static double csw_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_nvcsw + u.ru_nivcsw);
}

static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static figure measure(job *j)
{
    worker *w = calloc((size_t)j->threads, sizeof *w);
    pthread_t *t = calloc((size_t)j->threads, sizeof *t);
    atomic_store(&j->go, false);
    atomic_store(&j->stop, false);
    atomic_store(&j->ready, 0);
    for (int i = 0; i < j->threads; i++) {
        w[i] = (worker){ .j = j, .id = i, .lat = malloc(MAX_SAMPLES * sizeof(float)) };
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    while (atomic_load(&j->ready) < j->threads)
        bench_sleep_ms(1);
    double c0 = cpu_now(), s0 = csw_now();
    int64_t t0 = bench_now_ns();
    atomic_store(&j->go, true);
    bench_sleep_ms((int64_t)(j->secs * 1000));
    atomic_store(&j->stop, true);
    long n = 0;
    int nlat = 0, failed = 0;
    for (int i = 0; i < j->threads; i++) {
        pthread_join(t[i], NULL);
        n += w[i].n;
        nlat += w[i].nlat;
        failed += w[i].failed;
    }
    double elapsed = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = cpu_now() - c0, csw = csw_now() - s0;
    float *all = malloc((size_t)(nlat > 0 ? nlat : 1) * sizeof(float));
    int k = 0;
    for (int i = 0; i < j->threads; i++) {
        memcpy(all + k, w[i].lat, (size_t)w[i].nlat * sizeof(float));
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, (size_t)nlat, sizeof(float), cmp_float);
    figure f = { .rate = (double)n / elapsed,
                 .p50 = nlat ? all[nlat / 2] : 0,
                 .p99 = nlat ? all[(int)((double)nlat * 0.99)] : 0,
                 .cpu_us = n ? cpu * 1e6 / (double)n : 0,
                 .csw = n ? csw / (double)n : 0 };
    free(all);
    free(w);
    free(t);
    if (failed) {
        fprintf(stderr, "bench_mux: %d statements failed\n", failed);
        exit(1);
    }
    return f;
}

static agec_pool *open_pool(const char *conninfo, int max, bool age)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = max;
    cfg.age_mode = age ? AGEC_AGE_LOAD : AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, &p, &err) != AGEC_OK) {
        fprintf(stderr, "pool: %s\n", err.message);
        exit(1);
    }
    return p;
}

static agec_mux *open_mux(agec_pool *p, int group_max)
{
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 4;
    mc.group_max = group_max;
    agec_mux *m = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_mux_open(p, &mc, &m, &err) != AGEC_OK) {
        fprintf(stderr, "mux: %s\n", err.message);
        exit(1);
    }
    return m;
}

typedef struct row {
    const char *name;
    job j;
    double rate[ROUNDS], p50[ROUNDS], p99[ROUNDS], cpu[ROUNDS], csw[ROUNDS];
} row;

static void run_rows(row *rows, int n)
{
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < n; i++) {
            figure f = measure(&rows[i].j);
            rows[i].rate[r] = f.rate;
            rows[i].p50[r] = f.p50;
            rows[i].p99[r] = f.p99;
            rows[i].cpu[r] = f.cpu_us;
            rows[i].csw[r] = f.csw;
        }
}

static void print_row(const row *x, double base)
{
    char rate[32];
    double v = bench_median(x->rate, ROUNDS);
    bench_fmt_rate(rate, sizeof rate, v);
    printf("  %-46s %8s/s %5.2fx  p50 %7.1f us  p99 %7.1f us  cpu %5.1f us/stmt  csw %4.2f/stmt\n",
           x->name, rate, base > 0 ? v / base : 0, bench_median(x->p50, ROUNDS),
           bench_median(x->p99, ROUNDS), bench_median(x->cpu, ROUNDS),
           bench_median(x->csw, ROUNDS));
}

static void cypher_setup(agec_pool *p)
{
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    if (agec_pool_acquire(p, &c, &err) != AGEC_OK)
        exit(1);
    if (agec_sql_exec(c, "SELECT ag_catalog.drop_graph('bench_mux', true)", 0, NULL, NULL, &r,
                      NULL) == AGEC_OK)
        agec_result_free(r);
    if (agec_sql_exec(c, "SELECT ag_catalog.create_graph('bench_mux')", 0, NULL, NULL, &r, &err) !=
        AGEC_OK) {
        fprintf(stderr, "create_graph: %s\n", err.message);
        exit(1);
    }
    agec_result_free(r);
    if (agec_cypher_exec(c, "bench_mux",
                         "UNWIND range(0, 999) AS i CREATE (v:P {k: i}) RETURN id(v)", NULL, NULL,
                         &r, &err) != AGEC_OK) {
        fprintf(stderr, "create: %s\n", err.message);
        exit(1);
    }
    for (size_t i = 0; i < 1000 && i < agec_result_rows(r); i++)
        cypher_ids[i] = strtoll(agec_result_text(r, i, 0, NULL), NULL, 10);
    agec_result_free(r);
    agec_conn_release(c);
}

#define REMOTE_MS 1

/* The remote rows (see the header comment). */
static void remote_section(const char *pg, double secs)
{
    char ci[512];
    fproxy *px = fproxy_start_for(pg, ci, sizeof ci);
    if (px == NULL) {
        printf("remote: no proxy (no port= in AGEC_TEST_PG?): not run\n");
        return;
    }
    fproxy_set_latency(px, REMOTE_MS);
    agec_pool *mp = open_pool(ci, 5, false);
    agec_mux *mux = open_mux(mp, 1);
    agec_pool *sp = open_pool(ci, 4, false);
    row rows[] = {
        { .name = "remote ceiling: raw libpq 4 thr x 4 conn",
          .j = { .k = K_CEILING, .threads = 4 } },
        { .name = "remote pool path: 16 callers, pool of 4",
          .j = { .k = K_SYNC, .threads = 16, .pool = sp } },
        { .name = "remote anchor: pipeline depth 16, Sync each",
          .j = { .k = K_PIPE, .threads = 4, .depth = 16, .sync_each = true } },
        { .name = "remote agec mux 4 conn, 16 callers",
          .j = { .k = K_MUX, .threads = 16, .mux = mux } },
        { .name = "remote agec mux 4 conn, 64 callers",
          .j = { .k = K_MUX, .threads = 64, .mux = mux } },
        { .name = "remote agec mux async: 64 outstanding",
          .j = { .k = K_MUX_ASYNC, .threads = 1, .depth = 64, .mux = mux } },
    };
    int n = (int)(sizeof rows / sizeof *rows);
    for (int i = 0; i < n; i++) {
        rows[i].j.conninfo = ci;
        rows[i].j.secs = secs;
        job w = rows[i].j;
        w.secs = 0.1;
        (void)measure(&w);
    }
    run_rows(rows, n);
    double base = bench_median(rows[0].rate, ROUNDS);
    printf("Remote: through a proxy adding %d ms each way; ratio = to the remote ceiling\n",
           REMOTE_MS);
    for (int i = 0; i < n; i++)
        print_row(&rows[i], base);
    agec_mux_close(mux);
    (void)agec_pool_close(mp, 1000, NULL);
    (void)agec_pool_close(sp, 1000, NULL);
    fproxy_stop(px);
}

int main(void)
{
    const char *pg = bench_require_env("AGEC_TEST_PG", "PostgreSQL 15 test server");
    double secs = bench_seconds(0.6);
    bench_print_machine("bench_mux: multiplexed callers on 4 connections");
    agec_pool *pool = open_pool(pg, 5, false);
    agec_mux *mux = open_mux(pool, 1);
    agec_pool *gpool = open_pool(pg, 5, false);
    agec_mux *gmux = open_mux(gpool, 16);
    agec_pool *sync1 = open_pool(pg, 1, false);
    row rows[] = {
        { .name = "ceiling: raw libpq 4 thr x 4 conn, 1 at a time",
          .j = { .k = K_CEILING, .threads = 4 } },
        { .name = "anchor: raw libpq pipeline 4 conn, depth 4",
          .j = { .k = K_PIPE, .threads = 4, .depth = 4 } },
        { .name = "anchor: raw libpq pipeline 4 conn, depth 16",
          .j = { .k = K_PIPE, .threads = 4, .depth = 16 } },
        { .name = "anchor: ... depth 16, Sync after each",
          .j = { .k = K_PIPE, .threads = 4, .depth = 16, .sync_each = true } },
        { .name = "agec mux 4 conn, 16 callers", .j = { .k = K_MUX, .threads = 16, .mux = mux } },
        { .name = "agec mux 4 conn, 64 callers", .j = { .k = K_MUX, .threads = 64, .mux = mux } },
        { .name = "agec mux async: 1 thread, 16 outstanding",
          .j = { .k = K_MUX_ASYNC, .threads = 1, .depth = 16, .mux = mux } },
        { .name = "agec mux async: 1 thread, 64 outstanding",
          .j = { .k = K_MUX_ASYNC, .threads = 1, .depth = 64, .mux = mux } },
        { .name = "agec mux group_max 16, 16 callers",
          .j = { .k = K_MUX, .threads = 16, .mux = gmux } },
        { .name = "agec mux group_max 16, 64 callers",
          .j = { .k = K_MUX, .threads = 64, .mux = gmux } },
        { .name = "agec mux group_max 16, async 16 outst.",
          .j = { .k = K_MUX_ASYNC, .threads = 1, .depth = 16, .mux = gmux } },
        { .name = "agec mux group_max 16, async 64 outst.",
          .j = { .k = K_MUX_ASYNC, .threads = 1, .depth = 64, .mux = gmux } },
        { .name = "1 caller: agec sync (acquire+exec+release)",
          .j = { .k = K_SYNC, .threads = 1, .pool = sync1 } },
        { .name = "1 caller: agec mux", .j = { .k = K_MUX, .threads = 1, .mux = mux } },
    };
    int n = (int)(sizeof rows / sizeof *rows);
    for (int i = 0; i < n; i++) {
        rows[i].j.conninfo = pg;
        rows[i].j.secs = secs;
    }
    /* Warm up: connections opened, statements prepared. */
    for (int i = 0; i < n; i++) {
        job w = rows[i].j;
        w.secs = 0.1;
        (void)measure(&w);
    }
    run_rows(rows, n);
    double base = bench_median(rows[0].rate, ROUNDS);
    printf("SELECT 1, %d rounds of %.1f s, medians; ratio = to the ceiling\n", ROUNDS, secs);
    for (int i = 0; i < n; i++)
        print_row(&rows[i], i >= 12 ? 0 : base);
    double s1 = bench_median(rows[12].p50, ROUNDS), m1 = bench_median(rows[13].p50, ROUNDS);
    printf("  targets, Sync per statement: 16 callers %.2fx threads / %.2fx async (>= 2.5), 64 "
           "callers %.2fx / %.2fx (>= 3.5)\n",
           bench_median(rows[4].rate, ROUNDS) / base, bench_median(rows[6].rate, ROUNDS) / base,
           bench_median(rows[5].rate, ROUNDS) / base, bench_median(rows[7].rate, ROUNDS) / base);
    printf("  targets, group_max 16: 16 callers %.2fx threads / %.2fx async (>= 2.5), 64 callers "
           "%.2fx / %.2fx (>= 3.5); 1-caller p50 mux/sync %.3f (<= 1.05)\n",
           bench_median(rows[8].rate, ROUNDS) / base, bench_median(rows[10].rate, ROUNDS) / base,
           bench_median(rows[9].rate, ROUNDS) / base, bench_median(rows[11].rate, ROUNDS) / base,
           s1 > 0 ? m1 / s1 : 0);
    agec_mux_stats st;
    agec_mux_stats_get(mux, &st);
    printf("  mux: %llu statements in %llu flushes (%.1f per flush), %llu role hand-offs\n",
           (unsigned long long)st.submitted, (unsigned long long)st.batches,
           st.batches ? (double)st.submitted / (double)st.batches : 0,
           (unsigned long long)st.role_handoffs);
    agec_mux_stats_get(gmux, &st);
    printf("  mux group_max 16: %llu statements in %llu flushes (%.1f per flush)\n",
           (unsigned long long)st.submitted, (unsigned long long)st.batches,
           st.batches ? (double)st.submitted / (double)st.batches : 0);
    agec_mux_close(mux);
    agec_mux_close(gmux);
    (void)agec_pool_close(pool, 1000, NULL);
    (void)agec_pool_close(gpool, 1000, NULL);
    (void)agec_pool_close(sync1, 1000, NULL);

    remote_section(pg, secs);

    const char *age = getenv("AGEC_TEST_AGE_NATIVE");
    if (age == NULL || age[0] == '\0') {
        printf("cypher: AGEC_TEST_AGE_NATIVE not set (export AGE_SRC for bench/run): not run\n");
    } else {
        agec_pool *ap = open_pool(age, 4, true);
        agec_pool *mp = open_pool(age, 5, true);
        cypher_setup(ap);
        agec_mux *am = open_mux(mp, 1);
        row crow[] = {
            { .name = "cypher ceiling: pool 4 conn, 16 callers",
              .j = { .k = K_SYNC_CYPHER, .threads = 16, .pool = ap } },
            { .name = "cypher: agec mux 4 conn, 16 callers",
              .j = { .k = K_MUX_CYPHER, .threads = 16, .mux = am } },
        };
        for (int i = 0; i < 2; i++) {
            crow[i].j.secs = secs;
            job w = crow[i].j;
            w.secs = 0.1;
            (void)measure(&w);
        }
        run_rows(crow, 2);
        double cb = bench_median(crow[0].rate, ROUNDS);
        printf("Cypher 1-row MATCH by id (native AGE), ratio = to the pool path\n");
        print_row(&crow[0], cb);
        print_row(&crow[1], cb);
        agec_mux_close(am);
        (void)agec_pool_close(ap, 1000, NULL);
        (void)agec_pool_close(mp, 1000, NULL);
    }
    bench_print_load("load at end");
    return 0;
}
