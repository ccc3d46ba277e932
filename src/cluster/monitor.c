/* The cluster's monitor: one thread per node, each with its own connection,
 * checks its node's role and WAL position every recheck_ms (every 50 ms
 * while no primary is known, at once after a kick) and updates routing. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "common/error_internal.h"
#include "session/clock.h"
#include "session/pgconn.h"

/* One round trip: role, WAL position (replay on a standby, current on the
 * primary), and a standby's own idea of its lag for when no primary is in
 * sight: 0 when it has replayed all it has received and its WAL receiver
 * streams (one that receives nothing cannot know what it misses), else the
 * age of the last replayed transaction (ms; -1 = unknown). The replay age
 * alone grows while the primary is idle, so it is used only then. The fifth
 * column is that replay age always: the lag of a standby behind every
 * position the cluster remembers of the primary (lsn_history.h). */
/* The fourth column is the node's timeline: a primary's from the name of
 * its current WAL file (PostgreSQL 15 names it by the insert timeline); a
 * standby's is the one its WAL receiver streams (pg_stat_wal_receiver,
 * visible with pg_read_all_stats), else its last restartpoint's. NULL when
 * the monitor's role may see neither. */
static const char CHECK_SQL[] =
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "
    "CASE WHEN NOT pg_is_in_recovery() THEN -1 "
    "WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() AND EXISTS (SELECT FROM "
    "pg_stat_wal_receiver WHERE status = 'streaming') THEN 0 "
    "ELSE COALESCE((extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint, "
    "-1) END, "
    "CASE WHEN NOT pg_is_in_recovery() THEN "
    "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint "
    "ELSE COALESCE((SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming' "
    "AND received_tli > 0), CASE WHEN has_function_privilege('pg_control_checkpoint()', "
    "'execute') THEN (pg_control_checkpoint()).timeline_id END) END, "
    "CASE WHEN pg_is_in_recovery() THEN COALESCE((extract(epoch FROM now() - "
    "pg_last_xact_replay_timestamp()) * 1000)::bigint, -1) ELSE -1 END";

typedef struct check_result {
    bool in_recovery;
    agec_lsn lsn;
    int64_t replay_age_ms;
    uint32_t tli; /* 0 = unknown */
    /* A standby's age of its last replayed commit (ms, -1 = unknown),
     * whether or not WAL waits: an upper bound of its lag. */
    int64_t replay_ts_age_ms;
} check_result;

PGresult *agec__cluster_query(PGconn *c, const char *sql, int64_t deadline_us,
                              const atomic_bool *abort_flag, char *errbuf, size_t cap)
{
    if (!PQsendQuery(c, sql)) {
        snprintf(errbuf, cap, "%s", PQerrorMessage(c));
        return NULL;
    }
    PGresult *last = NULL;
    for (;;) {
        while (!PQisBusy(c)) {
            PGresult *r = PQgetResult(c);
            if (r == NULL) {
                ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
                if (st == PGRES_TUPLES_OK && PQntuples(last) == 1)
                    return last;
                snprintf(errbuf, cap, "%s", last ? PQresultErrorMessage(last) : "no result");
                PQclear(last);
                return NULL;
            }
            PQclear(last);
            last = r;
        }
        int64_t now = agec__now_us();
        if (now >= deadline_us || (abort_flag != NULL && atomic_load(abort_flag))) {
            snprintf(errbuf, cap, "query timed out");
            PQclear(last);
            return NULL;
        }
        struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN, .revents = 0 };
        (void)poll(&pfd, 1, agec__poll_ms(agec__min64(deadline_us, now + 50000), now));
        if (!PQconsumeInput(c)) {
            snprintf(errbuf, cap, "%s", PQerrorMessage(c));
            PQclear(last);
            return NULL;
        }
    }
}

/* Run CHECK_SQL by deadline_us. False on any failure (message in errbuf);
 * the connection must then be closed. */
static bool run_check(struct agec_cluster *cl, PGconn *c, int64_t deadline_us, check_result *out,
                      char *errbuf, size_t cap)
{
    PGresult *last = agec__cluster_query(c, CHECK_SQL, deadline_us, &cl->stopping, errbuf, cap);
    if (last == NULL)
        return false;
    out->in_recovery = PQgetvalue(last, 0, 0)[0] == 't';
    out->lsn = 0;
    if (!PQgetisnull(last, 0, 1))
        (void)agec_lsn_parse(PQgetvalue(last, 0, 1), &out->lsn);
    out->replay_age_ms = strtoll(PQgetvalue(last, 0, 2), NULL, 10);
    out->replay_ts_age_ms = strtoll(PQgetvalue(last, 0, 4), NULL, 10);
    out->tli = PQgetisnull(last, 0, 3) ? 0 : (uint32_t)strtoul(PQgetvalue(last, 0, 3), NULL, 10);
    PQclear(last);
    return true;
}

static bool check_once(agec__node *nd, check_result *res, char *errbuf, size_t cap)
{
    struct agec_cluster *cl = nd->cl;
    int64_t deadline = agec__deadline_after(agec__now_us(), cl->connect_timeout_ms);
    if (nd->mon == NULL) {
        agec_error e = AGEC_ERROR_INIT;
        if (agec__session_connect((const char *const *)nd->mon_keys,
                                  (const char *const *)nd->mon_vals, deadline, &cl->stopping,
                                  &nd->mon, NULL, &e) != AGEC_OK) {
            agec__copy_text(errbuf, cap, e.message);
            return false;
        }
        nd->mon_tli = 0;
    }
    if (run_check(cl, nd->mon, deadline, res, errbuf, cap)) {
        /* A standby says its WAL receiver's timeline while it streams,
         * else its last restartpoint's, which lags behind a timeline
         * switch until the next restartpoint: a standby that followed a
         * promoted node and then lost it (the next failover) would say the
         * old timeline and leave the rotation, and reads would find no
         * node while no primary is known. The same server (the same
         * session) cannot have gone back, so the highest it said holds. */
        if (res->tli != 0 && res->tli < nd->mon_tli)
            res->tli = nd->mon_tli;
        nd->mon_tli = res->tli;
        return true;
    }
    PQfinish(nd->mon);
    nd->mon = NULL;
    return false;
}

bool agec__node_on_timeline(const struct agec_cluster *cl, const agec__node *nd)
{
    /* A standby on another timeline than the primary's cannot be compared
     * by position: an old primary restarted as a standby without pg_rewind
     * sits past the fork on the old timeline, with rows the new primary
     * lost and without the ones it took since. Unknown timelines (the
     * monitor's role cannot see them) are not held against a node. */
    return cl->primary_tli == 0 || nd->tli == 0 || nd->tli == cl->primary_tli;
}

bool agec__node_in_rotation(const struct agec_cluster *cl, const agec__node *nd)
{
    if (nd->role != AGEC_NODE_STANDBY || !agec__node_on_timeline(cl, nd))
        return false;
    if (cl->max_lag_ms <= 0)
        return true;
    return nd->lag_ms >= 0 && nd->lag_ms <= cl->max_lag_ms;
}

void agec__cluster_publish_locked(struct agec_cluster *cl)
{
    for (int i = 0; i < cl->n; i++)
        atomic_store(&cl->nodes[i].rot_snap, agec__node_in_rotation(cl, &cl->nodes[i]));
    atomic_store(&cl->primary_snap, cl->primary);
}

void agec__cluster_kick_locked(struct agec_cluster *cl)
{
    cl->kick_gen++;
    pthread_cond_broadcast(&cl->mon_cv);
}

void agec__cluster_choose_primary(struct agec_cluster *cl)
{
    /* Among the nodes out of recovery, the one on the highest timeline: a
     * promotion starts a new one, so an old primary that still answers
     * (not fenced) never wins against the new one, nor takes its place
     * when the new one misses a check, nor at open whichever check lands
     * first; a node on a timeline below the highest seen is never chosen.
     * On the same timeline (or timelines unknown), the one last seen as a
     * standby, then the current one. */
    int best = -1;
    for (int i = 0; i < cl->n; i++) {
        const agec__node *nd = &cl->nodes[i];
        if (nd->role != AGEC_NODE_PRIMARY)
            continue;
        if (nd->tli != 0 && nd->tli < cl->primary_tli)
            continue;
        if (best >= 0) {
            const agec__node *b = &cl->nodes[best];
            if (nd->tli != b->tli && nd->tli != 0 && b->tli != 0) {
                if (nd->tli < b->tli)
                    continue;
            } else if (nd->standby_seen_us < b->standby_seen_us ||
                       (nd->standby_seen_us == b->standby_seen_us && i != cl->primary)) {
                continue;
            }
        }
        best = i;
    }
    if (best >= 0 && cl->nodes[best].tli > cl->primary_tli)
        cl->primary_tli = cl->nodes[best].tli; /* the highest seen, kept while none is known */
    if (best != cl->primary) {
        cl->primary = best;
        agec__lsn_history_reset(&cl->hist); /* positions of another server: start over */
        if (best < 0)
            agec__cluster_kick_locked(cl);
    }
}

static void record(agec__node *nd, bool ok, const check_result *res, const char *errmsg)
{
    struct agec_cluster *cl = nd->cl;
    int64_t now = agec__now_us();
    pthread_mutex_lock(&cl->mu);
    agec_node_role was = nd->role;
    nd->checked = true;
    if (!ok) {
        nd->check_failures++;
        nd->role = AGEC_NODE_DOWN;
        nd->lag_ms = -1;
        snprintf(nd->last_error, sizeof nd->last_error, "%s", errmsg);
        /* Strip libpq's trailing newline. */
        size_t l = strlen(nd->last_error);
        while (l > 0 && (nd->last_error[l - 1] == '\n' || nd->last_error[l - 1] == ' '))
            nd->last_error[--l] = '\0';
    } else {
        nd->checks++;
        nd->checked_at_us = now;
        nd->lsn = res->lsn;
        nd->tli = res->tli;
        nd->last_error[0] = '\0';
        if (res->in_recovery) {
            nd->role = AGEC_NODE_STANDBY;
            nd->standby_seen_us = now;
        } else {
            nd->role = AGEC_NODE_PRIMARY;
            nd->lag_ms = 0;
        }
    }
    if (nd->role != was && was != AGEC_NODE_UNKNOWN)
        nd->role_changes++;
    agec__cluster_choose_primary(cl);
    if (ok && nd->role == AGEC_NODE_PRIMARY && cl->primary == nd->index) {
        agec__lsn_history_add(&cl->hist, res->lsn, now);
        /* A standby at or past this position is not behind, whatever its
         * last check (maybe made before any primary was known) said. */
        for (int i = 0; i < cl->n; i++) {
            agec__node *s = &cl->nodes[i];
            if (s->role == AGEC_NODE_STANDBY && s->lsn >= res->lsn)
                s->lag_ms = 0;
        }
    }
    if (ok && nd->role == AGEC_NODE_STANDBY) {
        if (cl->primary >= 0 && agec__lsn_history_len(&cl->hist) > 0)
            nd->lag_ms = agec__lsn_history_lag_ms(&cl->hist, res->lsn, res->replay_ts_age_ms, now);
        else if (cl->primary >= 0 && res->lsn >= cl->nodes[cl->primary].lsn)
            nd->lag_ms = 0; /* caught up with the primary's last position */
        else
            nd->lag_ms = res->replay_age_ms;
    }
    agec__cluster_publish_locked(cl);
    cl->topo_gen++;
    pthread_cond_broadcast(&cl->topo_cv);
    pthread_mutex_unlock(&cl->mu);
    /* Back from down: its pool's breaker need not wait out its open
     * period, the monitor has just seen the server answer. */
    if (ok && was == AGEC_NODE_DOWN)
        agec_pool_breaker_probe(nd->pool);
}

void *agec__cluster_monitor_main(void *arg)
{
    agec__node *nd = arg;
    struct agec_cluster *cl = nd->cl;
    pthread_mutex_lock(&cl->mu);
    uint64_t seen_kick = cl->kick_gen;
    pthread_mutex_unlock(&cl->mu);
    for (;;) {
        /* At most one check per AGEC__CLUSTER_FAST_MS, kicks or not: many
         * acquirers waiting for a node kick the monitors again and again,
         * and a node that is down or lagging must not get a storm of
         * checks (nor the position history fill in milliseconds). */
        int64_t earliest = agec__deadline_after(agec__now_us(), AGEC__CLUSTER_FAST_MS);
        check_result res = { false, 0, -1, 0, -1 };
        char errbuf[256] = "";
        bool ok = check_once(nd, &res, errbuf, sizeof errbuf);
        /* A monitor connection can die alone (a restart, a terminated
         * backend): reconnect once before calling the node down. */
        if (!ok && !atomic_load(&cl->stopping))
            ok = check_once(nd, &res, errbuf, sizeof errbuf);
        if (atomic_load(&cl->stopping))
            break;
        record(nd, ok, &res, errbuf);
        pthread_mutex_lock(&cl->mu);
        int64_t wait_ms = cl->primary < 0 ? AGEC__CLUSTER_FAST_MS : cl->recheck_ms;
        int64_t deadline = agec__deadline_after(agec__now_us(), wait_ms);
        for (;;) {
            int64_t now = agec__now_us();
            if (cl->stop || now >= deadline || (cl->kick_gen != seen_kick && now >= earliest))
                break;
            struct timespec ts = agec__timespec_at(
                cl->kick_gen != seen_kick && earliest < deadline ? earliest : deadline);
            pthread_cond_timedwait(&cl->mon_cv, &cl->mu, &ts);
        }
        seen_kick = cl->kick_gen;
        bool stop = cl->stop;
        pthread_mutex_unlock(&cl->mu);
        if (stop)
            break;
    }
    if (nd->mon != NULL) {
        PQfinish(nd->mon);
        nd->mon = NULL;
    }
    return NULL;
}
