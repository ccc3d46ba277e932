/*
 * The SQL text around a Cypher query. This is the only place where caller
 * data becomes SQL text, and only in two forms: the graph name, after
 * agec_graph_name_check() (letters, digits, '_', '.', '-': nothing that can
 * end a string literal), and the Cypher text, inside a dollar quote whose tag
 * is chosen so that it does not occur in the text. Parameters are never
 * spliced: they are bound to $1.
 */
#include "cypher/sqltext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "cypher/names.h"

/* The closing tag would end the quote early if it occurred in the text, or
 * if the text's end and the closing tag formed it together: "RETURN $agec"
 * + "$agec$" holds "$agec$" at the parameter. */
static bool tag_fits(const char *query, size_t qlen, const char *tag)
{
    if (strstr(query, tag) != NULL)
        return false;
    size_t tl = strlen(tag);
    size_t k = qlen < tl - 1 ? qlen : tl - 1; /* the text's last k bytes */
    char joint[64];
    memcpy(joint, query + qlen - k, k);
    memcpy(joint + k, tag, tl + 1);
    return strstr(joint, tag) == joint + k;
}

/* Smallest tag "$agec$", "$agec1$", "$agec2$", ... that fits the query. */
static void pick_tag(const char *query, char *tag, size_t cap)
{
    size_t qlen = strlen(query);
    snprintf(tag, cap, "$agec$");
    for (unsigned n = 1; !tag_fits(query, qlen, tag); n++)
        snprintf(tag, cap, "$agec%u$", n);
}

agec_status agec__cypher_sql(const char *graph, const char *query, bool with_params,
                             const char *const *columns, size_t ncolumns, char **out,
                             agec_error *err)
{
    *out = NULL;
    agec_status st = agec_graph_name_check(graph, err);
    if (st != AGEC_OK)
        return st;
    if (ncolumns == 0)
        return agec__error_set(err, AGEC_ERR_COLUMNS, "a Cypher call needs at least one column");
    char tag[32];
    pick_tag(query, tag, sizeof tag);
    size_t qlen = strlen(query);
    size_t cap = 128 + strlen(graph) + qlen + 2 * strlen(tag);
    for (size_t i = 0; i < ncolumns; i++)
        cap += 2 * (columns ? strlen(columns[i]) : 24) + 32;
    char *sql = malloc(cap);
    if (sql == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    int n = snprintf(sql, cap, "SELECT * FROM ag_catalog.cypher('%s', %s", graph, tag);
    size_t o = (size_t)n;
    memcpy(sql + o, query, qlen);
    o += qlen;
    n = snprintf(sql + o, cap - o, "%s%s) AS (", tag, with_params ? ", $1" : "");
    o += (size_t)n;
    for (size_t i = 0; i < ncolumns; i++) {
        char gen[24];
        const char *name = columns ? columns[i] : gen;
        if (columns == NULL)
            snprintf(gen, sizeof gen, "c%zu", i + 1);
        if (name == NULL || name[0] == '\0') {
            free(sql);
            return agec__error_set(err, AGEC_ERR_COLUMNS, "column name %zu is empty", i + 1);
        }
        if (i > 0)
            sql[o++] = ',', sql[o++] = ' ';
        size_t q = agec__quote_ident(name, sql + o, cap - o);
        if (q == 0) {
            free(sql);
            return agec__error_set(err, AGEC_ERR_NO_MEMORY, "column list too long");
        }
        o += q;
        n = snprintf(sql + o, cap - o, " ag_catalog.agtype");
        o += (size_t)n;
    }
    sql[o++] = ')';
    sql[o] = '\0';
    *out = sql;
    return AGEC_OK;
}
