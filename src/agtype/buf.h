/*
 * A growable byte buffer for the writers and the builder. Allocation failure
 * is remembered (`failed`) instead of being checked at every append, so
 * writers check once at the end.
 */
#ifndef AGEC_AGTYPE_BUF_H
#define AGEC_AGTYPE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct agec__buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; contents are incomplete */
} agec__buf;

/* clang-format off */
#define AGEC__BUF_INIT { NULL, 0, 0, false }
/* clang-format on */

/* Make room for n more bytes; false (and `failed` set) when out of memory. */
bool agec__buf_grow(agec__buf *b, size_t n);

static inline bool agec__buf_reserve(agec__buf *b, size_t n)
{
    return b->cap - b->len >= n || agec__buf_grow(b, n);
}

static inline void agec__buf_put(agec__buf *b, const void *p, size_t n)
{
    if (agec__buf_reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static inline void agec__buf_putc(agec__buf *b, char c)
{
    if (agec__buf_reserve(b, 1))
        b->data[b->len++] = c;
}

#define agec__buf_puts(b, lit) agec__buf_put((b), (lit), sizeof(lit) - 1)

/* Append a NUL (not counted in len) and hand the bytes to the caller, who
 * frees them with free(); the buffer is empty afterwards. NULL when out of
 * memory (the buffer is then freed). */
char *agec__buf_take(agec__buf *b, size_t *len);

void agec__buf_free(agec__buf *b);

#endif
