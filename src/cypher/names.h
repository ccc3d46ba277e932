/* AGE identifier rules (graph and label names). Pure functions, no libpq. */
#ifndef AGEC_CYPHER_NAMES_H
#define AGEC_CYPHER_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"

/* Decode one UTF-8 code point at s[0..len); returns its length (1..4) and
 * stores it in *cp, or 0 when the bytes are not valid, shortest-form UTF-8
 * (no surrogates, nothing past U+10FFFF). */
size_t agec__utf8_decode(const unsigned char *s, size_t len, unsigned *cp);

/* 1 when code point c is in Unicode ID_Start (resp. ID_Continue, without
 * U+E0101..U+E01EF like AGE), from the generated name_table.h; else 0. */
int agec__id_start_cp(unsigned c);
int agec__id_continue_cp(unsigned c);

/* 64-bit FNV-1a of the NUL-terminated s, continuing from h (start with
 * AGEC__FNV_BASIS): cheap, well spread, not for anything adversarial. */
#define AGEC__FNV_BASIS 1469598103934665603ull
#define AGEC__FNV_PRIME 1099511628211ull
uint64_t agec__fnv1a(uint64_t h, const char *s);

/* Append `name` to buf as a double-quoted SQL identifier ("" doubled).
 * Returns bytes written (excluding NUL) or 0 when cap is too small. */
size_t agec__quote_ident(const char *name, char *buf, size_t cap);

/* Copy n strings into one allocation: a NULL-terminated pointer array
 * followed by the strings, freed by one free() (agec_strings_free).
 * get(ctx, i) returns string i. NULL on OOM. */
char **agec__strings_pack(size_t n, const char *(*get)(const void *ctx, size_t i), const void *ctx);

#endif
