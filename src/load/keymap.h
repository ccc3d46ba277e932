/*
 * Key -> graph id map of one vertex label: open addressing, keys copied
 * into one growable arena (entries hold offsets, so growing it is safe).
 */
#ifndef AGEC_LOAD_KEYMAP_H
#define AGEC_LOAD_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct agec__keymap_entry {
    uint64_t hash; /* 0 = empty slot */
    uint64_t off;  /* key bytes in the arena */
    uint32_t len;
    int64_t id;
} agec__keymap_entry;

typedef struct agec__keymap {
    agec__keymap_entry *slots;
    size_t cap, count; /* cap a power of two */
    char *arena;
    size_t arena_len, arena_cap;
} agec__keymap;

/* Look key up: true and *id when present. */
bool agec__keymap_find(const agec__keymap *m, const char *key, size_t len, int64_t *id);

/* Insert key -> id. 1 inserted, 0 already present (*existing gets its id
 * when not NULL), -1 out of memory. */
int agec__keymap_put(agec__keymap *m, const char *key, size_t len, int64_t id, int64_t *existing);

/* Bytes the map holds now, and at most while putting a key of len bytes
 * (a growing table and arena are held twice for a moment). */
uint64_t agec__keymap_bytes(const agec__keymap *m);
uint64_t agec__keymap_bytes_put(const agec__keymap *m, size_t len);

void agec__keymap_free(agec__keymap *m);

#endif
