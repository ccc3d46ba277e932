/* The primary's WAL positions over time: standby lag (lsn_history.h). */
#include "cluster/lsn_history.h"

void agec__lsn_history_reset(agec__lsn_history *h)
{
    h->n = 0;
    h->head = 0;
}

void agec__lsn_history_add(agec__lsn_history *h, agec_lsn lsn, int64_t t_us)
{
    int last = (h->head - 1 + AGEC__LSN_HISTORY) % AGEC__LSN_HISTORY;
    if (h->n > 0 && lsn <= h->e[last].lsn)
        return;
    h->e[h->head].t_us = t_us;
    h->e[h->head].lsn = lsn;
    h->head = (h->head + 1) % AGEC__LSN_HISTORY;
    if (h->n < AGEC__LSN_HISTORY)
        h->n++;
}

int64_t agec__lsn_history_lag_ms(const agec__lsn_history *h, agec_lsn lsn, int64_t replay_age_ms,
                                 int64_t now_us)
{
    for (int i = 0; i < h->n; i++) {
        int k = (h->head - h->n + i + AGEC__LSN_HISTORY) % AGEC__LSN_HISTORY;
        if (h->e[k].lsn > lsn) {
            int64_t lag = (now_us - h->e[k].t_us) / 1000;
            if (i == 0 && replay_age_ms > lag)
                lag = replay_age_ms;
            return lag;
        }
    }
    return 0;
}
