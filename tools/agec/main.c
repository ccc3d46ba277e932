/* agec: command-line tool. Uses only the public API (include/agec). */
#include <stdio.h>
#include <string.h>

#include "agec/agec.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: agec [global options] COMMAND [ARGS]\n"
            "\n"
            "global options:\n"
            "  --help       show this help\n"
            "  --version    print the version\n"
            "\n"
            "commands (coming): query, sql, graph, shell, bench, demo\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("agec %s\n", agec_version());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "agec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
