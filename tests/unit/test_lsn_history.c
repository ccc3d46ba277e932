/* Standby lag from the primary's remembered WAL positions, with made-up
 * times. The case that failed it_cluster once under load: the history
 * restarts (the primary's check failed once) while a standby is paused far
 * behind; its lag must not drop to the age of the restarted history. */
#include "testutil.h"

#include "cluster/lsn_history.h"

#define MS 1000 /* microseconds */

static void test_lag_is_age_of_first_position_not_replayed(void **state)
{
    (void)state;
    agec__lsn_history h;
    agec__lsn_history_reset(&h);
    assert_int_equal(agec__lsn_history_lag_ms(&h, 5, -1, 0), 0); /* nothing known */
    agec__lsn_history_add(&h, 100, 1000 * MS);
    agec__lsn_history_add(&h, 100, 1100 * MS); /* not past the last: ignored */
    agec__lsn_history_add(&h, 200, 1200 * MS);
    agec__lsn_history_add(&h, 300, 1300 * MS);
    assert_int_equal(agec__lsn_history_len(&h), 3);
    assert_int_equal(agec__lsn_history_lag_ms(&h, 300, -1, 2000 * MS), 0); /* caught up */
    assert_int_equal(agec__lsn_history_lag_ms(&h, 250, 9999, 2000 * MS), 700);
    assert_int_equal(agec__lsn_history_lag_ms(&h, 150, 9999, 2000 * MS), 800);
}

static void test_behind_the_whole_history_is_a_lower_bound(void **state)
{
    (void)state;
    agec__lsn_history h;
    agec__lsn_history_reset(&h);
    agec__lsn_history_add(&h, 100, 0);
    agec__lsn_history_add(&h, 200, 1000 * MS);
    /* Paused at 150 since t = 0.5 s; at t = 3 s it is 2 s behind. */
    assert_int_equal(agec__lsn_history_lag_ms(&h, 150, 2500, 3000 * MS), 2000);
    /* The primary's check fails once: the history starts over. */
    agec__lsn_history_reset(&h);
    agec__lsn_history_add(&h, 400, 3000 * MS);
    /* 50 ms later the history alone says 50 ms; the standby's own replay
     * age (its last replayed commit is 2.55 s old) says more, and wins. */
    assert_int_equal(agec__lsn_history_lag_ms(&h, 150, 2550, 3050 * MS), 2550);
    /* Unknown or smaller replay age: the history's bound stands. */
    assert_int_equal(agec__lsn_history_lag_ms(&h, 150, -1, 3050 * MS), 50);
    assert_int_equal(agec__lsn_history_lag_ms(&h, 150, 10, 3050 * MS), 50);
}

static void test_ring_keeps_the_newest(void **state)
{
    (void)state;
    agec__lsn_history h;
    agec__lsn_history_reset(&h);
    for (int i = 1; i <= AGEC__LSN_HISTORY + 10; i++)
        agec__lsn_history_add(&h, (agec_lsn)i * 10, (int64_t)i * MS);
    assert_int_equal(agec__lsn_history_len(&h), AGEC__LSN_HISTORY);
    /* The oldest kept is entry 11 (lsn 110, t = 11 ms). */
    assert_int_equal(agec__lsn_history_lag_ms(&h, 115, -1, 1000 * MS), 1000 - 12);
    assert_int_equal(agec__lsn_history_lag_ms(&h, 5, -1, 1000 * MS), 1000 - 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lag_is_age_of_first_position_not_replayed),
        cmocka_unit_test(test_behind_the_whole_history_is_a_lower_bound),
        cmocka_unit_test(test_ring_keeps_the_newest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
