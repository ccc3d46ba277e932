/* agtype parser: grammar (table-driven), errors with offsets, bounds, depth,
 * and real server output from tests/fixtures/agtype. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"

/* Parse text (exactly len bytes, copied to a heap block of that size so that
 * ASan catches any read past the end). */
static agec_status parse_exact(const char *text, size_t len, unsigned flags, agec_value **out,
                               agec_error *err)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    agec_status st = agec_agtype_parse(copy, len, flags, out, err);
    free(copy);
    return st;
}

static char *to_agtype(const agec_value *v)
{
    char *out = NULL;
    size_t len = 0;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_value_to_agtype(v, &out, &len, &err), AGEC_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

/* --- valid input: type and canonical (server-style) rewrite ------------- */

static const struct ok_case {
    const char *in;
    agec_type type;
    const char *out; /* NULL: same as in */
} ok_cases[] = {
    { "0", AGEC_TYPE_INT, NULL },
    { "-0", AGEC_TYPE_INT, "0" },
    { "42", AGEC_TYPE_INT, NULL },
    { "-17", AGEC_TYPE_INT, NULL },
    { "9223372036854775807", AGEC_TYPE_INT, NULL },
    { "-9223372036854775808", AGEC_TYPE_INT, NULL },
    { "1.0", AGEC_TYPE_FLOAT, NULL },
    { "1.5", AGEC_TYPE_FLOAT, NULL },
    { "-2.25", AGEC_TYPE_FLOAT, NULL },
    { "1e5", AGEC_TYPE_FLOAT, "100000.0" },
    { "1E+100", AGEC_TYPE_FLOAT, "1e+100" },
    { "2.5e-3", AGEC_TYPE_FLOAT, "0.0025" },
    { "0.1", AGEC_TYPE_FLOAT, NULL },
    { "1e15", AGEC_TYPE_FLOAT, "1e+15" },
    { "1e14", AGEC_TYPE_FLOAT, "100000000000000.0" },
    { "0.0001", AGEC_TYPE_FLOAT, NULL },
    { "0.00001", AGEC_TYPE_FLOAT, "1e-05" },
    { "9.223372036854776e+18", AGEC_TYPE_FLOAT, NULL },
    { "1.7976931348623157e308", AGEC_TYPE_FLOAT, "1.7976931348623157e+308" },
    { "5e-324", AGEC_TYPE_FLOAT, NULL },
    { "0e-400", AGEC_TYPE_FLOAT, "0.0" }, /* zero, not an underflow */
    { "0.30000000000000004", AGEC_TYPE_FLOAT, NULL },
    { "123456789012345678901234567890.5", AGEC_TYPE_FLOAT, "1.2345678901234568e+29" },
    { "-0.0", AGEC_TYPE_FLOAT, NULL },
    { "NaN", AGEC_TYPE_FLOAT, NULL },
    { "nan", AGEC_TYPE_FLOAT, "NaN" },
    { "Infinity", AGEC_TYPE_FLOAT, NULL },
    { "-Infinity", AGEC_TYPE_FLOAT, NULL },
    { "-infinity", AGEC_TYPE_FLOAT, "-Infinity" },
    { "1::float", AGEC_TYPE_FLOAT, "1.0" },
    { "1.5::FLOAT", AGEC_TYPE_FLOAT, "1.5" },
    { " 1 :: float ", AGEC_TYPE_FLOAT, "1.0" },
    { "7::integer", AGEC_TYPE_INT, "7" },
    { "0.1::numeric", AGEC_TYPE_NUMERIC, NULL },
    { "12345678901234600000::numeric", AGEC_TYPE_NUMERIC, NULL },
    { "123456789012345678901234567890.123456789::numeric", AGEC_TYPE_NUMERIC, NULL },
    { "1e5::Numeric", AGEC_TYPE_NUMERIC, "1e5::numeric" },
    { "nan::numeric", AGEC_TYPE_NUMERIC, "NaN::numeric" },
    { "-infinity::numeric", AGEC_TYPE_NUMERIC, "-Infinity::numeric" },
    { "true", AGEC_TYPE_BOOL, NULL },
    { "false", AGEC_TYPE_BOOL, NULL },
    { "null", AGEC_TYPE_NULL, NULL },
    { "\"\"", AGEC_TYPE_STRING, NULL },
    { "\"plain\"", AGEC_TYPE_STRING, NULL },
    { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", AGEC_TYPE_STRING, "\"\\\"\\\\/\\b\\f\\n\\r\\t\"" },
    { "\"\\u0041\\u00e9\\u20AC\"", AGEC_TYPE_STRING, "\"A\xc3\xa9\xe2\x82\xac\"" },
    { "\"\\ud83d\\ude00\"", AGEC_TYPE_STRING, "\"\xf0\x9f\x98\x80\"" },
    { "\"\\u001f\\u007f\"", AGEC_TYPE_STRING, "\"\\u001f\x7f\"" },
    { "\"a\\tb\\u0001\xc3\xa9\xf0\x9f\x98\x80\"", AGEC_TYPE_STRING, NULL },
    { "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", AGEC_TYPE_STRING, NULL },
    { "\"a long string that is longer than eight bytes, escaped at the end\\n\"", AGEC_TYPE_STRING,
      NULL },
    { "[]", AGEC_TYPE_ARRAY, NULL },
    { "{}", AGEC_TYPE_OBJECT, NULL },
    { " [ 1 ,2,\t\"x\"\r\n] ", AGEC_TYPE_ARRAY, "[1, 2, \"x\"]" },
    { "[[[]]]", AGEC_TYPE_ARRAY, NULL },
    { "{\"b\":1,\"a\":{\"x\":[true,false,null]}}", AGEC_TYPE_OBJECT,
      "{\"b\": 1, \"a\": {\"x\": [true, false, null]}}" },
    { "[1.5::numeric, {\"n\": 2::float}]", AGEC_TYPE_ARRAY, "[1.5::numeric, {\"n\": 2.0}]" },
    { "{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex", AGEC_TYPE_VERTEX, NULL },
    { "{\"properties\": {}, \"label\": \"L\", \"id\": 1} :: VERTEX", AGEC_TYPE_VERTEX,
      "{\"properties\": {}, \"label\": \"L\", \"id\": 1}::vertex" },
    { "{\"id\": 2, \"label\": \"E\", \"end_id\": 3, \"start_id\": 1, \"properties\": {\"w\": "
      "1}}::edge",
      AGEC_TYPE_EDGE, NULL },
    { "[{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex]::path", AGEC_TYPE_PATH, NULL },
    { "[{\"id\": 1, \"label\": \"L\", \"properties\": {}}::vertex, {\"id\": 2, \"label\": \"E\", "
      "\"end_id\": 3, \"start_id\": 1, \"properties\": {}}::edge, {\"id\": 3, \"label\": \"L\", "
      "\"properties\": {}}::vertex]::path",
      AGEC_TYPE_PATH, NULL },
    { "{\"a\": 1, \"a\": 2}", AGEC_TYPE_OBJECT, NULL },
};

static void test_valid_grammar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *c = &ok_cases[i];
        agec_value *v = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = parse_exact(c->in, strlen(c->in), 0, &v, &err);
        if (st != AGEC_OK)
            fail_msg("case %zu <%s>: %s", i, c->in, err.message);
        assert_int_equal(agec_value_type(v), c->type);
        char *out = to_agtype(v);
        if (strcmp(out, c->out ? c->out : c->in) != 0)
            fail_msg("case %zu <%s>: wrote <%s>", i, c->in, out);
        /* and the rewrite parses back to an equal value */
        agec_value *v2 = NULL;
        assert_int_equal(agec_agtype_parse(out, strlen(out), 0, &v2, &err), AGEC_OK);
        assert_true(agec_value_equal(v, v2));
        agec_value_free(v2);
        agec_free(out);
        agec_value_free(v);
    }
}

/* --- invalid input: status and byte offset ------------------------------- */

static const struct bad_case {
    const char *in;
    size_t len; /* 0: strlen */
    agec_status code;
    int offset;
} bad_cases[] = {
    { "", 0, AGEC_ERR_PARSE, 0 },
    { "   ", 0, AGEC_ERR_PARSE, 3 },
    { "01", 0, AGEC_ERR_PARSE, 1 },
    { "-", 0, AGEC_ERR_PARSE, 1 },
    { "-x", 0, AGEC_ERR_PARSE, 1 },
    { "1.", 0, AGEC_ERR_PARSE, 2 },
    { "1.e5", 0, AGEC_ERR_PARSE, 2 },
    { "1e", 0, AGEC_ERR_PARSE, 2 },
    { "1e+", 0, AGEC_ERR_PARSE, 3 },
    { ".5", 0, AGEC_ERR_PARSE, 0 },
    { "+1", 0, AGEC_ERR_PARSE, 0 },
    { "0x10", 0, AGEC_ERR_PARSE, 1 },
    { "123abc", 0, AGEC_ERR_PARSE, 3 },
    { "9223372036854775808", 0, AGEC_ERR_RANGE, 0 },
    { "-9223372036854775809", 0, AGEC_ERR_RANGE, 0 },
    { "[1, 123456789012345678901]", 0, AGEC_ERR_RANGE, 4 },
    { "1e400", 0, AGEC_ERR_RANGE, 0 },
    { "-1e400", 0, AGEC_ERR_RANGE, 0 },
    { "1e-400", 0, AGEC_ERR_RANGE, 0 }, /* underflow to zero: PostgreSQL refuses it (issue 24) */
    { "Nan1", 0, AGEC_ERR_PARSE, 3 },
    { "-NaN", 0, AGEC_ERR_PARSE, 1 },
    { "Infinit", 0, AGEC_ERR_PARSE, 0 },
    { "tru", 0, AGEC_ERR_PARSE, 0 },
    { "truex", 0, AGEC_ERR_PARSE, 4 },
    { "nul", 0, AGEC_ERR_PARSE, 0 },
    { "True", 0, AGEC_ERR_PARSE, 0 },
    { "\"abc", 0, AGEC_ERR_PARSE, 0 },
    { "\"abc\\", 0, AGEC_ERR_PARSE, 4 },
    { "\"a\tb\"", 0, AGEC_ERR_PARSE, 2 },
    { "\"a\0b\"", 5, AGEC_ERR_PARSE, 2 },
    { "\"\\x\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\u12\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\u12", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\uZZZZ\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"ab\\ud83d\"", 0, AGEC_ERR_PARSE, 3 },
    { "\"\\ud83d\\u0041\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\ud83d\\ud83d\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\ude00\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\xc0\x80\"", 0, AGEC_ERR_PARSE, 1 },         /* overlong NUL */
    { "\"\xe0\x80\xaf\"", 0, AGEC_ERR_PARSE, 1 },     /* overlong '/' */
    { "\"\xed\xa0\x80\"", 0, AGEC_ERR_PARSE, 1 },     /* encoded surrogate */
    { "\"\xf4\x90\x80\x80\"", 0, AGEC_ERR_PARSE, 1 }, /* above U+10FFFF */
    { "\"ok\xe2\x82\"", 0, AGEC_ERR_PARSE, 3 },       /* truncated sequence */
    { "\"\x80\"", 0, AGEC_ERR_PARSE, 1 },             /* stray continuation */
    { "\"\xff\"", 0, AGEC_ERR_PARSE, 1 },
    { "\"\\n\xc3\"", 0, AGEC_ERR_PARSE, 3 }, /* invalid UTF-8 after an escape */
    { "[", 0, AGEC_ERR_PARSE, 1 },
    { "[1,", 0, AGEC_ERR_PARSE, 3 },
    { "[1,]", 0, AGEC_ERR_PARSE, 3 },
    { "[1 2]", 0, AGEC_ERR_PARSE, 3 },
    { "[1}", 0, AGEC_ERR_PARSE, 2 },
    { "]", 0, AGEC_ERR_PARSE, 0 },
    { "{", 0, AGEC_ERR_PARSE, 1 },
    { "{1: 2}", 0, AGEC_ERR_PARSE, 1 },
    { "{\"a\" 1}", 0, AGEC_ERR_PARSE, 5 },
    { "{\"a\": 1,}", 0, AGEC_ERR_PARSE, 8 },
    { "{\"a\": 1]", 0, AGEC_ERR_PARSE, 7 },
    { "{\"a\"::numeric: 1}", 0, AGEC_ERR_PARSE, 4 },
    { "[] []", 0, AGEC_ERR_PARSE, 3 },
    { "1 2", 0, AGEC_ERR_PARSE, 2 },
    { "1::", 0, AGEC_ERR_PARSE, 3 },
    { "1::bogus", 0, AGEC_ERR_PARSE, 3 },
    { "1:numeric", 0, AGEC_ERR_PARSE, 1 },
    { "1::numeric::numeric", 0, AGEC_ERR_PARSE, 10 },
    { "1.5::integer", 0, AGEC_ERR_PARSE, 0 },
    { "1::vertex", 0, AGEC_ERR_PARSE, 0 },
    { "\"x\"::numeric", 0, AGEC_ERR_PARSE, 3 },
    { "true::float", 0, AGEC_ERR_PARSE, 4 },
    { "[1]::numeric", 0, AGEC_ERR_PARSE, 3 },
    { "{\"id\": 1}::vertex", 0, AGEC_ERR_PARSE, 9 },
    { "{\"id\": 1, \"label\": \"x\", \"properties\": {}, \"extra\": 1}::vertex", 0, AGEC_ERR_PARSE,
      53 },
    { "{\"id\": \"1\", \"label\": \"x\", \"properties\": {}}::vertex", 0, AGEC_ERR_PARSE, 43 },
    { "{\"id\": 1, \"label\": \"x\", \"properties\": []}::vertex", 0, AGEC_ERR_PARSE, 41 },
    { "{\"id\": 1, \"label\": \"x\", \"properties\": {}}::edge", 0, AGEC_ERR_PARSE, 41 },
    { "[1]::vertex", 0, AGEC_ERR_PARSE, 3 },
    { "[]::path", 0, AGEC_ERR_PARSE, 2 },
    { "[1]::path", 0, AGEC_ERR_PARSE, 3 },
    { "[{\"id\": 1, \"label\": \"x\", \"properties\": {}}::vertex, {\"id\": 1, \"label\": "
      "\"x\", \"properties\": {}}::vertex]::path",
      0, AGEC_ERR_PARSE, 102 },
};

static void test_invalid_grammar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        agec_value *v = (agec_value *)&v; /* must be reset to NULL */
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = parse_exact(c->in, len, 0, &v, &err);
        if (st != c->code || err.position != c->offset)
            fail_msg("case %zu <%s>: got %s at %d (%s), want %s at %d", i, c->in,
                     agec_status_name(st), err.position, err.message, agec_status_name(c->code),
                     c->offset);
        assert_null(v);
        assert_int_equal(err.code, c->code);
        char at[32];
        snprintf(at, sizeof at, "at byte %d", c->offset);
        assert_non_null(strstr(err.message, at));
    }
}

/* Every proper prefix of a valid document fails cleanly (no crash, no
 * over-read under ASan), and the status is a parse or range error. */
static void test_every_prefix_fails(void **state)
{
    (void)state;
    const char *doc =
        "[{\"id\": 1, \"label\": \"L\", \"properties\": {\"s\": \"a\\u00e9\\ud83d\\ude00"
        "\xc3\xa9\", \"n\": -1.5e-3, \"m\": 12.5::numeric, \"t\": true}}::vertex]::path";
    size_t n = strlen(doc);
    agec_value *v;
    assert_int_equal(parse_exact(doc, n, 0, &v, NULL), AGEC_OK);
    agec_value_free(v);
    for (size_t len = 0; len < n; len++) {
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = parse_exact(doc, len, 0, &v, &err);
        if (st == AGEC_OK) {
            /* only "[...]" minus "::path" is itself complete */
            assert_int_equal(len, n - strlen("::path"));
            agec_value_free(v);
            continue;
        }
        assert_int_equal(st, AGEC_ERR_PARSE);
        assert_true(err.position >= 0 && (size_t)err.position <= len);
    }
}

static void test_json_mode(void **state)
{
    (void)state;
    agec_value *v;
    agec_error err = AGEC_ERROR_INIT;
    const char *ok = "{\"a\": [1, 2.5, \"x\", null, true], \"b\": {}}";
    assert_int_equal(agec_agtype_parse(ok, strlen(ok), AGEC_PARSE_JSON, &v, &err), AGEC_OK);
    assert_int_equal(agec_value_type(v), AGEC_TYPE_OBJECT);
    agec_value_free(v);

    static const struct {
        const char *in;
        int offset;
    } refused[] = {
        { "1::numeric", 1 },
        { "[1, {\"id\": 1, \"label\": \"x\", \"properties\": {}}::vertex]", 45 },
        { "NaN", 0 },
        { "[-Infinity]", 1 },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(
            agec_agtype_parse(refused[i].in, strlen(refused[i].in), AGEC_PARSE_JSON, &v, &err),
            AGEC_ERR_PARSE);
        assert_int_equal(err.position, refused[i].offset);
        assert_null(v);
    }
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    agec_value *v;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_agtype_parse("1", 1, 0, NULL, &err), AGEC_ERR_INVALID_ARG);
    assert_int_equal(agec_agtype_parse(NULL, 1, 0, &v, &err), AGEC_ERR_INVALID_ARG);
    assert_null(v);
    assert_int_equal(agec_agtype_parse("1", 1, 0x80, &v, &err), AGEC_ERR_INVALID_ARG);
    /* NULL text with length 0 is the empty document: a parse error */
    assert_int_equal(agec_agtype_parse(NULL, 0, 0, &v, &err), AGEC_ERR_PARSE);
    assert_int_equal(err.position, 0);
    /* err may be NULL */
    assert_int_equal(agec_agtype_parse("[", 1, 0, &v, NULL), AGEC_ERR_PARSE);
    assert_int_equal(agec_agtype_parse("1e999", 5, 0, &v, NULL), AGEC_ERR_RANGE);
    /* freeing NULL or a non-root does nothing */
    agec_value_free(NULL);
    assert_int_equal(agec_agtype_parse("[[1]]", 5, 0, &v, NULL), AGEC_OK);
    agec_value_free((agec_value *)agec_value_at(v, 0));
    assert_int_equal(agec_value_length(agec_value_at(v, 0)), 1);
    agec_value_free(v);
}

/* Text is ptr+len: bytes after len are never looked at. */
static void test_length_is_respected(void **state)
{
    (void)state;
    agec_value *v;
    assert_int_equal(agec_agtype_parse("12345", 2, 0, &v, NULL), AGEC_OK);
    int64_t i = 0;
    assert_int_equal(agec_value_get_int64(v, &i, NULL), AGEC_OK);
    assert_int_equal(i, 12);
    agec_value_free(v);
    assert_int_equal(agec_agtype_parse("\"ab\" garbage", 4, 0, &v, NULL), AGEC_OK);
    agec_value_free(v);
    assert_int_equal(agec_agtype_parse("[1]::path", 3, 0, &v, NULL), AGEC_OK);
    assert_int_equal(agec_value_type(v), AGEC_TYPE_ARRAY);
    agec_value_free(v);
}

static void test_strings_with_nul(void **state)
{
    (void)state;
    agec_value *v;
    const char *in = "{\"k\\u0000ey\": \"a\\u0000b\"}";
    assert_int_equal(agec_agtype_parse(in, strlen(in), 0, &v, NULL), AGEC_OK);
    const agec_value *s = agec_value_get(v, "k\0ey", 4);
    assert_non_null(s);
    assert_null(agec_value_get(v, "k", 1));
    const char *p;
    size_t n;
    assert_int_equal(agec_value_get_string(s, &p, &n, NULL), AGEC_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 4); /* NUL-terminated too */
    char *out = to_agtype(v);
    assert_string_equal(out, "{\"k\\u0000ey\": \"a\\u0000b\"}");
    agec_free(out);
    agec_value_free(v);
}

/* A million nested arrays / objects: no recursion, no limit, no leak. */
static void test_deep_nesting(void **state)
{
    (void)state;
    const size_t depth = 1000000;
    char *text = malloc(2 * depth);
    assert_non_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    agec_value *v;
    agec_error err = AGEC_ERROR_INIT;
    assert_int_equal(agec_agtype_parse(text, 2 * depth, 0, &v, &err), AGEC_OK);
    const agec_value *cur = v;
    size_t levels = 0;
    while (agec_value_length(cur) == 1) {
        cur = agec_value_at(cur, 0);
        levels++;
    }
    assert_int_equal(levels, depth - 1);
    assert_int_equal(agec_value_type(cur), AGEC_TYPE_ARRAY);

    /* writer and equality are iterative too */
    char *out;
    size_t len;
    assert_int_equal(agec_value_to_agtype(v, &out, &len, &err), AGEC_OK);
    assert_int_equal(len, 2 * depth);
    assert_memory_equal(out, text, len);
    agec_value *v2;
    assert_int_equal(agec_agtype_parse(out, len, 0, &v2, &err), AGEC_OK);
    assert_true(agec_value_equal(v, v2));
    agec_free(out);
    agec_value_free(v2);
    agec_value_free(v);

    /* unbalanced: reports the end */
    assert_int_equal(agec_agtype_parse(text, 2 * depth - 1, 0, &v, &err), AGEC_ERR_PARSE);
    assert_int_equal(err.position, (int)(2 * depth - 1));
    free(text);

    /* {"a": {"a": ... 1 ...}} */
    const size_t odepth = 300000;
    const char open[] = "{\"a\": ";
    size_t olen = sizeof open - 1;
    text = malloc(odepth * (olen + 1) + 1);
    assert_non_null(text);
    size_t k = 0;
    for (size_t i = 0; i < odepth; i++, k += olen)
        memcpy(text + k, open, olen);
    text[k++] = '1';
    memset(text + k, '}', odepth);
    k += odepth;
    assert_int_equal(agec_agtype_parse(text, k, 0, &v, &err), AGEC_OK);
    cur = v;
    for (size_t i = 0; i < odepth; i++)
        cur = agec_value_get(cur, "a", 1);
    assert_int_equal(agec_value_type(cur), AGEC_TYPE_INT);
    agec_value_free(v);
    free(text);
}

/* A wide document: many siblings, long strings. */
static void test_wide_and_long(void **state)
{
    (void)state;
    const size_t n = 200000;
    char *text = malloc(n * 4 + 16);
    assert_non_null(text);
    size_t k = 0;
    text[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            text[k++] = ',';
        text[k++] = (char)('0' + i % 10);
    }
    text[k++] = ']';
    agec_value *v;
    assert_int_equal(agec_agtype_parse(text, k, 0, &v, NULL), AGEC_OK);
    assert_int_equal(agec_value_length(v), n);
    int64_t x;
    assert_int_equal(agec_value_get_int64(agec_value_at(v, n - 1), &x, NULL), AGEC_OK);
    assert_int_equal(x, (int64_t)((n - 1) % 10));
    assert_null(agec_value_at(v, n));
    agec_value_free(v);
    free(text);

    const size_t slen = 1 << 20;
    text = malloc(slen + 2);
    assert_non_null(text);
    text[0] = '"';
    for (size_t i = 1; i <= slen; i++)
        text[i] = (char)('a' + i % 26);
    text[slen + 1] = '"';
    assert_int_equal(agec_agtype_parse(text, slen + 2, 0, &v, NULL), AGEC_OK);
    const char *p;
    size_t len;
    assert_int_equal(agec_value_get_string(v, &p, &len, NULL), AGEC_OK);
    assert_int_equal(len, slen);
    assert_memory_equal(p, text + 1, slen);
    agec_value_free(v);
    free(text);
}

/* Real server output: parses, and writes back byte for byte. */
static void test_server_fixtures(void **state)
{
    (void)state;
    FILE *f = fopen(AGEC_FIXTURES_DIR "/agtype/server_outputs.txt", "r");
    assert_non_null(f);
    char line[8192];
    int count = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            continue;
        agec_value *v;
        agec_error err = AGEC_ERROR_INIT;
        if (parse_exact(line, n, 0, &v, &err) != AGEC_OK)
            fail_msg("fixture <%s>: %s", line, err.message);
        char *out = to_agtype(v);
        if (strcmp(out, line) != 0)
            fail_msg("fixture <%s> written as <%s>", line, out);
        agec_free(out);
        agec_value_free(v);
        count++;
    }
    fclose(f);
    assert_true(count >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_grammar),      cmocka_unit_test(test_invalid_grammar),
        cmocka_unit_test(test_every_prefix_fails), cmocka_unit_test(test_json_mode),
        cmocka_unit_test(test_invalid_arguments),  cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_strings_with_nul),   cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_wide_and_long),      cmocka_unit_test(test_server_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
