/* The loader's labels on the server: catalog lookup and creation, the
 * privileges a load needs, the key (its map, its index) and the ids
 * reserved for keyed vertices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"
#include "agec/cypher.h"
#include "agec/graph.h"
#include "common/error_internal.h"
#include "cypher/names.h"
#include "load/fields.h"
#include "load/load_internal.h"

/* The key index's name: the label's first 40 bytes, cut before a UTF-8
 * character that would not fit whole (a cut one is refused by CREATE
 * INDEX with 22021, after the whole load), and a hash of label and key. */
static void key_index_name(const agec__ld_label *l, char name[64])
{
    char full[200];
    snprintf(full, sizeof full, "%s.%s", l->name, l->key);
    unsigned h = (unsigned)(agec__fnv1a(AGEC__FNV_BASIS, full) & 0xffffffffu);
    size_t cut = strlen(l->name);
    if (cut > 40) {
        cut = 40;
        while (cut > 0 && ((unsigned char)l->name[cut] & 0xC0) == 0x80)
            cut--;
    }
    snprintf(name, 64, "%.*s_agec_key_%08x", (int)cut, l->name, h);
}

/* What the load needs of a label, checked before its first row (a role
 * with INSERT but not ownership used to load everything, then fail at
 * CREATE INDEX with 42501 and roll it all back): INSERT on the table,
 * USAGE on its id sequence, and, for a key (key true), ownership unless
 * the key index is there already. A missing one: AGEC_ERR_SERVER with
 * SQLSTATE 42501, as the server would say it later. */
static const char PRIV_SQL[] =
    "SELECT CASE WHEN NOT has_table_privilege($1::regclass, 'INSERT') THEN 'INSERT on ' || $1 "
    "WHEN NOT has_sequence_privilege($4::regclass, 'USAGE') THEN 'USAGE on ' || $4 "
    "WHEN $3::bool AND NOT pg_has_role(c.relowner, 'USAGE') AND NOT EXISTS (SELECT 1 FROM "
    "pg_class i WHERE i.relname = $2::name AND i.relnamespace = c.relnamespace) THEN "
    "'ownership of ' || $1 || ' (to build its key index)' END FROM pg_class c WHERE c.oid = "
    "$1::regclass";

static agec_status check_privileges(agec_loader *ld, const agec__ld_label *l, bool key,
                                    agec_error *err)
{
    char name[64] = "";
    if (key)
        key_index_name(l, name);
    const char *v[4] = { l->rel, name, key ? "true" : "false", l->seq };
    agec_result *res = NULL;
    agec_status st = agec__ld_sql(ld, PRIV_SQL, 4, v, &res, err);
    if (st != AGEC_OK)
        return st;
    const char *missing = agec_result_is_null(res, 0, 0) ? NULL : agec_result_text(res, 0, 0, NULL);
    if (missing != NULL) {
        st = agec__error_set(err, AGEC_ERR_SERVER,
                             "permission denied: the load needs %s (checked before loading "
                             "anything)",
                             missing);
        if (err != NULL)
            snprintf(err->sqlstate, sizeof err->sqlstate, "42501");
    }
    agec_result_free(res);
    return st;
}

static const char LABEL_SQL[] =
    "SELECT l.id, l.kind, l.seq_name::text FROM ag_catalog.ag_label l JOIN ag_catalog.ag_graph g "
    "ON l.graph = g.graphid WHERE g.name = $1::name AND l.name = $2::name";

/* The label named `name`, met before or looked up (and created) now. */
agec_status agec__ld_label_get(agec_loader *ld, const char *name, bool edge, agec__ld_label **out,
                               agec_error *err)
{
    for (size_t i = 0; i < ld->nlabels; i++)
        if (strcmp(ld->labels[i]->name, name) == 0) {
            *out = ld->labels[i];
            if (ld->labels[i]->edge != edge)
                return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is %s label, not %s", name,
                                       edge ? "a vertex" : "an edge",
                                       edge ? "an edge label" : "a vertex label");
            return AGEC_OK;
        }
    agec_status st = agec_label_name_check(name, err);
    if (st != AGEC_OK)
        return st;
    const char *v[2] = { ld->graph, name };
    agec_result *res = NULL;
    for (int attempt = 0;; attempt++) {
        if ((st = agec__ld_sql(ld, LABEL_SQL, 2, v, &res, err)) != AGEC_OK)
            return st;
        if (agec_result_rows(res) > 0 || attempt > 0 || !ld->opts.create_missing)
            break;
        agec_result_free(res);
        res = NULL;
        st = agec_label_create(ld->conn, ld->graph, name,
                               edge ? AGEC_LABEL_EDGE : AGEC_LABEL_VERTEX, err);
        if (st != AGEC_OK)
            return st;
    }
    if (agec_result_rows(res) == 0) {
        agec_result_free(res);
        return agec__error_set(err, AGEC_ERR_NOT_FOUND, "graph %s has no label %s", ld->graph,
                               name);
    }
    bool is_edge = strcmp(agec_result_text(res, 0, 1, NULL), "e") == 0;
    if (is_edge != edge) {
        agec_result_free(res);
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s is %s label in graph %s", name,
                               is_edge ? "an edge" : "a vertex", ld->graph);
    }
    agec__ld_label *l = calloc(1, sizeof *l);
    if (l == NULL || (l->name = strdup(name)) == NULL) {
        free(l);
        agec_result_free(res);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    l->edge = edge;
    l->id = atoi(agec_result_text(res, 0, 0, NULL));
    char qn[140], qs[140];
    agec__quote_ident(name, qn, sizeof qn);
    agec__quote_ident(agec_result_text(res, 0, 2, NULL), qs, sizeof qs);
    snprintf(l->rel, sizeof l->rel, "%s.%s", ld->qgraph, qn);
    snprintf(l->seq, sizeof l->seq, "%s.%s", ld->qgraph, qs);
    agec_result_free(res);
    if ((st = check_privileges(ld, l, false, err)) != AGEC_OK) {
        free(l->name);
        free(l);
        return st;
    }
    if (ld->nlabels == ld->caplabels) {
        size_t ncap = ld->caplabels ? ld->caplabels * 2 : 8;
        agec__ld_label **nl = realloc(ld->labels, ncap * sizeof *nl);
        if (nl == NULL) {
            free(l->name);
            free(l);
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        }
        ld->labels = nl;
        ld->caplabels = ncap;
    }
    ld->labels[ld->nlabels++] = l;
    *out = l;
    return AGEC_OK;
}

/* agec__keymap_put within opts.key_memory_max: 1 put, 0 present (*prev),
 * -1 out of memory, -2 over the bound. */
int agec__ld_key_put(agec_loader *ld, agec__ld_label *l, const char *key, size_t len, int64_t id,
                     int64_t *prev)
{
    uint64_t before = agec__keymap_bytes(&l->map);
    if (ld->opts.key_memory_max > 0 &&
        ld->key_bytes - before + agec__keymap_bytes_put(&l->map, len) > ld->opts.key_memory_max)
        return -2;
    int r = agec__keymap_put(&l->map, key, len, id, prev);
    ld->key_bytes += agec__keymap_bytes(&l->map) - before;
    return r;
}

agec_status agec__ld_key_map_full(agec_loader *ld, const agec__ld_label *l, agec_error *err)
{
    return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY,
                                             "the key maps would pass key_memory_max (%llu "
                                             "bytes) at key %zu of label %s: raise it (see "
                                             "agec/load.h for what keys take)",
                                             (unsigned long long)ld->opts.key_memory_max,
                                             l->map.count + 1, l->name));
}

typedef struct fill_state {
    agec_loader *ld;
    agec__ld_label *l;
    agec__buf key;
    bool oom, full;
} fill_state;

static bool fill_row(agec_result *row, void *user)
{
    fill_state *fs = user;
    const agec_value *v = NULL;
    if (agec_result_is_null(row, 0, 1) || agec_result_value(row, 0, 1, &v, NULL) != AGEC_OK ||
        agec_value_type(v) == AGEC_TYPE_NULL)
        return true; /* a vertex without the key: not reachable by key */
    if (!agec__ld_key_text(v, &fs->key)) {
        fs->oom = true;
        return false;
    }
    int64_t id = strtoll(agec_result_text(row, 0, 0, NULL), NULL, 10);
    int put = agec__ld_key_put(fs->ld, fs->l, fs->key.data, fs->key.len, id, NULL);
    if (put < 0) {
        fs->oom = true;
        fs->full = put == -2;
        return false;
    }
    return true;
}

static bool valid_property(const char *p)
{
    if (p == NULL || !((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
        return false;
    size_t n = 0;
    for (; p[n] != '\0'; n++)
        if (!((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
              (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
            return false;
    return n <= 63;
}

agec_status agec_loader_key(agec_loader *ld, const char *label, const char *property,
                            agec_error *err)
{
    if (ld == NULL || label == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "loader and label must not be NULL");
    if (ld->failed || ld->finished)
        return agec__ld_dead(ld, err);
    if (!valid_property(property))
        return agec__error_set(err, AGEC_ERR_NAME,
                               "key property must be 1 to 63 letters, digits or '_', not "
                               "starting with a digit");
    agec__ld_label *l;
    agec_status st = agec__ld_label_get(ld, label, false, &l, err);
    if (st == AGEC_ERR_NAME || st == AGEC_ERR_INVALID_ARG)
        return st; /* checked before any statement: the load goes on */
    if (st != AGEC_OK)
        return agec__ld_fail(ld, st); /* a failed statement has aborted the transaction */
    if (l->key != NULL)
        return strcmp(l->key, property) == 0
                   ? AGEC_OK
                   : agec__error_set(err, AGEC_ERR_STATE, "label %s already has key %s", label,
                                     l->key);
    if (l->written > 0)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "label %s already has rows in this load: set its key first", label);
    if ((l->key = strdup(property)) == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    if ((st = check_privileges(ld, l, true, err)) != AGEC_OK) {
        free(l->key);
        l->key = NULL;
        return agec__ld_fail(ld, st);
    }
    /* Vertices there before the load (or committed by an earlier run being
     * resumed): one scan puts their keys in the map. */
    char q[512], lit[80];
    snprintf(lit, sizeof lit, "\"%s\"", property);
    snprintf(q, sizeof q,
             "SELECT id, ag_catalog.agtype_access_operator(VARIADIC ARRAY[properties, "
             "$1::ag_catalog.agtype]) FROM %s",
             l->rel);
    const char *v[1] = { lit };
    fill_state fs = { .ld = ld, .l = l, .key = AGEC__BUF_INIT };
    if ((st = agec__ld_settle(ld, err)) != AGEC_OK)
        return st;
    st = agec_sql_stream(ld->conn, q, 1, v, NULL, fill_row, &fs, err);
    agec__buf_free(&fs.key);
    if (st == AGEC_OK && fs.full)
        return agec__ld_key_map_full(ld, l, err);
    if (st == AGEC_OK && fs.oom)
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    return st == AGEC_OK ? AGEC_OK : agec__ld_fail(ld, st);
}

/* A new block of batch_rows entry ids for the label, from its sequence. */
agec_status agec__ld_reserve(agec_loader *ld, agec__ld_label *l, agec_error *err)
{
    /* Where sessions run side by side, nextval row by row: other
     * sessions may take values in between, ours are still ours. On a
     * single-session server (PGlite) one contiguous block, so that a
     * batch's ids are first, first + 1, ... (see batch.c). */
    const char *q = ld->single_session
                        ? "SELECT string_agg(g::text, ',') FROM generate_series(setval("
                          "$1::regclass, nextval($1::regclass) + $2::int - 1) - $2::int + 1, "
                          "currval($1::regclass)) g"
                        : "SELECT string_agg(nextval($1::regclass)::text, ',') FROM "
                          "generate_series(1, $2::int)";
    char n[24];
    snprintf(n, sizeof n, "%zu", ld->opts.batch_rows);
    const char *v[2] = { l->seq, n };
    agec_result *res = NULL;
    agec_status st = agec__ld_sql(ld, q, 2, v, &res, err);
    if (st != AGEC_OK)
        return agec__ld_fail(ld, st);
    int64_t *ids = realloc(l->reserved, ld->opts.batch_rows * sizeof *ids);
    if (ids == NULL) {
        agec_result_free(res);
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
    }
    l->reserved = ids;
    const char *p = agec_result_text(res, 0, 0, NULL);
    size_t k = 0;
    while (p != NULL && *p != '\0' && k < ld->opts.batch_rows) {
        char *end;
        ids[k++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    agec_result_free(res);
    l->nreserved = k;
    l->ireserved = 0;
    if (k == 0)
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_SERVER, "no ids from %s", l->seq));
    return AGEC_OK;
}

/* The key indexes, built once the rows are in (cheaper than keeping them
 * up to date row by row), and fresh statistics of what was loaded. */
agec_status agec__ld_key_indexes(agec_loader *ld, agec_error *err)
{
    /* The ids' statistics from a small sample: a unique, ordered column
     * needs little more than the row count, and the default target (100:
     * 30,000 rows read) was 10% of a 200,000-vertex load on native AGE
     * (bench_load_copy --native, AGEC_BENCH_NO_ANALYZE). For this
     * transaction only (the load commits right after). */
    if (ld->opts.analyze) {
        agec_status st =
            agec__ld_sql(ld, "SET LOCAL default_statistics_target = 10", 0, NULL, NULL, err);
        if (st != AGEC_OK)
            return st;
    }
    for (size_t i = 0; i < ld->nlabels; i++) {
        agec__ld_label *l = ld->labels[i];
        if (ld->opts.analyze && l->written > 0) {
            char q[400];
            /* The row count and the id columns' statistics are what the
             * planner needs for joins; statistics of agtype properties cost
             * 20x more to gather on PGlite (90 ms for 20,000 vertices). */
            snprintf(q, sizeof q, "ANALYZE %s (%s)", l->rel,
                     l->edge ? "id, start_id, end_id" : "id");
            agec_status st = agec__ld_sql(ld, q, 0, NULL, NULL, err);
            if (st != AGEC_OK)
                return st;
        }
        if (l->key == NULL)
            continue;
        char name[64], qn[140], q[1024];
        key_index_name(l, name);
        agec__quote_ident(name, qn, sizeof qn);
        snprintf(q, sizeof q,
                 "CREATE INDEX IF NOT EXISTS %s ON %s (ag_catalog.agtype_access_operator(VARIADIC "
                 "ARRAY[properties, '\"%s\"'::ag_catalog.agtype]))",
                 qn, l->rel, l->key);
        agec_status st = agec__ld_sql(ld, q, 0, NULL, NULL, err);
        if (st != AGEC_OK)
            return st;
    }
    return AGEC_OK;
}
