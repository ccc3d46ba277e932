/*
 * The generated graph bench_load and bench_load_copy load, the same in
 * both: vertex property maps, edge endpoints, and the loader's loops over
 * them.
 */
#ifndef AGEC_BENCH_LOAD_DATA_H
#define AGEC_BENCH_LOAD_DATA_H

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "agec/agec.h"
#include "agec/load.h"

/* A pool of one on dsn and its connection, server notices silenced; exits
 * with the error when either fails. */
static inline agec_conn *bench_load_conn(const char *dsn, agec_age_mode age_mode, agec_pool **pool)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = dsn;
    cfg.max = 1;
    cfg.age_mode = age_mode;
    cfg.on_event = agec_pool_event_ignore;
    agec_conn *c;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, pool, &err) != AGEC_OK ||
        agec_pool_acquire(*pool, &c, &err) != AGEC_OK) {
        fprintf(stderr, "bench: pool: %s [%s] %s\n", agec_status_name(err.code), err.sqlstate,
                err.message);
        exit(1);
    }
    PQsetNoticeProcessor(agec_conn_pgconn(c), NULL, NULL);
    return c;
}

/* Vertex i's properties: uid i, a name with escaped quotes, an int, a float. */
static inline int bench_vprops(int i, char *b, size_t cap)
{
    return snprintf(b, cap,
                    "{\"uid\": %d, \"name\": \"person \\\"%d\\\"\", \"age\": %d, \"score\": %d.5}",
                    i, i, 18 + i % 60, i % 100);
}

/* Edge j of a graph of nv vertices: a scattered start, end = start of the
 * label (j + 1). */
static inline void bench_edge_of(int j, int nv, int *s, int *e)
{
    *s = (int)(((unsigned)j * 2654435761u) % (unsigned)nv);
    *e = (j + 1) % nv;
}

/* Vertices 0..nv-1 of Person into an open loader; the first error. */
static inline agec_status bench_load_vertices(agec_loader *ld, int nv, agec_error *err)
{
    char b[256];
    for (int i = 0; i < nv; i++) {
        int n = bench_vprops(i, b, sizeof b);
        agec_status st = agec_loader_vertex(ld, "Person", b, (size_t)n, err);
        if (st != AGEC_OK)
            return st;
    }
    return AGEC_OK;
}

/* Edges 0..ne-1 of KNOWS by Person.uid (declared as the key here) into an
 * open loader; the first error. */
static inline agec_status bench_load_edges(agec_loader *ld, int nv, int ne, agec_error *err)
{
    agec_status st = agec_loader_key(ld, "Person", "uid", err);
    char b[64], ks[16], ke[16];
    for (int j = 0; j < ne && st == AGEC_OK; j++) {
        int s, e;
        bench_edge_of(j, nv, &s, &e);
        snprintf(ks, sizeof ks, "%d", s);
        snprintf(ke, sizeof ke, "%d", e);
        int n = snprintf(b, sizeof b, "{\"w\": %d}", j);
        st = agec_loader_edge(ld, "KNOWS", &AGEC_ENDPOINT_KEY("Person", ks),
                              &AGEC_ENDPOINT_KEY("Person", ke), b, (size_t)n, err);
    }
    return st;
}

#endif
