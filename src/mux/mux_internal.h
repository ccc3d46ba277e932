/*
 * The multiplexer's state (docs/mux.md). Lock order: mux->mu is a leaf
 * (the dispatch queue and counters); lane->mu may be held while taking
 * op->mu or mux->mu, never the other way round.
 */
#ifndef AGEC_MUX_INTERNAL_H
#define AGEC_MUX_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agec/mux.h"

#define MUX_STMT_CACHE 64
#define MUX_MAX_CONNECTIONS 64

typedef enum op_where {
    OP_NONE = 0,     /* in no lane list (completed and read, or never queued) */
    OP_PENDING = 1,  /* in lane->pending: not sent */
    OP_INFLIGHT = 2, /* in lane->inflight: sent, result not read yet */
    OP_SEG = 3,      /* in lane->seg: results read, its segment's Sync not yet */
} op_where;

typedef struct mux_lane mux_lane;

struct agec_mux_op {
    atomic_int refs; /* the lane's lists (while queued) + the owner (handle or dispatch) */
    agec_mux *mux;
    mux_lane *lane;
    /* The statement; `text` and `vals` point into the caller's memory for
     * a synchronous call (it outlives the op's time in the lane) or into
     * `owned` for a submit. */
    const char *text;
    int nparams;
    const char *const *vals;
    void *owned;              /* malloc'd copies (submit), freed with the op */
    char *owned_sql;          /* Cypher: the SQL text built (freed with the op) */
    const char *cypher_query; /* Cypher: for error positions (in owned) */
    bool prepare;
    int64_t deadline_us; /* AGEC__NEVER: none */
    int timeout_ms;
    agec_mux_done_fn fn;
    void *user;
    /* Under lane->mu. */
    agec_mux_op *next;
    op_where where;
    bool abandoned;  /* completed for its owner already; a result still due is dropped */
    bool waiting;    /* a thread waits on it and can take the I/O role */
    int stmt_slot;   /* named mode: the cache slot it used, -1 unnamed */
    bool fresh;      /* named mode: the Parse was sent with it */
    bool seg_end;    /* a Sync was sent after it (the end of its segment) */
    bool solo;       /* must be sent with a Sync of its own (a retry after its group failed) */
    int64_t sent_us; /* when it was sent (the lane's round-trip estimate) */
    /* The driver's reading of it (the role holder only). */
    int cmds_left;  /* commands whose results are still to come (Parse, Execute) */
    bool failed;    /* its own error is in `err` (not completed yet) */
    bool aborted;   /* skipped by the server after another statement's error */
    PGresult *pres; /* its rows so far */
    /* Under op->mu: the outcome. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bool taken;      /* the result was handed out */
    bool role_offer; /* the I/O role was offered to its waiter */
    agec_status st;
    agec_result *res;
    agec_error err;
    agec_mux_op *dnext; /* mux->due list (callbacks to run) */
};

/* A named statement prepared on the lane's current connection. */
typedef struct mux_stmt {
    char *sql;
    char name[40];
} mux_stmt;

/* One connection of the mux and everything that orders its traffic. */
struct mux_lane {
    agec_mux *mux;
    int index;
    pthread_mutex_t mu;
    /* Under mu. */
    agec_conn *conn; /* NULL: none yet, or lost (borrowed again when needed) */
    PGconn *pg;
    agec_mux_op *pend_head, *pend_tail; /* not sent, in submission order */
    agec_mux_op *fl_head, *fl_tail;     /* sent, in the order results come */
    int npending, ninflight, nlive;     /* nlive: in flight and not abandoned */
    int ndl;                            /* queued or in flight with a deadline (0: no walks) */
    bool driving;                       /* a thread holds the I/O role (it alone touches pg) */
    bool sleeping;                      /* ... and sleeps in poll: a submit must kick it */
    bool draining;         /* every in-flight statement expired: cancel sent, no sends */
    int64_t drain_give_up; /* close the connection if still draining then */
    int64_t drain_recancel;
    bool want_conn;     /* a non-blocking pass found the pool exhausted: retry soon */
    bool flush_pending; /* output left in libpq's buffer (the driver flushes) */
    uint64_t conn_gen;
    bool pooled; /* a transaction pooler is in between: one transaction in flight */
    bool named;  /* the pool's statement mode is AGEC_STMT_NAMED: cache prepared statements */
    mux_stmt stmts[MUX_STMT_CACHE];
    int nstmts;
    atomic_int load; /* npending + ninflight, read without the lock to pick a lane */
    int kickfd;      /* eventfd: wakes the driver's poll when statements are queued */
    /* The round trip to the server, send to result, as the least of the
     * last 64-128 samples (queueing behind other statements only adds):
     * under mu. AGEC__NEVER until the first result. */
    int64_t rtt_cur_min, rtt_prev_min;
    int rtt_n;
    /* Driver only (the thread with the role): statements whose results are
     * in but whose segment's Sync is not (a group commits at its Sync). */
    agec_mux_op *seg_head, *seg_tail;
    bool await_sync; /* the segment's last statement is read: next comes its Sync */
    bool seg_failed; /* an error outside any statement (at commit): in seg_err */
    agec_error seg_err;
};

struct agec_mux {
    agec_pool *pool;
    agec_mux_config cfg;
    int nlanes;
    mux_lane *lanes;
    int epfd; /* agec_mux_fd: lanes' sockets + evfd */
    int evfd; /* eventfd: callbacks due or a lane without driver has work */
    atomic_bool closed;
    atomic_int inside;  /* threads inside an API call (shutdown waits for 0) */
    atomic_int drivers; /* threads holding a lane's I/O role (shutdown waits for 0) */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* shutdown waits for inside == 0 */
    agec_mux_op *due_head, *due_tail;
    bool shut;
    /* counters (atomic: no lock on the fast path) */
    atomic_uint_fast64_t submitted, completed, timeouts, cancels, replaced, batches, handoffs,
        resent;
    atomic_int outstanding;
    /* A cached statement was missing on the server (26000): the statements
     * do not all reach one server session (a transaction-mode pooler such
     * as PgBouncer): from then on every statement is sent unnamed. */
    atomic_bool unnamed;
    atomic_bool pooled; /* some lane found a transaction pooler in between */
};

/* lane.c: the I/O role. */
/* Take the lane's I/O role if free (lane->mu held); true when taken. */
bool agec__lane_try_role(mux_lane *lane);
/* With the role: work until `self` completes (its deadline completes it)
 * or `until` passes (self NULL: one non-blocking pass). Returns with the
 * role released (offered to a waiter when work is left). */
void agec__lane_drive(mux_lane *lane, agec_mux_op *self, int64_t until);
/* lane->mu held: queue op (not sent) / take a queued op out again. */
void agec__lane_queue(mux_lane *lane, agec_mux_op *op);
void agec__lane_unqueue(mux_lane *lane, agec_mux_op *op);
/* lane->mu held: complete expired statements; cancel when all in flight expired. */
void agec__lane_expire(mux_lane *lane, int64_t now);
/* lane->mu held: complete op (removed from the lists, or left in flight
 * as abandoned) with st/err/res. */
void agec__lane_complete(mux_lane *lane, agec_mux_op *op, agec_status st, agec_result *res,
                         const agec_error *err);
/* Store the outcome in op and wake its owner (or queue its callback);
 * no counters (agec__lane_complete counts). */
void agec__lane_complete_raw(agec_mux_op *op, agec_status st, agec_result *res,
                             const agec_error *err);
/* lane->mu held, role free: offer the role to a waiter whose statement is
 * outstanding (the first in result order). */
void agec__lane_offer(mux_lane *lane);
/* lane->mu held: wake the driver if it sleeps in poll. */
void agec__lane_kick(mux_lane *lane);
/* lane->mu held: one round trip measured (send to result), in us. */
void agec__lane_rtt_sample(mux_lane *lane, int64_t us);
/* lane->mu held: the round-trip estimate (AGEC__NEVER: no result yet). */
int64_t agec__lane_rtt(const mux_lane *lane);
/* shutdown: lane->mu held, no driver: complete everything, give the connection back. */
void agec__lane_shutdown(mux_lane *lane);
/* The earliest deadline of the lane's live statements (lane->mu held). */
int64_t agec__lane_next_deadline(mux_lane *lane);

/* lane.c, for read.c */
agec_mux_op *agec__lane_fl_pop(mux_lane *lane);
void agec__lane_stmt_forget(mux_lane *lane, const char *sql);
void agec__lane_stmts_clear(mux_lane *lane);
void agec__lane_complete_msg(mux_lane *lane, agec_mux_op *op, agec_status st, const char *msg);

/* read.c: reading results (the role held, lane->mu NOT held). false: the
 * connection failed. */
bool agec__lane_read(mux_lane *lane);
/* lane->mu held: complete what the segment holds (connection lost or
 * closed) with st/msg; `first` (the statement the server ran) with *head_err. */
void agec__lane_seg_drop(mux_lane *lane, agec_status st, const char *msg);
/* Reset an op's reading state (sent again, or never read). */
void agec__op_read_reset(agec_mux_op *op);

/* mux.c */
void agec__op_unref(agec_mux_op *op);
void agec__mux_signal(agec_mux *mux);

#endif
