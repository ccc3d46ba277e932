/*
 * The mux's event-loop side (fd, dispatch, callbacks), statistics, and
 * shutdown/close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/error_internal.h"
#include "mux/mux_internal.h"
#include "session/clock.h"

int agec_mux_fd(agec_mux *mux)
{
    return mux ? mux->epfd : -1;
}

/* Run the callbacks due (no lock held while one runs). */
static int run_due(agec_mux *m)
{
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        agec_mux_op *op = m->due_head;
        if (op != NULL) {
            m->due_head = op->dnext;
            if (m->due_head == NULL)
                m->due_tail = NULL;
        }
        pthread_mutex_unlock(&m->mu);
        if (op == NULL)
            return n;
        agec_result *res = op->res;
        op->res = NULL;
        op->fn(op->st, res, &op->err, op->user);
        agec__op_unref(op);
        n++;
    }
}

/* One non-blocking pass over every lane whose role is free. */
static void drive_all(agec_mux *m)
{
    for (int i = 0; i < m->nlanes; i++) {
        mux_lane *l = &m->lanes[i];
        pthread_mutex_lock(&l->mu);
        bool work = l->npending + l->ninflight > 0 || l->draining;
        bool drive = work && agec__lane_try_role(l);
        pthread_mutex_unlock(&l->mu);
        if (drive)
            agec__lane_drive(l, NULL, AGEC__NEVER);
    }
}

int agec_mux_dispatch(agec_mux *mux, int timeout_ms)
{
    if (mux == NULL)
        return -1;
    agec_mux *m = mux;
    atomic_fetch_add(&m->inside, 1);
    int ran = 0;
    if (!atomic_load(&m->closed)) {
        struct epoll_event evs[8];
        int r = epoll_wait(m->epfd, evs, 8, timeout_ms < 0 ? -1 : timeout_ms);
        (void)r;
        uint64_t v;
        ssize_t n = read(m->evfd, &v, sizeof v);
        (void)n;
        drive_all(m);
        ran = run_due(m);
        /* What the callbacks submitted went into the queues: send it now,
         * all in one pass (and run what completed meanwhile). */
        if (ran > 0) {
            drive_all(m);
            ran += run_due(m);
        }
    } else {
        ran = run_due(m);
    }
    if (atomic_fetch_sub(&m->inside, 1) == 1 && atomic_load(&m->closed)) {
        pthread_mutex_lock(&m->mu);
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
    return ran;
}

int agec_mux_next_timeout_ms(agec_mux *mux)
{
    if (mux == NULL)
        return -1;
    int64_t d = AGEC__NEVER;
    for (int i = 0; i < mux->nlanes; i++) {
        mux_lane *l = &mux->lanes[i];
        pthread_mutex_lock(&l->mu);
        d = agec__min64(d, agec__lane_next_deadline(l));
        pthread_mutex_unlock(&l->mu);
    }
    return agec__poll_ms(d, agec__now_us());
}

void agec_mux_stats_get_sized(agec_mux *mux, agec_mux_stats *out, size_t size)
{
    if (mux == NULL || out == NULL || size < sizeof(size_t))
        return;
    agec_mux_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = size < sizeof s ? size : sizeof s;
    s.submitted = atomic_load(&mux->submitted);
    s.completed = atomic_load(&mux->completed);
    s.timeouts = atomic_load(&mux->timeouts);
    s.cancels = atomic_load(&mux->cancels);
    s.replaced = atomic_load(&mux->replaced);
    s.batches = atomic_load(&mux->batches);
    s.role_handoffs = atomic_load(&mux->handoffs);
    s.outstanding = atomic_load(&mux->outstanding);
    s.unnamed_fallback = atomic_load(&mux->unnamed);
    s.resent = atomic_load(&mux->resent);
    s.pooler = atomic_load(&mux->pooled);
    s.round_trip_us = -1;
    for (int i = 0; i < mux->nlanes; i++) {
        mux_lane *l = &mux->lanes[i];
        pthread_mutex_lock(&l->mu);
        int64_t rtt = agec__lane_rtt(l);
        pthread_mutex_unlock(&l->mu);
        if (rtt != AGEC__NEVER && (s.round_trip_us < 0 || rtt < s.round_trip_us))
            s.round_trip_us = rtt;
    }
    memcpy(out, &s, s.struct_size);
}

agec_status agec_mux_shutdown(agec_mux *mux, agec_error *err)
{
    if (mux == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "mux must not be NULL");
    agec_mux *m = mux;
    pthread_mutex_lock(&m->mu);
    bool again = m->shut;
    m->shut = true;
    pthread_mutex_unlock(&m->mu);
    if (again)
        return AGEC_OK;
    atomic_store(&m->closed, true);
    /* Complete what is queued or in flight (waiters wake), wake drivers. */
    for (int i = 0; i < m->nlanes; i++) {
        mux_lane *l = &m->lanes[i];
        pthread_mutex_lock(&l->mu);
        l->sleeping = true; /* kick even a driver about to sleep */
        agec__lane_kick(l);
        pthread_mutex_unlock(&l->mu);
    }
    agec__mux_signal(m);
    /* Drivers see `closed` and leave; then nobody touches a connection. */
    pthread_mutex_lock(&m->mu);
    while (atomic_load(&m->drivers) > 0)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->nlanes; i++) {
        mux_lane *l = &m->lanes[i];
        pthread_mutex_lock(&l->mu);
        agec__lane_shutdown(l);
        pthread_mutex_unlock(&l->mu);
    }
    (void)run_due(m);
    pthread_mutex_lock(&m->mu);
    while (atomic_load(&m->inside) > 0)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    /* A callback of a thread that left just now may have been queued. */
    (void)run_due(m);
    return AGEC_OK;
}

void agec_mux_close(agec_mux *mux)
{
    if (mux == NULL)
        return;
    if (mux->lanes != NULL && mux->nlanes > 0 && !mux->shut)
        (void)agec_mux_shutdown(mux, NULL);
    for (int i = 0; i < mux->nlanes; i++) {
        mux_lane *l = &mux->lanes[i];
        if (l->kickfd >= 0)
            close(l->kickfd);
        pthread_mutex_destroy(&l->mu);
    }
    if (mux->epfd >= 0)
        close(mux->epfd);
    if (mux->evfd >= 0)
        close(mux->evfd);
    pthread_mutex_destroy(&mux->mu);
    pthread_cond_destroy(&mux->cv);
    free(mux->lanes);
    free(mux);
}
