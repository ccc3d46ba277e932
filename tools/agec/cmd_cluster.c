/* agec cluster: the nodes of a multi-host DSN, their roles, lag and use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
    bool json = cli_format(c) == FMT_JSON, csv = cli_format(c) == FMT_CSV;
    static const char table_row[] = "%-4d %-28s %-8s %-8s %-10s %-14s %u%s\n",
                      csv_row[] = "%d,%s,%s,%s,%s,%s,%u%s\n";
    if (csv)
        printf("node,address,role,reads,lag_ms,lsn,timeline\n");
    else if (!json)
        printf("%-4s %-28s %-8s %-8s %-10s %-14s %s\n", "node", "address", "role", "reads",
               "lag_ms", "lsn", "timeline");
    for (int i = 0; i < n; i++) {
        agec_cluster_node_stats s;
        if (agec_cluster_node_stats_get(c->cluster, i, &s) != AGEC_OK)
            continue;
        if (json) {
            cli_node_stats_json(&s, i, i == primary, stdout);
            putchar('\n');
            continue;
        }
        char addr[300], lsn[24], lag[24];
        snprintf(addr, sizeof addr, "%s:%d", s.host, s.port);
        if (s.lag_ms >= 0)
            snprintf(lag, sizeof lag, "%lld", (long long)s.lag_ms);
        else
            snprintf(lag, sizeof lag, "-");
        /* Host names and addresses hold no comma or quote: CSV fields as they are. */
        printf(csv ? csv_row : table_row, i, addr, agec_node_role_name(s.role),
               s.in_rotation ? "yes" : "no", lag, agec_lsn_format(s.lsn, lsn, sizeof lsn),
               s.timeline,
               s.on_timeline ? ""
               : csv         ? ""
                             : " (off the primary's)");
    }
    if (!c->quiet && !json && !csv)
        printf("%d nodes, primary: %s\n", n, primary >= 0 ? "yes" : "none found");
    return primary >= 0 ? EXIT_OK : EXIT_CONN;
}
