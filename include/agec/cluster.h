/*
 * agec/cluster.h: one database over PostgreSQL streaming replication.
 *
 * An agec_cluster holds one agec_pool per node (host) of a primary + hot
 * standby setup and routes each acquire: writes to the primary, reads to a
 * standby (round robin over the standbys in the read rotation, falling back
 * by agec_read_policy), reads-after-writes to a node that has replayed the
 * caller's commit. Connections are ordinary agec_conn borrowed from a node's
 * pool: the Cypher/transaction API works on them, and agec_conn_release()
 * gives them back.
 *
 * Roles and lag
 *   A background thread keeps one monitor connection per node (outside the
 *   node's pool, application_name "<name>-monitor") and every recheck_ms
 *   asks each node pg_is_in_recovery() and its WAL position (the primary's
 *   pg_current_wal_lsn(), a standby's pg_last_wal_replay_lsn()). A standby's
 *   lag is how long ago the primary had WAL that the standby has not yet
 *   replayed (the primary's positions are remembered with their time), so an
 *   idle primary gives lag 0, not a growing replay age; with no primary in
 *   sight, a standby that has replayed all the WAL it received and whose
 *   WAL receiver streams has lag 0, else now() -
 *   pg_last_xact_replay_timestamp() is used; that replay age is also taken
 *   when a standby is behind even the oldest position remembered and it is
 *   larger (the history restarted at open, after a primary change or a
 *   failed check of the primary, or is full: 256 checks of the primary,
 *   about 2 minutes at the default recheck_ms). A standby more than
 *   max_lag_ms behind leaves the read rotation and comes back when it has
 *   caught up. A standby that does not follow the primary's timeline
 *   (pg_stat_wal_receiver.received_tli while it streams, else its last
 *   restartpoint's, or the highest it said since the monitor connected:
 *   the restartpoint's lags behind a switch; e.g. an old primary restarted
 *   as a standby without pg_rewind) is never in the rotation nor used for
 *   read-your-writes, whatever its position. A monitor checks its node at most every 50 ms.
 *   docs/cluster-age.md has the details, and what AGE cannot run on a
 *   standby (agec/cluster_cypher.h). A write acquire also looks at the connection's
 *   in_hot_standby ParameterStatus (sent by PostgreSQL 14+ at connect and
 *   after a change, once the session next finishes a command) and never
 *   hands out a connection to a server in recovery as a write connection;
 *   when it still says "on" it asks the server (one round trip, only then),
 *   since a session idle since before a promotion has not been told yet.
 *
 * Failover
 *   When the primary cannot be reached, reports itself in recovery, or a
 *   caller reports an error from it (agec_cluster_report: 25006 read-only
 *   transaction, a lost connection), the monitor re-checks every node at
 *   once and then every 50 ms until a node outside recovery is found; that
 *   node becomes the primary (when two claim it, the one on the highest
 *   timeline, then the one last seen as a standby; a node on a timeline
 *   below the highest seen is never chosen, so an old primary that was not
 *   fenced gets no writes). Write acquires meanwhile
 *   wait for it within their own deadline and then fail with
 *   AGEC_ERR_NO_NODE. Each node keeps its pool through role changes:
 *   PostgreSQL keeps a promoted standby's sessions (they become writable)
 *   and ends every session of a server that is demoted (it must restart),
 *   and the pool drops broken connections by itself, so nothing needs to be
 *   rebuilt; each node's pool has its own circuit breaker, and when the
 *   monitor sees a node that was down answer again it lets that pool probe
 *   at once (agec_pool_breaker_probe) instead of failing fast until
 *   breaker_open_ms has passed.
 *
 * Thread safety
 *   Every function may be called from any thread, except that nothing may
 *   be called on a cluster after agec_cluster_close() has returned.
 */
#ifndef AGEC_CLUSTER_H
#define AGEC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agec/error.h"
#include "agec/export.h"
#include "agec/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A cluster of nodes. Opaque; created by agec_cluster_open(). */
typedef struct agec_cluster agec_cluster;

/** A WAL position (PostgreSQL pg_lsn as a 64-bit number; "16/B374D848"
 *  is 0x16B374D848). 0 = none. The read-your-writes token. */
typedef uint64_t agec_lsn;

/** Where a read may run when no standby is in the read rotation. */
typedef enum agec_read_policy {
    /** A standby in rotation, else the primary. The default. */
    AGEC_READ_PREFER_STANDBY = 0,
    /** Only a standby in rotation; else the acquire waits for one within its
     *  deadline and fails with AGEC_ERR_NO_NODE. */
    AGEC_READ_STANDBY_ONLY = 1,
    /** Any node in rotation, the primary included, round robin. */
    AGEC_READ_ANY = 2,
} agec_read_policy;

/** What a connection is acquired for. */
typedef enum agec_access {
    AGEC_ACCESS_WRITE = 0, /**< the primary */
    AGEC_ACCESS_READ = 1,  /**< by the cluster's read_policy */
    /** A read that cannot run on a hot standby (a read-only SERIALIZABLE
     *  transaction, a Cypher read AGE cannot run in recovery: see
     *  agec/cluster_cypher.h): the primary, counted as a read
     *  (acquires_read and acquires_read_primary). min_lsn is ignored. */
    AGEC_ACCESS_READ_PRIMARY = 2,
} agec_access;

/** A node's role as last seen by the cluster. */
typedef enum agec_node_role {
    AGEC_NODE_UNKNOWN = 0, /**< not checked yet */
    AGEC_NODE_PRIMARY = 1, /**< not in recovery: takes writes */
    AGEC_NODE_STANDBY = 2, /**< in recovery (hot standby): reads only */
    AGEC_NODE_DOWN = 3,    /**< the last check could not reach it */
} agec_node_role;

/** Static name of a role ("unknown", "primary", "standby", "down"). */
AGEC_EXPORT const char *agec_node_role_name(agec_node_role role);

/**
 * Cluster configuration. Start from agec_cluster_config_init(); fields are
 * only ever appended (struct_size). Strings and the pool template are copied
 * by agec_cluster_open().
 *
 * | field          | default | meaning |
 * |----------------|---------|---------|
 * | conninfo       | NULL    | libpq keyword string with several hosts: `host=a,b,c port=5432` (one port for all, or one per host); hostaddr lists too. Every other keyword (user, dbname, sslmode, ...) applies to every node; target_session_attrs is ignored (the cluster routes). NULL = libpq environment |
 * | hosts, n_hosts | NULL, 0 | instead of conninfo's hosts: an array of "host" or "host:port" strings; conninfo then gives the other keywords (and the default port) |
 * | pool           | NULL    | template for every node's pool (max, timeouts, AGE mode, ...); its conninfo and name are replaced per node. NULL = agec_pool_config_init() defaults |
 * | read_policy    | AGEC_READ_PREFER_STANDBY | see agec_read_policy |
 * | max_lag_ms     | 5000    | a standby further behind leaves the read rotation; 0 = no lag guard (>= 0) |
 * | recheck_ms     | 500     | how often the monitor checks every node's role and lag (>= 10) |
 * | ryw_wait_ms    | 1000    | how long a read-your-writes acquire waits for a standby to replay the token before it uses the primary (>= 0) |
 * | name           | "agec"  | the cluster's name; node pools are named "<name>:<host>:<port>" |
 */
typedef struct agec_cluster_config {
    size_t struct_size; /**< set by agec_cluster_config_init(); do not change */
    const char *conninfo;
    const char *const *hosts;
    int n_hosts;
    const agec_pool_config *pool;
    agec_read_policy read_policy;
    int max_lag_ms;
    int recheck_ms;
    int ryw_wait_ms;
    const char *name;
} agec_cluster_config;

/** Fill *cfg with the defaults above and set struct_size. NULL is ignored. */
AGEC_EXPORT void agec_cluster_config_init(agec_cluster_config *cfg);

/** Most nodes a cluster may have. */
#define AGEC_CLUSTER_MAX_NODES 16

/**
 * Create a cluster: parse the hosts, open one pool per node (as
 * agec_pool_open: no connection is made by open itself), start the monitor
 * thread, and wait up to twice the pool template's connect_timeout_ms (a
 * check that fails is tried once more on a new connection) for the first
 * check of every node, so that routing knows the roles when open
 * returns (nodes that do not answer by then are DOWN; open still succeeds).
 * Errors: AGEC_ERR_INVALID_ARG (NULL cfg/out), AGEC_ERR_CONFIG (names the
 * field: no hosts, more than AGEC_CLUSTER_MAX_NODES, ports not matching
 * hosts, a bad pool template), AGEC_ERR_NO_MEMORY, AGEC_ERR_SYSTEM.
 * On error *out is NULL and nothing needs freeing.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_open(const agec_cluster_config *cfg,
                                                         agec_cluster **out, agec_error *err);

/**
 * Stop the monitor, wait for the calls still inside the cluster on other
 * threads to return (a call waiting for a node returns at once with
 * AGEC_ERR_POOL_CLOSED or AGEC_ERR_NO_NODE; one in the middle of a round
 * trip, within its own deadline), then close every node's pool
 * (agec_pool_close with drain_timeout_ms each, nodes one after another). Returns the first
 * non-OK status of those closes (AGEC_ERR_TIMEOUT: connections still
 * borrowed, which stay valid until released). NULL is accepted. Call once;
 * nothing else may be called on the cluster after it returned.
 */
AGEC_EXPORT agec_status agec_cluster_close(agec_cluster *cl, int drain_timeout_ms, agec_error *err);

/**
 * Borrow a connection for `access` (see the macros below, which record the
 * caller's file/line/function for the pool's leak reports).
 *
 * WRITE: a connection to the primary. READ: a standby in the read rotation
 * (round robin, skipping a standby whose pool has no connection free at
 * once when another has), else as read_policy says. With min_lsn != 0 (a
 * token from agec_cluster_commit_lsn), READ only uses a standby that has
 * replayed min_lsn, waiting for one up to ryw_wait_ms (within timeout_ms),
 * then the primary; the read then sees the commit the token came from.
 *
 * timeout_ms bounds the whole call (negative = the pool template's
 * acquire_timeout_ms). While no node fits (a failover in progress), the
 * call waits for the monitor to find one. It waits in a node's pool at most
 * 200 ms at a time, so that it can move on when that node is lost.
 *
 * Give the connection back with agec_conn_release(). After an error on it,
 * call agec_cluster_report() first, so that a failover is noticed at once.
 * Errors: AGEC_ERR_NO_NODE (no node of the kind needed within the
 * deadline; the message lists each node's role), the pool's errors
 * (AGEC_ERR_POOL_EXHAUSTED, AGEC_ERR_UNREACHABLE, AGEC_ERR_BREAKER_OPEN,
 * AGEC_ERR_AUTH, AGEC_ERR_INIT) of the last node tried, AGEC_ERR_POOL_CLOSED,
 * AGEC_ERR_INVALID_ARG. Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_acquire_at(agec_cluster *cl, agec_access access,
                                                               agec_lsn min_lsn, int timeout_ms,
                                                               agec_conn **out, agec_error *err,
                                                               const char *file, int line,
                                                               const char *func);

/** Borrow a connection to the primary within the default timeout. */
#define agec_cluster_acquire_write(cl, out, err)                                              \
    agec_cluster_acquire_at((cl), AGEC_ACCESS_WRITE, 0, -1, (out), (err), __FILE__, __LINE__, \
                            __func__)
/** Borrow a connection for reading within the default timeout. */
#define agec_cluster_acquire_read(cl, out, err)                                              \
    agec_cluster_acquire_at((cl), AGEC_ACCESS_READ, 0, -1, (out), (err), __FILE__, __LINE__, \
                            __func__)
/** Borrow a connection for reading that sees the commit of `token`. */
#define agec_cluster_acquire_read_after(cl, token, out, err)                                       \
    agec_cluster_acquire_at((cl), AGEC_ACCESS_READ, (token), -1, (out), (err), __FILE__, __LINE__, \
                            __func__)

/**
 * The read-your-writes token of what has been committed on a write
 * connection: the end of the server's last WAL record, read after the
 * commit, outside a transaction (pg_current_wal_insert_lsn(), less the WAL
 * page header when it sits right after one: a commit that ends a page ends
 * at the boundary, where a standby's replay position stops, not past the
 * next page's header). It is at or past the end of every commit record of
 * this session. One round trip, bounded by 10 s.
 * Errors: AGEC_ERR_INVALID_ARG (NULL), AGEC_ERR_STATE (inside a
 * transaction, or the server is in recovery), AGEC_ERR_SERVER,
 * AGEC_ERR_CONNECTION_LOST (the connection is lost, or the query did not
 * answer in time: release it with agec_conn_release_broken()).
 * Same thread rules as the connection.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_commit_lsn(agec_conn *conn, agec_lsn *out,
                                                               agec_error *err);

/** A read-your-writes token with the timeline of its position (see
 *  agec_cluster_commit_token). A plain value: copy it freely. */
typedef struct agec_cluster_token {
    agec_lsn lsn;      /**< as agec_cluster_commit_lsn */
    uint32_t timeline; /**< the primary's timeline when it was taken; 0 = unknown */
} agec_cluster_token;

/**
 * agec_cluster_commit_lsn() with the primary's timeline, in the same round
 * trip. A bare LSN means nothing across a failover: the new primary's
 * positions continue from the fork, and a node of the old timeline may be
 * past them without their commits. Same errors and rules as
 * agec_cluster_commit_lsn().
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_commit_token(agec_conn *conn,
                                                                 agec_cluster_token *out,
                                                                 agec_error *err);

/**
 * A read that sees the commit of `token` (agec_cluster_acquire_at(READ,
 * token->lsn) otherwise). When the token's timeline is newer than the
 * primary's the cluster knows (a failover it has not noticed yet), the
 * monitors re-check at once and the call waits for the new primary within
 * its deadline, since standbys of the old timeline may be past the token's
 * position without its commit. A token from an older timeline goes to the
 * primary (only it can tell whether the commit survived the failover); a
 * token with the primary's timeline is met by a standby on that timeline
 * that has replayed its position, as usual. Errors as
 * agec_cluster_acquire_at(), AGEC_ERR_INVALID_ARG for a NULL token.
 * Thread-safe.
 */
AGEC_EXPORT AGEC_NODISCARD agec_status agec_cluster_acquire_token_at(
    agec_cluster *cl, const agec_cluster_token *token, int timeout_ms, agec_conn **out,
    agec_error *err, const char *file, int line, const char *func);
/** Borrow a connection for reading that sees the commit of `token`
 *  (agec_cluster_token *) within the default timeout. */
#define agec_cluster_acquire_read_token(cl, token, out, err) \
    agec_cluster_acquire_token_at((cl), (token), -1, (out), (err), __FILE__, __LINE__, __func__)

/**
 * Tell the cluster about an error seen on a connection it handed out (call
 * before releasing it). A 25006 (read-only transaction) or a lost
 * connection from the node the cluster takes for the primary makes the
 * monitor re-check every node at once. Other errors only count in the
 * node's statistics. NULL arguments are ignored. Thread-safe, no I/O.
 */
AGEC_EXPORT void agec_cluster_report(agec_cluster *cl, agec_conn *conn, const agec_error *err);

/** Parse "X/Y" (pg_lsn text) into *out; false if malformed. */
AGEC_EXPORT bool agec_lsn_parse(const char *text, agec_lsn *out);
/** Format an LSN as "X/Y" into buf (at least 18 bytes); returns buf. */
AGEC_EXPORT char *agec_lsn_format(agec_lsn lsn, char *buf, size_t cap);

/* ---- statistics ---------------------------------------------------------- */

/**
 * One node as the cluster sees it. Fields are only appended; the library
 * fills as much as the caller's header knows (struct_size).
 */
typedef struct agec_cluster_node_stats {
    size_t struct_size; /**< bytes filled */
    char host[256];     /**< as configured */
    int port;
    agec_node_role role;
    bool in_rotation;         /**< serves plain reads now (standby within max_lag_ms) */
    int64_t lag_ms;           /**< standby lag (see the header comment); -1 = unknown */
    agec_lsn lsn;             /**< last WAL position seen (replay on a standby) */
    int64_t checked_ms_ago;   /**< since the last successful check; -1 = never */
    uint64_t checks;          /**< monitor checks answered */
    uint64_t check_failures;  /**< monitor checks that failed */
    uint64_t role_changes;    /**< times the role changed (down counts) */
    uint64_t acquires_write;  /**< connections handed out for writing */
    uint64_t acquires_read;   /**< connections handed out for reading */
    uint64_t acquire_errors;  /**< acquires from this node's pool that failed */
    uint64_t errors_reported; /**< agec_cluster_report calls for this node */
    int in_use;               /**< the node pool's gauges */
    int idle;
    int total;
    int waiting;
    agec_breaker_state breaker;
    /** Reads run on this node as the primary because a standby cannot run
     *  them (AGEC_ACCESS_READ_PRIMARY, a read-your-writes read that found
     *  no standby); included in acquires_read. */
    uint64_t acquires_read_primary;
    /** Errors reported (agec_cluster_report) with SQLSTATE 55000 while
     *  this node was a standby: a statement PostgreSQL refuses during
     *  recovery (agec_cluster_cypher_read then retried it on the primary). */
    uint64_t recovery_errors;
    /** The node's timeline as last seen (a standby's: the one its WAL
     *  receiver streams, else its last restartpoint's); 0 = unknown. */
    uint32_t timeline;
    /** It follows the primary's timeline (a standby off it is never in
     *  the read rotation nor used for read-your-writes). */
    bool on_timeline;
} agec_cluster_node_stats;

/** Number of nodes (fixed at open). NULL gives 0. */
AGEC_EXPORT int agec_cluster_node_count(const agec_cluster *cl);

/**
 * Fill *out (size bytes, see agec_cluster_node_stats_get) with node
 * `index` (0 .. count-1, in configuration order). Thread-safe, no I/O.
 * Errors: AGEC_ERR_INVALID_ARG (NULL, bad index, size too small).
 */
AGEC_EXPORT agec_status agec_cluster_node_stats_get_sized(agec_cluster *cl, int index,
                                                          agec_cluster_node_stats *out,
                                                          size_t size);
#define agec_cluster_node_stats_get(cl, index, out) \
    agec_cluster_node_stats_get_sized((cl), (index), (out), sizeof *(out))

/** The pool of node `index` (for agec_pool_stats_get and the like), owned
 *  by the cluster, valid until agec_cluster_close. NULL for a bad index. */
AGEC_EXPORT agec_pool *agec_cluster_node_pool(agec_cluster *cl, int index);

/** Index of the node taken for the primary now, or -1. Thread-safe. */
AGEC_EXPORT int agec_cluster_primary_index(agec_cluster *cl);

/**
 * Write every node's state in Prometheus text format into buf[cap] (like
 * snprintf: returns the length needed). Metrics agec_cluster_node_up,
 * _role (1 for the current role label), _lag_ms, _in_rotation, _in_use,
 * _acquires_total{access=...}, _errors_total, with labels cluster="<name>"
 * and node="<host>:<port>"; followed by each node pool's own metrics
 * (agec_pool_stats_prometheus, pool label = the node pool's name).
 * Thread-safe.
 */
AGEC_EXPORT size_t agec_cluster_prometheus(agec_cluster *cl, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_CLUSTER_H */
