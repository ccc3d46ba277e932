/*
 * The loader's CSV record reader: strict, and in agreement with
 * PostgreSQL's `COPY ... FROM (FORMAT csv)` wherever PostgreSQL reads a
 * file (tests/integration/test_load_csv_pg.c checks it against the server).
 *
 * Why hand-written and not a library (Debian's libcsv was considered):
 * the library may depend on libpq and pthreads only, and what is needed is
 * PostgreSQL's exact reading, not a generic one: the line end fixed by the
 * first line (LF, CRLF or CR; another one later is an error, as in COPY),
 * CR and LF kept inside quotes, an unquoted empty field told apart from
 * "" (NULL vs ''), and every error with its line and field. libcsv's
 * strict mode gives neither the line-end rule nor the positions, and its
 * callbacks would cost a copy per field on the loader's hot path.
 *
 * Where it deliberately differs from COPY (docs/loading.md):
 * - A quote inside an unquoted field (a"b) and anything but a comma or a
 *   line end after a closing quote ("a"b) are errors; COPY reads both as
 *   text (ab), which is how one stray quote silently merges lines.
 * - A NUL byte is an error here (COPY refuses it too, as bad UTF-8).
 * - A UTF-8 byte-order mark at the start is skipped (COPY keeps it, in the
 *   header line that HEADER skips, so the rows read the same).
 * - `\.` alone on a line is data, not COPY's end-of-data marker.
 * Blank lines are the caller's business (the loader skips them).
 */
#ifndef AGEC_LOAD_CSV_H
#define AGEC_LOAD_CSV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agtype/buf.h"

typedef struct agec__csv {
    FILE *f;
    int eol;       /* 0 not known yet, else the first line's end: CSV_LF, ... */
    bool begun;    /* the byte-order mark was looked for */
    uint64_t next; /* line where the next record starts (1-based) */
    /* The record read last: fields as offsets into text (not
     * NUL-terminated), quoted[i] when field i was quoted. */
    agec__buf text;
    size_t *off, *len;
    bool *quoted;
    size_t n, cap;
    uint64_t line;  /* line where the record starts */
    uint64_t bytes; /* bytes read for it (with its line end) */
    /* After AGEC__CSV_BAD: what is wrong, where. */
    const char *error;
    uint64_t err_line;
    size_t err_field; /* 1-based */
} agec__csv;

enum { CSV_LF = 1, CSV_CRLF = 2, CSV_CR = 3 };

/* A record longer than this is an error (memory stays bounded by it; a
 * field that long is most likely an unterminated quote). */
#define AGEC__CSV_MAX_RECORD ((size_t)256 << 20)

/* agec__csv_read results. */
enum { AGEC__CSV_BAD = -2, AGEC__CSV_NOMEM = -1, AGEC__CSV_EOF = 0, AGEC__CSV_RECORD = 1 };

/* Start reading f (not owned). */
void agec__csv_init(agec__csv *r, FILE *f);

/* Read the next record. AGEC__CSV_BAD leaves error, err_line and
 * err_field set; the reader is then done (the rest of the file cannot be
 * split into records with any confidence). */
int agec__csv_read(agec__csv *r);

/* The record is one unquoted empty field: a blank line. */
bool agec__csv_blank(const agec__csv *r);

void agec__csv_free(agec__csv *r);

#endif
