/* Running the agec binary from the CLI tests: stdin text in, exit status,
 * stdout, stderr and wall time out. */
#ifndef AGEC_TEST_CLI_RUN_H
#define AGEC_TEST_CLI_RUN_H

#include "testutil.h"

typedef struct run_out {
    int status; /* exit code, or 128+signal */
    char out[65536];
    char err[16384];
    int64_t ms;
} run_out;

/* In a forked child: replace it with the agec binary and args (NULL-
 * terminated, at most 62). Never returns. */
void exec_cli(const char *const *args);

/* Run agec with args (NULL-terminated) and optional stdin text; free() the
 * result. Waits at most 60 s for the output. */
run_out *run_cli(const char *stdin_text, const char *const *args);

#define RUN(stdin_text, ...) run_cli((stdin_text), (const char *const[]){ __VA_ARGS__, NULL })

/* Fail the test, showing both outputs, unless r exited with want. */
void expect_status(run_out *r, int want);

#endif
