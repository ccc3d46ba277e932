/* Pool events: names, emission outside the lock, the default logger. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pool/pool_internal.h"

const char *agec_pool_event_name(agec_pool_event_type type)
{
    switch (type) {
    case AGEC_EV_CONNECT:
        return "connect";
    case AGEC_EV_CONNECT_FAILED:
        return "connect failed";
    case AGEC_EV_CLOSE:
        return "close";
    case AGEC_EV_ACQUIRE_TIMEOUT:
        return "acquire timeout";
    case AGEC_EV_VALIDATION_FAILED:
        return "validation failed";
    case AGEC_EV_BREAKER:
        return "breaker";
    case AGEC_EV_LEAK_SUSPECTED:
        return "leak suspected";
    case AGEC_EV_LEAK_RETURNED:
        return "leak returned";
    case AGEC_EV_NOTICE:
        return "notice";
    }
    return "unknown";
}

const char *agec_close_reason_name(agec_close_reason reason)
{
    static const char *const names[AGEC_CLOSE_REASON_COUNT] = {
        "idle", "lifetime", "broken", "validation", "reset", "shutdown",
    };
    if ((unsigned)reason >= AGEC_CLOSE_REASON_COUNT)
        return "unknown";
    return names[reason];
}

const char *agec_breaker_state_name(agec_breaker_state state)
{
    switch (state) {
    case AGEC_BREAKER_CLOSED:
        return "closed";
    case AGEC_BREAKER_OPEN:
        return "open";
    case AGEC_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

void agec_pool_event_ignore(const agec_pool_event *ev, void *user)
{
    (void)ev;
    (void)user;
}

void agec_pool_event_log_stderr(const agec_pool_event *ev, void *user)
{
    (void)user;
    if (ev == NULL || !ev->warning)
        return;
    char where[512] = "";
    if (ev->file != NULL)
        snprintf(where, sizeof where, " acquired at %s:%d (%s), held %" PRId64 " ms", ev->file,
                 ev->line, ev->func ? ev->func : "?", ev->held_ms);
    char what[64] = "";
    if (ev->type == AGEC_EV_BREAKER)
        snprintf(what, sizeof what, " %s -> %s", agec_breaker_state_name(ev->breaker_from),
                 agec_breaker_state_name(ev->breaker));
    else if (ev->type == AGEC_EV_CLOSE)
        snprintf(what, sizeof what, " (%s)", agec_close_reason_name(ev->reason));
    else if (ev->type == AGEC_EV_NOTICE && ev->struct_size >= sizeof *ev)
        snprintf(what, sizeof what, " %s%s%s", ev->severity, ev->sqlstate[0] ? " " : "",
                 ev->sqlstate);
    /* One fprintf per event: stdio locks the stream, so lines never interleave. */
    bool detail = ev->struct_size >= sizeof *ev && ev->detail != NULL && ev->detail[0] != '\0';
    fprintf(stderr, "agec pool %s: %s%s conn=%" PRIu64 ": %s%s%s%s\n",
            ev->pool_name ? ev->pool_name : "agec", agec_pool_event_name(ev->type), what,
            ev->conn_id, ev->message ? ev->message : "", where, detail ? "; " : "",
            detail ? ev->detail : "");
}

void agec__emit(agec_pool *p, agec_pool_event *ev)
{
    ev->pool_name = p->cfg.c.name;
    if (ev->message == NULL)
        ev->message = "";
    if (ev->sqlstate == NULL)
        ev->sqlstate = "";
    ev->struct_size = sizeof *ev;
    if (ev->severity == NULL)
        ev->severity = "";
    if (ev->detail == NULL)
        ev->detail = "";
    if (ev->hint == NULL)
        ev->hint = "";
    if (ev->type != AGEC_EV_BREAKER)
        ev->breaker =
            (agec_breaker_state)atomic_load_explicit(&p->breaker_pub, memory_order_relaxed);
    p->cfg.c.on_event(ev, p->cfg.c.event_user);
}

void agec__emit_simple(agec_pool *p, agec_pool_event_type type, uint64_t conn_id,
                       agec_status status, const char *sqlstate, const char *message)
{
    agec_pool_event ev = {
        .type = type,
        .warning = type != AGEC_EV_CONNECT && type != AGEC_EV_CLOSE,
        .conn_id = conn_id,
        .status = status,
        .sqlstate = sqlstate,
        .message = message,
    };
    agec__emit(p, &ev);
}

void agec__emit_breaker(agec_pool *p, const agec__breaker_change *ch)
{
    if (ch->from == ch->to)
        return;
    char msg[128];
    snprintf(msg, sizeof msg, "circuit breaker %s -> %s", agec_breaker_state_name(ch->from),
             agec_breaker_state_name(ch->to));
    agec_pool_event ev = {
        .type = AGEC_EV_BREAKER,
        .warning = true,
        .message = msg,
        .breaker = ch->to,
        .breaker_from = ch->from,
    };
    agec__emit(p, &ev);
}

/* libpq's notice receiver on every pool connection: the server's notices
 * become AGEC_EV_NOTICE events instead of lines on stderr (libpq's default
 * processor). Runs on the thread that reads the connection's results. */
static void notice_receiver(void *arg, const PGresult *res)
{
    agec_conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev == NULL)
        sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    agec_pool_event ev = {
        .type = AGEC_EV_NOTICE,
        .conn_id = c->id,
        .status = AGEC_OK,
        .sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE),
        .message = msg ? msg : PQresultErrorMessage(res),
        .severity = sev ? sev : "NOTICE",
        .detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
        .hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT),
    };
    ev.warning = strcmp(ev.severity, "WARNING") == 0;
    agec__emit(c->pool, &ev);
}

void agec__pool_watch_notices(agec_conn *c, PGconn *pg)
{
    (void)PQsetNoticeReceiver(pg, notice_receiver, c);
}
