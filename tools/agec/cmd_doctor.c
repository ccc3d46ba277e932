/*
 * agec doctor: each node's session checks and the verdict (doctor.h).
 * The checks use libpq directly, not the pool: a pool would hide exactly
 * the details being diagnosed (which step of the start-up failed, TLS, the
 * server behind a pooler). Nothing is written to the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"

typedef enum { POOLER_NONE, POOLER_SESSION, POOLER_TXN, POOLER_UNKNOWN } pooler;

/* Run sql with at most one text parameter; NULL (and *err set) on error. */
static PGresult *query(PGconn *pg, const char *sql, const char *param, char *err, size_t cap)
{
    PGresult *r = PQexecParams(pg, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
        return r;
    snprintf(err, cap, "%s", PQresultErrorMessage(r));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    return NULL;
}

/* The first column of the first row of sql into out[cap] (NULL is ""):
 * true, or false with the error in out. */
static bool value(PGconn *pg, const char *sql, char *out, size_t cap)
{
    PGresult *r = query(pg, sql, NULL, out, cap);
    if (r == NULL)
        return false;
    snprintf(out, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return true;
}

/* Column `name` of row `row`, or NULL. */
static const char *field(const PGresult *r, int row, const char *name)
{
    int c = PQfnumber(r, name);
    if (c < 0 || row >= PQntuples(r) || PQgetisnull(r, row, c))
        return NULL;
    return PQgetvalue(r, row, c);
}

/* libpq's error text on one line, each line once (libpq repeats the
 * server's refusal for each attempt, e.g. with TLS and without). */
static void one_line(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = msg; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        p += len + (p[len] == '\n');
        if (line[0] == '\0' || strstr(out, line) != NULL)
            continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? "; " : "", line);
        if (n >= cap)
            break;
    }
}

/* Which check a failed start-up belongs to, and what to do. */
static void connect_failed(doctor *d, dr_node *n, const char *msg, double ms)
{
    static const struct {
        const char *text, *check, *fix;
    } CAUSES[] = {
        { "password authentication failed", "auth",
          "check the password (password= in the DSN, PGPASSWORD, or ~/.pgpass / PGPASSFILE) "
          "and the user name" },
        { "no password supplied", "auth",
          "the server asks for a password: password= in the DSN, PGPASSWORD, or ~/.pgpass" },
        { "no pg_hba.conf entry", "auth",
          "the server's pg_hba.conf has no line for this client address, user, database and "
          "TLS or not: add one (e.g. host DB USER ADDRESS/32 scram-sha-256) and reload" },
        { "authentication failed", "auth",
          "the server refused this user with its pg_hba.conf method (peer, ident, cert): "
          "check the user name and pg_hba.conf" },
        { "does not exist", "auth",
          "the role or database does not exist: CREATE ROLE ... LOGIN / createdb, or "
          "user= / dbname= an existing one" },
        { "certificate", "tls",
          "give the CA that signed the server's certificate (sslrootcert=FILE) and connect by "
          "the name in the certificate, or lower sslmode" },
        { "SSL", "tls", "check sslmode (the server may not offer TLS: ssl = on)" },
        { "too many", "session",
          "the server is full: fewer connections (a smaller pool max, a pooler), or raise "
          "max_connections / the role's CONNECTION LIMIT" },
        { "remaining connection slots", "session",
          "the server is full: fewer connections, or raise max_connections" },
        { "starting up", "session", "wait for the server to finish starting" },
        { "shutting down", "session", "the server is stopping: start it again" },
        { "timeout expired", "session",
          "TCP works but the start-up did not finish in time: an overloaded server, a proxy "
          "that does not speak PostgreSQL, or a slow TLS/auth step; raise --connect-timeout" },
    };
    char line[1024];
    one_line(msg, line, sizeof line);
    const char *check = "session", *fix = "read the server's message; the server log says more";
    for (size_t i = 0; i < sizeof CAUSES / sizeof CAUSES[0]; i++)
        if (strstr(line, CAUSES[i].text) != NULL) {
            check = CAUSES[i].check;
            fix = CAUSES[i].fix;
            if (strstr(line, "database \"") != NULL &&
                strcmp(CAUSES[i].text, "does not exist") == 0)
                check = "database";
            break;
        }
    dr_report(d, n->label, check, DR_FAIL, ms, fix, "%s", line);
}

static bool loopback(const dr_node *n)
{
    const char *h = n->hostaddr[0] ? n->hostaddr : n->host;
    return n->socket || strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
           strcmp(h, "::1") == 0;
}

static void check_tls_auth(doctor *d, dr_node *n, PGconn *pg, double ms)
{
    const char *mode = "prefer";
    PQconninfoOption *info = PQconninfo(pg);
    for (PQconninfoOption *o = info; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "sslmode") == 0 && o->val != NULL)
            mode = o->val;
    if (PQsslInUse(pg)) {
        const char *proto = PQsslAttribute(pg, "protocol"), *cipher = PQsslAttribute(pg, "cipher");
        bool full = strcmp(mode, "verify-full") == 0, ca = strcmp(mode, "verify-ca") == 0;
        if (full || ca)
            dr_report(d, n->label, "tls", DR_PASS, 0, NULL,
                      "%s (%s); certificate verified%s (sslmode=%s)", proto ? proto : "TLS",
                      cipher ? cipher : "?", full ? ", host name too" : ", host name not", mode);
        else
            dr_report(d, n->label, "tls", loopback(n) ? DR_PASS : DR_WARN, 0,
                      "verify the server: sslmode=verify-full sslrootcert=CA-FILE",
                      "%s (%s); certificate not verified (sslmode=%s)", proto ? proto : "TLS",
                      cipher ? cipher : "?", mode);
    } else {
        dr_report(d, n->label, "tls", loopback(n) ? DR_PASS : DR_WARN, 0,
                  "encrypt: sslmode=verify-full sslrootcert=CA-FILE (the server needs ssl = on)",
                  "not used (sslmode=%s)%s", mode,
                  loopback(n) ? "; this machine only" : "; passwords and data cross the network");
    }
    PQconninfoFree(info);
    char err[512];
    if (!PQconnectionUsedPassword(pg)) {
        dr_report(d, n->label, "auth", DR_PASS, ms, NULL,
                  "as %s, no password asked (trust, peer or certificate); session open in %.1f ms",
                  PQuser(pg), ms);
        return;
    }
    const char *method = "scram-sha-256 or md5: the stored hash is visible to superusers only";
    PGresult *r =
        query(pg,
              "SELECT CASE WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256' "
              "WHEN rolpassword LIKE 'md5%' THEN 'md5' END AS m FROM pg_catalog.pg_authid "
              "WHERE rolname = current_user",
              NULL, err, sizeof err);
    if (r != NULL && field(r, 0, "m") != NULL)
        method = field(r, 0, "m");
    dr_report(d, n->label, "auth", DR_PASS, ms, NULL,
              "as %s, by password (%s); session open in %.1f ms", PQuser(pg), method, ms);
    PQclear(r);
}

static void check_server(doctor *d, dr_node *n, PGconn *pg)
{
    double t0 = cli_now_ms();
    char v[512];
    bool ok = value(pg, "SELECT version()", v, sizeof v);
    int num = PQserverVersion(pg);
    bool old = num > 0 && num < 110000;
    dr_report(d, n->label, "server", old ? DR_FAIL : DR_PASS, cli_now_ms() - t0,
              old ? "Apache AGE needs PostgreSQL 11 or newer" : NULL, "%s%s", v,
              ok && strstr(v, "wasm") ? " (PGlite: one session for every client; no COPY)" : "");
}

/* Copy into out[cap] the column `want` of the first row of a successful
 * result whose column `col` equals `key`. */
static void lookup(const PGresult *r, const char *col, const char *key, const char *want, char *out,
                   size_t cap)
{
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        const char *k = field(r, i, col), *v = field(r, i, want);
        if (k != NULL && strcmp(k, key) == 0 && v != NULL) {
            snprintf(out, cap, "%s", v);
            return;
        }
    }
}

/* PgBouncer's pool mode for our database from its admin console, or "". */
static void bouncer_mode(doctor *d, const dr_node *n, PGconn *pg, char *mode, size_t cap, char *why,
                         size_t whycap)
{
    mode[0] = '\0';
    PGconn *adm = dr_connect(d, n, "pgbouncer");
    if (PQstatus(adm) != CONNECTION_OK) {
        one_line(PQerrorMessage(adm), why, whycap);
        PQfinish(adm);
        return;
    }
    PGresult *r = PQexec(adm, "SHOW DATABASES");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        one_line(PQresultErrorMessage(r), why, whycap);
    lookup(r, "name", PQdb(pg), "pool_mode", mode, cap);
    PQclear(r);
    if (mode[0] == '\0' && why[0] == '\0') { /* the database follows the global pool_mode */
        r = PQexec(adm, "SHOW CONFIG");
        lookup(r, "key", "pool_mode", "value", mode, cap);
        PQclear(r);
    }
    PQfinish(adm);
}

static pooler check_pooler(doctor *d, dr_node *n, PGconn *pg)
{
    double t0 = cli_now_ms();
    char p[512];
    int server_port = value(pg, "SELECT inet_server_port()", p, sizeof p) && p[0] ? atoi(p) : -1;
    if (server_port <= 0 || server_port == atoi(n->port)) {
        dr_report(d, n->label, "pgbouncer", DR_PASS, cli_now_ms() - t0, NULL,
                  "not behind a pooler: the server's own port is %s",
                  server_port > 0 ? "the one dialed" : "not on TCP (a unix socket)");
        return POOLER_NONE;
    }
    char mode[32], why[512] = "";
    bouncer_mode(d, n, pg, mode, sizeof mode, why, sizeof why);
    bool unnamed = d->c->statement_mode == AGEC_STMT_UNNAMED;
    bool preloaded = d->c->age_mode == AGEC_AGE_PRELOADED || d->c->age_mode == AGEC_AGE_OFF;
    const char *fix = "--statement-mode unnamed and AGE loaded by the server, --age-mode preloaded "
                      "(statement_mode = AGEC_STMT_UNNAMED, age_mode = AGEC_AGE_PRELOADED; "
                      "docs/pgbouncer.md)";
    double ms = cli_now_ms() - t0;
    if (mode[0] == '\0') {
        dr_report(d, n->label, "pgbouncer", unnamed && preloaded ? DR_PASS : DR_WARN, ms,
                  "if it is PgBouncer in transaction or statement mode: --statement-mode unnamed "
                  "and --age-mode preloaded (docs/pgbouncer.md); list this user in admin_users or "
                  "stats_users to let doctor tell",
                  "a pooler or proxy is in between (the server's port is %d, the one dialed %s); "
                  "its pool mode is unknown (PgBouncer's admin console: %s)",
                  server_port, n->port, why[0] ? why : "no answer");
        return POOLER_UNKNOWN;
    }
    if (strcmp(mode, "session") == 0) {
        dr_report(d, n->label, "pgbouncer", DR_PASS, ms, NULL,
                  "PgBouncer, pool_mode session: a session keeps its server connection (named "
                  "statements and LOAD 'age' work as on a direct connection)");
        return POOLER_SESSION;
    }
    dr_status st = !unnamed ? DR_FAIL : (preloaded ? DR_PASS : DR_WARN);
    dr_report(d, n->label, "pgbouncer", st, ms, fix,
              "PgBouncer, pool_mode %s: each transaction may get another server connection, so "
              "prepared statements and session settings do not carry over%s; this run: "
              "--statement-mode %s, --age-mode %s",
              mode,
              strcmp(mode, "statement") == 0 ? " (and transactions of several statements are "
                                               "refused)"
                                             : "",
              unnamed ? "unnamed" : "named", preloaded ? "preloaded/off" : "load/plugins");
    return POOLER_TXN;
}

/* "age" appears as an item of a comma-separated list of libraries. */
static bool lists_age(const char *libs)
{
    for (const char *p = libs; p != NULL && *p != '\0';) {
        p += strspn(p, " ,'\"");
        size_t len = strcspn(p, " ,'\"");
        if ((len == 3 && strncmp(p, "age", 3) == 0) ||
            (len > 4 && strncmp(p + len - 4, "/age", 4) == 0))
            return true;
        p += len;
    }
    return false;
}

static void check_age(doctor *d, dr_node *n, PGconn *pg, pooler pool_mode)
{
    if (d->c->age_mode == AGEC_AGE_OFF) {
        dr_report(d, n->label, "age", DR_SKIP, 0, NULL, "--age-mode off: AGE is not used");
        return;
    }
    double t0 = cli_now_ms();
    char err[512], err2[512] = "";
    PGresult *r =
        query(pg, "SELECT extversion AS v FROM pg_catalog.pg_extension WHERE extname = 'age'", NULL,
              err, sizeof err);
    if (r != NULL && PQntuples(r) == 1) {
        dr_report(d, n->label, "age_installed", DR_PASS, cli_now_ms() - t0, NULL,
                  "Apache AGE %s is installed in database %s", field(r, 0, "v"), PQdb(pg));
    } else {
        PQclear(r);
        r = query(pg,
                  "SELECT default_version AS v FROM pg_catalog.pg_available_extensions WHERE "
                  "name = 'age'",
                  NULL, err, sizeof err);
        bool avail = r != NULL && PQntuples(r) == 1;
        dr_report(d, n->label, "age_installed", DR_FAIL, cli_now_ms() - t0,
                  avail ? "CREATE EXTENSION age; in this database (a superuser, once)"
                        : "install Apache AGE for this PostgreSQL version on the server "
                          "(age.so in $libdir, age.control in the extension directory), then "
                          "CREATE EXTENSION age",
                  avail ? "Apache AGE %s is on the server but not created in database %s"
                        : "Apache AGE is not installed on this server (database %s)",
                  avail ? field(r, 0, "v") : PQdb(pg), PQdb(pg));
    }
    PQclear(r);

    t0 = cli_now_ms();
    char shared[512] = "", session_libs[512] = "";
    r = query(pg,
              "SELECT current_setting('shared_preload_libraries') AS s, "
              "current_setting('session_preload_libraries') AS p",
              NULL, err, sizeof err);
    if (r != NULL) {
        snprintf(shared, sizeof shared, "%s", field(r, 0, "s") ? field(r, 0, "s") : "");
        snprintf(session_libs, sizeof session_libs, "%s", field(r, 0, "p") ? field(r, 0, "p") : "");
    }
    PQclear(r);
    bool pre = lists_age(shared) || lists_age(session_libs);
    r = query(pg, "LOAD 'age'", NULL, err, sizeof err);
    bool load = r != NULL;
    PQclear(r);
    r = query(pg, "LOAD '$libdir/plugins/age'", NULL, err2, sizeof err2);
    bool plugins = r != NULL;
    PQclear(r);
    agec_age_mode m = d->c->age_mode;
    bool ok = (m == AGEC_AGE_LOAD && load) || (m == AGEC_AGE_PLUGINS && plugins) ||
              (m == AGEC_AGE_PRELOADED && pre);
    const char *better = pre ? "--age-mode preloaded"
                             : (load ? "--age-mode load" : (plugins ? "--age-mode plugins" : NULL));
    char detail[1400];
    snprintf(detail, sizeof detail,
             "preloaded by the server: %s; LOAD 'age': %s; LOAD '$libdir/plugins/age': %s",
             pre ? "yes" : "no", load ? "works" : err, plugins ? "works" : err2);
    if (ok)
        dr_report(d, n->label, "age_load", DR_PASS, cli_now_ms() - t0, NULL,
                  "the chosen --age-mode works (%s)", detail);
    else
        dr_report(d, n->label, "age_load", DR_FAIL, cli_now_ms() - t0,
                  better ? better
                         : "let the role load AGE: age.so in $libdir/plugins (--age-mode "
                           "plugins), or session_preload_libraries = 'age' on the server "
                           "(--age-mode preloaded); LOAD 'age' needs a superuser",
                  "the chosen --age-mode does not work (%s)", detail);

    t0 = cli_now_ms();
    char path[512];
    (void)value(pg, "SELECT current_setting('search_path')", path, sizeof path);
    bool has = strstr(path, "ag_catalog") != NULL;
    if (!has && (pool_mode == POOLER_TXN || pool_mode == POOLER_UNKNOWN))
        dr_report(d, n->label, "search_path", DR_WARN, cli_now_ms() - t0,
                  "ALTER ROLE <role> SET search_path = ag_catalog, \"$user\", public (behind a "
                  "transaction pooler agec's own SET reaches one server connection only)",
                  "the server's default is %s", path);
    else
        dr_report(d, n->label, "search_path", DR_PASS, cli_now_ms() - t0, NULL,
                  "the server's default is %s%s", path,
                  has ? "" : "; agec sets ag_catalog, \"$user\", public on each connection");
}

static void check_graph(doctor *d, dr_node *n, PGconn *pg)
{
    const char *g = d->c->graph;
    if (g == NULL) {
        dr_report(d, n->label, "graph", DR_SKIP, 0, NULL, "no --graph given");
        return;
    }
    double t0 = cli_now_ms();
    char err[512];
    PGresult *r =
        query(pg, "SELECT 1 FROM ag_catalog.ag_graph WHERE name = $1", g, err, sizeof err);
    if (r == NULL || PQntuples(r) == 0) {
        char fix[400];
        snprintf(fix, sizeof fix, "%s",
                 r ? "create it: agec graph create NAME (or SELECT create_graph('NAME'))"
                   : "the AGE catalog is missing or not readable: CREATE EXTENSION age, and "
                     "GRANT USAGE ON SCHEMA ag_catalog TO the role");
        dr_report(d, n->label, "graph", DR_FAIL, cli_now_ms() - t0, fix, "graph %s: %s", g,
                  r ? "does not exist" : err);
        PQclear(r);
        return;
    }
    PQclear(r);
    r = query(pg,
              "SELECT has_schema_privilege('ag_catalog', 'USAGE') AS cat, "
              "has_schema_privilege(n.oid, 'USAGE') AS use, "
              "has_schema_privilege(n.oid, 'CREATE') AS cre, count(c.oid) AS tables, "
              "count(c.oid) FILTER (WHERE has_table_privilege(c.oid, 'SELECT')) AS sel, "
              "count(c.oid) FILTER (WHERE has_table_privilege(c.oid, 'INSERT')) AS ins "
              "FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c "
              "ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') "
              "WHERE n.nspname = $1 GROUP BY n.oid",
              g, err, sizeof err);
    if (r == NULL || PQntuples(r) != 1) {
        dr_report(d, n->label, "graph", DR_WARN, cli_now_ms() - t0, NULL,
                  "graph %s exists; its privileges could not be read: %s", g,
                  r ? "no schema of that name" : err);
        PQclear(r);
        return;
    }
    bool cat = field(r, 0, "cat")[0] == 't', use = field(r, 0, "use")[0] == 't';
    bool cre = field(r, 0, "cre")[0] == 't';
    long tables = atol(field(r, 0, "tables")), sel = atol(field(r, 0, "sel")),
         ins = atol(field(r, 0, "ins"));
    char fix[600];
    snprintf(fix, sizeof fix,
             "as the graph's owner: GRANT USAGE ON SCHEMA ag_catalog, \"%s\" TO %s; GRANT "
             "SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"%s\" TO %s; GRANT USAGE "
             "ON ALL SEQUENCES IN SCHEMA \"%s\" TO %s",
             g, PQuser(pg), g, PQuser(pg), g, PQuser(pg));
    dr_status st = !cat || !use || sel < tables ? DR_FAIL : (ins < tables ? DR_WARN : DR_PASS);
    dr_report(d, n->label, "graph", st, cli_now_ms() - t0, fix,
              "graph %s exists; role %s: USAGE on ag_catalog %s, on the graph's schema %s, "
              "CREATE %s; SELECT on %ld of %ld label tables, INSERT on %ld",
              g, PQuser(pg), cat ? "yes" : "NO", use ? "yes" : "NO", cre ? "yes" : "no", sel,
              tables, ins);
    PQclear(r);
}

static void check_connections(doctor *d, dr_node *n, PGconn *pg, pooler pool_mode)
{
    double t0 = cli_now_ms();
    char err[512];
    PGresult *r = query(pg,
                        "SELECT current_setting('max_connections')::int AS max, "
                        "current_setting('superuser_reserved_connections')::int AS reserved, "
                        "(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = "
                        "'client backend') AS used, r.rolsuper AS super, r.rolconnlimit AS lim "
                        "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
                        NULL, err, sizeof err);
    if (r == NULL || PQntuples(r) != 1) {
        dr_report(d, n->label, "connections", DR_WARN, cli_now_ms() - t0, NULL,
                  "could not read max_connections: %s", r ? "no such role" : err);
        PQclear(r);
        return;
    }
    int max = atoi(field(r, 0, "max")), reserved = atoi(field(r, 0, "reserved"));
    int used = atoi(field(r, 0, "used")), lim = atoi(field(r, 0, "lim"));
    if (used < 1)
        used = 1; /* our own session (PGlite lists none) */
    bool super = field(r, 0, "super")[0] == 't';
    PQclear(r);
    /* The pool's max: --pool-max, else the library's default (10). */
    int pool_max = d->c->pool_max > 0 ? d->c->pool_max : 10;
    int free_slots = max - (super ? 0 : reserved) - used + 1; /* our own session is counted */
    char detail[400], limtxt[16];
    snprintf(limtxt, sizeof limtxt, "%d", lim);
    snprintf(detail, sizeof detail,
             "max_connections %d (%d reserved for superusers), %d client connections now, "
             "role limit %s; pool max %d%s",
             max, reserved, used, lim >= 0 ? limtxt : "none", pool_max,
             d->c->pool_max > 0 ? "" : " (the default; --pool-max sets it)");
    if (pool_mode != POOLER_NONE) {
        dr_report(d, n->label, "connections", DR_PASS, cli_now_ms() - t0, NULL,
                  "%s; behind a pooler the pool's max counts against its max_client_conn, the "
                  "server sees the pooler's pool size",
                  detail);
        return;
    }
    if (pool_max > free_slots || (lim >= 0 && pool_max > lim))
        dr_report(d, n->label, "connections", DR_WARN, cli_now_ms() - t0,
                  "lower the pool's max (--pool-max, agec_pool_config.max) below the free "
                  "slots, raise max_connections (or the role's CONNECTION LIMIT), or put "
                  "PgBouncer in front",
                  "%s: only %d free", detail, lim >= 0 && lim < free_slots ? lim : free_slots);
    else
        dr_report(d, n->label, "connections", DR_PASS, cli_now_ms() - t0, NULL, "%s: %d free",
                  detail, free_slots);
}

static void check_role(doctor *d, dr_node *n, PGconn *pg)
{
    double t0 = cli_now_ms();
    char err[512];
    PGresult *r = query(pg,
                        "SELECT pg_is_in_recovery() AS rec, (CASE WHEN pg_is_in_recovery() THEN "
                        "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn, "
                        "(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)"
                        "::float8 AS age",
                        NULL, err, sizeof err);
    if (r == NULL) {
        dr_report(d, n->label, "role", DR_WARN, cli_now_ms() - t0, NULL, "could not tell: %s", err);
        return;
    }
    n->role = field(r, 0, "rec")[0] == 't' ? 1 : 0;
    snprintf(n->lsn, sizeof n->lsn, "%s", field(r, 0, "lsn") ? field(r, 0, "lsn") : "");
    if (field(r, 0, "age") != NULL)
        n->replay_age_ms = atof(field(r, 0, "age"));
    PQclear(r);
    bool lone_standby = n->role == 1 && d->nnodes == 1;
    dr_report(d, n->label, "role", lone_standby ? DR_WARN : DR_PASS, cli_now_ms() - t0,
              "writes fail on a hot standby (25006): point --dsn at the primary, or list every "
              "host (host=a,b,c) and let agec route",
              "%s, WAL %s %s", n->role ? "hot standby" : "primary",
              n->role ? "replayed up to" : "at", n->lsn[0] ? n->lsn : "?");
}

/* Every check of one node that needs a session. */
static void check_node(doctor *d, dr_node *n)
{
    double t0 = cli_now_ms();
    PGconn *pg = dr_connect(d, n, NULL);
    double ms = cli_now_ms() - t0;
    if (PQstatus(pg) != CONNECTION_OK) {
        connect_failed(d, n, PQerrorMessage(pg), ms);
        PQfinish(pg);
        return;
    }
    n->session = true;
    check_tls_auth(d, n, pg, ms);
    check_server(d, n, pg);
    pooler mode = check_pooler(d, n, pg);
    check_age(d, n, pg, mode);
    check_graph(d, n, pg);
    check_connections(d, n, pg, mode);
    check_role(d, n, pg);
    PQfinish(pg);
}

/* A multi-host DSN as one cluster: one primary, the standbys' lag. */
static void check_cluster(doctor *d)
{
    int primaries = 0, primary = -1;
    for (int i = 0; i < d->nnodes; i++)
        if (d->nodes[i].role == 0) {
            primaries++;
            primary = i;
        }
    agec_lsn top = 0;
    if (primary >= 0)
        (void)agec_lsn_parse(d->nodes[primary].lsn, &top);
    char detail[1500];
    size_t len = (size_t)snprintf(detail, sizeof detail, "primary %s",
                                  primary >= 0 ? d->nodes[primary].label : "none");
    for (int i = 0; i < d->nnodes && len < sizeof detail; i++) {
        const dr_node *n = &d->nodes[i];
        agec_lsn at = 0;
        if (n->role == 1 && agec_lsn_parse(n->lsn, &at)) {
            char replay[64] = "no transaction replayed yet";
            if (n->replay_age_ms >= 0)
                snprintf(replay, sizeof replay, "last transaction replayed %.0f ms ago",
                         n->replay_age_ms);
            len += (size_t)snprintf(detail + len, sizeof detail - len,
                                    "; standby %s: %lld bytes behind the primary, %s", n->label,
                                    top >= at ? (long long)(top - at) : 0LL, replay);
        } else if (n->role < 0)
            len +=
                (size_t)snprintf(detail + len, sizeof detail - len, "; %s: role unknown", n->label);
    }
    dr_status st = primaries == 1 ? DR_PASS : DR_FAIL;
    dr_report(d, NULL, "cluster", st, 0,
              primaries == 0 ? "no primary answers: writes wait for one; promote a standby "
                               "(the failover tool), or check the host list"
                             : "two servers out of recovery: an old primary still running? "
                               "stop it or rejoin it as a standby (pg_rewind)",
              "%s", detail);
}

int cmd_doctor(cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        return cli_usage_error("doctor: unknown argument '%s'", argv[i]);
    doctor *d = calloc(1, sizeof *d);
    if (d == NULL)
        return cli_fail("doctor", AGEC_ERR_NO_MEMORY, NULL);
    d->c = c;
    d->json = cli_format(c) == FMT_JSON;
    int sessions = 0;
    if (dr_parse_dsn(d)) {
        for (int i = 0; i < d->nnodes; i++) {
            dr_node *n = &d->nodes[i];
            if (dr_check_network(d, n))
                check_node(d, n);
            sessions += n->session;
        }
        if (d->nnodes > 1)
            check_cluster(d);
    }
    int rc = sessions == 0 ? EXIT_CONN : (d->failed > 0 ? EXIT_QUERY : EXIT_OK);
    if (!d->json && !c->quiet)
        printf("%d failed, %d warnings: %s\n", d->failed, d->warned,
               rc == EXIT_OK ? "all checks passed"
                             : (rc == EXIT_CONN ? "no session could be opened" : "see FAIL above"));
    PQconninfoFree(d->opts);
    free(d);
    return rc;
}
