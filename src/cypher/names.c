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
 * We accept a conservative subset of Unicode letters (the scripts listed in
 * is_letter below); a name AGE would accept may be refused here, but never the
 * other way round. Refused on purpose: quotes, '$', whitespace, controls,
 * invisible or format characters (U+200B, U+FEFF, ...), punctuation and
 * symbols of every script, including lookalikes of ' and ".
 */
#include "agec/cypher.h"

#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
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

/* Letters of the scripts we accept beyond ASCII (ID_Start subset). */
static int is_letter(unsigned c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    static const unsigned ranges[][2] = {
        { 0x00C0, 0x00D6 }, { 0x00D8, 0x00F6 }, { 0x00F8, 0x024F }, /* Latin-1, Latin Ext */
        { 0x0386, 0x0386 }, { 0x0388, 0x03FF },                     /* Greek */
        { 0x0400, 0x0481 }, { 0x048A, 0x052F },                     /* Cyrillic */
        { 0x05D0, 0x05EA },                                         /* Hebrew */
        { 0x0620, 0x064A },                                         /* Arabic */
        { 0x0905, 0x0939 },                                         /* Devanagari */
        { 0x1E00, 0x1FFF },                                         /* Latin/Greek Ext */
        { 0x3041, 0x3096 }, { 0x30A1, 0x30FA },                     /* Kana */
        { 0x4E00, 0x9FFF },                                         /* CJK */
        { 0xAC00, 0xD7A3 },                                         /* Hangul */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (c >= ranges[i][0] && c <= ranges[i][1])
            return 1;
    return 0;
}

static int is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static agec_status check_name(const char *name, const char *what, size_t min_bytes,
                              int allow_dot_dash, agec_error *err)
{
    if (name == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "%s name is NULL", what);
    size_t len = strlen(name);
    if (len < min_bytes || len > NAME_MAX_BYTES)
        return agec__error_set(err, AGEC_ERR_NAME,
                               "%s name must be %zu to %d bytes long, got %zu bytes", what,
                               min_bytes, NAME_MAX_BYTES, len);
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0;
    while (i < len) {
        unsigned cp;
        size_t n = agec__utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return agec__error_set(err, AGEC_ERR_NAME, "%s name is not valid UTF-8 (byte %zu)",
                                   what, i);
        int first = i == 0;
        int last = i + n == len;
        int ok = is_letter(cp) || cp == '_' || (!first && is_digit(cp)) ||
                 (allow_dot_dash && !first && !last && (cp == '.' || cp == '-'));
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
    }
    return AGEC_OK;
}

agec_status agec_graph_name_check(const char *name, agec_error *err)
{
    return check_name(name, "graph", 3, 1, err);
}

agec_status agec_label_name_check(const char *name, agec_error *err)
{
    return check_name(name, "label", 1, 0, err);
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
