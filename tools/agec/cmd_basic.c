/* agec query / sql / graph. */
#include <stdio.h>
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

/* A streamed row (user: whether the rows are Cypher's). */
static bool print_streamed(agec_result *row, void *user)
{
    cli_print_json_row(row, *(const bool *)user, stdout);
    return true;
}

/* Run on one pooled connection: JSON Lines streamed (bounded memory), CSV
 * and tables collected (a header for no rows, widths over every row). */
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
    /* JSON Lines streams (bounded memory); CSV and tables collect the rows
     * (CSV prints its header even for no rows, and one result's). */
    if (cli_format(c) == FMT_JSON) {
        if (cluster_read)
            st = agec_cluster_cypher_read_stream(c->cluster, 0, -1, graph, text, params, opts,
                                                 print_streamed, &cypher, &err);
        else
            st = cypher ? agec_cypher_stream(conn, graph, text, params, opts, print_streamed,
                                             &cypher, &err)
                        : agec_sql_stream(conn, text, nargs, args, opts, print_streamed, &cypher,
                                          &err);
    } else {
        agec_result *res = NULL;
        if (cluster_read)
            st = agec_cluster_cypher_read(c->cluster, 0, -1, graph, text, params, opts, &res, &err);
        else
            st = cypher ? agec_cypher_exec(conn, graph, text, params, opts, &res, &err)
                        : agec_sql_exec(conn, text, nargs, args, opts, &res, &err);
        if (st == AGEC_OK) {
            cli_print_statement_result(c, res, cypher ? text : NULL, stdout);
            if (!c->quiet && cli_format(c) == FMT_TABLE)
                printf("Time: %.3f ms\n", cli_now_ms() - t0);
        }
        agec_result_free(res);
    }
    if (conn != NULL)
        agec_conn_release(conn);
    fflush(stdout);
    if (cypher)
        cli_param_hint(&err);
    return st == AGEC_OK ? EXIT_OK : cli_fail(cypher ? "query" : "sql", st, &err);
}

/* The whole of a file, or of stdin for "-" (malloc'd; NULL after printing
 * why). */
static char *read_all(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (cap - len < 2) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool failed = buf == NULL || ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "agec: cannot read %s\n", strcmp(path, "-") == 0 ? "stdin" : path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* The statement text: the argument, or the file of -f FILE, or stdin for
 * "-"; one trailing ';' (and the blanks around it) is dropped, as psql and
 * cypher-shell take it (AGE refuses a ';' inside cypher()). *owned is what
 * to free. NULL after printing why. */
static const char *statement_text(const char *arg, const char *file, char **owned)
{
    *owned = NULL;
    if (file != NULL || strcmp(arg, "-") == 0) {
        if ((*owned = read_all(file != NULL ? file : "-")) == NULL)
            return NULL;
        arg = *owned;
    }
    size_t n = strlen(arg);
    while (n > 0 && strchr(" \t\r\n", arg[n - 1]) != NULL)
        n--;
    if (n > 0 && arg[n - 1] == ';') {
        if (*owned == NULL && (*owned = strdup(arg)) == NULL)
            return NULL;
        (*owned)[n - 1] = '\0';
        return *owned;
    }
    return arg;
}

int cmd_query(cli *c, int argc, char **argv)
{
    const char *query = NULL, *params_json = NULL, *columns = NULL, *file = NULL;
    char *owned = NULL;
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
        } else if (strcmp(a, "-f") == 0 && has_value) {
            file = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = cli_usage_error("query: unknown option or missing value: %s", a);
            goto out;
        } else if (query == NULL) {
            query = a;
        } else {
            rc = cli_usage_error("query: give the Cypher text as one argument");
            goto out;
        }
    }
    if ((query == NULL) == (file == NULL)) {
        rc = cli_usage_error(query == NULL
                                 ? "query: missing CYPHER text (or -f FILE, or - for stdin)"
                                 : "query: give the Cypher text or -f FILE, not both");
        goto out;
    }
    if ((query = statement_text(query != NULL ? query : "", file, &owned)) == NULL) {
        rc = EXIT_USAGE;
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
    free(owned);
    free(pairs);
    return rc;
}

int cmd_sql(cli *c, int argc, char **argv)
{
    const char *file = NULL;
    int first = 1;
    if (argc >= 3 && strcmp(argv[1], "-f") == 0) {
        file = argv[2];
        first = 2; /* argv[2] stands for the text: arguments follow it */
    }
    if (argc < first + 1)
        return cli_usage_error("sql: missing SQL text (or -f FILE, or - for stdin)");
    char *owned = NULL;
    const char *text = statement_text(argv[first], file, &owned);
    if (text == NULL)
        return EXIT_USAGE;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms;
    o.prepare = false;
    int rc = run_and_print(c, NULL, text, NULL, argc - first - 1,
                           (const char *const *)argv + first + 1, &o);
    free(owned);
    return rc;
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
    agec_query_opts o; /* --statement-timeout bounds each statement */
    agec_query_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms;
    if (strcmp(verb, "labels") == 0 || strcmp(verb, "index") == 0 || strcmp(verb, "drop") == 0) {
        /* A graph that does not exist is an error, not an empty answer. */
        bool exists = false;
        st = agec_graph_exists_opts(conn, name, &exists, &o, &err);
        if (st == AGEC_OK && !exists) {
            agec_conn_release(conn);
            fprintf(stderr, "agec: graph %s does not exist\n", name);
            return EXIT_QUERY;
        }
        /* Without --cascade, a graph with no labels of its own (AGE's base
         * tables only, as just created) is dropped; one with labels is not. */
        if (st == AGEC_OK && strcmp(verb, "drop") == 0 && !cascade) {
            agec_result *labels = NULL;
            st = agec_label_list_opts(conn, name, &labels, &o, &err);
            size_t own = 0;
            for (size_t r = 0; st == AGEC_OK && r < agec_result_rows(labels); r++)
                own += strncmp(agec_result_text(labels, r, 0, NULL), "_ag_label_", 10) != 0;
            agec_result_free(labels);
            if (st == AGEC_OK && own > 0) {
                agec_conn_release(conn);
                fprintf(stderr,
                        "agec: graph %s has %zu label%s: drop it with its labels and data with "
                        "agec graph drop --cascade %s\n",
                        name, own, own == 1 ? "" : "s", name);
                return EXIT_QUERY;
            }
            cascade = true;
        }
    }
    if (st != AGEC_OK) {
    } else if (strcmp(verb, "create") == 0) {
        st = agec_graph_create_opts(conn, name, &o, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("graph %s created\n", name);
    } else if (strcmp(verb, "drop") == 0) {
        st = agec_graph_drop_opts(conn, name, cascade, &o, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("graph %s dropped\n", name);
    } else if (strcmp(verb, "exists") == 0) {
        bool exists = false;
        st = agec_graph_exists_opts(conn, name, &exists, &o, &err);
        if (st == AGEC_OK)
            printf("%s\n", exists ? "true" : "false");
    } else if (strcmp(verb, "list") == 0) {
        agec_result *res = NULL;
        st = agec_sql_exec(conn, "SELECT name::text AS graph FROM ag_catalog.ag_graph ORDER BY 1",
                           0, NULL, &o, &res, &err);
        if (st == AGEC_OK)
            cli_print_result(c, res, false, stdout);
        agec_result_free(res);
    } else if (strcmp(verb, "labels") == 0) {
        agec_result *res = NULL;
        st = agec_label_list_opts(conn, name, &res, &o, &err);
        if (st == AGEC_OK)
            cli_print_result(c, res, false, stdout);
        agec_result_free(res);
    } else {
        st = agec_graph_create_indexes_opts(conn, name, NULL, &o, &err);
        if (st == AGEC_OK && !c->quiet)
            printf("indexes of graph %s created\n", name);
    }
    agec_conn_release(conn);
    return st == AGEC_OK ? EXIT_OK : cli_fail(verb, st, &err);
}
