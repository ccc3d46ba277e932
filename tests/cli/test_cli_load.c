/*
 * Issue 24: `agec load` never loses a row in silence: the counts in
 * --format json add up (rows = vertices + edges + rejected + skipped),
 * --resume appends to the reject file (the first run's rejects stay, and
 * rows before the resume point are not rejected again), and --resume
 * takes the numbers past 2^31 that a big load prints.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agec/agtype.h"

#include "cli_run.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int lines_of(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static int64_t field(const agec_value *v, const char *name)
{
    int64_t n = -1;
    assert_int_equal(agec_value_get_int64(agec_value_get(v, name, strlen(name)), &n, NULL),
                     AGEC_OK);
    return n;
}

/* The JSON summary of r, its counts checked to add up. */
static agec_value *summary(const run_out *r)
{
    agec_value *v = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_agtype_parse(r->out, strlen(r->out), 0, &v, &err), &err, r->out);
    if (field(v, "rows") !=
        field(v, "vertices") + field(v, "edges") + field(v, "rejected") + field(v, "skipped"))
        fail_msg("counts do not add up: %s", r->out);
    return v;
}

static void test_resume_appends_and_counts(void **state)
{
    (void)state;
    char dir[] = "/tmp/agec-cli-load24-XXXXXX", p[96], rej[96], vp[128];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/people.csv", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    snprintf(vp, sizeof vp, "Person=%s", p);
    put(p, "uid:int,name\n1,a\nbad,b\n3,c\n4,d\nworse,e\n6,f\n");
    const char *dsn = agec_test_age_conninfo();
    run_out *r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_load24");
    free(r);
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_load24", "load", "--vertices", vp, "--reject", rej,
            "--format", "json");
    expect_status(r, 0);
    agec_value *v = summary(r);
    assert_int_equal(field(v, "rows"), 6);
    assert_int_equal(field(v, "rejected"), 2);
    agec_value_free(v);
    free(r);
    assert_int_equal(lines_of(rej), 2);
    /* A resumed run: the rows before the resume point are not read again
     * (bad is not rejected twice); its reject is appended. */
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_load24", "load", "--vertices", vp, "--reject", rej,
            "--resume", "3", "--format", "json");
    expect_status(r, 0);
    v = summary(r);
    assert_int_equal(field(v, "skipped"), 3);
    assert_int_equal(field(v, "rejected"), 1);
    agec_value_free(v);
    free(r);
    assert_int_equal(lines_of(rej), 3);
    /* A resume point past 2^31 (what a big load prints) is taken. */
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_load24", "load", "--vertices", vp, "--resume",
            "3000000000", "--format", "json");
    expect_status(r, 0);
    v = summary(r);
    assert_int_equal(field(v, "skipped"), 6);
    agec_value_free(v);
    free(r);
    /* A syntax error: exit 2, file:line:column named, counts still add up. */
    put(p, "uid:int,name\n1,a\n2,\"Bob\n3,Cy\n");
    r = RUN(NULL, "--dsn", dsn, "--graph", "cli_load24", "load", "--vertices", vp, "--reject", rej,
            "--format", "json");
    expect_status(r, 2);
    v = summary(r);
    agec_value_free(v);
    char want[160];
    snprintf(want, sizeof want, "%s:3: column 2: a quoted field opened here is not closed", p);
    if (strstr(r->out, want) == NULL)
        fail_msg("want %s in %s", want, r->out);
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_load24");
    expect_status(r, 0);
    free(r);
    unlink(p);
    unlink(rej);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_appends_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
