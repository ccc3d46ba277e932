/* Result sets: rows from libpq, cells parsed as agtype on demand. */
#include "cypher/result.h"

#include <stdlib.h>

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
        return AGEC_OK;
    if (res->vals == NULL) {
        res->vals = calloc(res->rows * res->cols, sizeof *res->vals);
        if (res->vals == NULL)
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    }
    agec_value **slot = &res->vals[row * res->cols + col];
    if (*slot == NULL) {
        agec_status st =
            agec_agtype_parse(PQgetvalue(res->pg, (int)row, (int)col),
                              (size_t)PQgetlength(res->pg, (int)row, (int)col), 0, slot, err);
        if (st != AGEC_OK)
            return st;
    }
    *out = *slot;
    return AGEC_OK;
}
