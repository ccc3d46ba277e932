/* Cancel requests that cannot hold up the caller (see session.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "common/error_internal.h"
#include "session/clock.h"
#include "session/pqerror.h"

#include "session/session.h"

struct agec__cancel_key {
    PGcancel *cancel; /* immutable; PQcancel only reads it, from any thread */
    atomic_int refs;
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

agec__cancel_key *agec__cancel_key_make(PGconn *pg)
{
    agec__cancel_key *k = malloc(sizeof *k);
    if (k == NULL)
        return NULL;
    k->cancel = PQgetCancel(pg);
    if (k->cancel == NULL) {
        free(k);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    return k;
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
    job_unref(j);
    return NULL;
}

static bool init_sync(agec__cancel_job *j)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&j->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok)
        return false;
    if (pthread_mutex_init(&j->mu, NULL) != 0) {
        pthread_cond_destroy(&j->cond);
        return false;
    }
    return true;
}

agec__cancel_job *agec__cancel_start_key(agec__cancel_key *key)
{
    if (key == NULL)
        return NULL;
    agec__cancel_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    if (!init_sync(j)) {
        free(j);
        return NULL;
    }
    j->key = key_ref(key);
    j->refs = 2;
    pthread_attr_t attr;
    pthread_t t;
    bool started = pthread_attr_init(&attr) == 0;
    if (started) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, job_main, j) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        j->refs = 1;
        job_unref(j);
        return NULL;
    }
    return j;
}

agec__cancel_job *agec__cancel_start(PGconn *pg)
{
    agec__cancel_key *key = agec__cancel_key_make(pg);
    agec__cancel_job *j = agec__cancel_start_key(key);
    agec__cancel_key_unref(key); /* the job holds its own reference */
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
    struct timespec at = {
        .tv_sec = (time_t)(deadline_us / 1000000),
        .tv_nsec = (long)(deadline_us % 1000000) * 1000,
    };
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
