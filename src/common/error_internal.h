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

/* Copy a NUL-terminated string (NULL = "") into dst[cap], truncating on a
 * UTF-8 boundary. */
void agec__copy_text(char *dst, size_t cap, const char *src);

#endif
