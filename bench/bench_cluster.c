/*
 * bench_cluster: the cluster's routing cost and failover time, on a
 * primary + 2 hot standbys started here (scripts/pg-cluster-server, removed
 * at exit).
 *
 * usage: bench_cluster            (no test server needed: it starts its own)
 * env:   AGEC_BENCH_SECONDS       seconds per throughput measurement (default 0.4)
 *        AGEC_BENCH_FAILOVERS     failover runs (default 5)
 *
 * (a) routing overhead: acquire + release with no query (the routing cost
 *     alone), then point reads (SELECT n FROM t WHERE id = k, simple
 *     protocol on the escape hatch), at 1 and 16 callers, through
 *     agec_cluster_acquire_read on a cluster of ONE node (all the routing
 *     work, no spreading) vs agec_pool_acquire on a plain pool to the same
 *     node: the ratio is the cost of routing.
 * (b) read-heavy (100% reads) and mixed (80% reads, 20% single-row UPDATEs)
 *     through the three-node cluster vs a plain pool to the primary doing
 *     everything. On 2 shared cores the three servers compete for the same
 *     CPUs, so this shows the cost and spread, not a scale-out gain.
 * (c) failover: 2 writers; stop the primary, promote the synchronous
 *     standby, time to the first acknowledged write after the promote
 *     command started; the old primary is rewound and rejoins as a standby,
 *     and the next run fails over the other way. min / median / max.
 * Paths of (a) and (b) are measured in interleaved rounds (median of 9, alternating which goes first).
 * Exits 0 when everything ran, 1 on a failure, 124 on the watchdog (600 s).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "bench_common.h"

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif

#define ROWS 1000
#define ROUNDS 9

static char dir[256];
static int ports[3];

static int script(const char *verb, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pg-cluster-server %s %s %s >>%s.log 2>&1", AGEC_SCRIPTS_DIR, verb,
             dir, args ? args : "", dir);
    return system(cmd);
}

static void cleanup(void)
{
    if (dir[0] != '\0') {
        (void)script("stop", "");
        char p[300];
        snprintf(p, sizeof p, "%s.log", dir);
        unlink(p);
        rmdir(dir);
        dir[0] = '\0';
    }
}

static void on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(124);
}

static void die(const char *what, const agec_error *e)
{
    fprintf(stderr, "bench_cluster: %s: %s\n", what, e ? e->message : "failed");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -n 20 %s.log >&2", dir);
    (void)system(cmd);
    cleanup();
    exit(1);
}

static void node_conninfo(char *buf, size_t cap, int n)
{
    snprintf(buf, cap, "host=127.0.0.1 port=%d user=postgres dbname=postgres", ports[n]);
}

static void admin(int n, const char *sql)
{
    char ci[200];
    node_conninfo(ci, sizeof ci, n);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench_cluster: %s: %s", sql, PQerrorMessage(c));
        cleanup();
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

/* ---- workloads ----------------------------------------------------------- */

typedef enum { PATH_POOL, PATH_CLUSTER } path_kind;

typedef struct run {
    path_kind kind;
    agec_pool *pool;       /* PATH_POOL */
    agec_cluster *cluster; /* PATH_CLUSTER */
    int write_pct;
    bool no_query; /* acquire + release only: the routing cost alone */
    double seconds;
    pthread_barrier_t start; /* callers + the timer: all begin together */
    atomic_bool stop;
    atomic_long ops, errors;
} run;

static void *worker(void *arg)
{
    run *r = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed ^ (unsigned)bench_now_ns();
    pthread_barrier_wait(&r->start);
    long ops = 0;
    while (!atomic_load(&r->stop)) {
        bool write = (int)(rand_r(&seed) % 100) < r->write_pct;
        agec_conn *c = NULL;
        agec_error e = AGEC_ERROR_INIT;
        agec_status st =
            r->kind == PATH_POOL
                ? agec_pool_acquire(r->pool, &c, &e)
                : agec_cluster_acquire_at(r->cluster, write ? AGEC_ACCESS_WRITE : AGEC_ACCESS_READ,
                                          0, -1, &c, &e, __FILE__, __LINE__, __func__);
        if (st != AGEC_OK) {
            atomic_fetch_add(&r->errors, 1);
            continue;
        }
        if (r->no_query) {
            agec_conn_release(c);
            ops++;
            continue;
        }
        char sql[96];
        int id = (int)(rand_r(&seed) % ROWS) + 1;
        if (write)
            snprintf(sql, sizeof sql, "UPDATE t SET n = n + 1 WHERE id = %d", id);
        else
            snprintf(sql, sizeof sql, "SELECT n FROM t WHERE id = %d", id);
        PGresult *res = PQexec(agec_conn_pgconn(c), sql);
        ExecStatusType s = PQresultStatus(res);
        PQclear(res);
        agec_conn_release(c);
        if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
            ops++;
        else
            atomic_fetch_add(&r->errors, 1);
    }
    atomic_fetch_add(&r->ops, ops);
    return NULL;
}

static double measure(run *r, int callers)
{
    pthread_t th[16];
    atomic_store(&r->stop, false);
    atomic_store(&r->ops, 0);
    pthread_barrier_init(&r->start, NULL, (unsigned)callers + 1);
    for (int i = 0; i < callers; i++)
        pthread_create(&th[i], NULL, worker, r);
    pthread_barrier_wait(&r->start);
    int64_t t0 = bench_now_ns();
    bench_sleep_ms((int64_t)(r->seconds * 1000));
    atomic_store(&r->stop, true);
    for (int i = 0; i < callers; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r->start);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    return (double)atomic_load(&r->ops) / s;
}

static agec_pool_config pool_cfg(int max)
{
    agec_pool_config pc;
    agec_pool_config_init(&pc);
    pc.age_mode = AGEC_AGE_OFF;
    pc.max = max;
    pc.min = max;
    pc.validate_idle_ms = -1;
    pc.application_name = "bench_cluster";
    pc.on_event = agec_pool_event_ignore;
    return pc;
}

static agec_pool *open_pool(int node, int max)
{
    char ci[200];
    node_conninfo(ci, sizeof ci, node);
    agec_pool_config pc = pool_cfg(max);
    pc.conninfo = ci;
    agec_pool *p = NULL;
    agec_error e = AGEC_ERROR_INIT;
    if (agec_pool_open(&pc, &p, &e) != AGEC_OK)
        die("pool open", &e);
    return p;
}

static agec_cluster *open_cluster(const char *conninfo, int max, int recheck_ms)
{
    agec_pool_config pc = pool_cfg(max);
    agec_cluster_config cc;
    agec_cluster_config_init(&cc);
    cc.conninfo = conninfo;
    cc.pool = &pc;
    cc.recheck_ms = recheck_ms;
    cc.read_policy = AGEC_READ_PREFER_STANDBY;
    agec_cluster *cl = NULL;
    agec_error e = AGEC_ERROR_INIT;
    if (agec_cluster_open(&cc, &cl, &e) != AGEC_OK)
        die("cluster open", &e);
    return cl;
}

/* Side by side, interleaved: median throughput of a and b. */
static void compare(const char *label, run *a, run *b, int callers)
{
    double va[ROUNDS], vb[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        /* Alternate which goes first, so neither always gets the warm-up. */
        if (i % 2 == 0) {
            va[i] = measure(a, callers);
            vb[i] = measure(b, callers);
        } else {
            vb[i] = measure(b, callers);
            va[i] = measure(a, callers);
        }
    }
    double ma = bench_median(va, ROUNDS), mb = bench_median(vb, ROUNDS);
    printf("  %-34s %2d callers: cluster %8.0f ops/s, plain pool %8.0f ops/s, ratio %.3f "
           "(overhead %+.1f%%), errors %ld/%ld\n",
           label, callers, ma, mb, mb > 0 ? ma / mb : 0, mb > 0 ? (1 - ma / mb) * 100 : 0,
           atomic_load(&a->errors), atomic_load(&b->errors));
}

/* ---- failover ------------------------------------------------------------ */

static agec_cluster *fo_cl;
static atomic_bool fo_stop;
static atomic_llong fo_since, fo_first;

static void *fo_writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&fo_stop)) {
        agec_conn *c = NULL;
        agec_error e = AGEC_ERROR_INIT;
        int64_t t0 = bench_now_ns() / 1000000;
        if (agec_cluster_acquire_at(fo_cl, AGEC_ACCESS_WRITE, 0, 2000, &c, &e, __FILE__, __LINE__,
                                    __func__) != AGEC_OK)
            continue;
        PGresult *r = PQexec(agec_conn_pgconn(c), "SET statement_timeout = 1000; "
                                                  "UPDATE t SET n = n + 1 WHERE id = 1");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            agec_error re = AGEC_ERROR_INIT;
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            re.code = AGEC_ERR_CONNECTION_LOST;
            snprintf(re.sqlstate, sizeof re.sqlstate, "%s", ss ? ss : "");
            agec_cluster_report(fo_cl, c, &re);
        }
        PQclear(r);
        agec_conn_release(c);
        long long since = atomic_load(&fo_since), zero = 0;
        if (ok && since > 0 && t0 >= since)
            atomic_compare_exchange_strong(&fo_first, &zero, (long long)(bench_now_ns() / 1000000));
    }
    return NULL;
}

static void failovers(const char *conninfo, int runs)
{
    fo_cl = open_cluster(conninfo, 2, 100);
    pthread_t th[2];
    atomic_store(&fo_stop, false);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, fo_writer, NULL);
    double took[32];
    int primary = 0, standby = 1;
    for (int k = 0; k < runs; k++) {
        bench_sleep_ms(300); /* writers going on the current primary */
        char args[32];
        snprintf(args, sizeof args, "%d", primary);
        if (script("stop-node", args) != 0)
            die("stop-node", NULL);
        atomic_store(&fo_first, 0);
        int64_t t0 = bench_now_ns() / 1000000;
        atomic_store(&fo_since, (long long)t0);
        snprintf(args, sizeof args, "%d", standby);
        if (script("promote", args) != 0)
            die("promote", NULL);
        int64_t limit = t0 + 10000;
        while (atomic_load(&fo_first) == 0 && bench_now_ns() / 1000000 < limit)
            bench_sleep_ms(1);
        long long first = atomic_load(&fo_first);
        if (first == 0)
            die("no write after failover within 10 s", NULL);
        took[k] = (double)(first - t0);
        printf("  run %d: node %d -> node %d, first write %.0f ms after the promote command\n",
               k + 1, primary, standby, took[k]);
        atomic_store(&fo_since, 0);
        snprintf(args, sizeof args, "2 %d", standby);
        if (script("follow", args) != 0)
            die("follow", NULL);
        snprintf(args, sizeof args, "%d %d", primary, standby);
        if (script("rejoin", args) != 0)
            die("rejoin", NULL);
        int t = primary;
        primary = standby;
        standby = t;
    }
    atomic_store(&fo_stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    (void)agec_cluster_close(fo_cl, 1000, NULL);
    double sorted[32];
    memcpy(sorted, took, sizeof(double) * (size_t)runs);
    qsort(sorted, (size_t)runs, sizeof *sorted, bench_cmp_double);
    printf(
        "  failover time over %d runs: min %.0f ms, median %.0f ms, max %.0f ms (target < 2000)\n",
        runs, sorted[0], bench_median(took, runs), sorted[runs - 1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible, and kept if the watchdog fires */
    bench_print_machine("bench_cluster");
    signal(SIGALRM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    alarm(600);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/agec-cluster.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", NULL);
    if (script("start", "") != 0) {
        fprintf(stderr, "bench_cluster: pg-cluster-server start failed (see %s.log)\n", dir);
        dir[0] = '\0';
        return 1;
    }
    for (int n = 0; n < 3; n++) {
        char p[300];
        snprintf(p, sizeof p, "%s/node%d/port", dir, n);
        FILE *f = fopen(p, "r");
        if (f == NULL || fscanf(f, "%d", &ports[n]) != 1)
            die("reading the ports", NULL);
        fclose(f);
    }
    char all[300], one[200];
    snprintf(all, sizeof all,
             "host=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%d,%d user=postgres dbname=postgres",
             ports[0], ports[1], ports[2]);
    node_conninfo(one, sizeof one, 1);
    admin(0, "CREATE TABLE t (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)");
    admin(0, "INSERT INTO t (id) SELECT generate_series(1, 1000)");
    double secs = bench_seconds(0.4);
    printf("cluster: primary :%d, sync standby :%d, async standby :%d; %.1f s per figure, "
           "median of %d interleaved rounds\n",
           ports[0], ports[1], ports[2], secs, ROUNDS);

    int callers[] = { 1, 16 };
    printf("(a) routing overhead: cluster of one standby vs plain pool to it\n");
    for (int q = 0; q < 2; q++) {
        for (int i = 0; i < 2; i++) {
            agec_cluster *c1 = open_cluster(one, callers[i], 500);
            agec_pool *p1 = open_pool(1, callers[i]);
            run a = { .kind = PATH_CLUSTER, .cluster = c1, .no_query = q == 0, .seconds = secs };
            run b = { .kind = PATH_POOL, .pool = p1, .no_query = q == 0, .seconds = secs };
            compare(q == 0 ? "acquire+release, no query" : "point read (1-node cluster)", &a, &b,
                    callers[i]);
            (void)agec_cluster_close(c1, 1000, NULL);
            (void)agec_pool_close(p1, 1000, NULL);
        }
    }
    printf("(b) three-node cluster vs plain pool to the primary\n");
    for (int w = 0; w < 2; w++) {
        int pct = w == 0 ? 0 : 20;
        for (int i = 0; i < 2; i++) {
            agec_cluster *c3 = open_cluster(all, callers[i], 500);
            agec_pool *p0 = open_pool(0, callers[i]);
            run a = { .kind = PATH_CLUSTER, .cluster = c3, .write_pct = pct, .seconds = secs };
            run b = { .kind = PATH_POOL, .pool = p0, .write_pct = pct, .seconds = secs };
            compare(pct ? "mixed 80/20 (3 nodes)" : "read-heavy (3 nodes)", &a, &b, callers[i]);
            (void)agec_cluster_close(c3, 1000, NULL);
            (void)agec_pool_close(p0, 1000, NULL);
        }
    }
    const char *fr = getenv("AGEC_BENCH_FAILOVERS");
    int runs = fr ? atoi(fr) : 5;
    if (runs < 1)
        runs = 1;
    if (runs > 32)
        runs = 32;
    printf("(c) failover under 2 writers (stop primary, promote the synchronous standby)\n");
    failovers(all, runs);
    bench_print_load("load at end");
    cleanup();
    return 0;
}
