/*
 * bench_failover_cli: failover under load, from outside (issue 25). `agec
 * bench` (the CLI binary) with 4 writers and 4 readers through a multi-host
 * DSN with --record, on a primary + 2 hot standbys started here; N times:
 * stop the primary, promote the synchronous standby at once, the other
 * standby follows it, the old primary is rewound (pg_rewind) and rejoins.
 * The figure: the time from the promote command to the first write
 * acknowledged by the new primary, min / median / max over the failovers,
 * as the CLI's own record shows it (no hook inside the process). The run is
 * checked as it_cluster_cli_failover checks it (every acknowledged write on
 * the last primary, no read off the current timeline, no call past its
 * budget + 250 ms, at most --pool-max connections per node); a violation
 * fails the benchmark. The driver is tests/integration/cluster_cli_failover.c.
 *
 * usage: bench_failover_cli       (no test server needed: it starts its own)
 * env:   AGEC_BENCH_FAILOVERS     failovers (default 5, at most 16)
 * Exits 0 when it ran and every check held, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cluster_cli_failover.h"

#ifndef AGEC_SCRIPTS_DIR
#error "AGEC_SCRIPTS_DIR must point to scripts/"
#endif
#ifndef AGEC_CLI_PATH
#error "AGEC_CLI_PATH must point to the agec binary"
#endif

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_print_machine("bench_failover_cli");
    const char *fr = getenv("AGEC_BENCH_FAILOVERS");
    int rounds = fr ? atoi(fr) : 5;
    if (rounds < 1)
        rounds = 1;
    if (rounds > FO_MAX_ROUNDS)
        rounds = FO_MAX_ROUNDS;
    fo_opts o;
    fo_opts_init(&o, AGEC_SCRIPTS_DIR, AGEC_CLI_PATH, rounds);
    printf("agec bench --record, 4 writers (INSERT of a unique key) + 4 readers, --pool-max 3, "
           "%d failovers (stop the primary, promote the synchronous standby at once, pg_rewind "
           "the old one back in)\n",
           rounds);
    fo_result r;
    if (fo_run(&o, &r) != 0) {
        fprintf(stderr, "bench_failover_cli: the run could not be made: %s\n", r.failure);
        return 1;
    }
    double t[FO_MAX_ROUNDS];
    memcpy(t, r.first_write_ms, sizeof(double) * (size_t)r.rounds_done);
    qsort(t, (size_t)r.rounds_done, sizeof *t, bench_cmp_double);
    for (int k = 0; k < r.rounds_done; k++)
        printf("  failover %d: first write %.0f ms after the promote command (pg_ctl promote "
               "-w took %.0f ms)\n",
               k + 1, r.first_write_ms[k], r.promote_ms[k]);
    printf("  promote to first write through agec bench over %d failovers: min %.0f ms, median "
           "%.0f ms, max %.0f ms\n",
           r.rounds_done, t[0], bench_median(t, r.rounds_done), t[r.rounds_done - 1]);
    printf("  calls: writes %ld ok / %ld failed, reads %ld ok (%ld on standbys) / %ld failed; "
           "longest %.0f ms (budget %d); connections per node at most %d %d %d (max %d)\n",
           r.writes_ok, r.writes_failed, r.reads_ok, r.reads_on_standby, r.reads_failed,
           r.longest_ms, o.acquire_timeout_ms + o.statement_timeout_ms, r.max_conns[0],
           r.max_conns[1], r.max_conns[2], o.pool_max);
    printf("  checks: %ld acknowledged writes missing, %ld nodes with other rows, %ld reads off "
           "the timeline, %ld calls past budget + 250 ms, %ld samples over max\n",
           r.missing_writes, r.node_row_mismatch, r.off_timeline_reads, r.overruns,
           r.conn_violations);
    if (!fo_clean(&r)) {
        printf("%s", r.problems);
        return 1;
    }
    bench_print_load("load at end");
    return 0;
}
