/*
 * mux_epoll: an epoll event loop driving agec's multiplexer. One thread
 * submits 100 statements with completion callbacks, then waits on
 * agec_mux_fd() with epoll and calls agec_mux_dispatch() whenever it is
 * readable (or a statement deadline is due); the callbacks run in this
 * thread. The callback of every 10th statement submits one more from
 * inside the callback.
 *
 * usage: mux_epoll CONNINFO     prints "110 results, sum 4995"
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include <agec/agec.h>

static int done, sum, failed;
static agec_mux *mux;

static void on_result(agec_status st, agec_result *res, const agec_error *err, void *user)
{
    long n = (long)(intptr_t)user;
    int64_t v = 0;
    if (st != AGEC_OK || agec_result_get_int64(res, 0, 0, &v, NULL) != AGEC_OK) {
        fprintf(stderr, "statement %ld: %s\n", n, err->message);
        failed++;
    }
    agec_result_free(res);
    sum += (int)v;
    done++;
    if (n % 10 == 0 && n < 100) {
        /* Callbacks may submit: the next dispatch sends and completes it. */
        char arg[24];
        snprintf(arg, sizeof arg, "%ld", n / 10);
        const char *vals[1] = { arg };
        agec_status s = agec_mux_submit_sql(mux, "SELECT $1::int", 1, vals, NULL, on_result,
                                            (void *)(intptr_t)(1000 + n), NULL, NULL);
        if (s != AGEC_OK)
            failed++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mux_epoll CONNINFO\n");
        return 2;
    }
    agec_error err = AGEC_ERROR_INIT;
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = argv[1];
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.max = 5; /* the mux borrows 4 (its default), one is left for transactions */
    agec_pool *pool = NULL;
    if (agec_pool_open(&cfg, &pool, &err) != AGEC_OK ||
        agec_mux_open(pool, NULL, &mux, &err) != AGEC_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    /* SELECT 0 .. 99 with a 10 s deadline each. */
    agec_query_opts opts;
    agec_query_opts_init(&opts);
    opts.timeout_ms = 10000;
    for (long i = 0; i < 100; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "%ld", i);
        const char *vals[1] = { arg };
        if (agec_mux_submit_sql(mux, "SELECT $1::int", 1, vals, &opts, on_result,
                                (void *)(intptr_t)i, NULL, &err) != AGEC_OK) {
            fprintf(stderr, "submit: %s\n", err.message);
            return 1;
        }
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, agec_mux_fd(mux), &ev) != 0) {
        perror("epoll");
        return 1;
    }
    while (done < 110 && failed == 0) {
        struct epoll_event got;
        int timeout = agec_mux_next_timeout_ms(mux); /* -1: no deadline pending */
        if (epoll_wait(ep, &got, 1, timeout) < 0) {
            perror("epoll_wait");
            return 1;
        }
        agec_mux_dispatch(mux, 0); /* I/O for ready connections, then callbacks */
    }
    printf("%d results, sum %d\n", done, sum);
    agec_mux_close(mux);
    (void)agec_pool_close(pool, 1000, NULL);
    return failed ? 1 : 0;
}
