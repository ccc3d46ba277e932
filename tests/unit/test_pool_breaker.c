/* The circuit breaker state machine, driven with made-up times. */
#include "testutil.h"

#include "pool/breaker.h"

#define MS 1000 /* microseconds */

static void test_opens_after_threshold(void **state)
{
    (void)state;
    agec__breaker b;
    agec__breaker_change ch;
    agec__breaker_init(&b, 3, 1000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(agec__breaker_allow(&b, 0, &ch), AGEC__BREAKER_ALLOW);
        agec__breaker_failure(&b, false, 0, &ch);
        assert_int_equal(ch.from, ch.to);
    }
    /* a success in between resets the count */
    agec__breaker_success(&b, false, &ch);
    assert_int_equal(b.failures, 0);
    for (int i = 0; i < 3; i++)
        agec__breaker_failure(&b, false, 10 * MS, &ch);
    assert_int_equal(ch.from, AGEC_BREAKER_CLOSED);
    assert_int_equal(ch.to, AGEC_BREAKER_OPEN);
    assert_int_equal(b.opens, 1);
    assert_int_equal(agec__breaker_reopen_at(&b), 1010 * MS);
}

static void test_open_half_open_closed(void **state)
{
    (void)state;
    agec__breaker b;
    agec__breaker_change ch;
    agec__breaker_init(&b, 1, 1000);
    agec__breaker_failure(&b, false, 0, &ch);
    assert_int_equal(b.state, AGEC_BREAKER_OPEN);
    assert_int_equal(agec__breaker_allow(&b, 999 * MS, &ch), AGEC__BREAKER_DENY);
    /* after the open period: exactly one probe */
    assert_int_equal(agec__breaker_allow(&b, 1000 * MS, &ch), AGEC__BREAKER_PROBE);
    assert_int_equal(ch.to, AGEC_BREAKER_HALF_OPEN);
    assert_int_equal(agec__breaker_allow(&b, 1001 * MS, &ch), AGEC__BREAKER_DENY);
    /* probe fails: open again, from now */
    agec__breaker_failure(&b, true, 1100 * MS, &ch);
    assert_int_equal(ch.from, AGEC_BREAKER_HALF_OPEN);
    assert_int_equal(ch.to, AGEC_BREAKER_OPEN);
    assert_int_equal(b.opens, 2);
    assert_int_equal(agec__breaker_allow(&b, 2000 * MS, &ch), AGEC__BREAKER_DENY);
    assert_int_equal(agec__breaker_allow(&b, 2100 * MS, &ch), AGEC__BREAKER_PROBE);
    /* probe succeeds: closed */
    agec__breaker_success(&b, true, &ch);
    assert_int_equal(ch.to, AGEC_BREAKER_CLOSED);
    assert_int_equal(agec__breaker_allow(&b, 2100 * MS, &ch), AGEC__BREAKER_ALLOW);
    assert_int_equal(agec__breaker_reopen_at(&b), INT64_MAX);
}

static void test_non_probe_failure_in_half_open_does_not_reopen(void **state)
{
    (void)state;
    agec__breaker b;
    agec__breaker_change ch;
    agec__breaker_init(&b, 1, 100);
    agec__breaker_failure(&b, false, 0, &ch);
    assert_int_equal(agec__breaker_allow(&b, 100 * MS, &ch), AGEC__BREAKER_PROBE);
    /* an attempt that started before the breaker opened ends now */
    agec__breaker_failure(&b, false, 100 * MS, &ch);
    assert_int_equal(b.state, AGEC_BREAKER_HALF_OPEN);
    assert_int_equal(agec__breaker_allow(&b, 100 * MS, &ch), AGEC__BREAKER_DENY);
}

/* Issue 12: the cluster's monitor ends the open period when it sees the
 * server answer; only an OPEN breaker changes. */
static void test_probe_now(void **state)
{
    (void)state;
    agec__breaker b;
    agec__breaker_change ch;
    agec__breaker_init(&b, 1, 60000);
    agec__breaker_probe_now(&b, 5 * MS); /* closed: nothing */
    assert_int_equal(b.state, AGEC_BREAKER_CLOSED);
    agec__breaker_failure(&b, false, 10 * MS, &ch);
    assert_int_equal(agec__breaker_allow(&b, 20 * MS, &ch), AGEC__BREAKER_DENY);
    agec__breaker_probe_now(&b, 20 * MS);
    assert_int_equal(b.state, AGEC_BREAKER_OPEN);
    assert_int_equal(agec__breaker_allow(&b, 20 * MS, &ch), AGEC__BREAKER_PROBE);
    assert_int_equal(agec__breaker_allow(&b, 20 * MS, &ch), AGEC__BREAKER_DENY);
    agec__breaker_success(&b, true, &ch);
    assert_int_equal(b.state, AGEC_BREAKER_CLOSED);
}

static void test_disabled(void **state)
{
    (void)state;
    agec__breaker b;
    agec__breaker_change ch;
    agec__breaker_init(&b, 0, 100);
    for (int i = 0; i < 100; i++)
        agec__breaker_failure(&b, false, 0, &ch);
    assert_int_equal(b.state, AGEC_BREAKER_CLOSED);
    assert_int_equal(agec__breaker_allow(&b, 0, &ch), AGEC__BREAKER_ALLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_threshold),
        cmocka_unit_test(test_open_half_open_closed),
        cmocka_unit_test(test_non_probe_failure_in_half_open_does_not_reopen),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_probe_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
