#include "testutil.h"

#include "agec/mux.h"

#include "agec/cypher.h"
#include "agec/graph.h"
#include "fakeage/stub_catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *require_env(const char *name, const char *what)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "FATAL: %s is not set: this test needs the %s.\n"
                "Run the suite through `make check` (or scripts/with-test-servers),\n"
                "which starts the servers and exports their addresses.\n",
                name, what);
        fail_msg("%s not set", name);
    }
    return v;
}

const char *agec_test_pg_conninfo(void)
{
    return require_env("AGEC_TEST_PG", "throwaway PostgreSQL 15 test server");
}

const char *agec_test_age_conninfo(void)
{
    return require_env("AGEC_TEST_AGE", "Apache AGE test server (PGlite, or native through "
                                        "tests/on-native-age)");
}

bool agec_test_age_native(void)
{
    const char *kind = getenv("AGEC_TEST_AGE_KIND");
    return kind != NULL && strcmp(kind, "native") == 0;
}

const char *agec_test_pg_dir(void)
{
    return require_env("AGEC_TEST_PG_DIR", "PostgreSQL 15 test server's directory");
}

void agec_test_must(agec_status st, const agec_error *err, const char *what)
{
    if (st != AGEC_OK)
        fail_msg("%s: %s [%s] %s (hint: %s)", what, agec_status_name(st), err->sqlstate,
                 err->message, err->hint);
}

agec_conn *agec_test_acquire(agec_pool *p)
{
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    return c;
}

agec_pool *agec_test_age_pool(int max)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_age_conninfo();
    cfg.max = max;
    cfg.age_mode = AGEC_AGE_LOAD;
    cfg.on_event = agec_pool_event_ignore;
    cfg.acquire_timeout_ms = 10000;
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open a pool on the AGE server");
    return p;
}

void agec_test_sql(agec_conn *c, const char *text)
{
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, text, 0, NULL, NULL, &r, &err), &err, text);
    agec_result_free(r);
}

void agec_test_graph_drop(agec_conn *c, const char *g)
{
    agec_error err = AGEC_ERROR_INIT;
    bool exists = false;
    agec_test_must(agec_graph_exists(c, g, &exists, &err), &err, "graph exists");
    if (exists)
        agec_test_must(agec_graph_drop(c, g, true, &err), &err, "graph drop");
}

void agec_test_graph_fresh(agec_conn *c, const char *g)
{
    agec_test_graph_drop(c, g);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_create(c, g, &err), &err, "graph create");
}

void agec_test_stderr_begin(agec_test_capture *cap)
{
    snprintf(cap->path, sizeof cap->path, "/tmp/agec-stderr-XXXXXX");
    cap->fd = mkstemp(cap->path);
    assert_true(cap->fd >= 0);
    fflush(stderr);
    cap->saved = dup(2);
    assert_true(cap->saved >= 0);
    assert_int_equal(dup2(cap->fd, 2), 2);
}

char *agec_test_stderr_end(agec_test_capture *cap)
{
    fflush(stderr);
    assert_int_equal(dup2(cap->saved, 2), 2);
    close(cap->saved);
    off_t size = lseek(cap->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    ssize_t n = pread(cap->fd, text, (size_t)size, 0);
    text[n > 0 ? n : 0] = '\0';
    close(cap->fd);
    unlink(cap->path);
    return text;
}

agec_pool *agec_test_plain_pool(const char *conninfo, int max)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = max;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open a pool");
    return p;
}

agec_pool *agec_test_stub_age_pool(agec_pool *admin, const char *dbname)
{
    agec_conn *c = agec_test_acquire(admin);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    agec_test_sql(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    agec_test_sql(c, sql);
    agec_conn_release(c);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=%s", agec_test_pg_conninfo(), dbname);
    agec_pool *p = agec_test_plain_pool(dsn, 1);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_result *r = NULL;
    agec_query_opts qo;
    agec_query_opts_init(&qo);
    qo.prepare = false; /* several statements: the simple protocol */
    agec_test_must(agec_sql_exec(c, AGEC_STUB_AGE_SQL, 0, NULL, &qo, &r, &err), &err, "stub");
    agec_result_free(r);
    agec_conn_release(c);
    return p;
}

void *agec_test_mux_caller_run(void *arg)
{
    agec_test_mux_caller *w = arg;
    for (int i = 0; i < w->stmts; i++) {
        char a[32];
        snprintf(a, sizeof a, "%d", w->id * 1000 + i);
        const char *vals[1] = { a };
        bool fails = i % w->fail_every == w->fail_every / 2;
        agec_query_opts o;
        agec_query_opts_init(&o);
        o.timeout_ms = w->timeout_ms;
        agec_result *r = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st =
            agec_mux_sql(w->mux, fails ? "SELECT 1 / ($1::int * 0)" : "SELECT $1::int + 1", 1, vals,
                         &o, &r, &err);
        int64_t v = 0;
        if (fails && st == AGEC_ERR_SERVER && strcmp(err.sqlstate, "22012") == 0) {
            w->own_errors++;
        } else if (!fails && st == AGEC_OK && agec_result_get_int64(r, 0, 0, &v, NULL) == AGEC_OK &&
                   v == w->id * 1000 + i + 1) {
            w->ok++;
        } else {
            fprintf(stderr, "mux caller %d, statement %d: %s %s %s (value %lld)\n", w->id, i,
                    agec_status_name(st), err.sqlstate, err.message, (long long)v);
            w->bad++;
        }
        agec_result_free(r);
    }
    return NULL;
}

int agec_test_mux_failing(int stmts, int fail_every)
{
    int n = 0;
    for (int i = 0; i < stmts; i++)
        n += i % fail_every == fail_every / 2;
    return n;
}
