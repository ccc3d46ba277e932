/* UTF-8 validation and encoding (Unicode 15, table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
#ifndef AGEC_AGTYPE_UTF8_H
#define AGEC_AGTYPE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (2..4) of the valid multi-byte sequence starting at s, which holds
 * `avail` readable bytes and s[0] >= 0x80; 0 when invalid. Reads at most
 * min(4, avail) bytes and stops at the first bad byte. */
static inline size_t agec__utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < 2 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (i >= avail || (s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Offset of the first invalid byte of s[0..len), or len when all valid. */
size_t agec__utf8_check(const unsigned char *s, size_t len);

/* Encode code point cp (<= 0x10FFFF, not a surrogate) at out; returns 1..4. */
size_t agec__utf8_put(unsigned char *out, uint32_t cp);

#endif
