/*
 * Issue 28: behind a transaction pooler agec never sends a transaction
 * while an earlier one's Sync is unanswered on that connection.
 *
 * Why: PgBouncer 1.18 counts the client's Syncs and releases the server
 * connection when every one it has seen is answered, even when the
 * client's next transaction is half forwarded to that server (Parse, Bind,
 * Execute in; its Sync not read yet). That transaction then runs on one
 * server and its Sync reaches another: its caller gets a bare Sync and no
 * result, and the result goes to whichever client gets that server next.
 * The mux lost an answer that way about 1 run in 8 (it sent a statement
 * after its predecessor's error arrived and before that error's Sync
 * answer); docs/pgbouncer.md has the raw libpq reproduction.
 *
 * The race itself needs PgBouncer to read the new transaction in two
 * pieces with the server's answer in between, which no test can force.
 * What agec controls is the order, and that is checked here exactly:
 * link-time wrappers around libpq count, per connection, the Syncs sent
 * and the Sync answers read, and every statement sent while the two
 * differ is a violation. Runs through PgBouncer (scripts/pgbouncer-test-
 * server); a direct connection must still pipeline (the control case).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agec/batch.h"
#include "agec/mux.h"
#include "test_pool_util.h"

/* ---- per-connection Sync accounting (link-time wrappers) ------------------ */

enum { MAX_CONNS = 32 };
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const PGconn *pg;
    long syncs_sent, syncs_read;
} conns[MAX_CONNS];
static long violations, sends;

static int slot_locked(const PGconn *pg)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].pg == pg)
            return i;
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].pg == NULL) {
            conns[i].pg = pg;
            conns[i].syncs_sent = conns[i].syncs_read = 0;
            return i;
        }
    abort(); /* more connections than the test makes */
}

static void on_send(PGconn *pg)
{
    if (PQpipelineStatus(pg) == PQ_PIPELINE_OFF)
        return;
    pthread_mutex_lock(&mu);
    int i = slot_locked(pg);
    sends++;
    if (conns[i].syncs_sent != conns[i].syncs_read)
        violations++;
    pthread_mutex_unlock(&mu);
}

/* The wrappers and the real functions (declared for -Wmissing-prototypes). */
int __real_PQsendQueryParams(PGconn *, const char *, int, const Oid *, const char *const *,
                             const int *, const int *, int);
int __wrap_PQsendQueryParams(PGconn *, const char *, int, const Oid *, const char *const *,
                             const int *, const int *, int);
int __real_PQsendQueryPrepared(PGconn *, const char *, int, const char *const *, const int *,
                               const int *, int);
int __wrap_PQsendQueryPrepared(PGconn *, const char *, int, const char *const *, const int *,
                               const int *, int);
int __real_PQsendPrepare(PGconn *, const char *, const char *, int, const Oid *);
int __wrap_PQsendPrepare(PGconn *, const char *, const char *, int, const Oid *);
int __real_PQpipelineSync(PGconn *);
int __wrap_PQpipelineSync(PGconn *);
PGresult *__real_PQgetResult(PGconn *);
PGresult *__wrap_PQgetResult(PGconn *);
void __real_PQfinish(PGconn *);
void __wrap_PQfinish(PGconn *);

int __wrap_PQsendQueryParams(PGconn *pg, const char *q, int n, const Oid *t, const char *const *v,
                             const int *l, const int *f, int rf)
{
    on_send(pg);
    return __real_PQsendQueryParams(pg, q, n, t, v, l, f, rf);
}

int __wrap_PQsendQueryPrepared(PGconn *pg, const char *s, int n, const char *const *v, const int *l,
                               const int *f, int rf)
{
    on_send(pg);
    return __real_PQsendQueryPrepared(pg, s, n, v, l, f, rf);
}

int __wrap_PQsendPrepare(PGconn *pg, const char *s, const char *q, int n, const Oid *t)
{
    on_send(pg);
    return __real_PQsendPrepare(pg, s, q, n, t);
}

int __wrap_PQpipelineSync(PGconn *pg)
{
    int r = __real_PQpipelineSync(pg);
    if (r == 1) {
        pthread_mutex_lock(&mu);
        conns[slot_locked(pg)].syncs_sent++;
        pthread_mutex_unlock(&mu);
    }
    return r;
}

PGresult *__wrap_PQgetResult(PGconn *pg)
{
    PGresult *r = __real_PQgetResult(pg);
    if (r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        pthread_mutex_lock(&mu);
        conns[slot_locked(pg)].syncs_read++;
        pthread_mutex_unlock(&mu);
    }
    return r;
}

void __wrap_PQfinish(PGconn *pg)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].pg == pg)
            conns[i].pg = NULL;
    pthread_mutex_unlock(&mu);
    __real_PQfinish(pg);
}

static void counts_reset(void)
{
    pthread_mutex_lock(&mu);
    violations = sends = 0;
    pthread_mutex_unlock(&mu);
}

static void counts_get(long *v, long *s)
{
    pthread_mutex_lock(&mu);
    *v = violations;
    *s = sends;
    pthread_mutex_unlock(&mu);
}

/* ---- the cases ----------------------------------------------------------------- */

enum { PAIRS = 200 };

/* Statement i of the pairs below: even ones fail with 22012, odd ones
 * return i + 1. */
static void check_pair(size_t i, agec_status st, const agec_error *err, const agec_result *r)
{
    if (i % 2 == 0) {
        assert_int_equal(st, AGEC_ERR_SERVER);
        assert_string_equal(err->sqlstate, "22012");
        return;
    }
    assert_int_equal(st, AGEC_OK);
    int64_t got = 0;
    assert_int_equal(agec_result_get_int64(r, 0, 0, &got, NULL), AGEC_OK);
    assert_int_equal(got, (int64_t)i + 1);
}

/* PAIRS pairs (a failing statement, then a good one) submitted at once on a
 * one-connection mux: the good one is queued while the failing one is in
 * flight, which is when the mux used to send it early. Every outcome is
 * checked. Returns the mux's pooler flag. */
static bool mux_pairs(agec_pool *p)
{
    agec_mux_config mc;
    agec_mux_config_init(&mc);
    mc.connections = 1;
    agec_mux *m = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_mux_open(p, &mc, &m, &err), &err, "mux open");
    agec_mux_op *ops[2 * PAIRS];
    char vals[2 * PAIRS][16];
    for (int i = 0; i < 2 * PAIRS; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        const char *v[1] = { vals[i] };
        const char *sql = i % 2 == 0 ? "SELECT 1 / ($1::int * 0)" : "SELECT $1::int + 1";
        agec_test_must(agec_mux_submit_sql(m, sql, 1, v, NULL, NULL, NULL, &ops[i], &err), &err,
                       "submit");
    }
    for (int i = 0; i < 2 * PAIRS; i++) {
        agec_result *r = NULL;
        agec_status st = agec_mux_wait(ops[i], 20000, &r, &err);
        check_pair((size_t)i, st, &err, r);
        agec_result_free(r);
        agec_mux_op_free(ops[i]);
    }
    agec_mux_stats s;
    agec_mux_stats_get(m, &s);
    agec_mux_close(m);
    return s.pooler;
}

/* One batch of 2 * PAIRS statements, a Sync each, every other one failing. */
static void batch_pairs(agec_pool *p)
{
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_batch *b = NULL;
    agec_test_must(agec_batch_create(c, NULL, &b, &err), &err, "batch");
    char vals[2 * PAIRS][16];
    for (int i = 0; i < 2 * PAIRS; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        const char *v[1] = { vals[i] };
        const char *sql = i % 2 == 0 ? "SELECT 1 / ($1::int * 0)" : "SELECT $1::int + 1";
        agec_test_must(agec_batch_add_sql(b, sql, 1, v, NULL, &err), &err, "add");
    }
    (void)agec_batch_run(b, &err);
    for (size_t i = 0; i < 2 * PAIRS; i++) {
        agec_status st = agec_batch_status(b, i, &err);
        check_pair(i, st, &err, agec_batch_result(b, i));
    }
    agec_batch_free(b);
    agec_conn_release(c);
}

/* Run `work` through PgBouncer with the counts reset; no statement may
 * leave while a Sync is unanswered. `mux`: the work is mux_pairs (which
 * must see the pooler), else batch_pairs. */
static void behind_pgbouncer(const char *what, bool mux)
{
    agec_pool *p = pgbouncer_pool(pgbouncer_conninfo("AGEC_TEST_PGBOUNCER_PG"), AGEC_STMT_UNNAMED,
                                  2, AGEC_AGE_OFF);
    counts_reset();
    if (mux)
        assert_true(mux_pairs(p));
    else
        batch_pairs(p);
    long v, s;
    counts_get(&v, &s);
    printf("%s through PgBouncer: %ld statements sent, %ld with a Sync unanswered\n", what, s, v);
    assert_true(s >= 2 * PAIRS);
    assert_int_equal(v, 0);
    agec_pool_close(p, 5000, NULL);
}

static void test_mux_behind_pgbouncer(void **state)
{
    (void)state;
    behind_pgbouncer("mux", true);
}

static void test_batch_behind_pgbouncer(void **state)
{
    (void)state;
    behind_pgbouncer("batch", false);
}

/* The control: on a direct connection the same work is pipelined (the
 * counting sees statements sent with Syncs unanswered). */
static void test_direct_still_pipelines(void **state)
{
    (void)state;
    agec_pool *p = pgbouncer_pool(agec_test_pg_conninfo(), AGEC_STMT_UNNAMED, 2, AGEC_AGE_OFF);
    counts_reset();
    assert_false(mux_pairs(p));
    batch_pairs(p);
    long v, s;
    counts_get(&v, &s);
    printf("direct: %ld statements sent, %ld with a Sync unanswered\n", s, v);
    assert_true(v > 0);
    agec_pool_close(p, 5000, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mux_behind_pgbouncer),
        cmocka_unit_test(test_batch_behind_pgbouncer),
        cmocka_unit_test(test_direct_still_pipelines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
