/*
 * bench_load: loading vertices and edges into AGE, the same generated data
 * on the same server in one run, four ways:
 *   loader        agec/load.h (INSERT ... unnest batches on PGlite, COPY elsewhere)
 *   unwind        UNWIND of 1,000-row lists with CREATE (ageSchemaClient's BatchLoader)
 *   create/row    one prepared CREATE per vertex
 *   unwind+match  UNWIND of 1,000 edges, MATCH both endpoints by key (indexed), CREATE
 * Figures are rows/s and ratios against the loader. The slow ways run on a
 * prefix of the data (rates are per row, so they compare).
 *
 * By default it runs twice: 20,000 vertices and edges, then 100,000. The
 * edge ratio depends on the size of the endpoint label: AGE's CREATE checks
 * that both endpoints still exist (entity_exists in its executor), with a
 * heap scan of the endpoint's label table, not an index scan, so each edge
 * costs a pass over the label whatever is indexed. EXPLAIN (ANALYZE,
 * BUFFERS) of one 1,000-edge batch on PGlite: the MATCH takes 45 ms
 * through the key index, the CREATE 900 ms and ~224 buffer hits per edge
 * on a 207-page label (20,000 vertices); ~850 per edge on an 834-page
 * label (100,000). The end vertices here are the first ones of the label
 * (end = j + 1), which such a scan finds early: that favours UNWIND.
 *   bench_load [VERTICES [EDGES]]     (one run of that size; AGEC_TEST_AGE)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "bench_common.h"
#include "bench_load_data.h"

#define GL "bench_load_l"
#define GU "bench_load_u"
#define GC "bench_load_c"

static void die(const char *what, const agec_error *e)
{
    fprintf(stderr, "bench_load: %s: %s [%s] %s\n", what, agec_status_name(e->code), e->sqlstate,
            e->message);
    exit(1);
}

static void must(agec_status st, const agec_error *e, const char *what)
{
    if (st != AGEC_OK)
        die(what, e);
}

static double secs(void)
{
    return (double)bench_now_ns() / 1e9;
}

static void fresh(agec_conn *c, const char *g)
{
    agec_error err = AGEC_ERROR_INIT;
    bool exists = false;
    must(agec_graph_exists(c, g, &exists, &err), &err, "exists");
    if (exists)
        must(agec_graph_drop(c, g, true, &err), &err, "drop");
}

static void cypher(agec_conn *c, const char *g, const char *q, const char *p)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    must(agec_cypher_exec(c, g, q, p, NULL, &r, &err), &err, q);
    agec_result_free(r);
}

/* The loader: vertices, then edges by key (a second loader, whose key map
 * comes from one scan of the loaded label: that scan is timed too). */
static void run_loader(agec_conn *c, int nv, int ne, double *vs, double *es, const char **method)
{
    fresh(c, GL);
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_stats st = { .size = sizeof st };
    double t0 = secs();
    must(agec_loader_open(c, GL, NULL, &ld, &err), &err, "open");
    must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    must(bench_load_vertices(ld, nv, &err), &err, "vertex");
    must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    *vs = (double)nv / (secs() - t0);
    *method = agec_load_method_name(st.method);
    t0 = secs();
    must(agec_loader_open(c, GL, NULL, &ld, &err), &err, "open");
    must(bench_load_edges(ld, nv, ne, &err), &err, "edge");
    must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    *es = (double)ne / (secs() - t0);
}

/* {"rows": [...]} of rows [from, to) */
static char *vertex_rows(int from, int to)
{
    size_t cap = (size_t)(to - from) * 128 + 32, n;
    char *p = malloc(cap);
    n = (size_t)snprintf(p, cap, "{\"rows\": [");
    for (int i = from; i < to; i++) {
        if (i > from)
            p[n++] = ',';
        n += (size_t)bench_vprops(i, p + n, cap - n);
    }
    snprintf(p + n, cap - n, "]}");
    return p;
}

static double run_unwind(agec_conn *c, int nv)
{
    fresh(c, GU);
    agec_error err = AGEC_ERROR_INIT;
    must(agec_graph_create(c, GU, &err), &err, "create");
    double t0 = secs();
    for (int i = 0; i < nv; i += 1000) {
        char *p = vertex_rows(i, i + 1000 < nv ? i + 1000 : nv);
        cypher(c, GU,
               "UNWIND $rows AS r CREATE (:Person {uid: r.uid, name: r.name, age: r.age, score: "
               "r.score})",
               p);
        free(p);
    }
    return (double)nv / (secs() - t0);
}

static double run_create(agec_conn *c, int n)
{
    fresh(c, GC);
    agec_error err = AGEC_ERROR_INIT;
    must(agec_graph_create(c, GC, &err), &err, "create");
    char b[256];
    double t0 = secs();
    for (int i = 0; i < n; i++) {
        bench_vprops(i, b, sizeof b);
        cypher(c, GC, "CREATE (:Person {uid: $uid, name: $name, age: $age, score: $score})", b);
    }
    return (double)n / (secs() - t0);
}

/* Edges on the UNWIND graph, with the key indexed as the loader indexes it. */
static double run_unwind_match(agec_conn *c, int nv, int ne, int *rows)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    must(agec_sql_exec(c,
                       "CREATE INDEX IF NOT EXISTS bench_uid ON " GU ".\"Person\" "
                       "(ag_catalog.agtype_access_operator(VARIADIC ARRAY[properties, "
                       "'\"uid\"'::ag_catalog.agtype]))",
                       0, NULL, NULL, &r, &err),
         &err, "index");
    agec_result_free(r);
    must(agec_sql_exec(c, "ANALYZE " GU ".\"Person\"", 0, NULL, NULL, &r, &err), &err, "analyze");
    agec_result_free(r);
    /* Batches of 1,000 until ne rows or 4 s (at least two batches): the
     * rate falls as the label grows, and a 100,000-vertex label takes ~5 s
     * per batch. */
    double t0 = secs();
    int done = 0;
    for (int j0 = 0; j0 < ne && (j0 < 2000 || secs() - t0 < 4.0); j0 += 1000) {
        size_t cap = 64 * 1000 + 32, n;
        char *p = malloc(cap);
        n = (size_t)snprintf(p, cap, "{\"rows\": [");
        for (int j = j0; j < j0 + 1000 && j < ne; j++) {
            int s, e;
            bench_edge_of(j, nv, &s, &e);
            n += (size_t)snprintf(p + n, cap - n, "%s{\"s\": %d, \"e\": %d, \"w\": %d}",
                                  j > j0 ? "," : "", s, e, j);
            done++;
        }
        snprintf(p + n, cap - n, "]}");
        cypher(c, GU,
               "UNWIND $rows AS r MATCH (a:Person), (b:Person) WHERE a.uid = r.s AND b.uid = r.e "
               "CREATE (a)-[:KNOWS {w: r.w}]->(b)",
               p);
        free(p);
    }
    *rows = done;
    return (double)done / (secs() - t0);
}

/* One comparison: nv vertices, ne edges, every way. */
static void run_size(agec_conn *c, int nv, int ne)
{
    int ncreate = nv / 10 < 2000 ? nv / 10 : 2000, nmatch;
    double lv, le, uv, cv, um;
    const char *method;
    run_loader(c, nv, ne, &lv, &le, &method);
    uv = run_unwind(c, nv);
    cv = run_create(c, ncreate);
    um = run_unwind_match(c, nv, ne / 4 < 5000 ? ne / 4 : 5000, &nmatch);
    printf("\n%d vertices (uid, name, age, score), %d KNOWS edges by uid\n", nv, ne);
    printf("%-44s %12s %10s\n", "way", "rows/s", "loader is");
    printf("%-44s %12.0f %10s\n", "loader vertices", lv, method);
    printf("%-44s %12.0f %9.1fx\n", "UNWIND 1,000-row batches, CREATE (vertices)", uv, lv / uv);
    char what[64];
    snprintf(what, sizeof what, "one CREATE per vertex (%d rows)", ncreate);
    printf("%-44s %12.0f %9.1fx\n", what, cv, lv / cv);
    printf("%-44s %12.0f %10s\n", "loader edges (key map: one scan)", le, method);
    snprintf(what, sizeof what, "UNWIND ... MATCH by indexed key (%d rows)", nmatch);
    printf("%-44s %12.0f %9.1fx\n", what, um, le / um);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int nv = argc > 1 ? atoi(argv[1]) : 0, ne = argc > 2 ? atoi(argv[2]) : nv;
    if (argc > 1 && (nv < 1000 || ne < 1000))
        return fprintf(stderr, "usage: bench_load [VERTICES>=1000 [EDGES>=1000]]\n"), 2;
    const char *dsn = bench_require_env("AGEC_TEST_AGE", "the AGE test server");
    bench_print_machine("bench_load: bulk loading into AGE");
    agec_pool *pool;
    agec_conn *c = bench_load_conn(dsn, AGEC_AGE_LOAD, &pool);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    must(agec_sql_exec(c, "SELECT version()", 0, NULL, NULL, &r, &err), &err, "version");
    printf("server: %.80s\n", agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    if (argc > 1) {
        run_size(c, nv, ne);
    } else {
        run_size(c, 20000, 20000);
        run_size(c, 100000, 100000);
    }
    bench_print_load("load at end");
    fresh(c, GL);
    fresh(c, GU);
    fresh(c, GC);
    agec_conn_release(c);
    agec_pool_close(pool, 1000, NULL);
    return 0;
}
