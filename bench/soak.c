/*
 * bench/soak: N threads for M minutes through one pool, with a fault every
 * few seconds chosen at random from issue 6's list, on a PostgreSQL 15
 * cluster of its own behind the fault proxy (tests/fault/proxy.c).
 *
 *   soak [THREADS [MINUTES [SEED]]]      defaults: 8 threads, 10 minutes
 *
 * Prints a summary: operations, errors by cause, faults and recoveries
 * (a committed write after the heal), acknowledged writes verified, the most
 * backends the pool held, memory (RSS) at start and end, and what was left
 * after close. Exit status 0 when every recovery happened, no call overran
 * its deadline by more than 250 ms and every acknowledged write is there.
 * Not part of `make check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_load.h"

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif

#define MAX_CONNS 8
#define MIN_CONNS 2
#define SERVER_MAX_CONNECTIONS 30
#define RECOVERY_LIMIT_MS (FL_OPEN_MS + 2000)

typedef enum fault {
    F_KILL,
    F_RESTART,
    F_BLACKHOLE,
    F_RESET,
    F_MAXCONN,
    F_SLOW,
    F_LATENCY,
    F_AUTH,
    F_COUNT
} fault;

static const char *const FAULT_NAMES[F_COUNT] = {
    "kill backends",   "stop+start server", "black hole", "reset mid-result",
    "max_connections", "slow statements",   "latency",    "auth failure",
};

typedef struct soak {
    fl_cluster cl;
    PGconn *admin;
    fproxy *px;
    agec_pool *pool;
    fl_load *load;
    char app[64];
    unsigned seed;
    int injected[F_COUNT], recovered[F_COUNT];
    int64_t recovery_max_ms[F_COUNT];
} soak;

static void die(const char *what)
{
    fprintf(stderr, "soak: %s\n", what);
    exit(2);
}

/* A random integer in [0, n). */
static int rnd(soak *s, int n)
{
    return (int)((unsigned)rand_r(&s->seed) % (unsigned)n);
}

/* Hold a fault for 1.5 .. 3 s (longer than every timeout). */
static void hold(soak *s)
{
    agec_test_sleep_ms(1500 + rnd(s, 1500));
}

/* Inject one fault, hold it, heal it. */
static void inject(soak *s, fault f)
{
    PGconn *held[64];
    int n;
    switch (f) {
    case F_KILL:
        fl_kill_app(s->admin, s->app);
        break;
    case F_RESTART:
        if (!fl_cluster_do(&s->cl, "stop-server"))
            die("stop-server failed");
        hold(s);
        if (!fl_cluster_do(&s->cl, "start-server"))
            die("start-server failed");
        PQreset(s->admin);
        if (PQstatus(s->admin) != CONNECTION_OK)
            die("admin reconnect failed");
        break;
    case F_BLACKHOLE:
        fproxy_set_mode(s->px, FPROXY_STALL);
        hold(s);
        fproxy_set_mode(s->px, FPROXY_PASS);
        break;
    case F_RESET:
        fproxy_cut_after(s->px, 2000 + rnd(s, 8000));
        agec_test_sleep_ms(300);
        fproxy_reset_all(s->px);
        break;
    case F_MAXCONN:
        fproxy_set_mode(s->px, FPROXY_REFUSE);
        for (int i = 0; i < 50 && fl_count_app(s->admin, s->app) > 0; i++) {
            fl_kill_app(s->admin, s->app);
            agec_test_sleep_ms(20);
        }
        n = fl_fill_server(&s->cl, held, 64);
        if (n < 0)
            die("could not fill the server");
        fproxy_set_mode(s->px, FPROXY_PASS);
        hold(s);
        fl_free_held(held, n);
        break;
    case F_SLOW:
        fl_load_set_slow(s->load, 2 * FL_STMT_MS);
        hold(s);
        fl_load_set_slow(s->load, 0);
        break;
    case F_LATENCY:
        fproxy_set_latency(s->px, 30 + rnd(s, 50));
        hold(s);
        fproxy_set_latency(s->px, 0);
        break;
    case F_AUTH:
        fl_sql(s->admin, "ALTER ROLE agec_pw PASSWORD 'rotated-elsewhere'");
        fl_kill_app(s->admin, s->app);
        hold(s);
        fl_sql(s->admin, "ALTER ROLE agec_pw PASSWORD 'agec-test-pw'");
        break;
    case F_COUNT:
        break;
    }
}

/* After a heal: wait for a committed write; its delay, or -1. */
static int64_t recovery_ms(soak *s, int64_t healed)
{
    for (;;) {
        fl_facts f = fl_load_facts(s->load);
        int64_t now = agec_test_now_ms();
        if (f.last_write_ok_ms > healed)
            return f.last_write_ok_ms - healed;
        if (now - healed > 10000)
            return -1;
        agec_test_sleep_ms(5); /* polling the load's progress */
    }
}

static void print_counts(const char *title, const uint64_t *by)
{
    printf("  %s:\n", title);
    for (int i = 0; i < FL_NSTATUS; i++)
        if (by[i] > 0)
            printf("    %-26s %llu\n", agec_status_name((agec_status)i), (unsigned long long)by[i]);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 8;
    double minutes = argc > 2 ? atof(argv[2]) : 10.0;
    soak s;
    memset(&s, 0, sizeof s);
    s.seed = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : (unsigned)getpid();
    if (threads < 1 || minutes <= 0)
        die("usage: soak [THREADS [MINUTES [SEED]]]");
    unsigned seed0 = s.seed;
    printf("soak: %d threads, %.1f minutes, seed %u\n", threads, minutes, seed0);
    fflush(stdout);

    if (!fl_cluster_start(&s.cl, AGEC_SCRIPTS_DIR))
        die("could not start PostgreSQL 15 (scripts/pg-test-server)");
    s.admin = fl_admin(&s.cl);
    if (s.admin == NULL || !fl_schema(s.admin) ||
        !fl_cluster_max_connections(&s.cl, s.admin, SERVER_MAX_CONNECTIONS))
        die("could not prepare the server");
    s.px = fproxy_start(s.cl.port);
    if (s.px == NULL)
        die("could not start the proxy");
    int threads0 = agec_test_thread_count();

    char conninfo[256];
    snprintf(conninfo, sizeof conninfo,
             "hostaddr=127.0.0.1 port=%d dbname=postgres sslmode=disable user=agec_pw "
             "password=agec-test-pw",
             fproxy_port(s.px));
    snprintf(s.app, sizeof s.app, "agec_soak_%d", (int)getpid());
    agec_pool_config cfg;
    fl_pool_config(&cfg, conninfo, s.app, "soak", MAX_CONNS, MIN_CONNS);
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, &s.pool, &err) != AGEC_OK)
        die(err.message);
    fl_sampler *smp = fl_sampler_start(&s.cl, s.app, 50);
    fl_load_cfg lc = { s.pool, threads, FL_ACQUIRE_MS, FL_STMT_MS, FL_RESET_MS, 2 };
    s.load = fl_load_start(&lc);
    fl_watchdog *dog = fl_watchdog_start("soak", (int)(minutes * 60) + 120);

    agec_test_sleep_ms(2000); /* warm-up before the first measurement */
    long rss_start = fl_rss_kb();
    int64_t t0 = agec_test_now_ms(), end = t0 + (int64_t)(minutes * 60000.0);
    int faults = 0;
    while (agec_test_now_ms() < end) {
        agec_test_sleep_ms(2000 + rnd(&s, 3000)); /* quiet time between faults */
        if (agec_test_now_ms() >= end)
            break;
        fault f = (fault)rnd(&s, F_COUNT);
        fl_watchdog_phase(dog, FAULT_NAMES[f]);
        s.injected[f]++;
        faults++;
        inject(&s, f);
        int64_t healed = agec_test_now_ms();
        int64_t r = recovery_ms(&s, healed);
        if (r >= 0 && r <= RECOVERY_LIMIT_MS)
            s.recovered[f]++;
        if (r < 0)
            r = INT64_MAX;
        if (r > s.recovery_max_ms[f])
            s.recovery_max_ms[f] = r;
        fl_watchdog_phase(dog, "quiet");
    }
    int64_t elapsed = agec_test_now_ms() - t0;
    fl_load_stop(s.load);
    long rss_end = fl_rss_kb();
    fl_counts c = fl_load_counts(s.load);
    fl_facts fa = fl_load_facts(s.load);
    agec_pool_stats ps;
    (void)agec_pool_stats_get(s.pool, &ps);
    fl_verify v;
    bool writes_ok = fl_verify_writes(s.admin, s.load, &v);
    int pg_max = fl_sampler_max(smp);
    agec_status cst = agec_pool_close(s.pool, 2000, NULL);
    fl_sampler_stop(smp);
    /* Cancel requests sent into a black hole end once answered. */
    for (int i = 0; i < 200 && agec_test_thread_count() != threads0 + 1; i++)
        agec_test_sleep_ms(25);
    int threads_left = agec_test_thread_count() - threads0 - 1; /* the watchdog */
    fl_watchdog_stop(dog);

    int recovered = 0;
    for (int f = 0; f < F_COUNT; f++)
        recovered += s.recovered[f];
    printf("\n=== soak summary ===\n");
    printf("  duration            %.1f min, %d threads, pool max %d min %d, seed %u\n",
           (double)elapsed / 60000.0, threads, MAX_CONNS, MIN_CONNS, seed0);
    printf("  operations          %llu (%llu writes and %llu reads completed, %.0f ops/s)\n",
           (unsigned long long)c.ops, (unsigned long long)c.writes_ok,
           (unsigned long long)c.reads_ok, (double)c.ops * 1000.0 / (double)elapsed);
    print_counts("acquires by status", c.acquire);
    print_counts("operations by first failing statement", c.query);
    printf("  faults              %d, recovered within %d ms: %d\n", faults, RECOVERY_LIMIT_MS,
           recovered);
    for (int f = 0; f < F_COUNT; f++)
        if (s.injected[f] > 0) {
            if (s.recovery_max_ms[f] == INT64_MAX)
                printf("    %-20s %3d injected, %3d recovered, slowest: none within 10 s\n",
                       FAULT_NAMES[f], s.injected[f], s.recovered[f]);
            else
                printf("    %-20s %3d injected, %3d recovered, slowest %lld ms\n", FAULT_NAMES[f],
                       s.injected[f], s.recovered[f], (long long)s.recovery_max_ms[f]);
        }
    printf("  pool                opened %llu, breaker opened %llu times, broken closed %llu, "
           "validation failures %llu\n",
           (unsigned long long)ps.opened, (unsigned long long)ps.breaker_opens,
           (unsigned long long)ps.closed[AGEC_CLOSE_BROKEN],
           (unsigned long long)ps.validation_failures);
    printf("  worst call          %s (over its deadline by %lld ms; limit 250)\n", fa.worst_call,
           (long long)fa.worst_overrun_ms);
    printf("  acknowledged writes %ld verified: %ld missing, %ld half-done%s%s\n", v.acked,
           v.missing, v.half, writes_ok ? "" : ": ", writes_ok ? "" : v.msg);
    printf("  pg_stat_activity    at most %d backends of the pool (max %d)\n", pg_max, MAX_CONNS);
    printf("  memory (RSS)        %ld kB after warm-up, %ld kB at the end\n", rss_start, rss_end);
    printf("  after close         %s; %d extra threads\n", agec_status_name(cst), threads_left);

    fl_load_free(s.load);
    fproxy_stop(s.px);
    PQfinish(s.admin);
    fl_cluster_remove(&s.cl);
    bool ok = recovered == faults && fa.worst_overrun_ms <= 250 && writes_ok &&
              pg_max <= MAX_CONNS && cst == AGEC_OK && threads_left == 0;
    printf("  verdict             %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
