/* Writing values as agtype or JSON text (shared by the writers and the builder). */
#ifndef AGEC_AGTYPE_WRITE_H
#define AGEC_AGTYPE_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "agec/agtype.h"
#include "agtype/buf.h"

/* Append s[0..n) as a quoted string, escaped as the server does. s must be
 * valid UTF-8 (not checked here). */
void agec__write_string(agec__buf *b, const char *s, size_t n);

/* Append v and its subtree. json=false: agtype text; json=true: JSON text
 * with the AGEC_JSON_* flags. Fails only with AGEC_ERR_RANGE (non-finite
 * number under AGEC_JSON_NONFINITE_ERROR) or AGEC_ERR_NO_MEMORY. */
agec_status agec__write_value(agec__buf *b, const agec_value *v, bool json, unsigned flags,
                              agec_error *err);

#endif
