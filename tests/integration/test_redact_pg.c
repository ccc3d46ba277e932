/*
 * Issue 23, item 4: no password in any message, event or log line, for
 * every form libpq accepts: sslpassword, a keyword value holding '&', URI
 * passwords holding an unencoded '/' or '@', a bad percent escape (libpq's
 * own message echoes the token), the cluster's conninfo errors; then a
 * generator of random passwords (with @ / & % ' " and spaces) in the
 * keyword form and the URI form (raw and percent-encoded), through the
 * redactor, the parser and a real pool (wrong password against PG15, and
 * an unreachable port).
 */
#include "testutil.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agec.h"
#include "agec/cluster.h"
#include "agec/pool.h"
#include "session/pqerror.h"
#include "session/redact.h"

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[1 << 16];

static void collect_event(const agec_pool_event *ev, void *user)
{
    (void)user;
    pthread_mutex_lock(&ev_lock);
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s|%s\n", agec_pool_event_name(ev->type), ev->message);
    pthread_mutex_unlock(&ev_lock);
}

/* Fail when text holds the secret, or any run of 4 or more of its letters
 * and digits (a piece of it cut off at a special character). */
static void assert_no_secret(const char *text, const char *secret, const char *what)
{
    if (strstr(text, secret) != NULL)
        fail_msg("%s shows the password %s: %s", what, secret, text);
    size_t n = strlen(secret);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && isalnum((unsigned char)secret[j]))
            j++;
        if (j - i >= 4) {
            char run[128];
            snprintf(run, sizeof run, "%.*s", (int)(j - i), secret + i);
            if (strstr(text, run) != NULL)
                fail_msg("%s shows %s of the password %s: %s", what, run, secret, text);
        }
        i = j + 1;
    }
}

static const char *pg_port(void)
{
    const char *p = getenv("PGPORT");
    if (p == NULL)
        fail_msg("PGPORT not set: run through scripts/with-test-servers");
    return p;
}

/* Open a pool on conninfo and try one acquire; everything it says (error,
 * events, stderr of the default logger) must be free of the secret. */
static agec_status try_pool(const char *conninfo, const char *secret)
{
    events[0] = '\0';
    agec_test_capture cap;
    agec_test_stderr_begin(&cap);
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = conninfo;
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.acquire_timeout_ms = 300;
    cfg.connect_timeout_ms = 300;
    cfg.on_event = collect_event;
    agec_pool *pool = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_open(&cfg, &pool, &err);
    if (st == AGEC_OK) {
        agec_conn *c = NULL;
        st = agec_pool_acquire(pool, &c, &err);
        if (c != NULL)
            agec_conn_release(c);
        (void)agec_pool_close(pool, 1000, NULL);
    }
    /* The default logger, on a second pool with the same string. */
    cfg.on_event = NULL;
    agec_error err2 = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, &pool, &err2) == AGEC_OK) {
        agec_conn *c = NULL;
        if (agec_pool_acquire(pool, &c, &err2) == AGEC_OK)
            agec_conn_release(c);
        (void)agec_pool_close(pool, 1000, NULL);
    }
    char *logged = agec_test_stderr_end(&cap);
    assert_no_secret(err.message, secret, "error message");
    assert_no_secret(err.detail, secret, "error detail");
    assert_no_secret(err.hint, secret, "error hint");
    assert_no_secret(err2.message, secret, "error message");
    assert_no_secret(events, secret, "events");
    assert_no_secret(logged, secret, "log");
    free(logged);
    return st;
}

static void redacted(const char *in, char *out, size_t cap)
{
    agec__redact_conninfo(in, out, cap);
}

/* The forms of the issue, one by one. */
static void test_issue_forms(void **state)
{
    (void)state;
    char out[1024];
    redacted("host=h sslpassword=KEYSECRET dbname=d", out, sizeof out);
    assert_string_equal(out, "host=h sslpassword=*** dbname=d");
    redacted("host=h password=S3C&RET dbname=d", out, sizeof out);
    assert_string_equal(out, "host=h password=*** dbname=d");
    redacted("postgresql://u:S3/CRET@h/db", out, sizeof out);
    assert_string_equal(out, "postgresql://u:***@h/db");
    redacted("postgresql://u:S3C@RET@h/db", out, sizeof out);
    assert_string_equal(out, "postgresql://u:***@h/db");
    redacted("postgresql://h/db?sslmode=disable&password=S3C%26RET&user=u", out, sizeof out);
    assert_string_equal(out, "postgresql://h/db?sslmode=disable&password=***&user=u");
    redacted("password='S3 C\\'RET' host=h", out, sizeof out);
    assert_string_equal(out, "password=*** host=h");

    /* Through the parser: refused or parsed, never echoed. */
    static const char *const forms[][2] = {
        { "postgresql://u:S3/CRET@127.0.0.1:1/db", "S3/CRET" },
        { "postgresql://u:S3C@RET@127.0.0.1:1/db", "S3C@RET" },
        { "postgresql://u:S3CRETpw%zz@127.0.0.1:1/db", "S3CRETpw%zz" },
        { "host=127.0.0.1 port=1 password=S3C&RET", "S3C&RET" },
        { "host=127.0.0.1 port=1 sslpassword=KEYSECRET sslmode=disable", "KEYSECRET" },
        { "postgresql://u@127.0.0.1:1/db?password=S3CRETq%zz", "S3CRETq%zz" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        agec_error err = AGEC_ERROR_INIT;
        PQconninfoOption *o = NULL;
        agec_status st = agec__conninfo_parse(forms[i][0], &o, &err);
        PQconninfoFree(o);
        if (st != AGEC_OK) {
            assert_int_equal(st, AGEC_ERR_CONFIG);
            assert_no_secret(err.message, forms[i][1], forms[i][0]);
        }
        redacted(forms[i][0], out, sizeof out);
        assert_no_secret(out, forms[i][1], forms[i][0]);
        try_pool(forms[i][0], forms[i][1]);
    }
    /* The two URIs libpq misreads are refused before any connection. */
    agec_error err = AGEC_ERROR_INIT;
    PQconninfoOption *o = NULL;
    assert_int_equal(agec__conninfo_parse(forms[1][0], &o, &err), AGEC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "percent-encode"));
    assert_int_equal(agec__conninfo_parse(forms[0][0], &o, &err), AGEC_ERR_CONFIG);
}

/* libpq's own conninfo messages (a bad percent escape names the token)
 * come back filtered: no keyword to find there. */
static void test_libpq_message_filtered(void **state)
{
    (void)state;
    agec_error err = AGEC_ERROR_INIT;
    PQconninfoOption *o = NULL;
    assert_int_equal(agec__conninfo_parse("postgresql://u:S3CRETpw%zz@h/db", &o, &err),
                     AGEC_ERR_CONFIG);
    assert_null(o);
    assert_non_null(strstr(err.message, "percent")); /* libpq's reason is kept */
    assert_no_secret(err.message, "S3CRETpw", "parse error");
}

/* A server error whose message, detail and hint quote a connection string
 * (as dblink's and postgres_fdw's do). */
static void test_server_error_fields(void **state)
{
    (void)state;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = agec_test_pg_conninfo();
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open");
    agec_conn *c = agec_test_acquire(p);
    agec_result *r = NULL;
    assert_int_equal(
        agec_sql_exec(c,
                      "DO $$ BEGIN RAISE EXCEPTION 'bad host=h password=S3CRETmsg' "
                      "USING DETAIL = 'could not connect: postgresql://u:S3CRETdet@h/d', "
                      "HINT = 'check sslpassword=S3CRETkey'; END $$",
                      0, NULL, NULL, &r, &err),
        AGEC_ERR_SERVER);
    assert_no_secret(err.message, "S3CRETmsg", "message");
    assert_no_secret(err.detail, "S3CRETdet", "detail");
    assert_no_secret(err.hint, "S3CRETkey", "hint");
    assert_non_null(strstr(err.detail, "postgresql://u:***@h/d"));
    agec_conn_release(c);
    agec_pool_close(p, 1000, NULL);
}

/* The cluster's conninfo errors. */
static void test_cluster_config_redacted(void **state)
{
    (void)state;
    static const char *const forms[][2] = {
        { "postgresql://u:S3CRETpw%zz@h1,h2/db", "S3CRETpw%zz" },
        { "postgresql://u:S3/CRET@h1,h2/db", "S3/CRET" },
        { "host=h1,h2 port=5432,x password=S3CRETzz", "S3CRETzz" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        agec_cluster_config cfg;
        agec_cluster_config_init(&cfg);
        cfg.conninfo = forms[i][0];
        agec_cluster *cl = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_cluster_open(&cfg, &cl, &err);
        if (st == AGEC_OK)
            agec_cluster_close(cl, 1000, NULL);
        assert_int_not_equal(st, AGEC_OK);
        assert_no_secret(err.message, forms[i][1], forms[i][0]);
    }
}

/* Random passwords over an alphabet of capitals, digits and the
 * characters that break naive redaction. */
static void random_password(unsigned *seed, char *out, size_t len)
{
    static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789@/&%'\" ";
    size_t n = sizeof alpha - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = alpha[(unsigned)rand_r(seed) % n];
    out[len] = '\0';
}

static void keyword_form(const char *pw, const char *port, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap,
                                "host=127.0.0.1 port=%s user=agec_pw dbname=postgres "
                                "sslmode=disable password='",
                                port);
    for (const char *p = pw; *p != '\0' && o + 3 < cap; p++) {
        if (*p == '\'' || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void uri_form(const char *pw, const char *port, bool encode, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "postgresql://agec_pw:");
    for (const char *p = pw; *p != '\0' && o + 4 < cap; p++) {
        if (encode && !isalnum((unsigned char)*p))
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)*p);
        else
            out[o++] = *p;
    }
    snprintf(out + o, cap - o, "@127.0.0.1:%s/postgres?sslmode=disable", port);
}

static void test_random_passwords(void **state)
{
    (void)state;
    unsigned seed = 20261207;
    const char *port = pg_port();
    for (int i = 0; i < 40; i++) {
        char pw[64], ci[512], out[1024];
        random_password(&seed, pw, 8 + (size_t)(rand_r(&seed) % 16));
        for (int form = 0; form < 3; form++) {
            /* Against the real server (wrong password: AGEC_ERR_AUTH) or,
             * every other round, a port where nothing listens. */
            const char *p = i % 2 == 0 ? port : "1";
            if (form == 0)
                keyword_form(pw, p, ci, sizeof ci);
            else
                uri_form(pw, p, form == 2, ci, sizeof ci);
            redacted(ci, out, sizeof out);
            assert_no_secret(out, pw, ci);
            agec_error err = AGEC_ERROR_INIT;
            PQconninfoOption *o = NULL;
            agec_status st = agec__conninfo_parse(ci, &o, &err);
            if (st == AGEC_OK && form != 1) {
                /* libpq read exactly this password. */
                const char *got = NULL;
                for (PQconninfoOption *x = o; x->keyword != NULL; x++)
                    if (strcmp(x->keyword, "password") == 0)
                        got = x->val;
                assert_non_null(got);
                assert_string_equal(got, pw);
            }
            PQconninfoFree(o);
            if (st != AGEC_OK)
                assert_no_secret(err.message, pw, ci);
            else if (form != 1)
                assert_int_equal(st, AGEC_OK);
            agec_status pst = try_pool(ci, pw);
            if (form != 1 && i % 2 == 0)
                assert_int_equal(pst, AGEC_ERR_AUTH);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_forms),         cmocka_unit_test(test_libpq_message_filtered),
        cmocka_unit_test(test_server_error_fields), cmocka_unit_test(test_cluster_config_redacted),
        cmocka_unit_test(test_random_passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
