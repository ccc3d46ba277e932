/*
 * Issue 22, item 13: the wake-on-miss accounting (PostgreSQL 15; white-box:
 * the pool's lock and fields are used to stop time at one interleaving).
 *
 * A thread whose deferring release was ended by the maintenance thread's
 * tick comes back for a connection. Another thread's release has deferred a
 * wake-up since. The returning thread must not un-count that deferral (it
 * is not its own): the other thread's connection would then count as free
 * for dispatch, and the waiter it was kept from would be woken for it: the
 * futile wake-up wake on miss exists to avoid. (Before defer_gen, the
 * returning thread decremented `deferred_wakeups` whenever it was > 0.)
 *
 * The 1 ms tick is frozen (defer_tick_at = 0) while the test looks, and the
 * waiter made starving so that the returning thread may not take the idle
 * connection (taking it would hide the count: a taken idle connection ends
 * the deferral anyway).
 */
#include "test_pool_util.h"

#include <stdatomic.h>
#include <string.h>

#include "pool/pool_internal.h"
#include "pool/wake.h"
#include "session/clock.h"

typedef struct queued {
    agec_pool *p;
    agec_status st;
} queued;

static void *queued_main(void *arg)
{
    queued *q = arg;
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    q->st = agec_pool_acquire_timeout(q->p, 20000, &c, &err);
    if (q->st == AGEC_OK)
        agec_conn_release(c);
    return NULL;
}

/* Lock p with its maintenance thread at rest (not working outside the lock:
 * a release defers nothing then). */
static void lock_with_maint_at_rest(agec_pool *p)
{
    int64_t deadline = agec_test_now_ms() + 5000;
    pthread_mutex_lock(&p->mu);
    while (p->maint_busy) {
        pthread_mutex_unlock(&p->mu);
        if (agec_test_now_ms() > deadline)
            fail_msg("the maintenance thread stayed busy for 5 s");
        agec_test_sleep_ms(1);
        pthread_mutex_lock(&p->mu);
    }
}

static void test_return_keeps_others_deferral(void **state)
{
    (void)state;
    agec_pool_config cfg;
    char app[64];
    pool_test_config(&cfg, "defer", app, NULL);
    cfg.min = 0;
    cfg.max = 1;
    cfg.fair_wait_ms = 60000; /* nobody starves unless the test says so */
    cfg.validate_idle_ms = -1;
    agec_pool *p = pool_open_ok(&cfg);
    agec_conn *c = NULL;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");

    queued w = { p, AGEC_ERR_SYSTEM };
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, queued_main, &w), 0);
    assert_true(pool_wait_waiting(p, 1, 5000));

    lock_with_maint_at_rest(p);
    /* This thread's own deferral (an earlier release) was ended by a tick. */
    uint64_t ours = p->defer_gen;
    p->defer_gen++;
    /* Another thread releases c, back at once twice before: it defers the
     * waiter's wake-up. (Its release note is this thread's for a moment.) */
    agec__t_release = (release_note){ .pool = (uintptr_t)p, .quick = 3 };
    agec__pool_make_available_locked(p, c, agec__now_us());
    assert_int_equal(p->deferred_wakeups, 1);
    assert_int_equal(p->idle.count, 1);
    (void)agec__pool_unref_locked(p); /* the borrow's reference, as a release drops it */
    p->defer_tick_at = 0;             /* time stands still: the tick does not end it */
    /* This thread again: it released before that, deferred, and is back. */
    agec__t_release = (release_note){ .pool = (uintptr_t)p,
                                      .at_us = agec__now_us(),
                                      .quick = 3,
                                      .pending = true,
                                      .wake_deferred = true,
                                      .defer_gen = ours };
    /* The waiter starves: only it may take the idle connection. */
    p->wait_head->enq_us = agec__now_us() - p->fair_wait_us - 1000000;
    pthread_mutex_unlock(&p->mu);

    agec_conn *mine = NULL;
    err = (agec_error)AGEC_ERROR_INIT;
    agec_status st = agec_pool_acquire_timeout(p, 0, &mine, &err);

    pthread_mutex_lock(&p->mu);
    int deferred = p->deferred_wakeups;
    /* Let time go on: the tick ends the deferral and wakes the waiter. */
    p->defer_tick_at = agec__now_us();
    agec__maint_poke_locked(p, 0);
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(pthread_join(wt, NULL), 0);
    assert_int_equal(agec_pool_close(p, 2000, NULL), AGEC_OK);

    assert_int_equal(st, AGEC_ERR_POOL_EXHAUSTED);
    assert_null(mine);
    if (deferred != 1)
        fail_msg("a thread back from a deferral the tick had already ended un-counted "
                 "another thread's deferred wake-up (deferred_wakeups %d, want 1)",
                 deferred);
    assert_int_equal(w.st, AGEC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_return_keeps_others_deferral),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
