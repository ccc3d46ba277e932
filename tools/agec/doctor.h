/*
 * agec doctor: the checks a person runs by hand when a connection does not
 * work, each reported with its outcome, its time and, when it fails, what
 * to do (docs/doctor.md). doctor_report.c prints the outcomes (table or JSON
 * Lines), doctor_net.c parses the DSN into nodes and checks name resolution
 * and TCP, cmd_doctor.c checks each node's session (TLS, authentication,
 * server, PgBouncer, AGE, graph, connections, role) and the whole.
 */
#ifndef AGEC_CLI_DOCTOR_H
#define AGEC_CLI_DOCTOR_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cli.h"

typedef enum { DR_PASS, DR_WARN, DR_FAIL, DR_SKIP } dr_status;

#define DR_MAX_NODES 16
#define DR_MAX_KW 64

/* One host of the DSN: where to connect and the keywords to do it with. */
typedef struct dr_node {
    char host[256];       /* as given ("" = libpq's default socket directory) */
    char hostaddr[64];    /* "" unless the DSN gives hostaddr */
    char port[16];        /* as given, else PGPORT, else 5432 */
    char label[300];      /* host:port, for the report */
    bool socket;          /* a unix-domain socket directory */
    bool tcp_ok;          /* reached (or a socket: not checked by TCP) */
    bool session;         /* a session was opened */
    int role;             /* -1 unknown, 0 primary, 1 standby */
    char lsn[32];         /* current (primary) or replayed (standby) WAL position */
    double replay_age_ms; /* standby: since its last replayed transaction; -1 unknown */
} dr_node;

typedef struct doctor {
    const cli *c;
    bool json;
    int failed, warned;
    char secret[256]; /* the DSN's password, scrubbed from every message */
    /* The DSN's keywords (password included: only ever given to libpq). */
    const char *kw[DR_MAX_KW];
    const char *val[DR_MAX_KW];
    int nkw;
    PQconninfoOption *opts; /* owns kw/val's strings */
    dr_node nodes[DR_MAX_NODES];
    int nnodes;
} doctor;

/* Print one check's outcome; fmt gives the detail, remedy may be NULL.
 * The DSN's password is replaced by *** in both. Counts failures/warnings. */
void dr_report(doctor *d, const char *node, const char *check, dr_status st, double ms,
               const char *remedy, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* The "dsn" check: parse the DSN (password never shown) into d's keywords
 * and nodes. false when it does not parse (reported). */
bool dr_parse_dsn(doctor *d);

/* The "resolve" and "tcp" checks of one node; false when it cannot be reached. */
bool dr_check_network(doctor *d, dr_node *n);

/* Open a libpq connection to node n, with `dbname` instead of the DSN's
 * when not NULL. Never NULL (PQstatus tells). */
PGconn *dr_connect(doctor *d, const dr_node *n, const char *dbname);

/* The value of keyword kw in the DSN (after libpq's environment), or NULL. */
const char *dr_keyword(const doctor *d, const char *kw);

#endif
