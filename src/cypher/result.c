/* Result sets: rows from libpq, cells parsed as agtype on demand. */
#include "cypher/result.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"
#include "common/error_internal.h"

static void drop_values(agec_result *res)
{
    if (res->vals != NULL) {
        for (size_t i = 0; i < res->rows * res->cols; i++)
            agec_value_free(res->vals[i]);
        free(res->vals);
        res->vals = NULL;
    }
}

void agec__result_reset(agec_result *res, PGresult *pg)
{
    drop_values(res);
    PQclear(res->pg);
    res->pg = pg;
    res->rows = pg ? (size_t)PQntuples(pg) : 0;
    res->cols = pg ? (size_t)PQnfields(pg) : 0;
}

agec_result *agec__result_wrap(PGresult *pg)
{
    agec_result *res = calloc(1, sizeof *res);
    if (res == NULL) {
        PQclear(pg);
        return NULL;
    }
    agec__result_reset(res, pg);
    return res;
}

void agec_result_free(agec_result *res)
{
    if (res == NULL)
        return;
    agec__result_reset(res, NULL);
    free(res);
}

size_t agec_result_rows(const agec_result *res)
{
    return res ? res->rows : 0;
}

size_t agec_result_columns(const agec_result *res)
{
    return res ? res->cols : 0;
}

const char *agec_result_column_name(const agec_result *res, size_t col)
{
    if (res == NULL || col >= res->cols)
        return NULL;
    return PQfname(res->pg, (int)col);
}

uint32_t agec_result_column_type(const agec_result *res, size_t col)
{
    if (res == NULL || col >= res->cols)
        return 0;
    return (uint32_t)PQftype(res->pg, (int)col);
}

bool agec_result_is_null(const agec_result *res, size_t row, size_t col)
{
    if (res == NULL || row >= res->rows || col >= res->cols)
        return true;
    return PQgetisnull(res->pg, (int)row, (int)col) != 0;
}

const char *agec_result_text(const agec_result *res, size_t row, size_t col, size_t *len)
{
    if (agec_result_is_null(res, row, col)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = (size_t)PQgetlength(res->pg, (int)row, (int)col);
    return PQgetvalue(res->pg, (int)row, (int)col);
}

uint64_t agec_result_affected(const agec_result *res)
{
    if (res == NULL || res->pg == NULL)
        return 0;
    const char *t = PQcmdTuples(res->pg);
    return t[0] ? strtoull(t, NULL, 10) : 0;
}

const char *agec_result_command(const agec_result *res)
{
    const char *t = res && res->pg ? PQcmdStatus(res->pg) : NULL;
    return t ? t : "";
}

/* The cell's text for a typed accessor: not NULL, in range. */
static agec_status cell_text(const agec_result *res, size_t row, size_t col, const char *what,
                             const char **text, agec_error *err)
{
    if (res == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s: NULL result", what);
    if (row >= res->rows || col >= res->cols)
        return agec__error_set(err, AGEC_ERR_RANGE,
                               "cell (%zu, %zu) outside a result of %zu rows and %zu columns", row,
                               col, res->rows, res->cols);
    if (PQgetisnull(res->pg, (int)row, (int)col))
        return agec__error_set(err, AGEC_ERR_TYPE,
                               "%s: cell (%zu, %zu) is SQL NULL (check agec_result_is_null)", what,
                               row, col);
    *text = PQgetvalue(res->pg, (int)row, (int)col);
    return AGEC_OK;
}

static agec_status not_a(const char *what, const char *text, size_t row, size_t col,
                         agec_error *err)
{
    char cut[41];
    return agec__error_set(err, AGEC_ERR_TYPE, "cell (%zu, %zu) is not %s: \"%s%s\"", row, col,
                           what, agec__utf8_cut(cut, sizeof cut, text),
                           strlen(text) > 40 ? "..." : "");
}

agec_status agec_result_get_int64(const agec_result *res, size_t row, size_t col, int64_t *out,
                                  agec_error *err)
{
    const char *t = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_result_get_int64: out is NULL");
    agec_status st = cell_text(res, row, col, "agec_result_get_int64", &t, err);
    if (st != AGEC_OK)
        return st;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (end == t || *end != '\0' || t[0] == ' ' || t[0] == '+')
        return not_a("an integer", t, row, col, err);
    if (errno == ERANGE)
        return agec__error_set(err, AGEC_ERR_RANGE, "cell (%zu, %zu): %s does not fit int64", row,
                               col, t);
    *out = (int64_t)v;
    return agec__error_ok(err);
}

agec_status agec_result_get_double(const agec_result *res, size_t row, size_t col, double *out,
                                   agec_error *err)
{
    const char *t = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_result_get_double: out is NULL");
    agec_status st = cell_text(res, row, col, "agec_result_get_double", &t, err);
    if (st != AGEC_OK)
        return st;
    /* The server writes NaN, Infinity, -Infinity; strtod reads those and
     * also hex floats, which PostgreSQL never writes (refused). */
    if (t[0] == ' ' || t[0] == '+' || strchr(t, 'x') != NULL || strchr(t, 'X') != NULL)
        return not_a("a number", t, row, col, err);
    char *end = NULL;
    errno = 0;
    double v = strtod(t, &end);
    if (end == t || *end != '\0')
        return not_a("a number", t, row, col, err);
    if (errno == ERANGE && isinf(v))
        return agec__error_set(err, AGEC_ERR_RANGE, "cell (%zu, %zu): %s does not fit a double",
                               row, col, t);
    *out = v; /* an underflow to 0 or a denormal is the nearest double: kept */
    return agec__error_ok(err);
}

agec_status agec_result_get_bool(const agec_result *res, size_t row, size_t col, bool *out,
                                 agec_error *err)
{
    const char *t = NULL;
    if (out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_result_get_bool: out is NULL");
    agec_status st = cell_text(res, row, col, "agec_result_get_bool", &t, err);
    if (st != AGEC_OK)
        return st;
    if (strcmp(t, "t") == 0 || strcmp(t, "true") == 0)
        *out = true;
    else if (strcmp(t, "f") == 0 || strcmp(t, "false") == 0)
        *out = false;
    else
        return not_a("a boolean", t, row, col, err);
    return agec__error_ok(err);
}

/* text, varchar, bpchar, name, unknown: agtype cast to text, and domains
 * over text (the server describes a domain by its base type), arrive as
 * these, so their text is parsed as agtype, as it always was. */
static bool is_text_type(Oid type)
{
    return type == AGEC_OID_TEXT || type == 1043 || type == 1042 || type == 19 || type == 705;
}

/* A cell of a built-in SQL type as agtype text to parse: bool as true/false,
 * numbers as they are, any other built-in type (text, timestamptz, uuid,
 * arrays, ...) as a string. json, jsonb and extension types (agtype) are
 * parsed as sent, and so are the text types: *out stays NULL. */
static agec_status sql_cell_as_agtype(const agec_result *res, size_t row, size_t col, char **out,
                                      agec_error *err)
{
    *out = NULL;
    Oid type = PQftype(res->pg, (int)col);
    const char *t = PQgetvalue(res->pg, (int)row, (int)col);
    size_t len = (size_t)PQgetlength(res->pg, (int)row, (int)col);
    if (type == AGEC_OID_JSON || type == AGEC_OID_JSONB || type >= AGEC_OID_FIRST_NORMAL ||
        type == 0 || is_text_type(type))
        return AGEC_OK;
    const char *lit = NULL;
    if (type == AGEC_OID_BOOL)
        lit = strcmp(t, "t") == 0 ? "true" : "false";
    else if (type == AGEC_OID_INT2 || type == AGEC_OID_INT4 || type == AGEC_OID_INT8 ||
             type == AGEC_OID_OID || type == AGEC_OID_FLOAT4 || type == AGEC_OID_FLOAT8 ||
             type == AGEC_OID_NUMERIC)
        return AGEC_OK; /* the server's text of a number is agtype's */
    if (lit != NULL) {
        *out = strdup(lit);
        return *out ? AGEC_OK : agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    agec_builder *b = NULL;
    agec_status st = agec_builder_new(&b, err);
    if (st == AGEC_OK)
        st = agec_builder_string(b, t, len, err);
    if (st == AGEC_OK)
        st = agec_builder_finish(b, out, NULL, err);
    agec_builder_free(b);
    return st;
}

agec_status agec_result_value(agec_result *res, size_t row, size_t col, const agec_value **out,
                              agec_error *err)
{
    if (res == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_result_value: NULL argument");
    *out = NULL;
    if (row >= res->rows || col >= res->cols)
        return agec__error_set(err, AGEC_ERR_RANGE,
                               "cell (%zu, %zu) outside a result of %zu rows and %zu columns", row,
                               col, res->rows, res->cols);
    if (PQgetisnull(res->pg, (int)row, (int)col))
        return agec__error_ok(err);
    if (res->vals == NULL) {
        res->vals = calloc(res->rows * res->cols, sizeof *res->vals);
        if (res->vals == NULL)
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    agec_value **slot = &res->vals[row * res->cols + col];
    if (*slot == NULL) {
        char *conv = NULL;
        agec_status st = sql_cell_as_agtype(res, row, col, &conv, err);
        if (st != AGEC_OK)
            return st;
        if (conv != NULL)
            st = agec_agtype_parse(conv, strlen(conv), 0, slot, err);
        else
            st = agec_agtype_parse(PQgetvalue(res->pg, (int)row, (int)col),
                                   (size_t)PQgetlength(res->pg, (int)row, (int)col), 0, slot, err);
        agec_free(conv);
        if (st != AGEC_OK)
            return st;
    }
    *out = *slot;
    return agec__error_ok(err);
}
