/*
 * agec demo: the showcase workload. A generated social graph loaded by the
 * bulk loader, indexed, then queried through the pool with bound
 * parameters; the pool's statistics at the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agec/load.h"
#include "cli.h"

/* The demo's graph: --graph, else demo_social. A graph the demo made
 * carries this comment on its schema; another one is dropped only with
 * --replace. */
#define DEMO_MARK "made by agec demo"

static const char *graph_of(const cli *c)
{
    return c->graph != NULL ? c->graph : "demo_social";
}

static const char *const FIRST[] = { "Ada",    "Alan",     "Grace",  "Linus",  "Barbara", "Ken",
                                     "Dennis", "Margaret", "Edsger", "Donald", "Frances", "John",
                                     "Radia",  "Tim",      "Leslie", "Niklaus" };
static const char *const LAST[] = { "Lovelace", "Turing",   "Hopper",  "Torvalds",
                                    "Liskov",   "Thompson", "Ritchie", "Hamilton",
                                    "Dijkstra", "Knuth",    "Allen",   "Backus",
                                    "Perlman",  "Lee",      "Lamport", "Wirth" };
static const char *const CITIES[] = { "Oslo",    "Paris", "Lima",  "Kyiv",  "Osaka",
                                      "Nairobi", "Quito", "Hanoi", "Porto", "Tunis" };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct edge {
    int a, b, since;
} edge;

typedef struct demo {
    cli *c;
    int people;
    int nedges;
    edge *edges;
} demo;

/* Deterministic generator so reruns load the same graph. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void person_name(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s %d", FIRST[(size_t)i % COUNT(FIRST)],
             LAST[(size_t)(i / (int)COUNT(FIRST)) % COUNT(LAST)], i);
}

/* The properties of person i, as agtype map text from the builder. */
static agec_status person(agec_builder *b, int i, char **text, size_t *len, agec_error *err)
{
    char name[64];
    person_name(i, name, sizeof name);
    const char *city = CITIES[(size_t)(i * 7 + i / 3) % COUNT(CITIES)];
    (void)agec_builder_begin_map(b, err);
    (void)agec_builder_key(b, "id", 2, err);
    (void)agec_builder_int64(b, i, err);
    (void)agec_builder_key(b, "name", 4, err);
    (void)agec_builder_string(b, name, strlen(name), err);
    (void)agec_builder_key(b, "age", 3, err);
    (void)agec_builder_int64(b, 18 + (i * 37) % 62, err);
    (void)agec_builder_key(b, "city", 4, err);
    (void)agec_builder_string(b, city, strlen(city), err);
    (void)agec_builder_end_map(b, err);
    return agec_builder_finish(b, text, len, err);
}

/* People, then KNOWS edges between them named by id, through the bulk
 * loader: one transaction, batches straight into the label tables. */
static agec_status load_graph(demo *d, agec_conn *conn, agec_load_stats *stats, agec_error *err)
{
    load_progress lp = { .enabled = !d->c->quiet && isatty(STDERR_FILENO), .what = "loading" };
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.progress = cli_load_progress;
    o.progress_user = &lp;
    agec_loader *ld = NULL;
    agec_builder *b = NULL;
    agec_status st = agec_loader_open(conn, graph_of(d->c), &o, &ld, err);
    if (st == AGEC_OK)
        st = agec_loader_key(ld, "Person", "id", err);
    if (st == AGEC_OK)
        st = agec_builder_new(&b, err);
    for (int i = 0; st == AGEC_OK && i < d->people; i++) {
        char *text = NULL;
        size_t len = 0;
        if ((st = person(b, i, &text, &len, err)) == AGEC_OK)
            st = agec_loader_vertex(ld, "Person", text, len, err);
        agec_free(text);
    }
    for (int i = 0; st == AGEC_OK && i < d->nedges; i++) {
        char ka[16], kb[16], props[32];
        snprintf(ka, sizeof ka, "%d", d->edges[i].a);
        snprintf(kb, sizeof kb, "%d", d->edges[i].b);
        snprintf(props, sizeof props, "{\"since\": %d}", d->edges[i].since);
        st = agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", ka),
                              &AGEC_ENDPOINT_KEY("Person", kb), props, SIZE_MAX, err);
    }
    if (st == AGEC_OK)
        st = agec_loader_finish(ld, stats, err);
    if (lp.enabled) {
        lp.final = true;
        if (st == AGEC_OK)
            cli_load_progress(stats, &lp);
        fputc('\n', stderr);
    }
    agec_builder_free(b);
    agec_loader_free(ld);
    return st;
}

static int show(cli *c, agec_conn *conn, const char *title, const char *query, const char *params)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_result *res = NULL;
    double t0 = cli_now_ms();
    agec_status st = agec_cypher_exec(conn, graph_of(c), query, params, NULL, &res, &err);
    if (st != AGEC_OK)
        return cli_fail(title, st, &err);
    printf("\n%s\n", title);
    cli tbl = *c;
    tbl.format = FMT_TABLE;
    cli_print_result(&tbl, res, true, stdout);
    if (!c->quiet)
        printf("Time: %.1f ms\n", cli_now_ms() - t0);
    agec_result_free(res);
    return EXIT_OK;
}

static int step(agec_status st, const agec_error *err, const char *what)
{
    return st == AGEC_OK ? EXIT_OK : cli_fail(what, st, err);
}

/* The graph's schema comment is the demo's mark. */
static bool made_by_demo(agec_conn *conn, const char *graph)
{
    agec_result *res = NULL;
    const char *v[1] = { graph };
    bool yes = agec_sql_exec(conn,
                             "SELECT coalesce(obj_description(oid, 'pg_namespace') = '" DEMO_MARK
                             "', false) "
                             "FROM pg_catalog.pg_namespace WHERE nspname = $1",
                             1, v, NULL, &res, NULL) == AGEC_OK &&
               agec_result_rows(res) == 1 && strcmp(agec_result_text(res, 0, 0, NULL), "t") == 0;
    agec_result_free(res);
    return yes;
}

static agec_status mark(agec_conn *conn, const char *graph, agec_error *err)
{
    char sql[512], *q = sql;
    q += sprintf(q, "COMMENT ON SCHEMA \"");
    for (const char *p = graph; *p && q < sql + sizeof sql - 64; p++) {
        if (*p == '"')
            *q++ = '"'; /* doubled inside the quoted name (checked by agec_graph_name_check) */
        *q++ = *p;
    }
    snprintf(q, (size_t)(sql + sizeof sql - q), "\" IS '" DEMO_MARK "'");
    agec_result *res = NULL;
    agec_status st = agec_sql_exec(conn, sql, 0, NULL, NULL, &res, err);
    agec_result_free(res);
    return st;
}

int cmd_demo(cli *c, int argc, char **argv)
{
    demo d = { .c = c, .people = 1000 };
    bool replace = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], &d.people) || d.people < 10 || d.people > 1000000)
                return cli_usage_error("demo: --size must be 10..1000000");
        } else if (strcmp(argv[i], "--replace") == 0) {
            replace = true;
        } else {
            return cli_usage_error("demo: unknown argument %s", argv[i]);
        }
    }
    agec_error nerr = AGEC_ERROR_INIT;
    if (c->graph != NULL && agec_graph_name_check(c->graph, &nerr) != AGEC_OK)
        return cli_usage_error("demo: --graph %s: %s", c->graph, nerr.message);
    c->warnings_only = true; /* its own lines say what it does */
    int rc = cli_open_pool(c, 4, 2, true);
    if (rc != EXIT_OK)
        return rc;
    printf("agec %s demo: a social graph in Apache AGE, through a pool of %d (min %d)\n",
           agec_version(), c->pool_max, c->pool_min);
    double t_start = cli_now_ms();
    agec_conn *conn;
    if ((rc = cli_acquire(c, &conn)) != EXIT_OK)
        return rc;
    agec_error err = AGEC_ERROR_INIT;
    bool exists = false;
    rc = step(agec_graph_exists(conn, graph_of(c), &exists, &err), &err, "graph exists");
    if (rc == EXIT_OK && exists && !replace && !made_by_demo(conn, graph_of(c))) {
        fprintf(stderr,
                "agec: graph %s exists and was not made by agec demo: give another --graph, "
                "or --replace to drop it and its data\n",
                graph_of(c));
        rc = EXIT_QUERY;
    }
    if (rc == EXIT_OK && exists)
        rc = step(agec_graph_drop(conn, graph_of(c), true, &err), &err, "graph drop");

    /* Five KNOWS edges from each person, no self-loops, no pair (a, b)
     * twice (b -> a may also exist). Edge i starts at i % people, so the
     * earlier edges from a are edges[a + k * people] for k < i / people. */
    d.nedges = d.people * 5;
    d.edges = calloc((size_t)d.nedges, sizeof *d.edges);
    if (d.edges == NULL) {
        agec_conn_release(conn);
        return EXIT_QUERY;
    }
    uint32_t seed = 42;
    for (int i = 0; i < d.nedges; i++) {
        int a = i % d.people, b;
        bool dup;
        do {
            b = (int)(lcg(&seed) % (uint32_t)d.people);
            dup = b == a;
            for (int k = a; !dup && k < i; k += d.people)
                dup = d.edges[k].b == b;
        } while (dup);
        d.edges[i] = (edge){ a, b, 1990 + (int)(lcg(&seed) % 35) };
    }
    agec_load_stats ls = { .size = sizeof ls };
    if (rc == EXIT_OK)
        rc = step(load_graph(&d, conn, &ls, &err), &err, "loading");
    if (rc == EXIT_OK)
        rc = step(mark(conn, graph_of(c), &err), &err, "marking the graph");
    free(d.edges);
    agec_conn_release(conn);
    if (rc != EXIT_OK)
        return rc;
    printf("1. graph %s created with labels Person and KNOWS (Person.id indexed)\n", graph_of(c));
    printf("2. loaded %d people and %d KNOWS edges with the bulk loader (method %s, one "
           "transaction): %.0f ms, %.0f rows/s\n",
           d.people, d.nedges, agec_load_method_name(ls.method), ls.elapsed_s * 1000.0,
           ls.rows_per_s);

    if ((rc = cli_acquire(c, &conn)) != EXIT_OK)
        return rc;
    rc = step(agec_graph_create_indexes(conn, graph_of(c), NULL, &err), &err, "indexes");
    if (rc == EXIT_OK)
        printf("3. label indexes created: unique id, start_id, end_id, GIN properties\n");
    char who[128], params[256];
    person_name(0, who, sizeof who);
    snprintf(params, sizeof params, "{\"id\": 0}");
    if (rc == EXIT_OK)
        rc = show(c, conn, "4a. the 5 people with the most friends",
                  /* Counted over the edges alone (start_id/end_id), the names
                   * looked up for the top 5 only: no join of 2 x edges rows
                   * with the vertex table (10.7 s -> 8 s at --size 100000).
                   * Every ORDER BY names only variables a WITH projected:
                   * AGE 1.6 fails to order by an alias made in the same
                   * clause ("could not find rte for friends", 42703). */
                  "MATCH ()-[k:KNOWS]->() UNWIND [start_id(k), end_id(k)] AS p "
                  "WITH p, count(*) AS friends "
                  "WITH p, friends ORDER BY friends DESC, p LIMIT 5 "
                  "MATCH (q:Person) WHERE id(q) = p "
                  "WITH q.name AS name, friends "
                  "RETURN name, friends ORDER BY friends DESC, name",
                  NULL);
    if (rc == EXIT_OK) {
        char title[512];
        snprintf(title, sizeof title,
                 "4b. friends of friends of %s: known to people %s knows, not known to %s yet", who,
                 who, who);
        /* Directed: AGE plans an undirected pattern as a join on an OR of
         * both directions, which no index serves (33 s against 0.2 s at
         * --size 100000 on the PGlite server). */
        rc = show(c, conn, title,
                  "MATCH (me:Person {id: $id})-[:KNOWS]->(:Person)-[:KNOWS]->(fof:Person) "
                  "WHERE fof <> me AND NOT EXISTS((me)-[:KNOWS]->(fof)) "
                  "WITH DISTINCT fof.name AS name, fof.city AS city "
                  "RETURN name, city ORDER BY name LIMIT 10",
                  params);
    }
    if (rc == EXIT_OK) {
        /* A target three hops out, then the shortest chain to it. */
        agec_result *res = NULL;
        agec_status st = agec_cypher_exec(
            conn, graph_of(c),
            "MATCH (a:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->()-[:KNOWS]->(b:Person) "
            "WHERE b.id <> $id AND NOT EXISTS((a)-[:KNOWS]->(b)) RETURN b.id ORDER BY b.id LIMIT 1",
            params, NULL, &res, &err);
        static const char title4c[] = "4c. a shortest chain of KNOWS between two people (a path)";
        if (st != AGEC_OK) {
            rc = cli_fail("target", st, &err);
        } else if (agec_result_rows(res) == 1) {
            char p2[128];
            snprintf(p2, sizeof p2, "{\"a\": 0, \"b\": %s}", agec_result_text(res, 0, 0, NULL));
            rc = show(c, conn, title4c,
                      "MATCH p = (a:Person {id: $a})-[:KNOWS*1..3]-(b:Person {id: $b}) "
                      "WITH length(p) AS hops, p RETURN hops, p ORDER BY hops LIMIT 1",
                      p2);
        } else {
            printf("\n%s\n(skipped: no one is three KNOWS hops from %s without being a "
                   "direct friend)\n",
                   title4c, who);
        }
        agec_result_free(res);
    }
    if (rc == EXIT_OK)
        rc = show(c, conn, "4d. people per city",
                  "MATCH (p:Person) WITH p.city AS city, count(*) AS people "
                  "RETURN city, people ORDER BY people DESC, city",
                  NULL);
    agec_conn_release(conn);
    if (rc != EXIT_OK)
        return rc;

    agec_pool_stats s;
    if (agec_pool_stats_get(c->pool, &s) == AGEC_OK) {
        printf("\n5. pool statistics\n");
        printf("   connections opened  %llu (max %d, min %d)\n", (unsigned long long)s.opened,
               s.max, s.min);
        printf("   acquires            %llu (releases %llu, timeouts %llu)\n",
               (unsigned long long)s.acquires, (unsigned long long)s.releases,
               (unsigned long long)s.acquire_timeouts);
        printf("   acquire wait        p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
               (double)s.wait_p50_us / 1000.0, (double)s.wait_p99_us / 1000.0,
               (double)s.wait_max_us / 1000.0);
        printf("   validations         %llu (failed %llu)\n", (unsigned long long)s.validations,
               (unsigned long long)s.validation_failures);
        printf("   breaker             %s\n", agec_breaker_state_name(s.breaker));
    }
    /* In cluster mode the cluster owns the pool and closes it. */
    agec_status st = c->cluster ? agec_cluster_close(c->cluster, 5000, &err)
                                : agec_pool_close(c->pool, 5000, &err);
    c->pool = NULL;
    c->cluster = NULL;
    if (st != AGEC_OK)
        return cli_fail("closing the pool", st, &err);
    printf("   pool closed gracefully; demo took %.1f s\n", (cli_now_ms() - t_start) / 1000.0);
    return EXIT_OK;
}
