/* Reading vertices and edges from CSV (with a typed header) and JSON Lines. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agec/agtype.h"
#include "common/error_internal.h"
#include "load/load_internal.h"

typedef enum col_type {
    T_STRING,
    T_INT,
    T_FLOAT,
    T_NUMERIC,
    T_BOOL,
    T_JSON,
    T_START,
    T_END
} col_type;

typedef struct column {
    char *name;
    char *label; /* T_START/T_END: the endpoint label, NULL = graph ids */
    col_type type;
} column;

/* One CSV record: fields as offsets into `text`. */
typedef struct record {
    agec__buf text;
    size_t *off, *len;
    size_t n, cap;
    uint64_t line;  /* line where the record starts */
    uint64_t lines; /* lines it spans */
    uint64_t bytes; /* bytes read for it */
} record;

/* getc that counts what it read into r->bytes. */
static int next_char(FILE *f, record *r)
{
    int c = getc_unlocked(f);
    r->bytes += c != EOF;
    return c;
}

static bool add_field(record *r, size_t start)
{
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        size_t *no = realloc(r->off, nc * sizeof *no);
        if (no == NULL)
            return false;
        r->off = no;
        size_t *nl = realloc(r->len, nc * sizeof *nl);
        if (nl == NULL)
            return false;
        r->len = nl;
        r->cap = nc;
    }
    r->off[r->n] = start;
    r->len[r->n] = r->text.len - start;
    r->n++;
    return true;
}

/* Read one RFC 4180 record. 1 read, 0 end of file, -1 out of memory, -2
 * unterminated quote. */
static int read_record(FILE *f, record *r)
{
    r->text.len = 0;
    r->n = 0;
    r->lines = 1;
    r->bytes = 0;
    int c = next_char(f, r);
    if (c == EOF)
        return 0;
    bool quoted = false;
    size_t start = 0;
    for (;; c = next_char(f, r)) {
        if (quoted) {
            if (c == EOF)
                return -2;
            if (c == '"') {
                int d = next_char(f, r);
                if (d == '"') {
                    agec__buf_putc(&r->text, '"');
                    continue;
                }
                quoted = false;
                c = d;
            } else {
                if (c == '\n')
                    r->lines++;
                agec__buf_putc(&r->text, (char)c);
                continue;
            }
        }
        if (c == '"' && r->text.len == start) {
            quoted = true;
        } else if (c == ',') {
            if (!add_field(r, start))
                return -1;
            start = r->text.len;
        } else if (c == '\n' || c == EOF) {
            if (r->text.len > start && r->text.data[r->text.len - 1] == '\r')
                r->text.len--;
            return add_field(r, start) && !r->text.failed ? 1 : -1;
        } else {
            agec__buf_putc(&r->text, (char)c);
        }
    }
}

static bool parse_header(const char *s, size_t n, bool edges, column *col)
{
    memset(col, 0, sizeof *col);
    char *t = strndup(s, n);
    if (t == NULL)
        return false;
    if (edges && (strncmp(t, ":START_ID", 9) == 0 || strncmp(t, ":END_ID", 7) == 0)) {
        col->type = t[1] == 'S' ? T_START : T_END;
        char *p = strchr(t, '(');
        if (p != NULL) {
            char *q = strchr(p, ')');
            if (q != NULL)
                *q = '\0';
            col->label = strdup(p + 1);
        }
        col->name = t;
        return true;
    }
    char *colon = strrchr(t, ':');
    static const struct {
        const char *name;
        col_type type;
    } types[] = { { "string", T_STRING }, { "int", T_INT },      { "long", T_INT },
                  { "float", T_FLOAT },   { "double", T_FLOAT }, { "numeric", T_NUMERIC },
                  { "bool", T_BOOL },     { "boolean", T_BOOL }, { "json", T_JSON } };
    col->type = T_STRING;
    if (colon != NULL && colon != t) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(colon + 1, types[i].name) == 0) {
                col->type = types[i].type;
                *colon = '\0';
                break;
            }
        if (*colon != '\0') {
            col->name = t;
            col->type = (col_type)-1; /* unknown type: reported by the caller */
            return true;
        }
    }
    col->name = t;
    return true;
}

/* Append one typed field to the map being built. NULL on success, else
 * what is wrong with the value. */
static const char *put_field(agec_builder *b, const column *c, const char *s, size_t n,
                             agec_error *err)
{
    char tmp[64];
    char *end;
    switch (c->type) {
    case T_INT: {
        if (n == 0 || n >= sizeof tmp)
            return "not an integer";
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (*end != '\0')
            return "not an integer";
        if (errno == ERANGE)
            return "integer outside the int64 range";
        (void)agec_builder_int64(b, v, err);
        return NULL;
    }
    case T_FLOAT: {
        if (n == 0 || n >= sizeof tmp)
            return "not a float";
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        double v = strtod(tmp, &end);
        if (*end != '\0')
            return "not a float";
        if (errno == ERANGE && fabs(v) > 1)
            return "float outside the double range";
        (void)agec_builder_double(b, v, err);
        return NULL;
    }
    case T_NUMERIC:
        if (agec_builder_numeric(b, s, n, NULL) != AGEC_OK)
            return "not a numeric (a decimal number)";
        return NULL;
    case T_BOOL:
        if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && (*s == 't' || *s == '1')))
            (void)agec_builder_bool(b, true, err);
        else if ((n == 5 && strncasecmp(s, "false", 5) == 0) ||
                 (n == 1 && (*s == 'f' || *s == '0')))
            (void)agec_builder_bool(b, false, err);
        else
            return "not a bool (true or false)";
        return NULL;
    case T_JSON: {
        agec_value *v = NULL;
        if (agec_agtype_parse(s, n, AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
            return "not valid JSON";
        (void)agec_builder_value(b, v, err);
        agec_value_free(v);
        return NULL;
    }
    default:
        if (agec_builder_string(b, s, n, NULL) != AGEC_OK)
            return "not valid UTF-8";
        return NULL;
    }
}

typedef struct csv_state {
    agec_loader *ld;
    const char *label, *path;
    bool edges;
    column *cols;
    size_t ncols;
    int istart, iend;
    agec__buf line; /* a bad record written back as CSV, for the reject callback */
} csv_state;

/* Report the bad record r, written back as one CSV line (fields quoted
 * where needed), so that a reject file holds loadable rows. */
static agec_status bad(csv_state *cs, const record *r, size_t col, const char *colname,
                       agec_error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The record written back as one CSV line, into cs->line. */
static void record_line(csv_state *cs, const record *r)
{
    agec__buf *b = &cs->line;
    b->len = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *f = r->text.data + r->off[i];
        size_t n = r->len[i];
        if (i > 0)
            agec__buf_putc(b, ',');
        if (memchr(f, ',', n) == NULL && memchr(f, '"', n) == NULL && memchr(f, '\n', n) == NULL &&
            memchr(f, '\r', n) == NULL) {
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

static agec_status bad(csv_state *cs, const record *r, size_t col, const char *colname,
                       agec_error *err, const char *fmt, ...)
{
    record_line(cs, r);
    const agec__buf *b = &cs->line;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return agec__ld_bad_row(cs->ld, col, colname, b->failed ? NULL : b->data,
                            b->failed ? 0 : b->len, err, "%s", what);
}

/* The row of a CSV edge, for a missing endpoint's reject. */
typedef struct csv_row_ref {
    csv_state *cs;
    const record *r;
} csv_row_ref;

static bool csv_row_text(void *ctx, const char **row, size_t *len)
{
    csv_row_ref *ref = ctx;
    record_line(ref->cs, ref->r);
    *row = ref->cs->line.data;
    *len = ref->cs->line.len;
    return !ref->cs->line.failed;
}

static agec_status csv_row(csv_state *cs, record *r, agec_builder **bp, agec_error *err)
{
    agec_loader *ld = cs->ld;
    agec_loader_source(ld, cs->path, r->line);
    if (r->n == 1 && r->len[0] == 0)
        return AGEC_OK; /* blank line */
    if (r->n != cs->ncols)
        return bad(cs, r, r->n > cs->ncols ? cs->ncols + 1 : r->n, NULL, err,
                   "%zu fields, the header has %zu", r->n, cs->ncols);
    agec_builder *b = *bp;
    (void)agec_builder_begin_map(b, NULL);
    agec_endpoint ep[2] = { { 0 }, { 0 } };
    for (size_t i = 0; i < r->n; i++) {
        const column *c = &cs->cols[i];
        const char *s = r->text.data + r->off[i];
        size_t n = r->len[i];
        if (c->type == T_START || c->type == T_END) {
            agec_endpoint *e = &ep[c->type == T_END];
            e->label = c->label;
            e->key = s;
            e->key_len = n;
            if (c->label == NULL) {
                char tmp[32], *end;
                snprintf(tmp, sizeof tmp, "%.*s", (int)(n < 31 ? n : 31), s);
                e->id = strtoll(tmp, &end, 10);
                if (n == 0 || *end != '\0') {
                    agec_builder_free(b);
                    *bp = NULL;
                    char cut[41];
                    return bad(cs, r, i + 1, c->name, err, "not a graph id: %s",
                               agec__utf8_cut(cut, sizeof cut, tmp));
                }
            }
            continue;
        }
        if (n == 0)
            continue; /* empty field: no property */
        (void)agec_builder_key(b, c->name, strlen(c->name), NULL);
        const char *wrong = put_field(b, c, s, n, NULL);
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

static agec_status load_csv(agec_loader *ld, FILE *f, bool edges, const char *label,
                            const char *path, agec_error *err)
{
    record r;
    memset(&r, 0, sizeof r);
    csv_state cs = {
        .ld = ld, .label = label, .path = path, .edges = edges, .istart = -1, .iend = -1
    };
    agec_builder *b = NULL;
    agec_status st = AGEC_OK;
    uint64_t line = 1;
    agec_loader_source(ld, path, 1);
    int k = read_record(f, &r);
    if (k <= 0) {
        st = k == 0 ? agec__ld_bad_row(ld, 0, NULL, NULL, 0, err, "empty file: a header is needed")
                    : agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    line += r.lines;
    ld->st.input_bytes += r.bytes;
    if ((cs.cols = calloc(r.n, sizeof *cs.cols)) == NULL) {
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.n; i++, cs.ncols++) {
        if (!parse_header(r.text.data + r.off[i], r.len[i], edges, &cs.cols[i])) {
            st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        column *c = &cs.cols[i];
        if ((int)c->type == -1 || c->name[0] == '\0') {
            st = agec__error_set(err, AGEC_ERR_INPUT,
                                 "%s:1: column %zu: bad header %s (name or name:type, type one "
                                 "of string, int, float, numeric, bool, json)",
                                 path, i + 1, c->name);
            goto out;
        }
        if (c->type == T_START)
            cs.istart = (int)i;
        if (c->type == T_END)
            cs.iend = (int)i;
    }
    if (edges && (cs.istart < 0 || cs.iend < 0)) {
        st = agec__error_set(err, AGEC_ERR_INPUT,
                             "%s:1: an edge file needs columns :START_ID(Label) and "
                             ":END_ID(Label) (or :START_ID / :END_ID for graph ids)",
                             path);
        goto out;
    }
    if (agec_builder_new(&b, err) != AGEC_OK) {
        st = AGEC_ERR_NO_MEMORY;
        goto out;
    }
    for (;;) {
        r.line = line;
        k = read_record(f, &r);
        if (k == 0)
            break;
        if (k < 0) {
            agec_loader_source(ld, path, line);
            st = k == -1 ? agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory")
                         : agec__ld_bad_row(ld, 0, NULL, NULL, 0, err,
                                            "a quoted field is not closed before the end");
            break;
        }
        line += r.lines;
        ld->st.input_bytes += r.bytes;
        if (b == NULL && agec_builder_new(&b, err) != AGEC_OK) {
            st = AGEC_ERR_NO_MEMORY;
            break;
        }
        if ((st = csv_row(&cs, &r, &b, err)) != AGEC_OK)
            break;
    }
out:
    agec_builder_free(b);
    for (size_t i = 0; i < cs.ncols; i++) {
        free(cs.cols[i].name);
        free(cs.cols[i].label);
    }
    free(cs.cols);
    agec__buf_free(&r.text);
    agec__buf_free(&cs.line);
    free(r.off);
    free(r.len);
    return st;
}

/* An edge endpoint in JSON Lines: ["Label", key] or a graph id. */
static bool json_endpoint(const agec_value *v, agec_endpoint *e, agec__buf *key)
{
    memset(e, 0, sizeof *e);
    if (agec_value_type(v) == AGEC_TYPE_INT)
        return agec_value_get_int64(v, &e->id, NULL) == AGEC_OK;
    if (agec_value_type(v) != AGEC_TYPE_ARRAY || agec_value_length(v) != 2 ||
        agec_value_type(agec_value_at(v, 0)) != AGEC_TYPE_STRING)
        return false;
    size_t n;
    if (agec_value_get_string(agec_value_at(v, 0), &e->label, &n, NULL) != AGEC_OK ||
        memchr(e->label, '\0', n) != NULL || !agec__ld_key_text(agec_value_at(v, 1), key))
        return false;
    e->key = key->data;
    e->key_len = key->len;
    return true;
}

static agec_status jsonl_edge(agec_loader *ld, const char *label, const char *line, size_t n,
                              agec_error *err)
{
    agec_value *v = NULL;
    agec_error pe = AGEC_ERROR_INIT;
    if (agec_agtype_parse(line, n, AGEC_PARSE_JSON, &v, &pe) != AGEC_OK)
        return agec__ld_bad_row(ld, (size_t)pe.position + 1, NULL, line, n, err, "%s", pe.message);
    agec_status st;
    agec_endpoint s, e;
    agec__buf ks = AGEC__BUF_INIT, ke = AGEC__BUF_INIT;
    const agec_value *props = agec_value_get(v, "properties", 10);
    char *text = NULL;
    size_t len = 0;
    if (agec_value_type(v) != AGEC_TYPE_OBJECT ||
        !json_endpoint(agec_value_get(v, "start", 5), &s, &ks) ||
        !json_endpoint(agec_value_get(v, "end", 3), &e, &ke)) {
        st = agec__ld_bad_row(ld, 1, NULL, line, n, err,
                              "an edge line is {\"start\": [\"Label\", key] or graph id, \"end\": "
                              "..., \"properties\": {...}}");
    } else if (props != NULL && agec_value_type(props) != AGEC_TYPE_OBJECT) {
        st = agec__ld_bad_row(ld, 1, NULL, line, n, err, "properties must be a map");
    } else if (props != NULL && agec_value_to_agtype(props, &text, &len, err) != AGEC_OK) {
        st = AGEC_ERR_NO_MEMORY;
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
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            continue;
        agec_loader_source(ld, path, no);
        st = edges ? jsonl_edge(ld, label, line, len, err)
                   : agec_loader_vertex(ld, label, line, len, err);
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
