/*
 * The loader's CSV reader (src/load/csv.c) and its pure helpers
 * (src/load/fields.c), table-driven: each input's records (fields shown
 * as text, a quoted field in [brackets]) or its error with line and field.
 * The differential test it_load_csv_pg holds the reader against
 * PostgreSQL's COPY; this pins the details (positions, BOM, line ends).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/csv.h"
#include "load/fields.h"

static const struct csv_case {
    const char *in;
    const char *want;  /* records: fields joined by '|', records by '/'; [x] = quoted */
    const char *error; /* a piece of the error, NULL = none */
    unsigned line, field;
    size_t n; /* bytes of in; 0 = strlen (an input with a NUL gives it) */
} cases[] = {
    { "a,b\nc,d\n", "a|b/c|d", NULL, 0, 0, 0 },
    { "a,b\r\nc,d", "a|b/c|d", NULL, 0, 0, 0 },
    { "a,b\rc,d\r", "a|b/c|d", NULL, 0, 0, 0 },
    { ",\"\",x\n", "|[]|x", NULL, 0, 0, 0 },
    { "\"a,b\",\"say \"\"hi\"\"\"\n", "[a,b]|[say \"hi\"]", NULL, 0, 0, 0 },
    { "x,\"b\r\"\n", "x|[b\r]", NULL, 0, 0, 0 }, /* CR before the closing quote */
    { "x,\"two\nlines\"\ny\n", "x|[two\nlines]/y", NULL, 0, 0, 0 }, /* the next record is line 3 */
    { "\xef\xbb\xbfuid,name\n", "uid|name", NULL, 0, 0, 0 },        /* BOM skipped */
    { "\xef\xbb\x80x\n", "\xef\xbb\x80x", NULL, 0, 0, 0 },          /* not a BOM: data */
    { "\n", "", NULL, 0, 0, 0 },                                    /* a blank line */
    { "a\n1,\"hello\n2,x\n", NULL, "not closed", 2, 2, 0 },
    { "a\n1,\"a\"b\n", NULL, "closing quote followed", 2, 2, 0 },
    { "a\n1,a\"b\n", NULL, "quote inside an unquoted", 2, 2, 0 },
    { "a,b\nc\rd,e\n", NULL, "carriage return in a file whose lines end in LF", 2, 1, 0 },
    { "a,b\r\nc,d\ne\r\n", NULL, "line feed alone", 2, 2, 0 },
    { "a\rb\nc\r", NULL, "line feed in a file whose lines end in CR", 2, 1, 0 },
    { "a\nb\0c\n", NULL, "NUL", 2, 1, 6 },
    { "a\n\"x\ny\nz\"\"\n", NULL, "not closed", 2, 1, 0 },
};

static void read_all(const struct csv_case *c, char *got, size_t cap, agec__csv *r, int *k)
{
    FILE *f = fmemopen((void *)(uintptr_t)c->in, c->n ? c->n : strlen(c->in), "r");
    assert_non_null(f);
    agec__csv_init(r, f);
    got[0] = '\0';
    while ((*k = agec__csv_read(r)) == AGEC__CSV_RECORD) {
        if (got[0] != '\0' || r->line > 1)
            strncat(got, "/", cap - strlen(got) - 1);
        for (size_t i = 0; i < r->n; i++) {
            if (i > 0)
                strncat(got, "|", cap - strlen(got) - 1);
            if (r->quoted[i])
                strncat(got, "[", cap - strlen(got) - 1);
            strncat(got, r->text.data + r->off[i],
                    r->len[i] < cap - strlen(got) - 1 ? r->len[i] : 0);
            if (r->quoted[i])
                strncat(got, "]", cap - strlen(got) - 1);
        }
    }
    fclose(f);
}

static void test_reader_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct csv_case *c = &cases[i];
        char got[512];
        agec__csv r;
        int k;
        read_all(c, got, sizeof got, &r, &k);
        if (c->error == NULL) {
            if (k != AGEC__CSV_EOF || strcmp(got, c->want) != 0)
                fail_msg("case %zu: got \"%s\" (%d, %s), want \"%s\"", i, got, k,
                         r.error ? r.error : "", c->want);
        } else if (k != AGEC__CSV_BAD || strstr(r.error, c->error) == NULL ||
                   r.err_line != c->line || r.err_field != c->field) {
            fail_msg("case %zu: got %d \"%s\" line %llu field %zu, want \"%s\" line %u field %u", i,
                     k, r.error ? r.error : "", (unsigned long long)r.err_line, r.err_field,
                     c->error, c->line, c->field);
        }
        agec__csv_free(&r);
    }
}

/* Record lines: the line a record starts on, across quoted line ends. */
static void test_record_lines(void **state)
{
    (void)state;
    const char *in = "h\n\"a\nb\"\nc\n";
    FILE *f = fmemopen((void *)(uintptr_t)in, strlen(in), "r");
    agec__csv r;
    agec__csv_init(&r, f);
    unsigned want[] = { 1, 2, 4 };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(agec__csv_read(&r), AGEC__CSV_RECORD);
        assert_int_equal(r.line, want[i]);
    }
    assert_int_equal(agec__csv_read(&r), AGEC__CSV_EOF);
    agec__csv_free(&r);
    fclose(f);
}

static void test_graph_ids_and_keys(void **state)
{
    (void)state;
    int64_t id;
    assert_true(agec__graph_id_parse("9223372036854775807", 19, &id));
    assert_true(id == INT64_MAX);
    assert_false(agec__graph_id_parse("9223372036854775808", 19, &id));
    assert_false(agec__graph_id_parse("99999999999999999999", 20, &id));
    assert_false(agec__graph_id_parse(" 5", 2, &id));
    assert_false(agec__graph_id_parse("-5", 2, &id));
    assert_false(agec__graph_id_parse("+5", 2, &id));
    assert_false(agec__graph_id_parse("", 0, &id));
    char canon[24];
    size_t n;
    assert_true(agec__int_key_canonical("007", 3, canon, &n));
    assert_string_equal(canon, "7");
    assert_true(agec__int_key_canonical("+8", 2, canon, &n));
    assert_string_equal(canon, "8");
    assert_false(agec__int_key_canonical("7", 1, canon, &n)); /* already canonical */
    assert_false(agec__int_key_canonical("Ada", 3, canon, &n));
    assert_true(agec__text_has_nul("{\"a\": \"\\u0000\"}", 15));
    assert_false(agec__text_has_nul("{\"a\": \"\\\\u0000\"}", 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_cases),
        cmocka_unit_test(test_record_lines),
        cmocka_unit_test(test_graph_ids_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
