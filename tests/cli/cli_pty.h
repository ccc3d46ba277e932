/* Running the agec binary on a pseudo-terminal (forkpty), as a person at a
 * terminal would: what it prints is read back, keys are sent (Ctrl-C is
 * "\x03", Up is "\x1b[A"). */
#ifndef AGEC_TEST_CLI_PTY_H
#define AGEC_TEST_CLI_PTY_H

#include "testutil.h"

#include <sys/types.h>

typedef struct pty_session {
    pid_t pid;
    int fd;
    char buf[65536];
    size_t len;
} pty_session;

/* Start agec with args (NULL-terminated) on a new pseudo-terminal
 * (TERM=dumb, HOME=/tmp). */
void pty_start(pty_session *s, const char *const *args);
/* Read until `needle` appears in the output after offset `from`, or fail the
 * test; returns the offset just past it. */
size_t pty_expect(pty_session *s, size_t from, const char *needle, int timeout_ms);
/* Type text. */
void pty_send(pty_session *s, const char *text);
/* Wait (10 s at most, then kill) for agec to exit; its exit status. */
int pty_finish(pty_session *s);

#endif
