/*
 * Numbers in agtype text: scanning a token, exact conversion to int64 and
 * double (correctly rounded, independent of the C locale), and formatting
 * back the way the server prints them.
 */
#ifndef AGEC_AGTYPE_NUMBER_H
#define AGEC_AGTYPE_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { AGEC__NUM_FINITE = 0, AGEC__NUM_NAN = 1, AGEC__NUM_INF = 2 };

/* What agec__num_scan learned about one number token. */
typedef struct agec__num {
    uint64_t mant;   /* value of the digits (int and fraction parts), exact when ndigits <= 19 */
    int32_t ndigits; /* digits in the int and fraction parts (saturates) */
    int32_t frac;    /* digits after the point (saturates) */
    int32_t exp;     /* explicit exponent (saturates at +-AGEC__EXP_CAP) */
    bool neg;
    bool is_float;   /* has a fraction, an exponent, or is NaN/Infinity */
    uint8_t special; /* AGEC__NUM_* */
} agec__num;

#define AGEC__EXP_CAP 100000000

/*
 * Scan the number token at s: a JSON number, or NaN / Infinity / -Infinity in
 * any letter case. The token must be followed by a byte that cannot continue
 * it (the parser's copy ends in NUL padding). Returns the end of the token,
 * or NULL with *bad set to the first byte that breaks the grammar.
 */
const unsigned char *agec__num_scan(const unsigned char *s, agec__num *out,
                                    const unsigned char **bad);

/* Integer token to int64; false on overflow. */
bool agec__num_to_int64(const agec__num *n, int64_t *out);

/* Token [tok, tok+len) to the nearest double; false when finite text is
 * beyond the double range. The byte at tok[len] must not continue a number. */
bool agec__num_to_double(const unsigned char *tok, size_t len, const agec__num *n, double *out);

/* Canonical spelling of a non-finite token: "NaN", "Infinity", "-Infinity". */
const char *agec__num_special_text(const agec__num *n);

/* strtod in the "C" locale, whatever the process or thread locale is. */
double agec__strtod_c(const char *s, char **end);

#define AGEC__FMT_DOUBLE_MAX 32
#define AGEC__FMT_INT_MAX 24

/* Write d as the server does (shortest round-trip digits, `.0` on whole
 * values, exponent form below 1e-4 and from 1e15, NaN / Infinity /
 * -Infinity). Returns the length; no NUL is written. */
size_t agec__format_double(double d, char *out);

/* Decimal int64; returns the length; no NUL is written. */
size_t agec__format_int64(int64_t v, char *out);

/* Shortest digits of finite nonzero d > 0 that read back as d: digits[]
 * (room for 17) gets them without trailing zeros, *exp10 the exponent of
 * the first digit; returns how many. agec__shortest_digits_search is the
 * general way (printf at 15, 16, 17 digits), which agec__shortest_digits
 * skips for decimals of up to 15 digits; exposed so that a test can hold
 * the two to the same answer. */
size_t agec__shortest_digits(double d, char *digits, int *exp10);
size_t agec__shortest_digits_search(double d, char *digits, int *exp10);

#endif
