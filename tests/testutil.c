#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *require_env(const char *name, const char *what)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "FATAL: %s is not set: this test needs the %s.\n"
                "Run the suite through `make check` (or scripts/with-test-servers),\n"
                "which starts the servers and exports their addresses.\n",
                name, what);
        fail_msg("%s not set", name);
    }
    return v;
}

const char *agec_test_pg_conninfo(void)
{
    return require_env("AGEC_TEST_PG", "throwaway PostgreSQL 15 test server");
}

const char *agec_test_age_conninfo(void)
{
    return require_env("AGEC_TEST_AGE", "Apache AGE (PGlite) test server");
}

const char *agec_test_pg_dir(void)
{
    return require_env("AGEC_TEST_PG_DIR", "PostgreSQL 15 test server's directory");
}

int64_t agec_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agec_test_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

void agec_test_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

bool agec_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (agec_test_now_ms() >= deadline)
            return cond(arg);
        agec_test_sleep_ms(5);
    }
}

void agec_test_must(agec_status st, const agec_error *err, const char *what)
{
    if (st != AGEC_OK)
        fail_msg("%s: %s [%s] %s (hint: %s)", what, agec_status_name(st), err->sqlstate,
                 err->message, err->hint);
}
