/* Closed connections whose server process has not exited yet: their slots
 * stay taken until it has (see pool_internal.h, "reap.c"). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool/pool_internal.h"
#include "session/clock.h"

/* After a Terminate message (or our end closing) the server process exits
 * and its socket closes last of all, after its pg_stat_activity entry is
 * gone: EOF here means the slot is really free. */
bool agec__reap_wait(int fd, int64_t deadline_us)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
        if (n > 0)
            continue;
        int ms = agec__poll_ms(deadline_us, agec__now_us());
        if (ms == 0)
            return false;
        struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return true;
    }
}

void agec__reap_start(agec_pool *p, agec_conn *c, int fd, int64_t until)
{
    c->reap_fd = fd;
    c->reap_until = until;
    p->nreaping++;
    agec__maint_poke(p, agec__now_us() + AGEC__REAP_POLL_US);
}

static void reap_free(agec_pool *p, agec_conn *c)
{
    close(c->reap_fd);
    c->reap_fd = -1;
    p->nreaping--;
    agec__pool_closed(p, c);
    free(c);
}

int64_t agec__reap_poll(agec_pool *p, int64_t now, bool all)
{
    if (p->nreaping == 0)
        return AGEC__NEVER;
    agec_conn *next;
    for (agec_conn *c = p->closing_list.head; c != NULL; c = next) {
        next = c->next;
        if (c->reap_fd >= 0 && (all || now >= c->reap_until || agec__reap_wait(c->reap_fd, 0)))
            reap_free(p, c);
    }
    return p->nreaping > 0 ? now + AGEC__REAP_POLL_US : AGEC__NEVER;
}

void agec__reap_finish(agec_pool *p)
{
    /* closing is set: nobody adds to the reaping set any more, and only
     * this thread takes from it, so the batch can be waited for unlocked. */
    agec_conn *batch = NULL;
    for (agec_conn *c = p->closing_list.head; c != NULL; c = c->next) {
        if (c->reap_fd >= 0) {
            c->doom_next = batch;
            batch = c;
        }
    }
    int64_t deadline = p->close_deadline;
    pthread_mutex_unlock(&p->mu);
    for (agec_conn *c = batch; c != NULL; c = c->doom_next)
        (void)agec__reap_wait(c->reap_fd, agec__min64(c->reap_until, deadline));
    pthread_mutex_lock(&p->mu);
    while (batch != NULL) {
        agec_conn *nx = batch->doom_next;
        reap_free(p, batch);
        batch = nx;
    }
}
