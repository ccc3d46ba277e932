/* Exact conversions of decimal text (`::numeric` values) to double and int64. */
#include <stdlib.h>
#include <string.h>

#include "agtype/number.h"
#include "common/error_internal.h"

#include "agec/agtype.h"

/* A NUL-terminated copy of text for the scanner: on the stack when short. */
typedef struct text_copy {
    char local[128];
    char *p;
} text_copy;

static bool copy_text(text_copy *c, const char *text, size_t len)
{
    c->p = len < sizeof c->local ? c->local : malloc(len + 1);
    if (c->p == NULL)
        return false;
    memcpy(c->p, text, len);
    c->p[len] = '\0';
    return true;
}

static void free_text(text_copy *c)
{
    if (c->p != c->local)
        free(c->p);
}

/* Scan the whole of c as one number token. */
static agec_status scan_all(const text_copy *c, size_t len, agec__num *num, const char *fn,
                            agec_error *err)
{
    const unsigned char *bad;
    const unsigned char *s = (const unsigned char *)c->p;
    const unsigned char *e = agec__num_scan(s, num, &bad);
    if (e == NULL || (size_t)(e - s) != len)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s: not a decimal number", fn);
    return AGEC_OK;
}

agec_status agec_numeric_to_double(const char *text, size_t len, double *out, agec_error *err)
{
    if (text == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_numeric_to_double: NULL argument");
    text_copy c;
    if (!copy_text(&c, text, len))
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
    agec__num num;
    agec_status st = scan_all(&c, len, &num, "agec_numeric_to_double", err);
    if (st == AGEC_OK && !agec__num_to_double((const unsigned char *)c.p, len, &num, out))
        st = agec__error_set(err, AGEC_ERR_RANGE, "numeric out of double range");
    free_text(&c);
    return st;
}

/* value = digits * 10^exp exactly, as an int64, or false. */
static bool exact_int64(const unsigned char *s, const agec__num *num, int64_t *out)
{
    if (num->special != AGEC__NUM_FINITE)
        return false;
    int64_t exp = (int64_t)num->exp - num->frac;
    /* the digit string without sign and point, leading and trailing zeros */
    const unsigned char *p = s + (num->neg ? 1 : 0);
    const unsigned char *d_end = p;
    while ((unsigned)(*d_end - '0') < 10u || *d_end == '.')
        d_end++;
    while (p < d_end && (*p == '0' || *p == '.'))
        p++;
    const unsigned char *q = d_end;
    while (q > p && (q[-1] == '0' || q[-1] == '.')) {
        if (q[-1] == '0')
            exp++;
        q--;
    }
    if (p == q) {
        *out = 0;
        return true;
    }
    /* Digits after the point that were trimmed as trailing zeros are already
     * counted in exp; what remains must not reach below the units. */
    if (exp < 0)
        return false;
    int64_t nd = 0;
    for (const unsigned char *r = p; r < q; r++)
        nd += *r != '.';
    if (nd + exp > 19)
        return false;
    uint64_t v = 0;
    for (const unsigned char *r = p; r < q; r++)
        if (*r != '.')
            v = v * 10u + (uint64_t)(*r - '0');
    for (int64_t i = 0; i < exp; i++)
        v *= 10u;
    agec__num tmp = *num;
    tmp.mant = v;
    tmp.ndigits = (int32_t)(nd + exp);
    return agec__num_to_int64(&tmp, out);
}

agec_status agec_numeric_to_int64(const char *text, size_t len, int64_t *out, agec_error *err)
{
    if (text == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_numeric_to_int64: NULL argument");
    text_copy c;
    if (!copy_text(&c, text, len))
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
    agec__num num;
    agec_status st = scan_all(&c, len, &num, "agec_numeric_to_int64", err);
    if (st == AGEC_OK && !exact_int64((const unsigned char *)c.p, &num, out))
        st = agec__error_set(err, AGEC_ERR_RANGE, "numeric %.*s is not an exact int64",
                             len > 64 ? 64 : (int)len, c.p);
    free_text(&c);
    return st;
}
