/* agec doctor: reporting, the DSN, name resolution and TCP (doctor.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor.h"

static const char *const STATUS[] = { "pass", "warn", "fail", "skip" };

/* Copy src to dst[cap], each occurrence of secret replaced by ***. */
static void scrub(char *dst, size_t cap, const char *src, const char *secret)
{
    size_t n = 0, sl = strlen(secret);
    while (*src != '\0' && n + 1 < cap) {
        if (sl > 0 && strncmp(src, secret, sl) == 0) {
            for (const char *r = "***"; *r != '\0' && n + 1 < cap; r++)
                dst[n++] = *r;
            src += sl;
            continue;
        }
        dst[n++] = *src++;
    }
    dst[n] = '\0';
}

void dr_report(doctor *d, const char *node, const char *check, dr_status st, double ms,
               const char *remedy, const char *fmt, ...)
{
    char raw[2048], detail[2048], fix[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    scrub(detail, sizeof detail, raw, d->secret);
    if (remedy != NULL)
        scrub(fix, sizeof fix, remedy, d->secret);
    if (st == DR_FAIL)
        d->failed++;
    else if (st == DR_WARN)
        d->warned++;
    if (d->json) {
        printf("{\"check\": \"%s\", \"node\": ", check);
        if (node != NULL)
            cli_json_string(node, strlen(node), stdout);
        else
            fputs("null", stdout);
        printf(", \"status\": \"%s\", \"ms\": %.3f, \"detail\": ", STATUS[st], ms);
        cli_json_string(detail, strlen(detail), stdout);
        fputs(", \"remedy\": ", stdout);
        if (remedy != NULL)
            cli_json_string(fix, strlen(fix), stdout);
        else
            fputs("null", stdout);
        fputs("}\n", stdout);
    } else {
        static const char *const TAG[] = { "ok", "WARN", "FAIL", "skip" };
        printf("%-4s %8.1f ms  %-14s%s%s\n", TAG[st], ms, check, node ? " " : "", node ? node : "");
        printf("%-30s%s\n", "", detail);
        if (remedy != NULL && (st == DR_FAIL || st == DR_WARN))
            printf("%-30s-> %s\n", "", fix);
    }
    fflush(stdout);
}

const char *dr_keyword(const doctor *d, const char *kw)
{
    for (int i = 0; i < d->nkw; i++)
        if (strcmp(d->kw[i], kw) == 0)
            return d->val[i];
    return NULL;
}

/* Item i of a comma-separated list (the last one when the list is shorter,
 * libpq's rule for a single port), or "" when the list is empty. */
static void list_item(const char *list, int i, char *out, size_t cap)
{
    out[0] = '\0';
    if (list == NULL)
        return;
    const char *p = list;
    for (int k = 0; k < i; k++) {
        const char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    size_t len = strcspn(p, ",");
    snprintf(out, cap, "%.*s", (int)len, p);
}

static int list_len(const char *list)
{
    if (list == NULL || list[0] == '\0')
        return 0;
    int n = 1;
    for (const char *p = list; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

bool dr_parse_dsn(doctor *d)
{
    double t0 = cli_now_ms();
    const char *dsn = d->c->dsn ? d->c->dsn : "";
    char *errmsg = NULL;
    PQconninfoOption *given = PQconninfoParse(dsn, &errmsg);
    if (given == NULL) {
        /* libpq's message may quote the DSN: the password is scrubbed by
         * dr_report only if we know it, so show libpq's message alone. */
        dr_report(d, NULL, "dsn", DR_FAIL, cli_now_ms() - t0,
                  "write it as libpq keywords (host=H port=P dbname=D user=U) or a URI "
                  "(postgresql://user@host:port/dbname)",
                  "does not parse: %s", errmsg ? strtok(errmsg, "\n") : "out of memory");
        PQfreemem(errmsg);
        return false;
    }
    /* libpq's defaults and environment (PGHOST, PGPORT, ...) for the rest. */
    d->opts = PQconndefaults();
    char shown[1024] = "";
    size_t len = 0;
    for (PQconninfoOption *o = given; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        for (PQconninfoOption *x = d->opts; x != NULL && x->keyword != NULL; x++)
            if (strcmp(x->keyword, o->keyword) == 0) {
                free(x->val);
                x->val = strdup(o->val);
            }
        bool pw = strcmp(o->keyword, "password") == 0;
        if (pw)
            snprintf(d->secret, sizeof d->secret, "%s", o->val);
        len += (size_t)snprintf(shown + len, len < sizeof shown ? sizeof shown - len : 0, "%s%s=%s",
                                len ? " " : "", o->keyword, pw ? "***" : o->val);
        if (len >= sizeof shown)
            len = sizeof shown - 1;
    }
    PQconninfoFree(given);
    for (PQconninfoOption *x = d->opts; x != NULL && x->keyword != NULL && d->nkw < DR_MAX_KW; x++)
        if (x->val != NULL && x->val[0] != '\0' && strcmp(x->keyword, "target_session_attrs")) {
            if (strcmp(x->keyword, "password") == 0 && d->secret[0] == '\0')
                snprintf(d->secret, sizeof d->secret, "%s", x->val); /* PGPASSWORD */
            d->kw[d->nkw] = x->keyword;
            d->val[d->nkw++] = x->val;
        }
    const char *hosts = dr_keyword(d, "host"), *addrs = dr_keyword(d, "hostaddr");
    const char *ports = dr_keyword(d, "port");
    int n = list_len(hosts) > list_len(addrs) ? list_len(hosts) : list_len(addrs);
    if (n == 0)
        n = 1;
    if (n > DR_MAX_NODES) {
        dr_report(d, NULL, "dsn", DR_FAIL, cli_now_ms() - t0, "list at most 16 hosts", "%d hosts",
                  n);
        return false;
    }
    d->nnodes = n;
    for (int i = 0; i < n; i++) {
        dr_node *nd = &d->nodes[i];
        list_item(hosts, i, nd->host, sizeof nd->host);
        list_item(addrs, i, nd->hostaddr, sizeof nd->hostaddr);
        list_item(ports, i, nd->port, sizeof nd->port);
        if (nd->port[0] == '\0')
            snprintf(nd->port, sizeof nd->port, "5432");
        nd->socket = nd->hostaddr[0] == '\0' && (nd->host[0] == '\0' || nd->host[0] == '/');
        char label[sizeof nd->label]; /* not straight into nd: gcc's -Wrestrict */
        snprintf(label, sizeof label, "%s:%s",
                 nd->host[0] ? nd->host : (nd->hostaddr[0] ? nd->hostaddr : "(socket)"), nd->port);
        memcpy(nd->label, label, sizeof label);
        nd->role = -1;
        nd->replay_age_ms = -1;
    }
    dr_report(d, NULL, "dsn", DR_PASS, cli_now_ms() - t0, NULL, "%s; %d host%s%s",
              shown[0] ? shown : "(empty: libpq's environment and defaults)", n, n == 1 ? "" : "s",
              d->secret[0] ? "; a password is given (not shown)" : "");
    return true;
}

/* Connect to one address within ms; 0 or the errno. */
static int tcp_try(const struct sockaddr *sa, socklen_t salen, int ms)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    int rc = 0;
    if (connect(fd, sa, salen) != 0) {
        rc = errno;
        if (rc == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int k = poll(&p, 1, ms);
            if (k == 0) {
                rc = ETIMEDOUT;
            } else if (k < 0) {
                rc = errno;
            } else {
                socklen_t l = sizeof rc;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &l) != 0)
                    rc = errno;
            }
        }
    }
    close(fd);
    return rc;
}

static bool check_socket(doctor *d, dr_node *n)
{
    double t0 = cli_now_ms();
    char path[400];
    snprintf(path, sizeof path, "%s/.s.PGSQL.%s", n->host[0] ? n->host : "/var/run/postgresql",
             n->port);
    struct stat st;
    bool ok = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    dr_report(d, n->label, "socket", ok ? DR_PASS : DR_FAIL, cli_now_ms() - t0,
              ok ? NULL
                 : "is the server running on this machine? check unix_socket_directories "
                   "and the port, or give host=ADDRESS for TCP",
              ok ? "unix socket %s" : "no unix socket %s", path);
    n->tcp_ok = ok;
    return ok;
}

bool dr_check_network(doctor *d, dr_node *n)
{
    if (n->socket)
        return check_socket(d, n);
    double t0 = cli_now_ms();
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    const char *name = n->hostaddr[0] ? n->hostaddr : n->host;
    if (n->hostaddr[0])
        hints.ai_flags = AI_NUMERICHOST;
    int g = getaddrinfo(name, n->port, &hints, &res);
    if (g != 0) {
        dr_report(d, n->label, "resolve", DR_FAIL, cli_now_ms() - t0,
                  "check the host name (a typo? the DNS server? /etc/hosts), or give "
                  "hostaddr=IP",
                  "%s does not resolve: %s", name, gai_strerror(g));
        return false;
    }
    char addrs[512] = "";
    size_t len = 0;
    for (struct addrinfo *a = res; a != NULL && len + 64 < sizeof addrs; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "?";
        const void *src = a->ai_family == AF_INET6
                              ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                              : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
        inet_ntop(a->ai_family, src, ip, sizeof ip);
        if (strstr(addrs, ip) == NULL)
            len += (size_t)snprintf(addrs + len, sizeof addrs - len, "%s%s", len ? ", " : "", ip);
    }
    dr_report(d, n->label, "resolve", DR_PASS, cli_now_ms() - t0, NULL, "%s -> %s", name, addrs);
    t0 = cli_now_ms();
    int err = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        err = tcp_try(a->ai_addr, a->ai_addrlen, d->c->connect_timeout_ms);
        if (err == 0)
            break;
    }
    freeaddrinfo(res);
    n->tcp_ok = err == 0;
    if (err == 0) {
        dr_report(d, n->label, "tcp", DR_PASS, cli_now_ms() - t0, NULL, "connected to %s port %s",
                  addrs, n->port);
        return true;
    }
    const char *fix =
        err == ECONNREFUSED
            ? "nothing listens there: is the server running, on this port? (postgresql.conf: "
              "port, listen_addresses)"
            : "a firewall, a security group or a wrong address? check the route to the "
              "host and the port (--connect-timeout sets the limit)";
    dr_report(d, n->label, "tcp", DR_FAIL, cli_now_ms() - t0, fix, "port %s of %s: %s", n->port,
              addrs, err == ETIMEDOUT ? "no answer within the connect timeout" : strerror(err));
    return false;
}

PGconn *dr_connect(doctor *d, const dr_node *n, const char *dbname)
{
    const char *kw[DR_MAX_KW + 8], *val[DR_MAX_KW + 8];
    int k = 0;
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", (d->c->connect_timeout_ms + 999) / 1000);
    for (int i = 0; i < d->nkw; i++) {
        const char *key = d->kw[i];
        if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0 || strcmp(key, "port") == 0 ||
            strcmp(key, "connect_timeout") == 0 || (dbname != NULL && strcmp(key, "dbname") == 0))
            continue;
        kw[k] = key;
        val[k++] = d->val[i];
    }
    if (n->host[0]) {
        kw[k] = "host";
        val[k++] = n->host;
    }
    if (n->hostaddr[0]) {
        kw[k] = "hostaddr";
        val[k++] = n->hostaddr;
    }
    kw[k] = "port";
    val[k++] = n->port;
    kw[k] = "connect_timeout";
    val[k++] = timeout;
    if (dbname != NULL) {
        kw[k] = "dbname";
        val[k++] = dbname;
    }
    kw[k] = "fallback_application_name";
    val[k++] = "agec-doctor";
    kw[k] = NULL;
    val[k] = NULL;
    return PQconnectdbParams(kw, val, 0);
}
