/* The loader: options, rows, transactions (labels on the server: labels.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/agtype.h"
#include "agec/cypher.h"
#include "agec/graph.h"
#include "agec/pool.h"
#include "agec/tx.h"
#include "common/error_internal.h"
#include "common/sized.h"
#include "cypher/names.h"
#include "load/fields.h"
#include "load/load_internal.h"
#include "session/clock.h"

void agec_load_opts_init(agec_load_opts *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->method = AGEC_LOAD_AUTO;
    opts->batch_rows = 0; /* by method: AGEC_LOAD_BATCH_INSERT / AGEC_LOAD_BATCH_COPY */
    opts->create_missing = true;
    opts->analyze = true;
    opts->batch_bytes = (size_t)64 << 20;
    opts->key_memory_max = (uint64_t)8 << 30;
}

const char *agec_load_method_name(agec_load_method m)
{
    switch (m) {
    case AGEC_LOAD_AUTO:
        return "auto";
    case AGEC_LOAD_INSERT:
        return "insert";
    case AGEC_LOAD_COPY:
        return "copy";
    }
    return "unknown";
}

double agec__ld_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const agec_query_opts *agec__ld_query_opts(agec_loader *ld)
{
    agec_query_opts_init(&ld->qopts);
    ld->qopts.timeout_ms = ld->opts.timeout_ms;
    return &ld->qopts;
}

int64_t agec__ld_deadline(const agec_loader *ld)
{
    if (ld->opts.timeout_ms <= 0)
        return AGEC__NEVER;
    return agec__now_us() + (int64_t)ld->opts.timeout_ms * 1000;
}

agec_status agec__ld_sql(agec_loader *ld, const char *text, int n, const char *const *v,
                         agec_result **out, agec_error *err)
{
    agec_result *res = NULL;
    agec_status st = agec__ld_settle(ld, err);
    if (st != AGEC_OK)
        return st;
    st = agec_sql_exec(ld->conn, text, n, v, agec__ld_query_opts(ld), &res, err);
    if (out != NULL && st == AGEC_OK)
        *out = res;
    else
        agec_result_free(res);
    return st;
}

agec_status agec__ld_fail(agec_loader *ld, agec_status st)
{
    (void)agec__ld_settle(ld, NULL); /* the connection free for the ROLLBACK */
    if (!ld->failed) {
        ld->failed = true;
        (void)agec_tx_rollback(ld->conn, NULL);
    }
    return st;
}

static const char NUL_MSG[] =
    "a NUL character (\\u0000) in the properties: AGE's agtype refuses it";

agec_status agec__ld_dead(const agec_loader *ld, agec_error *err)
{
    return agec__error_set(err, AGEC_ERR_STATE,
                           ld->finished ? "the load is finished"
                                        : "the load failed earlier and was rolled back");
}

agec_status agec__ld_bad_row(agec_loader *ld, size_t col, const char *colname, const char *row,
                             size_t rowlen, agec_error *err, const char *fmt, ...)
{
    char what[768], colpart[160] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (col > 0)
        snprintf(colpart, sizeof colpart, " column %zu%s%s%s:", col, colname ? " (" : "",
                 colname ? colname : "", colname ? ")" : "");
    agec_error local = AGEC_ERROR_INIT;
    agec__error_set(&local, AGEC_ERR_INPUT, "%s:%llu:%s %s", ld->source,
                    (unsigned long long)ld->line, colpart, what);
    if (ld->opts.reject != NULL && ld->opts.reject(&local, row, rowlen, ld->opts.reject_user)) {
        ld->st.rejected++;
        return AGEC_OK;
    }
    agec__error_copy(err, &local);
    if (err != NULL)
        err->code = AGEC_ERR_INPUT;
    return agec__ld_fail(ld, AGEC_ERR_INPUT);
}

agec_status agec__ld_input_error(agec_loader *ld, size_t col, agec_error *err, const char *fmt, ...)
{
    char what[768], colpart[40] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (col > 0)
        snprintf(colpart, sizeof colpart, " column %zu:", col);
    agec__error_set(err, AGEC_ERR_INPUT, "%s:%llu:%s %s", ld->source, (unsigned long long)ld->line,
                    colpart, what);
    return agec__ld_fail(ld, AGEC_ERR_INPUT);
}

/* BEGIN, and the transaction's id: if the answer to its COMMIT is lost,
 * agec_load_resume_point() asks the server what became of it. */
static agec_status begin(agec_loader *ld, agec_error *err)
{
    agec_tx_opts o;
    agec_tx_opts_init(&o);
    o.timeout_ms = ld->opts.timeout_ms;
    agec_status st = agec_tx_begin(ld->conn, &o, err);
    agec_result *res = NULL;
    if (st == AGEC_OK)
        st = agec_sql_exec(ld->conn, "SELECT pg_current_xact_id()::text", 0, NULL,
                           agec__ld_query_opts(ld), &res, err);
    if (st == AGEC_OK)
        ld->xid = strtoull(agec_result_text(res, 0, 0, NULL), NULL, 10);
    agec_result_free(res);
    return st;
}

/* COMMIT the open transaction; when its answer is lost the rows since the
 * last commit are uncertain (stats), not simply uncommitted. */
static agec_status commit(agec_loader *ld, agec_error *err)
{
    agec_status st = agec_tx_commit(ld->conn, err);
    if (st == AGEC_ERR_CONNECTION_LOST || st == AGEC_ERR_TIMEOUT) {
        ld->st.uncertain = ld->st.rows - ld->st.committed;
        ld->st.commit_xid = ld->xid;
    }
    return st;
}

agec_status agec_load_resume_point(agec_conn *conn, const agec_load_stats *stats, uint64_t *resume,
                                   agec_error *err)
{
    if (conn == NULL || stats == NULL || resume == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn, stats and resume are required");
    *resume = stats->committed;
    if (stats->uncertain == 0)
        return AGEC_OK;
    char xid[24];
    snprintf(xid, sizeof xid, "%llu", (unsigned long long)stats->commit_xid);
    const char *v[1] = { xid };
    agec_result *res = NULL;
    agec_status st = agec_sql_exec(conn, "SELECT pg_xact_status($1::xid8)", 1, v, NULL, &res, err);
    if (st != AGEC_OK)
        return st;
    const char *s = agec_result_is_null(res, 0, 0) ? "" : agec_result_text(res, 0, 0, NULL);
    if (strcmp(s, "committed") == 0)
        *resume = stats->committed + stats->uncertain;
    else if (strcmp(s, "in progress") == 0)
        st = agec__error_set(err, AGEC_ERR_STATE,
                             "the load's last transaction (%s) is still in progress: ask again",
                             xid);
    agec_result_free(res);
    return st;
}

agec_status agec_loader_open(agec_conn *conn, const char *graph, const agec_load_opts *opts,
                             agec_loader **out, agec_error *err)
{
    if (out == NULL || conn == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "conn and out must not be NULL");
    *out = NULL;
    agec_status st = agec_graph_name_check(graph, err);
    if (st != AGEC_OK)
        return st;
    agec_load_opts defaults;
    agec_load_opts_init(&defaults);
    if ((st = agec__sized_opts(&defaults, sizeof defaults, opts,
                               offsetof(agec_load_opts, timeout_ms) + sizeof(int), "agec_load_opts",
                               err)) != AGEC_OK)
        return st;
    opts = &defaults;
    if (opts->batch_rows > 1000000 || (unsigned)opts->method > 2 || opts->timeout_ms < 0 ||
        opts->batch_bytes < 1024 || opts->batch_bytes > (size_t)512 << 20)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "batch_rows must be 0 (by method) .. 1000000, method AUTO, "
                               "INSERT or COPY, "
                               "timeout_ms >= 0 and batch_bytes 1 KiB .. 512 MiB");
    agec_loader *ld = calloc(1, sizeof *ld);
    if (ld == NULL || (ld->graph = strdup(graph)) == NULL) {
        free(ld);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    ld->conn = conn;
    ld->opts = *opts;
    ld->t0 = agec__ld_now();
    ld->st.size = sizeof ld->st;
    snprintf(ld->source, sizeof ld->source, "input");
    ld->line = 1;
    agec__quote_ident(graph, ld->qgraph, sizeof ld->qgraph);

    agec_result *res = NULL;
    if ((st = agec__ld_sql(ld, "SELECT version()", 0, NULL, &res, err)) != AGEC_OK)
        goto fail;
    const char *ver = agec_result_text(res, 0, 0, NULL);
    bool pglite = ver != NULL && (strstr(ver, "PGlite") != NULL || strstr(ver, "wasm32") != NULL);
    agec_result_free(res);
    ld->method = opts->method;
    if (ld->method == AGEC_LOAD_AUTO)
        ld->method = pglite ? AGEC_LOAD_INSERT : AGEC_LOAD_COPY;
    if (ld->method == AGEC_LOAD_COPY && pglite) {
        st = agec__error_set(err, AGEC_ERR_INVALID_ARG,
                             "COPY was asked for, but the server is PGlite, where COPY breaks the "
                             "protocol and hangs the server: use AGEC_LOAD_INSERT or AUTO");
        goto fail;
    }
    ld->st.method = ld->method;
    /* COPY batches are bounded by batch_bytes, and each is one statement:
     * on native AGE 1.6 (bench_load_copy --native, 200,000 vertices)
     * 5,000-row batches ran at 0.61 of plain COPY, 50,000-row ones at 0.72. */
    if (ld->opts.batch_rows == 0)
        ld->opts.batch_rows =
            ld->method == AGEC_LOAD_COPY ? AGEC_LOAD_BATCH_COPY : AGEC_LOAD_BATCH_INSERT;
    ld->single_session = pglite;
    if ((st = begin(ld, err)) != AGEC_OK)
        goto rollback; /* the SELECT after BEGIN may have failed */
    bool exists = false;
    if ((st = agec_graph_exists(conn, graph, &exists, err)) != AGEC_OK)
        goto rollback;
    if (!exists && !opts->create_missing) {
        st = agec__error_set(err, AGEC_ERR_NOT_FOUND, "graph %s does not exist", graph);
        goto rollback;
    }
    if (!exists && (st = agec_graph_create(conn, graph, err)) != AGEC_OK)
        goto rollback;
    *out = ld;
    return AGEC_OK;
rollback:
    (void)agec_tx_rollback(conn, NULL);
fail:
    free(ld->graph);
    free(ld);
    return st;
}

void agec_loader_source(agec_loader *ld, const char *source, uint64_t line)
{
    if (ld == NULL)
        return;
    snprintf(ld->source, sizeof ld->source, "%s", source ? source : "input");
    ld->line = line;
}

/* Count one input row as over (before anything that may fail, so that
 * rows = vertices + edges + rejected + skipped holds after a failure). */
static void count_row(agec_loader *ld)
{
    ld->st.rows++;
    ld->line++;
    ld->since_commit++;
}

/* Commit when a chunk is full (chunk_rows), after writing every batch. */
static agec_status chunk_end(agec_loader *ld, agec_error *err)
{
    if (ld->opts.chunk_rows == 0 || ld->since_commit < ld->opts.chunk_rows)
        return AGEC_OK;
    agec_status st = AGEC_OK;
    for (size_t i = 0; i < ld->nlabels && st == AGEC_OK; i++)
        st = agec__ld_flush(ld, ld->labels[i], err);
    if (st == AGEC_OK)
        st = agec__ld_settle(ld, err);
    if (st != AGEC_OK)
        return st;
    if ((st = commit(ld, err)) != AGEC_OK)
        return agec__ld_fail(ld, st);
    ld->st.committed = ld->st.rows;
    ld->since_commit = 0;
    if ((st = begin(ld, err)) != AGEC_OK)
        return agec__ld_fail(ld, st);
    return AGEC_OK;
}

agec_status agec__ld_row_done(agec_loader *ld, agec_error *err)
{
    count_row(ld);
    return chunk_end(ld, err);
}

/* Entry id for a new keyed vertex, from the ids reserved on the label's
 * sequence (a new block when used up). */
static agec_status next_entry(agec_loader *ld, agec__ld_label *l, int64_t *entry, agec_error *err)
{
    if (l->ireserved == l->nreserved) {
        agec_status st = agec__ld_reserve(ld, l, err);
        if (st != AGEC_OK)
            return st;
    }
    *entry = l->reserved[l->ireserved++];
    return AGEC_OK;
}

static agec_status queue(agec_loader *ld, agec__ld_label *l, const char *props, size_t len,
                         int64_t id, int64_t start, int64_t end, agec_error *err)
{
    if (l->pending == 0) {
        agec__copy_text(l->first_source, sizeof l->first_source, ld->source);
        l->first_line = ld->line;
    }
    l->last_line = ld->line;
    if (strcmp(l->last_source, ld->source) != 0)
        agec__copy_text(l->last_source, sizeof l->last_source, ld->source);
    agec__ld_append(ld, l, props, len, id, start, end);
    if (l->rows.failed || l->a.failed || l->b.failed)
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
    l->pending++;
    l->written++;
    ld->st.bytes += len;
    if (l->edge)
        ld->st.edges++;
    else
        ld->st.vertices++;
    count_row(ld);
    if (l->pending >= ld->opts.batch_rows || l->rows.len >= ld->opts.batch_bytes) {
        /* COPY path: the next block of ids before this batch goes out, so
         * that no statement comes between sending it and building the next
         * one while the server takes it in. */
        if (ld->method == AGEC_LOAD_COPY && l->key != NULL && l->ireserved == l->nreserved) {
            agec_status st = agec__ld_reserve(ld, l, err);
            if (st != AGEC_OK)
                return st;
        }
        agec_status st = agec__ld_flush(ld, l, err);
        if (st != AGEC_OK)
            return st;
    }
    return chunk_end(ld, err);
}

bool agec__ld_skip(agec_loader *ld)
{
    if (ld->st.rows >= ld->opts.skip_rows)
        return false;
    ld->st.rows++;
    ld->st.skipped++;
    ld->st.committed = ld->st.rows;
    ld->line++;
    return true;
}

/* props: canonical map text (or NULL = {}); v: its parsed form when the
 * caller has it (for the key), else it is parsed here. */
static agec_status vertex(agec_loader *ld, const char *label, const char *props, size_t len,
                          const agec_value *v, agec_error *err)
{
    agec__ld_label *l;
    agec_status st = agec__ld_label_get(ld, label, false, &l, err);
    if (st != AGEC_OK)
        return agec__ld_fail(ld, st);
    if (props == NULL) {
        props = "{}";
        len = 2;
    }
    if (agec__text_has_nul(props, len)) {
        st = agec__ld_bad_row(ld, 0, NULL, props, len, err, "%s", NUL_MSG);
        return st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    }
    if (l->key == NULL)
        return queue(ld, l, props, len, 0, 0, 0, err);
    agec_value *own = NULL;
    if (v == NULL) {
        if ((st = agec_agtype_parse(props, len, 0, &own, err)) != AGEC_OK)
            return agec__ld_fail(ld, st);
        v = own;
    }
    const agec_value *k = agec_value_get(v, l->key, strlen(l->key));
    if (k == NULL || agec_value_type(k) == AGEC_TYPE_NULL) {
        agec_value_free(own);
        st = agec__ld_bad_row(ld, 0, NULL, props, len, err, "vertex of %s has no key property %s",
                              l->name, l->key);
        return st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    }
    agec__buf kt = AGEC__BUF_INIT;
    bool ok = agec__ld_key_text(k, &kt);
    agec_value_free(own);
    int64_t entry = 0, prev = 0;
    int put = -1;
    if (ok && (st = next_entry(ld, l, &entry, err)) != AGEC_OK) {
        agec__buf_free(&kt);
        return st;
    }
    int64_t id = ((int64_t)l->id << 48) | entry;
    if (ok)
        put = agec__ld_key_put(ld, l, kt.data, kt.len, id, &prev);
    if (put < 0) {
        agec__buf_free(&kt);
        if (put == -2)
            return agec__ld_key_map_full(ld, l, err);
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
    }
    if (put == 0) {
        l->ireserved--; /* the entry id was not used */
        char cut[201];
        st = agec__ld_bad_row(ld, 0, NULL, props, len, err,
                              "duplicate key %s = %s in label %s (graph id %lld has it)", l->key,
                              agec__utf8_cut(cut, sizeof cut, kt.data), l->name, (long long)prev);
        agec__buf_free(&kt);
        return st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    }
    agec__buf_free(&kt);
    return queue(ld, l, props, len, id, 0, 0, err);
}

/* Parse caller-given properties: must be a map; written back canonical
 * into ld->tmp. *v gets the tree (caller frees). AGEC_OK with *v NULL: the
 * row was rejected. */
static agec_status parse_props(agec_loader *ld, const char *props, size_t len, agec_value **v,
                               agec_error *err)
{
    *v = NULL;
    if (len == SIZE_MAX)
        len = strlen(props);
    agec_error pe = AGEC_ERROR_INIT;
    agec_value *t = NULL;
    if (agec_agtype_parse(props, len, 0, &t, &pe) != AGEC_OK)
        return agec__ld_bad_row(ld, (size_t)pe.position + 1, NULL, props, len, err,
                                "properties: %s", pe.message);
    if (agec_value_type(t) != AGEC_TYPE_OBJECT) {
        const char *type = agec_type_name(agec_value_type(t));
        agec_value_free(t);
        return agec__ld_bad_row(ld, 1, NULL, props, len, err, "properties must be a map, not %s",
                                type);
    }
    char *text = NULL;
    size_t n = 0;
    if (agec_value_to_agtype(t, &text, &n, err) != AGEC_OK) {
        agec_value_free(t);
        return agec__ld_fail(ld, AGEC_ERR_NO_MEMORY);
    }
    ld->tmp.len = 0;
    agec__buf_put(&ld->tmp, text, n);
    agec_free(text);
    *v = t;
    return ld->tmp.failed ? agec__ld_fail(ld, AGEC_ERR_NO_MEMORY) : AGEC_OK;
}

/* The common start of a row given through the API: 1 = go on (props
 * parsed into *v and canonical in ld->tmp, or *v NULL for none); 0 = the
 * row is over (rejected, skipped, or an error), with *st to return. */
static int row_start(agec_loader *ld, const char *label, const char *props, size_t len,
                     agec_value **v, agec_status *st, agec_error *err)
{
    *v = NULL;
    *st = AGEC_OK;
    if (ld == NULL || label == NULL) {
        *st = agec__error_set(err, AGEC_ERR_INVALID_ARG, "loader and label must not be NULL");
        return 0;
    }
    if (ld->failed || ld->finished) {
        *st = agec__ld_dead(ld, err);
        return 0;
    }
    if (agec__ld_skip(ld))
        return 0;
    if (props == NULL)
        return 1;
    if ((*st = parse_props(ld, props, len, v, err)) != AGEC_OK)
        return 0;
    if (*v == NULL) {
        *st = agec__ld_row_done(ld, err);
        return 0;
    }
    return 1;
}

agec_status agec_loader_vertex(agec_loader *ld, const char *label, const char *props, size_t len,
                               agec_error *err)
{
    agec_value *v;
    agec_status st;
    if (!row_start(ld, label, props, len, &v, &st, err))
        return st;
    st = v != NULL ? vertex(ld, label, ld->tmp.data, ld->tmp.len, v, err)
                   : vertex(ld, label, NULL, 0, NULL, err);
    agec_value_free(v);
    return st;
}

agec_status agec__ld_vertex_text(agec_loader *ld, const char *label, const char *props, size_t len,
                                 agec_error *err)
{
    if (ld->failed || ld->finished)
        return agec__ld_dead(ld, err);
    return vertex(ld, label, props, len, NULL, err);
}

/* The input row being added, for a reject (NULL: none to give). */
static const char *current_row(agec_loader *ld, size_t *len)
{
    const char *row = NULL;
    *len = 0;
    if (ld->row_fn != NULL && !ld->row_fn(ld->row_ctx, &row, len))
        row = NULL;
    return row;
}

/* Graph id of an endpoint; AGEC_OK with *found false: rejected. */
static agec_status resolve(agec_loader *ld, const agec_endpoint *e, const char *which, int64_t *id,
                           bool *found, agec_error *err)
{
    *found = false;
    size_t rowlen;
    const char *row;
    if (e->label == NULL) {
        if (e->id >= 0) {
            *id = e->id;
            *found = true;
            return AGEC_OK;
        }
        row = current_row(ld, &rowlen);
        return agec__ld_bad_row(ld, 0, NULL, row, rowlen, err, "edge %s graph id %lld is negative",
                                which, (long long)e->id);
    }
    agec__ld_label *l;
    agec_status st = agec__ld_label_get(ld, e->label, false, &l, err);
    if (st != AGEC_OK)
        return agec__ld_fail(ld, st);
    if (l->key == NULL)
        return agec__ld_fail(ld,
                             agec__error_set(err, AGEC_ERR_INVALID_ARG,
                                             "edge %s endpoint names a vertex of %s by key, but %s "
                                             "has no key (agec_loader_key, --key)",
                                             which, e->label, e->label));
    size_t n = e->key_len == SIZE_MAX ? strlen(e->key) : e->key_len;
    /* An integer key is the integer's digits: 007 or +7 in a CSV edge
     * file names the vertex whose uid:int was 007 (loaded as 7), unless a
     * key "007" (a string) is there itself. */
    char canon[24];
    size_t cn;
    if (agec__keymap_find(&l->map, e->key, n, id) ||
        (agec__int_key_canonical(e->key, n, canon, &cn) &&
         agec__keymap_find(&l->map, canon, cn, id))) {
        *found = true;
        return AGEC_OK;
    }
    row = current_row(ld, &rowlen);
    return agec__ld_bad_row(ld, 0, NULL, row, rowlen, err,
                            "edge %s vertex %s %s = %.*s does not exist", which, e->label, l->key,
                            (int)(n > 200 ? 200 : n), e->key);
}

static agec_status edge(agec_loader *ld, const char *label, const agec_endpoint *start,
                        const agec_endpoint *end, const char *props, size_t len, agec_error *err)
{
    if (start == NULL || end == NULL || (start->label != NULL && start->key == NULL) ||
        (end->label != NULL && end->key == NULL))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "endpoints must not be NULL");
    agec__ld_label *l;
    agec_status st = agec__ld_label_get(ld, label, true, &l, err);
    if (st != AGEC_OK)
        return agec__ld_fail(ld, st);
    if (props != NULL && agec__text_has_nul(props, len)) {
        size_t rowlen;
        const char *row = current_row(ld, &rowlen);
        st = agec__ld_bad_row(ld, 0, NULL, row, rowlen, err, "%s", NUL_MSG);
        return st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    }
    int64_t s = 0, t = 0;
    bool fs, ft = false;
    if ((st = resolve(ld, start, "start", &s, &fs, err)) != AGEC_OK ||
        (fs && (st = resolve(ld, end, "end", &t, &ft, err)) != AGEC_OK))
        return st;
    if (!fs || !ft)
        return agec__ld_row_done(ld, err);
    if (props == NULL) {
        props = "{}";
        len = 2;
    }
    return queue(ld, l, props, len, 0, s, t, err);
}

/* edge() with the row to give a reject callback. */
static agec_status edge_with_row(agec_loader *ld, const char *label, const agec_endpoint *start,
                                 const agec_endpoint *end, const char *props, size_t len,
                                 agec__ld_row_fn row_fn, void *row_ctx, agec_error *err)
{
    ld->row_fn = row_fn;
    ld->row_ctx = row_ctx;
    agec_status st = edge(ld, label, start, end, props, len, err);
    ld->row_fn = NULL;
    ld->row_ctx = NULL;
    return st;
}

bool agec__ld_text_row_get(void *ctx, const char **row, size_t *len)
{
    const agec__ld_text_row *t = ctx;
    *row = t->text;
    *len = t->len;
    return t->text != NULL;
}

agec_status agec_loader_edge(agec_loader *ld, const char *label, const agec_endpoint *start,
                             const agec_endpoint *end, const char *props, size_t len,
                             agec_error *err)
{
    agec_value *v;
    agec_status st;
    if (!row_start(ld, label, props, len, &v, &st, err))
        return st;
    bool have = v != NULL;
    agec_value_free(v);
    /* the row of an agec_loader_edge call: the properties as given */
    agec__ld_text_row g = { props, props != NULL && len == SIZE_MAX ? strlen(props) : len };
    return edge_with_row(ld, label, start, end, have ? ld->tmp.data : NULL, have ? ld->tmp.len : 0,
                         agec__ld_text_row_get, &g, err);
}

agec_status agec__ld_edge_text(agec_loader *ld, const char *label, const agec_endpoint *start,
                               const agec_endpoint *end, const char *props, size_t len,
                               agec__ld_row_fn row_fn, void *row_ctx, agec_error *err)
{
    if (ld->failed || ld->finished)
        return agec__ld_dead(ld, err);
    return edge_with_row(ld, label, start, end, props, len, row_fn, row_ctx, err);
}

/* The fields of agec_load_stats's first version: up to `method`. */
#define LOAD_STATS_BASE (offsetof(agec_load_stats, method) + sizeof(agec_load_method))

void agec_load_stats_init_sized(agec_load_stats *stats, size_t size)
{
    if (stats == NULL || size < LOAD_STATS_BASE)
        return;
    memset(stats, 0, size < sizeof *stats ? size : sizeof *stats);
    stats->size = size;
}

agec_status(agec_loader_finish)(agec_loader *ld, agec_load_stats *stats, agec_error *err)
{
    size_t size = stats != NULL ? stats->size : 0;
    if (size < LOAD_STATS_BASE || size > sizeof *stats)
        size = LOAD_STATS_BASE; /* not a size any header had: uninitialised */
    return agec_loader_finish_sized(ld, stats, size, err);
}

agec_status agec_loader_finish_sized(agec_loader *ld, agec_load_stats *stats, size_t size,
                                     agec_error *err)
{
    if (ld == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "loader must not be NULL");
    agec_status st = AGEC_OK;
    if (ld->failed || ld->finished)
        st = agec__ld_dead(ld, err);
    for (size_t i = 0; i < ld->nlabels && st == AGEC_OK; i++)
        st = agec__ld_flush(ld, ld->labels[i], err);
    if (st == AGEC_OK && (st = agec__ld_key_indexes(ld, err)) != AGEC_OK)
        agec__ld_fail(ld, st);
    if (st == AGEC_OK)
        st = agec__ld_settle(ld, err);
    if (st == AGEC_OK && (st = commit(ld, err)) != AGEC_OK)
        agec__ld_fail(ld, st);
    if (st == AGEC_OK) {
        ld->finished = true;
        ld->st.committed = ld->st.rows;
        if (ld->opts.progress != NULL) {
            agec_load_stats now;
            agec_loader_stats(ld, &now);
            ld->opts.progress(&now, ld->opts.progress_user);
        }
    }
    if (stats != NULL)
        agec_loader_stats_sized(ld, stats, size);
    return st;
}

void agec_loader_stats_sized(const agec_loader *ld, agec_load_stats *out, size_t size)
{
    if (out == NULL || size < sizeof(size_t))
        return;
    agec_load_stats s;
    memset(&s, 0, sizeof s);
    if (ld != NULL) {
        s = ld->st;
        s.elapsed_s = agec__ld_now() - ld->t0;
        s.rows_per_s = s.elapsed_s > 0 ? (double)(s.vertices + s.edges) / s.elapsed_s : 0;
    }
    s.size = size < sizeof s ? size : sizeof s;
    memcpy(out, &s, s.size);
}

void agec_loader_free(agec_loader *ld)
{
    if (ld == NULL)
        return;
    if (!ld->finished && !ld->failed)
        (void)agec__ld_settle(ld, NULL);
    if (!ld->finished && !ld->failed)
        (void)agec_tx_rollback(ld->conn, NULL);
    for (size_t i = 0; i < ld->nlabels; i++) {
        agec__ld_label *l = ld->labels[i];
        agec__keymap_free(&l->map);
        agec__buf_free(&l->rows);
        agec__buf_free(&l->a);
        agec__buf_free(&l->b);
        free(l->reserved);
        free(l->key);
        free(l->name);
        free(l);
    }
    free(ld->labels);
    agec__buf_free(&ld->tmp);
    free(ld->graph);
    free(ld);
}
