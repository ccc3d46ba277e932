/* agtype writers and builder: float/int/string formatting, JSON output and
 * its NaN policy, the builder's state machine, and agtype_parse_or_fail(write(v)) == v. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"
#include "agtype/number.h"
#include "test_agtype_util.h"

/* Build one double with the builder and return its text. */
static char *double_text(double d)
{
    agec_builder *b;
    char *out;
    assert_int_equal(agec_builder_new(&b, NULL), AGEC_OK);
    assert_int_equal(agec_builder_double(b, d, NULL), AGEC_OK);
    assert_int_equal(agec_builder_finish(b, &out, NULL, NULL), AGEC_OK);
    agec_builder_free(b);
    return out;
}

static void test_double_format(void **state)
{
    (void)state;
    /* expected texts are what PostgreSQL/AGE print for the same doubles */
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        { 1.0, "1.0" },
        { 5.0, "5.0" },
        { -0.0, "-0.0" },
        { 0.0, "0.0" },
        { 1.5, "1.5" },
        { 0.1, "0.1" },
        { 1e5, "100000.0" },
        { 1e14, "100000000000000.0" },
        { 1e15, "1e+15" },
        { 123456789012345.6, "123456789012345.6" },
        { 0.0001, "0.0001" },
        { 0.00001, "1e-05" },
        { 1e100, "1e+100" },
        { 1.5e-300, "1.5e-300" },
        { 1.5e-320, "1.5e-320" },
        { 5e-324, "5e-324" },
        { 9.223372036854776e+18, "9.223372036854776e+18" },
        { 1.2345678901234567e+19, "1.2345678901234567e+19" },
        { 1.4142135623730951, "1.4142135623730951" },
        { 0.30000000000000004, "0.30000000000000004" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { -2.5, "-2.5" },
        { NAN, "NaN" },
        { INFINITY, "Infinity" },
        { -INFINITY, "-Infinity" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = double_text(cases[i].d);
        if (strcmp(t, cases[i].text) != 0)
            fail_msg("%.17g written as <%s>, want <%s>", cases[i].d, t, cases[i].text);
        agec_free(t);
    }
}

/* Random bit patterns: every finite double reads back bit for bit. */
static void test_double_round_trip_random(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        char *t = double_text(d);
        agec_value *v = agtype_parse_or_fail(t);
        double back;
        assert_int_equal(agec_value_type(v), AGEC_TYPE_FLOAT);
        assert_int_equal(agec_value_get_double(v, &back, NULL), AGEC_OK);
        if (memcmp(&back, &d, sizeof d) != 0)
            fail_msg("%.17g -> <%s> -> %.17g", d, t, back);
        agec_value_free(v);
        agec_free(t);
    }
}

/* The shortcut for decimals of up to 15 digits (no printf) gives what the
 * general search gives: decimals of 1-17 digits at exponents -30..30 (the
 * shortcut takes those of <= 15), and random bit patterns. */
static void test_double_shortcut_same_digits(void **state)
{
    (void)state;
    uint64_t x = 0x2545F4914F6CDD1Du;
    int taken = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        if (i % 4 == 3) {
            memcpy(&d, &x, sizeof d);
            d = fabs(d);
            if (!isfinite(d) || d == 0)
                continue;
        } else {
            char text[48];
            int nd = 1 + (int)(x % 17), e = (int)((x >> 8) % 61) - 30;
            uint64_t m = (x >> 16) % 100000000000000000u;
            snprintf(text, sizeof text, "%.*se%d", nd, "12345678901234567", e);
            text[0] = (char)('1' + m % 9);
            for (int k = 1; k < nd; k++)
                text[k] = (char)('0' + (m >> k) % 10);
            d = strtod(text, NULL);
        }
        char a[24], b[24];
        int ea = 0, eb = 0;
        size_t na = agec__shortest_digits(d, a, &ea);
        size_t nb = agec__shortest_digits_search(d, b, &eb);
        if (na != nb || ea != eb || memcmp(a, b, na) != 0)
            fail_msg("%.17g: shortcut %.*se%d, search %.*se%d", d, (int)na, a, ea, (int)nb, b, eb);
        taken += nb <= 15 && d >= 1e-15 && d < 1e15;
    }
    assert_true(taken > 50000); /* the cases the shortcut is for were there */
}

static void test_builder_map(void **state)
{
    (void)state;
    agec_builder *b;
    agec_error err = AGEC_ERROR_INIT;
    char *out;
    size_t len;
    assert_int_equal(agec_builder_new(&b, &err), AGEC_OK);
    assert_int_equal(agec_builder_begin_map(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "i", 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_int64(b, INT64_MIN, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "j", 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_int64(b, INT64_MAX, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "f", 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_double(b, -INFINITY, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "s", 1, &err), AGEC_OK);
    const char s[] = "q\"b\\s/$$ $tag$ \n\t\x01\x1f\x7f\0z \xc3\xa9\xf0\x9f\x98\x80";
    assert_int_equal(agec_builder_string(b, s, sizeof s - 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "n", 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_numeric(b, "123456789012345678901234567890.5", 32, &err),
                     AGEC_OK);
    assert_int_equal(agec_builder_key(b, "nan", 3, &err), AGEC_OK);
    assert_int_equal(agec_builder_numeric(b, "nan", 3, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "l", 1, &err), AGEC_OK);
    assert_int_equal(agec_builder_begin_list(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_null(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_bool(b, true, &err), AGEC_OK);
    assert_int_equal(agec_builder_bool(b, false, &err), AGEC_OK);
    assert_int_equal(agec_builder_begin_map(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_end_map(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_end_list(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_key(b, "", 0, &err), AGEC_OK);
    agec_value *nested =
        agtype_parse_or_fail("{\"id\": 1, \"label\": \"L\", \"properties\": {\"k\": 1.5}}::vertex");
    assert_int_equal(agec_builder_value(b, nested, &err), AGEC_OK);
    assert_int_equal(agec_builder_end_map(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_finish(b, &out, &len, &err), AGEC_OK);
    assert_int_equal(strlen(out), len);
    assert_string_equal(
        out, "{\"i\": -9223372036854775808, \"j\": 9223372036854775807, \"f\": -Infinity, "
             "\"s\": \"q\\\"b\\\\s/$$ $tag$ \\n\\t\\u0001\\u001f\x7f\\u0000z "
             "\xc3\xa9\xf0\x9f\x98\x80\", "
             "\"n\": 123456789012345678901234567890.5::numeric, \"nan\": NaN::numeric, "
             "\"l\": [null, true, false, {}], \"\": {\"id\": 1, \"label\": \"L\", "
             "\"properties\": {\"k\": 1.5}}::vertex}");

    /* the text parses back to the same values */
    agec_value *v = agtype_parse_or_fail(out);
    const char *p;
    size_t n;
    assert_int_equal(agec_value_get_string(agec_value_get(v, "s", 1), &p, &n, &err), AGEC_OK);
    assert_int_equal(n, sizeof s - 1);
    assert_memory_equal(p, s, n);
    int64_t i;
    assert_int_equal(agec_value_get_int64(agec_value_get(v, "i", 1), &i, &err), AGEC_OK);
    assert_true(i == INT64_MIN);
    assert_true(agec_value_equal(agec_value_get(v, "", 0), nested));
    agec_value_free(v);
    agec_value_free(nested);
    agec_free(out);

    /* the builder is reusable after finish */
    assert_int_equal(agec_builder_begin_list(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_end_list(b, &err), AGEC_OK);
    assert_int_equal(agec_builder_finish(b, &out, NULL, &err), AGEC_OK);
    assert_string_equal(out, "[]");
    agec_free(out);
    agec_builder_free(b);
}

static void test_builder_errors(void **state)
{
    (void)state;
    agec_builder *b;
    agec_error err = AGEC_ERROR_INIT;
    char *out = (char *)"unchanged";

    /* each misuse is refused with its own status, and the error sticks */
    static const struct {
        int setup; /* 0: none, 1: inside a map, 2: inside a list, 3: one value done */
        int action;
        agec_status want;
    } cases[] = {
        { 1, 0, AGEC_ERR_STATE },       /* value in a map without a key */
        { 2, 1, AGEC_ERR_STATE },       /* key in a list */
        { 0, 1, AGEC_ERR_STATE },       /* key at top level */
        { 1, 2, AGEC_ERR_STATE },       /* end_list closing a map */
        { 0, 3, AGEC_ERR_STATE },       /* end_map with nothing open */
        { 3, 0, AGEC_ERR_STATE },       /* second top-level value */
        { 0, 4, AGEC_ERR_STATE },       /* finish with no value */
        { 2, 4, AGEC_ERR_STATE },       /* finish with an open list */
        { 0, 5, AGEC_ERR_INVALID_ARG }, /* invalid UTF-8 */
        { 0, 6, AGEC_ERR_INVALID_ARG }, /* bad numeric text */
        { 0, 7, AGEC_ERR_INVALID_ARG }, /* NULL value */
        { 1, 8, AGEC_ERR_STATE },       /* two keys in a row */
        { 1, 9, AGEC_ERR_STATE },       /* end_map after a dangling key */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(agec_builder_new(&b, &err), AGEC_OK);
        if (cases[k].setup == 1)
            assert_int_equal(agec_builder_begin_map(b, &err), AGEC_OK);
        if (cases[k].setup == 2)
            assert_int_equal(agec_builder_begin_list(b, &err), AGEC_OK);
        if (cases[k].setup == 3)
            assert_int_equal(agec_builder_int64(b, 1, &err), AGEC_OK);
        agec_status st;
        switch (cases[k].action) {
        case 0:
            st = agec_builder_int64(b, 2, &err);
            break;
        case 1:
            st = agec_builder_key(b, "k", 1, &err);
            break;
        case 2:
            st = agec_builder_end_list(b, &err);
            break;
        case 3:
            st = agec_builder_end_map(b, &err);
            break;
        case 4:
            st = agec_builder_finish(b, &out, NULL, &err);
            break;
        case 5:
            st = agec_builder_string(b, "\xc3(", 2, &err);
            break;
        case 6:
            st = agec_builder_numeric(b, "1.2.3", 5, &err);
            break;
        case 7:
            st = agec_builder_value(b, NULL, &err);
            break;
        case 8:
            assert_int_equal(agec_builder_key(b, "a", 1, &err), AGEC_OK);
            st = agec_builder_key(b, "b", 1, &err);
            break;
        default:
            assert_int_equal(agec_builder_key(b, "a", 1, &err), AGEC_OK);
            st = agec_builder_end_map(b, &err);
            break;
        }
        if (st != cases[k].want)
            fail_msg("case %zu: %s (%s)", k, agec_status_name(st), err.message);
        assert_int_equal(err.code, cases[k].want);
        assert_non_null(strstr(err.message, "builder"));
        /* sticky: a valid call now fails the same way, finish too */
        agec_error again = AGEC_ERROR_INIT;
        assert_int_equal(agec_builder_null(b, &again), cases[k].want);
        assert_string_equal(again.message, err.message);
        assert_int_equal(agec_builder_finish(b, &out, NULL, NULL), cases[k].want);
        assert_null(out);
        agec_builder_free(b);
    }
    assert_int_equal(agec_builder_new(NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_builder_null(NULL, &err), AGEC_ERR_INVALID_ARG);
    agec_builder_free(NULL);
}

static char *json(const char *agtype, unsigned flags, agec_status want)
{
    agec_value *v = agtype_parse_or_fail(agtype);
    char *out = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_value_to_json(v, flags, &out, NULL, &err);
    if (st != want)
        fail_msg("<%s>: %s (%s)", agtype, agec_status_name(st), err.message);
    agec_value_free(v);
    return out;
}

static void test_json_writer(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned flags;
        const char *out;
    } cases[] = {
        { "{\"id\": 1, \"label\": \"L\", \"properties\": {\"a\": [1, 2.5]}}::vertex", 0,
          "{\"id\": 1, \"label\": \"L\", \"properties\": {\"a\": [1, 2.5]}}" },
        { "{\"id\": 2, \"label\": \"E\", \"end_id\": 3, \"start_id\": 1, \"properties\": {}}::edge",
          AGEC_JSON_COMPACT,
          "{\"id\":2,\"label\":\"E\",\"end_id\":3,\"start_id\":1,\"properties\":{}}" },
        { "[{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex]::path", AGEC_JSON_COMPACT,
          "[{\"id\":1,\"label\":\"L\",\"properties\":{}}]" },
        { "12345678901234600000::numeric", 0, "12345678901234600000" },
        { "[0.10::numeric, -1e5::numeric]", 0, "[0.10, -1e5]" },
        { "[NaN, Infinity, -Infinity, NaN::numeric]", 0,
          "[\"NaN\", \"Infinity\", \"-Infinity\", \"NaN\"]" },
        { "[NaN, -Infinity::numeric, 1.5]", AGEC_JSON_NONFINITE_NULL, "[null, null, 1.5]" },
        { "\"a\\u0000\\n\xc3\xa9\"", 0, "\"a\\u0000\\n\xc3\xa9\"" },
        { "[true, false, null, -3, 1.0]", AGEC_JSON_COMPACT, "[true,false,null,-3,1.0]" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *out = json(cases[k].in, cases[k].flags, AGEC_OK);
        if (strcmp(out, cases[k].out) != 0)
            fail_msg("<%s> -> <%s>, want <%s>", cases[k].in, out, cases[k].out);
        /* JSON output is strict JSON (agec itself refuses integers past int64) */
        agec_value *v;
        agec_status st = agec_agtype_parse(out, strlen(out), AGEC_PARSE_JSON, &v, NULL);
        assert_int_equal(st, strstr(out, "12345678901234600000") ? AGEC_ERR_RANGE : AGEC_OK);
        agec_value_free(v);
        agec_free(out);
    }
    assert_null(json("[1, NaN]", AGEC_JSON_NONFINITE_ERROR, AGEC_ERR_RANGE));
    assert_null(json("Infinity::numeric", AGEC_JSON_NONFINITE_ERROR, AGEC_ERR_RANGE));
    assert_null(
        json("1", AGEC_JSON_NONFINITE_ERROR | AGEC_JSON_NONFINITE_NULL, AGEC_ERR_INVALID_ARG));
    assert_null(json("1", 0x100, AGEC_ERR_INVALID_ARG));
    char *out;
    assert_int_equal(agec_value_to_json(NULL, 0, &out, NULL, NULL), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_value_to_agtype(NULL, &out, NULL, NULL), AGEC_ERR_INVALID_ARG);
    assert_null(out);
}

static void test_params_from_json(void **state)
{
    (void)state;
    char *out;
    size_t len;
    agec_error err = AGEC_ERROR_INIT;
    const char *in = "{\"name\":\"Ada\",\"born\":1815,\"w\":1.0,\"big\":9223372036854775807,"
                     "\"tags\":[\"x\",null],\"m\":{}}";
    assert_int_equal(agec_agtype_params_from_json(in, strlen(in), &out, &len, &err), AGEC_OK);
    assert_string_equal(out, "{\"name\": \"Ada\", \"born\": 1815, \"w\": 1.0, "
                             "\"big\": 9223372036854775807, \"tags\": [\"x\", null], \"m\": {}}");
    assert_int_equal(len, strlen(out));
    agec_free(out);
    assert_int_equal(agec_agtype_params_from_json("[1]", 3, &out, NULL, &err), AGEC_ERR_TYPE);
    assert_null(out);
    assert_int_equal(agec_agtype_params_from_json("{\"a\": 1::numeric}", 17, &out, NULL, &err),
                     AGEC_ERR_PARSE);
    assert_int_equal(err.position, 7);
    assert_int_equal(agec_agtype_params_from_json("{\"a\": 1e999}", 12, &out, NULL, &err),
                     AGEC_ERR_RANGE);
    assert_int_equal(agec_agtype_params_from_json("{}", 2, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
}

/* agtype_parse_or_fail(write(v)) == v for every kind, including values the builder made. */
static void test_round_trip_all_kinds(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-9223372036854775808",
        "9223372036854775807",
        "1.0",
        "-0.0",
        "5e-324",
        "1.7976931348623157e+308",
        "NaN",
        "Infinity",
        "-Infinity",
        "0.1::numeric",
        "-123456789012345678901234567890.000001::numeric",
        "NaN::numeric",
        "\"\"",
        "\"\\u0000\\u0001\\u001f\\\"\\\\\\/\\b\\f\\n\\r\\t\xf0\x9f\x98\x80 $$ $t$\"",
        "[]",
        "{}",
        "[[[]], {}, [{}]]",
        "{\"z\": {\"y\": [1, {\"x\": null}]}, \"\": 1}",
        "{\"id\": 1, \"label\": \"L\", \"properties\": {\"p\": [1.5, \"s\"]}}::vertex",
        "{\"id\": 2, \"label\": \"E\", \"end_id\": 3, \"start_id\": 1, \"properties\": {}}::edge",
        "[{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex, {\"id\": 2, \"label\": \"E\", "
        "\"end_id\": 3, \"start_id\": 1, \"properties\": {}}::edge, {\"id\": 3, \"label\": \"L\", "
        "\"properties\": {}}::vertex]::path",
        "{\"p\": [[{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex]::path]}",
    };
    for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++) {
        agec_value *v = agtype_parse_or_fail(docs[k]);
        char *text;
        assert_int_equal(agec_value_to_agtype(v, &text, NULL, NULL), AGEC_OK);
        agec_value *back = agtype_parse_or_fail(text);
        if (!agec_value_equal(v, back))
            fail_msg("<%s> -> <%s> differs", docs[k], text);
        /* through the builder, as a parameter map */
        agec_builder *b;
        char *param;
        assert_int_equal(agec_builder_new(&b, NULL), AGEC_OK);
        assert_int_equal(agec_builder_begin_map(b, NULL), AGEC_OK);
        assert_int_equal(agec_builder_key(b, "v", 1, NULL), AGEC_OK);
        assert_int_equal(agec_builder_value(b, v, NULL), AGEC_OK);
        assert_int_equal(agec_builder_end_map(b, NULL), AGEC_OK);
        assert_int_equal(agec_builder_finish(b, &param, NULL, NULL), AGEC_OK);
        agec_value *pm = agtype_parse_or_fail(param);
        assert_true(agec_value_equal(agec_value_get(pm, "v", 1), v));
        agec_value_free(pm);
        agec_free(param);
        agec_builder_free(b);
        agec_value_free(back);
        agec_free(text);
        agec_value_free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double_format),
        cmocka_unit_test(test_double_round_trip_random),
        cmocka_unit_test(test_double_shortcut_same_digits),
        cmocka_unit_test(test_builder_map),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_params_from_json),
        cmocka_unit_test(test_round_trip_all_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
