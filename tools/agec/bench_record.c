/* agec bench --record: one JSON line per call (bench_record.h). */
#include "bench_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cli.h"

/* The server's timeline: a primary's from the name of its current WAL file
 * (the insert timeline, as agec's cluster monitor reads it); a standby's,
 * the highest of what it tells: the timeline its WAL receiver streams, its
 * last restartpoint's, and its minimum recovery point's (a standby answers
 * only past that point). The restartpoint alone lags behind a timeline
 * switch until the next restartpoint: a standby that follows a promoted
 * node and then loses it says the old timeline, and so does a node rewound
 * by pg_rewind (whose minimum recovery point is on the new one). */
static const char NODE_SQL[] =
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN "
    "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint "
    "ELSE GREATEST((SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming' "
    "AND received_tli > 0), CASE WHEN has_function_privilege('pg_control_checkpoint()', "
    "'execute') THEN (pg_control_checkpoint()).timeline_id END, "
    "CASE WHEN has_function_privilege('pg_control_recovery()', 'execute') THEN "
    "NULLIF((pg_control_recovery()).min_recovery_end_timeline, 0) END) END";

int bench_record_open(bench_record *r, const char *path)
{
    r->f = fopen(path, "w");
    if (r->f == NULL) {
        fprintf(stderr, "agec: bench --record %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

double bench_record_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void bench_record_node(agec_conn *conn, bench_call *call, int timeout_ms)
{
    PGconn *pg = agec_conn_pgconn(conn);
    const char *host = pg ? PQhost(pg) : NULL, *port = pg ? PQport(pg) : NULL;
    snprintf(call->node, sizeof call->node, "%s:%s", host ? host : "", port ? port : "");
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.prepare = false;
    agec_result *res = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_sql_exec(conn, NODE_SQL, 0, NULL, &o, &res, &err) == AGEC_OK &&
        agec_result_rows(res) == 1) {
        const char *rec = agec_result_text(res, 0, 0, NULL),
                   *tli = agec_result_text(res, 0, 1, NULL);
        if (rec != NULL)
            call->in_recovery = rec[0] == 't';
        if (tli != NULL && tli[0] != '\0')
            call->timeline = strtoll(tli, NULL, 10);
    }
    agec_result_free(res);
}

void bench_record_write(bench_record *r, const bench_call *call)
{
    if (r->f == NULL)
        return;
    char key[96] = "null", node[300] = "null", tli[32] = "null", deadline[32] = "null";
    if (call->key != NULL)
        snprintf(key, sizeof key, "\"%s\"", call->key); /* digits and '-' only */
    if (call->node[0] != '\0')
        snprintf(node, sizeof node, "\"%s\"", call->node); /* a host name and a port */
    if (call->timeline >= 0)
        snprintf(tli, sizeof tli, "%lld", call->timeline);
    if (r->statement_timeout_ms > 0)
        snprintf(deadline, sizeof deadline, "%d", r->acquire_timeout_ms + r->statement_timeout_ms);
    fprintf(r->f,
            "{\"kind\": \"%s\", \"thread\": %d, \"key\": %s, \"start\": %.3f, \"end\": %.3f, "
            "\"ms\": %.3f, \"acquire_ms\": %.3f, \"release_ms\": %.3f, \"deadline_ms\": %s, "
            "\"acquire_deadline_ms\": %d, \"ok\": %s, \"code\": \"%s\", \"sqlstate\": \"%s\", "
            "\"node\": %s, \"timeline\": %s, \"in_recovery\": %s}\n",
            call->reader ? "read" : "write", call->thread, key, call->start, call->start + call->ms,
            call->ms, call->acquire_ms, call->release_ms, deadline, r->acquire_timeout_ms,
            call->st == AGEC_OK ? "true" : "false", agec_status_name(call->st), call->sqlstate,
            node, tli,
            call->in_recovery < 0 ? "null"
            : call->in_recovery   ? "true"
                                  : "false");
}

int bench_record_close(bench_record *r)
{
    if (r->f == NULL)
        return EXIT_OK;
    bool bad = ferror(r->f) != 0;
    bad = fclose(r->f) != 0 || bad;
    r->f = NULL;
    if (bad) {
        fprintf(stderr, "agec: bench --record: writing the file failed\n");
        return EXIT_QUERY;
    }
    return EXIT_OK;
}
