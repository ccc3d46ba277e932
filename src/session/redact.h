/*
 * Keeping passwords out of every text agec produces: error messages,
 * events, log lines. Two layers:
 *
 *  - by pattern: the value of every secret keyword (the options libpq
 *    marks secret, dispchar '*': password, sslpassword) in the keyword
 *    form and in URI query parameters, and the password of a URI's
 *    user info (everything between the first ':' after "://" and the last
 *    '@' before the query), whatever characters it holds;
 *  - by value: the secrets of the connection string in question (read both
 *    by libpq and by the patterns above, raw and percent-decoded) are
 *    replaced wherever they appear, and a double-quoted span of a libpq
 *    message that shares 4 characters with one (libpq echoes input
 *    tokens that way: `invalid percent-encoded token: "..."`) is hidden.
 *    Secrets of fewer than 3 bytes are left to the patterns.
 */
#ifndef AGEC_SESSION_REDACT_H
#define AGEC_SESSION_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "agec/error.h"

#define AGEC__SECRETS_MAX 16
#define AGEC__SECRETS_BYTES 4096

/* The secrets of one connection string, in a fixed buffer. `overflow`:
 * some did not fit, so texts are withheld rather than risk a leak. */
typedef struct agec__secrets {
    const char *v[AGEC__SECRETS_MAX];
    size_t n, used;
    bool overflow;
    char buf[AGEC__SECRETS_BYTES];
} agec__secrets;

/* Start an empty set. */
void agec__secrets_init(agec__secrets *s);

/* Add the secrets of conninfo as agec's patterns read them (works on text
 * libpq cannot parse). */
void agec__secrets_from_text(agec__secrets *s, const char *conninfo);

/* Add the secret options (dispchar '*') of parsed libpq options. */
void agec__secrets_from_options(agec__secrets *s, const PQconninfoOption *opts);

/* Redact `in` into out[cap]: patterns, then the secrets of s (may be NULL),
 * cut on a UTF-8 boundary. */
void agec__redact(const char *in, const agec__secrets *s, char *out, size_t cap);

/* PQconninfoParse, with an error that never echoes a secret: libpq's reason
 * redacted with the string's own secrets. A URI whose password libpq reads
 * differently from agec's patterns (an unencoded '@', '/', '?' or '#' in
 * it: libpq would connect with part of the password as host or port and
 * echo that part in its errors) is refused as well. On success *out is
 * libpq's array (PQconninfoFree). Errors: AGEC_ERR_CONFIG ("conninfo: ..."),
 * AGEC_ERR_NO_MEMORY. */
agec_status agec__conninfo_parse(const char *conninfo, PQconninfoOption **out, agec_error *err);

#endif
