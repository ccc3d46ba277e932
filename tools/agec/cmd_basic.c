/* agec query / sql / graph. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Split "a,b,c" into a NULL-terminated array inside one allocation. */
static char **split_columns(const char *list, size_t *n)
{
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    size_t len = strlen(list) + 1;
    char **arr = malloc((count + 1) * sizeof(char *) + len);
    if (arr == NULL)
        return NULL;
    char *s = (char *)(arr + count + 1);
    memcpy(s, list, len);
    size_t i = 0;
    for (char *tok = s;; i++) {
        arr[i] = tok;
        char *comma = strchr(tok, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        tok = comma + 1;
    }
    arr[count] = NULL;
    *n = count;
    return arr;
}

typedef struct stream_print {
    const cli *c;
    bool cypher;
    size_t rows;
} stream_print;

static bool print_streamed(agec_result *row, void *user)
{
    stream_print *sp = user;
    cli_print_row(sp->c, row, sp->cypher, sp->rows == 0, stdout);
    sp->rows++;
    return true;
}

/* Run on one pooled connection: streaming for JSON/CSV (bounded memory),
 * collected for tables (widths need every row). */
static int run_and_print(cli *c, const char *graph, const char *text, const char *params, int nargs,
                         const char *const *args, const agec_query_opts *opts)
{
    int rc = cli_open_pool(c, 1, 0, false);
    if (rc != EXIT_OK)
        return rc;
    bool cypher = graph != NULL;
    /* A Cypher read over a cluster goes through the cluster's Cypher read,
     * which sends what AGE cannot run on a standby to the primary. */
    bool cluster_read = cypher && c->cluster != NULL && c->read_only;
    agec_conn *conn = NULL;
    if (!cluster_read && (rc = cli_acquire(c, &conn)) != EXIT_OK)
        return rc;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st;
    double t0 = cli_now_ms();
    if (cli_format(c) != FMT_TABLE) {
        stream_print sp = { c, cypher, 0 };
        if (cluster_read)
            st = agec_cluster_cypher_read_stream(c->cluster, 0, -1, graph, text, params, opts,
                                                 print_streamed, &sp, &err);
        else
            st = cypher ? agec_cypher_stream(conn, graph, text, params, opts, print_streamed, &sp,
                                             &err)
                        : agec_sql_stream(conn, text, nargs, args, opts, print_streamed, &sp, &err);
    } else {
        agec_result *res = NULL;
        if (cluster_read)
            st = agec_cluster_cypher_read(c->cluster, 0, -1, graph, text, params, opts, &res, &err);
        else
            st = cypher ? agec_cypher_exec(conn, graph, text, params, opts, &res, &err)
                        : agec_sql_exec(conn, text, nargs, args, opts, &res, &err);
        if (st == AGEC_OK) {
            cli_print_result(c, res, cypher, stdout);
            if (!c->quiet)
                printf("Time: %.3f ms\n", cli_now_ms() - t0);
        }
        agec_result_free(res);
    }
    if (conn != NULL)
        agec_conn_release(conn);
    fflush(stdout);
    return st == AGEC_OK ? EXIT_OK : cli_fail(cypher ? "query" : "sql", st, &err);
}

int cmd_query(cli *c, int argc, char **argv)
{
    const char *query = NULL, *params_json = NULL, *columns = NULL;
    const char **pairs = calloc((size_t)argc, sizeof *pairs);
    int npairs = 0, rc;
    if (pairs == NULL)
        return EXIT_QUERY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--param") == 0 && has_value) {
            pairs[npairs++] = argv[++i];
        } else if (strcmp(a, "--params") == 0 && has_value) {
            params_json = argv[++i];
        } else if (strcmp(a, "--columns") == 0 && has_value) {
            columns = argv[++i];
        } else if (a[0] == '-' && a[1] == '-') {
            rc = cli_usage_error("query: unknown option or missing value: %s", a);
            goto out;
        } else if (query == NULL) {
            query = a;
        } else {
            rc = cli_usage_error("query: give the Cypher text as one argument");
            goto out;
        }
    }
    if (query == NULL) {
        rc = cli_usage_error("query: missing CYPHER text");
        goto out;
    }
    if (c->graph == NULL) {
        rc = cli_usage_error("query: --graph NAME is required");
        goto out;
    }
    char *params = NULL;
    if ((rc = cli_build_params(params_json, pairs, npairs, &params)) != EXIT_OK)
        goto out;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms;
    char **cols = NULL;
    if (columns != NULL) {
        cols = split_columns(columns, &o.ncolumns);
        o.columns = (const char *const *)cols;
    }
    rc = run_and_print(c, c->graph, query, params, 0, NULL, &o);
    free(cols);
    agec_free(params);
out:
    free(pairs);
    return rc;
}

int cmd_sql(cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("sql: missing SQL text");
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms;
    o.prepare = false;
    return run_and_print(c, NULL, argv[1], NULL, argc - 2, (const char *const *)argv + 2, &o);
}

int cmd_graph(cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("graph: create|drop|exists|list|labels|index NAME");
    const char *verb = argv[1];
    bool cascade = false;
    const char *name = c->graph;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--cascade") == 0)
            cascade = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("graph: unknown option %s", argv[i]);
        else
            name = argv[i];
    }
    bool needs_name = strcmp(verb, "list") != 0;
    static const char *const verbs[] = { "create", "drop", "exists", "list", "labels", "index" };
    bool known = false;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        known |= strcmp(verb, verbs[i]) == 0;
    if (!known)
        return cli_usage_error("graph: unknown action '%s'", verb);
    if (needs_name && name == NULL)
        return cli_usage_error("graph %s: missing graph NAME", verb);
    agec_error err = AGEC_ERROR_INIT;
    if (needs_name && agec_graph_name_check(name, &err) != AGEC_OK)
        return cli_usage_error("graph %s: %s", verb, err.message);
    int rc = cli_open_pool(c, 1, 0, false);
    agec_conn *conn = NULL;
    if (rc != EXIT_OK || (rc = cli_acquire(c, &conn)) != EXIT_OK)
        return rc;
    agec_status st = AGEC_OK;
    if (strcmp(verb, "create") == 0) {
        st = agec_graph_create(conn, name, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("graph %s created\n", name);
    } else if (strcmp(verb, "drop") == 0) {
        st = agec_graph_drop(conn, name, cascade, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("graph %s dropped\n", name);
    } else if (strcmp(verb, "exists") == 0) {
        bool exists = false;
        st = agec_graph_exists(conn, name, &exists, &err);
        if (st == AGEC_OK)
            printf("%s\n", exists ? "true" : "false");
    } else if (strcmp(verb, "list") == 0) {
        agec_result *res = NULL;
        st = agec_sql_exec(conn, "SELECT name::text AS graph FROM ag_catalog.ag_graph ORDER BY 1",
                           0, NULL, NULL, &res, &err);
        if (st == AGEC_OK)
            cli_print_result(c, res, false, stdout);
        agec_result_free(res);
    } else if (strcmp(verb, "labels") == 0) {
        agec_result *res = NULL;
        st = agec_label_list(conn, name, &res, &err);
        if (st == AGEC_OK)
            cli_print_result(c, res, false, stdout);
        agec_result_free(res);
    } else {
        st = agec_graph_create_indexes(conn, name, NULL, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("indexes of graph %s created\n", name);
    }
    agec_conn_release(conn);
    return st == AGEC_OK ? EXIT_OK : cli_fail(verb, st, &err);
}
