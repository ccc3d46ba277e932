/* Writing a label's batch: COPY text, or one INSERT ... unnest. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agec/cypher.h"
#include "agec/tx.h"
#include "common/error_internal.h"
#include "load/copy.h"
#include "load/load_internal.h"

static void put_int(agec__buf *b, int64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%" PRId64, v);
    agec__buf_put(b, d, (size_t)n);
}

/* A field of COPY's text format. */
static void put_copy_text(agec__buf *b, const char *s, size_t n)
{
    agec__buf_reserve(b, n + n / 8 + 2);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\'   ? "\\\\"
                          : s[i] == '\n' ? "\\n"
                          : s[i] == '\r' ? "\\r"
                          : s[i] == '\t' ? "\\t"
                                         : NULL;
        if (esc != NULL) {
            agec__buf_put(b, s + from, i - from);
            agec__buf_put(b, esc, 2);
            from = i + 1;
        }
    }
    agec__buf_put(b, s + from, n - from);
}

static void open_array(agec__buf *b, bool first)
{
    agec__buf_putc(b, first ? '{' : ',');
}

void agec__ld_append(agec_loader *ld, agec__ld_label *l, const char *props, size_t len, int64_t id,
                     int64_t start, int64_t end)
{
    bool first = l->pending == 0;
    if (ld->method == AGEC_LOAD_COPY) {
        if (l->edge) {
            put_int(&l->rows, start);
            agec__buf_putc(&l->rows, '\t');
            put_int(&l->rows, end);
            agec__buf_putc(&l->rows, '\t');
        } else if (l->key != NULL) {
            put_int(&l->rows, id);
            agec__buf_putc(&l->rows, '\t');
        }
        put_copy_text(&l->rows, props, len);
        agec__buf_putc(&l->rows, '\n');
        return;
    }
    /* One agtype list: the server parses it once, and age_unnest hands
     * out the maps as agtype datums (a text[] of maps cast one by one with
     * ::agtype was 2-4x slower on PGlite). */
    agec__buf_put(&l->rows, first ? "[" : ", ", first ? 1 : 2);
    agec__buf_put(&l->rows, props, len);
    if (l->edge) {
        open_array(&l->a, first);
        put_int(&l->a, start);
        open_array(&l->b, first);
        put_int(&l->b, end);
    } else if (l->key != NULL) {
        int64_t entry = id & (((int64_t)1 << 48) - 1);
        open_array(&l->a, first);
        put_int(&l->a, entry);
        l->contiguous = first || (l->contiguous && entry == l->last_entry + 1);
        if (first)
            l->first_entry = entry;
        l->last_entry = entry;
    }
}

/* "people.csv lines 1-5000 (label Person, 5000 rows)": the batch, for its error. */
static void batch_what(const agec__ld_label *l, char *buf, size_t cap)
{
    char src[128], src2[128], name[64];
    if (strcmp(l->first_source, l->last_source) == 0)
        snprintf(buf, cap, "%s lines %llu-%llu (label %s, %zu rows)",
                 agec__utf8_cut(src, sizeof src, l->first_source),
                 (unsigned long long)l->first_line, (unsigned long long)l->last_line,
                 agec__utf8_cut(name, sizeof name, l->name), l->pending);
    else /* a batch of rows from two (or more) files */
        snprintf(
            buf, cap, "%s line %llu to %s line %llu (label %s, %zu rows)",
            agec__utf8_cut(src, sizeof src, l->first_source), (unsigned long long)l->first_line,
            agec__utf8_cut(src2, sizeof src2, l->last_source), (unsigned long long)l->last_line,
            agec__utf8_cut(name, sizeof name, l->name), l->pending);
}

static void blame(const char *what, agec_error *err)
{
    if (err == NULL)
        return;
    char msg[AGEC_ERROR_TEXT_MAX];
    char cut[701];
    snprintf(msg, sizeof msg, "%s: %s", what, agec__utf8_cut(cut, sizeof cut, err->message));
    agec__copy_text(err->message, sizeof err->message, msg);
}

static agec_status write_insert(agec_loader *ld, agec__ld_label *l, agec_error *err)
{
    agec__buf_putc(&l->rows, ']');
    agec__buf_putc(&l->rows, '\0');
    agec__buf_putc(&l->a, '}');
    agec__buf_putc(&l->a, '\0');
    agec__buf_putc(&l->b, '}');
    agec__buf_putc(&l->b, '\0');
    if (l->rows.failed || l->a.failed || l->b.failed)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    char q[1024], lid[16];
    snprintf(lid, sizeof lid, "%d", l->id);
    const char *v[3] = { l->rows.data, l->a.data, l->b.data };
    int n = 1;
    if (l->edge) {
        snprintf(q, sizeof q,
                 "INSERT INTO %s (start_id, end_id, properties) SELECT "
                 "ag_catalog._graphid((s >> 48)::int, s & 281474976710655), "
                 "ag_catalog._graphid((e >> 48)::int, e & 281474976710655), p FROM ROWS FROM "
                 "(ag_catalog.age_unnest($1::ag_catalog.agtype), unnest($2::bigint[]), "
                 "unnest($3::bigint[])) AS t(p, s, e)",
                 l->rel);
        n = 3;
    } else if (l->key != NULL && l->contiguous) {
        /* Ids first_entry, first_entry + 1, ...: no id array to send and
         * unnest (which cost as much as the insert itself on PGlite). */
        char first[24];
        snprintf(first, sizeof first, "%lld", (long long)l->first_entry);
        snprintf(q, sizeof q,
                 "INSERT INTO %s (id, properties) SELECT ag_catalog._graphid($3::int, $2::bigint "
                 "+ o - 1), p FROM ag_catalog.age_unnest($1::ag_catalog.agtype) WITH ORDINALITY "
                 "AS t(p, o)",
                 l->rel);
        agec_result *res = NULL;
        const char *w[3] = { l->rows.data, first, lid };
        agec_status st = agec_sql_exec(ld->conn, q, 3, w, agec__ld_query_opts(ld), &res, err);
        agec_result_free(res);
        return st;
    } else if (l->key != NULL) {
        snprintf(q, sizeof q,
                 "INSERT INTO %s (id, properties) SELECT ag_catalog._graphid($3::int, e), p "
                 "FROM ROWS FROM (ag_catalog.age_unnest($1::ag_catalog.agtype), "
                 "unnest($2::bigint[])) AS t(p, e)",
                 l->rel);
        v[2] = lid;
        n = 3;
    } else {
        snprintf(q, sizeof q,
                 "INSERT INTO %s (properties) SELECT p FROM "
                 "ag_catalog.age_unnest($1::ag_catalog.agtype) AS t(p)",
                 l->rel);
    }
    agec_result *res = NULL;
    agec_status st = agec_sql_exec(ld->conn, q, n, v, agec__ld_query_opts(ld), &res, err);
    agec_result_free(res);
    return st;
}

static agec_status write_copy(agec_loader *ld, agec__ld_label *l, agec_error *err)
{
    if (l->rows.failed)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    char q[512];
    snprintf(q, sizeof q, "COPY %s (%sproperties) FROM STDIN", l->rel,
             l->edge          ? "start_id, end_id, "
             : l->key != NULL ? "id, "
                              : "");
    ld->inflight_deadline = agec__ld_deadline(ld);
    agec_status st =
        agec__copy_send(ld->conn, q, l->rows.data, l->rows.len, ld->inflight_deadline, err);
    if (st == AGEC_OK) {
        ld->inflight = true;
        batch_what(l, ld->inflight_what, sizeof ld->inflight_what);
    }
    return st;
}

agec_status agec__ld_settle(agec_loader *ld, agec_error *err)
{
    if (!ld->inflight)
        return AGEC_OK;
    ld->inflight = false;
    agec_status st = agec__copy_finish(ld->conn, ld->inflight_deadline, NULL, err);
    if (st != AGEC_OK) {
        blame(ld->inflight_what, err);
        ld->failed = true;
        (void)agec_tx_rollback(ld->conn, NULL);
    }
    return st;
}

agec_status agec__ld_flush(agec_loader *ld, agec__ld_label *l, agec_error *err)
{
    if (l->pending == 0)
        return AGEC_OK;
    agec_status st = agec__ld_settle(ld, err); /* the batch before, first */
    if (st != AGEC_OK)
        return st;
    st = ld->method == AGEC_LOAD_COPY ? write_copy(ld, l, err) : write_insert(ld, l, err);
    if (st != AGEC_OK) {
        char what[320];
        batch_what(l, what, sizeof what);
        blame(what, err);
        ld->failed = true;
        (void)agec_tx_rollback(ld->conn, NULL);
        return st;
    }
    l->rows.len = l->a.len = l->b.len = 0;
    l->pending = 0;
    if (ld->opts.progress != NULL) {
        agec_load_stats now;
        agec_loader_stats(ld, &now);
        ld->opts.progress(&now, ld->opts.progress_user);
    }
    return AGEC_OK;
}
