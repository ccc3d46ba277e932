/* libFuzzer: the loader's file readers without a server (issue 24): the
 * strict CSV reader (src/load/csv.c) with the header parser and the typed
 * fields (src/load/fields.c), and the JSON Lines edge and vertex lines.
 * The first byte picks CSV vertices, CSV edges or JSON Lines. Checked:
 * no crash or leak; every field inside the record's text; an error names
 * a line at or after its record's and a field; a record written back as
 * CSV (every field quoted) reads back to the same fields; a vertex map
 * whose text has a NUL escape is found by agec__text_has_nul. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"
#include "load/csv.h"
#include "load/fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* r's record, every field quoted, read again: the same fields. */
static void round_trip(const agec__csv *r, int eol)
{
    agec__buf b = AGEC__BUF_INIT;
    for (size_t i = 0; i < r->n; i++) {
        if (i > 0)
            agec__buf_putc(&b, ',');
        agec__buf_putc(&b, '"');
        for (size_t k = 0; k < r->len[i]; k++) {
            char ch = r->text.data[r->off[i] + k];
            if (ch == '"')
                agec__buf_putc(&b, '"');
            agec__buf_putc(&b, ch);
        }
        agec__buf_putc(&b, '"');
    }
    agec__buf_puts(&b, "\n");
    if (b.failed || eol == CSV_CR || eol == CSV_CRLF) {
        agec__buf_free(&b); /* a LF ends the line only in an LF file */
        return;
    }
    FILE *f = fmemopen(b.data, b.len, "r");
    if (f == NULL)
        abort();
    agec__csv again;
    agec__csv_init(&again, f);
    again.begun = true; /* a field may start with EF BB BF: data here */
    if (agec__csv_read(&again) != AGEC__CSV_RECORD || again.n != r->n)
        abort();
    for (size_t i = 0; i < r->n; i++)
        if (again.len[i] != r->len[i] || !again.quoted[i] ||
            memcmp(again.text.data + again.off[i], r->text.data + r->off[i], r->len[i]) != 0)
            abort();
    agec__csv_free(&again);
    fclose(f);
    agec__buf_free(&b);
}

static void fuzz_csv(const uint8_t *data, size_t size, bool edges)
{
    if (size == 0)
        return; /* fmemopen of 0 bytes is unspecified */
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
    if (f == NULL)
        abort();
    agec__csv r;
    agec__csv_init(&r, f);
    agec__column *cols = NULL;
    size_t ncols = 0;
    uint64_t bytes = 0;
    for (int k; (k = agec__csv_read(&r)) != AGEC__CSV_EOF;) {
        bytes += r.bytes;
        if (k == AGEC__CSV_BAD) {
            if (r.error == NULL || r.err_line < r.line || r.err_field == 0)
                abort();
            break;
        }
        if (k != AGEC__CSV_RECORD || r.n == 0)
            abort();
        for (size_t i = 0; i < r.n; i++)
            if (r.off[i] + r.len[i] > r.text.len || memchr(r.text.data + r.off[i], 0, r.len[i]))
                abort();
        round_trip(&r, r.eol);
        if (cols == NULL) {
            cols = calloc(r.n, sizeof *cols);
            if (cols == NULL)
                abort();
            for (ncols = 0; ncols < r.n; ncols++)
                if (!agec__column_parse(r.text.data + r.off[ncols], r.len[ncols], edges,
                                        &cols[ncols]))
                    abort();
            continue;
        }
        agec_builder *b = NULL;
        if (agec_builder_new(&b, NULL) != AGEC_OK)
            abort();
        (void)agec_builder_begin_map(b, NULL);
        for (size_t i = 0; i < r.n && i < ncols; i++) {
            const char *s = r.text.data + r.off[i];
            int64_t id;
            if (cols[i].type == AGEC__T_START || cols[i].type == AGEC__T_END) {
                if (agec__graph_id_parse(s, r.len[i], &id) && id < 0)
                    abort();
                char canon[24];
                size_t cn;
                (void)agec__int_key_canonical(s, r.len[i], canon, &cn);
                continue;
            }
            if (cols[i].type == AGEC__T_BAD || r.len[i] == 0)
                continue;
            (void)agec_builder_key(b, cols[i].name, strlen(cols[i].name), NULL);
            if (agec__field_put(b, &cols[i], s, r.len[i]) != NULL)
                break;
        }
        (void)agec_builder_end_map(b, NULL);
        char *text = NULL;
        size_t len = 0;
        if (agec_builder_finish(b, &text, &len, NULL) == AGEC_OK) {
            agec_value *v = NULL;
            if (agec_agtype_parse(text, len, 0, &v, NULL) != AGEC_OK)
                abort(); /* the map built must read back */
            agec_value_free(v);
            (void)agec__text_has_nul(text, len);
        }
        agec_free(text);
        agec_builder_free(b);
    }
    if (bytes > size)
        abort();
    for (size_t i = 0; i < ncols; i++)
        agec__column_free(&cols[i]);
    free(cols);
    agec__csv_free(&r);
    fclose(f);
}

static void fuzz_jsonl(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        agec_value *v = NULL;
        if (agec_agtype_parse(p, n, AGEC_PARSE_JSON, &v, NULL) == AGEC_OK) {
            agec_endpoint e;
            agec__buf key = AGEC__BUF_INIT;
            if (agec__json_endpoint(agec_value_get(v, "start", 5), &e, &key) && e.label == NULL &&
                e.id < 0)
                abort();
            agec__buf_free(&key);
            char *text = NULL;
            size_t len = 0;
            if (agec_value_type(v) == AGEC_TYPE_OBJECT &&
                agec_value_to_agtype(v, &text, &len, NULL) == AGEC_OK) {
                /* a NUL in the line's strings is found in its canonical text */
                bool nul_in = false;
                for (const char *q = p; q + 6 <= p + n; q++)
                    if (memcmp(q, "\\u0000", 6) == 0)
                        nul_in = true;
                if (agec__text_has_nul(text, len) && !nul_in)
                    abort();
            }
            agec_free(text);
            agec_value_free(v);
        }
        p += n + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_csv(data + 1, size - 1, false);
        break;
    case 1:
        fuzz_csv(data + 1, size - 1, true);
        break;
    default:
        fuzz_jsonl(data + 1, size - 1);
    }
    return 0;
}
