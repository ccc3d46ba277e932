/*
 * Issue 10, item 7: agec_cypher_return_columns makes duplicate names unique
 * with a "_2", "_3" suffix and keeps names within 63 bytes; the cut made
 * for the suffix must not split a UTF-8 character (the server would reject
 * the column list as invalid UTF-8). Every name must stay valid UTF-8,
 * within 63 bytes, and distinct, for characters of 2, 3 and 4 bytes and
 * every alignment of the cut.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "agec/agec.h"

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p;
        int n;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

/* RETURN with `copies` items all aliased to the same name: `prefix` ASCII
 * bytes, then `ch` repeated until the alias reaches at least 63 bytes. */
static void check_duplicates(const char *ch, int prefix, int copies)
{
    char alias[160];
    size_t o = 0;
    for (int i = 0; i < prefix; i++)
        alias[o++] = 'a';
    size_t cl = strlen(ch);
    while (o < 66) {
        memcpy(alias + o, ch, cl);
        o += cl;
    }
    alias[o] = '\0';
    char query[2048];
    int q = snprintf(query, sizeof query, "MATCH (n) RETURN ");
    for (int i = 0; i < copies; i++)
        q += snprintf(query + q, sizeof query - (size_t)q, "%sn.p%d AS `%s`", i ? ", " : "", i,
                      alias);
    char **names = NULL;
    size_t n = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_cypher_return_columns(query, &names, &n, &err), &err, "return columns");
    assert_int_equal(n, (size_t)copies);
    char bad[200] = "";
    for (size_t i = 0; i < n && bad[0] == '\0'; i++) {
        if (!utf8_valid(names[i]))
            snprintf(bad, sizeof bad,
                     "%zu-byte characters after %d ASCII bytes, column %zu: the name (%zu bytes) "
                     "is not valid UTF-8",
                     cl, prefix, i + 1, strlen(names[i]));
        else if (strlen(names[i]) > 63)
            snprintf(bad, sizeof bad, "column %zu: %zu bytes (limit 63)", i + 1, strlen(names[i]));
        for (size_t k = 0; k < i && bad[0] == '\0'; k++)
            if (strcmp(names[k], names[i]) == 0)
                snprintf(bad, sizeof bad, "columns %zu and %zu have the same name", k + 1, i + 1);
    }
    agec_strings_free(names);
    if (bad[0] != '\0')
        fail_msg("%s", bad);
}

static void test_duplicate_suffix_keeps_utf8(void **state)
{
    (void)state;
    static const char *const chars[] = { "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80" };
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++)
        for (int prefix = 0; prefix < 4; prefix++)
            check_duplicates(chars[c], prefix, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_suffix_keeps_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
