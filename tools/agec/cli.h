/*
 * Shared state and helpers of the agec command-line tool. The tool uses
 * only the public API (agec/agec.h), like any program linking libagec.
 */
#ifndef AGEC_CLI_H
#define AGEC_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "agec/agec.h"
#include "agec/agtype.h"
#include "agec/pool.h"

/* Exit codes (documented in --help, agec(1) and docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_QUERY = 1, /* the server or the query failed */
    EXIT_USAGE = 2, /* bad command line or input */
    EXIT_CONN = 3,  /* could not get a connection (also a bad DSN) */
};

typedef enum { FMT_AUTO, FMT_TABLE, FMT_JSON, FMT_CSV } out_format;

typedef struct cli {
    const char *dsn;
    const char *graph;
    int pool_max, pool_min; /* -1 when not given on the command line */
    int connect_timeout_ms, acquire_timeout_ms, statement_timeout_ms;
    agec_age_mode age_mode;
    agec_stmt_mode statement_mode;
    out_format format;
    bool quiet, verbose;
    bool read_only;        /* --read-only: reads on standbys, read-only sessions */
    bool one_shot;         /* a command of one connection: connect once, say why plainly */
    bool warnings_only;    /* server notices: WARNING only (the demo), else all as psql */
    agec_pool *pool;       /* plain mode; cluster mode: the primary's pool (the cluster owns it) */
    agec_cluster *cluster; /* cluster mode: a multi-host DSN or --read-only */
} cli;

/* Open cli->pool from the global options with max/min connections; when
 * sizable, --pool-max/--pool-min override them where given. The sizes used
 * are stored back in c->pool_max/pool_min. Returns EXIT_OK or prints the
 * error and returns its exit code. */
int cli_open_pool(cli *c, int max, int min, bool sizable);

/* Open cli->cluster (cluster mode) from the global options whatever the
 * DSN (cli_open_pool does so by itself for a multi-host DSN or
 * --read-only). Returns EXIT_OK or prints the error and returns its code. */
int cli_open_cluster(cli *c, int max, int min);

/* Acquire without printing: from the cluster in cluster mode (a read with
 * --read-only, else a write), else from the pool. */
agec_status cli_acquire_st(cli *c, agec_conn **out, agec_error *err);

/* Close the pool, or the cluster, gracefully (NULL-safe). */
void cli_close_pool(cli *c);

/* Acquire a connection; on failure print and return the exit code. */
int cli_acquire(cli *c, agec_conn **out);

/* Print an error (code, SQLSTATE, message, detail, hint) to stderr and
 * return its exit code: EXIT_CONN for connection failures, else EXIT_QUERY. */
int cli_fail(const char *what, agec_status st, const agec_error *err);

/* Exit code a status maps to. */
int cli_exit_code(agec_status st);

/* Usage error: print "agec: MESSAGE" and a hint, return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a non-negative int option value; false when invalid. */
bool cli_parse_int(const char *s, int *out);

/* Build the agtype parameter map from --params OBJECT and --param NAME=JSON
 * pairs (later keys win). *out is NULL when there are none; free with
 * agec_free. Returns EXIT_OK or EXIT_USAGE after printing the position. */
int cli_build_params(const char *params_json, const char *const *pairs, int npairs, char **out);

/* When a Cypher statement failed because it uses $parameters and none were
 * given (AGE: 42P02 "parameters argument is missing"), a hint naming the
 * CLI's ways to give them (unless the server gave a hint). */
void cli_param_hint(agec_error *err);

/* Effective output format (AUTO: table on a terminal, JSON otherwise). */
out_format cli_format(const cli *c);

/* Write s[0..len) as a JSON string, quotes included. */
void cli_json_string(const char *s, size_t len, FILE *out);

/* cli_print_result for one statement of the CLI: cypher_text is the Cypher
 * text (NULL for SQL). A Cypher statement without RETURN prints no table
 * (no "result" column that AGE's wrapper needs), only its row count. */
int cli_print_statement_result(const cli *c, agec_result *res, const char *cypher_text, FILE *out);

/* Print a whole result in the chosen format. cypher: cells are agtype. */
int cli_print_result(const cli *c, agec_result *res, bool cypher, FILE *out);

/* A streamed row as one JSON Lines object (CSV and tables collect their
 * rows: cli_print_result). */
void cli_print_json_row(agec_result *row, bool cypher, FILE *out);

/* Write one cell as JSON (agtype through the library's JSON writer; SQL by
 * column type). */
void cli_cell_json(agec_result *res, size_t row, size_t col, bool cypher, FILE *out);

/* Subcommands; argv[0] is the subcommand name. */
int cmd_query(cli *c, int argc, char **argv);
int cmd_sql(cli *c, int argc, char **argv);
int cmd_graph(cli *c, int argc, char **argv);
int cmd_shell(cli *c, int argc, char **argv);
int cmd_bench(cli *c, int argc, char **argv);
int cmd_demo(cli *c, int argc, char **argv);
int cmd_load(cli *c, int argc, char **argv);

/* The loader's progress line on stderr (agec load, agec demo): at most
 * every 100 ms, and once more with final set. */
typedef struct load_progress {
    bool enabled, final;
    const char *what;
    double last_ms;
    unsigned ticks;
    unsigned long long total_bytes; /* of the input files; 0 = unknown (a spinner) */
} load_progress;
struct agec_load_stats;
void cli_load_progress(const struct agec_load_stats *s, void *user);
int cmd_cluster(cli *c, int argc, char **argv);
int cmd_doctor(cli *c, int argc, char **argv);

/* Print COMMAND's usage, options and an example (help.c); false when there
 * is no such command. */
bool cli_command_help(const char *name, FILE *out);

/* True when a command's arguments (argv[0] is the command) ask for its help:
 * --help anywhere, or -h right after the command. */
bool cli_wants_help(int argc, char **argv);

/* Write every field of *s as one JSON object (stats_json.c): counters and
 * gauges under their struct names, "breaker" by name, "closed" by reason,
 * "wait_bucket" as [{"le_us", "count"}...]. */
void cli_pool_stats_json(const agec_pool_stats *s, FILE *out);

/* Write node `index`'s statistics as one JSON object (stats_json.c): every
 * field of agec_cluster_node_stats under its struct name (role, lsn and
 * breaker by name), "node", "primary" (it is the cluster's primary now) and
 * "errors" (acquire_errors + check_failures). */
void cli_node_stats_json(const agec_cluster_node_stats *s, int index, bool primary, FILE *out);

/* Monotonic milliseconds, as double. */
double cli_now_ms(void);

#endif
