/* libpq errors -> agec_error; SQLSTATE classes; password redaction. */
#include "session/pqerror.h"

#include <stdlib.h>
#include <string.h>

#include "common/error_internal.h"
#include "session/redact.h"

bool agec__sqlstate_is_fatal(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    if (s[0] == '0' && s[1] == '8')
        return true;
    return strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

static void strip_newline(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

void agec__redact_conninfo(const char *in, char *out, size_t cap)
{
    agec__secrets s;
    agec__secrets_init(&s);
    agec__secrets_from_text(&s, in);
    agec__redact(in, &s, out, cap);
}

void agec__pq_conn_message(const PGconn *conn, char *buf, size_t cap)
{
    const char *m = conn ? PQerrorMessage(conn) : NULL;
    if (m == NULL || m[0] == '\0')
        m = "no error text from libpq";
    /* The connection's own secrets (as libpq read them) by value too. */
    agec__secrets s;
    agec__secrets_init(&s);
    agec__secrets_from_text(&s, m);
    PQconninfoOption *opts = conn ? PQconninfo((PGconn *)conn) : NULL;
    agec__secrets_from_options(&s, opts);
    PQconninfoFree(opts);
    agec__redact(m, &s, buf, cap);
    strip_newline(buf);
}

/* SQLSTATE 57014 is both "canceling statement due to statement timeout"
 * (the server's statement_timeout) and "... due to user request" (a cancel
 * request: agec_conn_cancel, pool shutdown, pg_cancel_backend). Only the
 * text tells them apart; a server with translated messages makes its
 * timeouts come out as AGEC_ERR_CANCELLED (the SQLSTATE is the same). agec's
 * own timeout_ms knows it sent the cancel and says AGEC_ERR_TIMEOUT. */
static bool is_timeout_text(const PGresult *res)
{
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return m != NULL && strstr(m, "timeout") != NULL;
}

agec_status agec__error_from_result(agec_error *err, agec_status code, const PGresult *res,
                                    const PGconn *conn)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 08 and 57P0x end the session only when the server says FATAL
     * (or PANIC): a plain ERROR such as 08P01 "bind message supplies 1
     * parameters, but prepared statement requires 2" leaves it usable. */
    const char *sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    bool plain_error = sev != NULL && strcmp(sev, "ERROR") == 0;
    if ((agec__sqlstate_is_fatal(state) && !plain_error) ||
        (conn != NULL && PQstatus(conn) == CONNECTION_BAD))
        code = AGEC_ERR_CONNECTION_LOST;
    else if (state != NULL && strcmp(state, "08P01") == 0)
        code = AGEC_ERR_INVALID_ARG; /* the caller's message did not fit: parameters */
    else if (state != NULL && strcmp(state, "57014") == 0)
        code = is_timeout_text(res) ? AGEC_ERR_TIMEOUT : AGEC_ERR_CANCELLED;
    else if (state != NULL && state[0] == '2' && state[1] == '8')
        code = AGEC_ERR_AUTH;
    if (err == NULL)
        return code;
    agec__error_reset(err);
    err->code = code;
    if (state != NULL)
        agec__copy_text(err->sqlstate, sizeof err->sqlstate, state);
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char buf[AGEC_ERROR_TEXT_MAX];
    if (primary != NULL) {
        agec__redact_conninfo(primary, buf, sizeof buf);
    } else if (res != NULL && PQresultErrorMessage(res)[0] != '\0') {
        agec__redact_conninfo(PQresultErrorMessage(res), buf, sizeof buf);
        strip_newline(buf);
    } else {
        agec__pq_conn_message(conn, buf, sizeof buf);
    }
    agec__copy_text(err->message, sizeof err->message, buf);
    if (res != NULL) {
        /* A server's detail can quote a connection string too (dblink,
         * postgres_fdw): redacted like the message. */
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        agec__redact_conninfo(detail ? detail : "", buf, sizeof buf);
        agec__copy_text(err->detail, sizeof err->detail, buf);
        agec__redact_conninfo(hint ? hint : "", buf, sizeof buf);
        agec__copy_text(err->hint, sizeof err->hint, buf);
        const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
        if (pos == NULL)
            pos = PQresultErrorField(res, PG_DIAG_INTERNAL_POSITION);
        if (pos != NULL)
            err->position = atoi(pos);
    }
    return code;
}
