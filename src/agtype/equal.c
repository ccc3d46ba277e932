/* Deep equality of values, without recursion (trees may be a million deep). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agtype/agtype_internal.h"

typedef struct pair {
    const agec_value *a, *b;
} pair;

typedef struct worklist {
    pair *items;
    size_t n, cap;
    pair local[32];
    bool oom;
} worklist;

static void push(worklist *w, const agec_value *a, const agec_value *b)
{
    if (w->n == w->cap) {
        size_t ncap = w->cap * 2;
        pair *p =
            w->items == w->local ? malloc(ncap * sizeof *p) : realloc(w->items, ncap * sizeof *p);
        if (p == NULL) {
            w->oom = true;
            return;
        }
        if (w->items == w->local)
            memcpy(p, w->local, sizeof w->local);
        w->items = p;
        w->cap = ncap;
    }
    w->items[w->n++] = (pair){ a, b };
}

/* Compare everything but children; queue the child pairs. */
static bool shallow_equal(worklist *w, const agec_value *a, const agec_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case AGEC_TYPE_NULL:
        return true;
    case AGEC_TYPE_BOOL:
    case AGEC_TYPE_INT:
        return a->u.i == b->u.i;
    case AGEC_TYPE_FLOAT:
        if (isnan(a->u.d) || isnan(b->u.d))
            return isnan(a->u.d) && isnan(b->u.d);
        return a->u.d == b->u.d && signbit(a->u.d) == signbit(b->u.d);
    case AGEC_TYPE_NUMERIC:
    case AGEC_TYPE_STRING:
        return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
    case AGEC_TYPE_ARRAY:
    case AGEC_TYPE_PATH:
        if (a->n != b->n)
            return false;
        for (uint32_t i = 0; i < a->n; i++)
            push(w, &a->u.kids[i], &b->u.kids[i]);
        return true;
    default: /* objects, vertices, edges: same keys, any order */
        if (a->n != b->n)
            return false;
        for (uint32_t i = 0; i < a->n; i++) {
            const agec_value *k = &a->u.kids[2 * i];
            const agec_value *bv = agec__object_find(b, k->u.s, k->n);
            if (bv == NULL)
                return false;
            /* with duplicate keys, compare what a lookup in a would find */
            push(w, agec__object_find(a, k->u.s, k->n), bv);
        }
        return true;
    }
}

bool agec_value_equal(const agec_value *a, const agec_value *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    worklist w;
    w.items = w.local;
    w.n = 0;
    w.cap = sizeof w.local / sizeof w.local[0];
    w.oom = false;
    push(&w, a, b);
    bool equal = true;
    while (equal && w.n > 0) {
        pair p = w.items[--w.n];
        if (p.a != p.b)
            equal = shallow_equal(&w, p.a, p.b);
        if (w.oom)
            equal = false; /* cannot tell: report "not shown equal" */
    }
    if (w.items != w.local)
        free(w.items);
    return equal;
}
