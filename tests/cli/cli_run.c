/* Running the agec binary from the CLI tests (cli_run.h). */
#include "cli_run.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Read both pipes until EOF, with a deadline. */
static void drain(int fo, int fe, run_out *r, int64_t deadline)
{
    size_t no = 0, ne = 0;
    struct pollfd p[2] = { { fo, POLLIN, 0 }, { fe, POLLIN, 0 } };
    int open = 2;
    while (open > 0 && agec_test_now_ms() < deadline) {
        if (poll(p, 2, 200) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *buf = i == 0 ? r->out : r->err;
            size_t *n = i == 0 ? &no : &ne;
            size_t cap = i == 0 ? sizeof r->out : sizeof r->err;
            char tmp[4096];
            ssize_t k = read(p[i].fd, tmp, sizeof tmp);
            if (k <= 0) {
                p[i].fd = -1;
                open--;
                continue;
            }
            size_t take = (size_t)k < cap - 1 - *n ? (size_t)k : cap - 1 - *n;
            memcpy(buf + *n, tmp, take);
            *n += take;
            buf[*n] = '\0';
        }
    }
}

/* In a forked child: replace it with the agec binary and args (NULL-
 * terminated, at most 62). Never returns. */
void exec_cli(const char *const *args)
{
    const char *argv[64] = { AGEC_CLI_PATH };
    int n = 1;
    for (; args[n - 1] != NULL && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(AGEC_CLI_PATH, (char *const *)argv);
    _exit(127);
}

/* Run agec with args (NULL-terminated) and optional stdin text. */
run_out *run_cli(const char *stdin_text, const char *const *args)
{
    run_out *r = calloc(1, sizeof *r);
    int in[2], out[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    int64_t t0 = agec_test_now_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        exec_cli(args);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (stdin_text != NULL) {
        ssize_t w = write(in[1], stdin_text, strlen(stdin_text));
        (void)w;
    }
    close(in[1]);
    drain(out[0], err[0], r, t0 + 60000);
    close(out[0]);
    close(err[0]);
    int st;
    waitpid(pid, &st, 0);
    r->ms = agec_test_now_ms() - t0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

void expect_status(run_out *r, int want)
{
    if (r->status != want)
        fail_msg("exit %d, want %d\nstdout: %s\nstderr: %s", r->status, want, r->out, r->err);
}
