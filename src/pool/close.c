/* Closing a pool gracefully (agec_pool_close): refuse new acquires, wake
 * waiters, drain borrowed connections, cancel what they still run near the
 * deadline, join the maintenance thread, free. */
#include <stdlib.h>

#include "common/error_internal.h"
#include "pool/pool_internal.h"
#include "session/clock.h"

/* ---- close ---------------------------------------------------------------- */

/* Cancel what the borrowed connections run. Each request runs on its own
 * thread with its own reference to the connection's cancel key
 * (agec__cancel_start_key): a black-holed server must not hold close past
 * its drain deadline, and the connection may be released and freed while
 * the request is under way. */
typedef struct cancel_jobs {
    agec__cancel_job **v;
    const agec__cancel_key **key; /* v[i]'s key (kept alive by v[i]): only compared */
    size_t n, cap;
} cancel_jobs;

/* A request on key started earlier is still under way (behind a black
 * hole, blocked in PQcancel): a new one would only block beside it. */
static bool cancel_pending(const cancel_jobs *jobs, const agec__cancel_key *key)
{
    for (size_t i = 0; i < jobs->n; i++)
        if (jobs->key[i] == key && !agec__cancel_done(jobs->v[i]))
            return true;
    return false;
}

static void cancel_borrowed(agec_pool *p, cancel_jobs *jobs)
{
    for (agec_conn *c = p->in_use.head; c != NULL; c = c->next) {
        if (c->pg == NULL || c->cancel == NULL || cancel_pending(jobs, c->cancel))
            continue;
        if (jobs->n == jobs->cap) {
            size_t cap = jobs->cap ? 2 * jobs->cap : 8;
            agec__cancel_job **v = realloc(jobs->v, cap * sizeof *v);
            if (v != NULL)
                jobs->v = v;
            const agec__cancel_key **k = realloc(jobs->key, cap * sizeof *k);
            if (k != NULL)
                jobs->key = k;
            if (v == NULL || k == NULL)
                continue; /* sent at the next round, perhaps */
            jobs->cap = cap;
        }
        agec__cancel_job *j = agec__cancel_start_key(c->cancel);
        if (j == NULL)
            continue;
        jobs->key[jobs->n] = c->cancel;
        jobs->v[jobs->n++] = j;
    }
}

/* Let the cancel requests finish (normally milliseconds) so that close
 * leaves no thread or socket behind, but never past the drain deadline. */
static void cancel_jobs_finish(cancel_jobs *jobs, int64_t deadline)
{
    for (size_t i = 0; i < jobs->n; i++) {
        (void)agec__cancel_wait(jobs->v[i], deadline);
        agec__cancel_release(jobs->v[i]);
    }
    free(jobs->v);
    free(jobs->key);
}

agec_status agec_pool_close(agec_pool *p, int drain_timeout_ms, agec_error *err)
{
    if (p == NULL)
        return AGEC_OK;
    int64_t start = agec__now_us();
    int64_t deadline = agec__deadline_after(start, drain_timeout_ms);
    int64_t cancel_at = deadline;
    if (deadline != AGEC__NEVER) {
        int64_t grace = agec__min64((int64_t)drain_timeout_ms * 1000 / 3, 500000);
        cancel_at = deadline - grace;
    }

    pthread_mutex_lock(&p->mu);
    p->shutdown_deadline = deadline;
    atomic_store(&p->shutting_down, true);
    /* Wake every waiter with the error, oldest first. */
    while (p->wait_head != NULL) {
        waiter *w = p->wait_head;
        w->fail = AGEC_ERR_POOL_CLOSED;
        agec__waiter_dequeue_locked(p, w);
        pthread_cond_signal(&w->cond);
    }
    /* Idle connections go now; link them through `doom_next` to close unlocked. */
    agec_conn *doomed = NULL;
    while (p->idle.head != NULL) {
        agec_conn *c = p->idle.head;
        agec__pool_detach_locked(p, c, AGEC_CLOSE_SHUTDOWN);
        c->doom_next = doomed;
        doomed = c;
    }
    pthread_cond_signal(&p->maint_cond);
    pthread_mutex_unlock(&p->mu);
    while (doomed != NULL) {
        agec_conn *next = doomed->doom_next;
        agec__conn_destroy(p, doomed, AGEC_CLOSE_SHUTDOWN, deadline);
        doomed = next;
    }
    agec__maint_join(p);

    pthread_mutex_lock(&p->mu);
    /* Threads inside acquire leave quickly: waiters were woken, connects and
     * checks in progress stop at the closing flag (within a few ms; an
     * on_connect callback runs to its end). Waiting for them means no event
     * fires after close returns, but those of releases still to come. */
    while (p->acquiring > 0 || p->opening.count > 0)
        agec__pool_wait_until(&p->state_cond, &p->mu, AGEC__NEVER);
    while (p->in_use.count > 0 && agec__now_us() < cancel_at)
        agec__pool_wait_until(&p->state_cond, &p->mu, cancel_at);
    /* Cancel what borrowed connections run, at least once (even with a
     * drain of 0) and again every 100 ms until the deadline: a cancel that
     * arrives before a query starts is ignored by the server. */
    cancel_jobs jobs = { NULL, NULL, 0, 0 };
    while (p->in_use.count > 0) {
        cancel_borrowed(p, &jobs);
        if (agec__now_us() >= deadline)
            break;
        int64_t until = agec__min64(deadline, agec__now_us() + 100000);
        while (p->in_use.count > 0 && agec__now_us() < until)
            agec__pool_wait_until(&p->state_cond, &p->mu, until);
    }
    int remaining = p->in_use.count;
    bool last = agec__pool_unref_locked(p);
    pthread_mutex_unlock(&p->mu);
    cancel_jobs_finish(&jobs, deadline);
    if (last)
        agec__pool_free(p);
    if (remaining > 0)
        return agec__error_set(err, AGEC_ERR_TIMEOUT,
                               "%d connection(s) still borrowed at the drain deadline (%d ms): "
                               "their queries were cancelled; each is closed when released",
                               remaining, drain_timeout_ms);
    return AGEC_OK;
}
