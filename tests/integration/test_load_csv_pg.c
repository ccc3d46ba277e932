/*
 * Issue 24: the loader never loses a row in silence.
 *
 * The differential test: every file of a corpus (RFC 4180 corner cases,
 * the reports, and a seeded generator of quoted and unquoted
 * fields with commas, quotes, CR, LF, CRLF and multi-byte characters, some
 * mutated by one byte) goes to PostgreSQL's own CSV parser, `COPY t FROM
 * STDIN (FORMAT csv, HEADER)` into text columns (the oracle), and to
 * agec_loader_file() on PG15 with the stand-in for AGE's catalog. Both
 * must read the same rows (NULL = no property, '' = ""), or, where
 * PostgreSQL refuses, agec must fail with AGEC_ERR_INPUT naming
 * file:line and have loaded nothing. agec may refuse what COPY reads only
 * in the documented ways (a stray quote: csv.h, docs/loading.md).
 *
 * Then the loader's counts, rejects and resume (the numbered items).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agec/agec.h"
#include "agec/load.h"
#include "load/copy.h"
#include "session/clock.h"

static agec_pool *admin, *pool;
static char dir[] = "/tmp/agec-csv-pg-XXXXXX";
static int labels; /* a new label per case */

static int setup(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &admin, &err), &err, "open");
    pool = agec_test_stub_age_pool(admin, "agec_csv_oracle");
    if (mkdtemp(dir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agec_pool_close(pool, 1000, NULL);
    agec_conn *c = agec_test_acquire(admin);
    agec_test_sql(c, "DROP DATABASE IF EXISTS agec_csv_oracle");
    agec_conn_release(c);
    agec_pool_close(admin, 1000, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Rows read: cell[r * ncols + c], NULL for SQL NULL / no property. */
typedef struct table {
    bool ok;
    size_t nrows, ncols;
    char **cell;
    char error[AGEC_ERROR_TEXT_MAX + 8];
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cell[i]);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

static void table_from(table *t, agec_result *res, size_t ncols, bool props)
{
    t->ok = true;
    t->ncols = ncols;
    t->nrows = res != NULL ? (size_t)agec_result_rows(res) : 0;
    t->cell = calloc(t->nrows * ncols + 1, sizeof *t->cell);
    for (size_t r = 0; r < t->nrows; r++) {
        if (!props) {
            for (size_t c = 0; c < ncols; c++)
                if (!agec_result_is_null(res, r, c))
                    t->cell[r * ncols + c] = strdup(agec_result_text(res, r, c, NULL));
            continue;
        }
        const char *text = agec_result_text(res, r, 0, NULL);
        agec_value *v = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_test_must(agec_agtype_parse(text, strlen(text), 0, &v, &err), &err, text);
        assert_int_equal(agec_value_type(v), AGEC_TYPE_OBJECT);
        for (size_t c = 0; c < ncols; c++) {
            char key[16];
            int kn = snprintf(key, sizeof key, "c%zu", c + 1);
            const agec_value *p = agec_value_get(v, key, (size_t)kn);
            const char *s;
            size_t n;
            if (p == NULL)
                continue;
            assert_int_equal(agec_value_get_string(p, &s, &n, NULL), AGEC_OK);
            t->cell[r * ncols + c] = strndup(s, n);
        }
        if (agec_value_length(v) > ncols)
            fail_msg("agec row %zu has properties beyond c1..c%zu: %s", r, ncols, text);
        agec_value_free(v);
    }
}

/* The oracle: COPY into a table of ncols text columns. */
static void oracle(agec_conn *c, const char *data, size_t len, size_t ncols, table *t)
{
    memset(t, 0, sizeof *t);
    char cols[400] = "", q[1000];
    for (size_t i = 0; i < ncols; i++)
        snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%sc%zu", i ? ", " : "", i + 1);
    /* every column text: "c1 text, c2 text" */
    char def[400] = "";
    for (size_t i = 0; i < ncols; i++)
        snprintf(def + strlen(def), sizeof def - strlen(def), ", c%zu text", i + 1);
    snprintf(q, sizeof q, "CREATE TABLE oracle_t (n serial%s)", def);
    agec_test_sql(c, "DROP TABLE IF EXISTS oracle_t");
    agec_test_sql(c, q);
    snprintf(q, sizeof q, "COPY oracle_t (%s) FROM STDIN (FORMAT csv, HEADER)", cols);
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec__copy_in(c, q, data, len, agec__now_us() + 30 * 1000000LL, NULL, &err);
    if (st != AGEC_OK) {
        snprintf(t->error, sizeof t->error, "%s", err.message);
        return;
    }
    snprintf(q, sizeof q, "SELECT %s FROM oracle_t ORDER BY n", cols);
    agec_result *res = NULL;
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &res, &err), &err, q);
    table_from(t, res, ncols, false);
    agec_result_free(res);
}

/* agec: the file loaded as vertices of a new label (all columns strings),
 * read back by id. */
static void agec_side(agec_conn *c, const char *path, size_t ncols, table *t, int *label)
{
    memset(t, 0, sizeof *t);
    char name[32], q[200];
    *label = ++labels;
    snprintf(name, sizeof name, "T%d", *label);
    agec_loader *ld = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_loader_open(c, "oracle", NULL, &ld, &err), &err, "loader open");
    agec_status st = agec_loader_file(ld, false, name, path, AGEC_FORMAT_CSV, &err);
    if (st == AGEC_OK)
        st = agec_loader_finish(ld, NULL, &err);
    agec_load_stats s;
    agec_loader_stats(ld, &s);
    assert_int_equal(s.rows, s.vertices + s.edges + s.rejected + s.skipped);
    agec_loader_free(ld);
    if (st != AGEC_OK) {
        if (st != AGEC_ERR_INPUT)
            fail_msg("%s: agec failed with %s, not AGEC_ERR_INPUT: %s", path, agec_status_name(st),
                     err.message);
        /* file:line: ... */
        size_t pl = strlen(path);
        if (strncmp(err.message, path, pl) != 0 || err.message[pl] != ':' ||
            err.message[pl + 1] < '1' || err.message[pl + 1] > '9')
            fail_msg("%s: the error does not name file:line: %s", path, err.message);
        snprintf(t->error, sizeof t->error, "%s", err.message);
        /* nothing of it in the graph: the label was never committed */
        snprintf(q, sizeof q, "SELECT to_regclass('oracle.\"%s\"') IS NULL", name);
        agec_result *res = NULL;
        agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &res, &err), &err, q);
        assert_string_equal(agec_result_text(res, 0, 0, NULL), "t");
        agec_result_free(res);
        return;
    }
    snprintf(q, sizeof q, "SELECT properties::text FROM oracle.\"%s\" ORDER BY id", name);
    agec_result *res = NULL;
    if (s.vertices == 0) {
        table_from(t, NULL, ncols, true);
        return;
    }
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &res, &err), &err, q);
    table_from(t, res, ncols, true);
    agec_result_free(res);
}

/* What a case may show besides agreement. */
enum { AGREE = 0, MAY_REFUSE_QUOTE = 1, AGEC_READS_BLANK = 2 };

typedef struct tally {
    int same, both_refuse, quote_refused, bad;
} tally;

static void show(const char *data, size_t len)
{
    fprintf(stderr, "input (%zu bytes): ", len);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch < 32 || ch >= 127)
            fprintf(stderr, "\\x%02x", ch);
        else
            fputc(ch, stderr);
    }
    fputc('\n', stderr);
}

/* A disagreement: shown, counted (the test fails at its end, after every
 * case, so that one run lists them all). */
#define MISMATCH(...)                             \
    do {                                          \
        show(data, len);                          \
        fprintf(stderr, "DIFFERS: " __VA_ARGS__); \
        fputc('\n', stderr);                      \
        ty->bad++;                                \
        goto done;                                \
    } while (0)

static void check_case(const char *tag, const char *data, size_t len, size_t ncols, int allowed,
                       tally *ty)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s.csv", dir, tag);
    put_file(path, data, len);
    agec_conn *c = agec_test_acquire(pool);
    table pg, ag;
    int label;
    oracle(c, data, len, ncols, &pg);
    agec_side(c, path, ncols, &ag, &label);
    agec_conn_release(c);
    if (!pg.ok && !ag.ok) {
        ty->both_refuse++;
    } else if (pg.ok && !ag.ok) {
        if (!(allowed & MAY_REFUSE_QUOTE) || strstr(ag.error, "quote") == NULL)
            MISMATCH("%s: PostgreSQL reads %zu rows, agec refuses: %s", tag, pg.nrows, ag.error);
        ty->quote_refused++;
    } else if (!pg.ok && ag.ok) {
        if (!(allowed & AGEC_READS_BLANK))
            MISMATCH("%s: PostgreSQL refuses (%s), agec reads %zu rows", tag, pg.error, ag.nrows);
    } else {
        if (pg.nrows != ag.nrows)
            MISMATCH("%s: PostgreSQL reads %zu rows, agec %zu", tag, pg.nrows, ag.nrows);
        for (size_t i = 0; i < pg.nrows * ncols; i++) {
            const char *a = pg.cell[i], *b = ag.cell[i];
            if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
                MISMATCH("%s: row %zu column %zu: PostgreSQL %s%s%s, agec %s%s%s", tag,
                         i / ncols + 1, i % ncols + 1, a ? "'" : "", a ? a : "NULL", a ? "'" : "",
                         b ? "'" : "", b ? b : "no property", b ? "'" : "");
        }
        ty->same++;
    }
done:
    table_free(&pg);
    table_free(&ag);
}

#define CASE(tag, lit, ncols, allowed) check_case(tag, lit, sizeof(lit) - 1, ncols, allowed, &ty)

/* RFC 4180's corner cases and the reports. */
static void test_corpus_against_copy(void **state)
{
    (void)state;
    tally ty = { 0, 0, 0, 0 };
    CASE("plain", "c1,c2\na,b\nc,d\n", 2, AGREE);
    CASE("no_final_eol", "c1,c2\na,b\nc,d", 2, AGREE);
    CASE("crlf", "c1,c2\r\na,b\r\nc,d\r\n", 2, AGREE);
    CASE("cr_only", "c1,c2\ra,b\rc,d\r", 2, AGREE);
    CASE("quoted_comma", "c1,c2\n\"a,b\",c\n", 2, AGREE);
    CASE("quoted_quotes", "c1,c2\n\"say \"\"hi\"\"\",x\n", 2, AGREE);
    CASE("quoted_lf", "c1,c2\n\"two\nlines\",x\n", 2, AGREE);
    CASE("quoted_crlf", "c1,c2\r\n\"two\r\nlines\",x\r\n", 2, AGREE);
    CASE("null_vs_empty", "c1,c2,c3\n,\"\",x\n", 3, AGREE);
    CASE("only_quotes", "c1\n\"\"\"\"\n", 1, AGREE);
    CASE("spaces_kept", "c1,c2\n a , b \n", 2, AGREE);
    CASE("multibyte", "c1,c2\n\xc3\xa9t\xc3\xa9,\"\xd0\x96,\xf0\x9f\x98\x80\"\n", 2, AGREE);
    CASE("header_only", "c1,c2\n", 2, AGREE);
    CASE("quoted_header", "\"c1\",\"c2\"\na,b\n", 2, AGREE);
    /* The reports. */
    CASE("issue_unterminated", "c1,c2\n1,\"hello\n2,x\n3,\"y\"\n", 2, MAY_REFUSE_QUOTE);
    CASE("issue_unterminated_last", "c1,c2\n1,Ada\n2,\"Bob\n3,Cy\n4,Di\n", 2, AGREE);
    CASE("quote_then_junk", "c1,c2\n1,\"a\"b\n", 2, MAY_REFUSE_QUOTE);
    CASE("quote_in_unquoted", "c1,c2\n1,a\"b\"\n", 2, MAY_REFUSE_QUOTE);
    CASE("stray_quotes_merge_lines", "c1,c2\n1,a\"b\n2,c\"d\n", 2, MAY_REFUSE_QUOTE);
    CASE("cr_before_closing_quote", "c1,c2\na,\"b\r\"\n", 2, AGREE);
    CASE("cr_before_closing_quote_crlf", "c1,c2\r\na,\"b\r\"\r\n", 2, AGREE);
    CASE("bom",
         "\xef\xbb\xbf"
         "c1,c2\n1,Ada\n",
         2, AGREE);
    CASE("bom_quoted_header", "\xef\xbb\xbf\"c1\",c2\n1,Ada\n", 2, AGREE);
    /* Line ends: the first line's rules the file, as in COPY. */
    CASE("lf_then_crlf", "c1,c2\na,b\r\nc,d\n", 2, AGREE);
    CASE("crlf_then_lf", "c1,c2\r\na,b\nc,d\r\n", 2, AGREE);
    CASE("cr_then_lf", "c1,c2\ra,b\nc,d\r", 2, AGREE);
    CASE("unquoted_cr_mid_field", "c1,c2\na\rb,c\n", 2, AGREE);
    /* Field counts. */
    CASE("too_many_fields", "c1,c2\na,b,c\n", 2, AGREE);
    CASE("too_few_fields", "c1,c2\na\n", 2, AGREE);
    CASE("nul_byte", "c1,c2\na,b\0c\n", 2, AGREE);
    CASE("bad_utf8", "c1,c2\na,\xc3(\n", 2, AGREE);
    /* Deliberate difference: a blank line is no row (COPY refuses it). */
    CASE("blank_line", "c1,c2\na,b\n\nc,d\n", 2, AGEC_READS_BLANK);
    print_message("corpus: %d read the same, %d refused by both, %d stray quotes refused by agec\n",
                  ty.same, ty.both_refuse, ty.quote_refused);
    if (ty.bad > 0)
        fail_msg("%d corpus files read differently from PostgreSQL (DIFFERS above)", ty.bad);
}

/* A seeded generator: files of quoted and unquoted fields with commas,
 * quotes, CR, LF, CRLF and multi-byte characters; a third of them then
 * changed by one byte. */
static uint64_t rng = 0x2400c5f1u;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void put_s(char *b, size_t *n, const char *s)
{
    size_t k = strlen(s);
    memcpy(b + *n, s, k);
    *n += k;
}

static void gen_field(char *b, size_t *n, bool only_column)
{
    static const char *plain[] = { "a",           "b",        "xyz",      " ",
                                   "1",           "\xc3\xa9", "\xd0\x96", "\xf0\x9f\x98\x80",
                                   "\xe2\x82\xac" };
    static const char *special[] = { ",", "\"", "\r", "\n", "\r\n" };
    int kind = (int)rnd(5);
    if (kind == 0 && !only_column)
        return; /* unquoted empty: NULL (alone on a line it would be a blank line) */
    if (kind <= 2) {
        int len = 1 + (int)rnd(4);
        for (int i = 0; i < len; i++)
            put_s(b, n, plain[rnd(sizeof plain / sizeof *plain)]);
        return;
    }
    b[(*n)++] = '"';
    int len = (int)rnd(6);
    for (int i = 0; i < len; i++) {
        const char *s = rnd(2) ? plain[rnd(sizeof plain / sizeof *plain)]
                               : special[rnd(sizeof special / sizeof *special)];
        if (strcmp(s, "\"") == 0)
            put_s(b, n, "\"\"");
        else
            put_s(b, n, s);
    }
    b[(*n)++] = '"';
}

/* A blank line the mutation made (agec skips it, COPY refuses it): the
 * case is not comparable, so it is made again. */
static bool has(const char *b, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, s, k) == 0)
            return true;
    return false;
}

static bool has_blank_line(const char *b, size_t n)
{
    return has(b, n, "\n\n") || has(b, n, "\r\r") || has(b, n, "\n\r\n");
}

static void test_random_against_copy(void **state)
{
    (void)state;
    tally ty = { 0, 0, 0, 0 };
    static char b[8192];
    int mutated = 0;
    for (int k = 0; k < 400; k++) {
        size_t n = 0, ncols = 1 + rnd(4), nrows = rnd(6);
        const char *eol = (const char *[]){ "\n", "\r\n", "\n", "\r" }[rnd(4)];
        for (size_t c = 0; c < ncols; c++) {
            char h[16];
            snprintf(h, sizeof h, "%sc%zu", c ? "," : "", c + 1);
            put_s(b, &n, h);
        }
        put_s(b, &n, eol);
        size_t header = n;
        for (size_t r = 0; r < nrows; r++) {
            for (size_t c = 0; c < ncols; c++) {
                if (c > 0)
                    b[n++] = ',';
                gen_field(b, &n, ncols == 1);
            }
            if (r + 1 < nrows || rnd(2))
                put_s(b, &n, eol);
        }
        int allowed = AGREE;
        if (n > header && rnd(3) == 0) {
            /* one byte changed, inserted or removed after the header */
            static const char bytes[] = { '"', ',', '\r', '\n', 'q', '\xd0' };
            size_t at = header + rnd((unsigned)(n - header));
            int how = (int)rnd(3);
            if (how == 0) {
                b[at] = bytes[rnd(sizeof bytes)];
            } else if (how == 1) {
                memmove(b + at + 1, b + at, n - at);
                b[at] = bytes[rnd(sizeof bytes)];
                n++;
            } else {
                memmove(b + at, b + at + 1, n - at - 1);
                n--;
            }
            if (has_blank_line(b, n)) {
                k--;
                continue;
            }
            allowed = MAY_REFUSE_QUOTE;
            mutated++;
        }
        char tag[32];
        snprintf(tag, sizeof tag, "gen%03d", k);
        check_case(tag, b, n, ncols, allowed, &ty);
    }
    print_message("generated: %d files (%d mutated): %d read the same, %d refused by both, %d "
                  "stray quotes refused by agec\n",
                  400, mutated, ty.same, ty.both_refuse, ty.quote_refused);
    if (ty.bad > 0)
        fail_msg("%d generated files read differently from PostgreSQL (DIFFERS above)", ty.bad);
    assert_true(ty.same > 150);
    assert_true(ty.both_refuse > 10);
}

/* The loader's items, on the COPY path. */
typedef struct rejects {
    int n;
    char last[2048];
} rejects;

static bool take(const agec_error *e, const char *row, size_t len, void *user)
{
    rejects *r = user;
    r->n++;
    snprintf(r->last, sizeof r->last, "%s\t%.*s", e->message, (int)len, row ? row : "");
    return true;
}

typedef struct run {
    agec_status st;
    agec_error err;
    agec_load_stats s;
    rejects rej;
} run;

/* Load files (label=path, "e:" before the label for edges) into graph
 * items, with key uid on label `key` (NULL: none); rejects taken when
 * reject. */
static void load(run *out, const char *key, bool reject, uint64_t skip, size_t batch,
                 const char **files, size_t nfiles)
{
    memset(out, 0, sizeof *out);
    agec_error_clear(&out->err);
    agec_load_opts o;
    agec_load_opts_init(&o);
    if (reject) {
        o.reject = take;
        o.reject_user = &out->rej;
    }
    o.skip_rows = skip;
    if (batch)
        o.batch_rows = batch;
    agec_conn *c = agec_test_acquire(pool);
    agec_loader *ld = NULL;
    agec_test_must(agec_loader_open(c, "items", &o, &ld, &out->err), &out->err, "open");
    out->st = key ? agec_loader_key(ld, key, "uid", &out->err) : AGEC_OK;
    for (size_t i = 0; i < nfiles && out->st == AGEC_OK; i++) {
        bool edges = strncmp(files[i], "e:", 2) == 0;
        char label[64];
        const char *f = files[i] + (edges ? 2 : 0), *eq = strchr(f, '=');
        snprintf(label, sizeof label, "%.*s", (int)(eq - f), f);
        out->st = agec_loader_file(ld, edges, label, eq + 1, AGEC_FORMAT_AUTO, &out->err);
    }
    if (out->st == AGEC_OK)
        out->st = agec_loader_finish(ld, &out->s, &out->err);
    agec_loader_stats(ld, &out->s);
    agec_loader_free(ld);
    agec_conn_release(c);
    /* Counts that add up, in every outcome. */
    if (out->s.rows != out->s.vertices + out->s.edges + out->s.rejected + out->s.skipped)
        fail_msg("rows %llu != %llu vertices + %llu edges + %llu rejected + %llu skipped (%s)",
                 (unsigned long long)out->s.rows, (unsigned long long)out->s.vertices,
                 (unsigned long long)out->s.edges, (unsigned long long)out->s.rejected,
                 (unsigned long long)out->s.skipped, out->err.message);
}

static const char *file(const char *name, const char *text)
{
    static char paths[16][160];
    static int k;
    char *p = paths[k++ % 16];
    snprintf(p, 160, "%s/%s", dir, name);
    put_file(p, text, strlen(text));
    return p;
}

static char *arg(const char *label, const char *path)
{
    static char args[8][200];
    static int k;
    char *a = args[k++ % 8];
    snprintf(a, 200, "%s=%s", label, path);
    return a;
}

static void sql_expect(const char *q, const char *want)
{
    agec_conn *c = agec_test_acquire(pool);
    agec_result *r = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_sql_exec(c, q, 0, NULL, NULL, &r, &err), &err, q);
    const char *got = agec_result_text(r, 0, 0, NULL);
    if (strcmp(got ? got : "NULL", want) != 0)
        fail_msg("%s: got %s, want %s", q, got ? got : "NULL", want);
    agec_result_free(r);
    agec_conn_release(c);
}

/* Item 11: a row rejected while parsing is a row; rejected rows go whole
 * to the reject callback with file:line and the reason. */
static void test_counts_add_up(void **state)
{
    (void)state;
    const char *p = file("c11.csv", "uid:int,name\n1,Ada\nabc,\"Bob, \"\"B\"\"\"\n3,Cy\n");
    const char *f[] = { arg("C11", p) };
    run r;
    load(&r, NULL, true, 0, 0, f, 1);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.rows, 3);
    assert_int_equal(r.s.vertices, 2);
    assert_int_equal(r.s.rejected, 1);
    char want[300];
    snprintf(want, sizeof want, "%s:3: column 1 (uid): not an integer: abc\tabc,\"Bob, \"\"B\"\"\"",
             p);
    assert_string_equal(r.rej.last, want);
}

/* Item 1: a NUL (\u0000 in JSON) is a bad row, not a failed batch. */
static void test_nul_is_a_bad_row(void **state)
{
    (void)state;
    const char *p =
        file("nul.jsonl", "{\"a\": 1}\n{\"a\": \"x\\u0000y\"}\n{\"a\": \"\\\\u0000\"}\n");
    const char *f[] = { arg("Nul", p) };
    run r;
    load(&r, NULL, false, 0, 0, f, 1);
    assert_int_equal(r.st, AGEC_ERR_INPUT);
    assert_non_null(strstr(r.err.message, ":2:"));
    load(&r, NULL, true, 0, 0, f, 1);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.vertices, 2);
    assert_int_equal(r.s.rejected, 1);
}

/* A UTF-8 byte-order mark starts a JSON Lines file too: skipped. */
static void test_jsonl_bom(void **state)
{
    (void)state;
    const char *p = file("bom.jsonl", "\xef\xbb\xbf{\"a\": 1}\n{\"a\": 2}\n");
    const char *f[] = { arg("Bom", p) };
    run r;
    load(&r, NULL, true, 0, 0, f, 1);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.vertices, 2);
    assert_int_equal(r.s.rejected, 0);
}

/* Item 2: the key index name is cut on a UTF-8 character boundary. */
static void test_index_name_utf8(void **state)
{
    (void)state;
    const char *p = file("zh.csv", "uid:int\n1\n2\n");
    char label[80] = "A";
    for (int i = 0; i < 20; i++)
        strcat(label, "\xd0\x96");
    const char *f[] = { arg(label, p) };
    run r;
    load(&r, label, false, 0, 0, f, 1);
    if (r.st != AGEC_OK)
        fail_msg("%s", r.err.message);
    sql_expect("SELECT count(*) FROM pg_indexes WHERE schemaname = 'items' AND indexname LIKE "
               "'A%_agec_key_%'",
               "1");
}

/* Item 4: graph ids are digits in the int64 range; item 5: an integer
 * endpoint key names the vertex whatever its spelling (007, +8). */
static void test_endpoints(void **state)
{
    (void)state;
    const char *v = file("p5.csv", "uid:int,name\n007,a\n+8,b\n");
    const char *e = file("e5.csv", ":START_ID(Person),:END_ID(Person)\n007,+8\n7,08\n");
    const char *g = file("g4.csv", ":START_ID,:END_ID\n99999999999999999999,1\n 5,1\n-5,1\n5,1\n");
    const char *f[] = { arg("Person", v), arg("e:KNOWS", e), arg("e:RAW", g) };
    run r;
    load(&r, "Person", true, 0, 0, f, 3);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.vertices, 2);
    assert_int_equal(r.s.edges, 3); /* two KNOWS, one RAW */
    assert_int_equal(r.s.rejected, 3);
}

/* Item 10: 1e-400 is refused (PostgreSQL refuses it), not stored as 0. */
static void test_float_underflow(void **state)
{
    (void)state;
    const char *p = file("f10.csv", "x:float\n1e-400\n1e-300\n");
    const char *j = file("f10.jsonl", "{\"x\": 1e-400}\n");
    const char *f[] = { arg("F10", p), arg("F10", j) };
    run r;
    load(&r, NULL, true, 0, 0, f, 2);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.vertices, 1);
    assert_int_equal(r.s.rejected, 2);
}

/* Item 3: rows skipped on resume are not read again: a row the first run
 * rejected is not rejected (nor counted) twice. */
static void test_resume_skips_before_checks(void **state)
{
    (void)state;
    const char *p = file("r3.csv", "uid:int\n1\nbad\n3\n4\n");
    const char *f[] = { arg("R3", p) };
    run r;
    load(&r, NULL, true, 3, 0, f, 1);
    assert_int_equal(r.st, AGEC_OK);
    assert_int_equal(r.s.skipped, 3);
    assert_int_equal(r.s.rejected, 0);
    assert_int_equal(r.s.vertices, 1);
}

/* Item 12: a batch spanning two files names both when the server refuses
 * it (the stand-in's CHECK: properties under 500 bytes). */
static void test_batch_across_files(void **state)
{
    (void)state;
    char big[800];
    snprintf(big, sizeof big, "s\nx\ny\n%0600d\n", 0);
    const char *a = file("b1.csv", "s\na\nb\nc\n");
    const char *b = file("b2.csv", big);
    const char *f[] = { arg("B12", a), arg("B12", b) };
    run r;
    load(&r, NULL, false, 0, 10, f, 2);
    assert_int_equal(r.st, AGEC_ERR_SERVER);
    char want[400];
    snprintf(want, sizeof want, "%s line 2 to %s line 4", a, b);
    if (strstr(r.err.message, want) == NULL)
        fail_msg("want \"%s\" in: %s", want, r.err.message);
}

/* Item 8: a role with INSERT but not ownership is told before loading
 * that the key index needs ownership (42501), not after the whole load. */
static void test_privileges_checked_first(void **state)
{
    (void)state;
    const char *p = file("p8.csv", "uid:int\n1\n2\n");
    const char *f[] = { arg("Priv", p) };
    run r;
    load(&r, NULL, false, 0, 0, f, 1); /* the label, owned by postgres */
    assert_int_equal(r.st, AGEC_OK);
    agec_conn *c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP ROLE IF EXISTS agec_ins");
    agec_test_sql(c, "CREATE ROLE agec_ins LOGIN");
    agec_test_sql(c, "GRANT USAGE ON SCHEMA items, ag_catalog TO agec_ins");
    agec_test_sql(c, "GRANT SELECT ON ALL TABLES IN SCHEMA ag_catalog TO agec_ins");
    agec_test_sql(c, "GRANT SELECT, INSERT ON items.\"Priv\" TO agec_ins");
    agec_test_sql(c, "GRANT USAGE, UPDATE ON items.\"Priv_id_seq\" TO agec_ins");
    agec_conn_release(c);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=agec_csv_oracle user=agec_ins", agec_test_pg_conninfo());
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = dsn;
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *ins;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &ins, &err), &err, "open as agec_ins");
    c = agec_test_acquire(ins);
    agec_loader *ld = NULL;
    agec_test_must(agec_loader_open(c, "items", NULL, &ld, &err), &err, "loader open");
    /* Without a key: INSERT is all it needs. */
    agec_test_must(agec_loader_vertex(ld, "Priv", "{\"uid\": 3}", SIZE_MAX, &err), &err, "row");
    agec_loader_free(ld);
    agec_test_must(agec_loader_open(c, "items", NULL, &ld, &err), &err, "loader open");
    agec_status st = agec_loader_key(ld, "Priv", "uid", &err);
    assert_int_equal(st, AGEC_ERR_SERVER);
    assert_string_equal(err.sqlstate, "42501");
    assert_non_null(strstr(err.message, "ownership"));
    agec_loader_free(ld);
    agec_conn_release(c);
    agec_pool_close(ins, 1000, NULL);
    c = agec_test_acquire(pool);
    agec_test_sql(c, "DROP OWNED BY agec_ins");
    agec_test_sql(c, "DROP ROLE agec_ins");
    agec_conn_release(c);
}

static void count_batches(const agec_load_stats *s, void *user)
{
    (void)s;
    (*(int *)user)++;
}

/* Item 9: memory is bounded: a batch by bytes as well as rows, and the
 * key maps by key_memory_max (a clear error, not the machine's memory). */
static void test_memory_bounds(void **state)
{
    (void)state;
    agec_conn *c = agec_test_acquire(pool);
    agec_load_opts o;
    agec_load_opts_init(&o);
    assert_int_equal(o.batch_bytes, (size_t)64 << 20);
    o.batch_rows = 1000000;
    o.batch_bytes = 1024;
    int batches = 0;
    o.progress = count_batches;
    o.progress_user = &batches;
    agec_loader *ld = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_loader_open(c, "items", &o, &ld, &err), &err, "open");
    for (int i = 0; i < 50; i++) {
        char row[200];
        snprintf(row, sizeof row, "{\"i\": %d, \"pad\": \"%080d\"}", i, i);
        agec_test_must(agec_loader_vertex(ld, "Mem", row, SIZE_MAX, &err), &err, "row");
    }
    assert_true(batches >= 4); /* ~100 bytes a row, 1 KiB a batch */
    agec_test_must(agec_loader_finish(ld, NULL, &err), &err, "finish");
    agec_loader_free(ld);
    o.batch_rows = 5000;
    o.batch_bytes = (size_t)64 << 20;
    o.progress = NULL;
    o.key_memory_max = 200000; /* a few thousand keys */
    agec_test_must(agec_loader_open(c, "items", &o, &ld, &err), &err, "open");
    agec_test_must(agec_loader_key(ld, "MemK", "uid", &err), &err, "key");
    agec_status st = AGEC_OK;
    int i = 0;
    for (; i < 100000 && st == AGEC_OK; i++) {
        char row[64];
        snprintf(row, sizeof row, "{\"uid\": %d}", i);
        st = agec_loader_vertex(ld, "MemK", row, SIZE_MAX, &err);
    }
    assert_int_equal(st, AGEC_ERR_NO_MEMORY);
    assert_non_null(strstr(err.message, "key_memory_max"));
    assert_true(i < 100000);
    agec_loader_free(ld);
    agec_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_against_copy),
        cmocka_unit_test(test_random_against_copy),
        cmocka_unit_test(test_counts_add_up),
        cmocka_unit_test(test_nul_is_a_bad_row),
        cmocka_unit_test(test_jsonl_bom),
        cmocka_unit_test(test_index_name_utf8),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_float_underflow),
        cmocka_unit_test(test_resume_skips_before_checks),
        cmocka_unit_test(test_batch_across_files),
        cmocka_unit_test(test_privileges_checked_first),
        cmocka_unit_test(test_memory_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
