/* The loader's strict CSV record reader (see csv.h). */
#include "load/csv.h"

#include <stdlib.h>
#include <string.h>

/* Bytes that end or break an unquoted field's run of plain bytes. */
static const unsigned char special[256] = { [0] = 1, [','] = 1, ['"'] = 1, ['\n'] = 1, ['\r'] = 1 };

static inline int getch(agec__csv *r)
{
    int c = getc_unlocked(r->f);
    r->bytes += c != EOF;
    return c;
}

static inline void ungetch(agec__csv *r, int c)
{
    if (c != EOF) {
        ungetc(c, r->f);
        r->bytes--;
    }
}

void agec__csv_init(agec__csv *r, FILE *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->next = 1;
}

void agec__csv_free(agec__csv *r)
{
    agec__buf_free(&r->text);
    free(r->off);
    free(r->len);
    free(r->quoted);
    r->off = r->len = NULL;
    r->quoted = NULL;
    r->n = r->cap = 0;
}

bool agec__csv_blank(const agec__csv *r)
{
    return r->n == 1 && r->len[0] == 0 && !r->quoted[0];
}

static bool add_field(agec__csv *r, size_t start, bool quoted)
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
        bool *nq = realloc(r->quoted, nc * sizeof *nq);
        if (nq == NULL)
            return false;
        r->quoted = nq;
        r->cap = nc;
    }
    r->off[r->n] = start;
    r->len[r->n] = r->text.len - start;
    r->quoted[r->n] = quoted;
    r->n++;
    return true;
}

static const char TOO_LONG[] =
    "a record of more than 256 MiB (a quoted field not closed where it should be?)";

static int bad(agec__csv *r, uint64_t line, const char *what)
{
    r->error = what;
    r->err_line = line;
    r->err_field = r->n + 1;
    return AGEC__CSV_BAD;
}

/* A UTF-8 byte-order mark at the very start is skipped (Python's
 * utf-8-sig); anything else is put back. */
static void skip_bom(agec__csv *r)
{
    r->begun = true;
    int c1 = getch(r);
    if (c1 != 0xEF) {
        ungetch(r, c1);
        return;
    }
    int c2 = getch(r);
    if (c2 == 0xBB) {
        int c3 = getch(r);
        if (c3 == 0xBF)
            return;
        /* EF BB xx: not a mark; the three bytes are data. ungetc takes
         * one byte back only: an in-memory stream of the three. */
        ungetch(r, c3);
        agec__buf_putc(&r->text, (char)0xEF);
        agec__buf_putc(&r->text, (char)0xBB);
        return;
    }
    ungetch(r, c2);
    agec__buf_putc(&r->text, (char)0xEF);
}

int agec__csv_read(agec__csv *r)
{
    r->text.len = 0;
    r->n = 0;
    r->bytes = 0;
    if (!agec__buf_reserve(&r->text, 256)) /* fields point into it, even when empty */
        return AGEC__CSV_NOMEM;
    r->line = r->next;
    if (!r->begun)
        skip_bom(r); /* may leave the first bytes of the first field in text */
    uint64_t line = r->line;
    size_t start = 0;
    int c = getch(r);
    if (c == EOF && r->text.len == 0)
        return AGEC__CSV_EOF;
    for (;;) {
        bool quoted = false;
        if (c == '"' && r->text.len == start) {
            quoted = true;
            uint64_t opened = line;
            for (;;) {
                c = getch(r);
                if (c == '"') {
                    c = getch(r);
                    if (c != '"')
                        break;
                } else if (c == EOF) {
                    return bad(r, opened,
                               "a quoted field opened here is not closed before the end of the "
                               "file");
                } else if (c == 0) {
                    return bad(r, line, "a NUL byte (not text)");
                } else if (c == '\n' || (c == '\r' && r->eol == CSV_CR)) {
                    line++;
                    if (r->text.len > AGEC__CSV_MAX_RECORD)
                        return bad(r, opened, TOO_LONG);
                }
                agec__buf_putc(&r->text, (char)c);
            }
            if (c != ',' && c != '\n' && c != '\r' && c != EOF)
                return bad(r, line,
                           "a closing quote followed by more text (a quote inside a quoted field "
                           "is written \"\")");
        } else {
            while (c != EOF && special[c] == 0) {
                agec__buf_putc(&r->text, (char)c);
                c = getch(r);
            }
            if (c == '"')
                return bad(r, line,
                           "a quote inside an unquoted field (quote the whole field and write "
                           "the quote \"\")");
            if (c == 0)
                return bad(r, line, "a NUL byte (not text)");
        }
        if (!add_field(r, start, quoted) || r->text.failed)
            return AGEC__CSV_NOMEM;
        if (r->text.len > AGEC__CSV_MAX_RECORD) {
            r->n--;
            return bad(r, line, TOO_LONG);
        }
        if (c == ',') {
            start = r->text.len;
            c = getch(r);
            continue;
        }
        /* The record's end: the line end must be the first line's. */
        if (c == '\r') {
            if (r->eol == 0 || r->eol == CSV_CRLF) {
                int d = getch(r);
                if (d == '\n') {
                    r->eol = CSV_CRLF;
                } else if (r->eol == CSV_CRLF) {
                    r->n--;
                    return bad(r, line,
                               "a carriage return alone in a file whose lines end in CRLF (quote "
                               "the field)");
                } else {
                    r->eol = CSV_CR;
                    ungetch(r, d);
                }
            } else if (r->eol == CSV_LF) {
                r->n--;
                return bad(r, line,
                           "a carriage return in a file whose lines end in LF (quote the field)");
            }
        } else if (c == '\n') {
            if (r->eol == CSV_CR || r->eol == CSV_CRLF) {
                r->n--;
                return bad(r, line,
                           r->eol == CSV_CR
                               ? "a line feed in a file whose lines end in CR (quote the field)"
                               : "a line feed alone in a file whose lines end in CRLF (quote the "
                                 "field)");
            }
            r->eol = CSV_LF;
        }
        r->next = line + 1;
        return AGEC__CSV_RECORD;
    }
}
