/* Circuit breaker state machine (see breaker.h). */
#include "pool/breaker.h"

#include "session/clock.h"

void agec__breaker_init(agec__breaker *b, int threshold, int open_ms)
{
    b->state = AGEC_BREAKER_CLOSED;
    b->threshold = threshold;
    b->open_us = (int64_t)open_ms * 1000;
    b->failures = 0;
    b->opened_at = 0;
    b->probing = false;
    b->opens = 0;
}

static void set_state(agec__breaker *b, agec_breaker_state to, agec__breaker_change *ch)
{
    ch->from = b->state;
    ch->to = to;
    if (to == AGEC_BREAKER_OPEN && b->state != AGEC_BREAKER_OPEN)
        b->opens++;
    b->state = to;
}

agec__breaker_verdict agec__breaker_allow(agec__breaker *b, int64_t now, agec__breaker_change *ch)
{
    ch->from = ch->to = b->state;
    switch (b->state) {
    case AGEC_BREAKER_CLOSED:
        return AGEC__BREAKER_ALLOW;
    case AGEC_BREAKER_OPEN:
        if (now - b->opened_at < b->open_us)
            return AGEC__BREAKER_DENY;
        set_state(b, AGEC_BREAKER_HALF_OPEN, ch);
        b->probing = true;
        return AGEC__BREAKER_PROBE;
    case AGEC_BREAKER_HALF_OPEN:
        if (b->probing)
            return AGEC__BREAKER_DENY;
        b->probing = true;
        return AGEC__BREAKER_PROBE;
    }
    return AGEC__BREAKER_DENY;
}

void agec__breaker_success(agec__breaker *b, bool probe, agec__breaker_change *ch)
{
    ch->from = ch->to = b->state;
    if (probe)
        b->probing = false;
    b->failures = 0;
    /* Any successful connection proves the server reachable, even one that
     * started before the breaker opened. */
    if (b->state != AGEC_BREAKER_CLOSED)
        set_state(b, AGEC_BREAKER_CLOSED, ch);
}

void agec__breaker_failure(agec__breaker *b, bool probe, int64_t now, agec__breaker_change *ch)
{
    ch->from = ch->to = b->state;
    if (probe)
        b->probing = false;
    if (b->threshold <= 0)
        return;
    b->failures++;
    if (b->state == AGEC_BREAKER_HALF_OPEN && probe) {
        b->opened_at = now;
        set_state(b, AGEC_BREAKER_OPEN, ch);
    } else if (b->state == AGEC_BREAKER_CLOSED && b->failures >= b->threshold) {
        b->opened_at = now;
        set_state(b, AGEC_BREAKER_OPEN, ch);
    }
}

int64_t agec__breaker_reopen_at(const agec__breaker *b)
{
    if (b->state != AGEC_BREAKER_OPEN)
        return AGEC__NEVER;
    return b->opened_at + b->open_us;
}

void agec__breaker_probe_now(agec__breaker *b, int64_t now)
{
    if (b->state == AGEC_BREAKER_OPEN && now - b->opened_at < b->open_us)
        b->opened_at = now - b->open_us;
}
