/* Value trees to agtype text (the server's own format) or to standard JSON. */
#include "agtype/write.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agtype/agtype_internal.h"
#include "agtype/number.h"
#include "common/error_internal.h"

/* Bytes a string must escape: 0 = copy, else the letter of a short escape
 * or 'u' for \u00XX. */
static const char escape_table[256] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't', [0x00] = 'u',
    [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',  [0x05] = 'u', [0x06] = 'u',
    [0x07] = 'u', [0x0B] = 'u', [0x0E] = 'u', [0x0F] = 'u',  [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',  [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u',  [0x1C] = 'u', [0x1D] = 'u',
    [0x1E] = 'u', [0x1F] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

void agec__write_string(agec__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    agec__buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = escape_table[c];
        if (e == 0)
            continue;
        agec__buf_put(b, s + run, i - run);
        run = i + 1;
        if (e == 'u') {
            char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            agec__buf_put(b, u, sizeof u);
        } else {
            char x[2] = { '\\', e };
            agec__buf_put(b, x, 2);
        }
    }
    agec__buf_put(b, s + run, n - run);
    agec__buf_putc(b, '"');
}

typedef struct writer {
    agec__buf *b;
    bool json;
    unsigned flags;
    const char *comma, *colon; /* separators */
    size_t comma_len, colon_len;
} writer;

/* A non-finite number in JSON, by policy. text: "NaN", "Infinity", "-Infinity". */
static agec_status write_nonfinite(writer *w, const char *text, size_t len, agec_error *err)
{
    if (w->flags & AGEC_JSON_NONFINITE_ERROR)
        return agec__error_set(err, AGEC_ERR_RANGE, "agtype: %s has no JSON form", text);
    if (w->flags & AGEC_JSON_NONFINITE_NULL)
        agec__buf_puts(w->b, "null");
    else
        agec__write_string(w->b, text, len);
    return AGEC_OK;
}

static bool numeric_is_finite(const agec_value *v)
{
    /* the parser spells non-finite numerics "NaN", "Infinity", "-Infinity" */
    const char *s = v->u.s + (v->u.s[0] == '-');
    return s[0] != 'N' && s[0] != 'I';
}

/* Write a scalar, or the opening bracket of a container. */
static agec_status write_head(writer *w, const agec_value *v, agec_error *err)
{
    char num[AGEC__FMT_DOUBLE_MAX];
    size_t n;
    switch (v->type) {
    case AGEC_TYPE_NULL:
        agec__buf_puts(w->b, "null");
        break;
    case AGEC_TYPE_BOOL:
        if (v->u.i)
            agec__buf_puts(w->b, "true");
        else
            agec__buf_puts(w->b, "false");
        break;
    case AGEC_TYPE_INT:
        n = agec__format_int64(v->u.i, num);
        agec__buf_put(w->b, num, n);
        break;
    case AGEC_TYPE_FLOAT:
        n = agec__format_double(v->u.d, num);
        if (w->json && !isfinite(v->u.d))
            return write_nonfinite(w, num, n, err);
        agec__buf_put(w->b, num, n);
        break;
    case AGEC_TYPE_NUMERIC:
        if (w->json && !numeric_is_finite(v))
            return write_nonfinite(w, v->u.s, v->n, err);
        agec__buf_put(w->b, v->u.s, v->n);
        if (!w->json)
            agec__buf_puts(w->b, "::numeric");
        break;
    case AGEC_TYPE_STRING:
        agec__write_string(w->b, v->u.s, v->n);
        break;
    case AGEC_TYPE_ARRAY:
    case AGEC_TYPE_PATH:
        agec__buf_putc(w->b, '[');
        break;
    default:
        agec__buf_putc(w->b, '{');
        break;
    }
    return AGEC_OK;
}

static void write_tail(writer *w, const agec_value *v)
{
    agec__buf_putc(w->b, agec__is_array(v) ? ']' : '}');
    if (w->json)
        return;
    if (v->type == AGEC_TYPE_VERTEX)
        agec__buf_puts(w->b, "::vertex");
    else if (v->type == AGEC_TYPE_EDGE)
        agec__buf_puts(w->b, "::edge");
    else if (v->type == AGEC_TYPE_PATH)
        agec__buf_puts(w->b, "::path");
}

typedef struct wframe {
    const agec_value *v;
    uint32_t next; /* index of the next child to write */
} wframe;

agec_status agec__write_value(agec__buf *b, const agec_value *v, bool json, unsigned flags,
                              agec_error *err)
{
    bool compact = json && (flags & AGEC_JSON_COMPACT);
    writer w = {
        b, json, flags, compact ? "," : ", ", compact ? ":" : ": ", compact ? 1 : 2, compact ? 1 : 2
    };
    wframe local[32];
    wframe *stack = local;
    size_t depth = 0, cap = sizeof local / sizeof local[0];
    agec_status st = AGEC_OK;

    const agec_value *cur = v; /* value to write next, or NULL to continue a frame */
    for (;;) {
        if (cur != NULL) {
            if ((st = write_head(&w, cur, err)) != AGEC_OK)
                break;
            if (agec__is_array(cur) || agec__is_object(cur)) {
                if (depth == cap) {
                    wframe *ns = stack == local ? malloc(2 * cap * sizeof *ns)
                                                : realloc(stack, 2 * cap * sizeof *ns);
                    if (ns == NULL) {
                        b->failed = true;
                        break;
                    }
                    if (stack == local)
                        memcpy(ns, local, sizeof local);
                    stack = ns;
                    cap *= 2;
                }
                stack[depth++] = (wframe){ cur, 0 };
            }
            cur = NULL;
        }
        if (depth == 0)
            break;
        wframe *f = &stack[depth - 1];
        if (f->next == f->v->n) {
            write_tail(&w, f->v);
            depth--;
            continue;
        }
        if (f->next > 0)
            agec__buf_put(b, w.comma, w.comma_len);
        if (agec__is_array(f->v)) {
            cur = &f->v->u.kids[f->next];
        } else {
            const agec_value *k = &f->v->u.kids[2 * f->next];
            agec__write_string(b, k->u.s, k->n);
            agec__buf_put(b, w.colon, w.colon_len);
            cur = k + 1;
        }
        f->next++;
    }
    if (stack != local)
        free(stack);
    if (st == AGEC_OK && b->failed)
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
    return st;
}

static agec_status write_to_text(const agec_value *v, bool json, unsigned flags, char **out,
                                 size_t *len, agec_error *err)
{
    agec__buf b = AGEC__BUF_INIT;
    agec_status st = agec__write_value(&b, v, json, flags, err);
    if (st != AGEC_OK) {
        agec__buf_free(&b);
        return st;
    }
    *out = agec__buf_take(&b, len);
    if (*out == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
    return AGEC_OK;
}

agec_status agec_value_to_agtype(const agec_value *v, char **out, size_t *len, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (v == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_value_to_agtype: NULL argument");
    return write_to_text(v, false, 0, out, len, err);
}

agec_status agec_value_to_json(const agec_value *v, unsigned flags, char **out, size_t *len,
                               agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    const unsigned known = AGEC_JSON_NONFINITE_NULL | AGEC_JSON_NONFINITE_ERROR | AGEC_JSON_COMPACT;
    if (v == NULL || out == NULL || (flags & ~known) != 0 ||
        (flags & AGEC_JSON_NONFINITE_NULL && flags & AGEC_JSON_NONFINITE_ERROR))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_value_to_json: NULL argument or invalid flags");
    return write_to_text(v, true, flags, out, len, err);
}

agec_status agec_agtype_params_from_json(const char *json, size_t len, char **out, size_t *outlen,
                                         agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_agtype_params_from_json: out is NULL");
    agec_value *v;
    agec_status st = agec_agtype_parse(json, len, AGEC_PARSE_JSON, &v, err);
    if (st != AGEC_OK)
        return st;
    if (v->type != AGEC_TYPE_OBJECT)
        st = agec__error_set(err, AGEC_ERR_TYPE, "parameters must be a JSON object, not %s",
                             agec_type_name((agec_type)v->type));
    else
        st = write_to_text(v, false, 0, out, outlen, err);
    agec_value_free(v);
    return st;
}
