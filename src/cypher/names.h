/* AGE identifier rules (graph and label names). Pure functions, no libpq. */
#ifndef AGEC_CYPHER_NAMES_H
#define AGEC_CYPHER_NAMES_H

#include <stddef.h>

#include "agec/error.h"

/* Decode one UTF-8 code point at s[0..len); returns its length (1..4) and
 * stores it in *cp, or 0 when the bytes are not valid, shortest-form UTF-8
 * (no surrogates, nothing past U+10FFFF). */
size_t agec__utf8_decode(const unsigned char *s, size_t len, unsigned *cp);

/* Append `name` to buf as a double-quoted SQL identifier ("" doubled).
 * Returns bytes written (excluding NUL) or 0 when cap is too small. */
size_t agec__quote_ident(const char *name, char *buf, size_t cap);

/* Copy n strings into one allocation: a NULL-terminated pointer array
 * followed by the strings, freed by one free() (agec_strings_free).
 * get(ctx, i) returns string i. NULL on OOM. */
char **agec__strings_pack(size_t n, const char *(*get)(const void *ctx, size_t i), const void *ctx);

#endif
