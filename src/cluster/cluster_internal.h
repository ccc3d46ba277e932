/*
 * The cluster layer's private state. It sits above the pool: every node
 * has an ordinary agec_pool (public API only) and a monitor thread with its
 * own connection (opened with the session layer's deadline-bounded connect).
 */
#ifndef AGEC_CLUSTER_INTERNAL_H
#define AGEC_CLUSTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/cluster.h"
#include "cluster/lsn_history.h"

/* Longest wait inside one node's pool before routing is decided again. */
#define AGEC__CLUSTER_SLICE_MS 200
/* Recheck period while no primary is known (or after a kick). */
#define AGEC__CLUSTER_FAST_MS 50

typedef struct agec__node {
    struct agec_cluster *cl;
    int index;
    char host[256];
    int port;
    char pool_name[400];
    agec_pool *pool;
    /* NULL-terminated libpq keyword arrays of the monitor connection. */
    char **mon_keys;
    char **mon_vals;
    PGconn *mon; /* monitor thread only */
    /* The highest timeline the node said on `mon` (monitor thread only; 0
     * after a new connection): one server's timeline never goes back while
     * it runs, and a restart ends every session. */
    uint32_t mon_tli;
    pthread_t thread;
    bool thread_started;

    /* Guarded by cl->mu. */
    agec_node_role role;
    bool checked;            /* at least one check finished (good or bad) */
    int64_t lag_ms;          /* -1 = unknown */
    agec_lsn lsn;            /* replay LSN (standby) or current LSN (primary) */
    uint32_t tli;            /* timeline of lsn (0 = unknown), see monitor.c */
    int64_t checked_at_us;   /* last good check, 0 = never */
    int64_t standby_seen_us; /* last check that found it in recovery */
    uint64_t checks, check_failures, role_changes;
    char last_error[256];

    atomic_uint_fast64_t acq_write, acq_read, acq_errors, reported;
    atomic_uint_fast64_t acq_read_primary, recovery_errors;
    /* What routing reads without the lock: written under cl->mu by
     * agec__cluster_publish_locked after every change. */
    atomic_bool rot_snap;
} agec__node;

struct agec_cluster {
    char name[128];
    int n;
    agec__node nodes[AGEC_CLUSTER_MAX_NODES];
    agec_read_policy policy;
    int max_lag_ms, recheck_ms, ryw_wait_ms;
    int acquire_timeout_ms, connect_timeout_ms;

    pthread_mutex_t mu;
    pthread_cond_t topo_cv; /* a node's state changed (acquirers wait for a primary) */
    pthread_cond_t mon_cv;  /* wakes the monitor threads (kick, stop) */
    int primary;            /* node index or -1; guarded by mu */
    uint32_t primary_tli;   /* highest timeline of a primary seen (0 = unknown); mu */
    uint64_t kick_gen;      /* bumped to make every monitor re-check now */
    uint64_t topo_gen;      /* bumped on every finished check */
    bool stop;
    atomic_bool stopping;    /* same as stop, for the session layer's abort checks */
    agec__lsn_history hist;  /* the primary's positions (standby lag), guarded by mu */
    atomic_uint rr;          /* round robin over read candidates */
    atomic_int primary_snap; /* cl->primary for the lock-free fast path */
    /* Calls inside the cluster now (acquire, report, stats): close waits
     * for them to leave before it frees anything. */
    atomic_int users;
};

/* Enter / leave a public call (see users). Enter returns false when the
 * cluster is closing (the call is still counted: leave it). */
static inline bool agec__cluster_enter(struct agec_cluster *cl)
{
    atomic_fetch_add(&cl->users, 1);
    return !atomic_load(&cl->stopping);
}

static inline void agec__cluster_leave(struct agec_cluster *cl)
{
    atomic_fetch_sub(&cl->users, 1);
}

/* config.c: split cfg into nodes (host, port, pool conninfo, monitor keys).
 * On success fills cl->nodes[0..n-1] host/port/pool_name/mon_keys/vals and
 * returns each node's pool conninfo in conninfos[i] (malloc'ed). */
agec_status agec__cluster_parse(struct agec_cluster *cl, const agec_cluster_config *cfg,
                                char **conninfos, agec_error *err);
void agec__cluster_free_keys(agec__node *nd);

/* Run one query that returns one row, by deadline_us (abort_flag may be
 * NULL). Returns the result (PQclear it) or NULL with a message in errbuf;
 * after NULL the connection may be mid-query: close it (release broken). */
PGresult *agec__cluster_query(PGconn *c, const char *sql, int64_t deadline_us,
                              const atomic_bool *abort_flag, char *errbuf, size_t cap);

/* monitor.c: the per-node monitor thread, and the routing decision that
 * follows each check (called with cl->mu held). */
void *agec__cluster_monitor_main(void *arg);
void agec__cluster_choose_primary(struct agec_cluster *cl);
/* Make every monitor re-check now (cl->mu held). */
void agec__cluster_kick_locked(struct agec_cluster *cl);

/* Copy primary and each node's rotation into the snapshots (cl->mu held). */
void agec__cluster_publish_locked(struct agec_cluster *cl);

/* Whether node nd follows the primary's timeline (cl->mu held). */
bool agec__node_on_timeline(const struct agec_cluster *cl, const agec__node *nd);

/* Whether node i serves plain reads now (cl->mu held). */
bool agec__node_in_rotation(const struct agec_cluster *cl, const agec__node *nd);

#endif
