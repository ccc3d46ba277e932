/* Result output: aligned tables, JSON Lines, CSV; and --param handling. */
#define _GNU_SOURCE /* newlocale, uselocale */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"

out_format cli_format(const cli *c)
{
    if (c->format != FMT_AUTO)
        return c->format;
    return isatty(STDOUT_FILENO) ? FMT_TABLE : FMT_JSON;
}

void cli_json_string(const char *s, size_t len, FILE *out)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (ch < 0x20)
                fprintf(out, "\\u%04x", ch);
            else
                fputc(ch, out);
        }
    }
    fputc('"', out);
}

/* SQL column types written as JSON numbers / booleans / raw JSON: the
 * AGEC_OID_ constants of agec/cypher.h. */
void cli_cell_json(agec_result *res, size_t row, size_t col, bool cypher, FILE *out)
{
    size_t len;
    const char *text = agec_result_text(res, row, col, &len);
    if (text == NULL) {
        fputs("null", out);
        return;
    }
    if (cypher) {
        const agec_value *v;
        char *json;
        size_t jlen;
        if (agec_result_value(res, row, col, &v, NULL) == AGEC_OK &&
            agec_value_to_json(v, AGEC_JSON_NONFINITE_STRING, &json, &jlen, NULL) == AGEC_OK) {
            fwrite(json, 1, jlen, out);
            agec_free(json);
        } else {
            cli_json_string(text, len, out); /* unparseable: keep the text, lose nothing */
        }
        return;
    }
    switch (agec_result_column_type(res, col)) {
    case AGEC_OID_BOOL:
        fputs(text[0] == 't' ? "true" : "false", out);
        return;
    case AGEC_OID_INT2:
    case AGEC_OID_INT4:
    case AGEC_OID_INT8:
    case AGEC_OID_OID:
        fwrite(text, 1, len, out);
        return;
    case AGEC_OID_FLOAT4:
    case AGEC_OID_FLOAT8:
    case AGEC_OID_NUMERIC:
        if (strspn(text, "0123456789.-+eE") == len && len > 0) {
            fwrite(text, 1, len, out);
            return;
        }
        break; /* NaN, Infinity: strings */
    case AGEC_OID_JSON:
    case AGEC_OID_JSONB:
        fwrite(text, 1, len, out);
        return;
    default:
        break;
    }
    cli_json_string(text, len, out);
}

static void csv_field(const char *s, size_t len, FILE *out)
{
    if (s == NULL)
        return; /* NULL: empty field */
    bool quote = len == 0 || memchr(s, ',', len) || memchr(s, '"', len) || memchr(s, '\n', len) ||
                 memchr(s, '\r', len);
    if (!quote) {
        fwrite(s, 1, len, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

static bool is_column_name(agec_result *res, const char *name)
{
    for (size_t c = 0; c < agec_result_columns(res); c++)
        if (strcmp(agec_result_column_name(res, c), name) == 0)
            return true;
    return false;
}

/* The JSON key of column col: its name, or for a name that an earlier
 * column already has (SELECT 1 AS a, 2 AS a) the name with "_2", "_3", ...
 * (one no column has), as Cypher result columns are made unique: JSON
 * objects with duplicate keys lose values in most readers. */
static const char *json_key(agec_result *res, size_t col, char *buf, size_t cap)
{
    const char *name = agec_result_column_name(res, col);
    size_t same = 0;
    for (size_t c = 0; c < col; c++)
        same += strcmp(agec_result_column_name(res, c), name) == 0;
    if (same == 0)
        return name;
    /* The k-th repeat takes the k-th free suffix from 2 up. */
    size_t n = 1;
    for (size_t k = 0; k < same; k++) {
        do
            snprintf(buf, cap, "%s_%zu", name, ++n);
        while (is_column_name(res, buf));
    }
    return buf;
}

static void print_json_row(agec_result *res, size_t row, bool cypher, FILE *out)
{
    fputc('{', out);
    for (size_t c = 0; c < agec_result_columns(res); c++) {
        char buf[128];
        const char *name = json_key(res, c, buf, sizeof buf);
        if (c > 0)
            fputs(", ", out);
        cli_json_string(name, strlen(name), out);
        fputs(": ", out);
        cli_cell_json(res, row, c, cypher, out);
    }
    fputs("}\n", out);
}

static void print_csv_header(agec_result *res, FILE *out)
{
    for (size_t c = 0; c < agec_result_columns(res); c++) {
        const char *name = agec_result_column_name(res, c);
        if (c > 0)
            fputc(',', out);
        csv_field(name, strlen(name), out);
    }
    fputc('\n', out);
}

/* The plain text of a Cypher cell, as CSV and tables show it (malloc'd;
 * NULL for SQL NULL): an agtype string as its text, a float that is not
 * finite as NaN, Infinity or -Infinity (PostgreSQL's spelling), any other
 * value as compact JSON (a vertex without its ::vertex); the server's text
 * when it does not parse. */
static char *cypher_plain(agec_result *res, size_t row, size_t col)
{
    size_t len;
    const char *t = agec_result_text(res, row, col, &len);
    if (t == NULL)
        return NULL;
    const agec_value *v;
    char *json = NULL;
    double d;
    if (agec_result_value(res, row, col, &v, NULL) == AGEC_OK) {
        if (agec_value_get_string(v, &t, &len, NULL) == AGEC_OK) {
            /* the string's own text */
        } else if (agec_value_type(v) == AGEC_TYPE_FLOAT &&
                   agec_value_get_double(v, &d, NULL) == AGEC_OK && !isfinite(d)) {
            t = isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
            len = strlen(t);
        } else if (agec_value_to_json(v, AGEC_JSON_COMPACT, &json, &len, NULL) == AGEC_OK) {
            t = json;
        }
    }
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, t, len);
        copy[len] = '\0';
    }
    agec_free(json);
    return copy;
}

/* CSV cells: SQL text as is; Cypher values as cypher_plain. */
static void print_csv_row(agec_result *res, size_t row, bool cypher, FILE *out)
{
    for (size_t c = 0; c < agec_result_columns(res); c++) {
        size_t len;
        const char *t = agec_result_text(res, row, c, &len);
        if (c > 0)
            fputc(',', out);
        if (cypher && t != NULL) {
            char *plain = cypher_plain(res, row, c);
            if (plain != NULL)
                csv_field(plain, strlen(plain), out);
            free(plain);
            continue;
        }
        csv_field(t, len, out);
    }
    fputc('\n', out);
}

/* Display width of code point cp on a terminal (wcwidth in a UTF-8
 * locale: 2 for CJK and other wide characters, 0 for combining marks), 1
 * when no UTF-8 locale can be had. */
static int cp_width(uint32_t cp)
{
    static locale_t utf8 = (locale_t)0;
    static int tried = 0;
    if (!tried) { /* the CLI prints from one thread */
        tried = 1;
        utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    if (utf8 == (locale_t)0 || cp < 0x80)
        return 1;
    locale_t old = uselocale(utf8);
    int w = wcwidth((wchar_t)cp);
    uselocale(old);
    return w < 0 ? 1 : w;
}

/* One UTF-8 sequence at s (len > 0): its code point and length; an invalid
 * byte is itself (0xFFFD, 1 byte). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> n));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return n;
}

/* Print s as a table cell shows it (when out is not NULL) and return its
 * display width. Nothing reaches the terminal raw that could act on it:
 * backslash, newline, CR and tab as \\ \n \r \t, other control
 * characters (C0, DEL, C1) as \xNN or \u00NN, so `x\ny` (a backslash) and
 * a newline differ and no escape sequence is sent; wide characters count
 * two columns, as psql counts them. */
static size_t render(const char *s, size_t len, FILE *out)
{
    size_t w = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next(u + i, len - i, &cp);
        char esc[8] = "";
        if (cp == '\\' || cp == '\n' || cp == '\r' || cp == '\t')
            snprintf(esc, sizeof esc, "\\%c",
                     cp == '\\'   ? '\\'
                     : cp == '\n' ? 'n'
                     : cp == '\r' ? 'r'
                                  : 't');
        else if (cp < 0x20 || cp == 0x7F)
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
        else if (cp >= 0x80 && cp < 0xA0)
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        if (esc[0] != '\0') {
            if (out != NULL)
                fputs(esc, out);
            w += strlen(esc);
        } else {
            if (out != NULL)
                fwrite(u + i, 1, n, out);
            w += (size_t)cp_width(cp);
        }
        i += n;
    }
    return w;
}

static void table_cell(const char *s, size_t len, size_t pad_to, FILE *out)
{
    for (size_t w = render(s, len, out); w < pad_to; w++)
        fputc(' ', out);
}

/* Display text of a path in tables: (:Person Ada)-[:KNOWS]->(:Person Bob).
 * Vertices show properties.name when it is a string, else their id. */
static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*buf == NULL)
        return;
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void append_vertex(char **buf, size_t *len, size_t *cap, const agec_value *v)
{
    const char *label = "";
    size_t llen = 0;
    (void)agec_element_label(v, &label, &llen, NULL);
    append(buf, len, cap, "(:", 2);
    append(buf, len, cap, label, llen);
    append(buf, len, cap, " ", 1);
    const agec_value *name = agec_value_get(agec_element_properties(v), "name", 4);
    const char *s;
    size_t slen;
    char idbuf[32];
    if (agec_value_get_string(name, &s, &slen, NULL) != AGEC_OK) {
        int64_t id = 0;
        (void)agec_element_id(v, &id, NULL);
        slen = (size_t)snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
        s = idbuf;
    }
    append(buf, len, cap, s, slen);
    append(buf, len, cap, ")", 1);
}

static char *path_text(const agec_value *p)
{
    size_t len = 0, cap = 128;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    buf[0] = '\0';
    size_t n = agec_path_length(p);
    append_vertex(&buf, &len, &cap, agec_path_vertex(p, 0));
    for (size_t i = 0; i < n; i++) {
        const agec_value *e = agec_path_edge(p, i), *prev = agec_path_vertex(p, i);
        int64_t start = 0, prev_id = 0;
        (void)agec_edge_start_id(e, &start, NULL);
        (void)agec_element_id(prev, &prev_id, NULL);
        const char *label = "";
        size_t llen = 0;
        (void)agec_element_label(e, &label, &llen, NULL);
        bool forward = start == prev_id;
        append(&buf, &len, &cap, forward ? "-[:" : "<-[:", forward ? 3 : 4);
        append(&buf, &len, &cap, label, llen);
        append(&buf, &len, &cap, forward ? "]->" : "]-", forward ? 3 : 2);
        append_vertex(&buf, &len, &cap, agec_path_vertex(p, i + 1));
    }
    return buf;
}

/* Text shown in a table cell (malloc'ed): a path drawn, another Cypher
 * value as CSV shows it (cypher_plain), SQL as the server's text. */
static char *display_text(agec_result *res, size_t r, size_t c, bool cypher)
{
    size_t len;
    const char *t = agec_result_text(res, r, c, &len);
    if (t == NULL)
        return strdup("");
    const agec_value *v;
    if (cypher && len > 6 && memcmp(t + len - 6, "::path", 6) == 0 &&
        agec_result_value(res, r, c, &v, NULL) == AGEC_OK && agec_value_type(v) == AGEC_TYPE_PATH)
        return path_text(v);
    if (cypher)
        return cypher_plain(res, r, c);
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, t, len);
        copy[len] = '\0';
    }
    return copy;
}

/* Display width of a cell or header as table_cell prints it. */
static size_t text_width(const char *t)
{
    return render(t, strlen(t), NULL);
}

static void print_table(agec_result *res, bool cypher, FILE *out)
{
    size_t ncol = agec_result_columns(res), nrow = agec_result_rows(res);
    size_t *w = calloc(ncol ? ncol : 1, sizeof *w);
    char **cells = calloc(nrow * ncol + 1, sizeof *cells);
    if (w == NULL || cells == NULL)
        goto out;
    for (size_t c = 0; c < ncol; c++) {
        const char *name = agec_result_column_name(res, c);
        w[c] = text_width(name);
        for (size_t r = 0; r < nrow; r++) {
            char *t = cells[r * ncol + c] = display_text(res, r, c, cypher);
            size_t cw = t ? text_width(t) : 0;
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t c = 0; c < ncol; c++) {
        const char *name = agec_result_column_name(res, c);
        fputs(c ? " | " : " ", out);
        table_cell(name, strlen(name), w[c], out);
    }
    fputc('\n', out);
    for (size_t c = 0; c < ncol; c++) {
        fputs(c ? "-+-" : "-", out);
        for (size_t k = 0; k < w[c]; k++)
            fputc('-', out);
    }
    fputs("-\n", out);
    for (size_t r = 0; r < nrow; r++) {
        for (size_t c = 0; c < ncol; c++) {
            const char *t = cells[r * ncol + c];
            fputs(c ? " | " : " ", out);
            table_cell(t ? t : "", t ? strlen(t) : 0, w[c], out);
        }
        fputc('\n', out);
    }
out:
    if (cells != NULL)
        for (size_t i = 0; i < nrow * ncol; i++)
            free(cells[i]);
    free(cells);
    free(w);
}

int cli_print_result(const cli *c, agec_result *res, bool cypher, FILE *out)
{
    size_t nrow = agec_result_rows(res);
    switch (cli_format(c)) {
    case FMT_JSON:
        for (size_t r = 0; r < nrow; r++)
            print_json_row(res, r, cypher, out);
        break;
    case FMT_CSV:
        print_csv_header(res, out);
        for (size_t r = 0; r < nrow; r++)
            print_csv_row(res, r, cypher, out);
        break;
    default:
        if (agec_result_columns(res) > 0) /* a statement without columns: its tag alone */
            print_table(res, cypher, out);
        /* A statement without rows (INSERT, CREATE, ...) says what it did,
         * as psql does: its command tag, e.g. "INSERT 0 5". */
        if (c->quiet)
            break;
        if (agec_result_columns(res) == 0 && agec_result_command(res)[0] != '\0')
            fprintf(out, "%s\n", agec_result_command(res));
        else
            fprintf(out, "(%zu row%s)\n", nrow, nrow == 1 ? "" : "s");
        break;
    }
    return EXIT_OK;
}

int cli_print_statement_result(const cli *c, agec_result *res, const char *cypher_text, FILE *out)
{
    if (cypher_text != NULL && cli_format(c) == FMT_TABLE && agec_result_rows(res) == 0) {
        /* No RETURN (CREATE, SET, DELETE, MERGE ...): no made-up "result"
         * column, just what happened. */
        char **names = NULL;
        size_t count = 0;
        agec_status st = agec_cypher_return_columns(cypher_text, &names, &count, NULL);
        /* The library names the one column of a query without RETURN
         * "result"; a query with the word RETURN anywhere keeps its table. */
        bool no_return = st == AGEC_OK && count == 1 && strcmp(names[0], "result") == 0 &&
                         strcasestr(cypher_text, "return") == NULL;
        agec_strings_free(names);
        if (no_return) {
            if (!c->quiet)
                fputs("(0 rows)\n", out);
            return EXIT_OK;
        }
    }
    return cli_print_result(c, res, cypher_text != NULL, out);
}

void cli_print_json_row(agec_result *row, bool cypher, FILE *out)
{
    print_json_row(row, 0, cypher, out);
}

/* Whether c can start a JSON value (a string, number, object, array,
 * true, false or null). */
static bool json_start(char c)
{
    return c != '\0' && strchr("\"{[-0123456789tfn", c) != NULL;
}

void cli_param_hint(agec_error *err)
{
    if (err->hint[0] == '\0' && strstr(err->message, "parameters argument is missing") != NULL)
        snprintf(err->hint, sizeof err->hint,
                 "the statement uses $parameters: give them with --param NAME=JSON or "
                 "--params JSON-OBJECT (in the shell: :params JSON)");
}

int cli_build_params(const char *params_json, const char *const *pairs, int npairs, char **out)
{
    *out = NULL;
    if (params_json == NULL && npairs == 0)
        return EXIT_OK;
    agec_error err = AGEC_ERROR_INIT;
    agec_builder *b = NULL;
    agec_value *obj = NULL;
    int rc = EXIT_USAGE;
    if (agec_builder_new(&b, &err) != AGEC_OK || agec_builder_begin_map(b, &err) != AGEC_OK)
        goto fail;
    if (params_json != NULL) {
        agec_status st =
            agec_agtype_parse(params_json, strlen(params_json), AGEC_PARSE_JSON, &obj, &err);
        if (st != AGEC_OK) {
            fprintf(stderr, "agec: --params: invalid JSON at byte %d: %s\n", err.position,
                    err.message);
            goto done;
        }
        if (agec_value_type(obj) != AGEC_TYPE_OBJECT) {
            fprintf(stderr, "agec: --params must be a JSON object\n");
            goto done;
        }
        for (size_t i = 0; i < agec_value_length(obj); i++) {
            const char *key;
            size_t klen;
            const agec_value *v = agec_value_entry(obj, i, &key, &klen);
            (void)agec_builder_key(b, key, klen, &err);
            (void)agec_builder_value(b, v, &err);
        }
    }
    for (int i = 0; i < npairs; i++) {
        const char *eq = strchr(pairs[i], '=');
        if (eq == NULL || eq == pairs[i]) {
            fprintf(stderr, "agec: --param '%s': expected NAME=JSON\n", pairs[i]);
            goto done;
        }
        agec_value *v = NULL;
        agec_status st = agec_agtype_parse(eq + 1, strlen(eq + 1), AGEC_PARSE_JSON, &v, &err);
        if (st != AGEC_OK && !json_start(eq[1])) {
            /* The common slip: a string without its quotes (x=abc). */
            fprintf(stderr,
                    "agec: --param %.*s: %s is not a JSON value; a string needs its quotes: "
                    "--param '%.*s=\"%s\"'\n",
                    (int)(eq - pairs[i]), pairs[i], eq + 1, (int)(eq - pairs[i]), pairs[i], eq + 1);
            goto done;
        }
        if (st != AGEC_OK) {
            fprintf(stderr, "agec: --param %.*s: invalid JSON at byte %d: %s\n",
                    (int)(eq - pairs[i]), pairs[i], err.position, err.message);
            goto done;
        }
        (void)agec_builder_key(b, pairs[i], (size_t)(eq - pairs[i]), &err);
        (void)agec_builder_value(b, v, &err);
        agec_value_free(v);
    }
    if (agec_builder_end_map(b, &err) != AGEC_OK)
        goto fail;
    size_t len;
    if (agec_builder_finish(b, out, &len, &err) != AGEC_OK)
        goto fail;
    rc = EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "agec: building parameters: %s\n", err.message);
done:
    agec_value_free(obj);
    agec_builder_free(b);
    return rc;
}
