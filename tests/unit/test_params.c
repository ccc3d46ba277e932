/* Issue 23, API items: C-string lookups (agec_value_get_key,
 * agec_element_property) and a parameter map in one call (agec_params). */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "agec/agtype.h"

static agec_value *parse(const char *text)
{
    agec_value *v = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_agtype_parse(text, strlen(text), 0, &v, &err), &err, text);
    return v;
}

static void test_cstring_lookups(void **state)
{
    (void)state;
    agec_value *v = parse("{\"id\": 844424930131969, \"label\": \"Person\", \"properties\": "
                          "{\"name\": \"Ada\", \"born\": 1815}}::vertex");
    const char *s = NULL;
    size_t len = 0;
    agec_test_must(agec_value_get_string(agec_element_property(v, "name"), &s, &len, NULL), NULL,
                   "name");
    assert_string_equal(s, "Ada");
    int64_t born = 0;
    agec_test_must(agec_value_get_int64(agec_element_property(v, "born"), &born, NULL), NULL,
                   "born");
    assert_true(born == 1815);
    assert_null(agec_element_property(v, "absent"));
    assert_null(agec_element_property(v, NULL));
    assert_null(agec_element_property(NULL, "name"));
    assert_non_null(agec_value_get_key(v, "label"));
    assert_null(agec_value_get_key(v, NULL));
    agec_value_free(v);
}

static void test_params_one_call(void **state)
{
    (void)state;
    char *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_params(&p, &err, AGEC_P_STR("name", "Ada \"the\" countess é"),
                               AGEC_P_INT("born", INT64_MIN), AGEC_P_DOUBLE("h", 1.5),
                               AGEC_P_BOOL("ok", 7), AGEC_P_NULL("none"),
                               AGEC_P_STR("nullstr", NULL), AGEC_P_AGTYPE("tags", "[1, \"x\"]")),
                   &err, "params");
    assert_int_equal(err.code, AGEC_OK);
    agec_value *v = parse(p);
    assert_int_equal(agec_value_type(v), AGEC_TYPE_OBJECT);
    assert_int_equal(agec_value_length(v), 7);
    const char *s = NULL;
    size_t len = 0;
    agec_test_must(agec_value_get_string(agec_value_get_key(v, "name"), &s, &len, NULL), NULL,
                   "name");
    assert_string_equal(s, "Ada \"the\" countess é");
    int64_t i = 0;
    agec_test_must(agec_value_get_int64(agec_value_get_key(v, "born"), &i, NULL), NULL, "born");
    assert_true(i == INT64_MIN);
    double d = 0;
    agec_test_must(agec_value_get_double(agec_value_get_key(v, "h"), &d, NULL), NULL, "h");
    assert_true(d == 1.5);
    bool b = false;
    agec_test_must(agec_value_get_bool(agec_value_get_key(v, "ok"), &b, NULL), NULL, "ok");
    assert_true(b);
    assert_int_equal(agec_value_type(agec_value_get_key(v, "none")), AGEC_TYPE_NULL);
    assert_int_equal(agec_value_type(agec_value_get_key(v, "nullstr")), AGEC_TYPE_NULL);
    assert_int_equal(agec_value_length(agec_value_get_key(v, "tags")), 2);
    agec_value_free(v);
    agec_free(p);

    /* Errors leave *out NULL. */
    p = (char *)"x";
    assert_int_equal(agec_params(&p, &err, AGEC_P_AGTYPE("bad", "[1,")), AGEC_ERR_PARSE);
    assert_null(p);
    assert_int_equal(agec_params(&p, &err, AGEC_P_STR("k", "\xff")), AGEC_ERR_INVALID_ARG);
    assert_null(p);
    assert_int_equal(agec_params(&p, &err, "k", 99, 1), AGEC_ERR_INVALID_ARG);
    assert_null(p);
    assert_int_equal(agec_params_build(NULL, &err, (const char *)0), AGEC_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cstring_lookups),
        cmocka_unit_test(test_params_one_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
