/*
 * Per-command help: `agec COMMAND --help`, `agec COMMAND -h` and
 * `agec help COMMAND` print the command's usage, options and an example on
 * stdout and exit 0, before any connection is made (main.c checks for them
 * ahead of the command itself).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    const char *text;
} HELP[] = {
    { "query", "usage: agec --graph NAME [global options] query (CYPHER | -f FILE | -) [options]\n"
               "\n"
               "Run one Cypher statement on graph NAME and print its rows. Parameters are\n"
               "bound (the Cypher text refers to them as $name), never pasted into the text.\n"
               "The text is the argument, the file of -f FILE, or stdin for -; one trailing\n"
               "';' is dropped.\n"
               "\n"
               "options:\n"
               "  -f FILE                read the Cypher text from FILE\n"
               "  --param NAME=JSON      one parameter, a JSON value (repeatable)\n"
               "  --params JSON-OBJECT   all parameters as one JSON object (--param wins)\n"
               "  --columns a,b,...      names of the result columns (default: taken from\n"
               "                         RETURN)\n"
               "\n"
               "example:\n"
               "  agec --graph social query 'MATCH (p:Person {name: $n}) RETURN p.age' \\\n"
               "       --param n='\"Ada\"'\n" },
    { "sql", "usage: agec [global options] sql (SQL | -f FILE | -) [ARG...]\n"
             "\n"
             "Run SQL and print its rows. Each ARG is bound to $1, $2, ... as text\n"
             "(unnamed statement, never prepared). The text is the argument, the file of\n"
             "-f FILE, or stdin for -; without ARGs it may hold several statements.\n"
             "Put -- before ARGs that look like options.\n"
             "\n"
             "options:\n"
             "  -f FILE                read the SQL text from FILE\n"
             "\n"
             "example:\n"
             "  agec --age-mode off sql 'SELECT $1::int + $2::int AS sum' 40 2\n" },
    { "graph", "usage: agec [global options] graph ACTION [--cascade] [NAME]\n"
               "\n"
               "Manage graphs (NAME, or --graph NAME when omitted):\n"
               "  create NAME            create the graph\n"
               "  drop [--cascade] NAME  drop it (--cascade: with its labels and data)\n"
               "  exists NAME            print true or false\n"
               "  list                   print every graph\n"
               "  labels NAME            print the graph's labels (name, kind)\n"
               "  index NAME             create indexes on id, start_id and end_id of every\n"
               "                         label table\n"
               "\n"
               "options:\n"
               "  --cascade              with drop: drop labels and data too\n"
               "\n"
               "Graph names: 3 to 63 bytes, Unicode letters (ID_Start) or '_' first, then\n"
               "letters, marks, digits (ID_Continue) and '_', '.' and '-' only inside.\n"
               "\n"
               "example:\n"
               "  agec graph create social && agec graph drop --cascade social\n" },
    { "shell", "usage: agec [--graph NAME] [global options] shell [--on-error-stop]\n"
               "\n"
               "Interactive Cypher shell (line editing and history on a terminal; reads\n"
               "statements from stdin otherwise). Statements end with ';', may span lines,\n"
               "and several may share a line; a ';' inside a string, a `name`, a $$ quote or\n"
               "a comment does not end one; at the end of a script a last statement without\n"
               "';' runs too. Shell commands (:help lists them): :graph NAME, :sql\n"
               "STATEMENTS, :params JSON, :stats, :quit (or \\q). The shell is one session,\n"
               "as in psql: BEGIN; COMMIT; ROLLBACK; SET and temporary tables work, and the\n"
               "prompt shows the transaction (=# idle, =*# open, =!# failed). Ctrl-C cancels\n"
               "the running statement, or clears the input at the prompt; Ctrl-D leaves.\n"
               "A lost connection is reported and replaced on a terminal; a script ends\n"
               "with exit status 3. Results print as tables unless --format says otherwise.\n"
               "\n"
               "options:\n"
               "  --on-error-stop   a script stops at the first failed statement, exit 1\n"
               "                    (psql's ON_ERROR_STOP); without it every statement runs\n"
               "                    and the exit status is 0\n"
               "\n"
               "example:\n"
               "  echo 'RETURN 1; RETURN 2;' | agec --graph social shell\n" },
    { "bench",
      "usage: agec [global options] bench (--cypher Q | --sql Q) [options]\n"
      "\n"
      "Run one statement over and over from several threads through the pool and\n"
      "report throughput, latency percentiles and the pool's statistics (all of\n"
      "agec_pool_stats with --format json). With a multi-host DSN the statement\n"
      "runs on the primary, and readers (--read-sql/--read-cypher) on standbys.\n"
      "Ctrl-C (SIGINT) or SIGTERM ends the run early with the summary.\n"
      "\n"
      "options:\n"
      "  --cypher Q             the Cypher statement (needs --graph NAME)\n"
      "  --sql Q                the SQL statement\n"
      "  --param NAME=JSON      a Cypher parameter (repeatable)\n"
      "  --params JSON-OBJECT   all Cypher parameters as one JSON object\n"
      "  --threads N            client threads, 1..1024 (default 4)\n"
      "  --read-cypher Q        also run this Cypher read from --read-threads more\n"
      "  --read-sql Q           threads (or this SQL read), on connections acquired\n"
      "                         for reading (a standby in the read rotation)\n"
      "  --read-threads N       reader threads (default: as many as --threads)\n"
      "  --unique-key           bind a key unique to each call of the statement:\n"
      "                         $1 in SQL (text), $key in Cypher (PID-THREAD-N)\n"
      "  --record FILE          one JSON line per call: kind, start/end, duration,\n"
      "                         budget, outcome, SQLSTATE, the node (host:port)\n"
      "                         and its timeline, the key (docs/cli.md); asks the\n"
      "                         server once more per call, after the statement\n"
      "  --duration S           run for S seconds (default 10)\n"
      "  --count N              or run N statements in all\n"
      "  --pipeline N           send N statements at a time in one pipelined batch\n"
      "                         (agec/batch.h) on a borrowed connection, 1..100000\n"
      "                         (default 1: one at a time); latency is the batch's\n"
      "\n"
      "example:\n"
      "  agec --pool-max 8 --format json bench --sql 'SELECT 1' --threads 8 --count 10000\n"
      "  agec --dsn 'host=a,b,c user=app' --statement-timeout 2000 bench --sql \\\n"
      "    'INSERT INTO t (k) VALUES ($1)' --unique-key --read-sql 'SELECT count(*) FROM t' \\\n"
      "    --record calls.jsonl --duration 60\n" },
    { "load", "usage: agec --graph G [global options] load [--vertices LABEL=FILE]...\n"
              "       [--edges LABEL=FILE]... [--key PROP | --key LABEL=PROP]...\n"
              "       [--method auto|insert|copy] [--batch N] [--chunk N] [--resume N]\n"
              "       [--reject FILE]\n"
              "\n"
              "Bulk-load vertices and edges into graph G (created when missing). Vertex\n"
              "files load first, then edge files, each in the order given. CSV files have a\n"
              "header of name[:type] (string, int, float, numeric, bool, json); edge CSV\n"
              "files name endpoints in columns :START_ID(Label) and :END_ID(Label) (key\n"
              "values of those labels) or :START_ID / :END_ID (graph ids). JSON Lines\n"
              "(.jsonl): a vertex per line as its properties map; an edge per line as\n"
              "{\"start\": [\"Label\", key], \"end\": [\"Label\", key], \"properties\": {...}}.\n"
              "\n"
              "options:\n"
              "  --vertices LABEL=FILE  vertices of LABEL from FILE (repeatable)\n"
              "  --edges LABEL=FILE     edges of LABEL from FILE (repeatable)\n"
              "  --key [LABEL=]PROP     the key property of a vertex label (indexed; edges\n"
              "                         name their endpoints by it)\n"
              "  --method M             auto (default), insert or copy\n"
              "  --batch N              rows per batch\n"
              "  --chunk N              commit every N rows (default: one transaction)\n"
              "  --resume N             skip the first N rows (a chunked load's position)\n"
              "  --reject FILE          write bad rows there and go on (count reported)\n"
              "The global --statement-timeout MS bounds every statement of the load (a\n"
              "batch included, COPY data sent): past it the load fails and rolls back.\n"
              "\n"
              "example:\n"
              "  agec --graph social load --vertices Person=people.csv --key uid \\\n"
              "       --edges KNOWS=knows.csv\n" },
    { "demo", "usage: agec [--graph NAME] [global options] demo [--size N] [--replace]\n"
              "\n"
              "The showcase workload: builds a social graph in graph NAME (default\n"
              "demo_social), runs queries on it through the pool and prints what it did.\n"
              "A graph of that name made by an earlier demo is dropped and made again;\n"
              "any other graph of that name is left alone unless --replace is given.\n"
              "\n"
              "options:\n"
              "  --size N               number of people, 10..1000000 (default 1000)\n"
              "  --replace              drop an existing graph NAME the demo did not make\n"
              "\n"
              "example:\n"
              "  agec --pool-max 4 demo --size 200\n" },
    { "cluster", "usage: agec [global options] cluster [--prometheus]\n"
                 "\n"
                 "The nodes of a multi-host DSN (host=a,b,c port=...): each node's role\n"
                 "(primary, standby, down), whether it serves reads, its lag and WAL position.\n"
                 "Exit status 3 when no primary is found.\n"
                 "\n"
                 "options:\n"
                 "  --prometheus           the cluster's metrics in Prometheus text format\n"
                 "\n"
                 "example:\n"
                 "  agec --dsn 'host=db1,db2,db3 user=app' cluster\n" },
    { "doctor", "usage: agec [--dsn DSN] [--graph NAME] [global options] doctor\n"
                "\n"
                "Check the way to the server step by step and print each check with its\n"
                "outcome, its time and, when it fails, what to do: the DSN (password never\n"
                "shown), name resolution, TCP, TLS, authentication, the server's version,\n"
                "PgBouncer and its pool mode, AGE installed and loadable (--age-mode),\n"
                "search_path, the graph (--graph) and the role's privileges on it,\n"
                "max_connections against the pool's max (--pool-max), and for a multi-host\n"
                "DSN each node's role and lag. Writes nothing. --format json: one object per\n"
                "check (check, node, status pass|warn|fail|skip, ms, detail, remedy).\n"
                "Exit status 0 when nothing failed, 1 when a check failed, 3 when no session\n"
                "could be opened.\n"
                "\n"
                "options: none besides the global ones (agec --help).\n"
                "\n"
                "example:\n"
                "  agec --dsn 'host=db1 dbname=graphs user=app' --graph social doctor\n" },
    { "help", "usage: agec help [COMMAND]\n"
              "\n"
              "Print the usage of COMMAND (the same as agec COMMAND --help), or of agec\n"
              "itself without COMMAND.\n"
              "\n"
              "options: none.\n"
              "\n"
              "example:\n"
              "  agec help query\n" },
};

bool cli_command_help(const char *name, FILE *out)
{
    for (size_t i = 0; i < sizeof HELP / sizeof HELP[0]; i++)
        if (strcmp(name, HELP[i].name) == 0) {
            fputs(HELP[i].text, out);
            fputs("\nglobal options (--dsn, --graph, --format, ...): agec --help\n", out);
            return true;
        }
    return false;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || (i == 1 && strcmp(argv[i], "-h") == 0))
            return true;
    return false;
}
