/* Graph and label management through AGE's catalog functions. */
#include "agec/graph.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/cypher.h"
#include "common/error_internal.h"
#include "cypher/exec.h"
#include "cypher/names.h"

static agec_status run(agec_conn *conn, const char *sql, int n, const char *const *values,
                       const agec_query_opts *opts, agec_result **out, agec_error *err)
{
    agec_query_opts o;
    agec_status st = agec__query_opts_get(opts, &o, err);
    if (st != AGEC_OK)
        return st;
    agec_result *res = NULL;
    st = agec__exec(conn, sql, n, values, &o, NULL, NULL, &res, err);
    if (out != NULL && st == AGEC_OK)
        *out = res;
    else
        agec_result_free(res);
    return st;
}

agec_status agec_graph_create_opts(agec_conn *conn, const char *name, const agec_query_opts *opts,
                                   agec_error *err)
{
    agec_status st = agec_graph_name_check(name, err);
    if (st != AGEC_OK)
        return st;
    const char *v[1] = { name };
    return run(conn, "SELECT ag_catalog.create_graph($1)", 1, v, opts, NULL, err);
}

agec_status agec_graph_drop_opts(agec_conn *conn, const char *name, bool cascade,
                                 const agec_query_opts *opts, agec_error *err)
{
    agec_status st = agec_graph_name_check(name, err);
    if (st != AGEC_OK)
        return st;
    const char *v[2] = { name, cascade ? "true" : "false" };
    return run(conn, "SELECT ag_catalog.drop_graph($1, $2::boolean)", 2, v, opts, NULL, err);
}

agec_status agec_graph_exists_opts(agec_conn *conn, const char *name, bool *exists,
                                   const agec_query_opts *opts, agec_error *err)
{
    if (exists == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "exists must not be NULL");
    *exists = false;
    agec_status st = agec_graph_name_check(name, err);
    if (st != AGEC_OK)
        return st;
    const char *v[1] = { name };
    agec_result *res = NULL;
    st = run(conn, "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = $1::name", 1, v, opts,
             &res, err);
    if (st == AGEC_OK)
        *exists = strcmp(agec_result_text(res, 0, 0, NULL), "0") != 0;
    agec_result_free(res);
    return st;
}

static const char *first_column(const void *res, size_t row)
{
    return agec_result_text(res, row, 0, NULL);
}

agec_status agec_graph_list_opts(agec_conn *conn, char ***names, size_t *count,
                                 const agec_query_opts *opts, agec_error *err)
{
    if (names == NULL || count == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "names and count must not be NULL");
    *names = NULL;
    *count = 0;
    agec_result *res = NULL;
    agec_status st = run(conn, "SELECT name::text FROM ag_catalog.ag_graph ORDER BY 1", 0, NULL,
                         opts, &res, err);
    if (st != AGEC_OK)
        return st;
    size_t n = agec_result_rows(res);
    char **block = agec__strings_pack(n, first_column, res);
    if (block == NULL) {
        agec_result_free(res);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    *names = block;
    *count = n;
    agec_result_free(res);
    return AGEC_OK;
}

agec_status agec_label_create_opts(agec_conn *conn, const char *graph, const char *label,
                                   agec_label_kind kind, const agec_query_opts *opts,
                                   agec_error *err)
{
    agec_status st = agec_graph_name_check(graph, err);
    if (st == AGEC_OK)
        st = agec_label_name_check(label, err);
    if (st != AGEC_OK)
        return st;
    if (kind != AGEC_LABEL_VERTEX && kind != AGEC_LABEL_EDGE)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "unknown label kind %d", (int)kind);
    const char *v[2] = { graph, label };
    return run(conn,
               /* Untyped parameters: AGE 1.7 takes cstring, older releases name. */
               kind == AGEC_LABEL_VERTEX ? "SELECT ag_catalog.create_vlabel($1, $2)"
                                         : "SELECT ag_catalog.create_elabel($1, $2)",
               2, v, opts, NULL, err);
}

static const char LABELS_SQL[] =
    "SELECT l.name::text AS name, CASE l.kind WHEN 'e' THEN 'edge' ELSE 'vertex' END AS kind "
    "FROM ag_catalog.ag_label l JOIN ag_catalog.ag_graph g ON l.graph = g.graphid "
    "WHERE g.name = $1::name ORDER BY 1";

agec_status agec_label_list_opts(agec_conn *conn, const char *graph, agec_result **out,
                                 const agec_query_opts *opts, agec_error *err)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "out must not be NULL");
    *out = NULL;
    agec_status st = agec_graph_name_check(graph, err);
    if (st != AGEC_OK)
        return st;
    const char *v[1] = { graph };
    return run(conn, LABELS_SQL, 1, v, opts, out, err);
}

/* "<label>_agec_<suffix>", within PostgreSQL's 63-byte identifiers. A
 * label too long for that keeps a prefix (cut on a UTF-8 character
 * boundary) and gets a hash of its full name, so two long labels sharing a
 * prefix never share an index name (IF NOT EXISTS would then skip one). */
static void index_name(char *out, size_t cap, const char *label, const char *suffix)
{
    enum { ID_MAX = 63 };
    size_t len = strlen(label), tail = strlen("_agec_") + strlen(suffix);
    if (len + tail <= ID_MAX) {
        snprintf(out, cap, "%s_agec_%s", label, suffix);
        return;
    }
    uint64_t h = agec__fnv1a(AGEC__FNV_BASIS, label);
    char prefix[ID_MAX];
    agec__copy_text(prefix, ID_MAX - tail - 9 + 1, label); /* leaves room for "_" + 8 hex */
    snprintf(out, cap, "%s_%08x_agec_%s", prefix, (unsigned)(h & 0xffffffffu), suffix);
}

/* CREATE INDEX IF NOT EXISTS for one label; names were checked. */
static agec_status index_label(agec_conn *conn, const char *graph, const char *label, bool edge,
                               const agec_query_opts *opts, agec_error *err)
{
    char qg[140], ql[140];
    if (agec__quote_ident(graph, qg, sizeof qg) == 0 ||
        agec__quote_ident(label, ql, sizeof ql) == 0)
        return agec__error_set(err, AGEC_ERR_NAME, "name too long");
    static const struct {
        const char *suffix, *kind, *column;
        bool edge_only;
    } idx[] = {
        { "id", "UNIQUE INDEX", "USING btree (id)", false },
        { "start", "INDEX", "USING btree (start_id)", true },
        { "end", "INDEX", "USING btree (end_id)", true },
        { "props", "INDEX", "USING gin (properties)", false },
    };
    /* AGE makes id the primary key of its base tables (_ag_label_vertex,
     * _ag_label_edge): no second unique index on it where one exists. */
    char table[300];
    snprintf(table, sizeof table, "%s.%s", qg, ql);
    const char *tv[1] = { table };
    agec_result *uq = NULL;
    agec_status st =
        run(conn,
            "SELECT count(*) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnatts = 1 "
            "AND a.attname = 'id'",
            1, tv, opts, &uq, err);
    if (st != AGEC_OK)
        return st;
    bool unique_id = strcmp(agec_result_text(uq, 0, 0, NULL), "0") != 0;
    agec_result_free(uq);
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        if ((idx[i].edge_only && !edge) || (i == 0 && unique_id))
            continue;
        char name[160], qn[340], sql[1024];
        index_name(name, sizeof name, label, idx[i].suffix);
        if (agec__quote_ident(name, qn, sizeof qn) == 0)
            return agec__error_set(err, AGEC_ERR_NAME, "name too long");
        snprintf(sql, sizeof sql, "CREATE %s IF NOT EXISTS %s ON %s.%s %s", idx[i].kind, qn, qg, ql,
                 idx[i].column);
        st = run(conn, sql, 0, NULL, opts, NULL, err);
        if (st != AGEC_OK)
            return st;
    }
    return AGEC_OK;
}

agec_status agec_graph_create_indexes_opts(agec_conn *conn, const char *graph, const char *label,
                                           const agec_query_opts *opts, agec_error *err)
{
    agec_result *labels = NULL;
    agec_status st = agec_label_list_opts(conn, graph, &labels, opts, err);
    if (st != AGEC_OK)
        return st;
    if (label != NULL && (st = agec_label_name_check(label, err)) != AGEC_OK)
        goto out;
    bool found = false;
    for (size_t i = 0; i < agec_result_rows(labels); i++) {
        const char *name = agec_result_text(labels, i, 0, NULL);
        bool edge = strcmp(agec_result_text(labels, i, 1, NULL), "edge") == 0;
        if (label != NULL && strcmp(name, label) != 0)
            continue;
        found = true;
        /* Names come from the catalog; check them like any other. */
        if ((st = agec_label_name_check(name, err)) != AGEC_OK ||
            (st = index_label(conn, graph, name, edge, opts, err)) != AGEC_OK)
            goto out;
    }
    if (label != NULL && !found)
        st = agec__error_set(err, AGEC_ERR_NOT_FOUND, "graph %s has no label %s", graph, label);
out:
    agec_result_free(labels);
    return st;
}

/* The same without options (all defaults). */
agec_status agec_graph_create(agec_conn *conn, const char *name, agec_error *err)
{
    return agec_graph_create_opts(conn, name, NULL, err);
}

agec_status agec_graph_drop(agec_conn *conn, const char *name, bool cascade, agec_error *err)
{
    return agec_graph_drop_opts(conn, name, cascade, NULL, err);
}

agec_status agec_graph_exists(agec_conn *conn, const char *name, bool *exists, agec_error *err)
{
    return agec_graph_exists_opts(conn, name, exists, NULL, err);
}

agec_status agec_graph_list(agec_conn *conn, char ***names, size_t *count, agec_error *err)
{
    return agec_graph_list_opts(conn, names, count, NULL, err);
}

agec_status agec_label_create(agec_conn *conn, const char *graph, const char *label,
                              agec_label_kind kind, agec_error *err)
{
    return agec_label_create_opts(conn, graph, label, kind, NULL, err);
}

agec_status agec_label_list(agec_conn *conn, const char *graph, agec_result **out, agec_error *err)
{
    return agec_label_list_opts(conn, graph, out, NULL, err);
}

agec_status agec_graph_create_indexes(agec_conn *conn, const char *graph, const char *label,
                                      agec_error *err)
{
    return agec_graph_create_indexes_opts(conn, graph, label, NULL, err);
}
