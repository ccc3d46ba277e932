/* Which Cypher reads AGE cannot run on a hot standby (agec/cluster_cypher.h).
 * A lexical scan of the query text: no parser, and every doubt goes to the
 * primary (a read sent there needlessly costs a little load; one sent to a
 * standby wrongly costs an error and a retry). */
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include "agec/cluster_cypher.h"

/* Functions whose AGE implementation opens catalog tables in ShareLock
 * (apache/age 1.6 agtype.c get_label_name, age_global_graph.c). */
static const char *const LOCKING_FUNCS[] = { "startnode", "endnode", "vertex_stats",
                                             "graph_stats" };
static const char *const WRITE_CLAUSES[] = { "create", "merge", "set", "delete", "remove" };

static const char WHY_VLE[] = "a variable-length relationship (AGE takes ShareLock on its "
                              "label tables, refused during recovery)";
static const char WHY_FUNC[] = "startNode/endNode/vertex_stats/graph_stats (AGE takes "
                               "ShareLock on ag_label, refused during recovery)";
static const char WHY_WRITE[] = "a write clause (CREATE, MERGE, SET, DELETE or REMOVE)";

/* Past a quoted literal or name starting at p (quote char *p). */
static const char *skip_quoted(const char *p)
{
    char q = *p++;
    while (*p && *p != q) {
        if (*p == '\\' && q != '`' && p[1])
            p++;
        p++;
    }
    return *p ? p + 1 : p;
}

/* Past a comment at p, or p itself when none starts there. */
static const char *skip_comment(const char *p)
{
    if (p[0] == '/' && p[1] == '/') {
        while (*p && *p != '\n')
            p++;
        return p;
    }
    if (p[0] == '/' && p[1] == '*') {
        const char *e = strstr(p + 2, "*/");
        return e ? e + 2 : p + strlen(p);
    }
    return p;
}

static bool word_in(const char *w, size_t n, const char *const *list, size_t count)
{
    char low[16];
    if (n >= sizeof low)
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)w[i]);
    low[n] = '\0';
    /* AGE also knows its functions by an age_ prefix (age_startnode). */
    const char *name = strncmp(low, "age_", 4) == 0 ? low + 4 : low;
    for (size_t i = 0; i < count; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

static const char *next_sig(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        const char *q = skip_comment(p);
        if (q == p)
            return p;
        p = q;
    }
}

bool agec_cypher_needs_primary(const char *query, const char **why)
{
    if (why != NULL)
        *why = NULL;
    if (query == NULL)
        return false;
    const char *found = NULL;
    char prev = '\0';  /* last significant character outside literals */
    int rel_depth = 0; /* > 0 inside a relationship's [ ] */
    for (const char *p = query; *p && found == NULL;) {
        const char *q = skip_comment(p);
        if (q != p) {
            p = q;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (isspace(c)) {
            p++;
            continue;
        }
        if (c == '\'' || c == '"' || c == '`') {
            p = skip_quoted(p);
            prev = 'a';
            continue;
        }
        if (isalpha(c) || c == '_') {
            const char *w = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            size_t n = (size_t)(p - w);
            const char *after = next_sig(p);
            if (prev != '.' && prev != '$' && prev != ':' && rel_depth == 0) {
                if (*after == '(' &&
                    word_in(w, n, LOCKING_FUNCS, sizeof LOCKING_FUNCS / sizeof *LOCKING_FUNCS))
                    found = WHY_FUNC;
                else if (*after != ':' &&
                         word_in(w, n, WRITE_CLAUSES, sizeof WRITE_CLAUSES / sizeof *WRITE_CLAUSES))
                    found = WHY_WRITE;
            }
            prev = 'a';
            continue;
        }
        if (c == '[') {
            if (rel_depth > 0)
                rel_depth++;
            else if (prev == '-')
                rel_depth = 1;
        } else if (c == ']' && rel_depth > 0) {
            rel_depth--;
        } else if (c == '*' && rel_depth > 0) {
            found = WHY_VLE;
        }
        prev = (char)c;
        p++;
    }
    if (why != NULL)
        *why = found;
    return found != NULL;
}
