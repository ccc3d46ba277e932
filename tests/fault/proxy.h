/*
 * A small TCP proxy for fault injection: one thread with poll(), listening on
 * 127.0.0.1 (port 0: the kernel picks one), forwarding every accepted
 * connection to 127.0.0.1:<target>. The test (or bench/soak) changes its
 * behaviour at any time from another thread:
 *
 *   pass       forward both ways (the default)
 *   refuse     new connections are reset at once (existing ones keep going)
 *   stall      a black hole: accept and read, hold the bytes, forward nothing;
 *              back to pass delivers what was held
 *   latency    forward each chunk only N ms after it was read
 *   reset_all  reset (SO_LINGER 0 + close: RST) every connection, both sides
 *   cut_after  every connection open now is reset after N more bytes from the
 *              server (the first N are forwarded): a connection cut mid-result
 *
 * Every control call returns after the proxy thread has applied it, so a test
 * can rely on the new behaviour as soon as the call returns. Loopback only.
 * Thread-safe; not async-signal-safe.
 */
#ifndef AGEC_FAULT_PROXY_H
#define AGEC_FAULT_PROXY_H

#include <stddef.h>
#include <stdint.h>

typedef struct fproxy fproxy;

typedef enum fproxy_mode {
    FPROXY_PASS = 0,
    FPROXY_REFUSE = 1,
    FPROXY_STALL = 2,
} fproxy_mode;

/* Start a proxy to 127.0.0.1:target_port. NULL on failure (errno set). */
fproxy *fproxy_start(int target_port);
/* Start a proxy to the server of a libpq keyword conninfo (its port=, on
 * 127.0.0.1) and write to out (size n) that conninfo through the proxy (a
 * later port= wins in libpq). NULL when conninfo has no port=, out is too
 * small, or the proxy could not start. */
fproxy *fproxy_start_for(const char *conninfo, char *out, size_t n);
/* The port it listens on (127.0.0.1). */
int fproxy_port(const fproxy *p);
/* Stop the thread, close every socket, free. NULL is ignored. */
void fproxy_stop(fproxy *p);

void fproxy_set_mode(fproxy *p, fproxy_mode mode);
/* Delay forwarding by ms in both directions (0 = none). */
void fproxy_set_latency(fproxy *p, int ms);
/* Reset every open connection; returns how many pairs were reset. */
int fproxy_reset_all(fproxy *p);
/* Arm a cut on every open connection: reset after `bytes` more bytes from the
 * server. Returns how many connections were armed. */
int fproxy_cut_after(fproxy *p, int64_t bytes);

/* Counters. */
int fproxy_open_count(fproxy *p);    /* connection pairs open now */
uint64_t fproxy_accepted(fproxy *p); /* connections accepted since start */
uint64_t fproxy_cuts(fproxy *p);     /* connections reset by cut_after */

#endif
