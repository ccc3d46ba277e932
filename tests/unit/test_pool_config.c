/* Pool configuration: every default, and a table of invalid fields, each
 * rejected with AGEC_ERR_CONFIG and a message naming the field. */
#include "testutil.h"

#include <string.h>

#include "agec/agec.h"
#include "pool/pool_internal.h"

static void test_defaults(void **state)
{
    (void)state;
    agec_pool_config c;
    memset(&c, 0xAB, sizeof c);
    agec_pool_config_init(&c);
    assert_int_equal(c.struct_size, sizeof c);
    assert_null(c.conninfo);
    assert_int_equal(c.max, 10);
    assert_int_equal(c.min, 0);
    assert_int_equal(c.idle_timeout_ms, 30000);
    assert_int_equal(c.connect_timeout_ms, 2000);
    assert_int_equal(c.acquire_timeout_ms, 60000);
    assert_int_equal(c.max_lifetime_ms, 1800000);
    assert_true(c.lifetime_jitter_pct == 2.5);
    assert_int_equal(c.validate_idle_ms, 500);
    assert_int_equal(c.validation_timeout_ms, 5000);
    assert_int_equal(c.reset_timeout_ms, 5000);
    assert_int_equal(c.leak_threshold_ms, 0);
    assert_int_equal(c.age_mode, AGEC_AGE_LOAD);
    assert_false(c.age_create_extension);
    assert_null(c.init_sql);
    assert_null(c.reset_query);
    assert_null(c.on_connect);
    assert_int_equal(c.reconnect_backoff_initial_ms, 50);
    assert_int_equal(c.reconnect_backoff_max_ms, 5000);
    assert_int_equal(c.breaker_threshold, 5);
    assert_int_equal(c.breaker_open_ms, 5000);
    assert_null(c.on_event);
    assert_null(c.application_name);
    assert_string_equal(c.name, "agec");
    assert_int_equal(c.statement_mode, AGEC_STMT_NAMED);
    assert_false(c.application_name_override);
    assert_int_equal(agec_pool_config_check(&c, NULL), AGEC_OK);
    agec_pool_config_init(NULL); /* ignored */
}

typedef struct bad_case {
    const char *field; /* the message must start with "<field>:" */
    void (*mutate)(agec_pool_config *c);
} bad_case;

/* One-line mutators, a table. */
/* clang-format off */
static void m_max0(agec_pool_config *c) { c->max = 0; }
static void m_min_neg(agec_pool_config *c) { c->min = -1; }
static void m_min_gt_max(agec_pool_config *c) { c->max = 2; c->min = 3; }
static void m_idle(agec_pool_config *c) { c->idle_timeout_ms = -5; }
static void m_connect(agec_pool_config *c) { c->connect_timeout_ms = 0; }
static void m_acquire(agec_pool_config *c) { c->acquire_timeout_ms = -1; }
static void m_life(agec_pool_config *c) { c->max_lifetime_ms = -1; }
static void m_jitter(agec_pool_config *c) { c->lifetime_jitter_pct = 60; }
static void m_validate(agec_pool_config *c) { c->validate_idle_ms = -2; }
static void m_vto(agec_pool_config *c) { c->validation_timeout_ms = 0; }
static void m_rto(agec_pool_config *c) { c->reset_timeout_ms = -1; }
static void m_leak(agec_pool_config *c) { c->leak_threshold_ms = -1; }
static void m_mode(agec_pool_config *c) { c->age_mode = (agec_age_mode)9; }
static void m_bo(agec_pool_config *c) { c->reconnect_backoff_initial_ms = 0; }
static void m_bomax(agec_pool_config *c) { c->reconnect_backoff_max_ms = 10; }
static void m_thr(agec_pool_config *c) { c->breaker_threshold = -1; }
static void m_open(agec_pool_config *c) { c->breaker_open_ms = 0; }
static void m_conninfo(agec_pool_config *c) { c->conninfo = "host=x nonsense_kw=1"; }
static void m_uri(agec_pool_config *c) { c->conninfo = "postgresql://u:pw@h/db?bogus=1"; }
static void m_size(agec_pool_config *c) { c->struct_size = 0; }
static void m_stmt(agec_pool_config *c) { c->statement_mode = (agec_stmt_mode)7; }
/* clang-format on */

static void test_invalid_fields_named(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        { "max", m_max0 },
        { "min", m_min_neg },
        { "min", m_min_gt_max },
        { "idle_timeout_ms", m_idle },
        { "connect_timeout_ms", m_connect },
        { "acquire_timeout_ms", m_acquire },
        { "max_lifetime_ms", m_life },
        { "lifetime_jitter_pct", m_jitter },
        { "validate_idle_ms", m_validate },
        { "validation_timeout_ms", m_vto },
        { "reset_timeout_ms", m_rto },
        { "leak_threshold_ms", m_leak },
        { "age_mode", m_mode },
        { "reconnect_backoff_initial_ms", m_bo },
        { "reconnect_backoff_max_ms", m_bomax },
        { "breaker_threshold", m_thr },
        { "breaker_open_ms", m_open },
        { "conninfo", m_conninfo },
        { "conninfo", m_uri },
        { "struct_size", m_size },
        { "statement_mode", m_stmt },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agec_pool_config c;
        agec_pool_config_init(&c);
        cases[i].mutate(&c);
        agec_error err = AGEC_ERROR_INIT;
        agec_pool *p = (agec_pool *)&c;
        assert_int_equal(agec_pool_config_check(&c, &err), AGEC_ERR_CONFIG);
        size_t n = strlen(cases[i].field);
        if (strncmp(err.message, cases[i].field, n) != 0 || err.message[n] != ':')
            fail_msg("case %zu: expected '%s:', got '%s'", i, cases[i].field, err.message);
        assert_null(strstr(err.message, "pw@"));
        /* open validates the same way and leaves *out NULL */
        assert_int_equal(agec_pool_open(&c, &p, &err), AGEC_ERR_CONFIG);
        assert_null(p);
    }
}

static void test_valid_edges(void **state)
{
    (void)state;
    agec_pool_config c;
    agec_pool_config_init(&c);
    c.max = 1;
    c.min = 1;
    c.idle_timeout_ms = 0;
    c.acquire_timeout_ms = 0;
    c.max_lifetime_ms = 0;
    c.validate_idle_ms = -1;
    c.breaker_threshold = 0;
    c.conninfo = "postgresql://user:secret@127.0.0.1:5432/db?application_name=x";
    c.application_name = "override";
    assert_int_equal(agec_pool_config_check(&c, NULL), AGEC_OK);
    assert_int_equal(agec_pool_config_check(NULL, NULL), AGEC_ERR_INVALID_ARG);
    /* An older caller's smaller struct: the fields it lacks keep defaults. */
    c.struct_size = offsetof(agec_pool_config, idle_timeout_ms);
    assert_int_equal(agec_pool_config_check(&c, NULL), AGEC_OK);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(agec_close_reason_name(AGEC_CLOSE_IDLE), "idle");
    assert_string_equal(agec_close_reason_name(AGEC_CLOSE_SHUTDOWN), "shutdown");
    assert_string_equal(agec_close_reason_name((agec_close_reason)99), "unknown");
    assert_string_equal(agec_breaker_state_name(AGEC_BREAKER_HALF_OPEN), "half_open");
    assert_string_equal(agec_pool_event_name(AGEC_EV_LEAK_SUSPECTED), "leak suspected");
    assert_string_equal(agec_pool_event_name(AGEC_EV_NOTICE), "notice");
}

/* AGEC_POOL_ABLATE (benchmark-only): names to bits; a typo fails. */
static void test_ablate_parse(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        agec_status st;
        unsigned bits;
    } cases[] = {
        { NULL, AGEC_OK, 0 },
        { "", AGEC_OK, 0 },
        { "none", AGEC_OK, 0 },
        { "wake_on_miss", AGEC_OK, AGEC__ABLATE_WAKE_ON_MISS },
        { "affinity", AGEC_OK, AGEC__ABLATE_AFFINITY },
        { "giveback", AGEC_OK, AGEC__ABLATE_GIVEBACK },
        { "affinity,giveback", AGEC_OK, AGEC__ABLATE_AFFINITY | AGEC__ABLATE_GIVEBACK },
        { "give_back", AGEC_ERR_CONFIG, 0 },
        { "affinity,", AGEC_OK, AGEC__ABLATE_AFFINITY },
        { "wake", AGEC_ERR_CONFIG, 0 },
        { "wake_on_missx", AGEC_ERR_CONFIG, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned bits = 99;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec__ablate_parse(cases[i].spec, &bits, &err);
        if (st != cases[i].st || (st == AGEC_OK && bits != cases[i].bits))
            fail_msg("'%s': %s, bits %u", cases[i].spec ? cases[i].spec : "(null)",
                     agec_status_name(st), bits);
        if (st != AGEC_OK)
            assert_non_null(strstr(err.message, "AGEC_POOL_ABLATE"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_invalid_fields_named),
        cmocka_unit_test(test_valid_edges),  cmocka_unit_test(test_names),
        cmocka_unit_test(test_ablate_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
