/* The loader's input rows without a server (see fields.h). */
#include "load/fields.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool agec__column_parse(const char *s, size_t n, bool edges, agec__column *col)
{
    memset(col, 0, sizeof *col);
    char *t = strndup(s, n);
    if (t == NULL)
        return false;
    col->name = t;
    if (strlen(t) != n) {
        col->type = AGEC__T_BAD; /* a NUL inside */
        return true;
    }
    if (edges && (strncmp(t, ":START_ID", 9) == 0 || strncmp(t, ":END_ID", 7) == 0)) {
        col->type = t[1] == 'S' ? AGEC__T_START : AGEC__T_END;
        char *rest = t + (t[1] == 'S' ? 9 : 7);
        if (*rest == '\0')
            return true;
        char *q = strchr(rest, ')');
        if (*rest != '(' || q == NULL || q[1] != '\0' || q == rest + 1) {
            col->type = AGEC__T_BAD;
            return true;
        }
        col->label = strndup(rest + 1, (size_t)(q - rest - 1));
        return col->label != NULL;
    }
    char *colon = strrchr(t, ':');
    static const struct {
        const char *name;
        agec__col_type type;
    } types[] = { { "string", AGEC__T_STRING }, { "int", AGEC__T_INT },
                  { "long", AGEC__T_INT },      { "float", AGEC__T_FLOAT },
                  { "double", AGEC__T_FLOAT },  { "numeric", AGEC__T_NUMERIC },
                  { "bool", AGEC__T_BOOL },     { "boolean", AGEC__T_BOOL },
                  { "json", AGEC__T_JSON } };
    col->type = AGEC__T_STRING;
    if (colon != NULL && colon != t) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(colon + 1, types[i].name) == 0) {
                col->type = types[i].type;
                *colon = '\0';
                break;
            }
        if (*colon != '\0')
            col->type = AGEC__T_BAD;
    }
    if (t[0] == '\0')
        col->type = AGEC__T_BAD;
    return true;
}

void agec__column_free(agec__column *col)
{
    free(col->name);
    free(col->label);
    col->name = col->label = NULL;
}

const char *agec__field_put(agec_builder *b, const agec__column *c, const char *s, size_t n)
{
    char tmp[64];
    char *end;
    switch (c->type) {
    case AGEC__T_INT: {
        if (n == 0 || n >= sizeof tmp)
            return "not an integer";
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (*end != '\0' || end == tmp)
            return "not an integer";
        if (errno == ERANGE)
            return "integer outside the int64 range";
        (void)agec_builder_int64(b, v, NULL);
        return NULL;
    }
    case AGEC__T_FLOAT: {
        if (n == 0 || n >= sizeof tmp)
            return "not a float";
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        double v = strtod(tmp, &end);
        if (*end != '\0' || end == tmp)
            return "not a float";
        /* As PostgreSQL's float8in: an overflow, or an underflow to zero
         * (1e-400), is refused, not stored as infinity or 0.0; a
         * subnormal result is kept. */
        if (errno == ERANGE && (v == 0.0 || isinf(v)))
            return "float outside the double range";
        (void)agec_builder_double(b, v, NULL);
        return NULL;
    }
    case AGEC__T_NUMERIC:
        if (agec_builder_numeric(b, s, n, NULL) != AGEC_OK)
            return "not a numeric (a decimal number)";
        return NULL;
    case AGEC__T_BOOL:
        if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && (*s == 't' || *s == '1')))
            (void)agec_builder_bool(b, true, NULL);
        else if ((n == 5 && strncasecmp(s, "false", 5) == 0) ||
                 (n == 1 && (*s == 'f' || *s == '0')))
            (void)agec_builder_bool(b, false, NULL);
        else
            return "not a bool (true or false)";
        return NULL;
    case AGEC__T_JSON: {
        agec_value *v = NULL;
        if (agec_agtype_parse(s, n, AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
            return "not valid JSON (or a number outside the double range)";
        (void)agec_builder_value(b, v, NULL);
        agec_value_free(v);
        return NULL;
    }
    default:
        if (memchr(s, '\0', n) != NULL)
            return "a NUL character (AGE's agtype refuses it)";
        if (agec_builder_string(b, s, n, NULL) != AGEC_OK)
            return "not valid UTF-8";
        return NULL;
    }
}

bool agec__graph_id_parse(const char *s, size_t n, int64_t *id)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *id = (int64_t)v;
    return true;
}

bool agec__int_key_canonical(const char *s, size_t n, char out[24], size_t *outlen)
{
    char tmp[32], *end;
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0' || end == tmp || errno == ERANGE)
        return false;
    int k = snprintf(out, 24, "%lld", v);
    *outlen = (size_t)k;
    return (size_t)k != n || memcmp(out, s, n) != 0;
}

bool agec__ld_key_text(const agec_value *v, agec__buf *buf)
{
    buf->len = 0;
    const char *s;
    size_t n;
    int64_t i;
    if (agec_value_type(v) == AGEC_TYPE_STRING && agec_value_get_string(v, &s, &n, NULL) == 0) {
        agec__buf_put(buf, s, n);
    } else if (agec_value_type(v) == AGEC_TYPE_INT && agec_value_get_int64(v, &i, NULL) == 0) {
        char d[24];
        int k = snprintf(d, sizeof d, "%lld", (long long)i);
        agec__buf_put(buf, d, (size_t)k);
    } else {
        char *t = NULL;
        if (agec_value_to_agtype(v, &t, &n, NULL) != AGEC_OK)
            return false;
        agec__buf_put(buf, t, n);
        agec_free(t);
    }
    agec__buf_putc(buf, '\0');
    buf->len--;
    return !buf->failed;
}

bool agec__json_endpoint(const agec_value *v, agec_endpoint *e, agec__buf *key)
{
    memset(e, 0, sizeof *e);
    if (agec_value_type(v) == AGEC_TYPE_INT)
        return agec_value_get_int64(v, &e->id, NULL) == AGEC_OK && e->id >= 0;
    if (agec_value_type(v) != AGEC_TYPE_ARRAY || agec_value_length(v) != 2 ||
        agec_value_type(agec_value_at(v, 0)) != AGEC_TYPE_STRING)
        return false;
    size_t n;
    if (agec_value_get_string(agec_value_at(v, 0), &e->label, &n, NULL) != AGEC_OK ||
        memchr(e->label, '\0', n) != NULL || !agec__ld_key_text(agec_value_at(v, 1), key))
        return false;
    e->key = key->data;
    e->key_len = key->len;
    return true;
}

bool agec__text_has_nul(const char *s, size_t n)
{
    /* Escapes are read left to right: a backslash and the character after
     * it (so \\u0000 is a backslash, then text). */
    const char *end = s + n;
    for (const char *p = s; (p = memchr(p, '\\', (size_t)(end - p))) != NULL; p += 2) {
        if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
            return true;
        if (end - p < 2)
            break;
    }
    return false;
}
