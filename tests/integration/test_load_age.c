/*
 * The bulk loader on the Apache AGE (PGlite) server: a generated graph
 * loaded by the loader and by Cypher (UNWIND ... CREATE through
 * agec_cypher_exec) must be the same graph, vertex by vertex and edge by
 * edge, labels, properties and value types included; MATCH works right
 * after; a later CREATE does not collide; bad input fails with file, line
 * and column and leaves nothing of its chunk; chunked loads resume.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agec/agec.h"
#include "agec/load.h"

#define GA "it_load_a"
#define GB "it_load_b"
#define GC "it_load_c"
#define NV 400
#define NE 1200

static agec_pool *pool;

static agec_conn *get(void)
{
    return agec_test_acquire(pool);
}

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_age_conninfo();
    cfg.max = 1;
    cfg.on_event = agec_pool_event_ignore;
    cfg.acquire_timeout_ms = 10000;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &pool, &err), &err, "open");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GA);
    agec_test_graph_drop(c, GB);
    agec_test_graph_drop(c, GC);
    agec_conn_release(c);
    agec_pool_close(pool, 1000, NULL);
    return 0;
}

/* Properties of vertex i: every kind of value the issue names. */
static void vertex_props(int i, char *buf, size_t cap)
{
    static const char *strs[] = {
        "plain",
        "with \\\"quotes\\\"",
        "back\\\\slash",
        "new\\nline\\ttab",
        "\xf0\x9f\x98\x80 4-byte \xf0\x9d\x84\x9e",
        "",
    };
    int64_t big = i % 3 == 0 ? INT64_MAX - i : i % 3 == 1 ? INT64_MIN + i : (int64_t)i * 1000;
    snprintf(buf, cap,
             "{\"uid\": %d, \"big\": %" PRId64 ", \"f\": %d.25, \"tiny\": 1e-300, \"n\": "
             "12345678901234567890.123456789%d::numeric, \"s\": \"%s\", \"ok\": %s, "
             "\"list\": [1, \"two\", [3.5, {\"deep\": [true, null]}]], \"map\": {\"k\": "
             "{\"v\": %d}}}",
             i, big, i, i % 10, strs[i % 6], i % 2 ? "true" : "false", i);
}

static void edge_ends(int j, int *s, int *e)
{
    *s = (j * 7) % NV;
    *e = (j * 13 + 1) % NV;
}

static void edge_props(int j, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"w\": %d.5, \"tag\": \"e\\\"%d\", \"n\": 0.1::numeric}", j, j);
}

typedef struct progress_seen {
    int calls;
    uint64_t last_rows, last_bytes;
} progress_seen;

/* Progress comes after every batch, counting up. */
static void on_progress(const agec_load_stats *s, void *user)
{
    progress_seen *p = user;
    assert_true(s->vertices + s->edges >= p->last_rows);
    assert_true(s->bytes >= p->last_bytes);
    assert_true(s->elapsed_s >= 0);
    p->last_rows = s->vertices + s->edges;
    p->last_bytes = s->bytes;
    p->calls++;
}

static void load_with_loader(agec_conn *c, const char *g)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.batch_rows = 150; /* several batches per label */
    progress_seen seen = { 0 };
    o.progress = on_progress;
    o.progress_user = &seen;
    agec_test_must(agec_loader_open(c, g, &o, &ld, &err), &err, "loader open");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    char buf[1024];
    for (int i = 0; i < NV; i++) {
        vertex_props(i, buf, sizeof buf);
        agec_test_must(agec_loader_vertex(ld, "Person", buf, SIZE_MAX, &err), &err, "vertex");
    }
    for (int j = 0; j < NE; j++) {
        int s, e;
        char ks[16], ke[16];
        edge_ends(j, &s, &e);
        snprintf(ks, sizeof ks, "%d", s);
        snprintf(ke, sizeof ke, "%d", e);
        edge_props(j, buf, sizeof buf);
        agec_test_must(agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", ks),
                                        &AGEC_ENDPOINT_KEY("Person", ke), buf, SIZE_MAX, &err),
                       &err, "edge");
    }
    agec_load_stats st = { .size = sizeof st };
    agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
    assert_int_equal(st.vertices, NV);
    assert_int_equal(st.edges, NE);
    /* The default method: COPY on native AGE, INSERT on PGlite (no COPY there). */
    assert_int_equal(st.method, agec_test_age_native() ? AGEC_LOAD_COPY : AGEC_LOAD_INSERT);
    /* 400 / 150 -> 3 vertex batches, 1200 / 150 -> 8 edge batches, finish */
    assert_int_equal(seen.calls, 3 + 8 + 1);
    assert_int_equal(seen.last_rows, NV + NE);
    assert_true(st.rows_per_s > 0);
    agec_loader_free(ld);
}

static void cypher(agec_conn *c, const char *g, const char *q, const char *params)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, g, q, params, NULL, &r, &err), &err, q);
    agec_result_free(r);
}

static void load_with_cypher(agec_conn *c, const char *g)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_create(c, g, &err), &err, "create graph");
    size_t cap = 4 << 20;
    char *p = malloc(cap), buf[1024];
    size_t n = (size_t)snprintf(p, cap, "{\"rows\": [");
    for (int i = 0; i < NV; i++) {
        vertex_props(i, buf, sizeof buf);
        n += (size_t)snprintf(p + n, cap - n, "%s%s", i ? ", " : "", buf);
    }
    snprintf(p + n, cap - n, "]}");
    cypher(c, g, "UNWIND $rows AS r CREATE (v:Person) SET v = r", p);
    n = (size_t)snprintf(p, cap, "{\"rows\": [");
    for (int j = 0; j < NE; j++) {
        int s, e;
        edge_ends(j, &s, &e);
        edge_props(j, buf, sizeof buf);
        n += (size_t)snprintf(p + n, cap - n, "%s{\"s\": %d, \"e\": %d, \"p\": %s}", j ? ", " : "",
                              s, e, buf);
    }
    snprintf(p + n, cap - n, "]}");
    cypher(c, g,
           "UNWIND $rows AS r MATCH (a:Person), (b:Person) WHERE a.uid = r.s AND b.uid = r.e "
           "CREATE (a)-[e:KNOWS {w: r.p.w, tag: r.p.tag, n: r.p.n}]->(b)",
           p);
    free(p);
}

static agec_result *rows(agec_conn *c, const char *g, const char *q)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *r = NULL;
    agec_test_must(agec_cypher_exec(c, g, q, NULL, NULL, &r, &err), &err, q);
    return r;
}

/* Every cell of a and b equal, values and types (agec_value_equal). */
static void same_rows(agec_result *a, agec_result *b, size_t want)
{
    assert_int_equal(agec_result_rows(a), want);
    assert_int_equal(agec_result_rows(b), want);
    assert_int_equal(agec_result_columns(a), agec_result_columns(b));
    for (size_t i = 0; i < want; i++)
        for (size_t k = 0; k < agec_result_columns(a); k++) {
            const agec_value *va, *vb;
            agec_error err = AGEC_ERROR_INIT;
            agec_test_must(agec_result_value(a, i, k, &va, &err), &err, "cell a");
            agec_test_must(agec_result_value(b, i, k, &vb, &err), &err, "cell b");
            if (!agec_value_equal(va, vb))
                fail_msg("row %zu col %zu: loader %s, cypher %s", i, k,
                         agec_result_text(a, i, k, NULL), agec_result_text(b, i, k, NULL));
        }
}

static void test_loader_equals_cypher(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GA);
    agec_test_graph_drop(c, GB);
    load_with_loader(c, GA);
    load_with_cypher(c, GB);
    const char *vq = "MATCH (n) RETURN label(n), properties(n) ORDER BY n.uid";
    agec_result *a = rows(c, GA, vq), *b = rows(c, GB, vq);
    same_rows(a, b, NV);
    agec_result_free(a);
    agec_result_free(b);
    const char *eq = "MATCH (a)-[e]->(b) RETURN a.uid, b.uid, label(e), properties(e), "
                     "label(a), label(b) ORDER BY a.uid, b.uid, e.w";
    a = rows(c, GA, eq);
    b = rows(c, GB, eq);
    same_rows(a, b, NE);
    agec_result_free(a);
    agec_result_free(b);
    /* The value types came through: int64 limits, numeric, 4-byte UTF-8. */
    a = rows(c, GA, "MATCH (n:Person {uid: 3}) RETURN n.big, n.n, n.s");
    assert_string_equal(agec_result_text(a, 0, 0, NULL), "9223372036854775804");
    assert_string_equal(agec_result_text(a, 0, 1, NULL),
                        "12345678901234567890.1234567893::numeric");
    assert_string_equal(agec_result_text(a, 0, 2, NULL), "\"new\\nline\\ttab\"");
    agec_result_free(a);
    a = rows(c, GA, "MATCH (n:Person {uid: 4}) RETURN n.big, n.s");
    assert_string_equal(agec_result_text(a, 0, 0, NULL), "-9223372036854775804");
    assert_string_equal(agec_result_text(a, 0, 1, NULL),
                        "\"\xf0\x9f\x98\x80 4-byte \xf0\x9d\x84\x9e\"");
    agec_result_free(a);
    agec_conn_release(c);
}

static void test_match_and_create_after_load(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GA);
    load_with_loader(c, GA);
    /* MATCH right away, by key (uses the key index) and along edges. */
    agec_result *r = rows(c, GA,
                          "MATCH (a:Person)-[:KNOWS]->(b) WHERE a.uid = 7 RETURN b.uid "
                          "ORDER BY b.uid");
    assert_true(agec_result_rows(r) > 0);
    agec_result_free(r);
    /* New vertices and edges by Cypher get ids the load did not use. */
    cypher(c, GA, "CREATE (:Person {uid: -1})-[:KNOWS {w: 0.0}]->(:Person {uid: -2})", NULL);
    r = rows(c, GA, "MATCH (n:Person) RETURN count(DISTINCT id(n)), count(n)");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "402");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "402");
    agec_result_free(r);
    r = rows(c, GA, "MATCH ()-[e:KNOWS]->() RETURN count(DISTINCT id(e)), count(e)");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1201");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "1201");
    agec_result_free(r);
    /* The key index exists. */
    agec_error err = AGEC_ERROR_INIT;
    const char *v[1] = { GA };
    agec_test_must(agec_sql_exec(c,
                                 "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND "
                                 "indexdef LIKE '%agtype_access_operator%uid%'",
                                 1, v, NULL, &r, &err),
                   &err, "indexes");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "1");
    agec_result_free(r);
    agec_conn_release(c);
}

/* The number of vertices of label Person in GC (0 when it has none). */
static long count_people(agec_conn *c)
{
    bool exists = false;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_graph_exists(c, GC, &exists, &err), &err, "exists");
    if (!exists)
        return 0;
    agec_result *r = rows(c, GC, "MATCH (n) RETURN count(n)");
    long n = atol(agec_result_text(r, 0, 0, NULL));
    agec_result_free(r);
    return n;
}

static agec_loader *open_c(agec_conn *c, uint64_t chunk, uint64_t skip)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.batch_rows = 4;
    o.chunk_rows = chunk;
    o.skip_rows = skip;
    agec_test_must(agec_loader_open(c, GC, &o, &ld, &err), &err, "open");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    return ld;
}

static void test_bad_rows_leave_nothing(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    static const struct {
        const char *row, *want;
    } bad[] = {
        { "{\"uid\": 1, \"x\": [1, }", "rows.jsonl:9: column 21: properties:" },
        { "[1, 2]", "rows.jsonl:9: column 1: properties must be a map" },
        { "{\"name\": \"no key\"}", "rows.jsonl:9: vertex of Person has no key property uid" },
        { "{\"uid\": 3}", "rows.jsonl:9: duplicate key uid = 3 in label Person" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        agec_loader *ld = open_c(c, 0, 0);
        agec_error err = AGEC_ERROR_INIT;
        agec_loader_source(ld, "rows.jsonl", 1);
        for (int i = 0; i < 8; i++) { /* two batches written before the bad row */
            char b[64];
            snprintf(b, sizeof b, "{\"uid\": %d}", i);
            agec_test_must(agec_loader_vertex(ld, "Person", b, SIZE_MAX, &err), &err, "vertex");
        }
        assert_int_equal(agec_loader_vertex(ld, "Person", bad[k].row, SIZE_MAX, &err),
                         AGEC_ERR_INPUT);
        if (strstr(err.message, bad[k].want) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", k, err.message, bad[k].want);
        assert_int_equal(agec_loader_vertex(ld, "Person", "{\"uid\": 99}", SIZE_MAX, NULL),
                         AGEC_ERR_STATE);
        agec_loader_free(ld);
        assert_int_equal(count_people(c), 0); /* the graph itself was rolled back */
    }
    /* An edge to a vertex that does not exist. */
    agec_loader *ld = open_c(c, 0, 0);
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_loader_vertex(ld, "Person", "{\"uid\": \"a\"}", SIZE_MAX, &err), &err, "v");
    agec_loader_source(ld, "e.csv", 2);
    assert_int_equal(agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", "a"),
                                      &AGEC_ENDPOINT_KEY("Person", "zz"), NULL, 0, &err),
                     AGEC_ERR_INPUT);
    assert_non_null(strstr(err.message, "e.csv:2: edge end vertex Person uid = zz does not exist"));
    agec_loader_free(ld);
    assert_int_equal(count_people(c), 0);
    agec_conn_release(c);
}

typedef struct rejects {
    int count;
    char first_row[128];
    char last_row[128]; /* "(none)" when the callback got no row */
} rejects;

static bool take_all(const agec_error *e, const char *row, size_t len, void *user)
{
    rejects *rj = user;
    assert_int_equal(e->code, AGEC_ERR_INPUT);
    if (rj->count++ == 0 && row != NULL)
        snprintf(rj->first_row, sizeof rj->first_row, "%.*s", (int)len, row);
    if (row != NULL)
        snprintf(rj->last_row, sizeof rj->last_row, "%.*s", (int)len, row);
    else
        snprintf(rj->last_row, sizeof rj->last_row, "(none)");
    return true;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_csv_types_and_rejects(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    char dir[] = "/tmp/agec-load-XXXXXX", vp[64], ep[64];
    assert_non_null(mkdtemp(dir));
    snprintf(vp, sizeof vp, "%s/p.csv", dir);
    snprintf(ep, sizeof ep, "%s/k.csv", dir);
    write_file(vp, "uid:int,name,score:float,amount:numeric,ok:bool,tags:json\n"
                   "1,Ada,1.5,0.10,true,\"[1, \"\"x\"\"]\"\n"
                   "2,\"multi\nline, \"\"quoted\"\"\",-2e10,12345678901234567890.5,false,{}\n"
                   "x3,bad int,,,,\n"
                   "4,,,,maybe,\n"
                   "5,,,,,[1,\n"
                   "6,six,,,,\n");
    write_file(ep, ":START_ID(Person),:END_ID(Person),since:int\n1,2,2020\n2,6,\n6,7,1\n");
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_load_opts o;
    agec_load_opts_init(&o);
    rejects rejected = { 0 };
    o.reject = take_all;
    o.reject_user = &rejected;
    agec_test_must(agec_loader_open(c, GC, &o, &ld, &err), &err, "open");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    agec_test_must(agec_loader_file(ld, false, "Person", vp, AGEC_FORMAT_AUTO, &err), &err, "v");
    agec_test_must(agec_loader_file(ld, true, "KNOWS", ep, AGEC_FORMAT_AUTO, &err), &err, "e");
    agec_load_stats st = { .size = sizeof st };
    agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
    agec_loader_free(ld);
    assert_int_equal(rejected.count, 4); /* x3, maybe, [1, and the edge to 7 */
    assert_string_equal(rejected.first_row, "x3,bad int,,,,"); /* the row, as CSV */
    assert_string_equal(rejected.last_row, "6,7,1");           /* a missing endpoint's row too */
    assert_int_equal(st.rejected, 4);
    struct stat sv, se;
    assert_int_equal(stat(vp, &sv), 0);
    assert_int_equal(stat(ep, &se), 0);
    assert_int_equal(st.input_bytes, (uint64_t)(sv.st_size + se.st_size)); /* for progress bars */
    assert_int_equal(st.vertices, 3);
    assert_int_equal(st.edges, 2);
    agec_result *r = rows(c, GC,
                          "MATCH (n:Person) WHERE n.uid = 2 RETURN n.name, n.score, "
                          "n.amount, n.ok, n.tags");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "\"multi\\nline, \\\"quoted\\\"\"");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "-20000000000.0");
    assert_string_equal(agec_result_text(r, 0, 2, NULL), "12345678901234567890.5::numeric");
    assert_string_equal(agec_result_text(r, 0, 3, NULL), "false");
    assert_string_equal(agec_result_text(r, 0, 4, NULL), "{}");
    agec_result_free(r);
    r = rows(c, GC, "MATCH (a)-[e:KNOWS]->(b) RETURN a.uid, b.uid, e.since ORDER BY a.uid");
    assert_int_equal(agec_result_rows(r), 2);
    assert_string_equal(agec_result_text(r, 0, 2, NULL), "2020");
    assert_true(agec_result_is_null(r, 1, 2) ||
                strcmp(agec_result_text(r, 1, 2, NULL), "null") == 0);
    agec_result_free(r);

    /* Without a reject callback the first bad row fails, naming file, line, column. */
    agec_test_graph_drop(c, GC);
    agec_test_must(agec_loader_open(c, GC, NULL, &ld, &err), &err, "open");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    assert_int_equal(agec_loader_file(ld, false, "Person", vp, AGEC_FORMAT_AUTO, &err),
                     AGEC_ERR_INPUT);
    char want[128];
    snprintf(want, sizeof want, "%s:5: column 1 (uid): not an integer: x3", vp);
    if (strstr(err.message, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, want);
    agec_loader_free(ld);
    assert_int_equal(count_people(c), 0);
    unlink(vp);
    unlink(ep);
    rmdir(dir);
    agec_conn_release(c);
}

static void test_chunks_resume(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    agec_loader *ld = open_c(c, 10, 0);
    agec_error err = AGEC_ERROR_INIT;
    char b[64];
    int i;
    for (i = 0; i < 25; i++) {
        snprintf(b, sizeof b, "{\"uid\": %d}", i);
        agec_test_must(agec_loader_vertex(ld, "Person", b, SIZE_MAX, &err), &err, "vertex");
    }
    assert_int_equal(agec_loader_vertex(ld, "Person", "{\"uid\": 0}", SIZE_MAX, &err),
                     AGEC_ERR_INPUT);
    agec_load_stats st = { .size = sizeof st };
    agec_loader_stats(ld, &st);
    assert_int_equal(st.committed, 20);
    agec_loader_free(ld);
    assert_int_equal(count_people(c), 20); /* two chunks stayed, the third did not */
    /* Resume: the same input, fixed, from the committed position. */
    ld = open_c(c, 10, st.committed);
    for (i = 0; i < 40; i++) {
        snprintf(b, sizeof b, "{\"uid\": %d}", i);
        agec_test_must(agec_loader_vertex(ld, "Person", b, SIZE_MAX, &err), &err, "vertex");
    }
    /* Edges reach vertices of the first run through the map read at open. */
    agec_test_must(agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", "1"),
                                    &AGEC_ENDPOINT_KEY("Person", "39"), NULL, 0, &err),
                   &err, "edge");
    agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
    assert_int_equal(st.skipped, 20);
    agec_loader_free(ld);
    assert_int_equal(count_people(c), 40);
    agec_result *r = rows(c, GC, "MATCH (n:Person) RETURN count(DISTINCT n.uid)");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "40");
    agec_result_free(r);
    r = rows(c, GC, "MATCH (a {uid: 1})-[:KNOWS]->(b) RETURN b.uid");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "39");
    agec_result_free(r);
    agec_conn_release(c);
}

/* A batch whose reserved ids are not consecutive (someone took a value of
 * the label's sequence in between: here a CREATE on the loader's own
 * connection, between two chunks) goes through the id-array statement. */
static void test_ids_not_consecutive(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    agec_loader *ld = open_c(c, 3, 0); /* chunks of 3, batches (and id blocks) of 4 */
    agec_error err = AGEC_ERROR_INIT;
    char b[64];
    for (int i = 0; i < 6; i++) {
        if (i == 4) /* entry 4 is taken by row 3; the CREATE takes 5; rows 4, 5 get 6, 7 */
            cypher(c, GC, "CREATE (:Person {uid: 100})", NULL);
        snprintf(b, sizeof b, "{\"uid\": %d}", i);
        agec_test_must(agec_loader_vertex(ld, "Person", b, SIZE_MAX, &err), &err, "vertex");
    }
    agec_test_must(agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", "3"),
                                    &AGEC_ENDPOINT_KEY("Person", "5"), NULL, 0, &err),
                   &err, "edge");
    agec_test_must(agec_loader_finish(ld, NULL, &err), &err, "finish");
    agec_loader_free(ld);
    agec_result *r = rows(c, GC, "MATCH (n:Person) RETURN count(DISTINCT id(n)), count(n)");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "7");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "7");
    agec_result_free(r);
    r = rows(c, GC, "MATCH (a:Person)-[:KNOWS]->(b:Person) RETURN a.uid, b.uid");
    assert_int_equal(agec_result_rows(r), 1);
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "3");
    assert_string_equal(agec_result_text(r, 0, 1, NULL), "5");
    agec_result_free(r);
    agec_conn_release(c);
}

/* Misuse: a key set after rows, another key, an edge label used as a vertex label. */
static void test_api_misuse(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld;
    agec_test_must(agec_loader_open(c, GC, NULL, &ld, &err), &err, "open");
    agec_test_must(agec_loader_vertex(ld, "Doc", "{\"n\": 1}", SIZE_MAX, &err), &err, "vertex");
    assert_int_equal(agec_loader_key(ld, "Doc", "n", &err), AGEC_ERR_STATE);
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "key");
    agec_test_must(agec_loader_key(ld, "Person", "uid", &err), &err, "same key again");
    assert_int_equal(agec_loader_key(ld, "Person", "name", &err), AGEC_ERR_STATE);
    assert_int_equal(agec_loader_key(ld, "Person", "bad-name", &err), AGEC_ERR_NAME);
    agec_test_must(
        agec_loader_edge(ld, "LINK", &AGEC_ENDPOINT_ID(1), &AGEC_ENDPOINT_ID(2), NULL, 0, &err),
        &err, "edge by ids");
    assert_int_equal(agec_loader_vertex(ld, "LINK", NULL, 0, &err), AGEC_ERR_INVALID_ARG);
    agec_loader_free(ld); /* failed: rolled back */
    assert_int_equal(count_people(c), 0);
    agec_conn_release(c);
}

/* COPY asked for: refused with the reason on PGlite (its COPY FROM STDIN
 * breaks the protocol), taken on native AGE. */
static void test_copy_per_server(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.method = AGEC_LOAD_COPY;
    agec_loader *ld = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_test_age_native()) {
        agec_test_must(agec_loader_open(c, GC, &o, &ld, &err), &err, "loader open, COPY");
        agec_test_must(agec_loader_vertex(ld, "Person", "{\"uid\": 1}", SIZE_MAX, &err), &err,
                       "vertex");
        agec_load_stats st = { .size = sizeof st };
        agec_test_must(agec_loader_finish(ld, &st, &err), &err, "finish");
        assert_int_equal(st.method, AGEC_LOAD_COPY);
        assert_int_equal(st.vertices, 1);
        agec_loader_free(ld);
    } else {
        assert_int_equal(agec_loader_open(c, GC, &o, &ld, &err), AGEC_ERR_INVALID_ARG);
        assert_null(ld);
        assert_non_null(strstr(err.message, "PGlite"));
    }
    /* The server still answers. */
    agec_result *r = NULL;
    agec_test_must(agec_sql_exec(c, "SELECT 1", 0, NULL, NULL, &r, &err), &err, "select");
    agec_result_free(r);
    agec_conn_release(c);
}

/* Issue 24 on the INSERT path (AGE's own agtype input): a NUL (\u0000,
 * which AGE's lexer refuses) is one rejected row, not a failed batch; a
 * CR before a closing quote is kept; the counts add up. */
static void test_nul_and_counts_insert_path(void **state)
{
    (void)state;
    agec_conn *c = get();
    agec_test_graph_drop(c, GC);
    char dir[] = "/tmp/agec-load24-XXXXXX", jp[64], cp[64];
    assert_non_null(mkdtemp(dir));
    snprintf(jp, sizeof jp, "%s/n.jsonl", dir);
    snprintf(cp, sizeof cp, "%s/c.csv", dir);
    write_file(jp, "{\"uid\": 1}\n{\"uid\": 2, \"s\": \"a\\u0000b\"}\n{\"uid\": 3}\n");
    write_file(cp, "uid:int,s\n4,\"x\r\"\nbad,y\n");
    rejects rj = { 0, "", "" };
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.reject = take_all;
    o.reject_user = &rj;
    agec_loader *ld = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_loader_open(c, GC, &o, &ld, &err), &err, "open");
    agec_test_must(agec_loader_file(ld, false, "Person", jp, AGEC_FORMAT_AUTO, &err), &err,
                   "jsonl");
    agec_test_must(agec_loader_file(ld, false, "Person", cp, AGEC_FORMAT_AUTO, &err), &err, "csv");
    agec_load_stats s;
    agec_test_must(agec_loader_finish(ld, &s, &err), &err, "finish");
    agec_loader_free(ld);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.vertices, 3);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(rj.count, 2);
    assert_int_equal(count_people(c), 3);
    agec_result *r = rows(c, GC, "MATCH (n {uid: 4}) RETURN n.s");
    assert_string_equal(agec_result_text(r, 0, 0, NULL), "\"x\\r\"");
    agec_result_free(r);
    agec_test_graph_drop(c, GC);
    agec_conn_release(c);
    remove(jp);
    remove(cp);
    remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_equals_cypher),
        cmocka_unit_test(test_match_and_create_after_load),
        cmocka_unit_test(test_bad_rows_leave_nothing),
        cmocka_unit_test(test_csv_types_and_rejects),
        cmocka_unit_test(test_chunks_resume),
        cmocka_unit_test(test_ids_not_consecutive),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_copy_per_server),
        cmocka_unit_test(test_nul_and_counts_insert_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
