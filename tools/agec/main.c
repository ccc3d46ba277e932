/* agec: command-line tool. Global options, pool set-up, dispatch. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char USAGE[] =
    "usage: agec [global options] COMMAND [ARGS]\n"
    "\n"
    "global options:\n"
    "  --dsn DSN                libpq keyword string or URI (default: libpq environment,\n"
    "                           PGHOST, PGPORT, ...)\n"
    "  --graph NAME             graph for Cypher commands\n"
    "  --pool-max N             connections at most, for bench, demo and shell\n"
    "                           (defaults: bench 4, demo 4, shell 2); query, sql\n"
    "                           and graph always use one connection\n"
    "  --pool-min N             connections kept open, for bench, demo and shell\n"
    "                           (defaults: demo 2, bench and shell 0)\n"
    "  --connect-timeout MS     limit for opening one connection (default 2000)\n"
    "  --acquire-timeout MS     limit for getting a connection (default 10000)\n"
    "  --statement-timeout MS   cancel statements running longer (default: none)\n"
    "  --age-mode MODE          load | preloaded | plugins | off (default load)\n"
    "  --statement-mode MODE    named | unnamed (default named: prepared statements\n"
    "                           cached per connection; unnamed behind PgBouncer in\n"
    "                           transaction mode)\n"
    "  --format FMT             table | json | csv (default: table on a terminal,\n"
    "                           JSON Lines otherwise)\n"
    "  -h HOST, -p PORT, -U USER, -d DBNAME\n"
    "                           psql's shorthands (set PGHOST, PGPORT, PGUSER,\n"
    "                           PGDATABASE; keywords of --dsn win); before the command\n"
    "  -q, --quiet              no row counts, timing or progress\n"
    "  -v, --verbose            pool events on stderr too (server notices and\n"
    "                           warnings are always shown there, as psql does)\n"
    "  --read-only              reads from hot standbys (with a multi-host DSN\n"
    "                           host=a,b,c: a standby in the read rotation, else the\n"
    "                           primary); sessions are read-only. Without it a\n"
    "                           multi-host DSN sends everything to the primary\n"
    "  --help, --version\n"
    "Global options may also follow the command (agec query 'RETURN 1' --format json),\n"
    "except the psql shorthands; after `--` everything is the command's.\n"
    "\n"
    "commands:\n"
    "  query (CYPHER | -f FILE | -) [--param NAME=JSON]... [--params JSON-OBJECT]\n"
    "        [--columns a,b,...]\n"
    "  sql (SQL | -f FILE | -) [ARG...]     SQL with bound parameters $1..$n\n"
    "  graph create|drop [--cascade]|exists|list|labels|index NAME\n"
    "  shell [--on-error-stop]              interactive Cypher shell (one session)\n"
    "  bench (--cypher Q | --sql Q) [--param ...] [--threads N] [--duration S | --count N]\n"
    "        [--read-sql Q | --read-cypher Q] [--read-threads N] [--unique-key]\n"
    "        [--record FILE]\n"
    "  demo [--size N] [--replace]          the showcase workload (graph: --graph,\n"
    "                                       default demo_social)\n"
    "  load [--vertices L=FILE]... [--edges L=FILE]... [--key [L=]PROP]... [--chunk N]\n"
    "       [--resume N] [--reject FILE] [--method auto|insert|copy]   bulk loading\n"
    "                                       (agec load --help for the file formats)\n"
    "  cluster [--prometheus]               nodes of a multi-host DSN: role, lag, use\n"
    "  doctor                               check the connection step by step, with remedies\n"
    "  help [COMMAND]                       a command's usage, options and an example\n"
    "                                       (also: agec COMMAND --help)\n"
    "\n"
    "exit status: 0 success, 1 the server or the query failed, 2 usage error,\n"
    "3 could not get a connection (unreachable, auth, acquire timeout, breaker open,\n"
    "  bad DSN or pool configuration)\n";

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("agec: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(agec --help for usage)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

bool cli_parse_int(const char *s, int *out)
{
    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

int cli_exit_code(agec_status st)
{
    switch (st) {
    case AGEC_OK:
        return EXIT_OK;
    case AGEC_ERR_UNREACHABLE:
    case AGEC_ERR_AUTH:
    case AGEC_ERR_POOL_EXHAUSTED:
    case AGEC_ERR_BREAKER_OPEN:
    case AGEC_ERR_POOL_CLOSED:
    case AGEC_ERR_INIT:
    case AGEC_ERR_CONFIG:
    case AGEC_ERR_NO_NODE:
        return EXIT_CONN;
    default:
        return EXIT_QUERY;
    }
}

int cli_fail(const char *what, agec_status st, const agec_error *err)
{
    const char *msg = err && err->message[0] ? err->message : agec_strerror(st);
    fprintf(stderr, "agec: %s failed: %s", what, agec_status_name(st));
    if (err && err->sqlstate[0])
        fprintf(stderr, " [SQLSTATE %s]", err->sqlstate);
    fprintf(stderr, ": %s\n", msg);
    if (err && err->detail[0])
        fprintf(stderr, "DETAIL: %s\n", err->detail);
    if (err && err->hint[0])
        fprintf(stderr, "HINT: %s\n", err->hint);
    if (err && err->position > 0 && st != AGEC_ERR_PARSE)
        fprintf(stderr, "POSITION: %d\n", err->position);
    return cli_exit_code(st);
}

/* The server's notices and warnings (client_min_messages decides which
 * are sent) on stderr as psql shows them, "SEVERITY:  message" with DETAIL
 * and HINT lines, with or without --verbose. */
static void event_notice(const agec_pool_event *ev)
{
    fprintf(stderr, "%s:  %s\n", ev->severity, ev->message);
    if (ev->detail != NULL && ev->detail[0] != '\0')
        fprintf(stderr, "DETAIL:  %s\n", ev->detail);
    if (ev->hint != NULL && ev->hint[0] != '\0')
        fprintf(stderr, "HINT:  %s\n", ev->hint);
}

/* A notice to show: every one, or with warnings_only (the demo, whose
 * own output says what it does) WARNING alone. */
static bool shown(const agec_pool_event *ev, const cli *c)
{
    return ev->type == AGEC_EV_NOTICE && (!c->warnings_only || ev->warning);
}

static void event_quiet(const agec_pool_event *ev, void *user)
{
    if (shown(ev, user))
        event_notice(ev);
}

/* With --verbose: the pool's own events (warnings) too. */
static void event_verbose(const agec_pool_event *ev, void *user)
{
    if (ev->type != AGEC_EV_NOTICE)
        agec_pool_event_log_stderr(ev, NULL);
    else if (shown(ev, user))
        event_notice(ev);
}

/* More than one host in the DSN (host=a,b or a URI with a,b)? */
static bool dsn_multi_host(const char *dsn)
{
    PQconninfoOption *o = PQconninfoParse(dsn ? dsn : "", NULL);
    bool multi = false;
    for (PQconninfoOption *p = o; p && p->keyword; p++)
        if (p->val && (strcmp(p->keyword, "host") == 0 || strcmp(p->keyword, "hostaddr") == 0) &&
            strchr(p->val, ',') != NULL)
            multi = true;
    PQconninfoFree(o);
    return multi;
}

static void pool_config_from(cli *c, agec_pool_config *cfg)
{
    cfg->connect_timeout_ms = c->connect_timeout_ms;
    cfg->acquire_timeout_ms = c->acquire_timeout_ms;
    cfg->age_mode = c->age_mode;
    cfg->statement_mode = c->statement_mode;
    /* libpq's convention: a name only when the DSN and PGAPPNAME give none. */
    cfg->application_name = "agec-cli";
    cfg->on_event = c->verbose ? event_verbose : event_quiet;
    cfg->event_user = c;
}

static int open_cluster_with(cli *c, const agec_pool_config *pool)
{
    agec_pool_config pc = *pool;
    if (c->read_only)
        pc.init_sql = "SET default_transaction_read_only = on";
    agec_cluster_config cc;
    agec_cluster_config_init(&cc);
    cc.conninfo = c->dsn;
    cc.pool = &pc;
    cc.name = "agec-cli";
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_cluster_open(&cc, &c->cluster, &err);
    if (st != AGEC_OK)
        return cli_fail("opening the cluster", st, &err);
    int p = agec_cluster_primary_index(c->cluster);
    c->pool = agec_cluster_node_pool(c->cluster, p < 0 ? 0 : p);
    return EXIT_OK;
}

int cli_open_cluster(cli *c, int max, int min)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.max = max;
    cfg.min = min;
    pool_config_from(c, &cfg);
    return open_cluster_with(c, &cfg);
}

int cli_open_pool(cli *c, int max, int min, bool sizable)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = c->dsn;
    cfg.max = max;
    cfg.min = min;
    if (sizable) {
        /* --pool-max/--pool-min when given (main checked min <= max when
         * both were); a default on the other side gives way. */
        if (c->pool_max > 0)
            cfg.max = c->pool_max;
        if (c->pool_min >= 0)
            cfg.min = c->pool_min;
        if (cfg.min > cfg.max) {
            if (c->pool_max > 0)
                cfg.min = cfg.max;
            else
                cfg.max = cfg.min;
        }
    }
    c->pool_max = cfg.max;
    c->pool_min = cfg.min;
    pool_config_from(c, &cfg);
    /* A one-shot command (query, sql, graph, load) connects once: the first
     * failure opens the breaker, so the acquire ends at once with that
     * failure (cli_acquire says it plainly), instead of retrying. */
    c->one_shot = !sizable;
    if (c->one_shot)
        cfg.breaker_threshold = 1;
    if (c->read_only || dsn_multi_host(c->dsn))
        return open_cluster_with(c, &cfg);
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_open(&cfg, &c->pool, &err);
    if (st != AGEC_OK)
        return cli_fail("opening the pool", st, &err);
    return EXIT_OK;
}

void cli_close_pool(cli *c)
{
    if (c->cluster != NULL) {
        (void)agec_cluster_close(c->cluster, 5000, NULL);
        c->cluster = NULL;
        c->pool = NULL;
    }
    if (c->pool != NULL)
        (void)agec_pool_close(c->pool, 5000, NULL);
    c->pool = NULL;
}

agec_status cli_acquire_st(cli *c, agec_conn **out, agec_error *err)
{
    if (c->cluster != NULL)
        return agec_cluster_acquire_at(c->cluster,
                                       c->read_only ? AGEC_ACCESS_READ : AGEC_ACCESS_WRITE, 0, -1,
                                       out, err, __FILE__, __LINE__, __func__);
    return agec_pool_acquire(c->pool, out, err);
}

int cli_acquire(cli *c, agec_conn **out)
{
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = cli_acquire_st(c, out, &err);
    if (st == AGEC_OK)
        return EXIT_OK;
    /* One attempt made, one cause: libpq's own words, without the pool's
     * (the pool's message wraps them after "last connection error: "). */
    static const char last[] = "last connection error: ", cnc[] = "could not connect: ";
    const char *cause = strstr(err.message, last);
    if (c->one_shot && cause != NULL &&
        (st == AGEC_ERR_UNREACHABLE || st == AGEC_ERR_BREAKER_OPEN)) {
        cause += sizeof last - 1;
        if (strncmp(cause, cnc, sizeof cnc - 1) == 0)
            cause += sizeof cnc - 1;
        fprintf(stderr, "agec: could not connect to the server: %s\n", cause);
        return EXIT_CONN;
    }
    return cli_fail("getting a connection", st, &err);
}

static bool parse_age_mode(const char *s, agec_age_mode *m)
{
    static const struct {
        const char *name;
        agec_age_mode mode;
    } modes[] = { { "load", AGEC_AGE_LOAD },
                  { "preloaded", AGEC_AGE_PRELOADED },
                  { "plugins", AGEC_AGE_PLUGINS },
                  { "off", AGEC_AGE_OFF } };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0) {
            *m = modes[i].mode;
            return true;
        }
    return false;
}

static const struct {
    const char *name;
    int (*fn)(cli *, int, char **);
} COMMANDS[] = {
    { "query", cmd_query }, { "sql", cmd_sql },         { "graph", cmd_graph },
    { "shell", cmd_shell }, { "bench", cmd_bench },     { "demo", cmd_demo },
    { "load", cmd_load },   { "cluster", cmd_cluster }, { "doctor", cmd_doctor },
};

/* One global option at argv[*i] (its value, if any, at argv[*i + 1]).
 * Returns GLOBAL_NOT when argv[*i] is not one (the caller decides), else
 * EXIT_OK (consumed: *i is left on its last word) or an exit code after
 * printing the usage error; GLOBAL_HELP / GLOBAL_VERSION for those. psql's
 * -h -p -U -d are taken only before the command (after it, -h asks for
 * the command's help). */
enum { GLOBAL_NOT = -1, GLOBAL_HELP = -2, GLOBAL_VERSION = -3 };

static int global_option(cli *c, int argc, char **argv, int *i, bool before_command)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int *num = NULL;
    static const struct {
        const char *flag, *env;
    } PSQL_FLAGS[] = {
        { "-h", "PGHOST" }, { "-p", "PGPORT" }, { "-U", "PGUSER" }, { "-d", "PGDATABASE" }
    };
    if (before_command) {
        if (strcmp(a, "-h") == 0 && v == NULL)
            return GLOBAL_HELP; /* `agec -h` alone: help, as before */
        for (size_t k = 0; k < sizeof PSQL_FLAGS / sizeof PSQL_FLAGS[0]; k++)
            if (strcmp(a, PSQL_FLAGS[k].flag) == 0) {
                if (v == NULL)
                    return cli_usage_error("option %s needs a value", a);
                /* Shorthands for the libpq environment: keywords of --dsn win. */
                setenv(PSQL_FLAGS[k].env, v, 1);
                (*i)++;
                return EXIT_OK;
            }
    }
    if (strcmp(a, "--help") == 0)
        return GLOBAL_HELP;
    if (strcmp(a, "--version") == 0)
        return GLOBAL_VERSION;
    if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
        c->quiet = true;
        return EXIT_OK;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
        c->verbose = true;
        return EXIT_OK;
    }
    if (strcmp(a, "--read-only") == 0) {
        c->read_only = true;
        return EXIT_OK;
    }
    if (strcmp(a, "--pool-max") == 0) {
        num = &c->pool_max;
    } else if (strcmp(a, "--pool-min") == 0) {
        num = &c->pool_min;
    } else if (strcmp(a, "--connect-timeout") == 0) {
        num = &c->connect_timeout_ms;
    } else if (strcmp(a, "--acquire-timeout") == 0) {
        num = &c->acquire_timeout_ms;
    } else if (strcmp(a, "--statement-timeout") == 0) {
        num = &c->statement_timeout_ms;
    } else if (strcmp(a, "--dsn") != 0 && strcmp(a, "--graph") != 0 &&
               strcmp(a, "--age-mode") != 0 && strcmp(a, "--format") != 0 &&
               strcmp(a, "--statement-mode") != 0) {
        return GLOBAL_NOT;
    }
    if (v == NULL)
        return cli_usage_error("option %s needs a value", a);
    (*i)++;
    if (num != NULL) {
        if (!cli_parse_int(v, num))
            return cli_usage_error("option %s: '%s' is not a non-negative integer", a, v);
    } else if (strcmp(a, "--dsn") == 0) {
        c->dsn = v;
    } else if (strcmp(a, "--graph") == 0) {
        c->graph = v;
    } else if (strcmp(a, "--age-mode") == 0) {
        if (!parse_age_mode(v, &c->age_mode))
            return cli_usage_error("--age-mode must be load, preloaded, plugins or off");
    } else if (strcmp(a, "--statement-mode") == 0) {
        if (strcmp(v, "named") == 0)
            c->statement_mode = AGEC_STMT_NAMED;
        else if (strcmp(v, "unnamed") == 0)
            c->statement_mode = AGEC_STMT_UNNAMED;
        else
            return cli_usage_error("--statement-mode must be named or unnamed");
    } else if (strcmp(v, "table") == 0) {
        c->format = FMT_TABLE;
    } else if (strcmp(v, "json") == 0) {
        c->format = FMT_JSON;
    } else if (strcmp(v, "csv") == 0) {
        c->format = FMT_CSV;
    } else {
        return cli_usage_error("--format must be table, json or csv");
    }
    return EXIT_OK;
}

/* Global options after the command (`agec query 'RETURN 1' --format json`):
 * the long ones and -q/-v are taken out of the command's arguments, up to a
 * `--` (which is dropped: what follows is the command's, even when it looks
 * like an option). argv is rewritten in place; returns the new argc, or
 * -1 - exit code on a usage error. */
static int take_trailing_globals(cli *c, int argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (++i < argc)
                argv[out++] = argv[i];
            break;
        }
        int at = i;
        int r = argv[i][0] == '-' && argv[i][1] != '\0' && strcmp(argv[i], "-h") != 0
                    ? global_option(c, argc, argv, &i, false)
                    : GLOBAL_NOT;
        if (r == GLOBAL_NOT || r == GLOBAL_HELP || r == GLOBAL_VERSION) {
            argv[out++] = argv[at]; /* the command's own (its --help included) */
            i = at;
        } else if (r != EXIT_OK) {
            return -1 - r;
        }
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    cli c = { .pool_max = -1, /* not given: each command's default */
              .pool_min = -1,
              .connect_timeout_ms = 2000,
              .acquire_timeout_ms = 10000,
              .age_mode = AGEC_AGE_LOAD,
              .format = FMT_AUTO };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int r = global_option(&c, argc, argv, &i, true);
        if (r == GLOBAL_HELP) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        }
        if (r == GLOBAL_VERSION) {
            printf("agec %s\n", agec_version());
            return EXIT_OK;
        }
        if (r == GLOBAL_NOT)
            return cli_usage_error("unknown option '%s'", argv[i]);
        if (r != EXIT_OK)
            return r;
    }
    if (i >= argc)
        return cli_usage_error("no command given");
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        }
        const char *what = cli_wants_help(argc - i, argv + i) ? "help" : argv[i + 1];
        if (!cli_command_help(what, stdout))
            return cli_usage_error("help: unknown command '%s'", argv[i + 1]);
        return EXIT_OK;
    }
    for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++)
        if (strcmp(argv[i], COMMANDS[k].name) == 0) {
            /* COMMAND --help: usage before anything connects. */
            if (cli_wants_help(argc - i, argv + i))
                return cli_command_help(argv[i], stdout) ? EXIT_OK : EXIT_USAGE;
            int cargc = take_trailing_globals(&c, argc - i, argv + i);
            if (cargc < 0)
                return -1 - cargc;
            if (c.pool_max == 0)
                return cli_usage_error("--pool-max must be at least 1");
            if (c.pool_max > 0 && c.pool_min > c.pool_max)
                return cli_usage_error("--pool-min must not exceed --pool-max");
            int rc = COMMANDS[k].fn(&c, cargc, argv + i);
            cli_close_pool(&c);
            return rc;
        }
    return cli_usage_error("unknown command '%s'", argv[i]);
}
