/*
 * agec/cypher.h: Cypher and SQL execution on a borrowed connection, results,
 * and AGE's naming rules.
 *
 * Every statement is sent with bound parameters: Cypher parameters travel as
 * one agtype map bound to $1 of ag_catalog.cypher(), never spliced into the
 * query text. Statements are prepared once per connection and cached, in
 * the pool's default statement mode (AGEC_STMT_NAMED); in AGEC_STMT_UNNAMED
 * (behind a transaction-mode pooler) every path, graph and label helpers and
 * transactions included, sends unnamed statements instead.
 *
 * Thread-safety: a borrowed agec_conn is used by one thread at a time (see
 * agec/pool.h); results are independent objects that any one thread may read
 * and free.
 */
#ifndef AGEC_CYPHER_H
#define AGEC_CYPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agec_conn agec_conn;     /* a borrowed connection (agec/pool.h) */
typedef struct agec_result agec_result; /* rows of one statement */
typedef struct agec_value agec_value;   /* one agtype value (agec/agtype.h) */

/* ---- names --------------------------------------------------------------- */

/**
 * Check a graph name against AGE's rules: 3 to 63 bytes, at least two
 * characters, a Unicode ID_Start letter or '_' first, an ID_Continue
 * character last, and ID_Continue characters, '.' and '-' in between.
 * ID_Start/ID_Continue are Unicode's (15.0) for every script (Latin, Greek,
 * Cyrillic, Thai, Georgian, Ethiopic, CJK, Hangul, ...: the generated table
 * src/cypher/name_table.h); whitespace, invisible, punctuation and symbol
 * characters never are (docs/names.md). Every function that puts a graph
 * name into SQL calls this first.
 * Errors: AGEC_ERR_INVALID_ARG (NULL), AGEC_ERR_NAME (message says why and
 * at which byte). Thread-safe.
 */
AGEC_EXPORT agec_status agec_graph_name_check(const char *name, agec_error *err);

/**
 * Check a vertex or edge label name: 1 to 63 bytes, an ID_Start letter or
 * '_' first, then ID_Continue characters (letters, digits, combining marks
 * and '_' of every script). Errors and thread-safety as above.
 */
AGEC_EXPORT agec_status agec_label_name_check(const char *name, agec_error *err);

/**
 * Derive result column names from the query's first top-level RETURN
 * clause (the first branch of a UNION names the columns, as in SQL):
 * the alias after AS, else the item's text (white space collapsed), made
 * unique with a "_2", "_3" suffix and cut to 63 bytes. A query without
 * RETURN (CREATE/SET/DELETE/MERGE only) gets one column, "result", as AGE
 * requires. On success *names is a NULL-terminated array of *count strings
 * in one allocation: free it with agec_strings_free().
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_COLUMNS (RETURN *, an empty item,
 * an unterminated string/comment), AGEC_ERR_NO_MEMORY. Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cypher_return_columns(const char *query, char ***names,
                                                                  size_t *count, agec_error *err);

/** Free an array returned by agec_cypher_return_columns() or
 *  agec_graph_list(). NULL is accepted. */
AGEC_EXPORT void agec_strings_free(char **strings);

/* ---- execution options ---------------------------------------------------- */

/**
 * Options of one statement. Initialise with agec_query_opts_init(), which
 * also sets struct_size; fields are only ever appended, and the library
 * reads only struct_size bytes (a program built against an older header
 * gets the defaults of the fields it does not know). Passing NULL where an
 * options pointer is taken means all defaults. A struct not initialised
 * that way (struct_size 0) fails the call with AGEC_ERR_INVALID_ARG.
 */
typedef struct agec_query_opts {
    size_t struct_size; /**< set by agec_query_opts_init(); do not change */
    /** Result column names for Cypher (the AS (...) list). NULL: derive them
     *  from RETURN with agec_cypher_return_columns(), or use `ncolumns`
     *  generated names c1..cN when ncolumns > 0. Default NULL. */
    const char *const *columns;
    /** Number of entries in `columns`, or of generated names. Default 0. */
    size_t ncolumns;
    /** Statement timeout in ms; 0 = none. Past it the server-side statement
     *  is cancelled and the call fails with AGEC_ERR_TIMEOUT; the connection
     *  stays usable when the cancel is honoured within 150 ms; else the
     *  statement may still run: further statements on the connection fail
     *  with AGEC_ERR_STATE, and release cancels it again and waits for it
     *  (reset_timeout_ms), keeping the connection, or closes it. Default 0. */
    int timeout_ms;
    /** Prepare the statement and keep it in the connection's cache (up to
     *  AGEC_STMT_CACHE_MAX statements, least recently used evicted). false
     *  sends it unnamed each time. Ignored (always unnamed) when the pool's
     *  statement_mode is AGEC_STMT_UNNAMED. Default true. */
    bool prepare;
} agec_query_opts;

/** Prepared statements kept per connection. */
#define AGEC_STMT_CACHE_MAX 128

/** Fill *opts with the defaults above. Thread-safe. */
AGEC_EXPORT void agec_query_opts_init(agec_query_opts *opts);

/* ---- Cypher ----------------------------------------------------------------- */

/**
 * Run one Cypher query on `graph` and collect every row.
 *
 * Sends SELECT * FROM ag_catalog.cypher('<graph>', $tag$<query>$tag$, $1)
 * AS ("col" ag_catalog.agtype, ...), where the graph name was checked with
 * agec_graph_name_check(), the dollar-quote tag is chosen so it does not
 * occur in the query, and `params` (an agtype map as text, e.g. built with
 * the agtype builder, or NULL for none) is bound as $1. Each cell is an
 * agtype value: read it with agec_result_value(). When the columns come from
 * the RETURN clause (no opts->columns), the connection remembers the text
 * built for (graph, query, params given or not): 32 texts, least recently
 * used evicted, queries up to 4 KB; repeated calls skip the RETURN scan.
 *
 * On success *out is a result owned by the caller: free it with
 * agec_result_free(). On failure *out is NULL.
 * Errors: AGEC_ERR_INVALID_ARG (NULL conn/graph/query/out), AGEC_ERR_NAME,
 * AGEC_ERR_COLUMNS, AGEC_ERR_SERVER (sqlstate, message, detail, hint and
 * position are the server's, the position counted in characters of
 * `query` (0 when the server points outside it); common AGE errors get an
 * agec hint),
 * AGEC_ERR_AGE_MISSING (AGE not loaded/installed), AGEC_ERR_TIMEOUT,
 * AGEC_ERR_CONNECTION_LOST (the connection is then closed on release),
 * AGEC_ERR_STATE (a query is already running on conn), AGEC_ERR_NO_MEMORY.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cypher_exec(agec_conn *conn, const char *graph,
                                                        const char *query, const char *params,
                                                        const agec_query_opts *opts,
                                                        agec_result **out, agec_error *err);

/**
 * Row callback for the streaming calls. `row` holds exactly one row (row
 * index 0) and is valid only during the call; values read from it must be
 * copied to be kept. Return true to continue, false to stop: the remaining
 * rows are then read and discarded, and the call returns AGEC_OK.
 */
typedef bool (*agec_row_fn)(agec_result *row, void *user);

/**
 * Like agec_cypher_exec(), but hands rows one at a time to `fn` as they
 * arrive (libpq single-row mode), so memory stays bounded by one row
 * whatever the result size. Errors as agec_cypher_exec(); an error after
 * some rows were delivered is still returned.
 */
AGEC_EXPORT agec_status agec_cypher_stream(agec_conn *conn, const char *graph, const char *query,
                                           const char *params, const agec_query_opts *opts,
                                           agec_row_fn fn, void *user, agec_error *err);

/* ---- SQL -------------------------------------------------------------------- */

/** Most parameters one statement may bind (the protocol's 16-bit count). */
#define AGEC_MAX_PARAMS 65535

/**
 * Run SQL with text parameters $1..$n (values[i] NULL = SQL NULL) and
 * collect its rows. `opts` columns are ignored. Without parameters and
 * with prepare false (or in AGEC_STMT_UNNAMED mode) the text may hold
 * several statements separated by ';': they run as one implicit
 * transaction, and the result is the LAST statement's (its rows, command
 * tag and affected count); the first failure fails the call.
 * Errors as agec_cypher_exec() minus the Cypher-specific ones, and:
 * AGEC_ERR_INVALID_ARG for nparams > AGEC_MAX_PARAMS, for a statement that
 * is empty (white space or comments only), for arguments libpq refuses to
 * send, and for a parameter count that does not match the statement (the
 * server's SQLSTATE 08P01 is kept; the connection stays usable);
 * AGEC_ERR_STATE for COPY ... FROM STDIN / TO STDOUT (not supported here:
 * a COPY FROM STDIN is ended at once; the rows of a COPY TO STDOUT are read
 * and dropped until it ends or timeout_ms cancels it; the connection stays
 * usable; use the loader of agec/load.h, a server-side file, or libpq
 * through agec_conn_pgconn()). A cached prepared statement that no
 * longer fits its table after DDL (SQLSTATE 0A000 "cached plan must not
 * change result type", 42804, 26000) is forgotten and prepared again once
 * when no transaction is open; inside a transaction the error has aborted
 * it and is returned (the statement is forgotten, so the next transaction
 * prepares it afresh).
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_sql_exec(agec_conn *conn, const char *sql, int nparams,
                                                     const char *const *values,
                                                     const agec_query_opts *opts, agec_result **out,
                                                     agec_error *err);

/** Streaming variant of agec_sql_exec(); see agec_cypher_stream(). */
AGEC_EXPORT agec_status agec_sql_stream(agec_conn *conn, const char *sql, int nparams,
                                        const char *const *values, const agec_query_opts *opts,
                                        agec_row_fn fn, void *user, agec_error *err);

/* ---- results ---------------------------------------------------------------- */

/** Number of rows (0 for a NULL result). */
AGEC_EXPORT size_t agec_result_rows(const agec_result *res);

/** Number of columns (0 for a NULL result). */
AGEC_EXPORT size_t agec_result_columns(const agec_result *res);

/** Name of column `col`, owned by res; NULL when out of range. */
AGEC_EXPORT const char *agec_result_column_name(const agec_result *res, size_t col);

/** OIDs of the built-in PostgreSQL types agec reads specially (pg_type;
 *  fixed across releases). Types of extensions, agtype among them, have
 *  OIDs from AGEC_OID_FIRST_NORMAL up, which vary by database. */
enum {
    AGEC_OID_BOOL = 16,
    AGEC_OID_INT8 = 20,
    AGEC_OID_INT2 = 21,
    AGEC_OID_INT4 = 23,
    AGEC_OID_TEXT = 25,
    AGEC_OID_OID = 26,
    AGEC_OID_JSON = 114,
    AGEC_OID_FLOAT4 = 700,
    AGEC_OID_FLOAT8 = 701,
    AGEC_OID_NUMERIC = 1700,
    AGEC_OID_JSONB = 3802,
    AGEC_OID_FIRST_NORMAL = 16384,
};

/** PostgreSQL type OID of column `col` (e.g. 20 int8, 25 text, 16 bool,
 *  3802 jsonb; agtype's OID varies by database); 0 when out of range.
 *  Thread-safe (reads only). */
AGEC_EXPORT uint32_t agec_result_column_type(const agec_result *res, size_t col);

/** True when the cell is SQL NULL or out of range. */
AGEC_EXPORT bool agec_result_is_null(const agec_result *res, size_t row, size_t col);

/**
 * The cell's text as the server sent it (agtype text for Cypher columns),
 * owned by res; NULL for SQL NULL or out of range. *len (if not NULL) gets
 * its length in bytes.
 */
AGEC_EXPORT const char *agec_result_text(const agec_result *res, size_t row, size_t col,
                                         size_t *len);

/**
 * The cell as an agtype value. agtype, json, jsonb, other extension types
 * and the text types (text, varchar, char, name: agtype cast to text and
 * domains over text arrive as these) are parsed from their text as agtype;
 * any other built-in SQL type is converted by its column type: bool ->
 * boolean; int2, int4, int8, oid -> integer; float4, float8 -> float;
 * numeric -> integer, float or numeric as its text reads in agtype; every
 * other one (timestamptz, date, uuid, bytea, arrays, ...) -> a string
 * holding the server's text. Plain text is read with agec_result_text. The
 * value is made on first access and owned by res (valid until
 * agec_result_free()); SQL NULL gives *out = NULL and AGEC_OK. Not
 * thread-safe on one result (it caches).
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_RANGE (row/col), AGEC_ERR_PARSE
 * (position = byte offset in the cell), AGEC_ERR_NO_MEMORY.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_result_value(agec_result *res, size_t row, size_t col,
                                                         const agec_value **out, agec_error *err);

/*
 * Typed reads of SQL cells, from the server's text of the cell, whatever
 * the column type (check it with agec_result_column_type() when it
 * matters). Each fails with AGEC_ERR_INVALID_ARG (res or out NULL),
 * AGEC_ERR_RANGE (row/col out of range, or the number does not fit),
 * AGEC_ERR_TYPE (SQL NULL: test agec_result_is_null() first; or a text
 * that is not of the kind asked for). *out is written only on success.
 * Thread-safe on one result (nothing is cached).
 *
 *   PostgreSQL type               text             int64   double  bool
 *   int2, int4, int8, oid         agec_result_text yes     yes     -
 *   float4, float8                "                -       yes (NaN, +-Infinity)
 *   numeric                       "                whole   yes (rounded to the nearest)
 *   bool                          "t" / "f"        -       -       yes
 *   text, varchar, timestamptz,   as the server    only if the text reads as
 *   date, uuid, json, ...         writes it (*)    that kind, e.g. '42'::text
 *   agtype (Cypher columns)       agtype text      integer  float   true/false
 *
 * (*) timestamptz in the session's DateStyle and TimeZone; bytea as \x hex.
 */
/** The cell as a signed 64-bit integer: an optional '-' and decimal digits. */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_result_get_int64(const agec_result *res, size_t row,
                                                             size_t col, int64_t *out,
                                                             agec_error *err);
/** The cell as a double: a decimal number, NaN, Infinity or -Infinity. */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_result_get_double(const agec_result *res, size_t row,
                                                              size_t col, double *out,
                                                              agec_error *err);
/** The cell as a boolean: "t" or "f" (SQL bool), "true" or "false" (agtype). */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_result_get_bool(const agec_result *res, size_t row,
                                                            size_t col, bool *out, agec_error *err);

/** Rows affected by the (last) statement, as PQcmdTuples reads its command
 *  tag: INSERT, UPDATE, DELETE, MERGE, SELECT, CREATE TABLE AS, MOVE, FETCH,
 *  COPY; 0 for other statements. */
AGEC_EXPORT uint64_t agec_result_affected(const agec_result *res);

/** The (last) statement's command tag, e.g. "INSERT 0 5", "UPDATE 3",
 *  "SELECT 2", "CREATE TABLE"; owned by res. "" for a NULL result. */
AGEC_EXPORT const char *agec_result_command(const agec_result *res);

/** Free a result and every value read from it. NULL is accepted. */
AGEC_EXPORT void agec_result_free(agec_result *res);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_CYPHER_H */
