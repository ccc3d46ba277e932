/*
 * The loader's input rows, without a server: a CSV header's columns, typed
 * CSV fields into agtype maps, JSON Lines edge endpoints, graph ids. Pure
 * (no I/O, no loader): file.c uses them, and so does the fuzz target
 * tests/fuzz/fuzz_load_readers.c.
 */
#ifndef AGEC_LOAD_FIELDS_H
#define AGEC_LOAD_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/agtype.h"
#include "agec/load.h"
#include "agtype/buf.h"

typedef enum agec__col_type {
    AGEC__T_STRING,
    AGEC__T_INT,
    AGEC__T_FLOAT,
    AGEC__T_NUMERIC,
    AGEC__T_BOOL,
    AGEC__T_JSON,
    AGEC__T_START,
    AGEC__T_END,
    AGEC__T_BAD /* an unknown type or an empty name */
} agec__col_type;

typedef struct agec__column {
    char *name;
    char *label; /* T_START/T_END: the endpoint label, NULL = graph ids */
    agec__col_type type;
} agec__column;

/* Parse one header field (n bytes of s) into *col (caller frees name and
 * label with agec__column_free). false when out of memory; a bad name or
 * type gives AGEC__T_BAD. */
bool agec__column_parse(const char *s, size_t n, bool edges, agec__column *col);
void agec__column_free(agec__column *col);

/* Append one typed field (a key was just added) to the map being built.
 * NULL on success, else what is wrong with the value (a static string). */
const char *agec__field_put(agec_builder *b, const agec__column *c, const char *s, size_t n);

/* A graph id as text: decimal digits only, 0 .. INT64_MAX. */
bool agec__graph_id_parse(const char *s, size_t n, int64_t *id);

/* The text of an integer written as in a CSV int column (007, +7, -0) in
 * canonical digits, for an endpoint key that names an integer key: false
 * when s is not such an integer or already canonical. */
bool agec__int_key_canonical(const char *s, size_t n, char out[24], size_t *outlen);

/* A JSON Lines edge endpoint: ["Label", key] (key text into *key) or a
 * graph id (a non-negative integer). false when it is neither. */
bool agec__json_endpoint(const agec_value *v, agec_endpoint *e, agec__buf *key);

/* The text of a key value: digits of an integer, content of a string,
 * else agtype text; into *buf (reset first). false when out of memory. */
bool agec__ld_key_text(const agec_value *v, agec__buf *buf);

/* Canonical agtype text holds a NUL character (written \u0000), which
 * AGE's agtype input refuses. */
bool agec__text_has_nul(const char *s, size_t n);

#endif
