/*
 * agec/agtype.h: Apache AGE's agtype values: parse, read, compare, write, build.
 *
 * agtype is the text the server sends for every Cypher result: JSON extended
 * with int64 integers, NaN/Infinity floats, exact `::numeric` decimals and
 * annotated graph elements (`{...}::vertex`, `{...}::edge`, `[...]::path`).
 *
 *   agec_value *v;
 *   if (agec_agtype_parse(text, len, 0, &v, &err) == AGEC_OK) {
 *       const agec_value *name = agec_value_get(agec_element_properties(v), "name", 4);
 *       ...
 *       agec_value_free(v);
 *   }
 *
 * Ownership: a parse returns one root; everything reachable from it (child
 * values, strings, keys) lives in one arena owned by the root and is freed by
 * agec_value_free(root). Pointers returned by accessors stay valid until then.
 * Text returned by the writers and the builder is malloc'd; free it with
 * agec_free().
 *
 * Thread-safety: a parsed tree is immutable, so any number of threads may read
 * it at once; freeing it must not race with readers. A builder must be used
 * by one thread at a time. Nothing in this module has global mutable state.
 *
 * NULL handling: every accessor accepts NULL for the value and then behaves
 * as for a missing value (type AGEC_TYPE_NULL, length 0, NULL child, or
 * AGEC_ERR_INVALID_ARG from functions that return a status). Every `err` may
 * be NULL.
 */
#ifndef AGEC_AGTYPE_H
#define AGEC_AGTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"
#include "agec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One agtype value (a node of a parsed tree). Opaque. */
typedef struct agec_value agec_value;

/** A writer of agtype text for parameters. Opaque. */
typedef struct agec_builder agec_builder;

/** Kind of an agec_value. Values are stable (appended only). */
typedef enum agec_type {
    AGEC_TYPE_NULL = 0,    /**< `null` (also what a NULL pointer reports) */
    AGEC_TYPE_BOOL = 1,    /**< `true` / `false` */
    AGEC_TYPE_INT = 2,     /**< int64 integer (also `::integer`) */
    AGEC_TYPE_FLOAT = 3,   /**< double, including NaN and +-Infinity (also `::float`) */
    AGEC_TYPE_NUMERIC = 4, /**< `::numeric`: exact decimal kept as its text */
    AGEC_TYPE_STRING = 5,  /**< UTF-8 string; may contain NUL bytes */
    AGEC_TYPE_ARRAY = 6,   /**< list of values */
    AGEC_TYPE_OBJECT = 7,  /**< map of string keys to values */
    AGEC_TYPE_VERTEX = 8,  /**< `{id, label, properties}::vertex`; also an object */
    AGEC_TYPE_EDGE = 9,    /**< `{id, label, end_id, start_id, properties}::edge`; also an object */
    AGEC_TYPE_PATH = 10,   /**< `[vertex, edge, vertex, ...]::path`; also an array */
} agec_type;

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

/** agec_agtype_parse flag: accept strict JSON (RFC 8259) only: annotations
 *  (`::vertex`, `::numeric`, ...) and NaN/Infinity are rejected. For values
 *  typed by people, e.g. the CLI's `--param NAME=JSON`. */
#define AGEC_PARSE_JSON 0x1u

/**
 * Parse one agtype value (`value annotation?`, surrounded by optional JSON
 * whitespace) from text[0..len). The text need not be NUL-terminated and is
 * never read past len; it is copied, so it may be freed right after the call.
 *
 * Grammar accepted: JSON values; integers are int64; floats are exponents or
 * fractions, or `NaN`, `Infinity`, `-Infinity` (any letter case, as the
 * server accepts); strings with every JSON escape including `\uXXXX` and
 * surrogate pairs (`\u0000` gives a NUL byte); raw bytes must be valid UTF-8.
 * Annotations (case-insensitive): `::numeric` on a number keeps its exact
 * text (NaN/Infinity spellings normalised); `::float` on a number makes a
 * float; `::integer` on an integer; `::vertex` on an object with exactly
 * id (int), label (string), properties (object); `::edge` on an object with
 * exactly id, label, start_id, end_id (ints) and properties; `::path` on an
 * array of odd length alternating vertex, edge, vertex. Annotations may
 * appear on values nested anywhere. Nesting depth is limited only by memory
 * (no recursion: a million nested brackets are fine). Floats are converted
 * with correct rounding; an integer outside int64 or a float outside the
 * double range is not rounded but rejected (AGEC_ERR_RANGE). Duplicate
 * object keys are kept; lookups find the last one (as the server does).
 *
 * flags: 0 or AGEC_PARSE_JSON.
 * On success *out is a new root that the caller frees with agec_value_free().
 * On failure *out is NULL and the status is:
 *   AGEC_ERR_INVALID_ARG  out is NULL, or text is NULL with len > 0, or
 *                         unknown flags;
 *   AGEC_ERR_PARSE        malformed text (including invalid UTF-8, lone
 *                         surrogates, annotations on the wrong kind of value);
 *   AGEC_ERR_RANGE        an integer outside int64, a float outside double,
 *                         or a string/container longer than 2^32-1;
 *   AGEC_ERR_NO_MEMORY.
 * For PARSE and RANGE errors err->position is the 0-based byte offset of the
 * offending byte (clamped to INT_MAX) and err->message says what was
 * expected and repeats the offset. Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_agtype_parse(const char *text, size_t len,
                                                         unsigned flags, agec_value **out,
                                                         agec_error *err);

/**
 * Free a tree returned by agec_agtype_parse(): the root and everything in it,
 * in one call. NULL is ignored; so is a value that is not a root (a child of
 * a tree), which is freed with its root.
 */
AGEC_EXPORT void agec_value_free(agec_value *root);

/** Free text returned by this library (writers, builder). NULL is ignored. */
AGEC_EXPORT void agec_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Reading values                                                            */
/* ------------------------------------------------------------------------ */

/** Type of v; AGEC_TYPE_NULL when v is NULL. */
AGEC_EXPORT agec_type agec_value_type(const agec_value *v);

/** Static lower-case name of a type ("int", "vertex", ...); "unknown" otherwise. */
AGEC_EXPORT const char *agec_type_name(agec_type type);

/**
 * Read a boolean into *out.
 * Errors: AGEC_ERR_INVALID_ARG (v or out NULL), AGEC_ERR_TYPE (not a bool).
 */
AGEC_EXPORT agec_status agec_value_get_bool(const agec_value *v, bool *out, agec_error *err);

/**
 * Read an integer into *out. AGEC_TYPE_INT always succeeds; AGEC_TYPE_NUMERIC
 * succeeds when its value is an integer within int64 (see
 * agec_numeric_to_int64). Floats are refused (no silent truncation).
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE (other types), AGEC_ERR_RANGE
 * (numeric not an exact int64). *out is unchanged on error.
 */
AGEC_EXPORT agec_status agec_value_get_int64(const agec_value *v, int64_t *out, agec_error *err);

/**
 * Read a number as a double into *out: floats exactly; integers converted
 * (rounded to nearest when beyond 2^53); numerics correctly rounded (see
 * agec_numeric_to_double).
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE (not a number), AGEC_ERR_RANGE
 * (numeric beyond the double range).
 */
AGEC_EXPORT agec_status agec_value_get_double(const agec_value *v, double *out, agec_error *err);

/**
 * Read a string: *ptr points to its UTF-8 bytes (owned by the tree, followed
 * by a NUL terminator that is not counted), *len gets the byte length. The
 * string may itself contain NUL bytes, so use *len. len may be NULL.
 * Errors: AGEC_ERR_INVALID_ARG (v or ptr NULL), AGEC_ERR_TYPE (not a string).
 */
AGEC_EXPORT agec_status agec_value_get_string(const agec_value *v, const char **ptr, size_t *len,
                                              agec_error *err);

/**
 * Read the exact decimal text of a `::numeric` (e.g. "12345678901234600000",
 * "0.10", "NaN", "-Infinity"): NUL-terminated, owned by the tree; len may be
 * NULL. Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE (not a numeric).
 */
AGEC_EXPORT agec_status agec_value_get_numeric(const agec_value *v, const char **ptr, size_t *len,
                                               agec_error *err);

/** Number of elements of an array or path, or of entries of an object, vertex
 *  or edge; 0 for scalars and NULL. */
AGEC_EXPORT size_t agec_value_length(const agec_value *v);

/** Element i of an array or path (owned by the tree), or NULL when v is not
 *  one or i >= length. */
AGEC_EXPORT const agec_value *agec_value_at(const agec_value *v, size_t i);

/**
 * Value of key[0..keylen) in an object, vertex or edge (owned by the tree), or
 * NULL when v is not one or the key is absent. The key need not be
 * NUL-terminated and may contain NUL bytes. Keys in the server's order
 * (shorter first, then bytewise) are found by binary search, other objects by
 * a linear scan from the end (so the last duplicate wins). Thread-safe.
 */
AGEC_EXPORT const agec_value *agec_value_get(const agec_value *v, const char *key, size_t keylen);

/** agec_value_get() with a NUL-terminated key: agec_value_get(v, key,
 *  strlen(key)); NULL also when key is NULL. Thread-safe. */
AGEC_EXPORT const agec_value *agec_value_get_key(const agec_value *v, const char *key);

/**
 * Entry i of an object, vertex or edge in document order: returns its value
 * and sets *key / *keylen (each may be NULL) to its key (NUL-terminated,
 * owned by the tree). Returns NULL (and leaves *key, *keylen alone) when v is
 * not an object or i >= length.
 */
AGEC_EXPORT const agec_value *agec_value_entry(const agec_value *v, size_t i, const char **key,
                                               size_t *keylen);

/**
 * Deep equality. Scalars compare by type and value: ints exactly, floats by
 * value with NaN equal to NaN and 0.0 different from -0.0, numerics by
 * their text, strings bytewise. Arrays/paths compare element by element;
 * objects/vertices/edges by their sets of keys and values, in any order. An
 * int never equals a float or numeric. Two NULL pointers are equal.
 * Non-recursive (its work list is on the heap: if that allocation fails the
 * answer is false); thread-safe.
 */
AGEC_EXPORT bool agec_value_equal(const agec_value *a, const agec_value *b);

/* Graph elements. A vertex or edge is also an object, a path also an array. */

/** Graph id of a vertex or edge. Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE. */
AGEC_EXPORT agec_status agec_element_id(const agec_value *v, int64_t *out, agec_error *err);

/** Label of a vertex or edge (NUL-terminated, owned by the tree; len may be
 *  NULL). Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE. */
AGEC_EXPORT agec_status agec_element_label(const agec_value *v, const char **ptr, size_t *len,
                                           agec_error *err);

/** Properties object of a vertex or edge, or NULL when v is not one. */
AGEC_EXPORT const agec_value *agec_element_properties(const agec_value *v);

/** Property `name` (NUL-terminated) of a vertex or edge: the value in
 *  agec_element_properties(v), or NULL when v is not a vertex or edge, name
 *  is NULL or the property is absent. Thread-safe. */
AGEC_EXPORT const agec_value *agec_element_property(const agec_value *v, const char *name);

/** Start vertex id of an edge. Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE. */
AGEC_EXPORT agec_status agec_edge_start_id(const agec_value *e, int64_t *out, agec_error *err);

/** End vertex id of an edge. Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_TYPE. */
AGEC_EXPORT agec_status agec_edge_end_id(const agec_value *e, int64_t *out, agec_error *err);

/** Number of edges of a path (Cypher's length(p)); 0 when p is not a path. */
AGEC_EXPORT size_t agec_path_length(const agec_value *p);

/** Vertex i (0..length) of a path, or NULL when out of range / not a path. */
AGEC_EXPORT const agec_value *agec_path_vertex(const agec_value *p, size_t i);

/** Edge i (0..length-1) of a path, or NULL when out of range / not a path. */
AGEC_EXPORT const agec_value *agec_path_edge(const agec_value *p, size_t i);

/* ------------------------------------------------------------------------ */
/* Numeric text                                                              */
/* ------------------------------------------------------------------------ */

/**
 * Convert decimal text (a JSON number, or NaN / Infinity / -Infinity in any
 * case) to the nearest double (correctly rounded, independent of the C
 * locale). text need not be NUL-terminated.
 * Errors: AGEC_ERR_INVALID_ARG (NULL pointers, or not decimal text),
 * AGEC_ERR_RANGE (finite text beyond the double range). Thread-safe.
 */
AGEC_EXPORT agec_status agec_numeric_to_double(const char *text, size_t len, double *out,
                                               agec_error *err);

/**
 * Convert decimal text to int64 only when exact: "42", "-7.000", "1.5e3" work;
 * "1.5", "NaN", "9223372036854775808" fail with AGEC_ERR_RANGE.
 * Errors: AGEC_ERR_INVALID_ARG (NULL pointers, not decimal text),
 * AGEC_ERR_RANGE. Thread-safe.
 */
AGEC_EXPORT agec_status agec_numeric_to_int64(const char *text, size_t len, int64_t *out,
                                              agec_error *err);

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Write v (any value, including children of a tree) as agtype text, exactly
 * as the server formats it: `", "` and `": "` separators, annotations on
 * numerics and graph elements, floats in their shortest round-trip form
 * (whole values keep `.0`; NaN, Infinity, -Infinity), strings escaped like
 * the server (`\"` `\\` `\b` `\f` `\n` `\r` `\t`, other bytes < 0x20 as
 * `\u00XX`, UTF-8 raw). parse(write(v)) is equal to v.
 * *out gets a NUL-terminated malloc'd string (free with agec_free), *len
 * (may be NULL) its length. Errors: AGEC_ERR_INVALID_ARG (v or out NULL),
 * AGEC_ERR_NO_MEMORY. Non-recursive; thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_value_to_agtype(const agec_value *v, char **out,
                                                            size_t *len, agec_error *err);

/** agec_value_to_json flags: non-finite floats and numerics (NaN, Infinity,
 *  -Infinity) become the strings "NaN", "Infinity", "-Infinity" (default). */
#define AGEC_JSON_NONFINITE_STRING 0x0u
/** ... become `null`. */
#define AGEC_JSON_NONFINITE_NULL 0x1u
/** ... make the call fail with AGEC_ERR_RANGE. */
#define AGEC_JSON_NONFINITE_ERROR 0x2u
/** Write `,` and `:` without the following space. */
#define AGEC_JSON_COMPACT 0x4u

/**
 * Write v as standard JSON (RFC 8259): vertices and edges become objects of
 * their fields (id, label, [end_id, start_id,] properties), paths arrays,
 * numerics JSON numbers with their exact text (non-finite ones follow the
 * NaN policy), floats shortest round-trip. flags: one NONFINITE policy, or'ed
 * with AGEC_JSON_COMPACT. *out / *len as for agec_value_to_agtype.
 * Errors: AGEC_ERR_INVALID_ARG (NULL v/out, unknown flags), AGEC_ERR_RANGE
 * (non-finite number with AGEC_JSON_NONFINITE_ERROR), AGEC_ERR_NO_MEMORY.
 * Non-recursive; thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_value_to_json(const agec_value *v, unsigned flags,
                                                          char **out, size_t *len, agec_error *err);

/**
 * Turn a JSON object typed by a person (the CLI's `--params OBJECT`) into the
 * agtype map text that agec sends as Cypher's `$1` parameter. The JSON is
 * parsed strictly (AGEC_PARSE_JSON), so `1` stays an integer and `1.0` a
 * float. *out / *len as for agec_value_to_agtype.
 * Errors: AGEC_ERR_INVALID_ARG, AGEC_ERR_PARSE / AGEC_ERR_RANGE (as
 * agec_agtype_parse, with err->position), AGEC_ERR_TYPE (not an object),
 * AGEC_ERR_NO_MEMORY. Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_agtype_params_from_json(const char *json, size_t len,
                                                                    char **out, size_t *outlen,
                                                                    agec_error *err);

/* ------------------------------------------------------------------------ */
/* Builder: agtype text for parameters                                       */
/* ------------------------------------------------------------------------ */
/*
 *   agec_builder *b;
 *   agec_builder_new(&b, &err);
 *   agec_builder_begin_map(b, &err);
 *   agec_builder_key(b, "name", 4, &err);  agec_builder_string(b, "Ada", 3, &err);
 *   agec_builder_key(b, "born", 4, &err);  agec_builder_int64(b, 1815, &err);
 *   agec_builder_end_map(b, &err);
 *   agec_builder_finish(b, &text, &len, &err);   // {"name": "Ada", "born": 1815}
 *
 * The builder writes exactly one value (usually a map). Inside a map every
 * value must be preceded by agec_builder_key. Errors are sticky: after the
 * first failure every call (finish included) returns the same status and
 * message, so a sequence of calls can be checked once at the end.
 * Keys are written in the order given (the server sorts them itself).
 * One thread at a time per builder.
 */

/** Create an empty builder. Errors: AGEC_ERR_INVALID_ARG (out NULL),
 *  AGEC_ERR_NO_MEMORY. Free with agec_builder_free. */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_builder_new(agec_builder **out, agec_error *err);

/** Free a builder and any unfinished text. NULL is ignored. */
AGEC_EXPORT void agec_builder_free(agec_builder *b);

/** Open a map / list as the next value. Errors: AGEC_ERR_INVALID_ARG (b NULL),
 *  AGEC_ERR_STATE (a value is not allowed here: missing key in a map, or a
 *  second top-level value), AGEC_ERR_NO_MEMORY. */
AGEC_EXPORT agec_status agec_builder_begin_map(agec_builder *b, agec_error *err);
AGEC_EXPORT agec_status agec_builder_begin_list(agec_builder *b, agec_error *err);

/** Close the innermost map / list. Errors: AGEC_ERR_INVALID_ARG,
 *  AGEC_ERR_STATE (innermost open container is not of that kind, or a key
 *  has no value yet). */
AGEC_EXPORT agec_status agec_builder_end_map(agec_builder *b, agec_error *err);
AGEC_EXPORT agec_status agec_builder_end_list(agec_builder *b, agec_error *err);

/** Next key of the innermost map: key[0..len) must be valid UTF-8 (may hold
 *  NUL bytes). Errors: AGEC_ERR_INVALID_ARG (NULL b, NULL key with len > 0,
 *  invalid UTF-8), AGEC_ERR_STATE (not in a map, or the previous key has no
 *  value), AGEC_ERR_NO_MEMORY. */
AGEC_EXPORT agec_status agec_builder_key(agec_builder *b, const char *key, size_t len,
                                         agec_error *err);

/* Scalar values. Each fails with AGEC_ERR_INVALID_ARG (b NULL, or as noted),
 * AGEC_ERR_STATE (value not allowed here, as for begin_map) or
 * AGEC_ERR_NO_MEMORY. */
AGEC_EXPORT agec_status agec_builder_null(agec_builder *b, agec_error *err);
AGEC_EXPORT agec_status agec_builder_bool(agec_builder *b, bool value, agec_error *err);
/** Exact decimal integer. */
AGEC_EXPORT agec_status agec_builder_int64(agec_builder *b, int64_t value, agec_error *err);
/** Shortest round-trip float; whole values keep `.0`; NaN, Infinity, -Infinity
 *  spelled as AGE reads them. */
AGEC_EXPORT agec_status agec_builder_double(agec_builder *b, double value, agec_error *err);
/** String s[0..len): must be valid UTF-8 (else AGEC_ERR_INVALID_ARG). NUL bytes
 *  are written as \u0000, which the server refuses in parameters (22P05). */
AGEC_EXPORT agec_status agec_builder_string(agec_builder *b, const char *s, size_t len,
                                            agec_error *err);
/** Exact decimal text (a JSON number or NaN/Infinity/-Infinity) written as
 *  `text::numeric`. Other text: AGEC_ERR_INVALID_ARG. */
AGEC_EXPORT agec_status agec_builder_numeric(agec_builder *b, const char *text, size_t len,
                                             agec_error *err);
/** Any parsed value (with its whole subtree), as agec_value_to_agtype writes it.
 *  v NULL: AGEC_ERR_INVALID_ARG. */
AGEC_EXPORT agec_status agec_builder_value(agec_builder *b, const agec_value *v, agec_error *err);

/**
 * Hand out the finished text: *out is NUL-terminated and malloc'd (free with
 * agec_free), *len (may be NULL) its length. The builder is then empty again
 * and may build another value.
 * Errors: AGEC_ERR_INVALID_ARG (b or out NULL), AGEC_ERR_STATE (no value, or
 * a map/list still open), or the sticky error of an earlier call.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_builder_finish(agec_builder *b, char **out, size_t *len,
                                                           agec_error *err);

/* ------------------------------------------------------------------------ */
/* A parameter map in one call                                               */

/** Kinds of value in agec_params_build()'s argument list. */
typedef enum agec_param_kind {
    AGEC_PARAM_END = 0, /* internal: the list's end (agec_params adds it) */
    AGEC_PARAM_NULL = 1,
    AGEC_PARAM_BOOL = 2,   /* an int, 0 or not */
    AGEC_PARAM_INT64 = 3,  /* an int64_t */
    AGEC_PARAM_DOUBLE = 4, /* a double */
    AGEC_PARAM_STRING = 5, /* a NUL-terminated UTF-8 const char * (NULL: null) */
    AGEC_PARAM_AGTYPE = 6, /* agtype or JSON text (const char *), e.g. a list */
} agec_param_kind;

/* One key and value each; the casts make the argument list type-safe. */
#define AGEC_P_NULL(key) (const char *)(key), (int)AGEC_PARAM_NULL
#define AGEC_P_BOOL(key, v) (const char *)(key), (int)AGEC_PARAM_BOOL, (int)((v) != 0)
#define AGEC_P_INT(key, v) (const char *)(key), (int)AGEC_PARAM_INT64, (int64_t)(v)
#define AGEC_P_DOUBLE(key, v) (const char *)(key), (int)AGEC_PARAM_DOUBLE, (double)(v)
#define AGEC_P_STR(key, v) (const char *)(key), (int)AGEC_PARAM_STRING, (const char *)(v)
#define AGEC_P_AGTYPE(key, v) (const char *)(key), (int)AGEC_PARAM_AGTYPE, (const char *)(v)

/**
 * Build a Cypher parameter map in one call, for the common case of a flat
 * map of scalars:
 *
 *     char *params = NULL;
 *     agec_status st = agec_params(&params, &err, AGEC_P_STR("name", "Ada"),
 *                                  AGEC_P_INT("born", 1815));
 *     ... agec_cypher_exec(conn, "g", "CREATE (:P {name: $name, born: $born})",
 *                          params, NULL, &res, &err) ...
 *     agec_free(params);
 *
 * Arguments after err: (key, kind, value) triples written with the AGEC_P_
 * macros, ended by a NULL key (the agec_params macro adds it). Keys are
 * NUL-terminated UTF-8; AGEC_P_AGTYPE takes agtype text (JSON is agtype: a list, a
 * nested map) and inserts it after parsing it. On success *out is the
 * map's agtype text (free with agec_free). Errors: AGEC_ERR_INVALID_ARG
 * (out NULL, an unknown kind, invalid UTF-8), AGEC_ERR_PARSE
 * (AGEC_P_AGTYPE text), AGEC_ERR_NO_MEMORY; *out is then NULL. Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_params_build(char **out, agec_error *err, ...);
#define agec_params(out, err, ...) agec_params_build((out), (err), __VA_ARGS__, (const char *)0)

#ifdef __cplusplus
}
#endif

#endif /* AGEC_AGTYPE_H */
