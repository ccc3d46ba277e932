/*
 * Graph and label names, checked before they are ever put into SQL text.
 *
 * AGE's rules (REFERENCE.md section 2, "Names"): graph names are 3..63 bytes,
 * start with a letter or '_', continue with letters, digits, '_', and '.' or
 * '-' only in the middle; label names are 1..63 bytes, letters, digits, '_',
 * not starting with a digit. "Letter" is Unicode ID_Start/ID_Continue. The
 * server silently truncates names past 63 bytes, so the byte length is
 * checked here.
 *
 * The sets are generated from Unicode's DerivedCoreProperties.txt by
 * scripts/gen-name-table into name_table.h (binary search over ranges), so
 * every script AGE accepts is accepted here. AGE's regular expression
 * (name_validation.h) is "^[ID_Start _][ID_Continue .-]*[ID_Continue]$" for
 * graphs (so at least two characters) and "^[ID_Start _][ID_Continue]*$" for
 * labels. The one deliberate difference: AGE's ID_Start class also holds a
 * space (a stray blank in its table), so AGE accepts " g" as a graph or label
 * name; agec refuses it (whitespace is never part of a name here). Refused,
 * as by AGE: quotes, '$', whitespace, controls, invisible or format
 * characters (U+200B, U+FEFF, ...), punctuation and symbols; combining marks
 * and digits only after the first character. it_age_names checks every
 * range boundary of the table against the AGE test server.
 */
#include "agec/cypher.h"

#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "cypher/name_table.h"
#include "cypher/names.h"

#define NAME_MAX_BYTES 63

size_t agec__utf8_decode(const unsigned char *s, size_t len, unsigned *cp)
{
    if (len == 0)
        return 0;
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

static int in_table(const agec__cp_range *t, size_t n, unsigned c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < t[mid].lo)
            hi = mid;
        else if (c > t[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int agec__id_start_cp(unsigned c)
{
    return in_table(agec__id_start, sizeof agec__id_start / sizeof agec__id_start[0], c);
}

int agec__id_continue_cp(unsigned c)
{
    return in_table(agec__id_continue, sizeof agec__id_continue / sizeof agec__id_continue[0], c);
}

static agec_status check_name(const char *name, const char *what, size_t min_bytes,
                              size_t min_chars, int allow_dot_dash, agec_error *err)
{
    if (name == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s name is NULL", what);
    size_t len = strlen(name);
    if (len < min_bytes || len > NAME_MAX_BYTES)
        return agec__error_set(err, AGEC_ERR_NAME,
                               "%s name must be %zu to %d bytes long, got %zu bytes", what,
                               min_bytes, NAME_MAX_BYTES, len);
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0, chars = 0;
    while (i < len) {
        unsigned cp;
        size_t n = agec__utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return agec__error_set(err, AGEC_ERR_NAME, "%s name is not valid UTF-8 (byte %zu)",
                                   what, i);
        int first = i == 0;
        int last = i + n == len;
        int ok = first ? (cp == '_' || agec__id_start_cp(cp))
                       : (agec__id_continue_cp(cp) ||
                          (allow_dot_dash && !last && (cp == '.' || cp == '-')));
        if (!ok) {
            if (cp >= 0x20 && cp < 0x7F)
                return agec__error_set(
                    err, AGEC_ERR_NAME, "%s name has a character not allowed %s: '%c' (byte %zu)",
                    what, first ? "first" : (last ? "last" : "here"), (char)cp, i);
            return agec__error_set(err, AGEC_ERR_NAME,
                                   "%s name has a character not allowed here: U+%04X (byte %zu)",
                                   what, cp, i);
        }
        i += n;
        chars++;
    }
    /* AGE's graph pattern needs a first and a distinct last character. */
    if (chars < min_chars)
        return agec__error_set(err, AGEC_ERR_NAME, "%s name must have at least %zu characters",
                               what, min_chars);
    return AGEC_OK;
}

agec_status agec_graph_name_check(const char *name, agec_error *err)
{
    return check_name(name, "graph", 3, 2, 1, err);
}

agec_status agec_label_name_check(const char *name, agec_error *err)
{
    return check_name(name, "label", 1, 1, 0, err);
}

uint64_t agec__fnv1a(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * AGEC__FNV_PRIME;
    return h;
}

size_t agec__quote_ident(const char *name, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap < 3)
        return 0;
    buf[o++] = '"';
    for (const char *p = name; *p != '\0'; p++) {
        size_t need = *p == '"' ? 2 : 1;
        if (o + need + 2 > cap)
            return 0;
        buf[o++] = *p;
        if (*p == '"')
            buf[o++] = '"';
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return o;
}

char **agec__strings_pack(size_t n, const char *(*get)(const void *ctx, size_t i), const void *ctx)
{
    size_t bytes = (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(get(ctx, i)) + 1;
    char **block = malloc(bytes);
    if (block == NULL)
        return NULL;
    char *p = (char *)(block + n + 1);
    for (size_t i = 0; i < n; i++) {
        const char *s = get(ctx, i);
        size_t l = strlen(s) + 1;
        memcpy(p, s, l);
        block[i] = p;
        p += l;
    }
    block[n] = NULL;
    return block;
}

void agec_strings_free(char **strings)
{
    free(strings);
}
