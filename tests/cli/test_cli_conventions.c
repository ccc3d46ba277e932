/*
 * Issue 11, item 3: the conventions of command-line tools.
 *  - `agec COMMAND --help`, `agec COMMAND -h` and `agec help COMMAND` print
 *    the command's usage with its options and an example and exit 0, for
 *    every command listed by `agec --help`, without connecting (the DSN
 *    points at a port nobody listens on: connecting would exit 3).
 *  - `agec bench --format json` reports every field of agec_pool_stats: the
 *    field names are read from the struct in include/agec/pool.h itself.
 *  - the shell runs several statements typed on one line, split at ';'
 *    outside strings, names, dollar quotes and comments (stdin, no terminal).
 */
#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"
#include "cli_run.h"

#define NOWHERE "host=127.0.0.1 port=1 connect_timeout=1"

/* The command names of `agec --help` (lines "  NAME ..." under "commands:"). */
static size_t help_commands(char names[][32], size_t cap)
{
    run_out *r = RUN(NULL, "--help");
    expect_status(r, 0);
    const char *p = strstr(r->out, "\ncommands:\n");
    assert_non_null(p);
    p += strlen("\ncommands:\n");
    size_t n = 0;
    while (*p == ' ' && n < cap) {
        if (p[1] == ' ' && p[2] != ' ') {
            size_t k = 0;
            for (const char *q = p + 2; isalpha((unsigned char)*q) && k < 31; q++)
                names[n][k++] = *q;
            names[n++][k] = '\0';
        }
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        p++;
    }
    free(r);
    return n;
}

static void test_every_command_has_help(void **state)
{
    (void)state;
    char names[32][32];
    size_t n = help_commands(names, 32);
    assert_true(n >= 7); /* query sql graph shell bench demo help */
    for (size_t i = 0; i < n; i++) {
        const char *cmd = names[i];
        run_out *a = RUN(NULL, "--dsn", NOWHERE, cmd, "--help");
        if (a->status != 0)
            fail_msg("agec %s --help: exit %d\n%s%s", cmd, a->status, a->out, a->err);
        char want[64];
        snprintf(want, sizeof want, " %.40s", cmd);
        const char *ex = strstr(a->out, "\nexample:\n  ");
        if (strncmp(a->out, "usage: agec", 11) != 0 || strstr(a->out, want) == NULL ||
            strstr(a->out, "\noptions") == NULL || ex == NULL || strstr(ex, "agec ") == NULL)
            fail_msg("agec %s --help: no usage, options and example:\n%s", cmd, a->out);
        assert_string_equal(a->err, "");
        run_out *b = RUN(NULL, "--dsn", NOWHERE, "help", cmd);
        expect_status(b, 0);
        assert_string_equal(a->out, b->out);
        free(b);
        b = RUN(NULL, "--dsn", NOWHERE, cmd, "-h");
        expect_status(b, 0);
        assert_string_equal(a->out, b->out);
        free(b);
        free(a);
    }
    /* --help after other arguments, and sql never sends "--help" as SQL. */
    run_out *r = RUN(NULL, "--dsn", NOWHERE, "sql", "--help");
    expect_status(r, 0);
    assert_null(strstr(r->err, "AGEC_ERR"));
    free(r);
    r = RUN(NULL, "--dsn", NOWHERE, "graph", "create", "x", "--help");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "graph ACTION"));
    free(r);
    r = RUN(NULL, "help", "no_such_command");
    expect_status(r, 2);
    assert_non_null(strstr(r->err, "no_such_command"));
    free(r);
    r = RUN(NULL, "help");
    expect_status(r, 0);
    assert_non_null(strstr(r->out, "commands:"));
    free(r);
}

/* Field names of agec_pool_stats, from the header. */
static size_t stats_fields(char names[][40], size_t cap)
{
    FILE *f = fopen(AGEC_SOURCE_DIR "/include/agec/pool.h", "r");
    assert_non_null(f);
    static char text[200000];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *a = strstr(text, "typedef struct agec_pool_stats {");
    assert_non_null(a);
    a = strchr(a, '{') + 1;
    char *b = strstr(a, "} agec_pool_stats;");
    assert_non_null(b);
    *b = '\0';
    for (char *c = strstr(a, "/*"); c != NULL; c = strstr(c, "/*")) { /* blank out comments */
        char *e = strstr(c + 2, "*/");
        assert_non_null(e);
        memset(c, ' ', (size_t)(e + 2 - c));
    }
    size_t n = 0;
    for (char *decl = strtok(a, ";"); decl != NULL && n < cap; decl = strtok(NULL, ";")) {
        char *br = strchr(decl, '[');
        if (br)
            *br = '\0';
        size_t l = strlen(decl);
        while (l > 0 && isspace((unsigned char)decl[l - 1]))
            decl[--l] = '\0';
        size_t s = l;
        while (s > 0 && (isalnum((unsigned char)decl[s - 1]) || decl[s - 1] == '_'))
            s--;
        if (s == l)
            continue;
        snprintf(names[n++], 40, "%s", decl + s);
    }
    return n;
}

static void test_bench_reports_every_pool_stat(void **state)
{
    (void)state;
    char names[128][40];
    size_t n = stats_fields(names, 128);
    assert_true(n >= 30);
    run_out *r = RUN(NULL, "--dsn", agec_test_pg_conninfo(), "--age-mode", "off", "--format",
                     "json", "bench", "--sql", "SELECT 1", "--threads", "2", "--count", "40");
    expect_status(r, 0);
    agec_value *v = NULL;
    if (agec_agtype_parse(r->out, strlen(r->out), AGEC_PARSE_JSON, &v, NULL) != AGEC_OK)
        fail_msg("bench output is not one JSON object: %s", r->out);
    const agec_value *pool = agec_value_get(v, "pool", 4);
    assert_non_null(pool);
    /* Per-node statistics only with a multi-host DSN (it_cluster). */
    assert_null(agec_value_get(v, "nodes", 5));
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "struct_size") == 0)
            continue;
        if (agec_value_get(pool, names[i], strlen(names[i])) == NULL)
            fail_msg("agec_pool_stats.%s is missing from bench's \"pool\": %s", names[i], r->out);
        checked++;
    }
    /* closed by reason, buckets with their bounds, values that add up. */
    const agec_value *closed = agec_value_get(pool, "closed", 6);
    assert_int_equal(agec_value_type(closed), AGEC_TYPE_OBJECT);
    assert_non_null(agec_value_get(closed, "validation", 10));
    assert_non_null(agec_value_get(closed, "shutdown", 8));
    int64_t acquires = -1, releases = -1;
    assert_int_equal(agec_value_get_int64(agec_value_get(pool, "acquires", 8), &acquires, NULL),
                     AGEC_OK);
    assert_int_equal(agec_value_get_int64(agec_value_get(pool, "releases", 8), &releases, NULL),
                     AGEC_OK);
    assert_int_equal(acquires, 40);
    assert_int_equal(releases, 40);
    assert_int_equal(agec_value_length(agec_value_get(pool, "wait_bucket", 11)), 12);
    print_message("bench json: all %zu fields of agec_pool_stats present\n", checked);
    agec_value_free(v);
    free(r);
}

static void test_shell_runs_each_statement_of_a_line(void **state)
{
    (void)state;
    const char *dsn = agec_test_age_conninfo();
    run_out *r = RUN(NULL, "--dsn", dsn, "graph", "create", "cli_semi");
    free(r);
    r = RUN("RETURN 1 AS one; RETURN 2 AS two;\n"
            "RETURN 'a;b' AS s; /* ; */ RETURN \"c;d\" AS t; // e;f\n"
            "RETURN `x;y` AS q;\n" /* a name with ';': one statement, the server's error */
            "RETURN 3\n"
            "  AS three;  \n"
            "RETURN $$g;h$$ AS dq;\n", /* one statement (dollar quote), one error */
            "--dsn", dsn, "--graph", "cli_semi", "shell");
    expect_status(r, 0);
    static const char *const want[] = { " one", " two", " a;b", " c;d", " three" };
    const char *at = r->out;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *p = strstr(at, want[i]);
        if (p == NULL)
            fail_msg("shell output lacks %s (in order):\n%s\nstderr:\n%s", want[i], r->out, r->err);
        at = p;
    }
    size_t times = 0;
    for (const char *p = r->out; (p = strstr(p, "Time: ")) != NULL; p++)
        times++;
    size_t errors = 0;
    for (const char *p = r->err; (p = strstr(p, "query failed")) != NULL; p++)
        errors++;
    if (times != 5 || errors != 2)
        fail_msg("want 5 results and 2 errors, got %zu and %zu:\n%s\nstderr:\n%s", times, errors,
                 r->out, r->err);
    assert_null(strstr(r->err, "e;f"));
    free(r);
    r = RUN(NULL, "--dsn", dsn, "graph", "drop", "--cascade", "cli_semi");
    expect_status(r, 0);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_help),
        cmocka_unit_test(test_bench_reports_every_pool_stat),
        cmocka_unit_test(test_shell_runs_each_statement_of_a_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
