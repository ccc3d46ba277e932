/* Growable byte buffer (see buf.h). */
#include "agtype/buf.h"

#include <stdint.h>
#include <stdlib.h>

bool agec__buf_grow(agec__buf *b, size_t n)
{
    if (b->failed)
        return false;
    size_t need = b->len + n;
    if (need < b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

char *agec__buf_take(agec__buf *b, size_t *len)
{
    agec__buf_putc(b, '\0');
    if (b->failed) {
        agec__buf_free(b);
        return NULL;
    }
    char *p = b->data;
    if (len != NULL)
        *len = b->len - 1;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void agec__buf_free(agec__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
