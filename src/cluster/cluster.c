/* The cluster: open/close, routing of acquires, read-your-writes, error
 * reports. Uses each node's agec_pool through the public pool API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "common/error_internal.h"
#include "session/clock.h"

static void cluster_free(agec_cluster *cl)
{
    for (int i = 0; i < AGEC_CLUSTER_MAX_NODES; i++)
        agec__cluster_free_keys(&cl->nodes[i]);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->topo_cv);
    pthread_cond_destroy(&cl->mon_cv);
    free(cl);
}

static agec_status stop_and_close(agec_cluster *cl, int drain_ms, agec_error *err)
{
    pthread_mutex_lock(&cl->mu);
    cl->stop = true;
    atomic_store(&cl->stopping, true);
    pthread_cond_broadcast(&cl->mon_cv);
    pthread_cond_broadcast(&cl->topo_cv);
    pthread_mutex_unlock(&cl->mu);
    for (int i = 0; i < cl->n; i++)
        if (cl->nodes[i].thread_started)
            pthread_join(cl->nodes[i].thread, NULL);
    /* Callers still inside (waiting for a node, checking a connection) see
     * `stopping` within a slice and leave; nothing is freed before. */
    while (atomic_load(&cl->users) > 0) {
        pthread_mutex_lock(&cl->mu);
        pthread_cond_broadcast(&cl->topo_cv);
        struct timespec ts = agec__timespec_at(agec__deadline_after(agec__now_us(), 5));
        pthread_cond_timedwait(&cl->topo_cv, &cl->mu, &ts);
        pthread_mutex_unlock(&cl->mu);
    }
    agec_status first = AGEC_OK;
    for (int i = 0; i < cl->n; i++) {
        agec_error e = AGEC_ERROR_INIT;
        agec_status st = agec_pool_close(cl->nodes[i].pool, drain_ms, &e);
        if (st != AGEC_OK && first == AGEC_OK) {
            first = st;
            agec__error_copy(err, &e);
        }
    }
    cluster_free(cl);
    return first;
}

static agec_status check_cfg(const agec_cluster_config *c, agec_error *err)
{
    if (c->struct_size < offsetof(agec_cluster_config, name) + sizeof(char *))
        return agec__error_set(err, AGEC_ERR_CONFIG,
                               "struct_size: not set (initialise the config with "
                               "agec_cluster_config_init) (got %zu)",
                               c->struct_size);
    if (c->read_policy < AGEC_READ_PREFER_STANDBY || c->read_policy > AGEC_READ_ANY)
        return agec__error_set(err, AGEC_ERR_CONFIG, "read_policy: unknown value %d",
                               (int)c->read_policy);
    if (c->max_lag_ms < 0)
        return agec__error_set(err, AGEC_ERR_CONFIG, "max_lag_ms: must be >= 0 (got %d)",
                               c->max_lag_ms);
    if (c->recheck_ms < 10)
        return agec__error_set(err, AGEC_ERR_CONFIG, "recheck_ms: must be >= 10 (got %d)",
                               c->recheck_ms);
    if (c->ryw_wait_ms < 0)
        return agec__error_set(err, AGEC_ERR_CONFIG, "ryw_wait_ms: must be >= 0 (got %d)",
                               c->ryw_wait_ms);
    if (c->n_hosts < 0 || (c->n_hosts > 0 && c->hosts == NULL))
        return agec__error_set(err, AGEC_ERR_CONFIG, "n_hosts: %d hosts but hosts is NULL",
                               c->n_hosts);
    return AGEC_OK;
}

agec_status agec_cluster_open(const agec_cluster_config *cfg, agec_cluster **out, agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_cluster_open: NULL argument");
    agec_status st = check_cfg(cfg, err);
    if (st != AGEC_OK)
        return st;
    agec_pool_config pc;
    agec_pool_config_init(&pc);
    if (cfg->pool != NULL) {
        size_t n = cfg->pool->struct_size < sizeof pc ? cfg->pool->struct_size : sizeof pc;
        memcpy(&pc, cfg->pool, n);
        pc.struct_size = sizeof pc;
    }
    pc.conninfo = "";
    st = agec_pool_config_check(&pc, err);
    if (st != AGEC_OK)
        return st;

    agec_cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->topo_cv, &ca);
    pthread_cond_init(&cl->mon_cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(cl->name, sizeof cl->name, "%s", cfg->name ? cfg->name : "agec");
    cl->policy = cfg->read_policy;
    cl->max_lag_ms = cfg->max_lag_ms;
    cl->recheck_ms = cfg->recheck_ms;
    cl->ryw_wait_ms = cfg->ryw_wait_ms;
    cl->acquire_timeout_ms = pc.acquire_timeout_ms;
    cl->connect_timeout_ms = pc.connect_timeout_ms;
    cl->primary = -1;
    atomic_init(&cl->primary_snap, -1);
    atomic_init(&cl->stopping, false);
    atomic_init(&cl->rr, 0);
    atomic_init(&cl->users, 0);

    char *conninfos[AGEC_CLUSTER_MAX_NODES] = { 0 };
    st = agec__cluster_parse(cl, cfg, conninfos, err);
    for (int i = 0; st == AGEC_OK && i < cl->n; i++) {
        agec__node *nd = &cl->nodes[i];
        nd->cl = cl;
        nd->index = i;
        nd->lag_ms = -1;
        atomic_init(&nd->acq_write, 0);
        atomic_init(&nd->acq_read, 0);
        atomic_init(&nd->acq_errors, 0);
        atomic_init(&nd->reported, 0);
        atomic_init(&nd->acq_read_primary, 0);
        atomic_init(&nd->recovery_errors, 0);
        atomic_init(&nd->rot_snap, false);
        agec_pool_config npc = pc;
        npc.conninfo = conninfos[i];
        npc.name = nd->pool_name;
        st = agec_pool_open(&npc, &nd->pool, err);
    }
    for (int i = 0; i < AGEC_CLUSTER_MAX_NODES; i++)
        free(conninfos[i]);
    for (int i = 0; st == AGEC_OK && i < cl->n; i++) {
        if (pthread_create(&cl->nodes[i].thread, NULL, agec__cluster_monitor_main, &cl->nodes[i]) !=
            0)
            st = agec__error_set(err, AGEC_ERR_SYSTEM, "cannot start a monitor thread");
        else
            cl->nodes[i].thread_started = true;
    }
    if (st != AGEC_OK) {
        agec_error ignored = AGEC_ERROR_INIT;
        (void)stop_and_close(cl, 0, &ignored);
        return st;
    }
    /* Wait for every node's first check, so routing knows the roles. */
    int64_t deadline = agec__deadline_after(agec__now_us(), (int64_t)pc.connect_timeout_ms * 2);
    pthread_mutex_lock(&cl->mu);
    for (;;) {
        int done = 0;
        for (int i = 0; i < cl->n; i++)
            done += cl->nodes[i].checked;
        if (done == cl->n || agec__now_us() >= deadline)
            break;
        struct timespec ts = agec__timespec_at(deadline);
        pthread_cond_timedwait(&cl->topo_cv, &cl->mu, &ts);
    }
    pthread_mutex_unlock(&cl->mu);
    *out = cl;
    return AGEC_OK;
}

agec_status agec_cluster_close(agec_cluster *cl, int drain_timeout_ms, agec_error *err)
{
    if (cl == NULL)
        return AGEC_OK;
    return stop_and_close(cl, drain_timeout_ms, err);
}

/* ---- routing ------------------------------------------------------------- */

/* "node 127.0.0.1:5432 primary, ..." for NO_NODE messages (cl->mu held). */
static void describe_nodes(const agec_cluster *cl, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < cl->n && len < cap; i++) {
        const agec__node *nd = &cl->nodes[i];
        int w = snprintf(buf + len, cap - len, "%s%s:%d %s", i ? ", " : "", nd->host, nd->port,
                         agec_node_role_name(nd->role));
        if (w > 0)
            len += (size_t)w;
        if (nd->role == AGEC_NODE_STANDBY && len < cap) {
            w = snprintf(buf + len, cap - len, " (lag %lld ms%s%s)", (long long)nd->lag_ms,
                         agec__node_on_timeline(cl, nd) ? "" : ", off the primary's timeline",
                         agec__node_in_rotation(cl, nd) ? "" : ", out of rotation");
            if (w > 0)
                len += (size_t)w;
        }
        if (nd->role == AGEC_NODE_DOWN && nd->last_error[0] && len < cap) {
            w = snprintf(buf + len, cap - len, " (%s)", nd->last_error);
            if (w > 0)
                len += (size_t)w;
        }
    }
}

static agec_status no_node(agec_cluster *cl, agec_error *err, const char *what)
{
    char nodes[700];
    pthread_mutex_lock(&cl->mu);
    describe_nodes(cl, nodes, sizeof nodes);
    pthread_mutex_unlock(&cl->mu);
    return agec__error_set(err, AGEC_ERR_NO_NODE,
                           "cluster %s: no %s within the deadline; nodes: %s", cl->name, what,
                           nodes);
}

/* Candidates for a plain read, by policy, from the lock-free snapshots.
 * Returns the count. */
static int read_candidates(agec_cluster *cl, int *cand)
{
    int k = 0;
    for (int i = 0; i < cl->n; i++)
        if (atomic_load_explicit(&cl->nodes[i].rot_snap, memory_order_relaxed))
            cand[k++] = i;
    int p = atomic_load_explicit(&cl->primary_snap, memory_order_relaxed);
    if (p >= 0 &&
        (cl->policy == AGEC_READ_ANY || (k == 0 && cl->policy == AGEC_READ_PREFER_STANDBY)))
        cand[k++] = p;
    return k;
}

/* Standbys known to have replayed lsn (cl->mu held). */
static int ryw_candidates(agec_cluster *cl, agec_lsn lsn, int *cand, bool known_only)
{
    int k = 0;
    for (int i = 0; i < cl->n; i++) {
        const agec__node *nd = &cl->nodes[i];
        if (nd->role == AGEC_NODE_STANDBY && agec__node_on_timeline(cl, nd) &&
            (!known_only || nd->lsn >= lsn))
            cand[k++] = i;
    }
    return k;
}

/* Wait (cl->mu held) until the monitor reports something new or deadline. */
static void wait_topology(agec_cluster *cl, int64_t deadline_us, int max_ms)
{
    uint64_t gen = cl->topo_gen;
    int64_t until = agec__min64(deadline_us, agec__deadline_after(agec__now_us(), max_ms));
    while (!cl->stop && cl->topo_gen == gen && agec__now_us() < until) {
        struct timespec ts = agec__timespec_at(until);
        pthread_cond_timedwait(&cl->topo_cv, &cl->mu, &ts);
    }
}

/* Errors after which another node (or a later topology) may do better. */
static bool retryable(agec_status st)
{
    return st == AGEC_ERR_POOL_EXHAUSTED || st == AGEC_ERR_UNREACHABLE ||
           st == AGEC_ERR_BREAKER_OPEN || st == AGEC_ERR_CONNECTION_LOST || st == AGEC_ERR_TIMEOUT;
}

static int remaining_ms(int64_t deadline_us)
{
    if (deadline_us == AGEC__NEVER)
        return AGEC__CLUSTER_SLICE_MS;
    int64_t left = (deadline_us - agec__now_us()) / 1000;
    if (left <= 0)
        return 0;
    return left > AGEC__CLUSTER_SLICE_MS ? AGEC__CLUSTER_SLICE_MS : (int)left;
}

typedef struct acq_ctx {
    agec_cluster *cl;
    agec_conn **out;
    agec_error *err;
    const char *file;
    int line;
    const char *func;
    bool read;           /* counted as a read wherever it lands (the primary too) */
    int64_t deadline_us; /* the whole call's */
    uint32_t token_tli;  /* timeline of a read-your-writes token, 0 = unknown */
    agec_status last;
    agec_error last_err;
} acq_ctx;

/* A connection of node idx is handed out: count it once, by what the
 * caller asked for (a probe that is given back is not counted). */
static void handed_out(acq_ctx *a, int idx)
{
    agec__node *nd = &a->cl->nodes[idx];
    if (!a->read) {
        atomic_fetch_add(&nd->acq_write, 1);
        return;
    }
    atomic_fetch_add(&nd->acq_read, 1);
    if (idx == atomic_load_explicit(&a->cl->primary_snap, memory_order_relaxed))
        atomic_fetch_add(&nd->acq_read_primary, 1);
}

static agec_status try_node(acq_ctx *a, int idx, int timeout_ms)
{
    agec__node *nd = &a->cl->nodes[idx];
    bool no_wait = timeout_ms <= 0;
    if (no_wait) {
        /* "Do not wait for other callers" (a first pass over candidates, a
         * deadline that has passed). To the pool, 0 still means a connect
         * or a check with their own full timeouts: one connect_timeout_ms
         * per half-dead node past the caller's deadline. So: an idle
         * connection within 1 ms; else a new one if the pool may open one,
         * bounded by what is left of the caller's deadline; else none. */
        agec_pool_stats ps;
        int left = remaining_ms(a->deadline_us);
        bool ok = agec_pool_stats_get(nd->pool, &ps) == AGEC_OK;
        if (ok && ps.idle > 0) {
            timeout_ms = 1;
        } else if (ok && ps.total < ps.max && left > 0) {
            timeout_ms = left;
        } else {
            a->last = AGEC_ERR_POOL_EXHAUSTED;
            agec__error_set(&a->last_err, AGEC_ERR_POOL_EXHAUSTED,
                            "node %s:%d: no idle connection, and no time left to open one",
                            nd->host, nd->port);
            return AGEC_ERR_POOL_EXHAUSTED;
        }
    }
    /* The pool writes the error only on failure: no 3 KB clear per call. */
    agec_status st =
        agec_pool_acquire_at(nd->pool, timeout_ms, a->out, &a->last_err, a->file, a->line, a->func);
    if (st == AGEC_OK)
        return AGEC_OK;
    if (!no_wait || (st != AGEC_ERR_POOL_EXHAUSTED && st != AGEC_ERR_TIMEOUT))
        atomic_fetch_add(&nd->acq_errors, 1);
    a->last = st;
    return st;
}

/* Deadline of a check the cluster runs on a connection it is about to hand
 * out: the call's own, but at least 50 ms (a call that got its connection
 * just in time still gets an answer, and stays within deadline + 250 ms). */
static int64_t check_deadline(int64_t deadline_us)
{
    int64_t floor = agec__deadline_after(agec__now_us(), 50);
    return deadline_us > floor ? deadline_us : floor;
}

/* A write connection must not be to a server in recovery. The status is
 * what the server last sent; a change (promotion) may still be unread.
 * *broken: the check failed mid-query (release the connection broken). */
static bool conn_in_recovery(agec_conn *c, int64_t deadline_us, bool *broken)
{
    PGconn *pg = agec_conn_pgconn(c);
    *broken = false;
    const char *hs = PQparameterStatus(pg, "in_hot_standby");
    if (hs == NULL || strcmp(hs, "on") != 0)
        return false;
    /* The server reports the change only when the session next finishes a
     * command, so a connection left idle since before a promotion still
     * says "on": ask (the round trip also brings the new status). */
    char msg[256];
    PGresult *r = agec__cluster_query(pg, "SELECT pg_is_in_recovery()", check_deadline(deadline_us),
                                      NULL, msg, sizeof msg);
    if (r == NULL) {
        *broken = true;
        return true;
    }
    bool rec = PQgetvalue(r, 0, 0)[0] != 'f';
    PQclear(r);
    return rec;
}

static agec_status acquire_write(acq_ctx *a, int64_t deadline_us)
{
    agec_cluster *cl = a->cl;
    for (;;) {
        if (atomic_load(&cl->stopping))
            return agec__error_set(a->err, AGEC_ERR_POOL_CLOSED, "cluster %s is closing", cl->name);
        int p = atomic_load_explicit(&cl->primary_snap, memory_order_relaxed);
        if (p < 0) {
            if (agec__now_us() >= deadline_us)
                break;
            pthread_mutex_lock(&cl->mu);
            agec__cluster_kick_locked(cl);
            if (cl->primary < 0)
                wait_topology(cl, deadline_us, AGEC__CLUSTER_SLICE_MS);
            pthread_mutex_unlock(&cl->mu);
            continue;
        }
        agec_status st = try_node(a, p, remaining_ms(deadline_us));
        if (st == AGEC_OK) {
            bool broken = false;
            if (!conn_in_recovery(*a->out, deadline_us, &broken)) {
                handed_out(a, p);
                return AGEC_OK;
            }
            /* A demoted server: not for writing. Make the monitor look. */
            if (broken)
                agec_conn_release_broken(*a->out);
            else
                agec_conn_release(*a->out);
            *a->out = NULL;
            a->last = AGEC_ERR_NO_NODE;
            pthread_mutex_lock(&cl->mu);
            agec__cluster_kick_locked(cl);
            wait_topology(cl, deadline_us, AGEC__CLUSTER_FAST_MS);
            pthread_mutex_unlock(&cl->mu);
        } else if (!retryable(st)) {
            agec__error_copy(a->err, &a->last_err);
            return st;
        } else if (st != AGEC_ERR_POOL_EXHAUSTED) {
            pthread_mutex_lock(&cl->mu);
            agec__cluster_kick_locked(cl);
            wait_topology(cl, deadline_us, AGEC__CLUSTER_FAST_MS);
            pthread_mutex_unlock(&cl->mu);
        }
        if (agec__now_us() >= deadline_us)
            break;
    }
    if (a->last != AGEC_OK && a->last != AGEC_ERR_NO_NODE) {
        agec__error_copy(a->err, &a->last_err);
        return a->last;
    }
    return no_node(cl, a->err, "primary");
}

/* One pass over cand[0..k-1] from a round-robin start: first without
 * waiting for other callers (when there is a choice), then waiting up to a
 * slice on the first. */
static agec_status try_candidates(acq_ctx *a, const int *cand, int k, int64_t deadline_us)
{
    unsigned start = atomic_fetch_add(&a->cl->rr, 1);
    if (k > 1) {
        for (int j = 0; j < k; j++) {
            int idx = cand[(start + (unsigned)j) % (unsigned)k];
            if (try_node(a, idx, 0) == AGEC_OK) {
                handed_out(a, idx);
                return AGEC_OK;
            }
            if (!retryable(a->last))
                return a->last;
        }
    }
    int idx = cand[start % (unsigned)k];
    agec_status st = try_node(a, idx, remaining_ms(deadline_us));
    if (st == AGEC_OK)
        handed_out(a, idx);
    return st;
}

static agec_status acquire_read(acq_ctx *a, int64_t deadline_us)
{
    agec_cluster *cl = a->cl;
    int cand[AGEC_CLUSTER_MAX_NODES + 1];
    for (;;) {
        bool stop = atomic_load(&cl->stopping);
        int k = stop ? 0 : read_candidates(cl, cand);
        if (k == 0 && !stop) {
            if (agec__now_us() >= deadline_us)
                break;
            pthread_mutex_lock(&cl->mu);
            agec__cluster_kick_locked(cl);
            if (read_candidates(cl, cand) == 0)
                wait_topology(cl, deadline_us, AGEC__CLUSTER_SLICE_MS);
            pthread_mutex_unlock(&cl->mu);
            continue;
        }
        if (stop)
            return agec__error_set(a->err, AGEC_ERR_POOL_CLOSED, "cluster %s is closing", cl->name);
        agec_status st = try_candidates(a, cand, k, deadline_us);
        if (st == AGEC_OK)
            return AGEC_OK;
        if (!retryable(st)) {
            agec__error_copy(a->err, &a->last_err);
            return st;
        }
        if (agec__now_us() >= deadline_us)
            break;
    }
    if (a->last != AGEC_OK) {
        agec__error_copy(a->err, &a->last_err);
        return a->last;
    }
    return no_node(cl, a->err,
                   cl->policy == AGEC_READ_STANDBY_ONLY ? "standby in rotation" : "node for reads");
}

/* Replay position of a standby connection, or 0. */
static agec_lsn conn_replay_lsn(agec_conn *c, int64_t deadline_us, bool *broken)
{
    char msg[256];
    PGresult *r = agec__cluster_query(agec_conn_pgconn(c), "SELECT pg_last_wal_replay_lsn()",
                                      check_deadline(deadline_us), NULL, msg, sizeof msg);
    *broken = r == NULL;
    agec_lsn lsn = 0;
    if (r != NULL && !PQgetisnull(r, 0, 0))
        (void)agec_lsn_parse(PQgetvalue(r, 0, 0), &lsn);
    PQclear(r);
    return lsn;
}

static agec_status acquire_ryw(acq_ctx *a, agec_lsn min_lsn, int64_t deadline_us)
{
    agec_cluster *cl = a->cl;
    int64_t ryw_deadline =
        agec__min64(deadline_us, agec__deadline_after(agec__now_us(), cl->ryw_wait_ms));
    if (cl->policy == AGEC_READ_STANDBY_ONLY)
        ryw_deadline = deadline_us;
    int cand[AGEC_CLUSTER_MAX_NODES];
    if (a->token_tli != 0) {
        /* A token from a newer timeline than the primary's the cluster
         * knows proves a failover it has not seen yet: look now, and wait
         * for it (standbys of the old timeline may be past the token's
         * position without its commit). A token from an older timeline:
         * only the primary can say whether its commit survived. */
        pthread_mutex_lock(&cl->mu);
        while (cl->primary_tli < a->token_tli && !cl->stop && agec__now_us() < deadline_us) {
            agec__cluster_kick_locked(cl);
            wait_topology(cl, deadline_us, AGEC__CLUSTER_SLICE_MS);
        }
        bool same = cl->primary_tli == a->token_tli;
        pthread_mutex_unlock(&cl->mu);
        if (!same) {
            if (cl->policy == AGEC_READ_STANDBY_ONLY)
                return no_node(cl, a->err, "standby on the token's timeline");
            a->last = AGEC_OK;
            return acquire_write(a, deadline_us);
        }
    }
    for (;;) {
        if (atomic_load(&cl->stopping))
            break; /* acquire_write below says so */
        pthread_mutex_lock(&cl->mu);
        int k = ryw_candidates(cl, min_lsn, cand, true);
        pthread_mutex_unlock(&cl->mu);
        if (k > 0 && try_candidates(a, cand, k, ryw_deadline) == AGEC_OK)
            return AGEC_OK;
        /* Ask the standbys themselves: the monitor's view is up to
         * recheck_ms old. */
        pthread_mutex_lock(&cl->mu);
        k = ryw_candidates(cl, min_lsn, cand, false);
        pthread_mutex_unlock(&cl->mu);
        for (int j = 0; j < k; j++) {
            if (try_node(a, cand[j], remaining_ms(ryw_deadline)) != AGEC_OK)
                continue;
            bool broken = false;
            agec_lsn at = conn_replay_lsn(*a->out, ryw_deadline, &broken);
            if (at >= min_lsn) {
                pthread_mutex_lock(&cl->mu);
                if (cl->nodes[cand[j]].role == AGEC_NODE_STANDBY && at > cl->nodes[cand[j]].lsn)
                    cl->nodes[cand[j]].lsn = at;
                pthread_mutex_unlock(&cl->mu);
                handed_out(a, cand[j]);
                return AGEC_OK;
            }
            if (broken)
                agec_conn_release_broken(*a->out);
            else
                agec_conn_release(*a->out);
            *a->out = NULL;
        }
        /* No standby at all (none configured, all down): waiting cannot
         * help; the primary has the commit. */
        if (k == 0 && cl->policy != AGEC_READ_STANDBY_ONLY)
            break;
        if (agec__now_us() >= ryw_deadline)
            break;
        /* Poll again shortly (replay of a few records takes milliseconds). */
        pthread_mutex_lock(&cl->mu);
        wait_topology(cl, ryw_deadline, 5);
        pthread_mutex_unlock(&cl->mu);
    }
    if (cl->policy == AGEC_READ_STANDBY_ONLY)
        return no_node(cl, a->err, "standby that replayed the token");
    a->last = AGEC_OK;
    return acquire_write(a, deadline_us);
}

static agec_status acquire_at(agec_cluster *cl, agec_access access, agec_lsn min_lsn, uint32_t tli,
                              int timeout_ms, agec_conn **out, agec_error *err, const char *file,
                              int line, const char *func);

agec_status agec_cluster_acquire_token_at(agec_cluster *cl, const agec_cluster_token *token,
                                          int timeout_ms, agec_conn **out, agec_error *err,
                                          const char *file, int line, const char *func)
{
    if (out != NULL)
        *out = NULL;
    if (cl == NULL || token == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_cluster_acquire_token: NULL argument");
    agec_status st;
    if (agec__cluster_enter(cl))
        st = acquire_at(cl, AGEC_ACCESS_READ, token->lsn, token->timeline, timeout_ms, out, err,
                        file, line, func);
    else
        st = agec__error_set(err, AGEC_ERR_POOL_CLOSED, "cluster %s is closing", cl->name);
    agec__cluster_leave(cl);
    return st;
}

agec_status agec_cluster_acquire_at(agec_cluster *cl, agec_access access, agec_lsn min_lsn,
                                    int timeout_ms, agec_conn **out, agec_error *err,
                                    const char *file, int line, const char *func)
{
    if (cl == NULL)
        return acquire_at(cl, access, min_lsn, 0, timeout_ms, out, err, file, line, func);
    agec_status st;
    if (agec__cluster_enter(cl)) {
        st = acquire_at(cl, access, min_lsn, 0, timeout_ms, out, err, file, line, func);
    } else {
        if (out != NULL)
            *out = NULL;
        st = agec__error_set(err, AGEC_ERR_POOL_CLOSED, "cluster %s is closing", cl->name);
    }
    agec__cluster_leave(cl);
    return st;
}

static agec_status acquire_at(agec_cluster *cl, agec_access access, agec_lsn min_lsn, uint32_t tli,
                              int timeout_ms, agec_conn **out, agec_error *err, const char *file,
                              int line, const char *func)
{
    if (out != NULL)
        *out = NULL;
    if (cl == NULL || out == NULL ||
        (access != AGEC_ACCESS_WRITE && access != AGEC_ACCESS_READ &&
         access != AGEC_ACCESS_READ_PRIMARY))
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "agec_cluster_acquire: bad argument");
    int64_t now = agec__now_us();
    int64_t deadline =
        agec__deadline_after(now, timeout_ms < 0 ? cl->acquire_timeout_ms : timeout_ms);
    acq_ctx a;
    a.cl = cl;
    a.out = out;
    a.err = err;
    a.file = file;
    a.line = line;
    a.func = func;
    a.read = access != AGEC_ACCESS_WRITE;
    a.deadline_us = deadline;
    a.token_tli = tli;
    a.last = AGEC_OK;
    a.last_err.size = sizeof a.last_err; /* filled by the pool on a failure only */
    a.last_err.code = AGEC_OK;
    if (access != AGEC_ACCESS_READ)
        return acquire_write(&a, deadline);
    if (min_lsn != 0)
        return acquire_ryw(&a, min_lsn, deadline);
    return acquire_read(&a, deadline);
}
