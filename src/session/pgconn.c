/* One libpq connection: connect, init, statements, validation, cleanup. */
#include "session/pgconn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/error_internal.h"
#include "session/clock.h"
#include "session/pqerror.h"

/* How long to wait for a cancelled query's results before cancelling again. */
#define CANCEL_REPEAT_US 200000

/* How often a connect attempt looks at its abort flag. */
#define ABORT_SLICE_MS 10

/* Wait until the connection's socket is ready for `events`, the deadline
 * passes (returns 0) or the abort flag is set (returns -2). 1 = ready,
 * -1 = poll failed. */
static int wait_socket(PGconn *pg, short events, int64_t deadline_us, const atomic_bool *abort_flag)
{
    int fd = PQsocket(pg);
    if (fd < 0)
        return -1;
    for (;;) {
        if (abort_flag != NULL && atomic_load_explicit(abort_flag, memory_order_acquire))
            return -2;
        int64_t now = agec__now_us();
        int ms = agec__poll_ms(deadline_us, now);
        if (ms == 0)
            return 0;
        if (abort_flag != NULL && (ms < 0 || ms > ABORT_SLICE_MS))
            ms = ABORT_SLICE_MS;
        struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Why a server refused a connection. libpq 15 gives no SQLSTATE for a
 * failed connection attempt, only the server's message text: recognise the
 * refusals by it (English server messages; other lc_messages give
 * AGEC_ERR_UNREACHABLE with no SQLSTATE). */
typedef struct refusal {
    const char *text; /* a substring of the server's message */
    const char *sqlstate;
    agec_status code;
} refusal;

static const refusal REFUSALS[] = {
    { "password authentication failed", "28P01", AGEC_ERR_AUTH },
    { "authentication failed for user", "28P01", AGEC_ERR_AUTH },
    { "no pg_hba.conf entry", "28000", AGEC_ERR_AUTH },
    { "password is required", "28000", AGEC_ERR_AUTH },
    { "no password supplied", "28000", AGEC_ERR_AUTH },
    /* A missing database is a configuration error: retrying cannot help. */
    { "\" does not exist", "3D000", AGEC_ERR_CONFIG }, /* database "x" (role: below) */
    { "sorry, too many clients already", "53300", AGEC_ERR_UNREACHABLE },
    { "remaining connection slots are reserved", "53300", AGEC_ERR_UNREACHABLE },
    { "too many connections for", "53300", AGEC_ERR_UNREACHABLE }, /* role, database */
    { "the database system is starting up", "57P03", AGEC_ERR_UNREACHABLE },
    { "the database system is shutting down", "57P03", AGEC_ERR_UNREACHABLE },
    { "the database system is in recovery mode", "57P03", AGEC_ERR_UNREACHABLE },
    { "the database system is not yet accepting connections", "57P03", AGEC_ERR_UNREACHABLE },
    { "the database system is not accepting connections", "57P03", AGEC_ERR_UNREACHABLE },
};

static const refusal *find_refusal(const char *msg)
{
    /* FATAL:  role "x" does not exist: authentication (28000). */
    static const refusal no_role = { "", "28000", AGEC_ERR_AUTH };
    const char *role = strstr(msg, "role \"");
    if (role != NULL && strstr(role, "\" does not exist") != NULL)
        return &no_role;
    const char *db = strstr(msg, "database \"");
    for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++) {
        if (strcmp(REFUSALS[i].sqlstate, "3D000") == 0) {
            if (db != NULL && strstr(db, REFUSALS[i].text) != NULL)
                return &REFUSALS[i];
        } else if (strstr(msg, REFUSALS[i].text) != NULL) {
            return &REFUSALS[i];
        }
    }
    return NULL;
}

static agec_status connect_error(agec_error *err, PGconn *pg, const char *what)
{
    char msg[AGEC_ERROR_TEXT_MAX];
    agec__pq_conn_message(pg, msg, sizeof msg);
    const refusal *r = find_refusal(msg);
    agec_status code = r ? r->code : AGEC_ERR_UNREACHABLE;
    agec__error_set(err, code, "%s: %s", what, msg);
    if (err != NULL && r != NULL)
        agec__copy_text(err->sqlstate, sizeof err->sqlstate, r->sqlstate);
    return code;
}

/* The socket of a connection being given up, duplicated for the caller,
 * if the server has authenticated it: from then on its process is in
 * pg_stat_activity (PostgreSQL 15 reports a backend after authentication),
 * so the pool keeps its slot until it exits. Before that (TCP connect,
 * startup, authentication: also all a black hole ever gets) there is
 * nothing to wait for. */
static void finish_keeping_socket(PGconn *pg, int *peer_fd)
{
    ConnStatusType cs = PQstatus(pg);
    bool authenticated = cs == CONNECTION_AUTH_OK || cs == CONNECTION_SETENV ||
                         cs == CONNECTION_CHECK_WRITABLE || cs == CONNECTION_CONSUME ||
                         cs == CONNECTION_CHECK_TARGET || cs == CONNECTION_CHECK_STANDBY;
    if (peer_fd != NULL && authenticated)
        *peer_fd = agec__session_finish_watched(pg);
    else
        PQfinish(pg);
}

int agec__session_finish_watched(PGconn *pg)
{
    int s = PQsocket(pg);
    int fd = s >= 0 ? fcntl(s, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd >= 0)
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    PQfinish(pg);
    if (fd >= 0)
        (void)shutdown(fd, SHUT_WR);
    return fd;
}

agec_status agec__session_connect(const char *const *keys, const char *const *vals,
                                  int64_t deadline_us, const atomic_bool *abort_flag, PGconn **out,
                                  int *peer_fd, agec_error *err)
{
    *out = NULL;
    if (peer_fd != NULL)
        *peer_fd = -1;
    int64_t start = agec__now_us();
    PGconn *pg = PQconnectStartParams(keys, vals, 0);
    if (pg == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory starting a connection");
    if (PQstatus(pg) == CONNECTION_BAD) {
        agec_status st = connect_error(err, pg, "could not connect");
        PQfinish(pg);
        return st;
    }
    /* Per libpq's documentation: behave as if the last poll said WRITING. */
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    for (;;) {
        if (ps == PGRES_POLLING_OK)
            break;
        if (ps == PGRES_POLLING_FAILED) {
            agec_status st = connect_error(err, pg, "could not connect");
            PQfinish(pg);
            return st;
        }
        int r = wait_socket(pg, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline_us,
                            abort_flag);
        if (r == 0) {
            long ms = (long)((agec__now_us() - start) / 1000);
            agec__error_set(err, AGEC_ERR_UNREACHABLE,
                            "could not connect: timed out after %ld ms (connect_timeout_ms or the "
                            "acquire deadline)",
                            ms);
            finish_keeping_socket(pg, peer_fd);
            return AGEC_ERR_UNREACHABLE;
        }
        if (r == -2) {
            finish_keeping_socket(pg, peer_fd);
            return agec__error_set(err, AGEC_ERR_CANCELLED, "connection attempt aborted");
        }
        if (r < 0) {
            agec_status st = connect_error(err, pg, "could not connect (poll failed)");
            PQfinish(pg);
            return st;
        }
        ps = PQconnectPoll(pg);
    }
    *out = pg;
    return AGEC_OK;
}

agec__res_kind agec__session_classify(const PGresult *res)
{
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_SINGLE_TUPLE:
    case PGRES_COMMAND_OK:
        return AGEC__RES_ROWS;
    case PGRES_EMPTY_QUERY:
        return AGEC__RES_EMPTY;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        return AGEC__RES_COPY;
    default:
        return AGEC__RES_ERROR;
    }
}

int agec__session_copy_step(PGconn *pg, ExecStatusType copy)
{
    if (copy == PGRES_COPY_IN) {
        /* PQputCopyEnd in non-blocking mode queues the message; flush it. */
        if (!agec__session_send_begin(pg) ||
            PQputCopyEnd(pg, "COPY from the client is not supported by agec") < 0)
            return -1;
        /* A few bytes: a socket that takes none of them for 5 s is dead. */
        int f, tries = 0;
        while ((f = PQflush(pg)) == 1) {
            struct pollfd p = { .fd = PQsocket(pg), .events = POLLOUT };
            if (p.fd < 0 || ++tries > 50 || (poll(&p, 1, 100) < 0 && errno != EINTR))
                return -1;
        }
        (void)PQsetnonblocking(pg, 0);
        return f == 0 ? 1 : -1;
    }
    if (copy != PGRES_COPY_OUT)
        return -1;
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(pg, &buf, 1);
        if (buf != NULL)
            PQfreemem(buf);
        if (n > 0)
            continue;
        return n == 0 ? 0 : n == -1 ? 1 : -1;
    }
}

/* Read every pending result. The first failure decides the status.
 * *late is set when the deadline passed or the abort flag was set (the
 * query may still be running). */
static agec_status read_results(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                agec_error *err, bool *late)
{
    agec_status st = AGEC_OK;
    *late = false;
    for (;;) {
        while (PQisBusy(pg)) {
            int r = wait_socket(pg, POLLIN, deadline_us, abort_flag);
            if (r == 0) {
                *late = true;
                return agec__error_set(err, AGEC_ERR_TIMEOUT, "no answer from the server in time");
            }
            if (r == -2) {
                *late = true; /* mid-query: the connection must be closed */
                return agec__error_set(err, AGEC_ERR_CANCELLED, "aborted (the pool is closing)");
            }
            if (r < 0 || !PQconsumeInput(pg))
                return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        }
        PGresult *res = PQgetResult(pg);
        if (res == NULL)
            break;
        agec__res_kind kind = agec__session_classify(res);
        ExecStatusType es = PQresultStatus(res);
        if (st == AGEC_OK && kind == AGEC__RES_ERROR)
            st = agec__error_from_result(err, AGEC_ERR_SERVER, res, pg);
        PQclear(res);
        if (kind == AGEC__RES_COPY) {
            if (st == AGEC_OK)
                st = agec__error_set(err, AGEC_ERR_STATE, "%s", AGEC__COPY_REFUSED);
            int c;
            while ((c = agec__session_copy_step(pg, es)) == 0) {
                int r = wait_socket(pg, POLLIN, deadline_us, abort_flag);
                if (r == 0 || r == -2) {
                    *late = true;
                    return st;
                }
                if (r < 0 || !PQconsumeInput(pg))
                    return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
            }
            if (c < 0) {
                *late = true; /* COPY BOTH or a broken connection: close it */
                return st;
            }
        }
    }
    if (st == AGEC_OK && PQstatus(pg) == CONNECTION_BAD)
        st = agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    return st;
}

agec_status agec__session_send_flush(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                     agec_error *err)
{
    /* Called with the connection in non-blocking mode (agec__session_send_begin):
     * send what libpq has buffered, reading meanwhile so that a server that
     * writes while we write (notices, a large answer to an earlier query)
     * cannot deadlock us. */
    int r;
    while ((r = PQflush(pg)) == 1) {
        int w = wait_socket(pg, POLLOUT | POLLIN, deadline_us, abort_flag);
        if (w == 0)
            return agec__error_set(err, AGEC_ERR_TIMEOUT,
                                   "could not send the statement in time (the server or the "
                                   "network does not take data)");
        if (w == -2)
            return agec__error_set(err, AGEC_ERR_CANCELLED, "aborted while sending");
        if (w < 0 || !PQconsumeInput(pg))
            return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    }
    if (r < 0)
        return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    /* Everything is out: back to blocking mode (the escape hatch's promise),
     * which costs no I/O now that nothing is buffered. */
    (void)PQsetnonblocking(pg, 0);
    return AGEC_OK;
}

agec_status agec__session_wait_ready(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                     agec_error *err)
{
    for (;;) {
        if (!PQconsumeInput(pg))
            return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
        if (!PQisBusy(pg))
            return AGEC_OK;
        int w = wait_socket(pg, POLLIN, deadline_us, abort_flag);
        if (w == 0)
            return agec__error_set(err, AGEC_ERR_TIMEOUT, "no answer from the server in time");
        if (w == -2)
            return agec__error_set(err, AGEC_ERR_CANCELLED, "aborted while waiting");
        if (w < 0)
            return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    }
}

bool agec__session_send_begin(PGconn *pg)
{
    return PQsetnonblocking(pg, 1) == 0;
}

static agec_status exec_impl(PGconn *pg, const char *sql, int64_t deadline_us,
                             const atomic_bool *abort_flag, agec_error *err)
{
    if (PQstatus(pg) != CONNECTION_OK)
        return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    if (!agec__session_send_begin(pg) || !PQsendQuery(pg, sql))
        return agec__error_from_result(err, AGEC_ERR_CONNECTION_LOST, NULL, pg);
    agec_status st = agec__session_send_flush(pg, deadline_us, abort_flag, err);
    if (st != AGEC_OK)
        return st;
    bool late;
    return read_results(pg, deadline_us, abort_flag, err, &late);
}

agec_status agec__session_exec(PGconn *pg, const char *sql, int64_t deadline_us, agec_error *err)
{
    return exec_impl(pg, sql, deadline_us, NULL, err);
}

agec_status agec__session_drain(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                agec_error *err)
{
    bool late;
    return read_results(pg, deadline_us, abort_flag, err, &late);
}

agec_status agec__session_validate(PGconn *pg, int64_t deadline_us, const atomic_bool *abort_flag,
                                   agec_error *err)
{
    return exec_impl(pg, "", deadline_us, abort_flag, err);
}

/* Run one init step; on failure prefix the message with the statement. */
static agec_status init_step(PGconn *pg, const char *sql, int64_t deadline_us,
                             const atomic_bool *abort_flag, agec_error *err)
{
    agec_error e = AGEC_ERROR_INIT;
    agec_status st = exec_impl(pg, sql, deadline_us, abort_flag, &e);
    if (st == AGEC_OK)
        return AGEC_OK;
    if (st == AGEC_ERR_SERVER || st == AGEC_ERR_AUTH)
        st = AGEC_ERR_INIT;
    if (st == AGEC_ERR_CANCELLED) {
        if (err != NULL)
            agec__error_copy(err, &e);
        return st;
    }
    if (err != NULL) {
        char msg[AGEC_ERROR_TEXT_MAX];
        char sql_cut[201], msg_cut[701];
        snprintf(msg, sizeof msg, "session init `%s` failed: %s",
                 agec__utf8_cut(sql_cut, sizeof sql_cut, sql),
                 agec__utf8_cut(msg_cut, sizeof msg_cut, e.message));
        agec__error_copy(err, &e);
        err->code = st;
        agec__copy_text(err->message, sizeof err->message, msg);
        if (strcmp(e.sqlstate, "58P01") == 0)
            agec__copy_text(err->hint, sizeof err->hint,
                            "is Apache AGE installed? see age_mode (AGEC_AGE_PRELOADED, "
                            "AGEC_AGE_PLUGINS, AGEC_AGE_OFF)");
    }
    return st;
}

static const char SET_PATH[] = "SET search_path = ag_catalog, \"$user\", public";

static agec_status reapply(PGconn *pg, const agec__session_init *init, int64_t deadline_us,
                           const atomic_bool *abort_flag, agec_error *err)
{
    agec_status st = AGEC_OK;
    if (init->age_mode != AGEC_AGE_OFF)
        st = init_step(pg, SET_PATH, deadline_us, abort_flag, err);
    if (st == AGEC_OK && init->init_sql != NULL && init->init_sql[0] != '\0')
        st = init_step(pg, init->init_sql, deadline_us, abort_flag, err);
    return st;
}

agec_status agec__session_reapply(PGconn *pg, const agec__session_init *init, int64_t deadline_us,
                                  agec_error *err)
{
    return reapply(pg, init, deadline_us, NULL, err);
}

agec_status agec__session_setup(PGconn *pg, const agec__session_init *init, int64_t deadline_us,
                                const atomic_bool *abort_flag, agec_error *err)
{
    agec_status st = AGEC_OK;
    if (init->age_mode != AGEC_AGE_OFF && init->age_create_extension)
        st = init_step(pg, "CREATE EXTENSION IF NOT EXISTS age", deadline_us, abort_flag, err);
    if (st == AGEC_OK && init->age_mode == AGEC_AGE_LOAD)
        st = init_step(pg, "LOAD 'age'", deadline_us, abort_flag, err);
    if (st == AGEC_OK && init->age_mode == AGEC_AGE_PLUGINS)
        st = init_step(pg, "LOAD '$libdir/plugins/age'", deadline_us, abort_flag, err);
    if (st == AGEC_OK)
        st = reapply(pg, init, deadline_us, abort_flag, err);
    if (st == AGEC_OK && init->on_connect != NULL) {
        agec_error e = AGEC_ERROR_INIT;
        st = init->on_connect(pg, init->on_connect_user, &e);
        if (st != AGEC_OK) {
            if (e.message[0] == '\0')
                agec__copy_text(e.message, sizeof e.message, "on_connect callback failed");
            if (err != NULL) {
                agec__error_copy(err, &e);
                err->code = AGEC_ERR_INIT;
                char cut[901];
                snprintf(err->message, sizeof err->message, "session init on_connect: %s",
                         agec__utf8_cut(cut, sizeof cut, e.message));
            }
            st = AGEC_ERR_INIT;
        }
    }
    return st;
}

agec__cleanup agec__session_cleanup(PGconn *pg, agec__cancel_key *key, int64_t deadline_us)
{
    if (PQstatus(pg) != CONNECTION_OK || PQpipelineStatus(pg) != PQ_PIPELINE_OFF)
        return AGEC__CLEAN_BROKEN;
    PGTransactionStatusType ts = PQtransactionStatus(pg);
    if (ts == PQTRANS_ACTIVE) {
        /* Results not all read. When they are already here (the borrower
         * stopped reading early) no cancel is needed: a cancel is a signal
         * to the backend that must never reach the next borrower's
         * statement, so send one only when the statement still runs. */
        bool late = true;
        agec_status st = AGEC_OK;
        if (PQconsumeInput(pg) && !PQisBusy(pg))
            st = read_results(pg, deadline_us, NULL, NULL, &late);
        agec__cancel_job *job = NULL;
        while (late && agec__now_us() < deadline_us) {
            /* A cancel that reaches the backend before it starts executing
             * the query is ignored by the server, so repeat it until the
             * results come; but never while one is still unanswered. */
            if (job == NULL || agec__cancel_done(job)) {
                agec__cancel_release(job);
                job = agec__cancel_start_key(key);
                if (job == NULL)
                    return AGEC__CLEAN_FAILED;
            }
            int64_t slice = agec__min64(deadline_us, agec__now_us() + CANCEL_REPEAT_US);
            st = read_results(pg, slice, NULL, NULL, &late);
        }
        agec__cancel_release(job);
        if (late || st == AGEC_ERR_STATE)
            return AGEC__CLEAN_FAILED;
        if (PQstatus(pg) != CONNECTION_OK)
            return AGEC__CLEAN_BROKEN;
        ts = PQtransactionStatus(pg);
    }
    /* Every cancel request sent on this connection (ours above, the
     * statement timeout's, agec_conn_cancel's) must have been delivered
     * before anything else runs on it: one still in flight would cancel
     * whatever runs next (the ROLLBACK, or the next borrower's statement).
     * Once the server has acknowledged it, the backend has the signal and
     * drops it while idle. Not settled in time: the connection goes. */
    if (!agec__cancel_key_settle(key, deadline_us))
        return AGEC__CLEAN_FAILED;
    if (ts == PQTRANS_IDLE)
        return AGEC__CLEAN_OK;
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        agec_status st = agec__session_exec(pg, "ROLLBACK", deadline_us, NULL);
        if (st == AGEC_ERR_CONNECTION_LOST)
            return AGEC__CLEAN_BROKEN;
        if (st != AGEC_OK)
            return AGEC__CLEAN_FAILED;
        ts = PQtransactionStatus(pg);
    }
    if (ts == PQTRANS_IDLE)
        return AGEC__CLEAN_OK;
    return ts == PQTRANS_UNKNOWN ? AGEC__CLEAN_BROKEN : AGEC__CLEAN_FAILED;
}
