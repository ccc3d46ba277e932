/*
 * Acquire-wait histogram: log-linear buckets (8 per power of two, so any
 * percentile is within 12.5% of the truth) plus the fixed Prometheus
 * buckets. Fixed size, no allocation, O(1) record; not thread-safe (the
 * pool records under its lock).
 */
#ifndef AGEC_POOL_HISTOGRAM_H
#define AGEC_POOL_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "agec/pool.h"

#define AGEC__HIST_BUCKETS 488 /* 16 exact + 59 octaves x 8 */

typedef struct agec__histogram {
    uint64_t count;
    int64_t sum;
    int64_t max;
    uint64_t b[AGEC__HIST_BUCKETS];
    uint64_t prom[AGEC_POOL_WAIT_BUCKETS]; /* non-cumulative, per fixed bound */
} agec__histogram;

/* Counts of the fixed Prometheus buckets only, recorded without the pool
 * lock (atomics): for times measured outside it (connects, statements). */
typedef struct agec__ahist {
    _Atomic uint64_t count;
    _Atomic int64_t sum;
    _Atomic uint64_t prom[AGEC_POOL_WAIT_BUCKETS]; /* non-cumulative, per fixed bound */
} agec__ahist;

void agec__ahist_record(agec__ahist *h, int64_t v);
/* Its count, sum and cumulative buckets. */
void agec__ahist_read(const agec__ahist *h, uint64_t *count, int64_t *sum,
                      uint64_t cum[AGEC_POOL_WAIT_BUCKETS]);

void agec__hist_record(agec__histogram *h, int64_t v);
/* Per-bucket counts to cumulative ones (Prometheus le buckets). */
void agec__hist_cumulative(const uint64_t prom[AGEC_POOL_WAIT_BUCKETS],
                           uint64_t cum[AGEC_POOL_WAIT_BUCKETS]);
/* Value at quantile q (0 < q <= 1): upper bound of the bucket holding the
 * ceil(q*count)-th value, capped at max. 0 when empty. */
int64_t agec__hist_quantile(const agec__histogram *h, double q);
/* Bucket index of v, and the largest value of a bucket (for tests). */
int agec__hist_index(int64_t v);
int64_t agec__hist_upper(int idx);

#endif
