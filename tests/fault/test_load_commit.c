/*
 * Issue 24, item 7: the answer to a chunk's COMMIT is lost (the proxy
 * resets the connection at the server's first byte after the COPY's
 * result): the rows are in the graph, but `committed` cannot know it.
 * The stats say how many rows are uncertain and agec_load_resume_point()
 * asks the server (pg_xact_status on a new connection): resuming there
 * loads nothing twice. On PG15 with the stand-in of AGE's catalog.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "fakeage/stub_catalog.h"
#include "fault_load.h"
#include "proxy.h"

typedef struct cut {
    fproxy *px;
    int armed;
} cut;

/* The rejected row ends the chunk: arm the cut before its batch goes. The
 * server's bytes from then on: the COPY's CopyInResponse (10),
 * CommandComplete "COPY 5" (12), ReadyForQuery (6), then COMMIT's answer
 * (18). The proxy resets once it has forwarded N bytes: N = 28 cuts before
 * COMMIT is sent (nothing committed), 46 after its whole answer; 29 .. 45
 * lose the answer of a COMMIT the server has done (checked: 40). 37: the
 * middle. */
static bool arm(const agec_error *e, const char *row, size_t len, void *user)
{
    (void)e;
    (void)row;
    (void)len;
    cut *c = user;
    if (c->armed++ == 0)
        assert_int_equal(fproxy_cut_after(c->px, 37), 1);
    return true;
}

static void test_lost_commit_answer(void **state)
{
    (void)state;
    fl_proxied t;
    if (!fl_proxied_start(&t, AGEC_SCRIPTS_DIR, "sslmode=disable"))
        fail_msg("could not start a PostgreSQL 15 cluster behind the proxy");
    PGconn *admin = fl_admin(&t.cl);
    assert_non_null(admin);
    assert_true(fl_sql(admin, AGEC_STUB_AGE_SQL));
    char dir[] = "/tmp/agec-lost-commit-XXXXXX", path[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/n.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("n:int\n1\n2\n3\n4\nbad\n6\n7\n", f);
    fclose(f);

    agec_pool_config cfg;
    fl_proxied_pool_config(&t, &cfg);
    cfg.max = 1;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    agec_conn *c = NULL;
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire");
    cut ct = { t.px, 0 };
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.method = AGEC_LOAD_COPY;
    o.chunk_rows = 6;
    o.reject = arm;
    o.reject_user = &ct;
    agec_loader *ld = NULL;
    agec_test_must(agec_loader_open(c, "lost", &o, &ld, &err), &err, "loader open");
    /* The label exists before the chunk (no statement after the cut is armed). */
    agec_test_must(agec_loader_vertex(ld, "N", "{\"n\": 0}", SIZE_MAX, &err), &err, "row 0");
    agec_status st = agec_loader_file(ld, false, "N", path, AGEC_FORMAT_CSV, &err);
    if (st != AGEC_ERR_CONNECTION_LOST)
        fail_msg("want CONNECTION_LOST at COMMIT, got %s: %s", agec_status_name(st), err.message);
    agec_load_stats s;
    agec_loader_stats(ld, &s);
    agec_loader_free(ld);
    agec_conn_release(c);
    /* The COMMIT went through: 5 vertices (0 to 4) are in; `committed`
     * (0) cannot know it, the stats say the 6 rows are uncertain. */
    assert_int_equal(fl_int(admin, "SELECT count(*) FROM lost.\"N\""), 5);
    assert_int_equal(s.committed, 0);
    assert_int_equal(s.uncertain, 6); /* row 0 and lines 2-6 of the file */
    assert_true(s.commit_xid > 0);
    /* A new connection asks the server: resume after the 6 rows. */
    agec_test_must(agec_pool_acquire(pool, &c, &err), &err, "acquire again");
    uint64_t resume = 0;
    agec_test_must(agec_load_resume_point(c, &s, &resume, &err), &err, "resume point");
    assert_int_equal(resume, 6);
    o.reject = NULL;
    o.skip_rows = resume - 1; /* the file alone: row 0 was the API's */
    agec_test_must(agec_loader_open(c, "lost", &o, &ld, &err), &err, "loader open");
    agec_test_must(agec_loader_file(ld, false, "N", path, AGEC_FORMAT_CSV, &err), &err, "resume");
    agec_test_must(agec_loader_finish(ld, NULL, &err), &err, "finish");
    agec_loader_free(ld);
    agec_conn_release(c);
    /* Nothing twice: 0-4, 6, 7. */
    assert_int_equal(fl_int(admin, "SELECT count(*) FROM lost.\"N\""), 7);
    assert_int_equal(fl_int(admin, "SELECT count(DISTINCT properties) FROM lost.\"N\""), 7);
    PQfinish(admin);
    agec_pool_close(pool, 1000, NULL);
    fl_proxied_stop(&t);
    remove(path);
    remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_commit_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
