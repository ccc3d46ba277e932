/*
 * Pipelined batches (agec/batch.h): the queue and outcomes (batch.c) and the
 * pipeline I/O (batch_run.c).
 */
#ifndef AGEC_CYPHER_BATCH_INTERNAL_H
#define AGEC_CYPHER_BATCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "agec/batch.h"
#include "cypher/stmt_cache.h"

/* How a statement's outcome is kept: its own error (own), or one of the
 * outcomes many statements share, whose message is made when asked for
 * (a batch of 100,000 aborted statements must not hold 100,000 errors). */
typedef enum agec__bout {
    AGEC__BOUT_OK = 0,
    AGEC__BOUT_OWN,         /* err holds it */
    AGEC__BOUT_NOT_RUN,     /* skipped after statement ref failed */
    AGEC__BOUT_ROLLED_BACK, /* ran, rolled back because statement ref failed */
    AGEC__BOUT_LOST,        /* the connection broke before its outcome arrived */
    AGEC__BOUT_TIMEOUT,     /* no outcome by the batch deadline */
    AGEC__BOUT_WIDE,        /* the whole batch failed before running: b->wide */
} agec__bout;

/* One queued statement and, after the run, its outcome. */
typedef struct agec__bstmt {
    char *sql;     /* the text sent (Cypher: the built SELECT ... cypher(...)) */
    char *query;   /* Cypher: the caller's query, for error positions; else NULL */
    char **values; /* nparams pointers into one allocation with the copies */
    int nparams;
    bool prepare; /* wanted a named statement (opts->prepare) */
    /* Set by the run. */
    char name[AGEC__STMT_NAME_MAX]; /* "" = unnamed */
    bool parse_sent;                /* its Parse went in this batch */
    size_t prep_owner;              /* index of the statement whose Parse made name */
    bool done;                      /* has an outcome */
    agec__bout out;
    size_t ref; /* NOT_RUN, ROLLED_BACK: the statement that failed */
    agec_status st;
    agec_error *err;  /* BOUT_OWN: the statement's error */
    agec_result *res; /* its result on success, until taken */
} agec__bstmt;

struct agec_batch {
    agec_conn *conn;
    agec_batch_opts opts;
    agec__bstmt *stmts;
    size_t n, cap;
    bool ran;
    agec_error wide; /* AGEC__BOUT_WIDE: the batch's own failure */
};

/* Give statement i its own error: a copy of e, or st with a message
 * (fmt). Frees a result it held. A statement keeps its first failure. */
void agec__batch_fail(agec_batch *b, size_t i, agec_status st, const agec_error *e, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

/* Give statement i a shared outcome (kind, ref), unless it has one. */
void agec__batch_mark(agec_batch *b, size_t i, agec__bout kind, size_t ref);

/* Send the queued statements in pipeline mode and read every outcome
 * (batch_run.c). Every statement is done when it returns. */
void agec__batch_pipeline(agec_batch *b, bool one_sync, agec__session *sess);

#endif
