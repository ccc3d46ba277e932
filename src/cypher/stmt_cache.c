/* The prepared-statement cache of one connection (see stmt_cache.h). */
#include "cypher/stmt_cache.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "cypher/names.h"
#include "pool/conn_ext.h"
#include "session/pgconn.h"

static void text_free(agec__cypher_text *t)
{
    free(t->key);
    free(t->sql);
}

static void session_destroy(void *p)
{
    agec__session *s = p;
    for (size_t i = 0; i < s->nstmts; i++)
        free(s->stmts[i].sql);
    for (size_t i = 0; i < s->ntexts; i++)
        text_free(&s->texts[i]);
    free(s->pending);
    free(s);
}

agec__session *agec__session_get(agec_conn *conn)
{
    agec__session *s = agec__conn_ext(conn);
    if (s != NULL)
        return s;
    s = calloc(1, sizeof *s);
    if (s != NULL)
        agec__conn_set_ext(conn, s, session_destroy);
    return s;
}

static uint64_t fnv1a(const char *s)
{
    return agec__fnv1a(AGEC__FNV_BASIS, s);
}

static uint64_t text_hash(const char *graph, const char *query, bool params)
{
    uint64_t h = agec__fnv1a(AGEC__FNV_BASIS, graph);
    h = (h ^ 0xffu) * AGEC__FNV_PRIME; /* a separator no UTF-8 text contains */
    h = agec__fnv1a(h, query);
    return h ^ (params ? 1u : 0u);
}

const char *agec__session_text_find(agec__session *s, const char *graph, const char *query,
                                    bool params)
{
    uint64_t h = text_hash(graph, query, params);
    for (size_t i = 0; i < s->ntexts; i++) {
        agec__cypher_text *t = &s->texts[i];
        if (t->hash == h && t->params == params && strcmp(t->key, graph) == 0 &&
            strcmp(t->key + t->graph_len + 1, query) == 0) {
            t->last_use = ++s->clock;
            return t->sql;
        }
    }
    return NULL;
}

bool agec__session_text_add(agec__session *s, const char *graph, const char *query, bool params,
                            char *sql)
{
    size_t gl = strlen(graph), ql = strlen(query);
    if (ql > AGEC__TEXT_CACHE_QUERY_MAX)
        return false;
    char *key = malloc(gl + ql + 2);
    if (key == NULL)
        return false;
    memcpy(key, graph, gl + 1);
    memcpy(key + gl + 1, query, ql + 1);
    agec__cypher_text *t;
    if (s->ntexts < AGEC__TEXT_CACHE_MAX) {
        t = &s->texts[s->ntexts++];
    } else {
        t = &s->texts[0];
        for (size_t i = 1; i < s->ntexts; i++)
            if (s->texts[i].last_use < t->last_use)
                t = &s->texts[i];
        text_free(t);
    }
    *t = (agec__cypher_text){ .hash = text_hash(graph, query, params),
                              .last_use = ++s->clock,
                              .key = key,
                              .graph_len = gl,
                              .params = params,
                              .sql = sql };
    return true;
}

agec__stmt *agec__session_find(agec__session *s, const char *sql)
{
    uint64_t h = fnv1a(sql);
    for (size_t i = 0; i < s->nstmts; i++) {
        agec__stmt *st = &s->stmts[i];
        if (st->hash == h && strcmp(st->sql, sql) == 0) {
            st->last_use = ++s->clock;
            return st;
        }
    }
    return NULL;
}

static bool pending_push(agec__session *s, const char *name)
{
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? 2 * s->cap_pending : 16;
        char(*v)[AGEC__STMT_NAME_MAX] = realloc(s->pending, cap * sizeof *v);
        if (v == NULL)
            return false;
        s->pending = v;
        s->cap_pending = cap;
    }
    snprintf(s->pending[s->npending++], sizeof s->pending[0], "%s", name);
    return true;
}

/* Statement names are unique to the pool instance (its random nonce) and,
 * with a counter, within the process, because some servers (PGlite,
 * PgBouncer in session mode) share one session between several client
 * connections, possibly of several processes with the same pid (containers
 * run as pid 1). */
static atomic_uint_fast64_t next_stmt_id;

agec__stmt *agec__session_add(agec__session *s, uint64_t nonce, const char *sql)
{
    char *copy = strdup(sql);
    if (copy == NULL)
        return NULL;
    agec__stmt *st;
    if (s->nstmts < AGEC_STMT_CACHE_MAX) {
        st = &s->stmts[s->nstmts++];
    } else {
        st = &s->stmts[0];
        for (size_t i = 1; i < s->nstmts; i++)
            if (s->stmts[i].last_use < st->last_use)
                st = &s->stmts[i];
        if (!pending_push(s, st->name)) {
            free(copy);
            return NULL; /* out of memory: keep the old one rather than lose its name */
        }
        free(st->sql);
    }
    st->sql = copy;
    st->hash = fnv1a(sql);
    st->last_use = ++s->clock;
    uint64_t id = atomic_fetch_add(&next_stmt_id, 1) + 1;
    snprintf(st->name, sizeof st->name, "agec_%016" PRIx64 "_%" PRIu64, nonce, id);
    return st;
}

void agec__session_forget(agec__session *s, agec__stmt *st)
{
    free(st->sql);
    size_t i = (size_t)(st - s->stmts);
    s->stmts[i] = s->stmts[--s->nstmts];
}

agec_status agec__session_flush_pending(agec__session *s, PGconn *pg, int64_t deadline_us,
                                        agec_error *err)
{
    if (s->npending == 0 || PQtransactionStatus(pg) != PQTRANS_IDLE)
        return AGEC_OK;
    while (s->npending > 0) {
        char sql[AGEC__STMT_NAME_MAX + 16];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", s->pending[s->npending - 1]);
        /* A server error (the statement is gone already) is fine; not
         * getting an answer in time is not: the connection is mid-query. */
        agec_error e = AGEC_ERROR_INIT;
        agec_status st = agec__session_exec(pg, sql, deadline_us, &e);
        if (st == AGEC_ERR_TIMEOUT || st == AGEC_ERR_CONNECTION_LOST || st == AGEC_ERR_CANCELLED) {
            if (err != NULL)
                agec__error_copy(err, &e);
            return st;
        }
        s->npending--;
    }
    return AGEC_OK;
}

int agec__session_tx_timeout(const agec__session *s, agec_conn *conn)
{
    return s->tx_borrow == agec__conn_borrow_id(conn) ? s->tx_timeout_ms : 0;
}
