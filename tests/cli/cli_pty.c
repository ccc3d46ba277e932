/* The agec shell through a pseudo-terminal (see cli_pty.h). */
#define _DEFAULT_SOURCE /* forkpty */
#include "cli_pty.h"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"

void pty_start(pty_session *s, const char *const *args)
{
    memset(s, 0, sizeof *s);
    s->pid = forkpty(&s->fd, NULL, NULL, NULL);
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        setenv("TERM", "dumb", 1);
        setenv("HOME", "/tmp", 1);
        exec_cli(args);
    }
}

/* Read until `needle` appears in the output after `from`, or fail. */
size_t pty_expect(pty_session *s, size_t from, const char *needle, int timeout_ms)
{
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    for (;;) {
        char *hit = strstr(s->buf + from, needle);
        if (hit != NULL)
            return (size_t)(hit - s->buf) + strlen(needle);
        int64_t left = deadline - agec_test_now_ms();
        if (left <= 0)
            fail_msg("shell: '%s' not seen within %d ms; screen:\n%s", needle, timeout_ms,
                     s->buf + from);
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, (int)left) > 0) {
            ssize_t k = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
            if (k > 0) {
                s->len += (size_t)k;
                s->buf[s->len] = '\0';
            } else {
                fail_msg("shell exited early; screen:\n%s", s->buf);
            }
        }
    }
}

void pty_send(pty_session *s, const char *text)
{
    ssize_t w = write(s->fd, text, strlen(text));
    assert_int_equal((size_t)w, strlen(text));
}

int pty_finish(pty_session *s)
{
    int st = 0;
    int64_t deadline = agec_test_now_ms() + 10000;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (agec_test_now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        char tmp[4096];
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, 50) > 0 && read(s->fd, tmp, sizeof tmp) <= 0)
            agec_test_sleep_ms(5);
    }
    close(s->fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
