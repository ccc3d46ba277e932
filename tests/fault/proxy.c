/* A fault-injection TCP proxy (see proxy.h). */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define MAX_PAIRS 256
#define CHUNK_MAX 16384
#define QUEUE_CAP (1u << 20) /* bytes held per direction before reading stops */

/* Bytes read from one side, waiting to be written to the other. */
typedef struct chunk {
    struct chunk *next;
    int64_t due_ms; /* not before (latency) */
    size_t len, off;
    char data[];
} chunk;

typedef struct queue {
    chunk *head, *tail;
    size_t bytes;
    bool eof; /* the reading side closed */
} queue;

/* fd[0] the client, fd[1] the server; q[s] holds what fd[s] sent. */
typedef struct pair {
    bool used;
    int fd[2];
    queue q[2];
    int64_t cut_left; /* server bytes still allowed before a cut; -1 = not armed */
    bool cutting;     /* the allowance is queued: reset once it is delivered */
} pair;

struct fproxy {
    pthread_t thread;
    int lfd, port, target;
    int wake[2];
    pthread_mutex_t ctl; /* one controller at a time */
    pthread_mutex_t mu;
    pthread_cond_t done;
    /* [mu] requests and the thread's answers */
    fproxy_mode mode;
    int latency_ms;
    bool want_reset, want_stop;
    int64_t want_cut;
    uint64_t req, ack;
    int answer;
    int open;
    uint64_t accepted, cuts;
    /* thread-only */
    pair pairs[MAX_PAIRS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Close with SO_LINGER 0: the peer gets a RST, not a FIN. */
static void close_rst(int fd)
{
    struct linger lg = { 1, 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void queue_clear(queue *q)
{
    while (q->head != NULL) {
        chunk *n = q->head->next;
        free(q->head);
        q->head = n;
    }
    q->tail = NULL;
    q->bytes = 0;
    q->eof = false;
}

static void pair_close(fproxy *p, pair *pr, bool rst)
{
    for (int s = 0; s < 2; s++) {
        if (rst)
            close_rst(pr->fd[s]);
        else
            close(pr->fd[s]);
        queue_clear(&pr->q[s]);
    }
    pr->used = false;
    pthread_mutex_lock(&p->mu);
    p->open--;
    pthread_mutex_unlock(&p->mu);
}

static void accept_one(fproxy *p, fproxy_mode mode)
{
    int cfd = accept(p->lfd, NULL, NULL);
    if (cfd < 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->accepted++;
    pthread_mutex_unlock(&p->mu);
    if (mode == FPROXY_REFUSE) {
        close_rst(cfd);
        return;
    }
    pair *pr = NULL;
    for (int i = 0; i < MAX_PAIRS && pr == NULL; i++)
        if (!p->pairs[i].used)
            pr = &p->pairs[i];
    int sfd = pr != NULL ? socket(AF_INET, SOCK_STREAM, 0) : -1;
    if (sfd < 0) {
        close_rst(cfd);
        return;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p->target);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback: a blocking connect answers at once (refused when the server is down). */
    if (connect(sfd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(sfd);
        close_rst(cfd);
        return;
    }
    int one = 1;
    (void)setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblock(cfd);
    set_nonblock(sfd);
    memset(pr, 0, sizeof *pr);
    pr->used = true;
    pr->fd[0] = cfd;
    pr->fd[1] = sfd;
    pr->cut_left = -1;
    pthread_mutex_lock(&p->mu);
    p->open++;
    pthread_mutex_unlock(&p->mu);
}

/* Read what side s sent into q[s]. false: the pair was closed. */
static bool pair_read(fproxy *p, pair *pr, int s, int latency_ms)
{
    char buf[CHUNK_MAX];
    size_t want = sizeof buf;
    if (s == 1 && pr->cut_left >= 0 && (int64_t)want > pr->cut_left)
        want = (size_t)pr->cut_left;
    ssize_t n = want == 0 ? 0 : read(pr->fd[s], buf, want);
    if (want == 0 || n < 0) {
        if (want != 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return true;
        pair_close(p, pr, true); /* reset: pass it on */
        return false;
    }
    if (n == 0) {
        pr->q[s].eof = true;
        return true;
    }
    chunk *c = malloc(sizeof *c + (size_t)n);
    if (c == NULL) {
        pair_close(p, pr, true);
        return false;
    }
    c->next = NULL;
    c->due_ms = now_ms() + latency_ms;
    c->len = (size_t)n;
    c->off = 0;
    memcpy(c->data, buf, (size_t)n);
    queue *q = &pr->q[s];
    if (q->tail != NULL)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->bytes += (size_t)n;
    if (s == 1 && pr->cut_left >= 0) {
        pr->cut_left -= n;
        if (pr->cut_left == 0)
            pr->cutting = true;
    }
    return true;
}

/* Write the due part of q[1-s] to fd[s]. false: the pair was closed. */
static bool pair_write(fproxy *p, pair *pr, int s, int64_t now)
{
    queue *q = &pr->q[1 - s];
    while (q->head != NULL && q->head->due_ms <= now) {
        chunk *c = q->head;
        ssize_t n = send(pr->fd[s], c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return true;
            pair_close(p, pr, true);
            return false;
        }
        c->off += (size_t)n;
        q->bytes -= (size_t)n;
        if (c->off < c->len)
            return true;
        q->head = c->next;
        if (q->head == NULL)
            q->tail = NULL;
        free(c);
    }
    return true;
}

/* Apply the controllers' requests. Returns false to stop. [not locked] */
static bool apply_requests(fproxy *p, fproxy_mode *mode, int *latency)
{
    char drain[64];
    while (read(p->wake[0], drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&p->mu);
    bool stop = p->want_stop;
    uint64_t seen = p->req;
    bool reset = p->want_reset;
    int64_t cut = p->want_cut;
    p->want_reset = false;
    p->want_cut = 0;
    *mode = p->mode;
    *latency = p->latency_ms;
    pthread_mutex_unlock(&p->mu);
    int answer = 0;
    for (int i = 0; i < MAX_PAIRS; i++) {
        pair *pr = &p->pairs[i];
        if (!pr->used)
            continue;
        if (reset || stop) {
            pair_close(p, pr, true);
            answer++;
        } else if (cut > 0) {
            pr->cut_left = cut;
            answer++;
        }
    }
    pthread_mutex_lock(&p->mu);
    if (p->ack != seen) { /* a new request, not a wake-up for one already answered */
        p->answer = answer;
        p->ack = seen;
    }
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    return !stop;
}

static void *proxy_main(void *arg)
{
    fproxy *p = arg;
    struct pollfd pfd[2 + 2 * MAX_PAIRS];
    int owner[2 + 2 * MAX_PAIRS]; /* pair index * 2 + side */
    fproxy_mode mode = FPROXY_PASS;
    int latency = 0;
    for (;;) {
        if (!apply_requests(p, &mode, &latency))
            break;
        bool stalled = mode == FPROXY_STALL;
        int64_t now = now_ms();
        int timeout = -1;
        int n = 0;
        pfd[n++] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
        for (int i = 0; i < MAX_PAIRS; i++) {
            pair *pr = &p->pairs[i];
            if (!pr->used)
                continue;
            for (int s = 0; s < 2; s++) {
                short ev = 0;
                if (!pr->q[s].eof && pr->q[s].bytes < QUEUE_CAP && !pr->cutting)
                    ev |= POLLIN;
                chunk *h = pr->q[1 - s].head;
                if (!stalled && h != NULL) {
                    if (h->due_ms <= now)
                        ev |= POLLOUT;
                    else if (timeout < 0 || h->due_ms - now < timeout)
                        timeout = (int)(h->due_ms - now);
                }
                owner[n] = i * 2 + s;
                /* A closed side with nothing to write to: leave it out, or
                 * poll reports its hang-up again and again. */
                int fd = ev == 0 && pr->q[s].eof ? -1 : pr->fd[s];
                pfd[n++] = (struct pollfd){ .fd = fd, .events = ev };
            }
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents & POLLIN)
            accept_one(p, mode);
        now = now_ms();
        for (int k = 2; k < n; k++) {
            pair *pr = &p->pairs[owner[k] / 2];
            int s = owner[k] % 2;
            if (!pr->used || pfd[k].fd != pr->fd[s])
                continue;
            short rev = pfd[k].revents;
            if ((rev & (POLLIN | POLLHUP | POLLERR)) && (pfd[k].events & POLLIN) &&
                !pair_read(p, pr, s, latency))
                continue;
            if (!stalled && !pair_write(p, pr, s, now))
                continue;
            if (stalled)
                continue;
            /* A side closed and everything it sent is delivered: close both. */
            for (int d = 0; d < 2 && pr->used; d++)
                if (pr->q[d].eof && pr->q[d].head == NULL)
                    pair_close(p, pr, false);
            if (pr->used && pr->cutting && pr->q[1].head == NULL) {
                pair_close(p, pr, true);
                pthread_mutex_lock(&p->mu);
                p->cuts++;
                pthread_mutex_unlock(&p->mu);
            }
        }
    }
    for (int i = 0; i < MAX_PAIRS; i++)
        if (p->pairs[i].used)
            pair_close(p, &p->pairs[i], true);
    return NULL;
}

fproxy *fproxy_start(int target_port)
{
    fproxy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->target = target_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (p->lfd < 0)
        goto fail_free;
    int one = 1;
    (void)setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 128) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &alen) != 0)
        goto fail_sock;
    p->port = ntohs(a.sin_port);
    set_nonblock(p->lfd);
    if (pipe(p->wake) != 0)
        goto fail_sock;
    set_nonblock(p->wake[0]);
    set_nonblock(p->wake[1]);
    pthread_mutex_init(&p->ctl, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->done, NULL);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->mu);
        pthread_mutex_destroy(&p->ctl);
        close(p->wake[0]);
        close(p->wake[1]);
        goto fail_sock;
    }
    return p;
fail_sock:
    close(p->lfd);
fail_free:
    free(p);
    return NULL;
}

fproxy *fproxy_start_for(const char *conninfo, char *out, size_t n)
{
    const char *pp = strstr(conninfo, "port=");
    fproxy *p = pp != NULL ? fproxy_start(atoi(pp + 5)) : NULL;
    if (p == NULL)
        return NULL;
    int len = snprintf(out, n, "%s port=%d", conninfo, fproxy_port(p));
    if (len < 0 || (size_t)len >= n) {
        fproxy_stop(p);
        return NULL;
    }
    return p;
}

int fproxy_port(const fproxy *p)
{
    return p->port;
}

/* Post the request set by `set` under mu, wake the thread, wait for it. */
static int request(fproxy *p, void (*set)(fproxy *p, int64_t v), int64_t v)
{
    pthread_mutex_lock(&p->ctl);
    pthread_mutex_lock(&p->mu);
    set(p, v);
    uint64_t seq = ++p->req;
    pthread_mutex_unlock(&p->mu);
    char b = 1;
    while (write(p->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&p->mu);
    while (p->ack < seq)
        pthread_cond_wait(&p->done, &p->mu);
    int answer = p->answer;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->ctl);
    return answer;
}

static void set_stop(fproxy *p, int64_t v)
{
    (void)v;
    p->want_stop = true;
}

static void set_mode(fproxy *p, int64_t v)
{
    p->mode = (fproxy_mode)v;
}

static void set_latency(fproxy *p, int64_t v)
{
    p->latency_ms = (int)v;
}

static void set_reset(fproxy *p, int64_t v)
{
    (void)v;
    p->want_reset = true;
}

static void set_cut(fproxy *p, int64_t v)
{
    p->want_cut = v;
}

void fproxy_stop(fproxy *p)
{
    if (p == NULL)
        return;
    (void)request(p, set_stop, 0);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->ctl);
    free(p);
}

void fproxy_set_mode(fproxy *p, fproxy_mode mode)
{
    (void)request(p, set_mode, (int64_t)mode);
}

void fproxy_set_latency(fproxy *p, int ms)
{
    (void)request(p, set_latency, ms);
}

int fproxy_reset_all(fproxy *p)
{
    return request(p, set_reset, 0);
}

int fproxy_cut_after(fproxy *p, int64_t bytes)
{
    return request(p, set_cut, bytes > 0 ? bytes : 1);
}

int fproxy_open_count(fproxy *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->open;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t fproxy_accepted(fproxy *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->accepted;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t fproxy_cuts(fproxy *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->cuts;
    pthread_mutex_unlock(&p->mu);
    return n;
}
