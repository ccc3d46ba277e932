/*
 * A bump allocator: memory handed out in growing blocks and freed all at
 * once. One arena per parsed document, so freeing a tree is one call and
 * parsing never mallocs per node.
 */
#ifndef AGEC_AGTYPE_ARENA_H
#define AGEC_AGTYPE_ARENA_H

#include <stddef.h>

typedef struct agec__arena_block agec__arena_block;

typedef struct agec__arena {
    char *cur;                 /* next free byte of the current block */
    char *end;                 /* end of the current block */
    agec__arena_block *blocks; /* every block, newest first */
    size_t next_size;          /* size of the next block (grows geometrically) */
} agec__arena;

/* An arena that first hands out buf[0..size) (16-aligned, owned by the
 * caller, may be NULL with size 0), then blocks of growing size. */
void agec__arena_init(agec__arena *a, void *buf, size_t size);

/* n bytes aligned to 16 (n > 0), or NULL when out of memory. */
void *agec__arena_alloc_slow(agec__arena *a, size_t n);

static inline void *agec__arena_alloc(agec__arena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
    return agec__arena_alloc_slow(a, n);
}

/* Free every block; the arena is empty afterwards. */
void agec__arena_free(agec__arena *a);

#endif
