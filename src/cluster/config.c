/* Cluster configuration: defaults, splitting a multi-host conninfo (or a
 * host list) into one conninfo per node, LSN text, role names. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "common/error_internal.h"
#include "session/redact.h"

void agec_cluster_config_init(agec_cluster_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->read_policy = AGEC_READ_PREFER_STANDBY;
    cfg->max_lag_ms = 5000;
    cfg->recheck_ms = 500;
    cfg->ryw_wait_ms = 1000;
    cfg->name = "agec";
}

const char *agec_node_role_name(agec_node_role role)
{
    switch (role) {
    case AGEC_NODE_PRIMARY:
        return "primary";
    case AGEC_NODE_STANDBY:
        return "standby";
    case AGEC_NODE_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

bool agec_lsn_parse(const char *text, agec_lsn *out)
{
    if (text == NULL || out == NULL)
        return false;
    char *end = NULL;
    if (!isxdigit((unsigned char)text[0]))
        return false;
    unsigned long long hi = strtoull(text, &end, 16);
    if (*end != '/' || !isxdigit((unsigned char)end[1]) || hi > 0xFFFFFFFFull)
        return false;
    const char *lo_s = end + 1;
    unsigned long long lo = strtoull(lo_s, &end, 16);
    if (*end != '\0' || lo > 0xFFFFFFFFull)
        return false;
    *out = (agec_lsn)(hi << 32 | lo);
    return true;
}

char *agec_lsn_format(agec_lsn lsn, char *buf, size_t cap)
{
    if (buf != NULL && cap > 0)
        snprintf(buf, cap, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
    return buf;
}

/* ---- splitting the hosts ------------------------------------------------- */

/* Split "a,b,c" into at most max items (each copied into dst[i][cap]).
 * Returns the count, or -1 if there are too many or one is too long. */
static int split_list(const char *s, char dst[][256], int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= max || len >= 256)
            return -1;
        memcpy(dst[n], p, len);
        dst[n][len] = '\0';
        n++;
        if (comma == NULL)
            return n;
        p = comma + 1;
    }
}

static bool parse_port(const char *s, int *out)
{
    if (s == NULL || *s == '\0')
        return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return false;
    }
    *out = (int)v;
    return v > 0;
}

/* "host" or "host:port" or "[v6]:port" from the hosts array. */
static bool split_host_port(const char *s, char host[256], int *port)
{
    const char *colon = strrchr(s, ':');
    size_t hl = strlen(s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return false;
        hl = (size_t)(close - s - 1);
        if (hl >= 256)
            return false;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        return close[1] == '\0' || (close[1] == ':' && parse_port(close + 2, port));
    }
    if (colon != NULL && strchr(s, ':') == colon) {
        hl = (size_t)(colon - s);
        if (!parse_port(colon + 1, port))
            return false;
    }
    if (hl == 0 || hl >= 256)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    return true;
}

/* Append " key='value'" with libpq quoting to a growing buffer. */
static bool append_kv(char **buf, size_t *len, size_t *cap, const char *k, const char *v)
{
    size_t need = *len + strlen(k) + 2 * strlen(v) + 8;
    if (need > *cap) {
        size_t nc = need * 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            return false;
        *buf = nb;
        *cap = nc;
    }
    char *o = *buf + *len;
    if (*len > 0)
        *o++ = ' ';
    o += sprintf(o, "%s='", k);
    for (const char *p = v; *p; p++) {
        if (*p == '\'' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    *o++ = '\'';
    *o = '\0';
    *len = (size_t)(o - *buf);
    return true;
}

/* Keywords the cluster sets per node. application_name stays: the node
 * pools apply the template's as libpq's fallback (or override), as a plain
 * pool does, so that the conninfo's (and PGAPPNAME) name the sessions. */
static bool skip_key(const char *k)
{
    return strcmp(k, "host") == 0 || strcmp(k, "hostaddr") == 0 || strcmp(k, "port") == 0 ||
           strcmp(k, "target_session_attrs") == 0;
}

/* Keyword arrays of the monitor connection: every option of `conninfo`
 * plus application_name. */
static bool make_keys(agec__node *nd, const char *conninfo, const char *app)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return false;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    nd->mon_keys = calloc((size_t)n + 2, sizeof(char *));
    nd->mon_vals = calloc((size_t)n + 2, sizeof(char *));
    bool ok = nd->mon_keys && nd->mon_vals;
    int k = 0;
    for (PQconninfoOption *o = opts; ok && o->keyword; o++) {
        if (o->val == NULL || strcmp(o->keyword, "application_name") == 0)
            continue;
        nd->mon_keys[k] = strdup(o->keyword);
        nd->mon_vals[k] = strdup(o->val);
        ok = nd->mon_keys[k] && nd->mon_vals[k];
        k++;
    }
    if (ok) {
        nd->mon_keys[k] = strdup("application_name");
        nd->mon_vals[k] = strdup(app);
        ok = nd->mon_keys[k] && nd->mon_vals[k];
    }
    PQconninfoFree(opts);
    return ok;
}

void agec__cluster_free_keys(agec__node *nd)
{
    for (int i = 0; nd->mon_keys && nd->mon_keys[i]; i++)
        free(nd->mon_keys[i]);
    for (int i = 0; nd->mon_vals && nd->mon_vals[i]; i++)
        free(nd->mon_vals[i]);
    free(nd->mon_keys);
    free(nd->mon_vals);
    nd->mon_keys = nd->mon_vals = NULL;
}

agec_status agec__cluster_parse(struct agec_cluster *cl, const agec_cluster_config *cfg,
                                char **conninfos, agec_error *err)
{
    /* libpq's messages quote input tokens (a password's among them):
     * agec__conninfo_parse redacts them. */
    PQconninfoOption *opts = NULL;
    agec_status pst = agec__conninfo_parse(cfg->conninfo, &opts, err);
    if (pst != AGEC_OK)
        return pst;
    /* hosts, hostaddrs, ports: 3 x MAX_NODES strings, on the heap. */
    char(*h)[256] = calloc(3 * AGEC_CLUSTER_MAX_NODES, 256);
    agec_status st = AGEC_OK;
    char *base = NULL;
    size_t blen = 0, bcap = 0;
    if (h == NULL) {
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    char(*a)[256] = h + AGEC_CLUSTER_MAX_NODES;
    char(*p)[256] = h + 2 * AGEC_CLUSTER_MAX_NODES;
    const char *hostv = NULL, *addrv = NULL, *portv = NULL;
    base = malloc(1);
    if (base == NULL) {
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    base[0] = '\0';
    bcap = 1;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            hostv = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            addrv = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            portv = o->val;
        if (!skip_key(o->keyword) && !append_kv(&base, &blen, &bcap, o->keyword, o->val)) {
            st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
    }
    if (hostv == NULL)
        hostv = getenv("PGHOST");
    if (portv == NULL)
        portv = getenv("PGPORT");
    int n = 0, np = 0, na = 0, defport = 5432;
    if (cfg->hosts != NULL && cfg->n_hosts > 0) {
        if (cfg->n_hosts > AGEC_CLUSTER_MAX_NODES) {
            st = agec__error_set(err, AGEC_ERR_CONFIG, "hosts: at most %d nodes (got %d)",
                                 AGEC_CLUSTER_MAX_NODES, cfg->n_hosts);
            goto out;
        }
        if (portv != NULL && strchr(portv, ',') == NULL && !parse_port(portv, &defport)) {
            st = agec__error_set(err, AGEC_ERR_CONFIG, "conninfo: bad port \"%s\"", portv);
            goto out;
        }
        n = cfg->n_hosts;
        for (int i = 0; i < n; i++) {
            cl->nodes[i].port = defport;
            if (cfg->hosts[i] == NULL ||
                !split_host_port(cfg->hosts[i], cl->nodes[i].host, &cl->nodes[i].port)) {
                st = agec__error_set(err, AGEC_ERR_CONFIG,
                                     "hosts[%d]: not \"host\" or \"host:port\"", i);
                goto out;
            }
            a[i][0] = '\0';
        }
    } else {
        if (hostv == NULL || *hostv == '\0') {
            st = agec__error_set(err, AGEC_ERR_CONFIG,
                                 "conninfo: no host (give host=a,b,c, or hosts/n_hosts)");
            goto out;
        }
        n = split_list(hostv, h, AGEC_CLUSTER_MAX_NODES);
        if (n < 0) {
            st = agec__error_set(err, AGEC_ERR_CONFIG, "conninfo: more than %d hosts",
                                 AGEC_CLUSTER_MAX_NODES);
            goto out;
        }
        if (addrv != NULL && (na = split_list(addrv, a, AGEC_CLUSTER_MAX_NODES)) != n) {
            st = agec__error_set(err, AGEC_ERR_CONFIG,
                                 "conninfo: hostaddr lists %d addresses for %d hosts", na, n);
            goto out;
        }
        np = portv ? split_list(portv, p, AGEC_CLUSTER_MAX_NODES) : 0;
        if (np != 0 && np != 1 && np != n) {
            st = agec__error_set(err, AGEC_ERR_CONFIG,
                                 "conninfo: port lists %d ports for %d hosts (give 1 or %d)", np, n,
                                 n);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            snprintf(cl->nodes[i].host, sizeof cl->nodes[i].host, "%s", h[i]);
            cl->nodes[i].port = defport;
            if (np > 0 && !parse_port(p[np == 1 ? 0 : i], &cl->nodes[i].port)) {
                st = agec__error_set(err, AGEC_ERR_CONFIG, "conninfo: bad port \"%s\"",
                                     p[np == 1 ? 0 : i]);
                goto out;
            }
            if (na == 0)
                a[i][0] = '\0';
        }
    }
    for (int i = 0; i < n; i++) {
        agec__node *nd = &cl->nodes[i];
        char *ci = malloc(blen + 1);
        size_t len = blen, cap = blen + 1;
        char portbuf[16], monapp[160];
        snprintf(portbuf, sizeof portbuf, "%d", nd->port);
        snprintf(monapp, sizeof monapp, "%s-monitor", cl->name);
        bool ok = ci != NULL;
        if (ok)
            memcpy(ci, base, blen + 1);
        ok = ok && append_kv(&ci, &len, &cap, "host", nd->host);
        ok = ok && (a[i][0] == '\0' || append_kv(&ci, &len, &cap, "hostaddr", a[i]));
        ok = ok && append_kv(&ci, &len, &cap, "port", portbuf);
        conninfos[i] = ci;
        if (!ok || !make_keys(nd, ci, monapp)) {
            st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        char pname[sizeof nd->pool_name];
        snprintf(pname, sizeof pname, "%s:%s:%d", cl->name, nd->host, nd->port);
        memcpy(nd->pool_name, pname, sizeof pname);
    }
    cl->n = n;
out:
    if (st != AGEC_OK && err != NULL) {
        /* A host or port echoed above may hold a piece of a password. */
        agec__secrets sec;
        agec__secrets_init(&sec);
        agec__secrets_from_text(&sec, cfg->conninfo);
        agec__secrets_from_options(&sec, opts);
        char red[AGEC_ERROR_TEXT_MAX];
        agec__redact(err->message, &sec, red, sizeof red);
        agec__copy_text(err->message, sizeof err->message, red);
    }
    free(h);
    free(base);
    PQconninfoFree(opts);
    return st;
}
