/* A flat parameter map in one call (agec_params_build), on the builder. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "agec/agtype.h"
#include "common/error_internal.h"

/* One (key, kind, value) triple of the argument list into the open map. */
static agec_status put_entry(agec_builder *b, const char *key, int kind, va_list *ap,
                             agec_error *err)
{
    agec_status st = agec_builder_key(b, key, strlen(key), err);
    if (st != AGEC_OK)
        return st;
    switch (kind) {
    case AGEC_PARAM_NULL:
        return agec_builder_null(b, err);
    case AGEC_PARAM_BOOL:
        return agec_builder_bool(b, va_arg(*ap, int) != 0, err);
    case AGEC_PARAM_INT64:
        return agec_builder_int64(b, va_arg(*ap, int64_t), err);
    case AGEC_PARAM_DOUBLE:
        return agec_builder_double(b, va_arg(*ap, double), err);
    case AGEC_PARAM_STRING: {
        const char *s = va_arg(*ap, const char *);
        return s == NULL ? agec_builder_null(b, err) : agec_builder_string(b, s, strlen(s), err);
    }
    case AGEC_PARAM_AGTYPE: {
        const char *t = va_arg(*ap, const char *);
        if (t == NULL)
            return agec_builder_null(b, err);
        agec_value *v = NULL;
        st = agec_agtype_parse(t, strlen(t), 0, &v, err);
        if (st == AGEC_OK)
            st = agec_builder_value(b, v, err);
        agec_value_free(v);
        return st;
    }
    default:
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_params: unknown kind %d for key \"%s\" (use the AGEC_P_ "
                               "macros)",
                               kind, key);
    }
}

agec_status agec_params_build(char **out, agec_error *err, ...)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_params: out is NULL");
    *out = NULL;
    agec_builder *b = NULL;
    agec_status st = agec_builder_new(&b, err);
    if (st == AGEC_OK)
        st = agec_builder_begin_map(b, err);
    va_list ap;
    va_start(ap, err);
    for (const char *key; st == AGEC_OK && (key = va_arg(ap, const char *)) != NULL;)
        st = put_entry(b, key, va_arg(ap, int), &ap, err);
    va_end(ap);
    if (st == AGEC_OK)
        st = agec_builder_end_map(b, err);
    if (st == AGEC_OK)
        st = agec_builder_finish(b, out, NULL, err);
    agec_builder_free(b);
    return st == AGEC_OK ? agec__error_ok(err) : st;
}
