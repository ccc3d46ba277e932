/* Typed accessors of parsed values: scalars, containers, graph elements. */
#include <string.h>

#include "agtype/agtype_internal.h"
#include "common/error_internal.h"

static agec_status type_error(const agec_value *v, const char *want, agec_error *err)
{
    if (v == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: value is NULL");
    return agec__error_set(err, AGEC_ERR_TYPE, "agtype: expected %s, value is %s", want,
                           agec_type_name((agec_type)v->type));
}

agec_type agec_value_type(const agec_value *v)
{
    return v == NULL ? AGEC_TYPE_NULL : (agec_type)v->type;
}

const char *agec_type_name(agec_type type)
{
    static const char *const names[] = {
        [AGEC_TYPE_NULL] = "null",   [AGEC_TYPE_BOOL] = "bool",       [AGEC_TYPE_INT] = "int",
        [AGEC_TYPE_FLOAT] = "float", [AGEC_TYPE_NUMERIC] = "numeric", [AGEC_TYPE_STRING] = "string",
        [AGEC_TYPE_ARRAY] = "array", [AGEC_TYPE_OBJECT] = "object",   [AGEC_TYPE_VERTEX] = "vertex",
        [AGEC_TYPE_EDGE] = "edge",   [AGEC_TYPE_PATH] = "path",
    };
    if ((unsigned)type >= sizeof names / sizeof names[0])
        return "unknown";
    return names[type];
}

agec_status agec_value_get_bool(const agec_value *v, bool *out, agec_error *err)
{
    if (v == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    if (v->type != AGEC_TYPE_BOOL)
        return type_error(v, "bool", err);
    *out = v->u.i != 0;
    return AGEC_OK;
}

agec_status agec_value_get_int64(const agec_value *v, int64_t *out, agec_error *err)
{
    if (v == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    if (v->type == AGEC_TYPE_INT) {
        *out = v->u.i;
        return AGEC_OK;
    }
    if (v->type == AGEC_TYPE_NUMERIC)
        return agec_numeric_to_int64(v->u.s, v->n, out, err);
    return type_error(v, "int", err);
}

agec_status agec_value_get_double(const agec_value *v, double *out, agec_error *err)
{
    if (v == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    switch (v->type) {
    case AGEC_TYPE_FLOAT:
        *out = v->u.d;
        return AGEC_OK;
    case AGEC_TYPE_INT:
        *out = (double)v->u.i;
        return AGEC_OK;
    case AGEC_TYPE_NUMERIC:
        return agec_numeric_to_double(v->u.s, v->n, out, err);
    default:
        return type_error(v, "number", err);
    }
}

static agec_status get_text(const agec_value *v, agec_type type, const char **ptr, size_t *len,
                            agec_error *err)
{
    if (v == NULL || ptr == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    if (v->type != type)
        return type_error(v, agec_type_name(type), err);
    *ptr = v->u.s;
    if (len != NULL)
        *len = v->n;
    return AGEC_OK;
}

agec_status agec_value_get_string(const agec_value *v, const char **ptr, size_t *len,
                                  agec_error *err)
{
    return get_text(v, AGEC_TYPE_STRING, ptr, len, err);
}

agec_status agec_value_get_numeric(const agec_value *v, const char **ptr, size_t *len,
                                   agec_error *err)
{
    return get_text(v, AGEC_TYPE_NUMERIC, ptr, len, err);
}

size_t agec_value_length(const agec_value *v)
{
    if (v == NULL || !(agec__is_array(v) || agec__is_object(v)))
        return 0;
    return v->n;
}

const agec_value *agec_value_at(const agec_value *v, size_t i)
{
    if (v == NULL || !agec__is_array(v) || i >= v->n)
        return NULL;
    return &v->u.kids[i];
}

int agec__key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

const agec_value *agec__object_find(const agec_value *v, const char *key, size_t keylen)
{
    const agec_value *kids = v->u.kids;
    if (v->flags & AGEC__VF_SORTED) {
        size_t lo = 0, hi = v->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const agec_value *k = &kids[2 * mid];
            int c = agec__key_cmp(k->u.s, k->n, key, keylen);
            if (c == 0)
                return k + 1;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return NULL;
    }
    for (size_t i = v->n; i-- > 0;) {
        const agec_value *k = &kids[2 * i];
        if (k->n == keylen && memcmp(k->u.s, key, keylen) == 0)
            return k + 1;
    }
    return NULL;
}

const agec_value *agec_value_get(const agec_value *v, const char *key, size_t keylen)
{
    if (v == NULL || !agec__is_object(v) || (key == NULL && keylen > 0))
        return NULL;
    return agec__object_find(v, key == NULL ? "" : key, keylen);
}

const agec_value *agec_value_entry(const agec_value *v, size_t i, const char **key, size_t *keylen)
{
    if (v == NULL || !agec__is_object(v) || i >= v->n)
        return NULL;
    const agec_value *k = &v->u.kids[2 * i];
    if (key != NULL)
        *key = k->u.s;
    if (keylen != NULL)
        *keylen = k->n;
    return k + 1;
}

/* Field of a vertex/edge; parsing guaranteed it exists with the right type. */
static agec_status element_field(const agec_value *v, const char *name, size_t len, bool edge_only,
                                 const agec_value **out, agec_error *err)
{
    if (v == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: value is NULL");
    if (v->type != AGEC_TYPE_EDGE && (edge_only || v->type != AGEC_TYPE_VERTEX))
        return type_error(v, edge_only ? "edge" : "vertex or edge", err);
    *out = agec__object_find(v, name, len);
    return AGEC_OK;
}

static agec_status element_int(const agec_value *v, const char *name, size_t len, bool edge_only,
                               int64_t *out, agec_error *err)
{
    const agec_value *f = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    agec_status st = element_field(v, name, len, edge_only, &f, err);
    if (st == AGEC_OK)
        *out = f->u.i;
    return st;
}

agec_status agec_element_id(const agec_value *v, int64_t *out, agec_error *err)
{
    return element_int(v, "id", 2, false, out, err);
}

agec_status agec_edge_start_id(const agec_value *e, int64_t *out, agec_error *err)
{
    return element_int(e, "start_id", 8, true, out, err);
}

agec_status agec_edge_end_id(const agec_value *e, int64_t *out, agec_error *err)
{
    return element_int(e, "end_id", 6, true, out, err);
}

agec_status agec_element_label(const agec_value *v, const char **ptr, size_t *len, agec_error *err)
{
    const agec_value *f = NULL;
    if (ptr == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype: NULL argument");
    agec_status st = element_field(v, "label", 5, false, &f, err);
    if (st == AGEC_OK) {
        *ptr = f->u.s;
        if (len != NULL)
            *len = f->n;
    }
    return st;
}

const agec_value *agec_element_properties(const agec_value *v)
{
    if (v == NULL || (v->type != AGEC_TYPE_VERTEX && v->type != AGEC_TYPE_EDGE))
        return NULL;
    return agec__object_find(v, "properties", 10);
}

const agec_value *agec_value_get_key(const agec_value *v, const char *key)
{
    return key == NULL ? NULL : agec_value_get(v, key, strlen(key));
}

const agec_value *agec_element_property(const agec_value *v, const char *name)
{
    return agec_value_get_key(agec_element_properties(v), name);
}

size_t agec_path_length(const agec_value *p)
{
    if (p == NULL || p->type != AGEC_TYPE_PATH)
        return 0;
    return p->n / 2;
}

const agec_value *agec_path_vertex(const agec_value *p, size_t i)
{
    if (p == NULL || p->type != AGEC_TYPE_PATH || i > p->n / 2)
        return NULL;
    return &p->u.kids[2 * i];
}

const agec_value *agec_path_edge(const agec_value *p, size_t i)
{
    if (p == NULL || p->type != AGEC_TYPE_PATH || i >= p->n / 2)
        return NULL;
    return &p->u.kids[2 * i + 1];
}
