/*
 * Internal layout of agtype values, shared by the files of src/agtype.
 *
 * A parsed tree is one "document": a header holding the root value, a copy of
 * the input text (strings and numeric text point into it, unescaped in place
 * and NUL-terminated) and an arena holding every child array. A value is 16
 * bytes; containers point to a contiguous array of children (objects: key,
 * value, key, value, ...), so a tree costs one allocation per arena block,
 * never one per node.
 */
#ifndef AGEC_AGTYPE_INTERNAL_H
#define AGEC_AGTYPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agec/agtype.h"
#include "agtype/arena.h"

/* agec_value.flags */
#define AGEC__VF_ROOT 0x1u   /* the root of a document: agec_value_free accepts it */
#define AGEC__VF_SORTED 0x2u /* object keys strictly in jsonb order (binary search) */

struct agec_value {
    uint8_t type;  /* agec_type */
    uint8_t flags; /* AGEC__VF_* */
    uint16_t reserved;
    /* string / numeric: byte length; array / path: elements; object / vertex /
     * edge: entries (the child array holds twice as many values). */
    uint32_t n;
    union {
        int64_t i;        /* INT; BOOL as 0/1 */
        double d;         /* FLOAT */
        const char *s;    /* STRING, NUMERIC: NUL-terminated, n bytes */
        agec_value *kids; /* containers */
    } u;
};

/* The allocation behind a root. `root` must stay the first member so that
 * agec_value_free can get from the root to its document. */
typedef struct agec__doc {
    agec_value root;
    uint32_t magic;
    agec__arena arena;
} agec__doc;

#define AGEC__DOC_MAGIC 0x61677476u /* "agtv" */

static inline int agec__is_object(const agec_value *v)
{
    return v->type == AGEC_TYPE_OBJECT || v->type == AGEC_TYPE_VERTEX || v->type == AGEC_TYPE_EDGE;
}

static inline int agec__is_array(const agec_value *v)
{
    return v->type == AGEC_TYPE_ARRAY || v->type == AGEC_TYPE_PATH;
}

/* jsonb key order: shorter first, then bytewise. <0, 0, >0 like memcmp. */
int agec__key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Key lookup with no NULL or type checks (v is an object kind). */
const agec_value *agec__object_find(const agec_value *v, const char *key, size_t keylen);

#endif
