/*
 * Prometheus text of several pools (one per cluster node) merged into one
 * valid exposition. Each agec_pool_stats_prometheus text declares every
 * metric family with its own HELP and TYPE; concatenated, a family would be
 * declared once per node and its samples split into as many groups, which
 * Prometheus refuses ("second TYPE line for metric name"). The merge keeps
 * each family's HELP and TYPE once and puts the samples of every text
 * together under it. No I/O, no locks.
 */
#ifndef AGEC_CLUSTER_PROM_MERGE_H
#define AGEC_CLUSTER_PROM_MERGE_H

#include <stdbool.h>
#include <stddef.h>

/* Write the merge of texts[0..n) into buf[cap] from offset *len on, like
 * snprintf (*len grows by the full length even past cap; buf may be NULL
 * when cap is 0). Families come in the order of their first appearance.
 * Returns false when out of memory (nothing written). */
bool agec__prom_merge(const char *const *texts, int n, char *buf, size_t cap, size_t *len);

#endif
