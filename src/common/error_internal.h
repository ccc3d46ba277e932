/*
 * Internal helpers for filling a caller's agec_error. Used by every layer;
 * depends on nothing but the public error header.
 */
#ifndef AGEC_COMMON_ERROR_INTERNAL_H
#define AGEC_COMMON_ERROR_INTERNAL_H

#include <stddef.h>

#include "agec/error.h"

/* Clear *err (if not NULL), set its code and a printf-formatted message.
 * Returns `code`, so callers can `return agec__error_set(err, CODE, ...)`. */
agec_status agec__error_set(agec_error *err, agec_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A call succeeded: clear *err (if not NULL) so that err->code is AGEC_OK,
 * the call's status. Returns AGEC_OK. */
agec_status agec__error_ok(agec_error *err);

/* The fields every agec_error has, whatever header the caller was built
 * with: everything up to and including `hint`. Fields appended later are
 * written only where agec__error_extent says the caller has them. */
#define AGEC__ERROR_BASE_SIZE (offsetof(agec_error, hint) + AGEC_ERROR_TEXT_MAX)

/* How many bytes of *err the library may write (see agec_error.size). */
size_t agec__error_extent(const agec_error *err);

/* Clear *err (not NULL) within its extent, keeping its size. */
void agec__error_reset(agec_error *err);

/* *dst = *src within dst's extent, keeping dst's size (use this, never a
 * struct assignment, to fill a caller's error from a local one). NULL
 * either: nothing. */
void agec__error_copy(agec_error *dst, const agec_error *src);

/* Drop an incomplete UTF-8 sequence at the end of s (left by a byte-counted
 * cut such as snprintf's truncation). */
void agec__utf8_trim(char *s);

/* At most cap-1 bytes of src, cut on a UTF-8 character boundary, in buf;
 * returns buf. Use it instead of a "%.Ns" precision, which counts bytes. */
const char *agec__utf8_cut(char *buf, size_t cap, const char *src);

/* Copy a NUL-terminated string (NULL = "") into dst[cap], truncating on a
 * UTF-8 boundary. */
void agec__copy_text(char *dst, size_t cap, const char *src);

#endif
