/*
 * Security against the PG15 test server: TLS verify-full with the right CA
 * succeeds, a wrong CA or host name fails with a clear error; a wrong
 * password fails as AGEC_ERR_AUTH; and no password ever appears in an
 * error, an event or the default logger's output.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agec/agec.h"
#include "agec/pool.h"

#define SECRET "Zq9-secret-never-shown"

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[65536];

static void collect_event(const agec_pool_event *ev, void *user)
{
    (void)user;
    pthread_mutex_lock(&ev_lock);
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s|%s|%s\n", agec_pool_event_name(ev->type),
             ev->sqlstate ? ev->sqlstate : "", ev->message);
    pthread_mutex_unlock(&ev_lock);
}

/* Open a pool on conninfo, try one acquire; return the status and error.
 * breaker: breaker_threshold (0 = none: a failing acquire runs to its
 * deadline and logs the acquire-timeout event, which names the conninfo). */
static agec_status try_acquire_breaker(const char *conninfo, agec_error *err,
                                       agec_pool_event_fn on_event, int breaker)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.breaker_threshold = breaker;
    cfg.conninfo = conninfo;
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.acquire_timeout_ms = 1500;
    cfg.connect_timeout_ms = 1000;
    cfg.on_event = on_event;
    agec_pool *pool = NULL;
    agec_status st = agec_pool_open(&cfg, &pool, err);
    if (st != AGEC_OK)
        return st;
    agec_conn *c = NULL;
    st = agec_pool_acquire(pool, &c, err);
    if (st == AGEC_OK) {
        agec_result *r = NULL;
        st = agec_sql_exec(c, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()", 0,
                           NULL, NULL, &r, err);
        if (st == AGEC_OK && strcmp(agec_result_text(r, 0, 0, NULL), "true") != 0)
            st = AGEC_ERR_STATE; /* connected, but not over TLS */
        agec_result_free(r);
        agec_conn_release(c);
    }
    (void)agec_pool_close(pool, 1000, NULL);
    return st;
}

static agec_status try_acquire(const char *conninfo, agec_error *err, agec_pool_event_fn on_event)
{
    return try_acquire_breaker(conninfo, err, on_event, 5);
}

static const char *port(void)
{
    const char *p = getenv("PGPORT");
    if (p == NULL)
        fail_msg("PGPORT not set: run through scripts/with-test-servers");
    return p;
}

static void test_tls_verify_full(void **state)
{
    (void)state;
    const char *ca = getenv("AGEC_TEST_PG_CA"), *other = getenv("AGEC_TEST_PG_OTHER_CA");
    if (ca == NULL || other == NULL)
        fail_msg("AGEC_TEST_PG_CA not set: run through scripts/with-test-servers");
    char ci[1024];
    agec_error err = AGEC_ERROR_INIT;

    snprintf(ci, sizeof ci,
             "host=localhost hostaddr=127.0.0.1 port=%s user=postgres dbname=postgres "
             "sslmode=verify-full sslrootcert=%s",
             port(), ca);
    agec_status st = try_acquire(ci, &err, agec_pool_event_ignore);
    if (st != AGEC_OK)
        fail_msg("verify-full with the right CA: %s %s", agec_status_name(st), err.message);

    snprintf(ci, sizeof ci,
             "host=localhost hostaddr=127.0.0.1 port=%s user=postgres dbname=postgres "
             "sslmode=verify-full sslrootcert=%s",
             port(), other);
    assert_int_equal(try_acquire(ci, &err, agec_pool_event_ignore), AGEC_ERR_UNREACHABLE);
    assert_non_null(strstr(err.message, "certificate verify failed"));

    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=verify-full "
             "sslrootcert=%s",
             port(), ca);
    assert_int_equal(try_acquire(ci, &err, agec_pool_event_ignore), AGEC_ERR_UNREACHABLE);
    assert_non_null(strstr(err.message, "does not match host name"));
}

static void test_wrong_password_is_auth_error_and_redacted(void **state)
{
    (void)state;
    events[0] = '\0';
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s user=agec_pw dbname=postgres password=" SECRET,
             port());
    agec_error err = AGEC_ERROR_INIT;
    int64_t t0 = agec_test_now_ms();
    assert_int_equal(try_acquire(ci, &err, collect_event), AGEC_ERR_AUTH);
    /* Authentication failures are not retried until the deadline. */
    assert_true(agec_test_now_ms() - t0 < 1500);
    assert_string_equal(err.sqlstate, "28P01");
    assert_non_null(strstr(err.message, "password authentication failed"));
    assert_null(strstr(err.message, SECRET));
    assert_null(strstr(err.detail, SECRET));
    assert_non_null(strstr(events, "password authentication failed"));
    assert_null(strstr(events, SECRET));

    /* URI form, unreachable port: the password is not echoed either. */
    events[0] = '\0';
    snprintf(ci, sizeof ci, "postgresql://agec_pw:" SECRET "@127.0.0.1:1/postgres");
    assert_int_equal(try_acquire(ci, &err, collect_event), AGEC_ERR_UNREACHABLE);
    assert_null(strstr(err.message, SECRET));
    assert_null(strstr(events, SECRET));

    /* The right password works. */
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%s user=agec_pw dbname=postgres sslmode=require password=%s",
             port(), getenv("AGEC_TEST_PG_PW_PASSWORD"));
    agec_status st = try_acquire(ci, &err, agec_pool_event_ignore);
    if (st != AGEC_OK)
        fail_msg("right password: %s %s", agec_status_name(st), err.message);
}

/* The default logger writes warnings to stderr: capture it and grep. */
static void test_default_logger_redacts(void **state)
{
    (void)state;
    agec_test_capture cap;
    agec_test_stderr_begin(&cap);
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s user=agec_pw dbname=postgres password=" SECRET,
             port());
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = try_acquire(ci, &err, NULL); /* NULL: the default stderr logger */
    /* A refused port: the acquire-timeout warning carries the conninfo,
     * here with a password that holds an escaped space (libpq reads
     * "pre\\ X" as "pre X"), so redaction must take all of it. */
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=1 user=agec_pw dbname=postgres password=pre\\ " SECRET);
    agec_error err2 = AGEC_ERROR_INIT;
    agec_status st2 = try_acquire_breaker(ci, &err2, NULL, 0);
    char *buf = agec_test_stderr_end(&cap);
    assert_int_equal(st, AGEC_ERR_AUTH);
    assert_int_equal(st2, AGEC_ERR_UNREACHABLE);
    assert_non_null(strstr(err2.message, "password=***"));
    assert_null(strstr(err2.message, SECRET));
    assert_true(buf[0] != '\0');                  /* the logger did write the warnings */
    assert_non_null(strstr(buf, "password=***")); /* the conninfo was printed, redacted */
    assert_null(strstr(buf, SECRET));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_verify_full),
        cmocka_unit_test(test_wrong_password_is_auth_error_and_redacted),
        cmocka_unit_test(test_default_logger_redacts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
