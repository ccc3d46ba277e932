/*
 * Process-level helpers for tests, the fault load and the soak, with no test
 * framework behind them (bench/soak links them without cmocka): a monotonic
 * clock, sleeping, waiting on a condition with a deadline, and counting this
 * process's file descriptors and threads.
 */
#ifndef AGEC_TESTBASE_H
#define AGEC_TESTBASE_H

#include <stdbool.h>
#include <stdint.h>

/* Monotonic clock in milliseconds. */
int64_t agec_test_now_ms(void);

/* Sleep for ms milliseconds (only for pacing load, never as synchronisation). */
void agec_test_sleep_ms(int ms);

/* Poll cond(arg) every few milliseconds until it returns true or timeout_ms
 * passes; returns the last result. Waits on a condition with a deadline
 * instead of sleeping for a guessed time. */
bool agec_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* Number of open file descriptors of this process. */
int agec_test_fd_count(void);

/* Number of threads of this process (entries of /proc/self/task). */
int agec_test_thread_count(void);

#endif
