/*
 * Issue 10, throughput under contention: the two mechanisms of the
 * acquire/release path that keep a busy pool at the speed of dedicated
 * connections, on PostgreSQL 15 (public API only), each with min = 0 and
 * min > 0:
 *  - thread affinity: an acquire takes the connection its own thread
 *    released last, not the one another thread released after it (the head
 *    of the idle list), so thread / server-process pairs stay put;
 *  - wake on miss: a release whose thread has come straight back twice
 *    defers the waiter's wake-up (counted in wakeups_deferred); if the
 *    thread then does not come back, the waiter is still served within a
 *    bound (the maintenance thread's 1 ms tick), not at its timeout.
 *    (Without the tick it waits out its 10 s timeout: the test fails.)
 *  - give-back: a connection handed to a starving waiter goes back to the
 *    thread it was taken from once the phase is over, so the threads that
 *    ran before a fairness phase run after it, on their own connections.
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include "test_pool_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Wait until *flag == want, at most timeout_ms. */
static bool wait_flag(atomic_int *flag, int want, int timeout_ms)
{
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    while (atomic_load(flag) != want) {
        if (agec_test_now_ms() > deadline)
            return false;
        sched_yield();
    }
    return true;
}

static int conn_pid(agec_conn *c)
{
    return PQbackendPID(agec_conn_pgconn(c));
}

/* ---- thread affinity ------------------------------------------------------ */

typedef struct other {
    agec_pool *p;
    atomic_int stage; /* 1: holds its connection, 2: may release, 3: released */
    int pid;
} other;

static void *other_main(void *arg)
{
    other *o = arg;
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_acquire_timeout(o->p, 5000, &c, &err) != AGEC_OK) {
        fprintf(stderr, "other: acquire: %s\n", err.message);
        atomic_store(&o->stage, -1);
        return NULL;
    }
    o->pid = conn_pid(c);
    atomic_store(&o->stage, 1);
    if (!wait_flag(&o->stage, 2, 10000))
        fprintf(stderr, "other: never told to release\n");
    agec_conn_release(c);
    atomic_store(&o->stage, 3);
    return NULL;
}

static void affinity(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "affinity", app, NULL);
    cfg.max = 2;
    cfg.min = min;
    cfg.validate_idle_ms = 60000;
    agec_pool *p = pool_open_ok(&cfg);
    for (int round = 0; round < 5; round++) {
        agec_conn *mine = NULL;
        assert_int_equal(agec_pool_acquire_timeout(p, 5000, &mine, NULL), AGEC_OK);
        int my_pid = conn_pid(mine);
        other o = { .p = p, .pid = 0 };
        atomic_init(&o.stage, 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, other_main, &o), 0);
        assert_true(wait_flag(&o.stage, 1, 10000));
        assert_int_not_equal(o.pid, my_pid);
        /* Ours goes back first, the other thread's after it: the other's
         * is now the most recently used, at the head of the idle list. */
        agec_conn_release(mine);
        atomic_store(&o.stage, 2);
        assert_true(wait_flag(&o.stage, 3, 10000));
        pthread_join(th, NULL);
        assert_int_equal(pool_stats(p).idle, 2);
        assert_int_equal(agec_pool_acquire_timeout(p, 5000, &mine, NULL), AGEC_OK);
        assert_int_equal(conn_pid(mine), my_pid); /* ours again, not the head */
        agec_conn_release(mine);
    }
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
}

static void test_affinity(void **state)
{
    (void)state;
    affinity(0);
    affinity(2);
}

/* ---- wake on miss --------------------------------------------------------- */

typedef struct waiter_run {
    agec_pool *p;
    atomic_int tid;
    atomic_int got; /* set before it releases: seen by whoever acquires next */
    atomic_int done;
    int64_t served_ms;
    agec_status st;
} waiter_run;

static void *waiter_main(void *arg)
{
    waiter_run *w = arg;
    agec_conn *c = NULL;
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
    w->st = agec_pool_acquire_timeout(w->p, 3000, &c, NULL);
    w->served_ms = agec_test_now_ms();
    atomic_store(&w->got, 1);
    if (w->st == AGEC_OK)
        agec_conn_release(c);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Wait until thread tid of this process sleeps ('S' in /proc): a waiter
 * that was woken and found nothing has gone back to sleep, so it holds no
 * wake-up any more. */
static bool wait_thread_sleeps(int tid, int timeout_ms)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    for (;;) {
        FILE *f = fopen(path, "r");
        char buf[512] = "";
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
        if (rp != NULL && rp[1] == ' ' && rp[2] == 'S')
            return true;
        if (agec_test_now_ms() > deadline) {
            fprintf(stderr, "thread %d: %s\n", tid, buf[0] ? buf : "(gone)");
            return false;
        }
        sched_yield();
    }
}

#define WAKE_BOUND_MS 200 /* the tick is 1 ms; the rest is room for a loaded machine */
#define DEFERRALS 3       /* deferred releases to see */

static void deferred_wake_bounded(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "wake", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    cfg.fair_wait_ms = 60000; /* the waiter never starves: no direct hand-off */
    cfg.validate_idle_ms = 60000;
    agec_pool *p = pool_open_ok(&cfg);
    int deferred_seen = 0;
    for (int attempt = 0; attempt < 100 && deferred_seen < DEFERRALS; attempt++) {
        agec_conn *c = NULL;
        assert_int_equal(agec_pool_acquire_timeout(p, 10000, &c, NULL), AGEC_OK);
        waiter_run w = { .p = p, .served_ms = 0, .st = AGEC_OK };
        atomic_init(&w.done, 0);
        atomic_init(&w.tid, 0);
        atomic_init(&w.got, 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
        assert_true(pool_wait_waiting(p, 1, 10000));
        /* Straight back three times: the first two releases wake the
         * waiter (a thread is not expected back until it has come back
         * quickly twice), the third defers. The waiter may win one of
         * the first two; then this attempt proves nothing and we retry. */
        for (int i = 0; i < 3; i++) {
            agec_conn_release(c);
            assert_int_equal(agec_pool_acquire_timeout(p, 10000, &c, NULL), AGEC_OK);
        }
        if (atomic_load(&w.got) != 0) { /* it won a turn above: try again */
            agec_conn_release(c);
            pthread_join(th, NULL);
            continue;
        }
        /* A wake-up from the releases above that the waiter has not used
         * yet would serve it whatever the tick does: let it use it first. */
        assert_true(wait_thread_sleeps(atomic_load(&w.tid), 5000));
        uint64_t before = pool_stats(p).wakeups_deferred;
        bool waiter_waits = atomic_load(&w.done) == 0 && pool_stats(p).waiting == 1;
        agec_conn_release(c); /* and this thread does not come back */
        int64_t released = agec_test_now_ms();
        uint64_t after = pool_stats(p).wakeups_deferred;
        assert_true(wait_flag(&w.done, 1, 15000));
        pthread_join(th, NULL);
        assert_int_equal(w.st, AGEC_OK);
        if (waiter_waits && after == before + 1) {
            deferred_seen++;
            int64_t waited = w.served_ms - released;
            if (waited > WAKE_BOUND_MS)
                fail_msg("a deferred wake-up came %lld ms after the release (bound %d ms)",
                         (long long)waited, WAKE_BOUND_MS);
        }
    }
    assert_int_equal(deferred_seen, DEFERRALS);
    agec_pool_stats s = pool_stats(p);
    assert_int_equal(s.handoffs, 0); /* fair_wait_ms never reached */
    assert_int_equal(s.acquires, s.releases);
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
}

static void test_deferred_wake_bounded(void **state)
{
    (void)state;
    deferred_wake_bounded(0);
    deferred_wake_bounded(1);
}

/* ---- give-back ------------------------------------------------------------ */

typedef struct starver {
    agec_pool *p;
    atomic_int stage; /* 1: served by the hand-off, 2: released, acquiring again, 3: done */
    atomic_int *seq;  /* order in which acquires returned (shared with the owner) */
    int pid;          /* the server process of the connection it was handed */
    int again;        /* its place in that order the second time */
    agec_status st;
} starver;

static void *starver_main(void *arg)
{
    starver *s = arg;
    agec_conn *c = NULL;
    s->st = agec_pool_acquire_timeout(s->p, 10000, &c, NULL);
    if (s->st != AGEC_OK) {
        atomic_store(&s->stage, -1);
        return NULL;
    }
    s->pid = conn_pid(c);
    atomic_store(&s->stage, 1);
    /* The owner, whose connection this was, queues behind us. */
    if (!pool_wait_waiting(s->p, 1, 10000))
        fprintf(stderr, "starver: the owner never queued\n");
    agec_conn_release(c);
    atomic_store(&s->stage, 2);
    s->st = agec_pool_acquire_timeout(s->p, 10000, &c, NULL); /* straight back */
    s->again = atomic_fetch_add(s->seq, 1);
    if (s->st == AGEC_OK)
        agec_conn_release(c);
    atomic_store(&s->stage, 3);
    return NULL;
}

#define GIVEBACK_FAIR_MS 150

/* The owner holds the only connection; a second thread starves for it and
 * is handed it on the owner's release; the owner comes straight back and
 * queues. When the starver releases (the owner has waited a few ms: not
 * starving), the connection goes back to the owner, not to the starver
 * coming straight back as it would by barging: the owner's acquire returns
 * first, on its own server process. (Without give-back the starver barges
 * in first nearly every time.) */
static void give_back(int min)
{
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "giveback", app, NULL);
    cfg.max = 1;
    cfg.min = min;
    cfg.fair_wait_ms = GIVEBACK_FAIR_MS;
    cfg.validate_idle_ms = 60000;
    agec_pool *p = pool_open_ok(&cfg);
    for (int round = 0; round < 3; round++) {
        atomic_int seq;
        atomic_init(&seq, 0);
        agec_conn *mine = NULL;
        assert_int_equal(agec_pool_acquire_timeout(p, 5000, &mine, NULL), AGEC_OK);
        int my_pid = conn_pid(mine);
        starver s = { .p = p, .seq = &seq, .pid = 0, .again = -1, .st = AGEC_OK };
        atomic_init(&s.stage, 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, starver_main, &s), 0);
        assert_true(pool_wait_waiting(p, 1, 10000));
        /* Let it starve: what is waited for here is time itself. */
        int64_t starving_at = agec_test_now_ms() + GIVEBACK_FAIR_MS + 20;
        while (agec_test_now_ms() < starving_at) {
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 2000000 };
            nanosleep(&ts, NULL);
        }
        agec_conn_release(mine); /* to the starving waiter */
        assert_true(wait_flag(&s.stage, 1, 10000));
        assert_int_equal(s.pid, my_pid);
        assert_int_equal(agec_pool_acquire_timeout(p, 10000, &mine, NULL), AGEC_OK);
        int mine_at = atomic_fetch_add(&seq, 1);
        assert_int_equal(conn_pid(mine), my_pid);
        assert_int_equal(mine_at, 0); /* before the starver's second acquire */
        agec_conn_release(mine);
        assert_true(wait_flag(&s.stage, 3, 15000));
        pthread_join(th, NULL);
        assert_int_equal(s.st, AGEC_OK);
        assert_int_equal(s.again, 1);
        agec_pool_stats st = pool_stats(p);
        assert_int_equal(st.handoffs, (uint64_t)round + 1);
        assert_int_equal(st.givebacks, (uint64_t)round + 1);
    }
    assert_int_equal(agec_pool_close(p, 5000, NULL), AGEC_OK);
}

static void test_give_back(void **state)
{
    (void)state;
    give_back(0);
    give_back(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_affinity),
        cmocka_unit_test(test_deferred_wake_bounded),
        cmocka_unit_test(test_give_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
