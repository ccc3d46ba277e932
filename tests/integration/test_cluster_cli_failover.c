/*
 * Issue 25, "Failover under load, from outside": `agec bench` (the CLI
 * binary) with 4 writers and 4 readers through a multi-host DSN, pool of 3
 * per node, --record; two failovers (stop the primary, promote the
 * synchronous standby, the other standby follows, the old primary is
 * rewound with pg_rewind and rejoins as the synchronous standby; the second
 * with 2 s without a primary, twice the acquire timeout; then a standby
 * frozen (SIGSTOP) for 4 s, twice the statement timeout), then the
 * record is checked (cluster_cli_failover.h): every acknowledged write on
 * the last primary and every node, no read from a node off the current
 * timeline, no call past its budget + 250 ms, never more than 3 connections
 * of the bench on a node. Prints the promote-to-first-write times.
 */
#include "testutil.h"

#include "cluster_cli_failover.h"

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif
#ifndef AGEC_CLI_PATH
#error "AGEC_CLI_PATH must point to the agec binary"
#endif

static void test_failover_under_load(void **state)
{
    (void)state;
    fo_opts o;
    fo_opts_init(&o, AGEC_SCRIPTS_DIR, AGEC_CLI_PATH, 2);
    o.acquire_timeout_ms = 1000; /* the outage outlasts it: writes end at their deadline */
    o.outage_ms = 2000;
    o.freeze_ms = 4000; /* twice the statement timeout */
    fo_result r;
    int rc = fo_run(&o, &r);
    if (rc != 0)
        fail_msg("the failover run could not be made: %s", r.failure);
    printf("writes %ld ok / %ld failed, reads %ld ok (%ld on standbys, %ld while there was no "
           "primary) / %ld failed\n",
           r.writes_ok, r.writes_failed, r.reads_ok, r.reads_on_standby, r.reads_in_outage,
           r.reads_failed);
    for (int k = 0; k < r.rounds_done; k++)
        printf("failover %d: first write %.0f ms after the promote command (pg_ctl promote "
               "%.0f ms)\n",
               k + 1, r.first_write_ms[k], r.promote_ms[k]);
    printf("connections of the bench per node at most: %d %d %d (max %d, %ld samples)\n",
           r.max_conns[0], r.max_conns[1], r.max_conns[2], o.pool_max, r.conn_samples);
    printf("longest call %.0f ms, closest to its budget %+.0f ms (budget %d ms + 250); %ld calls "
           "waited their whole acquire timeout, %ld ended at their statement timeout; longest "
           "release %.0f ms\n",
           r.longest_ms, r.worst_over_ms, o.acquire_timeout_ms + o.statement_timeout_ms,
           r.deadline_hits, r.timeouts, r.max_release_ms);
    if (r.problems[0] != '\0')
        printf("problems:\n%s", r.problems);
    /* The checks could not pass vacuously. */
    assert_true(r.writes_ok > 0);
    assert_true(r.reads_on_standby > 0);
    assert_true(r.conn_samples > 0);
    assert_true(r.deadline_hits > 0); /* the outage outlasted the acquire timeout */
    assert_true(r.timeouts > 0);      /* reads in flight on the frozen standby */
    /* Reads go on on the standbys while there is no primary (they failed
     * with AGEC_ERR_NO_NODE in the second outage: the standbys, followers
     * of the first promoted node, said their last restartpoint's timeline,
     * the first, once their WAL receivers lost it). */
    assert_true(r.reads_in_outage > 0);
    assert_int_equal(r.missing_writes, 0);
    assert_int_equal(r.node_row_mismatch, 0);
    assert_int_equal(r.off_timeline_reads, 0);
    assert_int_equal(r.overruns, 0);
    assert_int_equal(r.conn_violations, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
