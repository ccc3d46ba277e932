/*
 * bench_load_copy: the loader's COPY path against plain COPY, on
 * PostgreSQL 15 with the stand-in of AGE's catalog
 * (tests/fakeage/stub_catalog.h: label tables of AGE's shape, agtype a
 * domain over text). AGE itself is not on this machine, so this measures
 * what the loader adds on top of COPY (building the lines, id
 * reservations, the key map, the key index, ANALYZE), not AGE's agtype
 * input, which both ways would pay alike. Same rows, same server, one run:
 *   vertices  plain COPY of the property maps into the label table through
 *             libpq, ids from the column default (the issue's ~440,000/s
 *             way on native AGE); the loader (method copy) without a key;
 *             the loader with a key (its index built at the end)
 *   edges     plain COPY of (start key, end key, properties) into a temporary
 *             table, then one INSERT ... SELECT joining it to the vertices by
 *             the key index (the issue's ~200,000/s way); the loader by key
 *             (key map from one scan of the label)
 *   bench_load_copy [VERTICES [EDGES]]   (default 200000 200000; AGEC_TEST_PG;
 *   AGEC_BENCH_BATCH sets the loader's batch_rows, AGEC_BENCH_NO_ANALYZE=1
 *   turns its ANALYZE off)
 * "client CPU" is this process's CPU time over the wall time of the way.
 *
 * With --native (first argument) the same run is made on native Apache AGE
 * (AGEC_TEST_AGE_NATIVE: scripts/age-native), in a fresh database with
 * CREATE EXTENSION age instead of the stand-in, so every way pays AGE's own
 * agtype input and id functions; two more rows give the floor of any way
 * in: plain COPY of the same rows into a plain two-column table (id bigint,
 * properties agtype) with ids from the client, and the same followed by
 * CREATE INDEX on the key (the floor of a keyed load).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "bench_common.h"
#include "bench_load_data.h"
#include "stub_catalog.h"

#define DB "agec_bench_stub"

static void must(agec_status st, const agec_error *e, const char *what)
{
    if (st != AGEC_OK) {
        fprintf(stderr, "bench_load_copy: %s: %s [%s] %s\n", what, agec_status_name(e->code),
                e->sqlstate, e->message);
        exit(1);
    }
}

static void pq_must(PGconn *pg, PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) != want) {
        fprintf(stderr, "bench_load_copy: %s: %s", what, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(r);
}

static void pq_exec(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    ExecStatusType s = PQresultStatus(r);
    pq_must(pg, r, s == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, q);
}

static double secs(void)
{
    return (double)bench_now_ns() / 1e9;
}

/* This process's CPU seconds (the client side of each way). */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct way {
    double rate, client; /* rows/s; client CPU s per s of the way */
} way;

typedef struct clocks {
    double wall, cpu;
} clocks;

static clocks start(void)
{
    return (clocks){ secs(), cpu() };
}

static way done(clocks c, int rows)
{
    double w = secs() - c.wall;
    return (way){ (double)rows / w, (cpu() - c.cpu) / w };
}

/* COPY text: the maps have backslashes (escaped quotes), nothing else to escape. */
static size_t put_copy(char *dst, const char *src, int n)
{
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (src[i] == '\\')
            dst[o++] = '\\';
        dst[o++] = src[i];
    }
    return o;
}

/* COPY n generated rows through stmt: edges as (start, end, properties),
 * vertices as their property maps, with with_id as (id, properties). */
static void copy_rows(PGconn *pg, const char *stmt, int n, int nv, bool edges, bool with_id)
{
    pq_must(pg, PQexec(pg, stmt), PGRES_COPY_IN, stmt);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap), b[256];
    for (int i = 0; i < n; i++) {
        if (cap - len < 1024) {
            if (PQputCopyData(pg, buf, (int)len) != 1)
                exit((fprintf(stderr, "bench_load_copy: %s", PQerrorMessage(pg)), 1));
            len = 0;
        }
        if (edges) {
            int s, e;
            bench_edge_of(i, nv, &s, &e);
            len += (size_t)snprintf(buf + len, cap - len, "%d\t%d\t{\"w\": %d}\n", s, e, i);
        } else {
            if (with_id)
                len += (size_t)snprintf(buf + len, cap - len, "%d\t", i + 1);
            len += put_copy(buf + len, b, bench_vprops(i, b, sizeof b));
            buf[len++] = '\n';
        }
    }
    if (PQputCopyData(pg, buf, (int)len) != 1 || PQputCopyEnd(pg, NULL) != 1)
        exit((fprintf(stderr, "bench_load_copy: %s", PQerrorMessage(pg)), 1));
    free(buf);
    pq_must(pg, PQgetResult(pg), PGRES_COMMAND_OK, "COPY");
    PQclear(PQgetResult(pg));
}

/* The floor: plain COPY of "id<TAB>map" lines into (id bigint, properties
 * agtype), no graph, no sequence; with `keyed`, CREATE INDEX on the key
 * after it, as the loader's key index is built. */
static way plain_table(PGconn *pg, int nv, bool keyed)
{
    pq_exec(pg, "DROP TABLE IF EXISTS bc_plain");
    pq_exec(pg, "CREATE TABLE bc_plain (id bigint, properties ag_catalog.agtype)");
    clocks t0 = start();
    pq_exec(pg, "BEGIN");
    copy_rows(pg, "COPY bc_plain FROM STDIN", nv, nv, false, true);
    if (keyed)
        pq_exec(pg, "CREATE INDEX ON bc_plain (ag_catalog.agtype_access_operator(VARIADIC "
                    "ARRAY[properties, '\"uid\"'::ag_catalog.agtype]))");
    pq_exec(pg, "COMMIT");
    return done(t0, nv);
}

/* The run of median rate among n (n <= 9). */
static way median_way(const way *runs, int n)
{
    way sorted[9];
    memcpy(sorted, runs, (size_t)n * sizeof *runs);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j - 1].rate > sorted[j].rate; j--) {
            way t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    return sorted[n / 2];
}

static way plain_vertices(PGconn *pg, int nv)
{
    pq_exec(pg, "SELECT ag_catalog.create_graph('bc_copy')");
    pq_exec(pg, "SELECT ag_catalog.create_vlabel('bc_copy', 'Person')");
    clocks t0 = start();
    pq_exec(pg, "BEGIN");
    copy_rows(pg, "COPY bc_copy.\"Person\" (properties) FROM STDIN", nv, nv, false, false);
    pq_exec(pg, "COMMIT");
    return done(t0, nv);
}

/* Edges the plain way on the keyed loader's graph (its key index is there). */
static way plain_edges(PGconn *pg, int nv, int ne)
{
    pq_exec(pg, "SELECT ag_catalog.create_elabel('bc_keyed', 'KNOWS_COPY')");
    clocks t0 = start();
    pq_exec(pg, "BEGIN");
    pq_exec(pg, "CREATE TEMP TABLE e_in (s ag_catalog.agtype, e ag_catalog.agtype, "
                "p ag_catalog.agtype) ON COMMIT DROP");
    copy_rows(pg, "COPY e_in FROM STDIN", ne, nv, true, false);
    pq_exec(pg, "INSERT INTO bc_keyed.\"KNOWS_COPY\" (start_id, end_id, properties) "
                "SELECT a.id, b.id, e_in.p FROM e_in "
                "JOIN bc_keyed.\"Person\" a ON ag_catalog.agtype_access_operator(VARIADIC "
                "ARRAY[a.properties, '\"uid\"'::ag_catalog.agtype]) = e_in.s "
                "JOIN bc_keyed.\"Person\" b ON ag_catalog.agtype_access_operator(VARIADIC "
                "ARRAY[b.properties, '\"uid\"'::ag_catalog.agtype]) = e_in.e");
    pq_exec(pg, "COMMIT");
    return done(t0, ne);
}

static way loader_vertices(agec_conn *c, const char *graph, bool keyed, int nv)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_stats st = { .size = sizeof st };
    clocks t0 = start();
    agec_load_opts o;
    agec_load_opts_init(&o);
    if (getenv("AGEC_BENCH_BATCH") != NULL)
        o.batch_rows = (size_t)atol(getenv("AGEC_BENCH_BATCH"));
    if (getenv("AGEC_BENCH_NO_ANALYZE") != NULL)
        o.analyze = false;
    must(agec_loader_open(c, graph, &o, &ld, &err), &err, "open");
    if (keyed)
        must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    must(bench_load_vertices(ld, nv, &err), &err, "vertex");
    must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    if (st.method != AGEC_LOAD_COPY)
        exit((fprintf(stderr, "bench_load_copy: the loader chose %s, not copy\n",
                      agec_load_method_name(st.method)),
              1));
    return done(t0, nv);
}

static way loader_edges(agec_conn *c, int nv, int ne)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_stats st = { .size = sizeof st };
    clocks t0 = start();
    must(agec_loader_open(c, "bc_keyed", NULL, &ld, &err), &err, "open");
    must(bench_load_edges(ld, nv, ne, &err), &err, "edge");
    must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    return done(t0, ne);
}

int main(int argc, char **argv)
{
    bool native = argc > 1 && strcmp(argv[1], "--native") == 0;
    if (native) {
        argc--;
        argv++;
    }
    int nv = argc > 1 ? atoi(argv[1]) : 200000, ne = argc > 2 ? atoi(argv[2]) : nv;
    if (nv < 1000 || ne < 1000)
        return fprintf(stderr,
                       "usage: bench_load_copy [--native] [VERTICES>=1000 [EDGES>=1000]]\n"),
               2;
    const char *dsn = native ? bench_require_env("AGEC_TEST_AGE_NATIVE", "native AGE server")
                             : bench_require_env("AGEC_TEST_PG", "PostgreSQL 15 test server");
    bench_print_machine(native ? "bench_load_copy: the loader's COPY path vs plain COPY (native "
                                 "Apache AGE on PostgreSQL 15)"
                               : "bench_load_copy: the loader's COPY path vs plain COPY "
                                 "(PostgreSQL 15)");
    PGconn *admin = PQconnectdb(dsn);
    if (PQstatus(admin) != CONNECTION_OK)
        return fprintf(stderr, "bench_load_copy: %s", PQerrorMessage(admin)), 1;
    PQsetNoticeProcessor(admin, NULL, NULL);
    pq_exec(admin, "DROP DATABASE IF EXISTS " DB);
    pq_exec(admin, "CREATE DATABASE " DB);
    char db[512];
    snprintf(db, sizeof db, "%s dbname=" DB, dsn);
    PGconn *pg = PQconnectdb(db);
    if (PQstatus(pg) != CONNECTION_OK)
        return fprintf(stderr, "bench_load_copy: %s", PQerrorMessage(pg)), 1;
    PQsetNoticeProcessor(pg, NULL, NULL);
    if (native) {
        pq_exec(pg, "CREATE EXTENSION age");
        pq_exec(pg, "LOAD 'age'");
        /* AGE's operators in the plain ways resolve through search_path. */
        pq_exec(pg, "SET search_path = ag_catalog, \"$user\", public");
        PGresult *v = PQexec(pg, "SELECT extversion FROM pg_extension WHERE extname = 'age'");
        printf("server: %s, Apache AGE %s (native)\n", PQparameterStatus(pg, "server_version"),
               PQresultStatus(v) == PGRES_TUPLES_OK ? PQgetvalue(v, 0, 0) : "?");
        PQclear(v);
    } else {
        pq_exec(pg, AGEC_STUB_AGE_SQL);
        printf("server: %s, AGE's catalog stood in for (agtype: text)\n",
               PQparameterStatus(pg, "server_version"));
    }

    agec_pool *pool;
    agec_conn *c = bench_load_conn(db, native ? AGEC_AGE_LOAD : AGEC_AGE_OFF, &pool);

    enum { FLOOR, FLOOR_KEYED, PLAIN_V, LOADER_V, LOADER_VK, PLAIN_E, LOADER_E, WAYS };
    /* On native AGE the vertex ways run in interleaved rounds (default 3,
     * AGEC_BENCH_ROUNDS) and each reports its median: on a shared machine
     * one run of each is noise. The edge ways run once, on the last round's
     * keyed graph. */
    enum { MAX_ROUNDS = 9 };
    int rounds = native ? 3 : 1;
    if (native && getenv("AGEC_BENCH_ROUNDS") != NULL)
        rounds = atoi(getenv("AGEC_BENCH_ROUNDS"));
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    way runs[LOADER_VK + 1][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        if (r > 0) {
            static const char *const graphs[] = { "bc_copy", "bc_loader", "bc_keyed" };
            for (int g = 0; g < 3; g++) {
                char q[128];
                snprintf(q, sizeof q, "SELECT ag_catalog.drop_graph('%s', true)", graphs[g]);
                pq_exec(pg, q);
            }
        }
        if (native) {
            runs[FLOOR][r] = plain_table(pg, nv, false);
            runs[FLOOR_KEYED][r] = plain_table(pg, nv, true);
            pq_exec(pg, "DROP TABLE bc_plain");
        }
        runs[PLAIN_V][r] = plain_vertices(pg, nv);
        runs[LOADER_V][r] = loader_vertices(c, "bc_loader", false, nv);
        runs[LOADER_VK][r] = loader_vertices(c, "bc_keyed", true, nv);
    }
    way w[WAYS];
    for (int i = native ? FLOOR : PLAIN_V; i <= LOADER_VK; i++)
        w[i] = median_way(runs[i], rounds);
    w[PLAIN_E] = plain_edges(pg, nv, ne);
    w[LOADER_E] = loader_edges(c, nv, ne);
    static const char *const what[WAYS] = {
        "floor: plain COPY into (id bigint, properties agtype)",
        "floor, keyed: the same + CREATE INDEX on the key",
        "plain COPY, vertices (ids from the default)",
        "loader, vertices (copy, no key)",
        "loader, vertices (copy, keyed: index built at the end)",
        "plain COPY to a temp table + INSERT ... JOIN, edges",
        "loader, edges by key (copy, key map from one scan)",
    };
    /* The baseline of each row: vertices against the floor (native) or
     * the plain COPY into the label table; the keyed loader against the
     * keyed floor; edges against the plain COPY + JOIN. */
    static const int base_native[WAYS] = { FLOOR,       FLOOR_KEYED, FLOOR,  FLOOR,
                                           FLOOR_KEYED, PLAIN_E,     PLAIN_E };
    static const int base_stub[WAYS] = { PLAIN_V, PLAIN_V, PLAIN_V, PLAIN_V,
                                         PLAIN_V, PLAIN_E, PLAIN_E };
    printf("%d vertices (uid, name, age, score), %d edges by uid%s\n", nv, ne,
           rounds > 1 ? "; vertex ways: median of interleaved rounds" : "");
    printf("%-56s %10s %9s %11s\n", "way", "rows/s", native ? "of floor" : "of plain",
           "client CPU");
    for (int i = native ? FLOOR : PLAIN_V; i < WAYS; i++) {
        int base = native ? base_native[i] : base_stub[i];
        printf("%-56s %10.0f %9.2f %10.0f%%\n", what[i], w[i].rate, w[i].rate / w[base].rate,
               100 * w[i].client);
    }
    bench_print_load("load at end");
    agec_conn_release(c);
    agec_pool_close(pool, 1000, NULL);
    PQfinish(pg);
    pq_exec(admin, "DROP DATABASE IF EXISTS " DB);
    PQfinish(admin);
    return 0;
}
