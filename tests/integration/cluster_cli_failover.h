/*
 * Failover under load, from outside (issue 25): `agec bench` (the CLI, as a
 * user runs it) with writers and readers through a multi-host DSN and
 * --record, while the primary is stopped, a standby promoted, and the old
 * primary rewound (pg_rewind) and rejoined as a standby, several times over.
 * A sampler counts each node's connections of the bench all along. After
 * the run the record is checked:
 *   - every acknowledged write (its unique key) is on the last primary, and
 *     every node has the same rows once it has caught up;
 *   - no read was answered by a node off the current timeline: a read on
 *     timeline T that began after the first write acknowledged on T's
 *     successor (the cluster knew the new primary by then), or that ended
 *     before T existed;
 *   - no call (acquire + statement) took longer than its budget
 *     (acquire timeout + statement timeout) + 250 ms, no acquire longer than
 *     the acquire timeout + 250 ms, no statement longer than the statement
 *     timeout + 250 ms (also on a standby frozen with SIGSTOP, see
 *     freeze_ms);
 *   - never more than --pool-max connections of the bench on a node;
 * and the time from the promote command to the first write acknowledged by
 * the new primary is measured per failover (the benchmark row).
 *
 * Shared by the CTest it_cluster_cli_failover and bench/bench_failover_cli;
 * no cmocka here: a set-up failure is returned with its reason.
 */
#ifndef AGEC_CLUSTER_CLI_FAILOVER_H
#define AGEC_CLUSTER_CLI_FAILOVER_H

#include <stdio.h>

#define FO_MAX_ROUNDS 16

typedef struct fo_opts {
    const char *scripts_dir; /* scripts/ (pg-cluster-server) */
    const char *agec_path;   /* the agec binary */
    int rounds;              /* failovers, 1..FO_MAX_ROUNDS */
    int pool_max;            /* --pool-max of the bench */
    int writers, readers;    /* bench threads */
    int acquire_timeout_ms, statement_timeout_ms;
    /* In every second failover, the time between the primary's stop and
     * the promotion (no primary meanwhile): longer than the acquire
     * timeout, writes then end at their deadline. 0 = promote at once. */
    int outage_ms;
    /* After the failovers, freeze node 2 (a standby throughout) this long
     * (SIGSTOP of its postmaster and backends, then SIGCONT): the reads in
     * flight there must end at their statement timeout (+ 250 ms) although
     * the server never answers, not even the cancel. 0 = no freeze. */
    int freeze_ms;
    FILE *log; /* progress lines; NULL = none */
} fo_opts;

typedef struct fo_result {
    int rounds_done;
    double first_write_ms[FO_MAX_ROUNDS]; /* promote command start -> first write acked */
    double promote_ms[FO_MAX_ROUNDS];     /* how long `pg_ctl promote -w` took */
    long writes_ok, writes_failed, reads_ok, reads_failed, reads_on_standby;
    long missing_writes;     /* acknowledged, not on the last primary */
    long node_row_mismatch;  /* nodes whose rows differ from the primary's at the end */
    long off_timeline_reads; /* see the header comment */
    long overruns;           /* calls past their budget + 250 ms */
    double worst_over_ms;    /* the largest (duration - budget) seen */
    double longest_ms;       /* the longest call */
    long deadline_hits;      /* calls that waited their whole acquire timeout */
    long timeouts;           /* calls that ended with AGEC_ERR_TIMEOUT (statement timeout) */
    /* Reads answered while there was no primary (an outage, from 500 ms
     * after the stop to the promotion): the standbys hold the last
     * primary's data, and reads go on there. */
    long reads_in_outage;
    double max_release_ms;
    int max_conns[3]; /* the most connections of the bench seen on each node */
    long conn_samples, conn_violations;
    char problems[2048]; /* the first violations, one a line */
    char failure[512];   /* why the run could not be made (set-up); "" when it ran */
} fo_result;

/* The defaults: `rounds` failovers, agec bench with 4 writers and 4
 * readers, --pool-max 3, --acquire-timeout 2000, --statement-timeout 2000,
 * promotion at once (outage_ms 0), progress on stdout. */
void fo_opts_init(fo_opts *o, const char *scripts_dir, const char *agec_path, int rounds);

/* Run it. Returns 0 when the run was made (the checks' outcome is in *r),
 * -1 when it could not be made (r->failure says why: the cluster did not
 * start, agec bench failed, a wait ran out). The cluster and temporary
 * files are removed, except on a failure or a violation, or with
 * AGEC_FO_KEEP set in the environment (kept for reading; their directory is
 * printed to the log). */
int fo_run(const fo_opts *o, fo_result *r);

/* True when *r shows no violation. */
int fo_clean(const fo_result *r);

#endif
