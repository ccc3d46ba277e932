/* Status codes, their names, and the caller-owned error struct. */
#include "testutil.h"

#include <string.h>

#include "agec/agec.h"
#include "common/error_internal.h"

static void test_every_code_has_name_and_text(void **state)
{
    (void)state;
    for (int c = AGEC_OK; c <= AGEC_ERR_CANCELLED; c++) {
        const char *name = agec_status_name((agec_status)c);
        assert_non_null(name);
        assert_string_not_equal(name, "AGEC_ERR_UNKNOWN");
        assert_string_not_equal(agec_strerror((agec_status)c), "unknown error");
    }
    assert_string_equal(agec_status_name(AGEC_ERR_POOL_EXHAUSTED), "AGEC_ERR_POOL_EXHAUSTED");
    assert_string_equal(agec_strerror((agec_status)9999), "unknown error");
    assert_string_equal(agec_status_name((agec_status)-1), "AGEC_ERR_UNKNOWN");
}

static void test_codes_are_stable(void **state)
{
    (void)state;
    /* Renumbering breaks every binding: pin the published values. */
    assert_int_equal(AGEC_OK, 0);
    assert_int_equal(AGEC_ERR_UNREACHABLE, 4);
    assert_int_equal(AGEC_ERR_POOL_EXHAUSTED, 6);
    assert_int_equal(AGEC_ERR_BREAKER_OPEN, 7);
    assert_int_equal(AGEC_ERR_SERVER, 10);
    assert_int_equal(AGEC_ERR_CANCELLED, 22);
    assert_int_equal(AGEC_ERR_INPUT, 24);
    assert_string_equal(agec_status_name(AGEC_ERR_INPUT), "AGEC_ERR_INPUT");
    assert_string_not_equal(agec_strerror(AGEC_ERR_INPUT), "unknown error");
    assert_int_equal(AGEC_ERR_BATCH_ABORTED, 25);
    assert_string_equal(agec_status_name(AGEC_ERR_BATCH_ABORTED), "AGEC_ERR_BATCH_ABORTED");
    assert_int_equal(AGEC_ERR_NO_NODE, 23);
    assert_string_equal(agec_status_name(AGEC_ERR_NO_NODE), "AGEC_ERR_NO_NODE");
}

static void test_error_set_and_clear(void **state)
{
    (void)state;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec__error_set(&err, AGEC_ERR_CONFIG, "field %s: %d", "max", -1),
                     AGEC_ERR_CONFIG);
    assert_int_equal(err.code, AGEC_ERR_CONFIG);
    assert_string_equal(err.message, "field max: -1");
    agec_error_clear(&err);
    assert_int_equal(err.code, AGEC_OK);
    assert_string_equal(err.message, "");
    agec_error_clear(NULL);
    assert_int_equal(agec__error_set(NULL, AGEC_ERR_RANGE, "x"), AGEC_ERR_RANGE);
}

static void test_copy_text_truncates_on_utf8_boundary(void **state)
{
    (void)state;
    char buf[5];
    agec__copy_text(buf, sizeof buf, "ab\xc3\xa9\xc3\xa9"); /* "abéé" */
    assert_string_equal(buf, "ab\xc3\xa9");
    agec__copy_text(buf, 4, "ab\xc3\xa9");
    assert_string_equal(buf, "ab");
    agec__copy_text(buf, sizeof buf, NULL);
    assert_string_equal(buf, "");
}

/* True when s is valid UTF-8 (no sequence cut short). */
static bool utf8_whole(const char *s)
{
    for (size_t i = 0; s[i] != '\0';) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        for (size_t k = 1; k < n; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

/* Issue 23, item 9: a message longer than the field, cut by vsnprintf at
 * every byte offset of a 2-, 3- and 4-byte character, stays valid UTF-8. */
static void test_error_set_cuts_on_utf8_boundary(void **state)
{
    (void)state;
    static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
    char text[AGEC_ERROR_TEXT_MAX + 16];
    for (size_t c = 0; c < 3; c++) {
        for (size_t pad = 0; pad < 4; pad++) {
            size_t n = 0;
            for (; n < pad; n++)
                text[n] = 'a';
            while (n + 4 < sizeof text) {
                memcpy(text + n, chars[c], strlen(chars[c]));
                n += strlen(chars[c]);
            }
            text[n] = '\0';
            agec_error err = AGEC_ERROR_INIT;
            agec__error_set(&err, AGEC_ERR_SERVER, "%s", text);
            assert_true(utf8_whole(err.message));
            assert_true(strlen(err.message) + 4 >= AGEC_ERROR_TEXT_MAX - 1);
            char buf[8];
            assert_true(utf8_whole(agec__utf8_cut(buf, sizeof buf, text)));
        }
    }
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(agec_version(), AGEC_VERSION_STRING);
    assert_int_equal(agec_version_num(), AGEC_VERSION_NUM);
    assert_true(AGEC_AT_LEAST_VERSION(0, 1, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_name_and_text),
        cmocka_unit_test(test_codes_are_stable),
        cmocka_unit_test(test_error_set_and_clear),
        cmocka_unit_test(test_copy_text_truncates_on_utf8_boundary),
        cmocka_unit_test(test_error_set_cuts_on_utf8_boundary),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
