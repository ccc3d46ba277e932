/* Cancel requests that cannot hold up the caller (see pgconn.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "common/error_internal.h"
#include "session/clock.h"
#include "session/pqerror.h"

#include "session/pgconn.h"

struct agec__cancel_key {
    PGcancel *cancel; /* immutable; PQcancel only reads it, from any thread */
    atomic_int refs;
    /* Requests started on this key and not finished: a connection may run
     * nothing new while one is in flight (agec__cancel_key_settle). */
    atomic_int inflight;
    pthread_mutex_t mu;  /* only for waiting on `idle` */
    pthread_cond_t idle; /* on CLOCK_MONOTONIC; broadcast when inflight drops to 0 */
};

struct agec__cancel_job {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; signalled when done */
    agec__cancel_key *key;
    bool done;     /* [mu] PQcancel returned */
    bool sent;     /* [mu] ... and said it succeeded */
    char why[256]; /* [mu] libpq's reason when it did not */
    int refs;      /* [mu] the caller's and the thread's */
};

static bool cond_init_mono(pthread_cond_t *cond)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    bool ok =
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    return ok;
}

/* Initialise a mutex and a monotonic condition variable; false on failure
 * (nothing to destroy then). */
static bool sync_init(pthread_mutex_t *mu, pthread_cond_t *cond)
{
    if (!cond_init_mono(cond))
        return false;
    if (pthread_mutex_init(mu, NULL) != 0) {
        pthread_cond_destroy(cond);
        return false;
    }
    return true;
}

agec__cancel_key *agec__cancel_key_make(PGconn *pg)
{
    agec__cancel_key *k = malloc(sizeof *k);
    if (k == NULL)
        return NULL;
    k->cancel = PQgetCancel(pg);
    if (k->cancel == NULL || !sync_init(&k->mu, &k->idle)) {
        PQfreeCancel(k->cancel);
        free(k);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    atomic_init(&k->inflight, 0);
    return k;
}

bool agec__cancel_key_busy(agec__cancel_key *k)
{
    return k != NULL && atomic_load_explicit(&k->inflight, memory_order_acquire) > 0;
}

bool agec__cancel_key_settle(agec__cancel_key *k, int64_t deadline_us)
{
    if (!agec__cancel_key_busy(k))
        return true;
    struct timespec at = agec__timespec_at(deadline_us);
    pthread_mutex_lock(&k->mu);
    while (atomic_load_explicit(&k->inflight, memory_order_acquire) > 0) {
        if (deadline_us == AGEC__NEVER)
            pthread_cond_wait(&k->idle, &k->mu);
        else if (pthread_cond_timedwait(&k->idle, &k->mu, &at) != 0 &&
                 agec__now_us() >= deadline_us)
            break;
    }
    bool settled = atomic_load_explicit(&k->inflight, memory_order_acquire) == 0;
    pthread_mutex_unlock(&k->mu);
    return settled;
}

static agec__cancel_key *key_ref(agec__cancel_key *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void agec__cancel_key_unref(agec__cancel_key *k)
{
    if (k == NULL || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    PQfreeCancel(k->cancel);
    pthread_cond_destroy(&k->idle);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

static void job_unref(agec__cancel_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    agec__cancel_key_unref(j->key);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void *job_main(void *arg)
{
    agec__cancel_job *j = arg;
    char buf[256];
    buf[0] = '\0';
    /* Blocks while nothing answers. */
    bool sent = PQcancel(j->key->cancel, buf, (int)sizeof buf) != 0;
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->sent = sent;
    if (!sent)
        agec__redact_conninfo(buf, j->why, sizeof j->why);
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
    agec__cancel_key *k = j->key;
    pthread_mutex_lock(&k->mu);
    if (atomic_fetch_sub_explicit(&k->inflight, 1, memory_order_acq_rel) == 1)
        pthread_cond_broadcast(&k->idle);
    pthread_mutex_unlock(&k->mu);
    job_unref(j);
    return NULL;
}

agec__cancel_job *agec__cancel_start_key(agec__cancel_key *key)
{
    if (key == NULL)
        return NULL;
    agec__cancel_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    if (!sync_init(&j->mu, &j->cond)) {
        free(j);
        return NULL;
    }
    j->key = key_ref(key);
    j->refs = 2;
    atomic_fetch_add_explicit(&key->inflight, 1, memory_order_acq_rel);
    pthread_attr_t attr;
    pthread_t t;
    bool started = pthread_attr_init(&attr) == 0;
    if (started) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, job_main, j) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        atomic_fetch_sub_explicit(&key->inflight, 1, memory_order_acq_rel);
        j->refs = 1;
        job_unref(j);
        return NULL;
    }
    return j;
}

bool agec__cancel_done(agec__cancel_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

void agec__cancel_release(agec__cancel_job *j)
{
    if (j != NULL)
        job_unref(j);
}

bool agec__cancel_wait(agec__cancel_job *j, int64_t deadline_us)
{
    if (j == NULL)
        return true;
    struct timespec at = agec__timespec_at(deadline_us);
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        if (deadline_us == AGEC__NEVER)
            pthread_cond_wait(&j->cond, &j->mu);
        else if (pthread_cond_timedwait(&j->cond, &j->mu, &at) != 0 && !j->done &&
                 agec__now_us() >= deadline_us)
            break;
    }
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

agec_status agec__cancel_result(agec__cancel_job *j, agec_error *err)
{
    pthread_mutex_lock(&j->mu);
    agec_status st = AGEC_OK;
    if (!j->done)
        st = agec__error_set(err, AGEC_ERR_TIMEOUT, "cancel request not answered yet");
    else if (!j->sent)
        st = agec__error_set(err, AGEC_ERR_UNREACHABLE, "cancel request failed: %s", j->why);
    pthread_mutex_unlock(&j->mu);
    return st;
}
