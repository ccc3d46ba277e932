/*
 * Result columns from a Cypher query's RETURN clause.
 *
 * ag_catalog.cypher() needs a column definition list as long as the RETURN
 * list. This helper reads the query text just enough to find the first
 * top-level RETURN (outside strings, comments, backquoted names and
 * brackets: the first branch of a UNION names the columns, as in SQL and
 * Neo4j) and the names of its items: the alias after AS, else the item's
 * own text (as Neo4j names columns). It is a scanner, not a Cypher parser;
 * queries it cannot read are refused with AGEC_ERR_COLUMNS, never guessed.
 */
#include "agec/cypher.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "cypher/names.h"

#define MAX_COLUMN_NAME 63

typedef struct span {
    size_t start, end; /* [start, end) in the query */
} span;

/* Skip a string, backquoted name or comment starting at i; returns the index
 * after it, or (size_t)-1 when it does not end. Returns i when nothing starts. */
static size_t skip_opaque(const char *q, size_t len, size_t i)
{
    char c = q[i];
    if (c == '\'' || c == '"') {
        for (size_t j = i + 1; j < len; j++) {
            if (q[j] == '\\')
                j++;
            else if (q[j] == c)
                return j + 1;
        }
        return (size_t)-1;
    }
    if (c == '`') {
        for (size_t j = i + 1; j < len; j++) {
            if (q[j] == '`') {
                if (j + 1 < len && q[j + 1] == '`') {
                    j++;
                    continue;
                }
                return j + 1;
            }
        }
        return (size_t)-1;
    }
    if (c == '/' && i + 1 < len && q[i + 1] == '/') {
        size_t j = i + 2;
        while (j < len && q[j] != '\n')
            j++;
        return j;
    }
    if (c == '/' && i + 1 < len && q[i + 1] == '*') {
        for (size_t j = i + 2; j + 1 < len; j++)
            if (q[j] == '*' && q[j + 1] == '/')
                return j + 2;
        return (size_t)-1;
    }
    return i;
}

static int is_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* Is the keyword kw (upper case) at q[i], as a whole word? */
static int keyword_at(const char *q, size_t len, size_t i, const char *kw)
{
    size_t n = strlen(kw);
    if (i + n > len || (i > 0 && (is_word_char(q[i - 1]) || q[i - 1] == '.' || q[i - 1] == '$')))
        return 0;
    for (size_t k = 0; k < n; k++)
        if (toupper((unsigned char)q[i + k]) != kw[k])
            return 0;
    return i + n == len || !is_word_char(q[i + n]);
}

typedef struct scan {
    const char *q;
    size_t len;
    size_t ret;        /* index of the first top-level RETURN, or SIZE_MAX */
    size_t clause_end; /* end of that RETURN's item list */
    span items[256];
    size_t nitems;
    size_t as_pos[256]; /* index of the item's top-level AS, or 0 */
} scan;

/* Bracket nesting after character c (unbalanced closers are ignored). */
static int nest(int depth, char c)
{
    if (c == '(' || c == '[' || c == '{')
        return depth + 1;
    if ((c == ')' || c == ']' || c == '}') && depth > 0)
        return depth - 1;
    return depth;
}

/* Walk the query once at top level, calling out the token positions we care
 * about. Returns 0, or -1 on an unterminated string/comment/name. */
static int find_first_return(scan *s)
{
    int depth = 0;
    s->ret = (size_t)-1;
    for (size_t i = 0; i < s->len;) {
        size_t j = skip_opaque(s->q, s->len, i);
        if (j == (size_t)-1)
            return -1;
        if (j != i) {
            i = j;
            continue;
        }
        depth = nest(depth, s->q[i]);
        /* The first: later ones belong to other UNION branches. */
        if (depth == 0 && s->ret == (size_t)-1 && keyword_at(s->q, s->len, i, "RETURN"))
            s->ret = i;
        i++;
    }
    return 0;
}

/* Split the items after RETURN [DISTINCT] up to ORDER/SKIP/LIMIT/UNION/;/end. */
static int split_items(scan *s, size_t from)
{
    int depth = 0;
    size_t item_start = from;
    s->nitems = 0;
    s->as_pos[0] = 0;
    for (size_t i = from;; i++) {
        int end = i >= s->len;
        if (!end) {
            size_t j = skip_opaque(s->q, s->len, i);
            if (j == (size_t)-1)
                return -1;
            if (j != i) {
                i = j - 1;
                continue;
            }
            char c = s->q[i];
            depth = nest(depth, c);
            if (depth == 0 &&
                (c == ';' || keyword_at(s->q, s->len, i, "ORDER") ||
                 keyword_at(s->q, s->len, i, "SKIP") || keyword_at(s->q, s->len, i, "LIMIT") ||
                 keyword_at(s->q, s->len, i, "UNION")))
                end = 1;
        }
        if (end || (depth == 0 && s->q[i] == ',')) {
            if (s->nitems == sizeof s->items / sizeof s->items[0])
                return -2;
            s->items[s->nitems].start = item_start;
            s->items[s->nitems].end = i < s->len ? i : s->len;
            s->nitems++;
            if (s->nitems < sizeof s->as_pos / sizeof s->as_pos[0])
                s->as_pos[s->nitems] = 0;
            item_start = i + 1;
            if (end) {
                s->clause_end = i;
                return 0;
            }
        } else if (depth == 0 && s->nitems < sizeof s->as_pos / sizeof s->as_pos[0] &&
                   keyword_at(s->q, s->len, i, "AS")) {
            s->as_pos[s->nitems] = i;
        }
    }
}

static span trim(const char *q, span sp)
{
    while (sp.start < sp.end && isspace((unsigned char)q[sp.start]))
        sp.start++;
    while (sp.end > sp.start && isspace((unsigned char)q[sp.end - 1]))
        sp.end--;
    return sp;
}

/* Column name of one item into out[MAX_COLUMN_NAME + 1]. */
static int item_name(const char *q, span item, size_t as_pos, char *out)
{
    span name = item;
    if (as_pos != 0) {
        name.start = as_pos + 2;
        name = trim(q, name);
        if (name.end - name.start >= 2 && q[name.start] == '`' && q[name.end - 1] == '`') {
            name.start++, name.end--;
        }
    } else {
        name = trim(q, name);
    }
    if (name.end <= name.start)
        return -1;
    size_t o = 0;
    int space = 0;
    for (size_t i = name.start; i < name.end && o < MAX_COLUMN_NAME; i++) {
        char c = q[i];
        if (c == '/' && i + 1 < name.end && (q[i + 1] == '/' || q[i + 1] == '*')) {
            size_t j = skip_opaque(q, name.end, i); /* a comment counts as white space */
            i = (j == (size_t)-1 ? name.end : j) - 1;
            space = o > 0;
            continue;
        }
        if (c == '\'' || c == '"') { /* copy a string literal whole */
            size_t j = skip_opaque(q, name.end, i);
            if (j == (size_t)-1)
                return -1;
            if (space && o + 1 < MAX_COLUMN_NAME)
                out[o++] = ' ';
            space = 0;
            for (; i < j && o < MAX_COLUMN_NAME; i++)
                out[o++] = q[i];
            i--;
            continue;
        }
        if (isspace((unsigned char)c)) { /* collapse runs of white space */
            space = 1;
            continue;
        }
        if (c == '\0')
            return -1;
        if (space && o > 0 && o + 1 < MAX_COLUMN_NAME)
            out[o++] = ' ';
        space = 0;
        if (as_pos != 0 && c == '`' && i + 1 < name.end && q[i + 1] == '`')
            i++;
        out[o++] = c;
    }
    if (o == 0)
        return -1; /* only a comment, or an empty alias */
    if (o == MAX_COLUMN_NAME) {
        /* Truncated: do not end inside a UTF-8 sequence. */
        size_t i = o;
        while (i > 0 && ((unsigned char)out[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0) {
            unsigned char lead = (unsigned char)out[i - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (o - (i - 1) < need)
                o = i - 1;
        }
    }
    out[o] = '\0';
    return 0;
}

static const char *column_at(const void *ctx, size_t i)
{
    const char(*names)[MAX_COLUMN_NAME + 8] = ctx;
    return names[i];
}

agec_status agec_cypher_return_columns(const char *query, char ***names_out, size_t *count_out,
                                       agec_error *err)
{
    if (query == NULL || names_out == NULL || count_out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_cypher_return_columns: NULL argument");
    *names_out = NULL;
    *count_out = 0;
    /* Not calloc: zeroing the 6 KB of item tables was half of this
     * function's instructions. Each table entry is written before it is
     * read (split_items); the scalars are set here. */
    scan *s = malloc(sizeof *s);
    if (s == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    s->q = query;
    s->len = strlen(query);
    s->ret = (size_t)-1;
    s->clause_end = s->len;
    s->nitems = 0;
    s->as_pos[0] = 0;
    agec_status st = AGEC_OK;
    char(*names)[MAX_COLUMN_NAME + 8] = NULL;
    size_t n = 0;

    if (find_first_return(s) != 0) {
        st = agec__error_set(err, AGEC_ERR_COLUMNS,
                             "query has an unterminated string, comment or `name`");
        goto out;
    }
    if (s->ret == (size_t)-1) {
        /* CREATE/SET/DELETE/MERGE without RETURN: AGE wants one agtype column. */
        names = calloc(1, sizeof *names);
        if (names == NULL)
            goto oom;
        strcpy(names[0], "result");
        n = 1;
    } else {
        size_t from = s->ret + 6;
        while (from < s->len && isspace((unsigned char)query[from]))
            from++;
        if (keyword_at(query, s->len, from, "DISTINCT"))
            from += 8;
        int rc = split_items(s, from);
        if (rc == -2) {
            st = agec__error_set(err, AGEC_ERR_COLUMNS, "RETURN has more than %zu items",
                                 sizeof s->items / sizeof s->items[0]);
            goto out;
        }
        if (rc != 0) {
            st = agec__error_set(err, AGEC_ERR_COLUMNS,
                                 "query has an unterminated string, comment or `name`");
            goto out;
        }
        names = calloc(s->nitems, sizeof *names);
        if (names == NULL)
            goto oom;
        for (size_t i = 0; i < s->nitems; i++) {
            span it = trim(query, s->items[i]);
            if (it.end - it.start == 1 && query[it.start] == '*') {
                st = agec__error_set(err, AGEC_ERR_COLUMNS,
                                     "RETURN * cannot be mapped to columns: name the returned "
                                     "values (RETURN a, b) or pass the column list yourself");
                goto out;
            }
            if (item_name(query, s->items[i], s->as_pos[i], names[n]) != 0) {
                st = agec__error_set(err, AGEC_ERR_COLUMNS, "RETURN item %zu at byte %zu is empty",
                                     i + 1, s->items[i].start);
                if (err)
                    err->position = (int)s->items[i].start + 1;
                goto out;
            }
            /* Column names must be unique in the definition list. */
            size_t base_len = strlen(names[n]);
            for (unsigned suffix = 2;; suffix++) {
                int dup = 0;
                for (size_t k = 0; k < n; k++)
                    if (strcmp(names[k], names[n]) == 0)
                        dup = 1;
                if (!dup)
                    break;
                size_t keep = base_len < MAX_COLUMN_NAME - 6 ? base_len : MAX_COLUMN_NAME - 6;
                /* Never cut a UTF-8 character: back off to a lead byte. */
                while (keep > 0 && ((unsigned char)names[n][keep] & 0xC0) == 0x80)
                    keep--;
                snprintf(names[n] + keep, sizeof names[n] - keep, "_%u", suffix % 100000u);
            }
            n++;
        }
    }

    char **block = agec__strings_pack(n, column_at, names);
    if (block == NULL)
        goto oom;
    *names_out = block;
    *count_out = n;
    goto out;
oom:
    st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
out:
    free(names);
    free(s);
    return st;
}
