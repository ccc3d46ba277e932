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
#include "agec/pool.h"
#include "testbase.h"

/* Connection string of the throwaway PostgreSQL 15 server (AGEC_TEST_PG).
 * A test that calls this without the variable set fails loudly: it never skips. */
const char *agec_test_pg_conninfo(void);

/* Connection string of the Apache AGE server under test (AGEC_TEST_AGE): the
 * PGlite server, or native AGE 1.6 on PG15 when the test runs as NAME_native
 * (tests/on-native-age points AGEC_TEST_AGE there). Same rule. */
const char *agec_test_age_conninfo(void);

/* True when the AGE server under test is native AGE on PostgreSQL 15
 * (AGEC_TEST_AGE_KIND=native), false for PGlite (AGE 1.7 on PostgreSQL 18,
 * WASM, one shared session, no COPY). For the few assertions whose branch
 * differs by server; every other assertion is the same on both. */
bool agec_test_age_native(void);

/* Data directory of the PG15 server (AGEC_TEST_PG_DIR), for stop/start tests. */
const char *agec_test_pg_dir(void);

/* Fail the test with the error's code, SQLSTATE, message and hint unless
 * st is AGEC_OK. */
void agec_test_must(agec_status st, const agec_error *err, const char *what);

/* Borrow a connection from p (its acquire timeout), failing the test if
 * none comes. The caller releases it. */
agec_conn *agec_test_acquire(agec_pool *p);

/* Run one SQL statement on c (no parameters), failing the test on error;
 * the result is dropped. */
void agec_test_sql(agec_conn *c, const char *text);

/* Drop graph g, its labels and data, when it exists (failing the test on
 * error); agec_test_graph_fresh then creates it empty. */
void agec_test_graph_drop(agec_conn *c, const char *g);
void agec_test_graph_fresh(agec_conn *c, const char *g);

/* A pool of `max` connections on the AGE test server (AGEC_TEST_AGE:
 * PGlite, or native AGE for a _native twin) with age_mode LOAD, events
 * ignored and a 10 s acquire timeout; the test fails if it cannot open.
 * The caller closes the pool. */
agec_pool *agec_test_age_pool(int max);

/* A pool of one connection (age_mode off) on a fresh database `dbname` of
 * the PG15 test server (dropped first if it exists), holding the stand-in
 * for AGE's catalog of fakeage/stub_catalog.h. `admin` is a pool on the
 * server's default database. The caller closes the pool. */
agec_pool *agec_test_stub_age_pool(agec_pool *admin, const char *dbname);

/* A pool on conninfo without AGE (AGEC_AGE_OFF), `max` connections, events
 * ignored, other settings the defaults; fails the test if it cannot open. */
agec_pool *agec_test_plain_pool(const char *conninfo, int max);

/* Send this process's stderr (fd 2) to a temporary file, e.g. to check what
 * the default event logger prints; agec_test_stderr_end restores it and
 * returns what was written (malloc'd, NUL-terminated; the caller frees). */
typedef struct agec_test_capture {
    int fd, saved;
    char path[64];
} agec_test_capture;
void agec_test_stderr_begin(agec_test_capture *cap);
char *agec_test_stderr_end(agec_test_capture *cap);

/* A caller thread for mux tests (pthread start routine, arg: the struct):
 * `stmts` statements through agec_mux_sql with a deadline of timeout_ms,
 * each `SELECT $1::int + 1` on a value unique to (id, i), or, when
 * i % fail_every == fail_every / 2, `SELECT 1 / ($1::int * 0)` (22012).
 * Counts its own results and its own errors; anything else is bad (and
 * printed): a wrong value is an answer that belonged to another caller.
 * No cmocka assertion inside (it runs on its own thread). */
struct agec_mux;
typedef struct agec_test_mux_caller {
    struct agec_mux *mux;
    int id, stmts, fail_every, timeout_ms;
    int ok, own_errors, bad;
} agec_test_mux_caller;
void *agec_test_mux_caller_run(void *arg);
/* How many of `stmts` statements fail by the rule above. */
int agec_test_mux_failing(int stmts, int fail_every);

/* A cmocka test table entry that runs f with *state pointing at the int n
 * (e.g. the pool's min), named "f_minN". Use inside the function that runs
 * the tests (the int lives in its scope). setup may be NULL. */
/* clang-format off */
#define AGEC_TEST_MIN(f, n, setup) { #f "_min" #n, f, setup, NULL, &(int){ n } }
/* clang-format on */

#endif
