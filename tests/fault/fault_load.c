/* Shared machinery of the fault tests and the soak (see fault_load.h). */
#include "fault_load.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long fl_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- cluster ---- */

static bool run_script(const fl_cluster *c, const char *what)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pg-test-server %s %s >/dev/null 2>&1", c->scripts, what, c->dir);
    return system(cmd) == 0;
}

bool fl_cluster_start(fl_cluster *c, const char *scripts_dir)
{
    memset(c, 0, sizeof *c);
    snprintf(c->scripts, sizeof c->scripts, "%s", scripts_dir);
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/agec-pg.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(c->dir) == NULL) {
        c->dir[0] = '\0';
        return false;
    }
    if (!run_script(c, "start"))
        return false;
    char path[300];
    snprintf(path, sizeof path, "%s/port", c->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    if (fscanf(f, "%d", &c->port) != 1)
        c->port = 0;
    fclose(f);
    return c->port > 0;
}

bool fl_cluster_do(const fl_cluster *c, const char *what)
{
    return run_script(c, what);
}

void fl_cluster_remove(fl_cluster *c)
{
    if (c->dir[0] != '\0')
        (void)run_script(c, "stop");
    c->dir[0] = '\0';
}

bool fl_proxied_start(fl_proxied *t, const char *scripts_dir, const char *extra)
{
    if (!fl_cluster_start(&t->cl, scripts_dir))
        return false;
    t->px = fproxy_start(t->cl.port);
    if (t->px == NULL) {
        fprintf(stderr, "fault: could not start the proxy\n");
        fl_cluster_remove(&t->cl);
        return false;
    }
    snprintf(t->conninfo, sizeof t->conninfo,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres %s", fproxy_port(t->px), extra);
    return true;
}

void fl_proxied_pool_config(const fl_proxied *t, agec_pool_config *cfg)
{
    agec_pool_config_init(cfg);
    cfg->conninfo = t->conninfo;
    cfg->age_mode = AGEC_AGE_OFF;
    cfg->on_event = agec_pool_event_ignore;
}

void fl_proxied_stop(fl_proxied *t)
{
    fproxy_stop(t->px);
    t->px = NULL;
    fl_cluster_remove(&t->cl);
}

PGconn *fl_admin(const fl_cluster *c)
{
    char ci[256];
    snprintf(ci, sizeof ci,
             "hostaddr=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable "
             "application_name=fault_admin",
             c->port);
    PGconn *pg = PQconnectdb(ci);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "admin connection: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

bool fl_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "'%s': %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

long fl_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = atol(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "'%s': %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

bool fl_schema(PGconn *admin)
{
    return fl_sql(admin, "CREATE TABLE fault_a (id bigint PRIMARY KEY, pad text NOT NULL);"
                         "CREATE TABLE fault_b (id bigint PRIMARY KEY);"
                         "GRANT ALL ON fault_a, fault_b TO agec_pw");
}

bool fl_cluster_max_connections(const fl_cluster *c, PGconn *admin, int n)
{
    char sql[96];
    snprintf(sql, sizeof sql, "ALTER SYSTEM SET max_connections = %d", n);
    if (!fl_sql(admin, sql) ||
        !fl_sql(admin, "ALTER SYSTEM SET superuser_reserved_connections = 0") ||
        !fl_cluster_do(c, "restart"))
        return false;
    PQreset(admin);
    return PQstatus(admin) == CONNECTION_OK && fl_int(admin, "SHOW max_connections") == n;
}

int fl_count_app(PGconn *admin, const char *app)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return (int)fl_int(admin, sql);
}

int fl_kill_app(PGconn *admin, const char *app)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s'",
             app);
    return (int)fl_int(admin, sql);
}

int fl_fill_server(const fl_cluster *c, PGconn **held, int cap)
{
    char ci[200];
    snprintf(ci, sizeof ci,
             "hostaddr=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable "
             "application_name=fault_holder",
             c->port);
    int n = 0;
    while (n < cap) {
        PGconn *pg = PQconnectdb(ci);
        if (PQstatus(pg) != CONNECTION_OK) {
            bool full = strstr(PQerrorMessage(pg), "too many clients") != NULL;
            if (!full)
                fprintf(stderr, "fill: %s", PQerrorMessage(pg));
            PQfinish(pg);
            if (!full) {
                fl_free_held(held, n);
                return -1;
            }
            break;
        }
        held[n++] = pg;
    }
    return n;
}

void fl_free_held(PGconn **held, int n)
{
    for (int i = 0; i < n; i++)
        PQfinish(held[i]);
}

/* ---- the pool under test ---- */

void fl_pool_config(agec_pool_config *cfg, const char *conninfo, const char *app, const char *name,
                    int max, int min)
{
    agec_pool_config_init(cfg);
    cfg->conninfo = conninfo;
    cfg->application_name = app;
    cfg->name = name;
    cfg->age_mode = AGEC_AGE_OFF;
    cfg->max = max;
    cfg->min = min;
    cfg->connect_timeout_ms = FL_CONNECT_MS;
    cfg->acquire_timeout_ms = FL_ACQUIRE_MS;
    cfg->reset_timeout_ms = FL_RESET_MS;
    cfg->validation_timeout_ms = 300;
    cfg->breaker_threshold = 3;
    cfg->breaker_open_ms = FL_OPEN_MS;
    cfg->reconnect_backoff_initial_ms = 50;
    cfg->reconnect_backoff_max_ms = 400;
    cfg->on_event = agec_pool_event_ignore;
}

/* ---- the load ---- */

typedef struct id_log {
    int64_t *ids;
    size_t n, cap;
} id_log;

typedef struct worker {
    struct fl_load *load;
    int index;
    id_log acked;
    pthread_t thread;
} worker;

struct fl_load {
    fl_load_cfg cfg;
    atomic_bool stop;
    atomic_int slow_ms;
    atomic_llong next_id;
    pthread_mutex_t mu;
    fl_counts counts; /* [mu] */
    fl_facts facts;   /* [mu] */
    worker *workers;
    bool joined;
};

/* Note the end of one timed call: overrun against its budget, first message. */
static void note_call(fl_load *l, const char *what, int64_t took_ms, int budget_ms, agec_status st,
                      const agec_error *err)
{
    pthread_mutex_lock(&l->mu);
    int64_t over = took_ms - budget_ms;
    if (over > l->facts.worst_overrun_ms) {
        l->facts.worst_overrun_ms = over;
        snprintf(l->facts.worst_call, sizeof l->facts.worst_call, "%s: %lld ms (budget %d): %s",
                 what, (long long)took_ms, budget_ms, agec_status_name(st));
    }
    if (st != AGEC_OK && (unsigned)st < FL_NSTATUS && l->facts.first_msg[st][0] == '\0')
        snprintf(l->facts.first_msg[st], sizeof l->facts.first_msg[st], "%.16s: %.280s", what,
                 err->message);
    pthread_mutex_unlock(&l->mu);
}

/* One statement with the load's statement timeout; int64 parameter or none. */
static agec_status stmt(fl_load *l, agec_conn *c, const char *what, const char *sql,
                        const char *param, agec_error *err)
{
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = l->cfg.stmt_timeout_ms;
    o.prepare = param != NULL;
    const char *vals[1] = { param };
    agec_result *res = NULL;
    int64_t t0 = agec_test_now_ms();
    agec_status st = agec_sql_exec(c, sql, param ? 1 : 0, vals, &o, &res, err);
    note_call(l, what, agec_test_now_ms() - t0, l->cfg.stmt_timeout_ms, st, err);
    agec_result_free(res);
    return st;
}

static agec_status slow_step(fl_load *l, agec_conn *c, agec_error *err)
{
    int ms = atomic_load(&l->slow_ms);
    if (ms <= 0)
        return AGEC_OK;
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", ms / 1000.0);
    return stmt(l, c, "pg_sleep", "SELECT pg_sleep($1::float8)", secs, err);
}

/* BEGIN; INSERT a; (slow); INSERT b; COMMIT. Returns the first failure. */
static agec_status write_tx(fl_load *l, agec_conn *c, int64_t id, agec_error *err)
{
    char p[32];
    snprintf(p, sizeof p, "%lld", (long long)id);
    agec_status st = stmt(l, c, "BEGIN", "BEGIN", NULL, err);
    if (st == AGEC_OK)
        st = stmt(l, c, "INSERT a",
                  "INSERT INTO fault_a (id, pad) VALUES ($1::bigint, repeat('x', 200))", p, err);
    if (st == AGEC_OK)
        st = slow_step(l, c, err);
    if (st == AGEC_OK)
        st = stmt(l, c, "INSERT b", "INSERT INTO fault_b (id) VALUES ($1::bigint)", p, err);
    if (st == AGEC_OK)
        st = stmt(l, c, "COMMIT", "COMMIT", NULL, err);
    return st;
}

/* A read of ~12 kB (big enough to be cut mid-result). */
static agec_status read_op(fl_load *l, agec_conn *c, agec_error *err)
{
    agec_status st = stmt(l, c, "SELECT",
                          "SELECT id, pad FROM fault_a ORDER BY id DESC LIMIT $1::int", "50", err);
    if (st == AGEC_OK)
        st = slow_step(l, c, err);
    return st;
}

static void log_id(id_log *g, int64_t id)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        int64_t *ids = realloc(g->ids, cap * sizeof *ids);
        if (ids == NULL)
            abort();
        g->ids = ids;
        g->cap = cap;
    }
    g->ids[g->n++] = id;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    fl_load *l = w->load;
    unsigned seed = (unsigned)w->index * 7919u + 17u;
    while (!atomic_load(&l->stop)) {
        agec_error err = AGEC_ERROR_INIT;
        agec_conn *c = NULL;
        agec_pool_stats ps;
        bool was_open =
            agec_pool_stats_get(l->cfg.pool, &ps) == AGEC_OK && ps.breaker == AGEC_BREAKER_OPEN;
        int64_t t0 = agec_test_now_ms();
        agec_status ast =
            agec_pool_acquire_timeout(l->cfg.pool, l->cfg.acquire_timeout_ms, &c, &err);
        int64_t t1 = agec_test_now_ms();
        note_call(l, "acquire", t1 - t0, l->cfg.acquire_timeout_ms, ast, &err);
        agec_status qst = AGEC_OK;
        bool write = false;
        if (ast == AGEC_OK) {
            write = rand_r(&seed) % 2 == 0;
            if (write) {
                int64_t id = atomic_fetch_add(&l->next_id, 1);
                qst = write_tx(l, c, id, &err);
                if (qst == AGEC_OK)
                    log_id(&w->acked, id);
            } else {
                qst = read_op(l, c, &err);
            }
            int64_t r0 = agec_test_now_ms();
            agec_conn_release(c);
            agec_error none = AGEC_ERROR_INIT;
            note_call(l, "release", agec_test_now_ms() - r0, l->cfg.release_budget_ms, AGEC_OK,
                      &none);
        }
        pthread_mutex_lock(&l->mu);
        l->counts.ops++;
        l->counts.acquire[ast]++;
        if (ast == AGEC_ERR_BREAKER_OPEN && was_open) {
            l->counts.breaker_fast_fails++;
            if (t1 - t0 > 10)
                l->counts.breaker_over_10ms++;
            if (t1 - t0 > l->counts.breaker_max_ms)
                l->counts.breaker_max_ms = t1 - t0;
        }
        if (ast == AGEC_OK) {
            l->counts.query[qst]++;
            l->facts.last_acquire_ok_ms = t1;
            if (qst == AGEC_OK && write) {
                l->counts.writes_ok++;
                l->facts.last_write_ok_ms = agec_test_now_ms();
            } else if (qst == AGEC_OK) {
                l->counts.reads_ok++;
            }
        }
        pthread_mutex_unlock(&l->mu);
        if (l->cfg.pace_ms > 0)
            agec_test_sleep_ms(l->cfg.pace_ms); /* pacing the load, not synchronisation */
    }
    return NULL;
}

fl_load *fl_load_start(const fl_load_cfg *cfg)
{
    fl_load *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->cfg = *cfg;
    atomic_init(&l->stop, false);
    atomic_init(&l->slow_ms, 0);
    atomic_init(&l->next_id, 1);
    pthread_mutex_init(&l->mu, NULL);
    l->facts.worst_overrun_ms = INT64_MIN;
    l->workers = calloc((size_t)cfg->threads, sizeof *l->workers);
    if (l->workers == NULL)
        abort();
    for (int i = 0; i < cfg->threads; i++) {
        l->workers[i].load = l;
        l->workers[i].index = i;
        if (pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) != 0)
            abort();
    }
    return l;
}

void fl_load_set_slow(fl_load *l, int ms)
{
    atomic_store(&l->slow_ms, ms);
}

fl_counts fl_load_counts(fl_load *l)
{
    pthread_mutex_lock(&l->mu);
    fl_counts c = l->counts;
    pthread_mutex_unlock(&l->mu);
    return c;
}

fl_facts fl_load_facts(fl_load *l)
{
    pthread_mutex_lock(&l->mu);
    fl_facts f = l->facts;
    pthread_mutex_unlock(&l->mu);
    return f;
}

void fl_load_stop(fl_load *l)
{
    if (l->joined)
        return;
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->cfg.threads; i++)
        pthread_join(l->workers[i].thread, NULL);
    l->joined = true;
}

void fl_load_free(fl_load *l)
{
    if (l == NULL)
        return;
    fl_load_stop(l);
    for (int i = 0; i < l->cfg.threads; i++)
        free(l->workers[i].acked.ids);
    free(l->workers);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void fl_counts_sub(fl_counts *a, const fl_counts *b)
{
    a->ops -= b->ops;
    a->writes_ok -= b->writes_ok;
    a->reads_ok -= b->reads_ok;
    for (int i = 0; i < FL_NSTATUS; i++) {
        a->acquire[i] -= b->acquire[i];
        a->query[i] -= b->query[i];
    }
}

unsigned fl_mask(const uint64_t by_status[FL_NSTATUS])
{
    unsigned m = 0;
    for (int i = 0; i < FL_NSTATUS; i++)
        if (by_status[i] > 0)
            m |= 1u << i;
    return m;
}

void fl_format_counts(const uint64_t by_status[FL_NSTATUS], char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < FL_NSTATUS && len < cap; i++)
        if (by_status[i] > 0) {
            int n = snprintf(buf + len, cap - len, "%s%s=%llu", len ? " " : "",
                             agec_status_name((agec_status)i), (unsigned long long)by_status[i]);
            if (n < 0)
                break;
            len += (size_t)n;
        }
}

/* ---- verification ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The ids of a one-column query, sorted; NULL on error. */
static int64_t *query_ids(PGconn *admin, const char *sql, size_t *n)
{
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return NULL;
    }
    *n = (size_t)PQntuples(r);
    int64_t *ids = malloc((*n + 1) * sizeof *ids);
    if (ids != NULL)
        for (size_t i = 0; i < *n; i++)
            ids[i] = atoll(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return ids; /* ORDER BY id in the query */
}

bool fl_verify_writes(PGconn *admin, fl_load *l, fl_verify *out)
{
    memset(out, 0, sizeof *out);
    size_t na = 0, nb = 0;
    int64_t *a = query_ids(admin, "SELECT id FROM fault_a ORDER BY id", &na);
    int64_t *b = query_ids(admin, "SELECT id FROM fault_b ORDER BY id", &nb);
    bool ok = a != NULL && b != NULL;
    if (!ok)
        snprintf(out->msg, sizeof out->msg, "could not read the tables: %s", PQerrorMessage(admin));
    /* Half-done: in one table only (a merge of two sorted lists). */
    size_t i = 0, j = 0;
    while (ok && (i < na || j < nb)) {
        if (j >= nb || (i < na && a[i] < b[j])) {
            if (out->half++ == 0)
                snprintf(out->msg, sizeof out->msg, "id %lld is in fault_a only", (long long)a[i]);
            i++;
        } else if (i >= na || b[j] < a[i]) {
            if (out->half++ == 0)
                snprintf(out->msg, sizeof out->msg, "id %lld is in fault_b only", (long long)b[j]);
            j++;
        } else {
            i++;
            j++;
        }
    }
    for (int w = 0; ok && w < l->cfg.threads; w++) {
        id_log *g = &l->workers[w].acked;
        for (size_t k = 0; k < g->n; k++) {
            out->acked++;
            if (bsearch(&g->ids[k], a, na, sizeof *a, cmp_i64) == NULL ||
                bsearch(&g->ids[k], b, nb, sizeof *b, cmp_i64) == NULL) {
                if (out->missing++ == 0)
                    snprintf(out->msg, sizeof out->msg,
                             "id %lld was acknowledged as committed but is missing",
                             (long long)g->ids[k]);
            }
        }
    }
    free(a);
    free(b);
    return ok && out->half == 0 && out->missing == 0;
}

/* ---- pg_stat_activity sampler ---- */

struct fl_sampler {
    PGconn *admin;
    char sql[256];
    int every_ms;
    atomic_bool stop, excused;
    atomic_int max, samples, last;
    pthread_t thread;
};

static void *sampler_main(void *arg)
{
    fl_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        PGresult *r = PQexec(s->admin, s->sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            int n = atoi(PQgetvalue(r, 0, 0));
            atomic_store(&s->last, n);
            if (!atomic_load(&s->excused) && n > atomic_load(&s->max))
                atomic_store(&s->max, n);
            atomic_fetch_add(&s->samples, 1);
        } else if (PQstatus(s->admin) != CONNECTION_OK) {
            PQreset(s->admin); /* the server was restarted: sample on */
        }
        PQclear(r);
        agec_test_sleep_ms(s->every_ms); /* sampling period */
    }
    return NULL;
}

fl_sampler *fl_sampler_start(const fl_cluster *c, const char *app, int every_ms)
{
    fl_sampler *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->admin = fl_admin(c);
    if (s->admin == NULL) {
        free(s);
        return NULL;
    }
    snprintf(s->sql, sizeof s->sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", app);
    s->every_ms = every_ms;
    atomic_init(&s->stop, false);
    atomic_init(&s->excused, false);
    atomic_init(&s->last, 0);
    atomic_init(&s->max, 0);
    atomic_init(&s->samples, 0);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0)
        abort();
    return s;
}

int fl_sampler_max(fl_sampler *s)
{
    return atomic_load(&s->max);
}

int fl_sampler_samples(fl_sampler *s)
{
    return atomic_load(&s->samples);
}

void fl_sampler_excuse(fl_sampler *s, bool excused)
{
    atomic_store(&s->excused, excused);
}

int fl_sampler_last(fl_sampler *s)
{
    return atomic_load(&s->last);
}

void fl_sampler_stop(fl_sampler *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    PQfinish(s->admin);
    free(s);
}

/* ---- watchdog ---- */

struct fl_watchdog {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    char what[128], phase[128];
    int seconds;
    pthread_t thread;
};

static void *watchdog_main(void *arg)
{
    fl_watchdog *w = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += w->seconds;
    pthread_mutex_lock(&w->mu);
    while (!w->stop)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) != 0 && !w->stop) {
            fprintf(stderr, "WATCHDOG: %s still running after %d s (phase: %s): aborting\n",
                    w->what, w->seconds, w->phase);
            fflush(stderr);
            abort();
        }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

fl_watchdog *fl_watchdog_start(const char *what, int seconds)
{
    fl_watchdog *w = calloc(1, sizeof *w);
    if (w == NULL)
        abort();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    snprintf(w->what, sizeof w->what, "%s", what);
    snprintf(w->phase, sizeof w->phase, "start");
    w->seconds = seconds;
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0)
        abort();
    return w;
}

void fl_watchdog_phase(fl_watchdog *w, const char *phase)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->phase, sizeof w->phase, "%s", phase);
    pthread_mutex_unlock(&w->mu);
}

void fl_watchdog_stop(fl_watchdog *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
