/*
 * The generated Unicode table behind graph and label names
 * (src/cypher/name_table.h, scripts/gen-name-table): samples of scripts the
 * old hand-made list missed, combining marks and digits as continue-only,
 * punctuation, symbols and format characters in neither set, and the table's
 * own shape (sorted, disjoint, merged) that the binary search relies on.
 */
#include "testutil.h"

#include <string.h>

#include "agec/agec.h"
#include "cypher/name_table.h"
#include "cypher/names.h"

struct sample {
    unsigned cp;
    int start, cont;
    const char *what;
};

static const struct sample samples[] = {
    { 'A', 1, 1, "Latin A" },
    { 'z', 1, 1, "Latin z" },
    { '_', 0, 1, "low line: continue (AGE adds it to the start class itself)" },
    { '0', 0, 1, "digit 0" },
    { '9', 0, 1, "digit 9" },
    { ' ', 0, 0, "space" },
    { '.', 0, 0, "full stop" },
    { '-', 0, 0, "hyphen-minus" },
    { '$', 0, 0, "dollar" },
    { '\'', 0, 0, "apostrophe" },
    { '"', 0, 0, "quotation mark" },
    { '`', 0, 0, "grave accent" },
    { 0x00AA, 1, 1, "feminine ordinal indicator (Lo)" },
    { 0x00B7, 0, 1, "middle dot (Other_ID_Continue)" },
    { 0x00D7, 0, 0, "multiplication sign" },
    { 0x02BC, 1, 1, "modifier letter apostrophe (Lm)" },
    { 0x0301, 0, 1, "combining acute accent (Mn)" },
    { 0x0660, 0, 1, "Arabic-Indic digit zero" },
    { 0x0E01, 1, 1, "Thai ko kai" },
    { 0x0E31, 0, 1, "Thai mai han-akat (Mn)" },
    { 0x0E3F, 0, 0, "Thai baht sign" },
    { 0x0E51, 0, 1, "Thai digit one" },
    { 0x10D0, 1, 1, "Georgian an" },
    { 0x1C90, 1, 1, "Georgian Mtavruli an" },
    { 0x1200, 1, 1, "Ethiopic ha" },
    { 0x135D, 0, 1, "Ethiopic combining gemination mark" },
    { 0x1362, 0, 0, "Ethiopic full stop" },
    { 0x13A0, 1, 1, "Cherokee a" },
    { 0x1780, 1, 1, "Khmer ka" },
    { 0x0F40, 1, 1, "Tibetan ka" },
    { 0x0D05, 1, 1, "Malayalam a" },
    { 0x0B85, 1, 1, "Tamil a" },
    { 0x0D85, 1, 1, "Sinhala a" },
    { 0x1000, 1, 1, "Myanmar ka" },
    { 0x0710, 1, 1, "Syriac alaph" },
    { 0x0780, 1, 1, "Thaana haa" },
    { 0x1820, 1, 1, "Mongolian a" },
    { 0x3042, 1, 1, "Hiragana a" },
    { 0x3005, 1, 1, "ideographic iteration mark" },
    { 0x3000, 0, 0, "ideographic space" },
    { 0x3001, 0, 0, "ideographic comma" },
    { 0x4E00, 1, 1, "CJK one" },
    { 0x9FFF, 1, 1, "CJK last of the URO block" },
    { 0x3400, 1, 1, "CJK Extension A" },
    { 0x20000, 1, 1, "CJK Extension B" },
    { 0x31350, 1, 1, "CJK Extension H (Unicode 15)" },
    { 0xAC00, 1, 1, "Hangul ga" },
    { 0xA000, 1, 1, "Yi it" },
    { 0x10000, 1, 1, "Linear B syllable a" },
    { 0x1F600, 0, 0, "emoji grinning face" },
    { 0x200B, 0, 0, "zero-width space" },
    { 0x200C, 0, 0, "zero-width non-joiner (ID_Continue only from Unicode 15.1)" },
    { 0x200D, 0, 0, "zero-width joiner" },
    { 0xFEFF, 0, 0, "byte order mark" },
    { 0xFF07, 0, 0, "fullwidth apostrophe" },
    { 0xFF10, 0, 1, "fullwidth digit zero" },
    { 0xFF21, 1, 1, "fullwidth A" },
    { 0x2118, 1, 1, "Weierstrass p (Other_ID_Start)" },
    { 0x2160, 1, 1, "Roman numeral one (Nl)" },
    { 0x203F, 0, 1, "undertie (Pc)" },
    { 0xFE00, 0, 1, "variation selector 1" },
    { 0xE0100, 0, 1, "variation selector 17 (last one AGE takes)" },
    { 0xE0101, 0, 0, "variation selector 18 (AGE stops before it)" },
    { 0xE01EF, 0, 0, "variation selector 256" },
    { 0x10FFFF, 0, 0, "last code point" },
};

static void test_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const struct sample *s = &samples[i];
        if (agec__id_start_cp(s->cp) != s->start || agec__id_continue_cp(s->cp) != s->cont)
            fail_msg("U+%04X %s: start %d continue %d, want %d %d", s->cp, s->what,
                     agec__id_start_cp(s->cp), agec__id_continue_cp(s->cp), s->start, s->cont);
    }
}

static void check_shape(const agec__cp_range *t, size_t n, const char *what)
{
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++) {
        if (t[i].lo > t[i].hi || t[i].hi > 0x10FFFF)
            fail_msg("%s[%zu] = %X..%X is not a range", what, i, t[i].lo, t[i].hi);
        /* Merged: a gap of at least one code point between neighbours. */
        if (i > 0 && t[i].lo <= t[i - 1].hi + 1)
            fail_msg("%s[%zu] = %X.. touches or overlaps %X", what, i, t[i].lo, t[i - 1].hi);
    }
}

static void test_table_shape(void **state)
{
    (void)state;
    check_shape(agec__id_start, sizeof agec__id_start / sizeof agec__id_start[0], "start");
    check_shape(agec__id_continue, sizeof agec__id_continue / sizeof agec__id_continue[0],
                "continue");
    /* Every ID_Start code point is ID_Continue (Unicode guarantees it). */
    for (size_t i = 0; i < sizeof agec__id_start / sizeof agec__id_start[0]; i++)
        for (unsigned c = agec__id_start[i].lo; c <= agec__id_start[i].hi; c++)
            if (!agec__id_continue_cp(c))
                fail_msg("U+%04X is ID_Start but not ID_Continue", c);
    /* The search finds both ends of every range and not the code point past it. */
    for (size_t i = 0; i < sizeof agec__id_continue / sizeof agec__id_continue[0]; i++) {
        assert_true(agec__id_continue_cp(agec__id_continue[i].lo));
        assert_true(agec__id_continue_cp(agec__id_continue[i].hi));
        assert_false(agec__id_continue_cp(agec__id_continue[i].hi + 1));
    }
}

/* Names in scripts the hand-made list refused, through the public checks. */
static void test_names_of_many_scripts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "\xe0\xb8\x81\xe0\xb8\xb2\xe0\xb8\xa3",                         /* การ (Thai) */
        "\xe1\x83\x92\xe1\x83\xa0\xe1\x83\x90\xe1\x83\xa4\xe1\x83\x98", /* გრაფი */
        "\xe1\x88\x80\xe1\x88\x88",                                     /* ሀለ (Ethiopic) */
        "\xe1\x8e\xa0\xe1\x8e\xa1",                                     /* Cherokee */
        "a\xcc\x81\x62",                                                /* a + U+0301 + b */
        "\xe0\xb8\x81\xe0\xb9\x91",                                     /* Thai ko, Thai digit */
        "\xf0\xa0\x80\x80\xf0\xa0\x80\x81",                             /* CJK Ext B */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        agec_error err = AGEC_ERROR_INIT;
        if (agec_graph_name_check(ok[i], &err) != AGEC_OK)
            fail_msg("graph name %zu refused: %s", i, err.message);
        if (agec_label_name_check(ok[i], &err) != AGEC_OK)
            fail_msg("label name %zu refused: %s", i, err.message);
    }
    static const char *const bad[] = {
        "\xcc\x81\x61\x62",     /* combining mark first */
        "\xe0\xb9\x91\x61\x62", /* Thai digit first */
        "ab\xf0\x9f\x98\x80",   /* emoji */
        "ab\xe2\x80\x8d\x63",   /* ZWJ */
        "ab\xf3\xa0\x84\x81",   /* U+E0101 */
        "\xe1\x8d\xa2\x61\x62", /* Ethiopic full stop first */
        "a\xe1\x8d\xa2\x62",    /* ... and in the middle */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (agec_graph_name_check(bad[i], NULL) != AGEC_ERR_NAME)
            fail_msg("graph name %zu accepted", i);
        if (agec_label_name_check(bad[i], NULL) != AGEC_ERR_NAME)
            fail_msg("label name %zu accepted", i);
    }
    /* One letter is a label but not a graph (AGE's graph pattern needs two). */
    assert_int_equal(agec_label_name_check("\xe0\xb8\x81", NULL), AGEC_OK);
    assert_int_equal(agec_graph_name_check("\xe0\xb8\x81", NULL), AGEC_ERR_NAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_table_shape),
        cmocka_unit_test(test_names_of_many_scripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
