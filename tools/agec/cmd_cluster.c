/* agec cluster: the nodes of a multi-host DSN, their roles, lag and use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_json(const agec_cluster_node_stats *s, int i, bool primary)
{
    char lsn[24];
    /* host comes from the DSN: escape what JSON needs. */
    printf("{\"node\": %d, \"host\": \"", i);
    for (const char *p = s->host; *p; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar(*p);
    }
    printf("\", \"port\": %d, \"role\": \"%s\", \"primary\": %s, \"in_rotation\": %s, "
           "\"lag_ms\": %lld, \"lsn\": \"%s\", \"in_use\": %d, \"idle\": %d, "
           "\"breaker\": \"%s\", \"acquires_read\": %llu, \"acquires_write\": %llu, "
           "\"errors\": %llu}\n",
           s->port, agec_node_role_name(s->role), primary ? "true" : "false",
           s->in_rotation ? "true" : "false", (long long)s->lag_ms,
           agec_lsn_format(s->lsn, lsn, sizeof lsn), s->in_use, s->idle,
           agec_breaker_state_name(s->breaker), (unsigned long long)s->acquires_read,
           (unsigned long long)s->acquires_write,
           (unsigned long long)(s->acquire_errors + s->check_failures));
}

int cmd_cluster(cli *c, int argc, char **argv)
{
    bool prom = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prometheus") == 0)
            prom = true;
        else
            return cli_usage_error("cluster: unknown argument '%s'", argv[i]);
    }
    int rc = cli_open_cluster(c, 1, 0);
    if (rc != EXIT_OK)
        return rc;
    int n = agec_cluster_node_count(c->cluster);
    int primary = agec_cluster_primary_index(c->cluster);
    if (prom) {
        size_t need = agec_cluster_prometheus(c->cluster, NULL, 0);
        char *buf = malloc(need + 1);
        if (buf == NULL)
            return cli_fail("cluster", AGEC_ERR_NO_MEMORY, NULL);
        (void)agec_cluster_prometheus(c->cluster, buf, need + 1);
        fputs(buf, stdout);
        free(buf);
        return EXIT_OK;
    }
    bool json = cli_format(c) == FMT_JSON;
    if (!json)
        printf("%-4s %-28s %-8s %-8s %-10s %-14s\n", "node", "address", "role", "reads", "lag_ms",
               "lsn");
    for (int i = 0; i < n; i++) {
        agec_cluster_node_stats s;
        if (agec_cluster_node_stats_get(c->cluster, i, &s) != AGEC_OK)
            continue;
        if (json) {
            print_json(&s, i, i == primary);
            continue;
        }
        char addr[300], lsn[24], lag[24];
        snprintf(addr, sizeof addr, "%s:%d", s.host, s.port);
        if (s.lag_ms >= 0)
            snprintf(lag, sizeof lag, "%lld", (long long)s.lag_ms);
        else
            snprintf(lag, sizeof lag, "-");
        printf("%-4d %-28s %-8s %-8s %-10s %-14s\n", i, addr, agec_node_role_name(s.role),
               s.in_rotation ? "yes" : "no", lag, agec_lsn_format(s.lsn, lsn, sizeof lsn));
    }
    if (!c->quiet && !json)
        printf("%d nodes, primary: %s\n", n, primary >= 0 ? "yes" : "none found");
    return primary >= 0 ? EXIT_OK : EXIT_CONN;
}
