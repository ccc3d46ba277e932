/*
 * One connection of the mux: its queues and its I/O role. The thread that
 * holds the role (lane->driving) is the only one that touches the PGconn:
 * it sends what is queued (every statement followed by a Sync, so that an
 * error aborts nothing but its own statement), reads results in order and
 * completes each statement for its owner. Everything else happens under
 * lane->mu. See docs/mux.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error_internal.h"
#include "cypher/exec.h"
#include "cypher/pooler.h"
#include "cypher/result.h"
#include "mux/mux_internal.h"
#include "pool/conn_ext.h"
#include "session/clock.h"
#include "session/pqerror.h"
#include "session/pgconn.h"

/* After a cancel: repeat it this often while results are missing (it may
 * have arrived between two statements), and close the connection when it
 * has not drained this long after the first. */
#define DRAIN_RECANCEL_US 200000
#define DRAIN_GIVE_UP_US 1000000

/* Wake a sleeping driver for a new statement while fewer than this many
 * are in flight on its connection (see agec__lane_kick). */
#ifndef KICK_BELOW
#define KICK_BELOW 2
#endif
/* ... and always when the server is this far away (a round trip, send to
 * result, at least this long): then waiting for the next results to arrive
 * before sending costs a newcomer a whole round trip, and the extra write
 * is cheap beside it. */
#ifndef KICK_RTT_US
#define KICK_RTT_US 1000
#endif
#define RTT_WINDOW 64

/* ---- lists (lane->mu held) ------------------------------------------------- */

void agec__lane_queue(mux_lane *l, agec_mux_op *op)
{
    atomic_fetch_add(&l->load, 1);
    if (op->deadline_us != AGEC__NEVER)
        l->ndl++;
    op->next = NULL;
    if (l->pend_tail)
        l->pend_tail->next = op;
    else
        l->pend_head = op;
    l->pend_tail = op;
    op->where = OP_PENDING;
    l->npending++;
}

static void pend_remove(mux_lane *l, agec_mux_op *op)
{
    agec_mux_op **pp = &l->pend_head, *prev = NULL;
    while (*pp != NULL && *pp != op) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = op->next;
    if (l->pend_tail == op)
        l->pend_tail = prev;
    op->next = NULL;
    op->where = OP_NONE;
    l->npending--;
    if (op->deadline_us != AGEC__NEVER)
        l->ndl--;
    atomic_fetch_sub(&l->load, 1);
}

void agec__lane_unqueue(mux_lane *l, agec_mux_op *op)
{
    pend_remove(l, op);
}

static void fl_push(mux_lane *l, agec_mux_op *op)
{
    op->next = NULL;
    if (l->fl_tail)
        l->fl_tail->next = op;
    else
        l->fl_head = op;
    l->fl_tail = op;
    op->where = OP_INFLIGHT;
    l->ninflight++;
    if (!op->abandoned)
        l->nlive++;
}

agec_mux_op *agec__lane_fl_pop(mux_lane *l)
{
    agec_mux_op *op = l->fl_head;
    if (op == NULL)
        return NULL;
    l->fl_head = op->next;
    if (l->fl_head == NULL)
        l->fl_tail = NULL;
    op->next = NULL;
    op->where = OP_NONE;
    l->ninflight--;
    if (!op->abandoned)
        l->nlive--;
    if (op->deadline_us != AGEC__NEVER)
        l->ndl--;
    atomic_fetch_sub(&l->load, 1);
    return op;
}

/* ---- completion ------------------------------------------------------------ */

void agec__lane_complete(mux_lane *l, agec_mux_op *op, agec_status st, agec_result *res,
                         const agec_error *err)
{
    agec_mux *m = l->mux;
    atomic_fetch_add(&m->completed, 1);
    atomic_fetch_sub(&m->outstanding, 1);
    if (op->cypher_query != NULL && st != AGEC_OK && err != NULL) {
        agec_error e = AGEC_ERROR_INIT;
        agec__error_copy(&e, err);
        agec__cypher_position(&e, op->text, op->cypher_query);
        agec__lane_complete_raw(op, st, res, &e);
    } else {
        agec__lane_complete_raw(op, st, res, err);
    }
}

void agec__lane_complete_raw(agec_mux_op *op, agec_status st, agec_result *res,
                             const agec_error *err)
{
    agec_mux *m = op->mux;
    pthread_mutex_lock(&op->mu);
    op->st = st;
    op->res = res;
    if (err != NULL)
        agec__error_copy(&op->err, err);
    else
        agec__error_reset(&op->err);
    op->err.code = st;
    op->done = true;
    pthread_mutex_unlock(&op->mu);
    /* (The caller still holds the lane's reference: op outlives this.) */
    if (op->fn == NULL) {
        pthread_cond_signal(&op->cv);
        return;
    }
    pthread_mutex_lock(&m->mu);
    op->dnext = NULL;
    bool was_empty = m->due_head == NULL;
    if (m->due_tail)
        m->due_tail->dnext = op;
    else
        m->due_head = op;
    m->due_tail = op;
    pthread_mutex_unlock(&m->mu);
    if (was_empty)
        agec__mux_signal(m);
}

void agec__lane_complete_msg(mux_lane *l, agec_mux_op *op, agec_status st, const char *msg)
{
    agec_error e = AGEC_ERROR_INIT;
    agec__error_set(&e, st, "%s", msg);
    agec__lane_complete(l, op, st, NULL, &e);
}

/* ---- deadlines and draining -------------------------------------------------- */

static void start_cancel(mux_lane *l)
{
    agec__cancel_job *j = agec__cancel_start_key(agec__conn_cancel_key(l->conn));
    agec__cancel_release(j);
    atomic_fetch_add(&l->mux->cancels, 1);
}

void agec__lane_expire(mux_lane *l, int64_t now)
{
    for (agec_mux_op *op = l->ndl > 0 ? l->pend_head : NULL, *nx; op != NULL; op = nx) {
        nx = op->next;
        if (op->deadline_us > now)
            continue;
        pend_remove(l, op);
        atomic_fetch_add(&l->mux->timeouts, 1);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "statement timeout: not sent within %d ms (the mux's connections were busy); "
                 "it never reached the server",
                 op->timeout_ms);
        agec__lane_complete_msg(l, op, AGEC_ERR_TIMEOUT, msg);
        agec__op_unref(op);
    }
    for (agec_mux_op *op = l->ndl > 0 ? l->fl_head : NULL; op != NULL; op = op->next) {
        if (op->abandoned || op->deadline_us > now)
            continue;
        op->abandoned = true;
        l->nlive--;
        atomic_fetch_add(&l->mux->timeouts, 1);
        char msg[200];
        snprintf(msg, sizeof msg,
                 "statement timeout: no result within %d ms; the statement may still run on "
                 "the server (it is cancelled only once nothing else in flight on its "
                 "connection needs the backend)",
                 op->timeout_ms);
        agec__lane_complete_msg(l, op, AGEC_ERR_TIMEOUT, msg);
    }
    /* Read, waiting for their group's commit: expire alike. */
    for (agec_mux_op *op = l->ndl > 0 ? l->seg_head : NULL; op != NULL; op = op->next) {
        if (op->abandoned || op->deadline_us > now)
            continue;
        op->abandoned = true;
        atomic_fetch_add(&l->mux->timeouts, 1);
        agec__lane_complete_msg(l, op, AGEC_ERR_TIMEOUT,
                                "statement timeout: its group of statements did not commit "
                                "in time");
    }
    if (l->conn != NULL && l->ninflight > 0 && l->nlive == 0) {
        if (!l->draining) {
            l->draining = true;
            l->drain_give_up = now + DRAIN_GIVE_UP_US;
            l->drain_recancel = now + DRAIN_RECANCEL_US;
            start_cancel(l);
        } else if (now >= l->drain_recancel) {
            l->drain_recancel = now + DRAIN_RECANCEL_US;
            start_cancel(l);
        }
    }
}

int64_t agec__lane_next_deadline(mux_lane *l)
{
    int64_t d = AGEC__NEVER;
    for (agec_mux_op *op = l->ndl > 0 ? l->pend_head : NULL; op != NULL; op = op->next)
        d = agec__min64(d, op->deadline_us);
    for (agec_mux_op *op = l->ndl > 0 ? l->fl_head : NULL; op != NULL; op = op->next)
        if (!op->abandoned)
            d = agec__min64(d, op->deadline_us);
    for (agec_mux_op *op = l->ndl > 0 ? l->seg_head : NULL; op != NULL; op = op->next)
        if (!op->abandoned)
            d = agec__min64(d, op->deadline_us);
    if (l->draining)
        d = agec__min64(d, agec__min64(l->drain_recancel, l->drain_give_up));
    if (l->want_conn && l->npending > 0)
        d = agec__min64(d, agec__now_us() + 10000); /* ask the pool again soon */
    return d;
}

/* ---- the connection ------------------------------------------------------------ */

void agec__lane_stmts_clear(mux_lane *l)
{
    for (int i = 0; i < l->nstmts; i++)
        free(l->stmts[i].sql);
    l->nstmts = 0;
}

/* Give the connection back (lane->mu held; no driver but the caller).
 * Every statement still in flight is completed with `st`/`msg` (the
 * first, the one the server was running, with *head_err when given). */
static void drop_conn(mux_lane *l, agec_status st, const agec_error *head_err, const char *msg)
{
    /* Read but not committed (their Sync did not come): like in flight. */
    agec__lane_seg_drop(l, st == AGEC_OK ? AGEC_ERR_POOL_CLOSED : st, msg);
    bool first = true;
    agec_mux_op *op;
    while ((op = agec__lane_fl_pop(l)) != NULL) {
        if (!op->abandoned) {
            if (first && head_err != NULL)
                agec__lane_complete(l, op, head_err->code, NULL, head_err);
            else
                agec__lane_complete_msg(l, op, st, msg);
        }
        first = false;
        agec__op_unref(op);
    }
    if (l->conn == NULL)
        return;
    int fd = PQsocket(l->pg);
    if (fd >= 0)
        (void)epoll_ctl(l->mux->epfd, EPOLL_CTL_DEL, fd, NULL);
    bool clean = st == AGEC_OK && !l->draining && PQexitPipelineMode(l->pg) == 1 &&
                 PQsetnonblocking(l->pg, 0) == 0;
    if (clean) {
        agec_conn_release(l->conn);
    } else {
        agec_conn_release_broken(l->conn);
        if (st != AGEC_OK)
            atomic_fetch_add(&l->mux->replaced, 1);
    }
    l->conn = NULL;
    l->pg = NULL;
    l->draining = false;
    l->flush_pending = false;
    agec__lane_stmts_clear(l);
}

void agec__lane_shutdown(mux_lane *l)
{
    agec_mux_op *op;
    while ((op = l->pend_head) != NULL) {
        pend_remove(l, op);
        agec__lane_complete_msg(l, op, AGEC_ERR_POOL_CLOSED,
                                "the mux was shut down before the statement was sent");
        agec__op_unref(op);
    }
    for (op = l->fl_head; op != NULL; op = op->next) {
        if (op->abandoned)
            continue;
        op->abandoned = true;
        l->nlive--;
        agec__lane_complete_msg(
            l, op, AGEC_ERR_POOL_CLOSED,
            "the mux was shut down while the statement was in flight (it may have run)");
    }
    for (op = l->seg_head; op != NULL; op = op->next) {
        if (op->abandoned)
            continue;
        op->abandoned = true;
        agec__lane_complete_msg(l, op, AGEC_ERR_POOL_CLOSED,
                                "the mux was shut down before the statement's commit arrived "
                                "(it may have run)");
    }
    if (l->ninflight > 0 || l->seg_head != NULL)
        drop_conn(l, AGEC_ERR_POOL_CLOSED, NULL, "");
    else
        drop_conn(l, AGEC_OK, NULL, "");
}

/* Borrow a connection for the lane (the role held, lane->mu NOT held).
 * `wait`: a waiting caller's drive, which waits for a connection within
 * acquire_timeout_ms and its statements' deadlines, and on failure fails
 * every queued statement with the pool's error. Otherwise (a submit's or
 * dispatch's pass, which must not block) the pool is asked without
 * waiting for others, and statements stay queued when every connection
 * is busy (for a later pass; agec_mux_next_timeout_ms asks for one soon). */
static void get_conn(mux_lane *l, bool wait)
{
    agec_mux *m = l->mux;
    pthread_mutex_lock(&l->mu);
    int64_t first = AGEC__NEVER;
    for (agec_mux_op *op = l->pend_head; op != NULL; op = op->next)
        first = agec__min64(first, op->deadline_us);
    pthread_mutex_unlock(&l->mu);
    int64_t now = agec__now_us();
    int64_t limit = agec__min64(first, agec__deadline_after(now, m->cfg.acquire_timeout_ms));
    int ms = (int)((limit - now + 999) / 1000);
    if (ms < 0 || !wait)
        ms = 0;
    agec_conn *c = NULL;
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire_timeout(m->pool, ms, &c, &e);
    PGconn *pg = c ? agec_conn_pgconn(c) : NULL;
    bool pooled = false;
    if (st == AGEC_OK) {
        /* Behind a pooler the lane carries one transaction at a time
         * (send_pending). One round trip per connection, then cached. */
        st = agec__conn_behind_pooler(c, ms > 0 ? ms : 5000, &pooled, &e);
        if (st != AGEC_OK) {
            agec_conn_release_broken(c);
            c = NULL;
        }
    }
    if (st == AGEC_OK && (PQenterPipelineMode(pg) != 1 || PQsetnonblocking(pg, 1) != 0)) {
        st = agec__error_set(&e, AGEC_ERR_CONNECTION_LOST, "could not enter pipeline mode");
        agec_conn_release_broken(c);
        c = NULL;
    }
    if (st == AGEC_OK) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
        (void)epoll_ctl(m->epfd, EPOLL_CTL_ADD, PQsocket(pg), &ev);
    }
    pthread_mutex_lock(&l->mu);
    if (st == AGEC_OK) {
        l->conn = c;
        l->pg = pg;
        l->named = agec__conn_stmt_mode(c) == AGEC_STMT_NAMED;
        l->pooled = pooled;
        if (pooled) {
            /* Named statements cannot work behind a transaction pooler (the
             * next transaction may reach a session that lacks them): unnamed
             * from the start, not after a 26000. */
            atomic_store(&m->pooled, true);
            atomic_store(&m->unnamed, true);
        }
        l->conn_gen++;
        l->want_conn = false;
    } else if (!wait && st == AGEC_ERR_POOL_EXHAUSTED) {
        l->want_conn = true;
    } else {
        agec_mux_op *op;
        while ((op = l->pend_head) != NULL) {
            pend_remove(l, op);
            agec__lane_complete(l, op, st, NULL, &e);
            agec__op_unref(op);
        }
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- sending (lane->mu held: a synchronous caller's strings stay valid
 * while its statement is queued) ------------------------------------------------ */

static int stmt_find(mux_lane *l, const char *sql)
{
    for (int i = 0; i < l->nstmts; i++)
        if (strcmp(l->stmts[i].sql, sql) == 0)
            return i;
    return -1;
}

void agec__lane_stmt_forget(mux_lane *l, const char *sql)
{
    int i = stmt_find(l, sql);
    if (i < 0)
        return;
    free(l->stmts[i].sql);
    l->stmts[i] = l->stmts[--l->nstmts];
}

static bool send_one(mux_lane *l, agec_mux_op *op)
{
    PGconn *pg = l->pg;
    int ok;
    op->fresh = false;
    int slot = -1;
    if (l->named && op->prepare && !atomic_load(&l->mux->unnamed)) {
        slot = stmt_find(l, op->text);
        if (slot < 0 && l->nstmts < MUX_STMT_CACHE) {
            char *copy = strdup(op->text);
            if (copy != NULL) {
                slot = l->nstmts++;
                mux_stmt *s = &l->stmts[slot];
                s->sql = copy;
                snprintf(s->name, sizeof s->name, "agec_m%016" PRIx64 "_%" PRIu64 "_%d",
                         agec__conn_pool_nonce(l->conn), l->conn_gen, l->index * 1000 + slot);
                /* A name is never reused on a connection: slot numbers are,
                 * so add a serial. */
                static atomic_uint serial;
                size_t len = strlen(s->name);
                snprintf(s->name + len, sizeof s->name - len, "_%u",
                         atomic_fetch_add(&serial, 1) % 1000000u);
                if (PQsendPrepare(pg, s->name, op->text, op->nparams, NULL) != 1)
                    return false;
                op->fresh = true;
            }
        }
    }
    op->stmt_slot = slot;
    op->cmds_left = op->fresh ? 2 : 1;
    if (slot >= 0)
        ok = PQsendQueryPrepared(pg, l->stmts[slot].name, op->nparams, op->vals, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(pg, op->text, op->nparams, NULL, op->vals, NULL, NULL, 0);
    return ok == 1;
}

/* Send every queued statement (within max_depth). false: the connection failed. */
static bool send_pending(mux_lane *l)
{
    /* Behind a transaction pooler: one transaction at a time, sent only
     * once the previous one's Sync is answered (nothing in flight, nothing
     * read and waiting for its Sync). PgBouncer 1.18 releases the server
     * when every Sync it has seen is answered: a statement sent after its
     * predecessor's error but before that Sync's answer could reach one
     * server and its Sync another, and its answer went to another client
     * (cypher/pooler.h). */
    if (l->pooled && (l->ninflight > 0 || l->seg_head != NULL))
        return true;
    int max = l->pooled ? 1 : l->mux->cfg.max_depth;
    bool sent = false, ok = true;
    agec_mux_op *op;
    /* libpq 15 flushes at every PQpipelineSync: cork the socket so that a
     * batch leaves in one segment (the server wakes once, not per statement). */
    bool cork = l->npending > 1 && (max == 0 || max - l->ninflight > 1);
    int fd = PQsocket(l->pg), on = 1, off = 0;
    if (cork)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    int group = l->pooled ? 1 : l->mux->cfg.group_max, in_group = 0;
    int64_t now = agec__now_us();
    while ((op = l->pend_head) != NULL && (max == 0 || l->ninflight < max)) {
        l->pend_head = op->next;
        if (l->pend_head == NULL)
            l->pend_tail = NULL;
        l->npending--;
        ok = send_one(l, op);
        /* A Sync after each statement; in groups (group_max) after the
         * last of what is sent now, after group_max, and around a
         * statement sent again alone. */
        agec_mux_op *nx = l->pend_head;
        in_group++;
        op->seg_end = group <= 1 || op->solo || nx == NULL || nx->solo || in_group >= group ||
                      (max != 0 && l->ninflight + 1 >= max);
        if (op->seg_end) {
            in_group = 0;
            ok = ok && PQpipelineSync(l->pg) == 1;
        }
        /* In flight either way: a failed send is a lost connection, which
         * completes everything in flight. */
        op->sent_us = now;
        fl_push(l, op);
        sent = true;
        if (!ok)
            break;
    }
    if (cork)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    if (sent) {
        l->flush_pending = true;
        atomic_fetch_add(&l->mux->batches, 1);
    }
    return ok;
}

/* The connection failed: the statement the server was running gets its own
 * error, the others in flight a lost-connection error; the connection is
 * closed and a new one borrowed when statements need it (lane->mu held). */
static void conn_failed(mux_lane *l)
{
    agec_error head = AGEC_ERROR_INIT;
    agec_mux_op *h = l->fl_head;
    if (h != NULL && h->failed && !h->abandoned)
        agec__error_copy(&head, &h->err);
    else
        agec__error_from_result(&head, AGEC_ERR_CONNECTION_LOST, NULL, l->pg);
    if (head.code != AGEC_ERR_CONNECTION_LOST && head.code != AGEC_ERR_STATE)
        head.code = AGEC_ERR_CONNECTION_LOST;
    drop_conn(l, AGEC_ERR_CONNECTION_LOST, &head,
              "the connection was lost before this statement's result arrived (it may or may "
              "not have run)");
}

static bool self_done(const agec_mux_op *self)
{
    return self->where == OP_NONE || self->abandoned;
}

/* ---- the role ---------------------------------------------------------------- */

bool agec__lane_try_role(mux_lane *l)
{
    if (l->driving || atomic_load(&l->mux->closed))
        return false;
    l->driving = true;
    atomic_fetch_add(&l->mux->drivers, 1);
    return true;
}

void agec__lane_rtt_sample(mux_lane *l, int64_t us)
{
    if (us < l->rtt_cur_min)
        l->rtt_cur_min = us;
    if (++l->rtt_n >= RTT_WINDOW) {
        l->rtt_prev_min = l->rtt_cur_min;
        l->rtt_cur_min = AGEC__NEVER;
        l->rtt_n = 0;
    }
}

/* The round-trip estimate: the least of the last 64-128 samples. */
int64_t agec__lane_rtt(const mux_lane *l)
{
    return agec__min64(l->rtt_cur_min, l->rtt_prev_min);
}

/* The server is a network away: its round trip is KICK_RTT_US or more. */
static bool server_far(const mux_lane *l)
{
    int64_t rtt = agec__lane_rtt(l);
    return rtt != AGEC__NEVER && rtt >= KICK_RTT_US;
}

void agec__lane_kick(mux_lane *l)
{
    /* A driver sleeping in poll always has a statement in flight, so it
     * wakes by itself when results come and then sends what was queued
     * meanwhile (one flush for all: the batching that makes the mux pay).
     * Wake it at once only while the pipeline is shallow, where waiting a
     * round trip would cost the newcomer latency for nothing, or when the
     * round trip itself is long (KICK_RTT_US: a server across a network). */
    if (!l->sleeping ||
        (l->ninflight >= KICK_BELOW && !atomic_load(&l->mux->closed) && !server_far(l)))
        return;
    l->sleeping = false;
    uint64_t one = 1;
    ssize_t w = write(l->kickfd, &one, sizeof one);
    (void)w;
}

void agec__lane_offer(mux_lane *l)
{
    agec_mux *m = l->mux;
    if (atomic_load(&m->closed))
        return;
    agec_mux_op *to = NULL;
    for (agec_mux_op *op = l->fl_head; op != NULL && to == NULL; op = op->next)
        if (op->waiting && !op->abandoned)
            to = op;
    for (agec_mux_op *op = l->pend_head; op != NULL && to == NULL; op = op->next)
        if (op->waiting)
            to = op;
    if (to == NULL)
        return;
    pthread_mutex_lock(&to->mu);
    to->role_offer = true;
    pthread_cond_signal(&to->cv);
    pthread_mutex_unlock(&to->mu);
    atomic_fetch_add(&m->handoffs, 1);
}

/* Give the role up (lane->mu held): to a waiter whose statement is still
 * outstanding, so that someone reads for it. */
static void leave_role(mux_lane *l)
{
    agec_mux *m = l->mux;
    l->driving = false;
    agec__lane_offer(l);
    if (atomic_fetch_sub(&m->drivers, 1) == 1 && atomic_load(&m->closed)) {
        pthread_mutex_lock(&m->mu);
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
}

/* Wait for the socket (and, for writing, while output is left) or a kick,
 * until `until`. lane->mu NOT held. false: poll failed. */
static void wait_io(mux_lane *l, int64_t until)
{
    struct pollfd p[2] = {
        { .fd = PQsocket(l->pg), .events = (short)(POLLIN | (l->flush_pending ? POLLOUT : 0)) },
        { .fd = l->kickfd, .events = POLLIN },
    };
    int r = poll(p, 2, agec__poll_ms(until, agec__now_us()));
    if (r > 0 && (p[1].revents & POLLIN)) {
        uint64_t v;
        ssize_t n = read(l->kickfd, &v, sizeof v);
        (void)n;
    }
}

void agec__lane_drive(mux_lane *l, agec_mux_op *self, int64_t until)
{
    agec_mux *m = l->mux;
    pthread_mutex_lock(&l->mu);
    for (bool first = true;; first = false) {
        if (atomic_load(&m->closed))
            break;
        agec__lane_expire(l, agec__now_us());
        if (l->draining && agec__now_us() >= l->drain_give_up)
            drop_conn(l, AGEC_ERR_TIMEOUT, NULL, "");
        if (l->draining && l->ninflight == 0) {
            /* Every result is in: wait for the cancel request to be
             * delivered before anything new is sent. */
            agec__cancel_key *key = agec__conn_cancel_key(l->conn);
            int64_t by = l->drain_give_up;
            if (self != NULL)
                by = agec__min64(by, agec__min64(until, self->deadline_us));
            else
                by = agec__now_us();
            pthread_mutex_unlock(&l->mu);
            bool settled = agec__cancel_key_settle(key, by);
            pthread_mutex_lock(&l->mu);
            if (settled)
                l->draining = false;
            else if (self == NULL || self_done(self) || agec__now_us() >= until)
                break;
            continue;
        }
        if (l->conn == NULL && l->npending > 0 && l->ninflight == 0 && (self != NULL || first)) {
            pthread_mutex_unlock(&l->mu);
            get_conn(l, self != NULL);
            pthread_mutex_lock(&l->mu);
            if (l->conn == NULL && self == NULL)
                break;
            continue;
        }
        bool ok = true;
        if (l->conn != NULL && !l->draining && l->npending > 0)
            ok = send_pending(l);
        if (ok && l->flush_pending) {
            int f = PQflush(l->pg);
            ok = f >= 0;
            l->flush_pending = f == 1;
        }
        if (!ok) {
            conn_failed(l);
            continue;
        }
        if (self != NULL ? self_done(self) || agec__now_us() >= until : !first)
            break;
        if (l->conn == NULL) {
            if (self == NULL || l->npending == 0)
                break;
            continue;
        }
        if (self != NULL) {
            int64_t wake = agec__min64(until, agec__lane_next_deadline(l));
            l->sleeping = true;
            pthread_mutex_unlock(&l->mu);
            wait_io(l, wake);
            pthread_mutex_lock(&l->mu);
            l->sleeping = false;
        }
        pthread_mutex_unlock(&l->mu);
        ok = PQconsumeInput(l->pg) == 1 && agec__lane_read(l);
        pthread_mutex_lock(&l->mu);
        if (!ok)
            conn_failed(l);
    }
    leave_role(l);
    pthread_mutex_unlock(&l->mu);
}
