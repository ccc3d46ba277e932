/* Log-linear histogram (see histogram.h). */
#include "pool/histogram.h"

static const int64_t prom_bounds[AGEC_POOL_WAIT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000,
};

const int64_t *agec_pool_wait_bucket_bounds_us(void)
{
    return prom_bounds;
}

static int log2_floor(uint64_t v) /* v > 0 */
{
    return 63 - __builtin_clzll(v);
}

int agec__hist_index(int64_t v)
{
    if (v < 16)
        return v < 0 ? 0 : (int)v;
    int e = log2_floor((uint64_t)v);               /* 4..62 */
    int sub = (int)(((uint64_t)v >> (e - 3)) & 7); /* the 3 bits after the leading one */
    return 16 + (e - 4) * 8 + sub;
}

int64_t agec__hist_upper(int idx)
{
    if (idx < 16)
        return idx;
    int e = (idx - 16) / 8 + 4;
    int sub = (idx - 16) % 8;
    int64_t width = (int64_t)1 << (e - 3);
    return (int64_t)(8 + sub) * width + width - 1;
}

/* The fixed Prometheus bucket of v, or AGEC_POOL_WAIT_BUCKETS past the last
 * bound (+Inf: the count alone). */
static int prom_index(int64_t v)
{
    int i = 0;
    while (i < AGEC_POOL_WAIT_BUCKETS && v > prom_bounds[i])
        i++;
    return i;
}

void agec__hist_cumulative(const uint64_t prom[AGEC_POOL_WAIT_BUCKETS],
                           uint64_t cum[AGEC_POOL_WAIT_BUCKETS])
{
    uint64_t c = 0;
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++) {
        c += prom[i];
        cum[i] = c;
    }
}

void agec__ahist_record(agec__ahist *h, int64_t v)
{
    if (v < 0)
        v = 0;
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
    int i = prom_index(v);
    if (i < AGEC_POOL_WAIT_BUCKETS)
        atomic_fetch_add_explicit(&h->prom[i], 1, memory_order_relaxed);
}

void agec__ahist_read(const agec__ahist *h, uint64_t *count, int64_t *sum,
                      uint64_t cum[AGEC_POOL_WAIT_BUCKETS])
{
    uint64_t prom[AGEC_POOL_WAIT_BUCKETS];
    for (int i = 0; i < AGEC_POOL_WAIT_BUCKETS; i++)
        prom[i] = atomic_load_explicit(&h->prom[i], memory_order_relaxed);
    agec__hist_cumulative(prom, cum);
    uint64_t c = cum[AGEC_POOL_WAIT_BUCKETS - 1];
    /* Read after the buckets: never fewer than the buckets say. */
    *count = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (*count < c)
        *count = c;
    *sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

void agec__hist_record(agec__histogram *h, int64_t v)
{
    if (v < 0)
        v = 0;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[agec__hist_index(v)]++;
    int i = prom_index(v);
    if (i < AGEC_POOL_WAIT_BUCKETS)
        h->prom[i]++;
}

int64_t agec__hist_quantile(const agec__histogram *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q > 1.0)
        q = 1.0;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < AGEC__HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            int64_t up = agec__hist_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}
