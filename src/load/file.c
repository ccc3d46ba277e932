/* Reading vertices and edges from CSV (with a typed header) and JSON Lines. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agec/agtype.h"
#include "common/error_internal.h"
#include "load/csv.h"
#include "load/fields.h"
#include "load/load_internal.h"

typedef struct csv_state {
    agec_loader *ld;
    const char *label, *path;
    bool edges;
    agec__column *cols;
    size_t ncols;
    int istart, iend;
    agec__buf line; /* a bad record written back as CSV, for the reject callback */
} csv_state;

/* The record written back as one CSV line, into cs->line: a reject file
 * holds loadable rows (an unquoted empty field stays unquoted, "" quoted). */
static void record_line(csv_state *cs, const agec__csv *r)
{
    agec__buf *b = &cs->line;
    b->len = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *f = r->text.data + r->off[i];
        size_t n = r->len[i];
        if (i > 0)
            agec__buf_putc(b, ',');
        if (!r->quoted[i] && memchr(f, ',', n) == NULL && memchr(f, '"', n) == NULL &&
            memchr(f, '\n', n) == NULL && memchr(f, '\r', n) == NULL) {
            if (n > 0)
                agec__buf_put(b, f, n);
            continue;
        }
        agec__buf_putc(b, '"');
        for (size_t k = 0; k < n; k++) {
            if (f[k] == '"')
                agec__buf_putc(b, '"');
            agec__buf_putc(b, f[k]);
        }
        agec__buf_putc(b, '"');
    }
}

/* Report the bad record r (rejected: counted as a row, and the load goes
 * on; else the load fails). */
static agec_status bad(csv_state *cs, const agec__csv *r, size_t col, const char *colname,
                       agec_error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static agec_status bad(csv_state *cs, const agec__csv *r, size_t col, const char *colname,
                       agec_error *err, const char *fmt, ...)
{
    record_line(cs, r);
    const agec__buf *b = &cs->line;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    agec_status st = agec__ld_bad_row(cs->ld, col, colname, b->failed ? NULL : b->data,
                                      b->failed ? 0 : b->len, err, "%s", what);
    return st == AGEC_OK ? agec__ld_row_done(cs->ld, err) : st;
}

/* The row of a CSV edge, for a missing endpoint's reject. */
typedef struct csv_row_ref {
    csv_state *cs;
    const agec__csv *r;
} csv_row_ref;

static bool csv_row_text(void *ctx, const char **row, size_t *len)
{
    csv_row_ref *ref = ctx;
    record_line(ref->cs, ref->r);
    *row = ref->cs->line.data;
    *len = ref->cs->line.len;
    return !ref->cs->line.failed;
}

static agec_status csv_row(csv_state *cs, agec__csv *r, agec_builder **bp, agec_error *err)
{
    agec_loader *ld = cs->ld;
    agec_loader_source(ld, cs->path, r->line);
    if (agec__csv_blank(r))
        return AGEC_OK; /* a blank line: no row (COPY would refuse it) */
    if (agec__ld_skip(ld))
        return AGEC_OK; /* resumed: committed before, not looked at again */
    if (r->n != cs->ncols)
        return bad(cs, r, r->n > cs->ncols ? cs->ncols + 1 : r->n, NULL, err,
                   "%zu fields, the header has %zu", r->n, cs->ncols);
    agec_builder *b = *bp;
    (void)agec_builder_begin_map(b, NULL);
    agec_endpoint ep[2] = { { 0 }, { 0 } };
    for (size_t i = 0; i < r->n; i++) {
        const agec__column *c = &cs->cols[i];
        const char *s = r->text.data + r->off[i];
        size_t n = r->len[i];
        if (c->type == AGEC__T_START || c->type == AGEC__T_END) {
            agec_endpoint *e = &ep[c->type == AGEC__T_END];
            e->label = c->label;
            e->key = s;
            e->key_len = n;
            if (c->label == NULL && !agec__graph_id_parse(s, n, &e->id)) {
                agec_builder_free(b);
                *bp = NULL;
                char tmp[48], cut[41];
                snprintf(tmp, sizeof tmp, "%.*s", (int)(n < 47 ? n : 47), s);
                return bad(cs, r, i + 1, c->name, err,
                           "not a graph id (decimal digits, 0 to 9223372036854775807): %s%s",
                           agec__utf8_cut(cut, sizeof cut, tmp), n > 40 ? "..." : "");
            }
            continue;
        }
        if (n == 0 && !(r->quoted[i] && c->type == AGEC__T_STRING))
            continue; /* an empty field: no property ("" in a string column: '') */
        (void)agec_builder_key(b, c->name, strlen(c->name), NULL);
        const char *wrong = agec__field_put(b, c, s, n);
        if (wrong != NULL) {
            agec_builder_free(b);
            *bp = NULL;
            return bad(cs, r, i + 1, c->name, err, "%s: %.*s%s", wrong, (int)(n > 60 ? 60 : n), s,
                       n > 60 ? "..." : "");
        }
    }
    (void)agec_builder_end_map(b, NULL);
    char *text = NULL;
    size_t len = 0;
    agec_error be = AGEC_ERROR_INIT;
    if (agec_builder_finish(b, &text, &len, &be) != AGEC_OK) {
        agec_builder_free(b);
        *bp = NULL;
        return bad(cs, r, 0, NULL, err, "%s", be.message);
    }
    agec_status st;
    if (cs->edges) {
        csv_row_ref ref = { cs, r };
        st = agec__ld_edge_text(ld, cs->label, &ep[0], &ep[1], text, len, csv_row_text, &ref, err);
    } else {
        st = agec__ld_vertex_text(ld, cs->label, text, len, err);
    }
    agec_free(text);
    return st;
}

/* A syntax error of the file: the load fails (rolled back); never a
 * rejected row, as the rest of the file cannot be split into rows with
 * any confidence (COPY refuses the whole file). */
static agec_status syntax_error(agec_loader *ld, const agec__csv *r, const char *path,
                                agec_error *err)
{
    if (r->error == NULL)
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
    agec_loader_source(ld, path, r->err_line);
    return agec__ld_input_error(ld, r->err_field, err, "%s", r->error);
}

static agec_status csv_header(agec_loader *ld, csv_state *cs, agec__csv *r, agec_error *err)
{
    if ((cs->cols = calloc(r->n, sizeof *cs->cols)) == NULL)
        return agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
    agec_builder *names = NULL;
    agec_status st = agec_builder_new(&names, err);
    if (st == AGEC_OK)
        st = agec_builder_begin_map(names, err);
    for (size_t i = 0; st == AGEC_OK && i < r->n; i++, cs->ncols++) {
        agec__column *c = &cs->cols[i];
        if (!agec__column_parse(r->text.data + r->off[i], r->len[i], cs->edges, c)) {
            st = agec__ld_fail(ld, agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory"));
            break;
        }
        if (c->type == AGEC__T_BAD ||
            (c->type != AGEC__T_START && c->type != AGEC__T_END &&
             agec_builder_key(names, c->name, strlen(c->name), NULL) != AGEC_OK)) {
            st = agec__ld_input_error(ld, i + 1, err,
                                      "bad header %.100s (name or name:type, type one of string, "
                                      "int, float, numeric, bool, json; UTF-8, no NUL)",
                                      c->name);
            cs->ncols++;
            break;
        }
        if (c->type == AGEC__T_START)
            cs->istart = (int)i;
        if (c->type == AGEC__T_END)
            cs->iend = (int)i;
        if (c->type != AGEC__T_START && c->type != AGEC__T_END &&
            agec_builder_null(names, NULL) != AGEC_OK) {
            st = agec__ld_input_error(ld, i + 1, err, "bad header %.100s", c->name);
            cs->ncols++;
            break;
        }
    }
    agec_builder_free(names);
    if (st == AGEC_OK && cs->edges && (cs->istart < 0 || cs->iend < 0))
        st = agec__ld_input_error(ld, 0, err,
                                  "an edge file needs columns :START_ID(Label) and "
                                  ":END_ID(Label) (or :START_ID / :END_ID for graph ids)");
    return st;
}

static agec_status load_csv(agec_loader *ld, FILE *f, bool edges, const char *label,
                            const char *path, agec_error *err)
{
    agec__csv r;
    agec__csv_init(&r, f);
    csv_state cs = {
        .ld = ld, .label = label, .path = path, .edges = edges, .istart = -1, .iend = -1
    };
    agec_builder *b = NULL;
    agec_status st = AGEC_OK;
    agec_loader_source(ld, path, 1);
    int k = agec__csv_read(&r);
    ld->st.input_bytes += r.bytes;
    if (k == AGEC__CSV_EOF)
        st = agec__ld_input_error(ld, 0, err, "empty file: a header is needed");
    else if (k < 0)
        st = syntax_error(ld, &r, path, err);
    else
        st = csv_header(ld, &cs, &r, err);
    while (st == AGEC_OK) {
        k = agec__csv_read(&r);
        ld->st.input_bytes += r.bytes;
        if (k == AGEC__CSV_EOF)
            break;
        if (k < 0) {
            st = syntax_error(ld, &r, path, err);
            break;
        }
        if (b == NULL && agec_builder_new(&b, err) != AGEC_OK) {
            st = agec__ld_fail(ld, AGEC_ERR_NO_MEMORY);
            break;
        }
        st = csv_row(&cs, &r, &b, err);
    }
    agec_builder_free(b);
    for (size_t i = 0; i < cs.ncols; i++)
        agec__column_free(&cs.cols[i]);
    free(cs.cols);
    agec__csv_free(&r);
    agec__buf_free(&cs.line);
    return st;
}

static agec_status jsonl_edge(agec_loader *ld, const char *label, const char *line, size_t n,
                              agec_error *err)
{
    agec_value *v = NULL;
    agec_error pe = AGEC_ERROR_INIT;
    if (agec_agtype_parse(line, n, AGEC_PARSE_JSON, &v, &pe) != AGEC_OK) {
        agec_status st =
            agec__ld_bad_row(ld, (size_t)pe.position + 1, NULL, line, n, err, "%s", pe.message);
        return st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    }
    agec_status st;
    agec_endpoint s, e;
    agec__buf ks = AGEC__BUF_INIT, ke = AGEC__BUF_INIT;
    const agec_value *props = agec_value_get(v, "properties", 10);
    char *text = NULL;
    size_t len = 0;
    if (agec_value_type(v) != AGEC_TYPE_OBJECT ||
        !agec__json_endpoint(agec_value_get(v, "start", 5), &s, &ks) ||
        !agec__json_endpoint(agec_value_get(v, "end", 3), &e, &ke)) {
        st = agec__ld_bad_row(ld, 1, NULL, line, n, err,
                              "an edge line is {\"start\": [\"Label\", key] or graph id (>= 0), "
                              "\"end\": ..., \"properties\": {...}}");
        st = st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    } else if (props != NULL && agec_value_type(props) != AGEC_TYPE_OBJECT) {
        st = agec__ld_bad_row(ld, 1, NULL, line, n, err, "properties must be a map");
        st = st == AGEC_OK ? agec__ld_row_done(ld, err) : st;
    } else if (props != NULL && agec_value_to_agtype(props, &text, &len, err) != AGEC_OK) {
        st = agec__ld_fail(ld, AGEC_ERR_NO_MEMORY);
    } else {
        agec__ld_text_row ref = { line, n };
        st = agec__ld_edge_text(ld, label, &s, &e, text, len, agec__ld_text_row_get, &ref, err);
    }
    agec_free(text);
    agec__buf_free(&ks);
    agec__buf_free(&ke);
    agec_value_free(v);
    return st;
}

static agec_status load_jsonl(agec_loader *ld, FILE *f, bool edges, const char *label,
                              const char *path, agec_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t no = 0;
    agec_status st = AGEC_OK;
    while ((n = getline(&line, &cap, f)) >= 0) {
        no++;
        ld->st.input_bytes += (uint64_t)n;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t i = no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        size_t bom = i; /* a UTF-8 byte-order mark: skipped, as in CSV */
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            continue;
        agec_loader_source(ld, path, no);
        if (edges && agec__ld_skip(ld))
            continue; /* resumed: committed before, not looked at again */
        st = edges ? jsonl_edge(ld, label, line + bom, len - bom, err)
                   : agec_loader_vertex(ld, label, line + bom, len - bom, err);
        if (st != AGEC_OK)
            break;
    }
    free(line);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

agec_status agec_loader_file(agec_loader *ld, bool edges, const char *label, const char *path,
                             agec_load_format format, agec_error *err)
{
    if (ld == NULL || label == NULL || path == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "loader, label and path are required");
    if (ld->failed || ld->finished)
        return agec__error_set(err, AGEC_ERR_STATE, "the load failed or was finished");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return agec__error_set(err, AGEC_ERR_SYSTEM, "%s: %s", path, strerror(errno));
    if (format == AGEC_FORMAT_AUTO)
        format = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")
                     ? AGEC_FORMAT_JSONL
                     : AGEC_FORMAT_CSV;
    agec_status st = format == AGEC_FORMAT_JSONL ? load_jsonl(ld, f, edges, label, path, err)
                                                 : load_csv(ld, f, edges, label, path, err);
    fclose(f);
    return st;
}
