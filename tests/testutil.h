/*
 * Shared helpers for agec's tests. Include after <cmocka.h>'s prerequisites;
 * this header includes them itself.
 */
#ifndef AGEC_TESTUTIL_H
#define AGEC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agec/error.h"

/* Connection string of the throwaway PostgreSQL 15 server (AGEC_TEST_PG).
 * A test that calls this without the variable set fails loudly: it never skips. */
const char *agec_test_pg_conninfo(void);

/* Connection string of the PGlite Apache AGE server (AGEC_TEST_AGE). Same rule. */
const char *agec_test_age_conninfo(void);

/* Data directory of the PG15 server (AGEC_TEST_PG_DIR), for stop/start tests. */
const char *agec_test_pg_dir(void);

/* Monotonic clock in milliseconds. */
int64_t agec_test_now_ms(void);

/* Number of open file descriptors of this process. */
int agec_test_fd_count(void);

/* Poll cond(arg) every few milliseconds until it returns true or timeout_ms
 * passes; returns the last result. Waits on a condition with a deadline
 * instead of sleeping for a guessed time. */
bool agec_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* Sleep for ms milliseconds (only for pacing load, never as synchronisation). */
void agec_test_sleep_ms(int ms);

/* Fail the test with the error's code, SQLSTATE, message and hint unless
 * st is AGEC_OK. */
void agec_test_must(agec_status st, const agec_error *err, const char *what);

#endif
