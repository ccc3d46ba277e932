/* Closed connections whose server process has not exited yet: their slots
 * stay taken until it has (see pool_internal.h, "reap.c"). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/pool_internal.h"
#include "session/clock.h"

/* Past its deadline, one call reads at most this many chunks: a backend
 * left streaming (a big result, COPY TO STDOUT) cannot keep the caller
 * reading. */
#define REAP_READS_PAST_DEADLINE 8

/* After a Terminate message (or our end closing) the server process exits
 * and its socket closes last of all, after its pg_stat_activity entry is
 * gone: EOF here means the slot is really free. */
bool agec__reap_wait(int fd, int64_t deadline_us)
{
    char buf[4096];
    int late_reads = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
        int64_t now = agec__now_us();
        if (n > 0) {
            if (now >= deadline_us && ++late_reads >= REAP_READS_PAST_DEADLINE)
                return false;
            continue;
        }
        int ms = agec__poll_ms(deadline_us, now);
        if (ms == 0)
            return false;
        struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return true;
    }
}

void agec__reap_start_locked(agec_pool *p, agec_conn *c, int fd, int64_t until)
{
    /* A host that stopped answering (frozen, cut off) never acknowledges
     * our Terminate and FIN: let the kernel give up on the socket after
     * AGEC__REAP_TCP_GIVEUP_MS, which ends the watch (read fails). A
     * server process merely busy keeps its slot for as long as it runs:
     * its host acknowledges. Not a TCP socket (Unix): ignored. */
    unsigned int giveup = AGEC__REAP_TCP_GIVEUP_MS(p->cfg.c.connect_timeout_ms);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &giveup, sizeof giveup);
    c->reap_fd = fd;
    int64_t now = agec__now_us();
    c->reap_period = until > now + 1000 ? until - now : 1000;
    c->reap_until = now + c->reap_period;
    c->reap_gone = false;
    c->reap_probe = NULL;
    p->nreaping++;
    /* The first look at once (the maintenance thread, outside the lock). */
    p->reap_at = 0;
    agec__maint_poke_locked(p, 0);
}

static void reap_free_locked(agec_pool *p, agec_conn *c)
{
    close(c->reap_fd);
    c->reap_fd = -1;
    p->nreaping--;
    agec__cancel_release(c->reap_probe);
    c->reap_probe = NULL;
    agec__cancel_key_unref(c->cancel);
    c->cancel = NULL;
    agec__pool_closed_locked(p, c);
    free(c);
}

agec_conn *agec__reap_due_locked(agec_pool *p, int64_t now, int64_t *next)
{
    if (p->nreaping == 0)
        return NULL;
    if (now < p->reap_at) {
        *next = agec__min64(*next, p->reap_at);
        return NULL;
    }
    agec_conn *batch = NULL;
    for (agec_conn *c = p->closing_list.head; c != NULL; c = c->next) {
        if (c->reap_fd >= 0) {
            c->doom_next = batch;
            batch = c;
        }
    }
    return batch;
}

/* Is c's server process gone, or may its slot go anyway? Past reap_until
 * (connect_timeout_ms after close) a cancel request goes to the server,
 * both to stop a statement our first cancel missed and as a probe: if it
 * is answered the server is reachable and the process is just still there
 * (a statement ignoring cancel): it keeps its slot, and the probe repeats
 * every connect_timeout_ms. If the request is not answered within
 * connect_timeout_ms, the server's host does not answer (black hole,
 * frozen host): its process cannot be told from a dead one, and no new
 * connection could reach that server either, so the slot is freed (else
 * the pool could not even try, and its breaker never open). A connection
 * without a cancel key (a connect cut short) is let go at reap_until. */
static bool reap_may_free(agec_conn *c, int64_t now)
{
    if (agec__reap_wait(c->reap_fd, 0))
        return true;
    if (now < c->reap_until)
        return false;
    if (c->cancel == NULL)
        return true;
    if (c->reap_probe != NULL) {
        bool answered = agec__cancel_done(c->reap_probe);
        agec__cancel_release(c->reap_probe);
        c->reap_probe = NULL;
        if (!answered)
            return true;
    }
    c->reap_probe = agec__cancel_start_key(c->cancel);
    c->reap_until = now + c->reap_period;
    return false;
}

void agec__reap_check(agec_conn *batch)
{
    int64_t now = agec__now_us();
    for (agec_conn *c = batch; c != NULL; c = c->doom_next)
        c->reap_gone = reap_may_free(c, now);
}

void agec__reap_settle_locked(agec_pool *p, agec_conn *batch, int64_t now)
{
    if (batch == NULL)
        return;
    bool overdue = false;
    while (batch != NULL) {
        agec_conn *nx = batch->doom_next;
        if (batch->reap_gone)
            reap_free_locked(p, batch);
        else if (batch->reap_probe != NULL)
            overdue = true;
        batch = nx;
    }
    /* Soon after a close (most exit within milliseconds), slower for a
     * server process that outlives connect_timeout_ms. */
    p->reap_at = now + (overdue ? AGEC__REAP_SLOW_POLL_US : AGEC__REAP_POLL_US);
}

void agec__reap_finish_relocks(agec_pool *p)
{
    /* shutting_down is set: nobody adds to the reaping set any more, and only
     * this thread takes from it, so the batch can be waited for unlocked. */
    agec_conn *batch = NULL;
    for (agec_conn *c = p->closing_list.head; c != NULL; c = c->next) {
        if (c->reap_fd >= 0) {
            c->doom_next = batch;
            batch = c;
        }
    }
    int64_t deadline = p->shutdown_deadline;
    pthread_mutex_unlock(&p->mu);
    for (agec_conn *c = batch; c != NULL; c = c->doom_next)
        (void)agec__reap_wait(c->reap_fd, agec__min64(c->reap_until, deadline));
    pthread_mutex_lock(&p->mu);
    while (batch != NULL) {
        agec_conn *nx = batch->doom_next;
        reap_free_locked(p, batch);
        batch = nx;
    }
}
