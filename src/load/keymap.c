/* The loader's key -> graph id map. */
#include "load/keymap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    return h == 0 ? 1 : h;
}

static agec__keymap_entry *slot_of(const agec__keymap *m, uint64_t h, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        agec__keymap_entry *e = &m->slots[i];
        if (e->hash == 0 ||
            (e->hash == h && e->len == len && memcmp(m->arena + e->off, key, len) == 0))
            return e;
    }
}

bool agec__keymap_find(const agec__keymap *m, const char *key, size_t len, int64_t *id)
{
    if (m->cap == 0)
        return false;
    agec__keymap_entry *e = slot_of(m, hash_bytes(key, len), key, len);
    if (e->hash == 0)
        return false;
    *id = e->id;
    return true;
}

static bool rehash(agec__keymap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    agec__keymap_entry *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        agec__keymap_entry *e = &m->slots[i];
        if (e->hash == 0)
            continue;
        size_t j = (size_t)e->hash & (ncap - 1);
        while (ns[j].hash != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return true;
}

int agec__keymap_put(agec__keymap *m, const char *key, size_t len, int64_t id, int64_t *existing)
{
    if (len > UINT32_MAX)
        return -1;
    if ((m->count + 1) * 4 > m->cap * 3 && !rehash(m))
        return -1;
    uint64_t h = hash_bytes(key, len);
    agec__keymap_entry *e = slot_of(m, h, key, len);
    if (e->hash != 0) {
        if (existing != NULL)
            *existing = e->id;
        return 0;
    }
    if (m->arena_cap - m->arena_len < len) {
        size_t ncap = m->arena_cap ? m->arena_cap : 65536;
        while (ncap - m->arena_len < len)
            ncap *= 2;
        char *na = realloc(m->arena, ncap);
        if (na == NULL)
            return -1;
        m->arena = na;
        m->arena_cap = ncap;
    }
    if (len > 0)
        memcpy(m->arena + m->arena_len, key, len);
    *e = (agec__keymap_entry){ .hash = h, .off = m->arena_len, .len = (uint32_t)len, .id = id };
    m->arena_len += len;
    m->count++;
    return 1;
}

uint64_t agec__keymap_bytes(const agec__keymap *m)
{
    return (uint64_t)m->cap * sizeof(agec__keymap_entry) + m->arena_cap;
}

uint64_t agec__keymap_bytes_put(const agec__keymap *m, size_t len)
{
    uint64_t slots = m->cap;
    if ((m->count + 1) * 4 > m->cap * 3)
        slots += m->cap ? m->cap * 2 : 1024;
    uint64_t arena = m->arena_cap;
    if (m->arena_cap - m->arena_len < len) {
        uint64_t ncap = m->arena_cap ? m->arena_cap : 65536;
        while (ncap - m->arena_len < len)
            ncap *= 2;
        arena += ncap;
    }
    return slots * sizeof(agec__keymap_entry) + arena;
}

void agec__keymap_free(agec__keymap *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}
