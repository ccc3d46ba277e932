#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

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

void agec_test_must(agec_status st, const agec_error *err, const char *what)
{
    if (st != AGEC_OK)
        fail_msg("%s: %s [%s] %s (hint: %s)", what, agec_status_name(st), err->sqlstate,
                 err->message, err->hint);
}
