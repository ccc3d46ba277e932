/* The builder: agtype text for parameters, written straight into a buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agtype/agtype_internal.h"
#include "agtype/buf.h"
#include "agtype/number.h"
#include "agtype/utf8.h"
#include "agtype/write.h"
#include "common/error_internal.h"

/* One open container: its kind and whether it has entries / a pending key. */
#define F_MAP 0x1u
#define F_NONEMPTY 0x2u
#define F_KEY_PENDING 0x4u

struct agec_builder {
    agec__buf out;
    uint8_t *frames; /* F_* per open container, innermost last */
    size_t depth, cap;
    bool done;          /* the top-level value is complete */
    agec_error failure; /* the sticky first error (code AGEC_OK = none) */
};

agec_status agec_builder_new(agec_builder **out, agec_error *err)
{
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_builder_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype builder: out of memory");
    return AGEC_OK;
}

void agec_builder_free(agec_builder *b)
{
    if (b == NULL)
        return;
    agec__buf_free(&b->out);
    free(b->frames);
    free(b);
}

/* Record the first failure and report it. */
static agec_status fail(agec_builder *b, agec_error *err, agec_status code, const char *msg)
{
    agec__error_set(&b->failure, code, "agtype builder: %s", msg);
    if (err != NULL)
        agec__error_copy(err, &b->failure);
    return code;
}

/* Entry check of every call: NULL builder, or an earlier failure. */
static agec_status check(agec_builder *b, agec_error *err)
{
    if (b == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agtype builder: builder is NULL");
    if (b->failure.code != AGEC_OK) {
        if (err != NULL)
            agec__error_copy(err, &b->failure);
        return b->failure.code;
    }
    return AGEC_OK;
}

/* Called before writing a value: place it (separator) or refuse. */
static agec_status before_value(agec_builder *b, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (b->depth == 0) {
        if (b->done)
            return fail(b, err, AGEC_ERR_STATE, "only one top-level value (finish first)");
        return AGEC_OK;
    }
    uint8_t *f = &b->frames[b->depth - 1];
    if (*f & F_MAP) {
        if (!(*f & F_KEY_PENDING))
            return fail(b, err, AGEC_ERR_STATE, "a map value needs agec_builder_key first");
        *f &= (uint8_t)~F_KEY_PENDING;
    } else {
        if (*f & F_NONEMPTY)
            agec__buf_puts(&b->out, ", ");
        *f |= F_NONEMPTY;
    }
    return AGEC_OK;
}

/* Called after a complete value. */
static agec_status after_value(agec_builder *b, agec_error *err)
{
    if (b->depth == 0)
        b->done = true;
    if (b->out.failed)
        return fail(b, err, AGEC_ERR_NO_MEMORY, "out of memory");
    return AGEC_OK;
}

static agec_status begin(agec_builder *b, bool map, agec_error *err)
{
    agec_status st = before_value(b, err);
    if (st != AGEC_OK)
        return st;
    if (b->depth == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        uint8_t *nf = realloc(b->frames, ncap);
        if (nf == NULL)
            return fail(b, err, AGEC_ERR_NO_MEMORY, "out of memory");
        b->frames = nf;
        b->cap = ncap;
    }
    b->frames[b->depth++] = map ? F_MAP : 0;
    agec__buf_putc(&b->out, map ? '{' : '[');
    return b->out.failed ? fail(b, err, AGEC_ERR_NO_MEMORY, "out of memory") : AGEC_OK;
}

static agec_status end(agec_builder *b, bool map, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (b->depth == 0 || ((b->frames[b->depth - 1] & F_MAP) != 0) != map)
        return fail(b, err, AGEC_ERR_STATE,
                    map ? "end_map without an open map" : "end_list without an open list");
    if (b->frames[b->depth - 1] & F_KEY_PENDING)
        return fail(b, err, AGEC_ERR_STATE, "end_map after a key without a value");
    b->depth--;
    agec__buf_putc(&b->out, map ? '}' : ']');
    return after_value(b, err);
}

agec_status agec_builder_begin_map(agec_builder *b, agec_error *err)
{
    return begin(b, true, err);
}

agec_status agec_builder_begin_list(agec_builder *b, agec_error *err)
{
    return begin(b, false, err);
}

agec_status agec_builder_end_map(agec_builder *b, agec_error *err)
{
    return end(b, true, err);
}

agec_status agec_builder_end_list(agec_builder *b, agec_error *err)
{
    return end(b, false, err);
}

static agec_status check_utf8(agec_builder *b, const char *s, size_t len, const char *what,
                              agec_error *err)
{
    if (s == NULL && len > 0)
        return fail(b, err, AGEC_ERR_INVALID_ARG, what);
    if (len > 0 && agec__utf8_check((const unsigned char *)s, len) != len)
        return fail(b, err, AGEC_ERR_INVALID_ARG, "text is not valid UTF-8");
    return AGEC_OK;
}

agec_status agec_builder_key(agec_builder *b, const char *key, size_t len, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (b->depth == 0 || !(b->frames[b->depth - 1] & F_MAP))
        return fail(b, err, AGEC_ERR_STATE, "key outside a map");
    uint8_t *f = &b->frames[b->depth - 1];
    if (*f & F_KEY_PENDING)
        return fail(b, err, AGEC_ERR_STATE, "two keys in a row");
    if ((st = check_utf8(b, key, len, "key is NULL", err)) != AGEC_OK)
        return st;
    if (*f & F_NONEMPTY)
        agec__buf_puts(&b->out, ", ");
    *f |= F_NONEMPTY | F_KEY_PENDING;
    agec__write_string(&b->out, len > 0 ? key : "", len);
    agec__buf_puts(&b->out, ": ");
    return b->out.failed ? fail(b, err, AGEC_ERR_NO_MEMORY, "out of memory") : AGEC_OK;
}

/* A scalar whose text is already formatted. */
static agec_status put_scalar(agec_builder *b, const char *text, size_t len, agec_error *err)
{
    agec_status st = before_value(b, err);
    if (st != AGEC_OK)
        return st;
    agec__buf_put(&b->out, text, len);
    return after_value(b, err);
}

agec_status agec_builder_null(agec_builder *b, agec_error *err)
{
    return put_scalar(b, "null", 4, err);
}

agec_status agec_builder_bool(agec_builder *b, bool value, agec_error *err)
{
    return value ? put_scalar(b, "true", 4, err) : put_scalar(b, "false", 5, err);
}

agec_status agec_builder_int64(agec_builder *b, int64_t value, agec_error *err)
{
    char num[AGEC__FMT_INT_MAX];
    return put_scalar(b, num, agec__format_int64(value, num), err);
}

agec_status agec_builder_double(agec_builder *b, double value, agec_error *err)
{
    char num[AGEC__FMT_DOUBLE_MAX];
    return put_scalar(b, num, agec__format_double(value, num), err);
}

agec_status agec_builder_string(agec_builder *b, const char *s, size_t len, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK || (st = check_utf8(b, s, len, "string is NULL", err)) != AGEC_OK ||
        (st = before_value(b, err)) != AGEC_OK)
        return st;
    agec__write_string(&b->out, len > 0 ? s : "", len);
    return after_value(b, err);
}

agec_status agec_builder_numeric(agec_builder *b, const char *text, size_t len, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (text == NULL)
        return fail(b, err, AGEC_ERR_INVALID_ARG, "numeric text is NULL");
    double d;
    agec_error conv = AGEC_ERROR_INIT;
    /* Validation only: any decimal text is fine, even beyond the double range. */
    agec_status cst = agec_numeric_to_double(text, len, &d, &conv);
    if (cst == AGEC_ERR_INVALID_ARG || cst == AGEC_ERR_NO_MEMORY)
        return fail(b, err, cst, "numeric text is not a decimal number");
    if ((st = before_value(b, err)) != AGEC_OK)
        return st;
    if (cst == AGEC_OK && !isfinite(d)) {
        char canon[AGEC__FMT_DOUBLE_MAX]; /* NaN, Infinity, -Infinity in any case */
        agec__buf_put(&b->out, canon, agec__format_double(d, canon));
    } else {
        agec__buf_put(&b->out, text, len);
    }
    agec__buf_puts(&b->out, "::numeric");
    return after_value(b, err);
}

agec_status agec_builder_value(agec_builder *b, const agec_value *v, agec_error *err)
{
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (v == NULL)
        return fail(b, err, AGEC_ERR_INVALID_ARG, "value is NULL");
    if ((st = before_value(b, err)) != AGEC_OK)
        return st;
    agec_error werr = AGEC_ERROR_INIT;
    if (agec__write_value(&b->out, v, false, 0, &werr) != AGEC_OK)
        return fail(b, err, werr.code, werr.message);
    return after_value(b, err);
}

agec_status agec_builder_finish(agec_builder *b, char **out, size_t *len, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    agec_status st = check(b, err);
    if (st != AGEC_OK)
        return st;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_builder_finish: out is NULL");
    if (!b->done || b->depth > 0)
        return fail(b, err, AGEC_ERR_STATE,
                    b->depth > 0 ? "a map or list is still open" : "no value was written");
    *out = agec__buf_take(&b->out, len);
    b->done = false;
    if (*out == NULL)
        return fail(b, err, AGEC_ERR_NO_MEMORY, "out of memory");
    return AGEC_OK;
}
