/* Cluster statistics, Prometheus text, error reports and the
 * read-your-writes token. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "cluster/prom_merge.h"
#include "common/error_internal.h"
#include "session/clock.h"

int agec_cluster_node_count(const agec_cluster *cl)
{
    return cl ? cl->n : 0;
}

agec_pool *agec_cluster_node_pool(agec_cluster *cl, int index)
{
    if (cl == NULL || index < 0 || index >= cl->n)
        return NULL;
    return cl->nodes[index].pool;
}

int agec_cluster_primary_index(agec_cluster *cl)
{
    if (cl == NULL)
        return -1;
    pthread_mutex_lock(&cl->mu);
    int p = cl->primary;
    pthread_mutex_unlock(&cl->mu);
    return p;
}

agec_status agec_cluster_node_stats_get_sized(agec_cluster *cl, int index,
                                              agec_cluster_node_stats *out, size_t size)
{
    if (cl == NULL || out == NULL || index < 0 || index >= cl->n ||
        size < offsetof(agec_cluster_node_stats, breaker) + sizeof out->breaker)
        return AGEC_ERR_INVALID_ARG;
    agec_cluster_node_stats s;
    memset(&s, 0, sizeof s);
    (void)agec__cluster_enter(cl);
    const agec__node *nd = &cl->nodes[index];
    snprintf(s.host, sizeof s.host, "%s", nd->host);
    s.port = nd->port;
    int64_t now = agec__now_us();
    pthread_mutex_lock(&cl->mu);
    s.role = nd->role;
    s.in_rotation = agec__node_in_rotation(cl, nd);
    s.lag_ms = nd->role == AGEC_NODE_PRIMARY ? 0 : nd->lag_ms;
    s.lsn = nd->lsn;
    s.checked_ms_ago = nd->checked_at_us ? (now - nd->checked_at_us) / 1000 : -1;
    s.checks = nd->checks;
    s.check_failures = nd->check_failures;
    s.role_changes = nd->role_changes;
    s.timeline = nd->tli;
    s.on_timeline = agec__node_on_timeline(cl, nd);
    pthread_mutex_unlock(&cl->mu);
    s.acquires_write = atomic_load(&nd->acq_write);
    s.acquires_read = atomic_load(&nd->acq_read);
    s.acquire_errors = atomic_load(&nd->acq_errors);
    s.errors_reported = atomic_load(&nd->reported);
    s.acquires_read_primary = atomic_load(&nd->acq_read_primary);
    s.recovery_errors = atomic_load(&nd->recovery_errors);
    agec_pool_stats ps;
    if (agec_pool_stats_get(nd->pool, &ps) == AGEC_OK) {
        s.in_use = ps.in_use;
        s.idle = ps.idle;
        s.total = ps.total;
        s.waiting = ps.waiting;
        s.breaker = ps.breaker;
    }
    agec__cluster_leave(cl);
    size_t n = size < sizeof s ? size : sizeof s;
    s.struct_size = n;
    memcpy(out, &s, n);
    return AGEC_OK;
}

/* snprintf into buf at *len, accumulating the length needed. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        *len += (size_t)w;
}

/* Label value with " and \ escaped (and newlines as \n). */
static void esc(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < cap; p++) {
        if (*p == '"' || *p == '\\')
            out[o++] = '\\';
        if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

size_t agec_cluster_prometheus(agec_cluster *cl, char *buf, size_t cap)
{
    size_t len = 0;
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (cl == NULL)
        return 0;
    if (buf == NULL)
        cap = 0;
    char cname[300];
    esc(cl->name, cname, sizeof cname);
    static const char *const metrics[][2] = {
        { "up", "gauge" },
        { "role", "gauge" },
        { "lag_ms", "gauge" },
        { "in_rotation", "gauge" },
        { "in_use", "gauge" },
        { "acquires_total", "counter" },
        { "errors_total", "counter" },
    };
    agec_cluster_node_stats s[AGEC_CLUSTER_MAX_NODES];
    for (int i = 0; i < cl->n; i++)
        (void)agec_cluster_node_stats_get(cl, i, &s[i]);
    for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        put(buf, cap, &len, "# TYPE agec_cluster_node_%s %s\n", metrics[m][0], metrics[m][1]);
        for (int i = 0; i < cl->n; i++) {
            char host[600], lab[960];
            esc(s[i].host, host, sizeof host);
            snprintf(lab, sizeof lab, "cluster=\"%s\",node=\"%s:%d\"", cname, host, s[i].port);
            const char *name = metrics[m][0];
            if (m == 0)
                put(buf, cap, &len, "agec_cluster_node_%s{%s} %d\n", name, lab,
                    s[i].role == AGEC_NODE_PRIMARY || s[i].role == AGEC_NODE_STANDBY);
            else if (m == 1)
                for (int r = AGEC_NODE_UNKNOWN; r <= AGEC_NODE_DOWN; r++)
                    put(buf, cap, &len, "agec_cluster_node_%s{%s,role=\"%s\"} %d\n", name, lab,
                        agec_node_role_name((agec_node_role)r), (int)s[i].role == r);
            else if (m == 2)
                put(buf, cap, &len, "agec_cluster_node_%s{%s} %lld\n", name, lab,
                    (long long)s[i].lag_ms);
            else if (m == 3)
                put(buf, cap, &len, "agec_cluster_node_%s{%s} %d\n", name, lab,
                    s[i].in_rotation ? 1 : 0);
            else if (m == 4)
                put(buf, cap, &len, "agec_cluster_node_%s{%s} %d\n", name, lab, s[i].in_use);
            else if (m == 5) {
                put(buf, cap, &len, "agec_cluster_node_%s{%s,access=\"write\"} %llu\n", name, lab,
                    (unsigned long long)s[i].acquires_write);
                put(buf, cap, &len, "agec_cluster_node_%s{%s,access=\"read\"} %llu\n", name, lab,
                    (unsigned long long)s[i].acquires_read);
            } else
                put(buf, cap, &len, "agec_cluster_node_%s{%s} %llu\n", name, lab,
                    (unsigned long long)(s[i].acquire_errors + s[i].errors_reported +
                                         s[i].check_failures));
        }
    }
    /* Each node pool's metrics, merged so that every family is declared once
     * and its samples form one group (prom_merge.h). */
    char *texts[AGEC_CLUSTER_MAX_NODES];
    int nt = 0;
    for (int i = 0; i < cl->n; i++) {
        agec_pool_stats ps;
        if (agec_pool_stats_get(cl->nodes[i].pool, &ps) != AGEC_OK)
            continue;
        size_t need = agec_pool_stats_prometheus(&ps, cl->nodes[i].pool_name, NULL, 0);
        texts[nt] = malloc(need + 1);
        if (texts[nt] == NULL)
            continue;
        (void)agec_pool_stats_prometheus(&ps, cl->nodes[i].pool_name, texts[nt++], need + 1);
    }
    (void)agec__prom_merge((const char *const *)texts, nt, buf, cap, &len);
    for (int i = 0; i < nt; i++)
        free(texts[i]);
    return len;
}

static void report(agec_cluster *cl, agec_conn *conn, const agec_error *err);

void agec_cluster_report(agec_cluster *cl, agec_conn *conn, const agec_error *err)
{
    if (cl == NULL || conn == NULL || err == NULL || err->code == AGEC_OK)
        return;
    (void)agec__cluster_enter(cl);
    report(cl, conn, err);
    agec__cluster_leave(cl);
}

static void report(agec_cluster *cl, agec_conn *conn, const agec_error *err)
{
    agec_pool *p = agec_conn_pool(conn);
    for (int i = 0; i < cl->n; i++) {
        if (cl->nodes[i].pool != p)
            continue;
        atomic_fetch_add(&cl->nodes[i].reported, 1);
        if (strcmp(err->sqlstate, "55000") == 0) {
            pthread_mutex_lock(&cl->mu);
            bool standby = cl->nodes[i].role == AGEC_NODE_STANDBY;
            pthread_mutex_unlock(&cl->mu);
            if (standby)
                atomic_fetch_add(&cl->nodes[i].recovery_errors, 1);
        }
        bool failover_sign = strcmp(err->sqlstate, "25006") == 0 ||
                             err->code == AGEC_ERR_CONNECTION_LOST ||
                             strncmp(err->sqlstate, "57P", 3) == 0;
        if (failover_sign) {
            pthread_mutex_lock(&cl->mu);
            agec__cluster_kick_locked(cl);
            pthread_mutex_unlock(&cl->mu);
        }
        return;
    }
}

/* How long agec_cluster_commit_lsn waits for its one round trip. */
#define COMMIT_LSN_TIMEOUT_MS 10000

/* WAL page headers (PostgreSQL's SizeOfXLogShortPHD and SizeOfXLogLongPHD
 * on 64-bit builds, MAXALIGN'ed). */
#define WAL_SHORT_PHD 24
#define WAL_LONG_PHD 40

/* The end of the last WAL record, from the insert position: right after a
 * page header the last record ended at the page boundary, which is where a
 * standby's replay stops (pg_last_wal_replay_lsn is the end of the last
 * record replayed); the insert position is past the header it has not got. */
static agec_lsn record_end(agec_lsn insert, uint64_t block, uint64_t segment)
{
    if (block == 0 || segment == 0)
        return insert;
    if (insert % segment == WAL_LONG_PHD)
        return insert - WAL_LONG_PHD;
    if (insert % block == WAL_SHORT_PHD)
        return insert - WAL_SHORT_PHD;
    return insert;
}

static agec_status commit_position(agec_conn *conn, agec_lsn *out, uint32_t *tli, agec_error *err);

agec_status agec_cluster_commit_lsn(agec_conn *conn, agec_lsn *out, agec_error *err)
{
    if (out != NULL)
        *out = 0;
    if (conn == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_cluster_commit_lsn: NULL argument");
    uint32_t tli = 0;
    return commit_position(conn, out, &tli, err);
}

agec_status agec_cluster_commit_token(agec_conn *conn, agec_cluster_token *out, agec_error *err)
{
    if (out != NULL) {
        out->lsn = 0;
        out->timeline = 0;
    }
    if (conn == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_cluster_commit_token: NULL argument");
    return commit_position(conn, &out->lsn, &out->timeline, err);
}

static agec_status commit_position(agec_conn *conn, agec_lsn *out, uint32_t *tli, agec_error *err)
{
    PGconn *pg = agec_conn_pgconn(conn);
    if (PQtransactionStatus(pg) != PQTRANS_IDLE)
        return agec__error_set(err, AGEC_ERR_STATE,
                               "agec_cluster_commit_lsn: call it after the commit, outside a "
                               "transaction");
    char msg[256];
    int64_t deadline = agec__deadline_after(agec__now_us(), COMMIT_LSN_TIMEOUT_MS);
    PGresult *r = agec__cluster_query(
        pg,
        "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN "
        "pg_current_wal_insert_lsn() END, current_setting('wal_block_size')::bigint, "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), "
        "CASE WHEN NOT pg_is_in_recovery() THEN ('x' || substr(pg_walfile_name("
        "pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END",
        deadline, NULL, msg, sizeof msg);
    if (r == NULL) {
        bool lost = PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) == PQTRANS_ACTIVE;
        return agec__error_set(
            err, lost ? AGEC_ERR_CONNECTION_LOST : AGEC_ERR_SERVER, "agec_cluster_commit_lsn: %s%s",
            msg, lost ? " (release the connection with agec_conn_release_broken)" : "");
    }
    agec_status st = AGEC_OK;
    agec_lsn insert = 0;
    if (PQgetvalue(r, 0, 0)[0] == 't')
        st = agec__error_set(err, AGEC_ERR_STATE,
                             "agec_cluster_commit_lsn: the server is in recovery (not a write "
                             "connection)");
    else if (!agec_lsn_parse(PQgetvalue(r, 0, 1), &insert))
        st = agec__error_set(err, AGEC_ERR_SERVER, "agec_cluster_commit_lsn: bad LSN \"%s\"",
                             PQgetvalue(r, 0, 1));
    else {
        *out = record_end(insert, strtoull(PQgetvalue(r, 0, 2), NULL, 10),
                          PQgetisnull(r, 0, 3) ? 0 : strtoull(PQgetvalue(r, 0, 3), NULL, 10));
        *tli = PQgetisnull(r, 0, 4) ? 0 : (uint32_t)strtoul(PQgetvalue(r, 0, 4), NULL, 10);
    }
    PQclear(r);
    return st;
}
