/* Number tokens: scan, convert exactly, format (see number.h). */
#include "agtype/number.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* Case-insensitive match of the lower-case ASCII word w at s. */
static bool match_word(const unsigned char *s, const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20u) != (unsigned char)w[i])
            return false;
    return true;
}

const unsigned char *agec__num_scan(const unsigned char *s, agec__num *out,
                                    const unsigned char **bad)
{
    out->mant = 0;
    out->ndigits = out->frac = out->exp = 0;
    out->neg = false;
    out->is_float = false;
    out->special = AGEC__NUM_FINITE;
    if (*s == '-') {
        out->neg = true;
        s++;
    }
    if ((*s | 0x20u) == 'i' || (*s | 0x20u) == 'n') {
        bool inf = (*s | 0x20u) == 'i';
        if (inf ? !match_word(s, "infinity", 8) : (out->neg || !match_word(s, "nan", 3))) {
            *bad = s;
            return NULL;
        }
        out->is_float = true;
        out->special = inf ? AGEC__NUM_INF : AGEC__NUM_NAN;
        return s + (inf ? 8 : 3);
    }
    uint64_t m = 0;
    int32_t nd = 0;
    if (*s == '0') {
        s++;
        nd = 1;
        if (is_digit(*s)) {
            *bad = s; /* leading zeros are not JSON */
            return NULL;
        }
    } else if (is_digit(*s)) {
        do {
            m = m * 10u + (uint64_t)(*s++ - '0');
            if (nd < INT32_MAX)
                nd++;
        } while (is_digit(*s));
    } else {
        *bad = s;
        return NULL;
    }
    if (*s == '.') {
        s++;
        if (!is_digit(*s)) {
            *bad = s;
            return NULL;
        }
        out->is_float = true;
        int32_t fr = 0;
        do {
            m = m * 10u + (uint64_t)(*s++ - '0');
            if (nd < INT32_MAX)
                nd++;
            if (fr < INT32_MAX)
                fr++;
        } while (is_digit(*s));
        out->frac = fr;
    }
    if ((*s | 0x20u) == 'e') {
        s++;
        bool eneg = false;
        if (*s == '+' || *s == '-')
            eneg = *s++ == '-';
        if (!is_digit(*s)) {
            *bad = s;
            return NULL;
        }
        out->is_float = true;
        int32_t e = 0;
        do {
            if (e < AGEC__EXP_CAP)
                e = e * 10 + (*s - '0');
            s++;
        } while (is_digit(*s));
        out->exp = eneg ? -e : e;
    }
    out->mant = m;
    out->ndigits = nd;
    return s;
}

bool agec__num_to_int64(const agec__num *n, int64_t *out)
{
    if (n->ndigits > 19)
        return false;
    if (n->neg) {
        if (n->mant > (uint64_t)INT64_MAX + 1u)
            return false;
        *out = n->mant == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)n->mant;
    } else {
        if (n->mant > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)n->mant;
    }
    return true;
}

/* Exactly representable powers of ten (Clinger's fast path). */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static locale_t c_numeric_locale(void)
{
    static _Atomic(locale_t) cached = (locale_t)0;
    locale_t l = atomic_load_explicit(&cached, memory_order_acquire);
    if (l != (locale_t)0)
        return l;
    locale_t made = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (made == (locale_t)0)
        return (locale_t)0;
    locale_t expected = (locale_t)0;
    if (!atomic_compare_exchange_strong(&cached, &expected, made)) {
        freelocale(made);
        return expected;
    }
    return made;
}

double agec__strtod_c(const char *s, char **end)
{
    locale_t c = c_numeric_locale();
    locale_t old = c != (locale_t)0 ? uselocale(c) : (locale_t)0;
    double d = strtod(s, end);
    if (c != (locale_t)0)
        uselocale(old);
    return d;
}

bool agec__num_to_double(const unsigned char *tok, size_t len, const agec__num *n, double *out)
{
    if (n->special != AGEC__NUM_FINITE) {
        *out = n->special == AGEC__NUM_NAN ? NAN : (n->neg ? -INFINITY : INFINITY);
        return true;
    }
    /* Clinger: an exact mantissa times an exact power of ten rounds once. */
    if (n->ndigits <= 19 && n->mant <= ((uint64_t)1 << 53)) {
        int64_t e = (int64_t)n->exp - n->frac;
        double d = (double)n->mant;
        if (n->mant == 0 || (e >= -22 && e <= 22)) {
            if (n->mant != 0)
                d = e < 0 ? d / pow10_exact[-e] : d * pow10_exact[e];
            *out = n->neg ? -d : d;
            return true;
        }
    }
    char *end;
    errno = 0;
    double d = agec__strtod_c((const char *)tok, &end);
    if ((size_t)(end - (const char *)tok) != len)
        return false; /* cannot happen for a scanned token; refuse rather than guess */
    /* As PostgreSQL's float8in (and so AGE): an overflow, or an underflow
     * to zero of a non-zero number (1e-400), is out of range; a subnormal
     * result is kept. */
    if (errno == ERANGE && (isinf(d) || d == 0.0))
        return false;
    *out = d;
    return true;
}

const char *agec__num_special_text(const agec__num *n)
{
    if (n->special == AGEC__NUM_NAN)
        return "NaN";
    return n->neg ? "-Infinity" : "Infinity";
}

size_t agec__format_int64(int64_t v, char *out)
{
    char tmp[AGEC__FMT_INT_MAX];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0);
    size_t k = 0;
    if (v < 0)
        out[k++] = '-';
    while (n > 0)
        out[k++] = tmp[--n];
    return k;
}

/* The common case without printf: normal d = v / 10^k exactly (division
 * correctly rounded) for an integer v < 10^15 and 0 <= k <= 15, as every
 * decimal of up to 15 significant digits in that range gives. A decimal of
 * <= 15 digits that reads back as d is what rounding d to 15 digits gives
 * (DBL_DIG), so these are the digits the search below finds: the same
 * result, 0 when the case does not apply. */
static size_t short_decimal_digits(double d, char *digits, int *exp10)
{
    if (d < DBL_MIN || d >= 1e15)
        return 0;
    for (int k = 0; k <= 15; k++) {
        double v = d * pow10_exact[k];
        if (v >= 1e15)
            return 0;
        if (v != (double)(int64_t)v || v / pow10_exact[k] != d)
            continue;
        char tmp[AGEC__FMT_INT_MAX];
        size_t n = agec__format_int64((int64_t)v, tmp);
        *exp10 = (int)n - 1 - k;
        while (n > 1 && tmp[n - 1] == '0')
            n--;
        memcpy(digits, tmp, n);
        return n;
    }
    return 0;
}

size_t agec__shortest_digits(double d, char *digits, int *exp10)
{
    size_t n = short_decimal_digits(d, digits, exp10);
    return n > 0 ? n : agec__shortest_digits_search(d, digits, exp10);
}

/* The general way: printf at 15, 16, 17 digits until one reads back. */
size_t agec__shortest_digits_search(double d, char *digits, int *exp10)
{
    char tmp[48];
    /* For normal doubles any decimal of <= 15 digits reads back, so the
     * 15-digit rounding minus its trailing zeros is already the shortest.
     * Subnormals have less precision: there, search from one digit up. */
    for (int prec = d < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        /* "%.*e" gives d.ddde[+-]XX; the decimal point is locale-dependent,
         * so take the digits and exponent rather than the text. */
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        size_t nd = 0;
        const char *p = tmp;
        while (*p != 'e' && *p != '\0') {
            if (is_digit((unsigned char)*p))
                digits[nd++] = *p;
            p++;
        }
        int e = *p == 'e' ? atoi(p + 1) : 0;
        /* Rebuild as C-locale text and check that it reads back. */
        char canon[48];
        size_t k = 0;
        canon[k++] = digits[0];
        canon[k++] = '.';
        memcpy(canon + k, digits + 1, nd - 1);
        k += nd - 1;
        snprintf(canon + k, sizeof canon - k, "e%d", e);
        if (prec == 17 || agec__strtod_c(canon, NULL) == fabs(d)) {
            while (nd > 1 && digits[nd - 1] == '0')
                nd--;
            *exp10 = e;
            return nd;
        }
    }
    return 0; /* not reached */
}

size_t agec__format_double(double d, char *out)
{
    if (isnan(d)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(d)) {
        if (d < 0) {
            memcpy(out, "-Infinity", 9);
            return 9;
        }
        memcpy(out, "Infinity", 8);
        return 8;
    }
    size_t k = 0;
    if (signbit(d))
        out[k++] = '-';
    if (d == 0) {
        memcpy(out + k, "0.0", 3);
        return k + 3;
    }
    char dg[24];
    int x;
    size_t nd = agec__shortest_digits(fabs(d), dg, &x);
    if (x < -4 || x >= 15) {
        /* PostgreSQL's float8out: d[.ddd]e[+-]XX with at least two exponent digits */
        out[k++] = dg[0];
        if (nd > 1) {
            out[k++] = '.';
            memcpy(out + k, dg + 1, nd - 1);
            k += nd - 1;
        }
        out[k++] = 'e';
        out[k++] = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 100)
            out[k++] = (char)('0' + ax / 100);
        out[k++] = (char)('0' + ax / 10 % 10);
        out[k++] = (char)('0' + ax % 10);
        return k;
    }
    if (x < 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int i = -1; i > x; i--)
            out[k++] = '0';
        memcpy(out + k, dg, nd);
        return k + nd;
    }
    /* x in 0..14: integer part has x+1 digits */
    size_t ip = (size_t)x + 1;
    for (size_t i = 0; i < ip; i++)
        out[k++] = i < nd ? dg[i] : '0';
    out[k++] = '.';
    if (nd > ip) {
        memcpy(out + k, dg + ip, nd - ip);
        k += nd - ip;
    } else {
        out[k++] = '0'; /* AGE keeps whole-valued floats recognisable: 5.0 */
    }
    return k;
}
