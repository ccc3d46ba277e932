/*
 * agec bench --record FILE: one JSON line per call, for checks made from
 * outside (a failover under load: which node answered, on which timeline,
 * whether the call kept its deadline, which writes were acknowledged).
 * The fields are documented in docs/cli.md ("Recording each call").
 */
#ifndef AGEC_CLI_BENCH_RECORD_H
#define AGEC_CLI_BENCH_RECORD_H

#include <stdbool.h>
#include <stdio.h>

#include "agec/agec.h"

typedef struct bench_record {
    FILE *f;                                      /* NULL: not recording */
    int acquire_timeout_ms, statement_timeout_ms; /* the budget of every call */
} bench_record;

/* One call as recorded. */
typedef struct bench_call {
    bool reader;
    int thread;
    const char *key;       /* the unique key bound to it, or NULL */
    double start;          /* CLOCK_REALTIME, ms since the epoch */
    double acquire_ms, ms; /* acquire, acquire + statement (monotonic) */
    double release_ms;
    agec_status st;
    const char *sqlstate; /* "" when none */
    char node[280];       /* host:port that answered; "" when no connection */
    long long timeline;   /* the node's timeline after the statement; -1 = unknown */
    int in_recovery;      /* 1, 0, -1 = unknown */
} bench_call;

/* Open FILE for writing (truncated). Returns EXIT_OK, or prints why and
 * returns EXIT_USAGE. */
int bench_record_open(bench_record *r, const char *path);

/* After the statement, on its connection: fill call->node (the connection's
 * host:port, no I/O) and ask the server its timeline and whether it is in
 * recovery (one round trip within timeout_ms; on failure both stay unknown). */
void bench_record_node(agec_conn *conn, bench_call *call, int timeout_ms);

/* Write one line (thread-safe: one fprintf per line). */
void bench_record_write(bench_record *r, const bench_call *call);

/* CLOCK_REALTIME in ms since the epoch. */
double bench_record_epoch_ms(void);

/* Close the file (NULL-safe). Returns EXIT_OK or, after printing why,
 * EXIT_QUERY when a write failed. */
int bench_record_close(bench_record *r);

#endif
