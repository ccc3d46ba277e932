/*
 * What the fault tests (tests/fault) and the soak (bench/soak) share: a
 * PostgreSQL 15 cluster of their own, a load of threads doing acquire /
 * write / read / release through one pool while every call is timed against
 * its deadline, a verification of acknowledged writes, a sampler of
 * pg_stat_activity, a watchdog, and process counters (threads, fds, RSS).
 * No test framework here: callers assert on the numbers.
 */
#ifndef AGEC_FAULT_LOAD_H
#define AGEC_FAULT_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "proxy.h"
#include "testbase.h"

/* agec_status values are 0..AGEC_ERR_CANCELLED. */
#define FL_NSTATUS (AGEC_ERR_CANCELLED + 1)

/* ---- a PostgreSQL 15 cluster of our own (scripts/pg-test-server) ---- */
typedef struct fl_cluster {
    char scripts[512];
    char dir[256];
    int port;
} fl_cluster;

/* initdb + start into a fresh mktemp directory. false on failure. */
bool fl_cluster_start(fl_cluster *c, const char *scripts_dir);
/* "stop-server", "start-server" or "restart". */
bool fl_cluster_do(const fl_cluster *c, const char *what);
/* Stop (if running) and remove the directory. Safe to call twice. */
void fl_cluster_remove(fl_cluster *c);
/* A cluster of our own with our proxy in front of it, for tests of one
 * behaviour: conninfo reaches it through the proxy as user postgres. */
typedef struct fl_proxied {
    fl_cluster cl;
    fproxy *px;
    char conninfo[256];
} fl_proxied;
/* Start both; conninfo gets `extra` appended (e.g. "sslmode=disable", or ""
 * for libpq's defaults). false (message on stderr) on failure. */
bool fl_proxied_start(fl_proxied *t, const char *scripts_dir, const char *extra);
/* cfg = the defaults, conninfo through the proxy, AGE off, events ignored. */
void fl_proxied_pool_config(const fl_proxied *t, agec_pool_config *cfg);
/* Stop the proxy and remove the cluster. */
void fl_proxied_stop(fl_proxied *t);

/* A superuser libpq connection straight to the server (not through a proxy),
 * or NULL (message on stderr). */
PGconn *fl_admin(const fl_cluster *c);
/* Run sql; false (message on stderr) on error. */
bool fl_sql(PGconn *c, const char *sql);
/* First value of a query as a number; -1 on error. */
long fl_int(PGconn *c, const char *sql);
/* Tables fault_a(id, pad) and fault_b(id), usable by agec_pw. */
bool fl_schema(PGconn *admin);
/* max_connections = n with no superuser reserve, by ALTER SYSTEM and a
 * restart; admin is reconnected. */
bool fl_cluster_max_connections(const fl_cluster *c, PGconn *admin, int n);
/* Backends with this application_name (-1 on error). */
int fl_count_app(PGconn *admin, const char *app);
/* pg_terminate_backend each of them; returns how many. */
int fl_kill_app(PGconn *admin, const char *app);
/* Open superuser connections until the server refuses with "too many
 * clients" (53300), at most cap; returns how many are held in held[] (free
 * them with fl_free_held), or -1 if the server refused for another reason. */
int fl_fill_server(const fl_cluster *c, PGconn **held, int cap);
void fl_free_held(PGconn **held, int n);

/* ---- the pool under test ---- */
/* The short timeouts of every fault run. */
#define FL_CONNECT_MS 400
#define FL_ACQUIRE_MS 1000
#define FL_STMT_MS 500
#define FL_RESET_MS 500
#define FL_OPEN_MS 1000

/* agec_pool_config_init, then conninfo, application_name, name, max, min,
 * the FL_ timeouts, a breaker that opens after 3 failures, backoff 50..400
 * ms, AGE off, no event output. The strings must outlive the open. */
void fl_pool_config(agec_pool_config *cfg, const char *conninfo, const char *app, const char *name,
                    int max, int min);

/* ---- the load ---- */
typedef struct fl_load_cfg {
    agec_pool *pool;
    int threads;
    int acquire_timeout_ms;
    int stmt_timeout_ms;   /* agec_query_opts.timeout_ms of every statement */
    int release_budget_ms; /* a release may take this long (the pool's reset_timeout_ms) */
    int pace_ms;           /* pause between operations of one thread */
} fl_load_cfg;

/* Counts since the load started (or a snapshot difference, fl_counts_sub). */
typedef struct fl_counts {
    uint64_t ops, writes_ok, reads_ok;
    uint64_t acquire[FL_NSTATUS]; /* by status of the acquire */
    uint64_t query[FL_NSTATUS];   /* by status of the first failing statement (OK: none) */
    int64_t breaker_max_ms;       /* slowest BREAKER_OPEN acquire begun while it was open */
    uint64_t breaker_fast_fails;  /* such acquires */
    uint64_t breaker_over_10ms;   /* ... of which took longer than 10 ms */
} fl_counts;

/* Facts kept over the whole run. */
typedef struct fl_facts {
    int64_t worst_overrun_ms; /* max over calls of (duration - deadline) */
    char worst_call[96];
    int64_t last_acquire_ok_ms; /* agec_test_now_ms-like clock of the latest successful acquire */
    int64_t last_write_ok_ms;   /* and of the latest acknowledged COMMIT */
    char first_msg[FL_NSTATUS][320]; /* first message seen per status (acquire or query) */
} fl_facts;

typedef struct fl_load fl_load;

fl_load *fl_load_start(const fl_load_cfg *cfg);
/* Make every operation also run pg_sleep(ms) inside it (0 = off). */
void fl_load_set_slow(fl_load *l, int ms);
fl_counts fl_load_counts(fl_load *l);
fl_facts fl_load_facts(fl_load *l);
void fl_load_stop(fl_load *l); /* join the threads; data stays readable */
void fl_load_free(fl_load *l);
/* a -= b field by field (a phase's counts from two snapshots). */
void fl_counts_sub(fl_counts *a, const fl_counts *b);
/* Bit mask of the statuses with a non-zero count. */
unsigned fl_mask(const uint64_t by_status[FL_NSTATUS]);
/* "OK=12 AGEC_ERR_UNREACHABLE=3 ..." */
void fl_format_counts(const uint64_t by_status[FL_NSTATUS], char *buf, size_t cap);

/* Every id acknowledged as committed must be in both tables, and no id may
 * be in only one of them. Fills counts; false on any violation (or a query
 * error), with a description in msg. */
typedef struct fl_verify {
    long acked, missing, half;
    char msg[256];
} fl_verify;
bool fl_verify_writes(PGconn *admin, fl_load *l, fl_verify *out);

/* ---- pg_stat_activity sampler: backends with one application_name ---- */
typedef struct fl_sampler fl_sampler;
fl_sampler *fl_sampler_start(const fl_cluster *c, const char *app, int every_ms);
int fl_sampler_max(fl_sampler *s);
int fl_sampler_samples(fl_sampler *s);
/* While excused, samples still run (fl_sampler_last) but do not count
 * toward fl_sampler_max: for the moments after the proxy cut connections,
 * when their server processes, which the pool cannot see behind the cut,
 * are still exiting. The caller then waits for the count to come down. */
void fl_sampler_excuse(fl_sampler *s, bool excused);
/* The latest sample. */
int fl_sampler_last(fl_sampler *s);
void fl_sampler_stop(fl_sampler *s);

/* ---- watchdog: abort with a message when not disarmed in time ---- */
typedef struct fl_watchdog fl_watchdog;
fl_watchdog *fl_watchdog_start(const char *what, int seconds);
/* What the test is doing now (printed if it fires). */
void fl_watchdog_phase(fl_watchdog *w, const char *phase);
void fl_watchdog_stop(fl_watchdog *w);

/* ---- process ---- */
long fl_rss_kb(void); /* VmRSS */

#endif
