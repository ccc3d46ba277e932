/*
 * The loader's internals, shared by loader.c (API, labels, rows,
 * transactions), batch.c (writing batches) and file.c (CSV, JSON Lines).
 */
#ifndef AGEC_LOAD_INTERNAL_H
#define AGEC_LOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/cypher.h"
#include "agec/load.h"
#include "agtype/buf.h"
#include "load/keymap.h"

/* One label met by the load: its catalog facts, its key map (keyed vertex
 * labels) and the batch of rows not yet written. */
typedef struct agec__ld_label {
    char *name;
    bool edge;
    int id;        /* ag_label.id: the high 16 bits of its graph ids */
    char rel[300]; /* "graph"."Label", quoted */
    char seq[300]; /* "graph"."Label_id_seq", quoted (a regclass text) */
    char *key;     /* key property of a vertex label, or NULL */
    agec__keymap map;
    int64_t *reserved; /* entry ids taken from the sequence, not yet used */
    size_t nreserved, ireserved;
    /* The batch: INSERT path: an agtype list in `rows`, bigint[] elements
     * in `a` (vertex entries, edge starts) and `b` (edge ends); COPY path:
     * COPY text lines in `rows`. */
    agec__buf rows, a, b;
    size_t pending;
    uint64_t written;                         /* rows queued in this load, written or pending */
    int64_t first_entry, last_entry;          /* keyed vertices: entry ids of the batch */
    bool contiguous;                          /* ... first_entry, first_entry + 1, ... */
    char first_source[128], last_source[128]; /* a batch may span files */
    uint64_t first_line, last_line;
} agec__ld_label;

struct agec_loader {
    agec_conn *conn;
    char *graph;
    char qgraph[140];
    agec_load_opts opts;
    agec_load_method method;
    agec__ld_label **labels;
    size_t nlabels, caplabels;
    agec_load_stats st;
    double t0;
    char source[256];
    uint64_t line; /* line of the next row */
    uint64_t since_commit;
    bool failed, finished;
    /* COPY path: the batch sent whose outcome is not read yet (the client
     * builds the next batch meanwhile). agec__ld_settle reads it before
     * anything else goes to the server; its error names that batch. */
    bool inflight;
    int64_t inflight_deadline;
    char inflight_what[320];
    bool single_session;   /* PGlite: one session, statements never interleave */
    agec__buf tmp;         /* scratch for canonical property text */
    uint64_t key_bytes;    /* what the key maps hold (opts.key_memory_max) */
    uint64_t xid;          /* the open transaction's id, for a lost COMMIT answer */
    agec_query_opts qopts; /* every statement's options (timeout_ms) */
    /* The input row being added, written out on demand for the reject
     * callback when a check after parsing refuses it (a missing edge
     * endpoint); row_fn NULL: none. */
    bool (*row_fn)(void *ctx, const char **row, size_t *len); /* agec__ld_row_fn */
    void *row_ctx;
};

/* Add one row to the label's batch, in the method's format (id: the
 * vertex's graph id or 0 for the default; start/end: an edge's). Out of
 * memory shows as a failed buffer. */
void agec__ld_append(agec_loader *ld, agec__ld_label *l, const char *props, size_t len, int64_t id,
                     int64_t start, int64_t end);

/* Write the label's batch (no-op when empty). Fails the load on error. On
 * the COPY path the batch is sent and its outcome left to agec__ld_settle;
 * an error there may so come back from a later call, naming its batch. */
agec_status agec__ld_flush(agec_loader *ld, agec__ld_label *l, agec_error *err);

/* Read the outcome of the COPY batch in flight, if any; must come before
 * any other statement of the load. Fails the load (rolled back) on error,
 * the error prefixed with that batch's source lines. err may be NULL. */
agec_status agec__ld_settle(agec_loader *ld, agec_error *err);

/* Seconds on the monotonic clock. */
double agec__ld_now(void);

/* The options of a statement the loader sends (opts.timeout_ms), and the
 * deadline of one starting now (AGEC__NEVER without timeout_ms). */
const agec_query_opts *agec__ld_query_opts(agec_loader *ld);
int64_t agec__ld_deadline(const agec_loader *ld);

/* Report a bad row: AGEC_ERR_INPUT with "source:line: column C: ..." (col
 * 0 = no column, colname may be NULL). With a reject callback that takes
 * it, returns AGEC_OK (the row is skipped and counted); otherwise the load
 * fails (rolled back) and the error is returned. */
agec_status agec__ld_bad_row(agec_loader *ld, size_t col, const char *colname, const char *row,
                             size_t rowlen, agec_error *err, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* A vertex or edge whose properties are already canonical agtype map
 * text (the file readers build it; they call agec__ld_skip first). */
agec_status agec__ld_vertex_text(agec_loader *ld, const char *label, const char *props, size_t len,
                                 agec_error *err);
/* row_fn(row_ctx, ...) writes the input row out if it is rejected (a
 * missing endpoint); row_fn may be NULL. */
typedef bool (*agec__ld_row_fn)(void *ctx, const char **row, size_t *len);
/* A row that is already text (a JSON line, properties as given): its
 * agec__ld_row_fn is agec__ld_text_row_get (false when text is NULL). */
typedef struct agec__ld_text_row {
    const char *text;
    size_t len;
} agec__ld_text_row;
bool agec__ld_text_row_get(void *ctx, const char **row, size_t *len);
agec_status agec__ld_edge_text(agec_loader *ld, const char *label, const agec_endpoint *start,
                               const agec_endpoint *end, const char *props, size_t len,
                               agec__ld_row_fn row_fn, void *row_ctx, agec_error *err);

/* A statement of the load (after the COPY in flight is settled); *out
 * (may be NULL) gets its result on success. */
agec_status agec__ld_sql(agec_loader *ld, const char *text, int n, const char *const *v,
                         agec_result **out, agec_error *err);

/* AGEC_ERR_STATE: the load failed earlier or is finished. */
agec_status agec__ld_dead(const agec_loader *ld, agec_error *err);

/* labels.c: the label named `name`, met before or looked up (created
 * when missing and create_missing), its privileges checked. */
agec_status agec__ld_label_get(agec_loader *ld, const char *name, bool edge, agec__ld_label **out,
                               agec_error *err);

/* agec__keymap_put within opts.key_memory_max: 1 put, 0 present (*prev),
 * -1 out of memory, -2 over the bound (then agec__ld_key_map_full). */
int agec__ld_key_put(agec_loader *ld, agec__ld_label *l, const char *key, size_t len, int64_t id,
                     int64_t *prev);
agec_status agec__ld_key_map_full(agec_loader *ld, const agec__ld_label *l, agec_error *err);

/* A new block of batch_rows entry ids for the label, from its sequence. */
agec_status agec__ld_reserve(agec_loader *ld, agec__ld_label *l, agec_error *err);

/* ANALYZE the loaded tables (opts.analyze) and build the key indexes. */
agec_status agec__ld_key_indexes(agec_loader *ld, agec_error *err);

/* Roll back the current chunk and return st; the loader accepts only
 * free afterwards. */
agec_status agec__ld_fail(agec_loader *ld, agec_status st);

/* An input error that no reject callback may take (a CSV syntax error, a
 * bad header): AGEC_ERR_INPUT "source:line: column C: ...", the load
 * fails (rolled back). */
agec_status agec__ld_input_error(agec_loader *ld, size_t col, agec_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One input row is over (written, queued or rejected): counts it, moves
 * the line on, commits when a chunk is full. */
agec_status agec__ld_row_done(agec_loader *ld, agec_error *err);

/* Resume: true when this input row is skipped (skip_rows), counted as
 * skipped. Called before any check of the row, so that a row committed
 * or rejected by the run being resumed is not rejected again. */
bool agec__ld_skip(agec_loader *ld);

#endif
