/*
 * Helpers of the cluster tests: a throwaway primary + 2 hot standbys
 * started through scripts/pg-cluster-server (one per test program, removed
 * at exit), plain libpq connections to single nodes, and a cluster config
 * with short timeouts.
 */
#ifndef AGEC_TEST_CLUSTER_UTIL_H
#define AGEC_TEST_CLUSTER_UTIL_H

#include "test_pool_util.h" /* pg_int: one statement on a plain connection */
#include "testutil.h"

#include <libpq-fe.h>

#include "agec/agec.h"

typedef struct test_cluster {
    char dir[256];
    char conninfo[512]; /* multi-host conninfo of the three nodes */
    int port[3];
    char app[64]; /* application_name of the node pools */
} test_cluster;

/* Start the cluster (fails the test loudly if the script fails). */
void tc_start(test_cluster *tc);
/* The same with native Apache AGE on every node (AGEC_CLUSTER_AGE=1: the
 * PG15 of scripts/age-native, CREATE EXTENSION age on the primary). */
void tc_start_age(test_cluster *tc);
/* Stop and remove it. */
void tc_stop(test_cluster *tc);
/* Run `pg-cluster-server VERB DIR ARGS`; returns the exit status. */
int tc_script(test_cluster *tc, const char *verb, const char *args);
/* A plain libpq connection to node n (fails the test on error). */
PGconn *tc_node(test_cluster *tc, int n);
/* Run sql on a borrowed connection, fail the test on error. */
void tc_exec(agec_conn *c, const char *sql);
/* inet_server_port() and pg_is_in_recovery() of a borrowed connection. */
int tc_conn_port(agec_conn *c, bool *in_recovery);
/* Which node (0..2) a port is, or -1. */
int tc_node_of_port(const test_cluster *tc, int port);

/* Cluster config over tc: pool template AGE off, max `max`, short
 * timeouts; recheck 100 ms. *pool must outlive the open. */
void tc_config(test_cluster *tc, agec_cluster_config *cfg, agec_pool_config *pool, int max);
agec_cluster *tc_open(const agec_cluster_config *cfg);

agec_cluster_node_stats tc_node_stats(agec_cluster *cl, int n);

#endif
