/* agtype accessors: scalars, containers, lookup, graph elements, numeric
 * conversions and equality. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agec/agtype.h"
#include "test_agtype_util.h"

static void test_scalar_accessors(void **state)
{
    (void)state;
    agec_value *v =
        agtype_parse_or_fail("[true, -5, 2.5, \"s\", 10.50::numeric, null, 1e20::numeric]");
    agec_error err = AGEC_ERROR_INIT;
    bool b = false;
    int64_t i = 0;
    double d = 0;
    const char *s;
    size_t n;

    assert_int_equal(agec_value_get_bool(agec_value_at(v, 0), &b, &err), AGEC_OK);
    assert_true(b);
    assert_int_equal(agec_value_get_int64(agec_value_at(v, 1), &i, &err), AGEC_OK);
    assert_int_equal(i, -5);
    assert_int_equal(agec_value_get_double(agec_value_at(v, 1), &d, &err), AGEC_OK);
    assert_true(d == -5.0);
    assert_int_equal(agec_value_get_double(agec_value_at(v, 2), &d, &err), AGEC_OK);
    assert_true(d == 2.5);
    assert_int_equal(agec_value_get_string(agec_value_at(v, 3), &s, &n, &err), AGEC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(s, "s");
    assert_int_equal(agec_value_get_string(agec_value_at(v, 3), &s, NULL, &err), AGEC_OK);
    assert_int_equal(agec_value_get_numeric(agec_value_at(v, 4), &s, &n, &err), AGEC_OK);
    assert_string_equal(s, "10.50");
    assert_int_equal(n, 5);
    assert_int_equal(agec_value_get_double(agec_value_at(v, 4), &d, &err), AGEC_OK);
    assert_true(d == 10.5);
    /* numeric 10.50 is not an integer; 1e20 is an integer beyond int64 */
    i = 99;
    assert_int_equal(agec_value_get_int64(agec_value_at(v, 4), &i, &err), AGEC_ERR_RANGE);
    assert_int_equal(i, 99);
    assert_int_equal(agec_value_get_int64(agec_value_at(v, 6), &i, &err), AGEC_ERR_RANGE);
    assert_int_equal(agec_value_type(agec_value_at(v, 5)), AGEC_TYPE_NULL);

    /* wrong types */
    assert_int_equal(agec_value_get_bool(agec_value_at(v, 1), &b, &err), AGEC_ERR_TYPE);
    assert_non_null(strstr(err.message, "int"));
    assert_int_equal(agec_value_get_int64(agec_value_at(v, 2), &i, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_value_get_double(agec_value_at(v, 3), &d, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_value_get_string(agec_value_at(v, 4), &s, &n, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_value_get_numeric(agec_value_at(v, 3), &s, &n, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_value_get_int64(v, &i, &err), AGEC_ERR_TYPE);
    assert_string_equal(agec_status_name(err.code), "AGEC_ERR_TYPE");

    /* NULL handling */
    assert_int_equal(agec_value_get_int64(NULL, &i, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_value_get_int64(v, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_value_get_string(v, NULL, &n, NULL), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_value_type(NULL), AGEC_TYPE_NULL);
    assert_int_equal(agec_value_length(NULL), 0);
    assert_null(agec_value_at(NULL, 0));
    assert_null(agec_value_get(NULL, "a", 1));
    assert_null(agec_value_entry(NULL, 0, NULL, NULL));
    assert_string_equal(agec_type_name(AGEC_TYPE_PATH), "path");
    assert_string_equal(agec_type_name((agec_type)99), "unknown");
    agec_value_free(v);
}

static void test_object_lookup(void **state)
{
    (void)state;
    /* server order (sorted by length, then bytes): binary search */
    agec_value *sorted =
        agtype_parse_or_fail("{\"a\": 1, \"b\": 2, \"aa\": 3, \"ab\": 4, \"zz\": 5, \"abc\": 6}");
    /* arbitrary order and a duplicate: linear scan, last one wins */
    agec_value *unsorted = agtype_parse_or_fail("{\"zz\": 5, \"a\": 1, \"abc\": 6, \"a\": 7}");
    int64_t i;
    static const struct {
        const char *key;
        int64_t want; /* 0: absent */
    } sorted_cases[] = { { "a", 1 },   { "b", 2 }, { "aa", 3 }, { "ab", 4 },   { "zz", 5 },
                         { "abc", 6 }, { "c", 0 }, { "", 0 },   { "abcd", 0 }, { "ac", 0 } };
    for (size_t k = 0; k < sizeof sorted_cases / sizeof sorted_cases[0]; k++) {
        const agec_value *f =
            agec_value_get(sorted, sorted_cases[k].key, strlen(sorted_cases[k].key));
        if (sorted_cases[k].want == 0) {
            assert_null(f);
        } else {
            assert_int_equal(agec_value_get_int64(f, &i, NULL), AGEC_OK);
            assert_int_equal(i, sorted_cases[k].want);
        }
    }
    assert_int_equal(agec_value_get_int64(agec_value_get(unsorted, "a", 1), &i, NULL), AGEC_OK);
    assert_int_equal(i, 7);
    assert_int_equal(agec_value_get_int64(agec_value_get(unsorted, "abc", 3), &i, NULL), AGEC_OK);
    assert_int_equal(i, 6);
    assert_null(agec_value_get(unsorted, "ab", 2));

    /* iteration in document order */
    assert_int_equal(agec_value_length(unsorted), 4);
    const char *key;
    size_t keylen;
    const agec_value *e = agec_value_entry(unsorted, 2, &key, &keylen);
    assert_non_null(e);
    assert_int_equal(keylen, 3);
    assert_string_equal(key, "abc");
    assert_null(agec_value_entry(unsorted, 4, &key, &keylen));
    assert_string_equal(key, "abc"); /* untouched on failure */
    assert_non_null(agec_value_entry(unsorted, 0, NULL, NULL));

    /* lookups on non-objects */
    assert_null(agec_value_get(agec_value_get(sorted, "a", 1), "a", 1));
    assert_null(agec_value_at(sorted, 0));
    agec_value_free(sorted);
    agec_value_free(unsorted);
}

static const char vertex_text[] =
    "{\"id\": 844424930131969, \"label\": \"Person\", \"properties\": {\"born\": 1815, \"name\": "
    "\"Ada\"}}::vertex";
static const char edge_text[] =
    "{\"id\": 1125899906842625, \"label\": \"KNOWS\", \"end_id\": 844424930131970, \"start_id\": "
    "844424930131969, \"properties\": {\"since\": 2020}}::edge";

static void test_graph_elements(void **state)
{
    (void)state;
    char path_text[1024];
    snprintf(path_text, sizeof path_text, "[%s, %s, %s]::path", vertex_text, edge_text,
             vertex_text);
    agec_value *p = agtype_parse_or_fail(path_text);
    agec_error err = AGEC_ERROR_INIT;
    int64_t id;
    const char *label;
    size_t len;

    assert_int_equal(agec_value_type(p), AGEC_TYPE_PATH);
    assert_int_equal(agec_path_length(p), 1);
    assert_int_equal(agec_value_length(p), 3);
    const agec_value *v = agec_path_vertex(p, 0);
    const agec_value *e = agec_path_edge(p, 0);
    assert_ptr_equal(agec_path_vertex(p, 1), agec_value_at(p, 2));
    assert_null(agec_path_vertex(p, 2));
    assert_null(agec_path_edge(p, 1));

    assert_int_equal(agec_element_id(v, &id, &err), AGEC_OK);
    assert_int_equal(id, 844424930131969);
    assert_int_equal(agec_element_label(v, &label, &len, &err), AGEC_OK);
    assert_string_equal(label, "Person");
    assert_int_equal(len, 6);
    const agec_value *props = agec_element_properties(v);
    assert_int_equal(agec_value_type(props), AGEC_TYPE_OBJECT);
    assert_int_equal(agec_value_get_int64(agec_value_get(props, "born", 4), &id, &err), AGEC_OK);
    assert_int_equal(id, 1815);
    /* a vertex is also an object */
    assert_int_equal(agec_value_length(v), 3);
    assert_non_null(agec_value_get(v, "label", 5));

    assert_int_equal(agec_value_type(e), AGEC_TYPE_EDGE);
    assert_int_equal(agec_element_id(e, &id, &err), AGEC_OK);
    assert_int_equal(id, 1125899906842625);
    assert_int_equal(agec_edge_start_id(e, &id, &err), AGEC_OK);
    assert_int_equal(id, 844424930131969);
    assert_int_equal(agec_edge_end_id(e, &id, &err), AGEC_OK);
    assert_int_equal(id, 844424930131970);
    assert_int_equal(agec_element_label(e, &label, NULL, &err), AGEC_OK);
    assert_string_equal(label, "KNOWS");
    assert_non_null(agec_value_get(agec_element_properties(e), "since", 5));

    /* wrong kinds */
    assert_int_equal(agec_edge_start_id(v, &id, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_element_id(p, &id, &err), AGEC_ERR_TYPE);
    assert_int_equal(agec_element_id(NULL, &id, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_element_id(v, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_element_label(v, NULL, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_null(agec_element_properties(p));
    assert_int_equal(agec_path_length(v), 0);
    assert_null(agec_path_vertex(v, 0));
    agec_value_free(p);
}

static void test_numeric_to_int64(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        agec_status st;
        int64_t want;
    } cases[] = {
        { "0", AGEC_OK, 0 },
        { "42", AGEC_OK, 42 },
        { "-7.000", AGEC_OK, -7 },
        { "1.5e3", AGEC_OK, 1500 },
        { "10.0", AGEC_OK, 10 },
        { "0.001e3", AGEC_OK, 1 },
        { "-0.0", AGEC_OK, 0 },
        { "12000e-3", AGEC_OK, 12 },
        { "9223372036854775807", AGEC_OK, INT64_MAX },
        { "-9223372036854775808", AGEC_OK, INT64_MIN },
        { "9223372036854775807.000", AGEC_OK, INT64_MAX },
        { "9223372036854775808", AGEC_ERR_RANGE, 0 },
        { "-9223372036854775809", AGEC_ERR_RANGE, 0 },
        { "12345678901234600000", AGEC_ERR_RANGE, 0 },
        { "1.5", AGEC_ERR_RANGE, 0 },
        { "120.50", AGEC_ERR_RANGE, 0 },
        { "1e-1", AGEC_ERR_RANGE, 0 },
        { "1e400", AGEC_ERR_RANGE, 0 },
        { "NaN", AGEC_ERR_RANGE, 0 },
        { "Infinity", AGEC_ERR_RANGE, 0 },
        { "abc", AGEC_ERR_INVALID_ARG, 0 },
        { "1.", AGEC_ERR_INVALID_ARG, 0 },
        { "1 ", AGEC_ERR_INVALID_ARG, 0 },
        { "", AGEC_ERR_INVALID_ARG, 0 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t out = 0;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_numeric_to_int64(cases[k].text, strlen(cases[k].text), &out, &err);
        if (st != cases[k].st || (st == AGEC_OK && out != cases[k].want))
            fail_msg("case <%s>: %s %lld", cases[k].text, agec_status_name(st), (long long)out);
    }
    int64_t out;
    assert_int_equal(agec_numeric_to_int64(NULL, 1, &out, NULL), AGEC_ERR_INVALID_ARG);
    /* not NUL-terminated: only len bytes count */
    assert_int_equal(agec_numeric_to_int64("123xyz", 3, &out, NULL), AGEC_OK);
    assert_int_equal(out, 123);
}

static void test_numeric_to_double(void **state)
{
    (void)state;
    double d;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_numeric_to_double("0.1", 3, &d, &err), AGEC_OK);
    assert_true(d == 0.1);
    const char *big = "12345678901234567890.123456789012345";
    assert_int_equal(agec_numeric_to_double(big, strlen(big), &d, &err), AGEC_OK);
    assert_true(d == 12345678901234567890.123456789012345);
    assert_int_equal(agec_numeric_to_double("NaN", 3, &d, &err), AGEC_OK);
    assert_true(isnan(d));
    assert_int_equal(agec_numeric_to_double("-Infinity", 9, &d, &err), AGEC_OK);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(agec_numeric_to_double("1e400", 5, &d, &err), AGEC_ERR_RANGE);
    assert_int_equal(agec_numeric_to_double("1,5", 3, &d, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_numeric_to_double("1.5", 3, NULL, &err), AGEC_ERR_INVALID_ARG);
    /* long text goes through the heap copy */
    char longtext[400];
    memset(longtext, '1', sizeof longtext);
    longtext[1] = '.';
    assert_int_equal(agec_numeric_to_double(longtext, sizeof longtext, &d, &err), AGEC_OK);
    assert_true(fabs(d - 1.1111111111111112) < 1e-15);
}

static void test_equality(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool equal;
    } cases[] = {
        { "1", "1", true },
        { "1", "1.0", false },
        { "1", "1::numeric", false },
        { "1.0", "1::float", true },
        { "NaN", "nan", true },
        { "0.0", "-0.0", false },
        { "1.50::numeric", "1.5::numeric", false },
        { "\"a\\u0000\"", "\"a\\u0000\"", true },
        { "\"a\"", "\"b\"", false },
        { "[1, [2, 3]]", "[1,[2,3]]", true },
        { "[1, [2, 3]]", "[1, [2, 4]]", false },
        { "[1, 2]", "[1, 2, 3]", false },
        { "{\"a\": 1, \"bb\": [true]}", "{\"bb\": [true], \"a\": 1}", true },
        { "{\"a\": 1}", "{\"b\": 1}", false },
        { "{\"a\": 1}", "{\"a\": 1, \"b\": 1}", false },
        { "{}", "[]", false },
        { "null", "null", true },
        { "true", "false", false },
        { "{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex",
          "{\"id\": 1, \"label\": \"L\", \"properties\": {}}", false },
        { "{\"id\": 1, \"label\": \"L\", \"properties\": {\"x\": 1}}::vertex",
          "{\"label\": \"L\", \"id\": 1, \"properties\": {\"x\": 1}}::vertex", true },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        agec_value *a = agtype_parse_or_fail(cases[k].a), *b = agtype_parse_or_fail(cases[k].b);
        if (agec_value_equal(a, b) != cases[k].equal || agec_value_equal(b, a) != cases[k].equal)
            fail_msg("case %zu: <%s> vs <%s>", k, cases[k].a, cases[k].b);
        assert_true(agec_value_equal(a, a));
        agec_value_free(a);
        agec_value_free(b);
    }
    assert_true(agec_value_equal(NULL, NULL));
    agec_value *one = agtype_parse_or_fail("1");
    assert_false(agec_value_equal(one, NULL));
    agec_value_free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_accessors),  cmocka_unit_test(test_object_lookup),
        cmocka_unit_test(test_graph_elements),    cmocka_unit_test(test_numeric_to_int64),
        cmocka_unit_test(test_numeric_to_double), cmocka_unit_test(test_equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
