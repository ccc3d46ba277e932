/* Bump allocator in growing blocks (see arena.h). */
#include "agtype/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct agec__arena_block {
    agec__arena_block *next;
    size_t size;
    /* 16-aligned data follows */
} __attribute__((aligned(16)));

#define ARENA_MIN_BLOCK 1024u
#define ARENA_MAX_GROWTH ((size_t)64 << 20) /* stop doubling past 64 MB blocks */

void agec__arena_init(agec__arena *a, void *buf, size_t size)
{
    a->cur = buf;
    a->end = buf == NULL ? NULL : (char *)buf + size;
    a->blocks = NULL;
    a->next_size = size < ARENA_MIN_BLOCK / 2 ? ARENA_MIN_BLOCK : 2 * size;
}

void *agec__arena_alloc_slow(agec__arena *a, size_t n)
{
    size_t size = a->next_size;
    if (size < n)
        size = n;
    if (size > SIZE_MAX - sizeof(agec__arena_block))
        return NULL;
    agec__arena_block *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = a->blocks;
    b->size = size;
    a->blocks = b;
    a->cur = (char *)(b + 1) + n;
    a->end = (char *)(b + 1) + size;
    if (a->next_size < ARENA_MAX_GROWTH)
        a->next_size *= 2;
    return b + 1;
}

void agec__arena_free(agec__arena *a)
{
    agec__arena_block *b = a->blocks;
    while (b != NULL) {
        agec__arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->cur = a->end = NULL;
}
