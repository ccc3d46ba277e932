/*
 * agec/load.h: bulk loading of vertices and edges into an AGE graph.
 *
 *   agec_loader *ld;
 *   agec_loader_open(conn, "social", NULL, &ld, &err);
 *   agec_loader_key(ld, "Person", "uid", &err);          // optional: names vertices
 *   agec_loader_vertex(ld, "Person", "{\"uid\": 1, \"name\": \"Ada\"}", SIZE_MAX, &err);
 *   agec_loader_vertex(ld, "Person", "{\"uid\": 2}", SIZE_MAX, &err);
 *   agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", "1"),
 *                    &AGEC_ENDPOINT_KEY("Person", "2"), "{\"since\": 2020}", SIZE_MAX, &err);
 *   agec_loader_finish(ld, NULL, &err);   // flush and COMMIT
 *   agec_loader_free(ld);
 *
 * How it works. Rows are buffered per label and written in batches straight
 * into the label tables (`<graph>."<Label>"`), bypassing Cypher: with
 * `COPY ... FROM STDIN` on PostgreSQL, or with `INSERT INTO ... SELECT p
 * FROM age_unnest($1::agtype)` (one agtype list of maps per batch, plus
 * bigint[] arrays of ids) where COPY does not work (the PGlite
 * server, which reports PGlite / wasm32 in version(): COPY breaks its
 * protocol). Graph ids of keyed vertices are reserved from the label's own
 * sequence (nextval), so a later Cypher CREATE never collides with them,
 * and remembered in a key -> graph id map: an edge endpoint named by label
 * and key is resolved in memory, never by a scan per edge. A label that
 * already has rows when the loader first meets it has its keys read once
 * (one scan) into the same map. Missing graphs and labels are created; the
 * key property of a vertex label gets a btree index on
 * `agtype_access_operator(properties, '"key"')` (what `WHERE n.key = ...`
 * uses). On the COPY path a batch is sent and its outcome read while the
 * next batch is built (the server takes one in while the client makes the
 * next): a server error of a batch may come back from a later call, or
 * from agec_loader_finish(), and names that batch's lines.
 *
 * Keys compare by their text: an integer by its decimal digits, a string by
 * its content, anything else by its agtype text (so 42 and "42" are the same
 * key). Edges whose endpoints are graph ids are not checked.
 *
 * Transactions. By default the whole load is one transaction: a failure
 * leaves nothing in the graph. With `chunk_rows` the loader commits after
 * every chunk of that many input rows; a failure then rolls back only the
 * current chunk, and agec_loader_stats() tells how many input rows are
 * committed: run the same input again with `skip_rows` set to that number to
 * resume (after a lost COMMIT answer, to agec_load_resume_point()'s).
 *
 * Thread-safety: a loader belongs to the thread that uses its connection.
 * The connection must be idle (no open transaction) when the loader opens,
 * and must not be used for anything else until agec_loader_free().
 */
#ifndef AGEC_LOAD_H
#define AGEC_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agec_conn agec_conn;
typedef struct agec_loader agec_loader; /* one load on one connection; opaque */

/** How rows reach the label tables. */
typedef enum agec_load_method {
    AGEC_LOAD_AUTO = 0,   /**< COPY, except on PGlite (INSERT) */
    AGEC_LOAD_INSERT = 1, /**< batched INSERT ... SELECT FROM age_unnest($1::agtype) */
    AGEC_LOAD_COPY = 2,   /**< COPY FROM STDIN; refused on PGlite (AGEC_ERR_INVALID_ARG) */
} agec_load_method;

/** Counters of a load; filled by the library, growable (`size` first, as
 *  agec_error). Use agec_loader_stats(), or declare one for
 *  agec_loader_finish() with AGEC_LOAD_STATS_INIT / agec_load_stats_init(). */
typedef struct agec_load_stats {
    size_t size;             /**< sizeof(agec_load_stats) of the caller's header */
    uint64_t rows;           /**< input rows taken: vertices + edges + skipped (rejected
                                  rows are counted in `rejected` only) */
    uint64_t vertices;       /**< vertices written (committed at finish) */
    uint64_t edges;          /**< edges written */
    uint64_t rejected;       /**< bad rows handed to the reject callback and skipped */
    uint64_t skipped;        /**< rows skipped by skip_rows */
    uint64_t bytes;          /**< bytes of property text taken */
    uint64_t committed;      /**< input rows committed: the position to resume from */
    double elapsed_s;        /**< seconds since open */
    double rows_per_s;       /**< rows / elapsed_s */
    agec_load_method method; /**< the method in use (never AUTO) */
    uint64_t input_bytes;    /**< bytes read from files by agec_loader_file (for a progress bar) */
    /** Input rows after `committed` whose COMMIT was sent but not answered
     *  (the connection was lost or timed out during COMMIT): they may or
     *  may not be in the graph. 0 otherwise. agec_load_resume_point()
     *  asks the server which. */
    uint64_t uncertain;
    /** The transaction id of that COMMIT (pg_current_xact_id), 0 = none. */
    uint64_t commit_xid;
} agec_load_stats;

/** Static initialiser of an agec_load_stats: size set, counters 0. */
/* clang-format off */
#define AGEC_LOAD_STATS_INIT { .size = sizeof(agec_load_stats) }
/* clang-format on */

/** Set *stats to AGEC_LOAD_STATS_INIT, for a struct of `size` bytes (use
 *  the macro, which passes the caller's sizeof). NULL is ignored. */
AGEC_EXPORT void agec_load_stats_init_sized(agec_load_stats *stats, size_t size);
#define agec_load_stats_init(stats) agec_load_stats_init_sized((stats), sizeof *(stats))

/** Progress callback: called after each batch written (sent, on the COPY
 *  path: its outcome is read with the next one) and at finish, from
 *  the loading thread. `stats` is valid during the call only. */
typedef void (*agec_load_progress_fn)(const agec_load_stats *stats, void *user);

/** Reject callback: a bad row (`err` says what, with source, line and
 *  column; `row` is the row as text: a CSV record written back as one CSV
 *  line, a JSON line, the properties given; NULL when there is no row to
 *  give, e.g. a file without a header, or an agec_loader_edge call
 *  without properties) is skipped and counted when this returns true;
 *  false fails the load with that error. Called from the loading thread. */
typedef bool (*agec_load_reject_fn)(const agec_error *err, const char *row, size_t len, void *user);

/** Options of a load. agec_load_opts_init() fills the defaults and
 *  struct_size; fields are only ever appended, and the library reads only
 *  struct_size bytes (a program built against an older header gets the
 *  defaults of the fields it does not know). */
/** Default rows per INSERT batch (agec_load_opts.batch_rows 0). */
#define AGEC_LOAD_BATCH_INSERT 5000
/** Default rows per COPY batch (agec_load_opts.batch_rows 0). */
#define AGEC_LOAD_BATCH_COPY 50000

typedef struct agec_load_opts {
    size_t struct_size;      /**< set by agec_load_opts_init(); do not change */
    agec_load_method method; /**< default AGEC_LOAD_AUTO */
    /** Rows per statement (also bounded by batch_bytes); 0 (the default) =
     *  by method: AGEC_LOAD_BATCH_INSERT (5,000) rows per INSERT,
     *  AGEC_LOAD_BATCH_COPY (50,000) per COPY; at most 1,000,000. */
    size_t batch_rows;
    uint64_t chunk_rows; /**< commit every this many input rows; 0 (default) = one transaction */
    uint64_t skip_rows;  /**< skip this many input rows first (resume); default 0 */
    agec_load_progress_fn progress; /**< default NULL */
    void *progress_user;
    agec_load_reject_fn reject; /**< NULL (default): the first bad row fails the load */
    void *reject_user;
    bool create_missing; /**< create a missing graph and labels; default true */
    /** ANALYZE the loaded label tables' id columns (row counts, id
     *  statistics; not the properties) at finish, so that the planner
     *  knows their new size right away (without it, queries right after a
     *  big load were planned for empty tables: 2x slower in the demo);
     *  default true */
    bool analyze;
    /** Every statement the loader sends (a batch: COPY or INSERT, a label's
     *  creation, the key index, ANALYZE, BEGIN and COMMIT) must finish
     *  within this many milliseconds, sending included (a COPY behind a
     *  dead peer does not block until TCP gives up). Past it the load fails
     *  with AGEC_ERR_TIMEOUT and rolls back: an INSERT is cancelled on the
     *  server; a COPY, stopped in mid-stream, leaves the connection marked
     *  broken (closed on release, which ends its transaction). 0 (default):
     *  no limit. */
    int timeout_ms;
    /** A label's batch is written when it holds batch_rows rows or this
     *  many bytes of row text, whichever comes first: large properties x
     *  batch_rows could otherwise pass PostgreSQL's 1 GB limit on one
     *  parameter (the INSERT path) and hold as much in memory. Default
     *  64 MiB; 1 KiB .. 512 MiB. */
    size_t batch_bytes;
    /** The key maps (key -> graph id of every keyed vertex, held in memory
     *  for the edges) may take at most this many bytes together, counting
     *  the peak while one grows; past it the load fails with
     *  AGEC_ERR_NO_MEMORY naming this option (instead of the machine
     *  running out of memory). 32 bytes per slot at <= 75% load plus the
     *  keys' text: 100 M keys of 10 bytes take about 5 GiB
     *  (docs/loading.md). Default 8 GiB; 0 = no limit. */
    uint64_t key_memory_max;
} agec_load_opts;

/** Fill *opts with the defaults. NULL is ignored. Thread-safe. */
AGEC_EXPORT void agec_load_opts_init(agec_load_opts *opts);

/**
 * Start a load into `graph` on a borrowed, idle connection: checks the
 * name, creates the graph when missing (create_missing), picks the method
 * (AUTO: version() decides) and opens the transaction. `opts` NULL = the
 * defaults. On success *out is a loader to finish and free with
 * agec_loader_free(); the connection stays the caller's (release it after
 * the free).
 * Errors: AGEC_ERR_INVALID_ARG (NULL, bad option, COPY asked of PGlite),
 * AGEC_ERR_NAME, AGEC_ERR_STATE (a transaction is open on conn),
 * AGEC_ERR_NOT_FOUND (no such graph and not create_missing),
 * AGEC_ERR_SERVER, AGEC_ERR_CONNECTION_LOST, AGEC_ERR_AGE_MISSING,
 * AGEC_ERR_NO_MEMORY.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_loader_open(agec_conn *conn, const char *graph,
                                                        const agec_load_opts *opts,
                                                        agec_loader **out, agec_error *err);

/**
 * Name the vertices of `label` by property `property` (letters, digits and
 * '_', a letter or '_' first): every vertex of the label must then have it,
 * unique within the label; edges can name them by it. Creates the label
 * when missing and the key index. Call before the label's first vertex.
 * Errors: AGEC_ERR_INVALID_ARG (also: an edge label), AGEC_ERR_NAME,
 * AGEC_ERR_STATE (the label already has rows in this load, or another
 * key): the load goes on; those of the server (the load is then rolled
 * back, as after a failed row).
 */
AGEC_EXPORT agec_status agec_loader_key(agec_loader *ld, const char *label, const char *property,
                                        agec_error *err);

/**
 * Set what error messages call the current input: `source` (e.g. a file
 * name; copied; NULL = "input") and the line of the next row (it counts up
 * by one per row added). The file readers below set it themselves.
 */
AGEC_EXPORT void agec_loader_source(agec_loader *ld, const char *source, uint64_t line);

/**
 * Add one vertex of `label` with properties `props`: an agtype or JSON map
 * as text (e.g. from agec_builder_finish), `len` bytes or SIZE_MAX for a
 * NUL-terminated string; NULL = no properties.
 * Errors: AGEC_ERR_INPUT (not a map, malformed, missing or duplicate key;
 * unless the reject callback takes it), AGEC_ERR_NAME, AGEC_ERR_STATE (the
 * loader failed earlier), and those of a batch written now or, on the COPY
 * path, of the one written before it (AGEC_ERR_SERVER,
 * AGEC_ERR_CONNECTION_LOST, ...). After any error other than a rejected row
 * the loader has rolled back (see chunk_rows) and accepts only free.
 */
AGEC_EXPORT agec_status agec_loader_vertex(agec_loader *ld, const char *label, const char *props,
                                           size_t len, agec_error *err);

/** An edge endpoint: a vertex of `label` whose key is `key` (the key's text:
 *  "42" or "Ada", see keys above), or, with label NULL, graph id `id`. */
typedef struct agec_endpoint {
    const char *label;
    const char *key;
    size_t key_len; /**< SIZE_MAX: key is NUL-terminated */
    int64_t id;
} agec_endpoint;

/* clang-format off */
#define AGEC_ENDPOINT_KEY(label, key) ((agec_endpoint){ (label), (key), SIZE_MAX, 0 })
#define AGEC_ENDPOINT_ID(id) ((agec_endpoint){ NULL, NULL, 0, (id) })
/* clang-format on */

/**
 * Add one edge of `label` from `start` to `end` with properties as for
 * agec_loader_vertex(). A key endpoint must name a vertex of a keyed label
 * loaded in this load or present before it.
 * Errors: as agec_loader_vertex(); AGEC_ERR_INPUT also for an endpoint that
 * does not exist.
 */
AGEC_EXPORT agec_status agec_loader_edge(agec_loader *ld, const char *label,
                                         const agec_endpoint *start, const agec_endpoint *end,
                                         const char *props, size_t len, agec_error *err);

/** Input formats of agec_loader_file(). */
typedef enum agec_load_format {
    AGEC_FORMAT_AUTO = 0,  /**< by extension: .jsonl/.ndjson/.json JSON Lines, else CSV */
    AGEC_FORMAT_CSV = 1,   /**< RFC 4180 CSV with a header row */
    AGEC_FORMAT_JSONL = 2, /**< one JSON object per line */
} agec_load_format;

/**
 * Load a file of vertices (`edges` false) or edges of `label`.
 *
 * CSV: the first row names the columns, `name` or `name:type` with type
 * string (default), int, float, numeric, bool, json (a list or map, or any
 * JSON value). An empty field is no property. Edge files name their
 * endpoints in two columns `:START_ID(Label)` and `:END_ID(Label)` (the
 * vertex's key value), or `:START_ID` / `:END_ID` (graph ids), as in
 * neo4j-admin's import files; every other column is a property.
 * JSON Lines: a vertex line is its properties map; an edge line is
 * {"start": E, "end": E, "properties": {...}} with E either
 * ["Label", key] or a graph id (an integer). Blank lines are skipped.
 * Errors name the file, line and column (AGEC_ERR_INPUT); AGEC_ERR_SYSTEM
 * when the file cannot be read; the rest as agec_loader_vertex().
 */
AGEC_EXPORT agec_status agec_loader_file(agec_loader *ld, bool edges, const char *label,
                                         const char *path, agec_load_format format,
                                         agec_error *err);

/**
 * Write what is buffered, build the key indexes, ANALYZE the loaded
 * tables (opts.analyze) and COMMIT. The label sequences already lie past
 * every loaded id. `stats` (may be NULL) gets the final counters (it is
 * filled on failure too). After finish only agec_loader_stats and free work.
 * Errors: those of the batches and of COMMIT; AGEC_ERR_STATE when the
 * loader failed earlier or was finished.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_loader_finish_sized(agec_loader *ld,
                                                                agec_load_stats *stats, size_t size,
                                                                agec_error *err);
/* agec_loader_finish passes the caller's sizeof(agec_load_stats), so the
 * struct's own `size` field is not read: it may be uninitialised. (The
 * function of that name, kept for programs built against an older header,
 * trusts stats->size only when it is a size some header had, else writes
 * the counters every version has.) */
AGEC_EXPORT agec_status(agec_loader_finish)(agec_loader *ld, agec_load_stats *stats,
                                            agec_error *err);
#define agec_loader_finish(ld, stats, err) \
    agec_loader_finish_sized((ld), (stats), sizeof(agec_load_stats), (err))

/** Counters so far, for a struct of `size` bytes; use agec_loader_stats(). */
AGEC_EXPORT void agec_loader_stats_sized(const agec_loader *ld, agec_load_stats *out, size_t size);
#define agec_loader_stats(ld, out) agec_loader_stats_sized((ld), (out), sizeof *(out))

/** Free the loader; an unfinished load is rolled back (the current chunk).
 *  NULL is ignored. The connection is not released. */
AGEC_EXPORT void agec_loader_free(agec_loader *ld);

/**
 * Where to resume a failed chunked load: `stats->committed`, unless the
 * last COMMIT's answer was lost (stats->uncertain > 0): then the server is
 * asked, on `conn` (a new connection to the same database), whether that
 * transaction committed (pg_xact_status): committed + uncertain if it did,
 * committed if not. Without this, resuming from `committed` after a lost
 * COMMIT acknowledgement loaded that chunk's edges and keyless vertices
 * twice.
 * Errors: AGEC_ERR_INVALID_ARG (NULL), AGEC_ERR_STATE (the transaction is
 * still in progress: ask again), those of the query.
 */
AGEC_EXPORT agec_status agec_load_resume_point(agec_conn *conn, const agec_load_stats *stats,
                                               uint64_t *resume, agec_error *err);

/** Static name of a method: "auto", "insert", "copy". */
AGEC_EXPORT const char *agec_load_method_name(agec_load_method m);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_LOAD_H */
