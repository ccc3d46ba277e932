/*
 * Reading a lane's results (the thread with the I/O role only). Results
 * come in the order statements were sent: each statement's commands (a
 * Parse when it is prepared with it, then its Execute) end with a NULL
 * from PQgetResult; a segment (one statement, or a group: group_max) ends
 * with PGRES_PIPELINE_SYNC, its commit. A statement is handed to its owner
 * only at its segment's Sync: before it, its effects are not committed.
 */
#include <string.h>

#include "common/error_internal.h"
#include "cypher/result.h"
#include "mux/mux_internal.h"
#include "session/clock.h"
#include "session/pqerror.h"

void agec__op_read_reset(agec_mux_op *op)
{
    PQclear(op->pres);
    op->pres = NULL;
    op->failed = false;
    op->aborted = false;
    if (op->err.code != AGEC_OK)
        agec__error_reset(&op->err);
}

static void fail_op(mux_lane *l, agec_mux_op *op, agec_status code, const PGresult *r,
                    const char *msg)
{
    if (op->failed || op->aborted)
        return;
    /* An abandoned op's err was handed out with its timeout: not written. */
    if (!op->abandoned) {
        if (r != NULL)
            agec__error_from_result(&op->err, code, r, l->pg);
        else
            agec__error_set(&op->err, code, "%s", msg);
    }
    op->failed = true;
}

/* The head statement's results are all in: it waits for its segment's Sync. */
static void stage_head(mux_lane *l)
{
    pthread_mutex_lock(&l->mu);
    agec_mux_op *h = agec__lane_fl_pop(l);
    if (h != NULL) {
        agec__lane_rtt_sample(l, agec__now_us() - h->sent_us);
        h->where = OP_SEG;
        h->next = NULL;
        if (l->seg_tail)
            l->seg_tail->next = h;
        else
            l->seg_head = h;
        l->seg_tail = h;
        if (h->seg_end)
            l->await_sync = true;
    }
    pthread_mutex_unlock(&l->mu);
}

/* Put ops (a chain, in order) back at the head of the queue, each to be
 * sent with a Sync of its own (lane->mu held). */
static void requeue_front(mux_lane *l, agec_mux_op *first, agec_mux_op *last, int n)
{
    if (first == NULL)
        return;
    last->next = l->pend_head;
    l->pend_head = first;
    if (l->pend_tail == NULL)
        l->pend_tail = last;
    l->npending += n;
    atomic_fetch_add(&l->load, n);
    for (agec_mux_op *op = first; op != last->next; op = op->next) {
        op->where = OP_PENDING;
        op->solo = true;
        if (op->deadline_us != INT64_MAX)
            l->ndl++;
        agec__op_read_reset(op);
    }
}

/* The segment's Sync came: commit. Without an error every statement gets
 * its rows. With one, a lone statement gets its error; in a group, each
 * statement that failed by itself gets its own error, and the others
 * (rolled back or skipped by the server) are sent again, alone. */
static void finish_seg(mux_lane *l)
{
    pthread_mutex_lock(&l->mu);
    agec_mux_op *seg = l->seg_head;
    l->seg_head = l->seg_tail = NULL;
    l->await_sync = false;
    bool seg_failed = l->seg_failed;
    l->seg_failed = false;
    int n = 0;
    bool any_fail = seg_failed;
    for (agec_mux_op *op = seg; op != NULL; op = op->next) {
        n++;
        any_fail = any_fail || op->failed || op->aborted;
    }
    agec_mux_op *done = NULL, **tail = &done, *rq_first = NULL, *rq_last = NULL;
    int nrq = 0;
    for (agec_mux_op *op = seg, *nx; op != NULL; op = nx) {
        nx = op->next;
        op->next = NULL;
        op->where = OP_NONE;
        if (op->fresh && op->failed)
            agec__lane_stmt_forget(l, op->text);
        bool stale = op->failed && op->stmt_slot >= 0 && !op->fresh && !op->abandoned &&
                     strcmp(op->err.sqlstate, "26000") == 0;
        if (stale) {
            /* Our statement, prepared on this connection, is unknown to the
             * server session that got the Bind: a transaction-mode pooler
             * routes our statements to several sessions. It did not run:
             * send it again, unnamed, like everything from now on. */
            atomic_store(&l->mux->unnamed, true);
            agec__lane_stmts_clear(l);
        }
        bool retry =
            !op->abandoned && (stale || (n > 1 && any_fail && !(op->failed && !op->aborted)));
        if (retry) {
            if (rq_last)
                rq_last->next = op;
            else
                rq_first = op;
            rq_last = op;
            nrq++;
        } else {
            *tail = op;
            tail = &op->dnext; /* dnext is free until a callback is queued */
        }
    }
    requeue_front(l, rq_first, rq_last, nrq);
    if (nrq > 0)
        atomic_fetch_add(&l->mux->resent, (uint_fast64_t)nrq);
    pthread_mutex_unlock(&l->mu);
    /* Completed outside the lane's lock: submitters are not held up while
     * owners are woken. Out of the lists, nobody else touches these. */
    for (agec_mux_op *op = done, *nx; op != NULL; op = nx) {
        nx = op->dnext;
        op->dnext = NULL;
        if (op->abandoned) {
            /* completed at its deadline already */
        } else if (op->failed) {
            agec__lane_complete(l, op, op->err.code, NULL, &op->err);
        } else if (seg_failed) {
            agec__lane_complete(l, op, l->seg_err.code, NULL, &l->seg_err);
        } else if (op->aborted) {
            agec__lane_complete_msg(l, op, AGEC_ERR_SERVER,
                                    "the statement was not run (pipeline aborted)");
        } else {
            agec_result *res = agec__result_wrap(op->pres);
            op->pres = NULL;
            if (res == NULL)
                agec__lane_complete_msg(l, op, AGEC_ERR_NO_MEMORY, "out of memory");
            else
                agec__lane_complete(l, op, AGEC_OK, res, NULL);
        }
        PQclear(op->pres);
        op->pres = NULL;
        agec__op_unref(op);
    }
    if (seg_failed)
        agec__error_reset(&l->seg_err);
}

void agec__lane_seg_drop(mux_lane *l, agec_status st, const char *msg)
{
    agec_mux_op *op;
    while ((op = l->seg_head) != NULL) {
        l->seg_head = op->next;
        op->next = NULL;
        op->where = OP_NONE;
        if (!op->abandoned)
            agec__lane_complete_msg(l, op, st, msg);
        agec__op_unref(op);
    }
    l->seg_tail = NULL;
    l->await_sync = false;
    l->seg_failed = false;
}

/* A result of the segment's commit (no statement's own): keep the first. */
static void seg_error(mux_lane *l, const PGresult *r)
{
    if (!l->seg_failed)
        agec__error_from_result(&l->seg_err, AGEC_ERR_SERVER, r, l->pg);
    l->seg_failed = true;
}

bool agec__lane_read(mux_lane *l)
{
    int nulls = 0;
    while (!PQisBusy(l->pg)) {
        PGresult *r = PQgetResult(l->pg);
        agec_mux_op *h = l->fl_head; /* only the role holder pops it */
        if (r == NULL) {
            /* The end of one command's results; twice in a row: no more. */
            if (h == NULL || l->await_sync || ++nulls > 1)
                break;
            if (--h->cmds_left <= 0)
                stage_head(l);
            continue;
        }
        nulls = 0;
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            finish_seg(l);
            continue;
        }
        if (l->await_sync || h == NULL) {
            seg_error(l, r);
            PQclear(r);
            if (PQstatus(l->pg) == CONNECTION_BAD)
                return false;
            continue;
        }
        switch (s) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_SINGLE_TUPLE:
            if (!h->failed && !h->aborted) {
                PQclear(h->pres);
                h->pres = r;
            } else {
                PQclear(r);
            }
            break;
        case PGRES_EMPTY_QUERY:
            fail_op(l, h, AGEC_ERR_INVALID_ARG, NULL,
                    "the statement is empty (only white space or comments)");
            PQclear(r);
            break;
        case PGRES_PIPELINE_ABORTED:
            if (!h->failed)
                h->aborted = true;
            PQclear(r);
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            fail_op(l, h, AGEC_ERR_STATE, NULL, "COPY cannot run through the mux");
            PQclear(r);
            return false;
        default:
            fail_op(l, h, AGEC_ERR_SERVER, r, NULL);
            PQclear(r);
            if (PQstatus(l->pg) == CONNECTION_BAD ||
                (!h->abandoned && agec__sqlstate_is_fatal(h->err.sqlstate)))
                return false;
            break;
        }
    }
    return PQstatus(l->pg) != CONNECTION_BAD;
}
