/* Cancel requests that cannot hold up the caller (see session.h). */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "session/clock.h"

#include "session/session.h"

struct agec__cancel_job {
    pthread_mutex_t mu;
    PGcancel *cancel; /* the job's own handle: the connection may be gone when it ends */
    bool done;        /* [mu] PQcancel returned */
    int refs;         /* [mu] the caller's and the thread's */
};

static void job_unref(agec__cancel_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    PQfreeCancel(j->cancel);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void *job_main(void *arg)
{
    agec__cancel_job *j = arg;
    char buf[256];
    (void)PQcancel(j->cancel, buf, (int)sizeof buf); /* blocks while nothing answers */
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
    return NULL;
}

agec__cancel_job *agec__cancel_start(PGconn *pg)
{
    agec__cancel_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->cancel = PQgetCancel(pg);
    if (j->cancel == NULL) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
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
    /* Rare path (a statement that was cancelled): poll every millisecond. */
    while (!agec__cancel_done(j)) {
        if (agec__now_us() >= deadline_us)
            return false;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return true;
}
