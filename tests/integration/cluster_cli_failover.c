/* Failover under load, from outside: see cluster_cli_failover.h. */
#include "cluster_cli_failover.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define APP "agec-fo-bench"   /* application_name of the bench's connections */
#define SAMPLE_EVERY_MS 20    /* the connection sampler's period */
#define WAIT_MS 90000         /* generous: a hang check on a loaded machine */
#define DEADLINE_SLACK_MS 250 /* the promise under test */

typedef struct fo_run_state {
    const fo_opts *o;
    fo_result *r;
    char dir[240];  /* the cluster (pg-cluster-server) */
    char work[200]; /* the record, the bench's output */
    int port[3];
    char dsn[400];
    /* timeline in force before promotion k is tli[k]; after, tli[k + 1] */
    long long tli[FO_MAX_ROUNDS + 1];
    int primary_of[FO_MAX_ROUNDS + 1]; /* which node was primary in that span */
    double promote_start[FO_MAX_ROUNDS], promote_end[FO_MAX_ROUNDS]; /* epoch ms */
    double stopped[FO_MAX_ROUNDS];    /* the old primary's stop returned */
    struct sampler_arg *sampler_args; /* [3] */
    pthread_t sampler[3];
    bool samplers; /* running */
    atomic_bool sampler_stop;
    pthread_mutex_t mu; /* the samplers' results, problems */
    bool frozen;        /* node 2 may be stopped (SIGSTOP) */
    /* Every node's timeline as the sampler saw it (sampler thread only
     * until it is joined): what a standby said while its WAL receiver
     * streamed, which its later reports may not show (check_reads). */
    struct tli_sample {
        double at;
        int node;
        long long tli;
    } * samples;
    size_t nsamples, samples_cap;
    pid_t bench;
} fo_run_state;

static double epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000L }, NULL);
}

static void say(const fo_run_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const fo_run_state *s, const char *fmt, ...)
{
    if (s->o->log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->o->log, fmt, ap);
    va_end(ap);
    fputc('\n', s->o->log);
    fflush(s->o->log);
}

static int fail(fo_run_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(fo_run_state *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->r->failure, sizeof s->r->failure, fmt, ap);
    va_end(ap);
    return -1;
}

static void problem(fo_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(fo_result *r, const char *fmt, ...)
{
    size_t len = strlen(r->problems);
    if (len + 200 > sizeof r->problems)
        return; /* the first ones are enough */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problems + len, sizeof r->problems - len, fmt, ap);
    va_end(ap);
    len = strlen(r->problems);
    if (len + 1 < sizeof r->problems) {
        r->problems[len] = '\n';
        r->problems[len + 1] = '\0';
    }
}

static int script(fo_run_state *s, const char *verb, const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s/pg-cluster-server %s %s %s >>%s/cluster.log 2>&1",
             s->o->scripts_dir, verb, s->dir, args ? args : "", s->work);
    return system(cmd);
}

static PGconn *node_conn(const fo_run_state *s, int n)
{
    char ci[200];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5 "
             "application_name=agec-fo-check",
             s->port[n]);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* One value of a one-row query on node n (a fresh connection); false on
 * any error. */
static bool node_value(const fo_run_state *s, int n, const char *sql, char *out, size_t cap)
{
    PGconn *c = node_conn(s, n);
    if (c == NULL)
        return false;
    PGresult *res = PQexec(c, sql);
    bool ok =
        PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (ok)
        snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(c);
    return ok;
}

static bool node_exec(const fo_run_state *s, int n, const char *sql)
{
    PGconn *c = node_conn(s, n);
    if (c == NULL)
        return false;
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    PQfinish(c);
    return ok;
}

/* Wait (WAIT_MS at most) until `sql` on node n returns `want`. */
static bool wait_value(const fo_run_state *s, int n, const char *sql, const char *want)
{
    double end = mono_ms() + WAIT_MS;
    char v[64];
    while (mono_ms() < end) {
        if (node_value(s, n, sql, v, sizeof v) && strcmp(v, want) == 0)
            return true;
        sleep_ms(50);
    }
    return false;
}

static long long node_count(const fo_run_state *s, int n)
{
    char v[32];
    return node_value(s, n, "SELECT count(*) FROM fo_writes", v, sizeof v) ? atoll(v) : -1;
}

/* Wait until node n has more than `above` rows. */
static bool wait_rows_above(const fo_run_state *s, int n, long long above)
{
    double end = mono_ms() + WAIT_MS;
    while (mono_ms() < end) {
        if (node_count(s, n) > above)
            return true;
        sleep_ms(20);
    }
    return false;
}

/* A node's timeline, as agec bench --record asks it (bench_record.c). */
#define NODE_TLI_EXPR                                                                         \
    "CASE WHEN NOT pg_is_in_recovery() THEN ('x' || substr(pg_walfile_name("                  \
    "pg_current_wal_lsn()), 1, 8))::bit(32)::bigint ELSE GREATEST((SELECT received_tli FROM " \
    "pg_stat_wal_receiver WHERE status = 'streaming' AND received_tli > 0), "                 \
    "(pg_control_checkpoint()).timeline_id, "                                                 \
    "NULLIF((pg_control_recovery()).min_recovery_end_timeline, 0)) END"

static void add_sample(fo_run_state *s, int node, long long tli)
{
    if (s->nsamples == s->samples_cap) {
        size_t cap = s->samples_cap ? s->samples_cap * 2 : 4096;
        struct tli_sample *p = realloc(s->samples, cap * sizeof *p);
        if (p == NULL)
            return;
        s->samples = p;
        s->samples_cap = cap;
    }
    s->samples[s->nsamples++] = (struct tli_sample){ epoch_ms(), node, tli };
}

static const char TLI_SQL[] =
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint";

/* ---- the connection sampler ---------------------------------------------- */

/* One query within ms (a frozen server never answers): the last result,
 * or NULL on an error or past the time (then the connection is useless). */
static PGresult *timed_query(PGconn *c, const char *sql, int ms)
{
    if (!PQsendQuery(c, sql))
        return NULL;
    double end = mono_ms() + ms;
    PGresult *last = NULL;
    for (;;) {
        while (!PQisBusy(c)) {
            PGresult *res = PQgetResult(c);
            if (res == NULL)
                return last;
            PQclear(last);
            last = res;
        }
        double left = end - mono_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN, .revents = 0 };
        if (poll(&pfd, 1, (int)left + 1) < 0 || !PQconsumeInput(c))
            break;
    }
    PQclear(last);
    return NULL;
}

typedef struct sampler_arg {
    fo_run_state *s;
    int node;
} sampler_arg;

/* One thread per node, so that a node that does not answer (frozen, or
 * down) does not hold up the others' samples. */
static void *sampler_main(void *arg)
{
    fo_run_state *s = ((sampler_arg *)arg)->s;
    int n = ((sampler_arg *)arg)->node;
    fo_result *r = s->r;
    PGconn *c = NULL;
    while (!atomic_load(&s->sampler_stop)) {
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = node_conn(s, n); /* NULL while the node is down */
        }
        PGresult *res = c == NULL
                            ? NULL
                            : timed_query(c,
                                          "SELECT count(*), string_agg(pid || ':' || "
                                          "coalesce(client_port, 0) || ':' || state, ' '), "
                                          "(" NODE_TLI_EXPR ") FROM "
                                          "pg_stat_activity WHERE application_name = '" APP "'",
                                          1000);
        if (res == NULL && c != NULL) {
            PQfinish(c); /* no answer in time: a new connection next time */
            c = NULL;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            int k = atoi(PQgetvalue(res, 0, 0));
            pthread_mutex_lock(&s->mu);
            r->conn_samples++;
            if (!PQgetisnull(res, 0, 2))
                add_sample(s, n, atoll(PQgetvalue(res, 0, 2)));
            if (k > r->max_conns[n])
                r->max_conns[n] = k;
            if (k > s->o->pool_max) {
                r->conn_violations++;
                problem(r, "node %d: %d connections of the bench (max %d) at %.0f: %s", n, k,
                        s->o->pool_max, epoch_ms(), PQgetvalue(res, 0, 1));
            }
            pthread_mutex_unlock(&s->mu);
        }
        PQclear(res);
        sleep_ms(SAMPLE_EVERY_MS);
    }
    PQfinish(c);
    return NULL;
}

static int start_samplers(fo_run_state *s)
{
    atomic_store(&s->sampler_stop, false);
    for (int n = 0; n < 3; n++) {
        s->sampler_args[n] = (sampler_arg){ s, n };
        if (pthread_create(&s->sampler[n], NULL, sampler_main, &s->sampler_args[n]) != 0) {
            atomic_store(&s->sampler_stop, true);
            for (int i = 0; i < n; i++)
                pthread_join(s->sampler[i], NULL);
            return fail(s, "pthread_create failed");
        }
    }
    s->samplers = true;
    return 0;
}

static void stop_samplers(fo_run_state *s)
{
    if (!s->samplers)
        return;
    atomic_store(&s->sampler_stop, true);
    for (int n = 0; n < 3; n++)
        pthread_join(s->sampler[n], NULL);
    s->samplers = false;
}

/* ---- the bench ------------------------------------------------------------ */

static int start_bench(fo_run_state *s)
{
    char pool_max[16], writers[16], readers[16], acq[16], stmt[16], record[260], out[260],
        errp[260];
    snprintf(pool_max, sizeof pool_max, "%d", s->o->pool_max);
    snprintf(writers, sizeof writers, "%d", s->o->writers);
    snprintf(readers, sizeof readers, "%d", s->o->readers);
    snprintf(acq, sizeof acq, "%d", s->o->acquire_timeout_ms);
    snprintf(stmt, sizeof stmt, "%d", s->o->statement_timeout_ms);
    snprintf(record, sizeof record, "%s/record.jsonl", s->work);
    snprintf(out, sizeof out, "%s/bench.out", s->work);
    snprintf(errp, sizeof errp, "%s/bench.err", s->work);
    pid_t pid = fork();
    if (pid < 0)
        return fail(s, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (freopen(out, "w", stdout) == NULL || freopen(errp, "w", stderr) == NULL)
            _exit(126);
        execl(s->o->agec_path, "agec", "--dsn", s->dsn, "--pool-max", pool_max, "--acquire-timeout",
              acq, "--statement-timeout", stmt, "--connect-timeout", "1000", "--age-mode", "off",
              "--format", "json", "-q", "bench", "--sql", "INSERT INTO fo_writes (k) VALUES ($1)",
              "--unique-key", "--threads", writers, "--read-sql", "SELECT count(*) FROM fo_writes",
              "--read-threads", readers, "--duration", "3600", "--record", record, (char *)NULL);
        _exit(127);
    }
    s->bench = pid;
    return 0;
}

/* SIGINT, then wait (WAIT_MS) for its summary and exit. */
static int stop_bench(fo_run_state *s)
{
    if (s->bench <= 0)
        return 0;
    kill(s->bench, SIGINT);
    double end = mono_ms() + WAIT_MS;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(s->bench, &status, WNOHANG);
        if (w == s->bench)
            break;
        if (mono_ms() > end) {
            kill(s->bench, SIGKILL);
            waitpid(s->bench, &status, 0);
            s->bench = 0;
            return fail(s, "agec bench did not end within %d ms of SIGINT", WAIT_MS);
        }
        sleep_ms(20);
    }
    s->bench = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(s, "agec bench ended with status %d (see %s/bench.err)", status, s->work);
    return 0;
}

static bool bench_alive(fo_run_state *s)
{
    int status;
    return s->bench > 0 && waitpid(s->bench, &status, WNOHANG) == 0;
}

/* ---- the record ------------------------------------------------------------ */

typedef struct call {
    bool read, ok;
    char key[64], node[64];
    double start, end, ms, acquire_ms, release_ms, deadline_ms, acquire_deadline_ms;
    long long tli;
    char code[40];
} call;

/* The text after "\"name\": " in line, or NULL. */
static const char *field(const char *line, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", name);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}

static void field_str(const char *line, const char *name, char *out, size_t cap)
{
    const char *p = field(line, name);
    out[0] = '\0';
    if (p == NULL || *p != '"')
        return;
    p++;
    size_t n = strcspn(p, "\"");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static double field_num(const char *line, const char *name, double dflt)
{
    const char *p = field(line, name);
    if (p == NULL || strncmp(p, "null", 4) == 0)
        return dflt;
    return strtod(p, NULL);
}

static bool parse_call(const char *line, call *c)
{
    memset(c, 0, sizeof *c);
    char kind[16];
    field_str(line, "kind", kind, sizeof kind);
    if (strcmp(kind, "read") != 0 && strcmp(kind, "write") != 0)
        return false;
    c->read = kind[0] == 'r';
    const char *ok = field(line, "ok");
    c->ok = ok != NULL && strncmp(ok, "true", 4) == 0;
    field_str(line, "key", c->key, sizeof c->key);
    field_str(line, "node", c->node, sizeof c->node);
    field_str(line, "code", c->code, sizeof c->code);
    c->start = field_num(line, "start", 0);
    c->end = field_num(line, "end", 0);
    c->ms = field_num(line, "ms", 0);
    c->acquire_ms = field_num(line, "acquire_ms", 0);
    c->release_ms = field_num(line, "release_ms", 0);
    c->deadline_ms = field_num(line, "deadline_ms", -1);
    c->acquire_deadline_ms = field_num(line, "acquire_deadline_ms", -1);
    c->tli = (long long)field_num(line, "timeline", -1);
    return c->start > 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys on node n (sorted, malloc'd); -1 on error. */
static long node_keys(const fo_run_state *s, int n, char ***out)
{
    PGconn *c = node_conn(s, n);
    if (c == NULL)
        return -1;
    PGresult *res = PQexec(c, "SELECT k FROM fo_writes");
    long rows = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        rows = PQntuples(res);
        char **keys = malloc(sizeof *keys * (size_t)(rows ? rows : 1));
        for (long i = 0; keys && i < rows; i++)
            keys[i] = strdup(PQgetvalue(res, (int)i, 0));
        qsort(keys, (size_t)rows, sizeof *keys, cmp_str);
        *out = keys;
    }
    PQclear(res);
    PQfinish(c);
    return rows;
}

static void free_keys(char **keys, long n)
{
    for (long i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* Index of timeline t in s->tli[0..rounds], or -1. */
static int tli_index(const fo_run_state *s, long long t)
{
    for (int j = 0; j <= s->r->rounds_done; j++)
        if (s->tli[j] == t)
            return j;
    return -1;
}

/* A call's node (0..2) and timeline, for the reads' check. */
typedef struct seen {
    double start, end;
    int node;
    long long tli;
    bool read;
} seen;

static int cmp_end(const void *a, const void *b)
{
    double x = ((const seen *)a)->end, y = ((const seen *)b)->end;
    return (x > y) - (x < y);
}

static int cmp_start(const void *a, const void *b)
{
    double x = ((const seen *)a)->start, y = ((const seen *)b)->start;
    return (x > y) - (x < y);
}

static int node_of(const fo_run_state *s, const char *node)
{
    const char *colon = strrchr(node, ':');
    int port = colon ? atoi(colon + 1) : -1;
    for (int n = 0; n < 3; n++)
        if (s->port[n] == port)
            return n;
    return -1;
}

/*
 * A read is off the current timeline when its node's timeline T (as the
 * node said right after the read: bench --record) was not current at any
 * time during the read: it ended before T was made, or it began after the
 * cluster knew T's successor (its first write there was acknowledged).
 * A node's timeline never goes back (a standby replays forward; pg_rewind
 * moves it to the source's newer one), but what a standby says is its
 * WAL receiver's timeline while it streams, else its last restartpoint's,
 * which lags behind a timeline switch until the next restartpoint: when
 * its primary stops, a standby on timeline 2 that has made no restartpoint
 * since it followed says 1. So the timeline taken for a read is the
 * highest its node reported before the read began, in the bench's calls or
 * to the sampler (every 20 ms, also while the node's WAL receiver
 * streamed). No node goes back in this run: the old primary rejoins only
 * through pg_rewind, onto the newer timeline.
 */
static int check_reads(fo_run_state *s, FILE *f, const double *first_write)
{
    fo_result *r = s->r;
    size_t n = 0, cap = 0;
    seen *v = NULL;
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        call c;
        if (!parse_call(line, &c) || !c.ok || c.tli < 0 || node_of(s, c.node) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            seen *p = realloc(v, cap * sizeof *v);
            if (p == NULL) {
                free(v);
                return fail(s, "out of memory");
            }
            v = p;
        }
        v[n++] = (seen){ c.start, c.end, node_of(s, c.node), c.tli, c.read };
    }
    size_t m = n + s->nsamples;
    seen *by_end = malloc((m ? m : 1) * sizeof *by_end);
    if (by_end == NULL) {
        free(v);
        return fail(s, "out of memory");
    }
    memcpy(by_end, v, n * sizeof *v);
    for (size_t i = 0; i < s->nsamples; i++)
        by_end[n + i] = (seen){ s->samples[i].at, s->samples[i].at, s->samples[i].node,
                                s->samples[i].tli, false };
    qsort(by_end, m, sizeof *by_end, cmp_end);
    qsort(v, n, sizeof *v, cmp_start);
    long long highest[3] = { -1, -1, -1 };
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        const seen *c = &v[i];
        for (; e < m && by_end[e].end < c->start; e++)
            if (by_end[e].tli > highest[by_end[e].node])
                highest[by_end[e].node] = by_end[e].tli;
        if (!c->read)
            continue;
        long long tli = c->tli > highest[c->node] ? c->tli : highest[c->node];
        bool standby = true;
        for (int j = 0; j <= r->rounds_done; j++)
            if (s->primary_of[j] == c->node && s->tli[j] == tli)
                standby = false;
        r->reads_on_standby += standby;
        int j = tli_index(s, tli);
        /* Timeline tli[j] is current from promotion j-1 to promotion j;
         * past promotion j the cluster may answer from it only until it
         * knows the new primary, which it did when it acknowledged the
         * first write there. */
        const char *why = NULL;
        if (j < 0)
            why = "an unknown timeline";
        else if (j > 0 && c->end < s->promote_start[j - 1])
            why = "a timeline not yet made";
        else if (j < r->rounds_done && c->start > first_write[j + 1])
            why = "a timeline left behind";
        if (why != NULL) {
            r->off_timeline_reads++;
            problem(r, "read at %.3f-%.3f answered by node %d on timeline %lld (said %lld): %s",
                    c->start, c->end, c->node, tli, c->tli, why);
        }
    }
    free(by_end);
    free(v);
    return 0;
}

static int check_record(fo_run_state *s)
{
    fo_result *r = s->r;
    int last = s->primary_of[r->rounds_done];
    char path[400];
    snprintf(path, sizeof path, "%s/record.jsonl", s->work);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fail(s, "cannot read %s", path);
    char **keys = NULL;
    long nkeys = node_keys(s, last, &keys);
    if (nkeys < 0) {
        fclose(f);
        return fail(s, "cannot read the keys of node %d", last);
    }
    double first_write[FO_MAX_ROUNDS + 1];
    for (int j = 0; j <= FO_MAX_ROUNDS; j++)
        first_write[j] = 0;
    char line[1024];
    /* First pass: writes (acknowledged keys, first write per timeline),
     * deadlines. */
    while (fgets(line, sizeof line, f) != NULL) {
        call c;
        if (!parse_call(line, &c)) {
            problem(r, "unreadable record line: %.200s", line);
            r->overruns++; /* counted somewhere that fails the run */
            continue;
        }
        /* The whole call, its acquire, and its statement (the budget less
         * the acquire timeout is the statement timeout). */
        if (c.ms > c.deadline_ms + DEADLINE_SLACK_MS ||
            c.acquire_ms > c.acquire_deadline_ms + DEADLINE_SLACK_MS ||
            c.ms - c.acquire_ms > c.deadline_ms - c.acquire_deadline_ms + DEADLINE_SLACK_MS) {
            r->overruns++;
            problem(r, "%s took %.1f ms (acquire %.1f ms; budget %.0f, acquire %.0f) from %.3f: %s",
                    c.read ? "read" : "write", c.ms, c.acquire_ms, c.deadline_ms,
                    c.acquire_deadline_ms, c.start, c.code);
        }
        if (c.ms - c.deadline_ms > r->worst_over_ms)
            r->worst_over_ms = c.ms - c.deadline_ms;
        if (c.ms > r->longest_ms)
            r->longest_ms = c.ms;
        if (!c.ok && c.acquire_ms >= c.acquire_deadline_ms - 50)
            r->deadline_hits++;
        if (strcmp(c.code, "AGEC_ERR_TIMEOUT") == 0)
            r->timeouts++;
        if (c.release_ms > r->max_release_ms)
            r->max_release_ms = c.release_ms;
        if (c.read) {
            if (c.ok)
                r->reads_ok++;
            else
                r->reads_failed++;
            for (int k = 0; c.ok && k < r->rounds_done; k++)
                if (c.start >= s->stopped[k] + 500 && c.end <= s->promote_start[k])
                    r->reads_in_outage++;
            continue;
        }
        if (!c.ok) {
            r->writes_failed++;
            continue;
        }
        r->writes_ok++;
        const char *k = c.key;
        if (bsearch(&k, keys, (size_t)nkeys, sizeof *keys, cmp_str) == NULL) {
            r->missing_writes++;
            problem(r, "write %s acknowledged at %.3f by %s (timeline %lld) is not on node %d",
                    c.key, c.end, c.node, c.tli, last);
        }
        int j = tli_index(s, c.tli);
        if (j >= 0 && (first_write[j] == 0 || c.end < first_write[j]))
            first_write[j] = c.end;
    }
    free_keys(keys, nkeys);
    for (int k = 0; k < r->rounds_done; k++) {
        if (first_write[k + 1] == 0) {
            fclose(f);
            return fail(s, "no write acknowledged on timeline %lld (failover %d)", s->tli[k + 1],
                        k + 1);
        }
        r->first_write_ms[k] = first_write[k + 1] - s->promote_start[k];
    }
    /* Second pass: reads against the timelines. */
    rewind(f);
    int rc = check_reads(s, f, first_write);
    fclose(f);
    return rc;
}

/* Every node has the last primary's rows once it has replayed its WAL. */
static int check_nodes(fo_run_state *s)
{
    fo_result *r = s->r;
    int last = s->primary_of[r->rounds_done];
    char lsn[64], sql[200];
    if (!node_value(s, last, "SELECT pg_current_wal_lsn()", lsn, sizeof lsn))
        return fail(s, "cannot read node %d's WAL position", last);
    long long want = node_count(s, last);
    for (int n = 0; n < 3; n++) {
        if (n == last)
            continue;
        snprintf(sql, sizeof sql, "SELECT pg_last_wal_replay_lsn() >= '%s'", lsn);
        if (!wait_value(s, n, sql, "t"))
            return fail(s, "node %d did not replay up to %s", n, lsn);
        long long got = node_count(s, n);
        if (got != want) {
            r->node_row_mismatch++;
            problem(r, "node %d has %lld rows, the primary (node %d) %lld", n, got, last, want);
        }
    }
    return 0;
}

/* ---- the run ----------------------------------------------------------------- */

static int round_trip(fo_run_state *s, int k)
{
    int p = s->primary_of[k], c = p == 0 ? 1 : 0; /* node 2 always follows */
    char args[32], sql[200];
    long long before = node_count(s, p);
    if (before < 0 || !wait_rows_above(s, p, before + 20))
        return fail(s, "failover %d: the bench does not write on node %d", k + 1, p);
    snprintf(args, sizeof args, "%d", p);
    say(s, "failover %d: stopping node %d (primary, timeline %lld)", k + 1, p, s->tli[k]);
    if (script(s, "stop-node", args) != 0)
        return fail(s, "stop-node %d failed", p);
    s->stopped[k] = epoch_ms();
    snprintf(args, sizeof args, "%d", c);
    if (k % 2 == 1 && s->o->outage_ms > 0) {
        say(s, "failover %d: no primary for %d ms", k + 1, s->o->outage_ms);
        sleep_ms(s->o->outage_ms); /* the outage itself, not a wait for something */
    }
    s->promote_start[k] = epoch_ms();
    if (script(s, "promote", args) != 0)
        return fail(s, "promote %d failed", c);
    s->promote_end[k] = epoch_ms();
    s->r->promote_ms[k] = s->promote_end[k] - s->promote_start[k];
    char v[32];
    if (!node_value(s, c, TLI_SQL, v, sizeof v))
        return fail(s, "cannot read node %d's timeline", c);
    s->tli[k + 1] = atoll(v);
    s->primary_of[k + 1] = c;
    s->r->rounds_done = k + 1;
    long long at = node_count(s, c);
    if (at < 0 || !wait_rows_above(s, c, at))
        return fail(s, "failover %d: no write reached node %d after its promotion", k + 1, c);
    snprintf(args, sizeof args, "2 %d", c);
    if (script(s, "follow", args) != 0)
        return fail(s, "follow 2 %d failed", c);
    snprintf(args, sizeof args, "%d %d", p, c);
    if (script(s, "rejoin", args) != 0)
        return fail(s, "rejoin %d %d (pg_rewind) failed", p, c);
    if (!wait_value(s, c, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                    "2"))
        return fail(s, "failover %d: the standbys do not stream from node %d", k + 1, c);
    /* Node p (application_name s<p>) becomes the synchronous standby, as
     * node 1 was at the start: the next failover promotes it. */
    snprintf(sql, sizeof sql, "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s%d)'", p);
    if (!node_exec(s, c, sql) || !node_exec(s, c, "SELECT pg_reload_conf()") ||
        !wait_value(s, c, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                    "1"))
        return fail(s, "failover %d: node %d did not become synchronous", k + 1, p);
    say(s,
        "failover %d: node %d promoted (timeline %lld, pg_ctl promote %.0f ms); node %d "
        "rewound and streaming",
        k + 1, c, s->tli[k + 1], s->r->promote_ms[k], p);
    if (!bench_alive(s))
        return fail(s, "agec bench ended early (see %s/bench.err)", s->work);
    return 0;
}

/* SIGSTOP (or SIGCONT) node n's postmaster, then its children (a backend
 * may exit meanwhile: their kill is not checked). */
static int signal_node(fo_run_state *s, int n, const char *sig)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd,
             "pm=$(head -n 1 %s/node%d/data/postmaster.pid) && kill -%s $pm && "
             "{ kill -%s $(pgrep -P $pm) 2>/dev/null; true; }",
             s->dir, n, sig, sig);
    return system(cmd);
}

/* Transactions committed on node n (its own statistics: on a standby, the
 * reads it answered, plus this test's own probes). */
static long long node_commits(const fo_run_state *s, int n)
{
    char v[32];
    return node_value(s, n,
                      "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                      v, sizeof v)
               ? atoll(v)
               : -1;
}

/* Wait until node n answers the bench's reads: more than 50 commits in
 * 200 ms, far more than this test's own probes. After the last failover a
 * standby may still be out of the read rotation (catching up, lag guard):
 * frozen then, no read would be in flight on it. */
static bool wait_reads_on(const fo_run_state *s, int n)
{
    double end = mono_ms() + WAIT_MS;
    long long prev = node_commits(s, n);
    while (mono_ms() < end) {
        sleep_ms(200);
        long long now = node_commits(s, n);
        if (prev >= 0 && now > prev + 50)
            return true;
        prev = now;
    }
    return false;
}

/* Freeze node 2 under the bench's reads, then let it go. */
static int freeze_standby(fo_run_state *s)
{
    if (!wait_reads_on(s, 2))
        return fail(s, "node 2 answers no reads of the bench before the freeze");
    say(s, "freezing node 2 (a standby) for %d ms", s->o->freeze_ms);
    s->frozen = true;
    int st = signal_node(s, 2, "STOP");
    if (st == 0)
        sleep_ms(s->o->freeze_ms); /* the freeze itself, not a wait for something */
    if (signal_node(s, 2, "CONT") != 0)
        return fail(s, "could not SIGCONT node 2: it stays frozen");
    s->frozen = false;
    if (st != 0)
        return fail(s, "could not SIGSTOP node 2");
    int p = s->primary_of[s->r->rounds_done];
    long long at = node_count(s, p);
    if (at < 0 || !wait_rows_above(s, p, at + 20))
        return fail(s, "the bench does not write on node %d after the freeze", p);
    return 0;
}

static int run_all(fo_run_state *s)
{
    const fo_opts *o = s->o;
    snprintf(s->dir, sizeof s->dir, "%s/agec-cluster.XXXXXX", s->work);
    if (mkdtemp(s->dir) == NULL)
        return fail(s, "mkdtemp: %s", strerror(errno));
    if (script(s, "start", "") != 0) {
        s->dir[0] = '\0'; /* the script removes what it made */
        return fail(s, "pg-cluster-server start failed (see %s/cluster.log)", s->work);
    }
    for (int n = 0; n < 3; n++) {
        char path[400];
        snprintf(path, sizeof path, "%s/node%d/port", s->dir, n);
        FILE *f = fopen(path, "r");
        bool ok = f != NULL && fscanf(f, "%d", &s->port[n]) == 1;
        if (f != NULL)
            fclose(f);
        if (!ok)
            return fail(s, "cannot read %s", path);
    }
    snprintf(s->dsn, sizeof s->dsn,
             "host=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%d,%d user=postgres dbname=postgres "
             "application_name=" APP,
             s->port[0], s->port[1], s->port[2]);
    if (!node_exec(s, 0, "CREATE TABLE fo_writes (k text PRIMARY KEY)"))
        return fail(s, "CREATE TABLE on node 0 failed");
    char v[32];
    if (!node_value(s, 0, TLI_SQL, v, sizeof v))
        return fail(s, "cannot read node 0's timeline");
    s->tli[0] = atoll(v);
    s->primary_of[0] = 0;
    for (int n = 1; n < 3; n++)
        if (!wait_value(s, n, "SELECT count(*) FROM pg_class WHERE relname = 'fo_writes'", "1"))
            return fail(s, "node %d did not replay the table", n);
    if (start_samplers(s) != 0)
        return -1;
    say(s,
        "cluster :%d :%d :%d; agec bench: %d writers, %d readers, --pool-max %d, "
        "--acquire-timeout %d, --statement-timeout %d",
        s->port[0], s->port[1], s->port[2], o->writers, o->readers, o->pool_max,
        o->acquire_timeout_ms, o->statement_timeout_ms);
    int rc = start_bench(s);
    for (int k = 0; rc == 0 && k < o->rounds; k++)
        rc = round_trip(s, k);
    if (rc == 0) { /* writes go on after the last rejoin */
        int p = s->primary_of[s->r->rounds_done];
        long long at = node_count(s, p);
        if (at < 0 || !wait_rows_above(s, p, at + 20))
            rc = fail(s, "the bench does not write on node %d after the last failover", p);
    }
    if (rc == 0 && o->freeze_ms > 0)
        rc = freeze_standby(s);
    int brc = stop_bench(s);
    stop_samplers(s);
    if (rc != 0 || brc != 0)
        return -1;
    if (check_record(s) != 0 || check_nodes(s) != 0)
        return -1;
    return 0;
}

void fo_opts_init(fo_opts *o, const char *scripts_dir, const char *agec_path, int rounds)
{
    *o = (fo_opts){ .scripts_dir = scripts_dir,
                    .agec_path = agec_path,
                    .rounds = rounds,
                    .pool_max = 3,
                    .writers = 4,
                    .readers = 4,
                    .acquire_timeout_ms = 2000,
                    .statement_timeout_ms = 2000,
                    .log = stdout };
}

int fo_run(const fo_opts *o, fo_result *r)
{
    memset(r, 0, sizeof *r);
    fo_run_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(r->failure, sizeof r->failure, "out of memory");
        return -1;
    }
    s->o = o;
    s->r = r;
    r->worst_over_ms = -1e9;
    if (o->rounds < 1 || o->rounds > FO_MAX_ROUNDS) {
        free(s);
        snprintf(r->failure, sizeof r->failure, "rounds must be 1..%d", FO_MAX_ROUNDS);
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(s->work, sizeof s->work, "%s/agec-fo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(s->work) == NULL) {
        free(s);
        snprintf(r->failure, sizeof r->failure, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    chmod(s->work, 0755); /* the servers run as user postgres under it */
    pthread_mutex_init(&s->mu, NULL);
    struct sampler_arg args[3];
    s->sampler_args = args;
    int rc = run_all(s);
    if (s->frozen)
        (void)signal_node(s, 2, "CONT");
    if (s->bench > 0) {
        kill(s->bench, SIGKILL);
        waitpid(s->bench, NULL, 0);
    }
    stop_samplers(s);
    bool keep = rc != 0 || !fo_clean(r) || getenv("AGEC_FO_KEEP") != NULL;
    if (s->dir[0] != '\0') {
        char cmd[700];
        /* The cluster goes in any case (its servers); its logs stay in the
         * work directory when something went wrong. */
        if (keep) {
            snprintf(cmd, sizeof cmd,
                     "for n in 0 1 2; do cp %s/node$n/postgres.log %s/node$n.log; "
                     "done 2>/dev/null",
                     s->dir, s->work);
            (void)system(cmd);
        }
        (void)script(s, "stop", "");
    }
    if (keep) {
        say(s, "kept for reading: %s (record.jsonl, bench.out, bench.err, cluster.log)", s->work);
    } else {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", s->work);
        (void)system(cmd);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->samples);
    free(s);
    return rc;
}

int fo_clean(const fo_result *r)
{
    return r->missing_writes == 0 && r->node_row_mismatch == 0 && r->off_timeline_reads == 0 &&
           r->overruns == 0 && r->conn_violations == 0;
}
