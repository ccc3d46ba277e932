/*
 * agec shell: an interactive Cypher shell. Line editing and history come
 * from libedit (Debian libedit-dev). Statements end with ';' and may span
 * lines; a ';' inside a string, a `name` or a comment does not end one
 * (see scan). Lines starting with ':' are shell commands. Ctrl-C cancels
 * the running statement and keeps the shell; at the prompt it clears the
 * input, as in psql.
 *
 * A shell is one session, as psql's is: it keeps one connection from the
 * pool for all its statements, so BEGIN ... COMMIT (typed plainly, or with
 * :sql), SET and temporary tables work, and the prompt shows the
 * transaction state (=# idle, =*# in a transaction, =!# in a failed one).
 * A lost connection is said at once and replaced (interactive), or ends a
 * script with exit status 3. Scripts (stdin not a terminal) run every
 * statement, a last one without ';' included; with --on-error-stop the
 * first failure ends the script with exit status 1 (psql's ON_ERROR_STOP).
 *
 * Ctrl-C: the signal handler only writes a byte to a pipe (async-signal
 * safe); a helper thread reads it and calls agec_conn_cancel() on the
 * connection that is running a statement, if any.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <editline/readline.h>
#include <libpq-fe.h>

#include "cli.h"

static int sig_pipe[2] = { -1, -1 };
/* Ctrl-C at the prompt: the handler also writes here (non-blocking), and
 * the line editor's reads wait on it beside the terminal (getc_or_ctrl_c),
 * so a Ctrl-C that lands before the read starts is not lost. */
static int prompt_pipe[2] = { -1, -1 };
static volatile sig_atomic_t interrupted; /* Ctrl-C since the prompt was shown */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static agec_conn *running; /* connection running a statement, or NULL */

static void on_sigint(int sig)
{
    (void)sig;
    int saved = errno;
    interrupted = 1;
    char b = 'c';
    ssize_t w = write(prompt_pipe[1], &b, 1);
    (void)w;
    w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

static void *cancel_thread(void *arg)
{
    (void)arg;
    char b;
    while (read(sig_pipe[0], &b, 1) == 1) {
        if (b == 'q')
            break;
        pthread_mutex_lock(&running_lock);
        if (running != NULL && agec_conn_cancel(running, NULL) == AGEC_OK)
            fputs("\n(cancel requested)\n", stderr);
        pthread_mutex_unlock(&running_lock);
    }
    return NULL;
}

static const char HELP[] = "Statements end with ';', may span lines and share one.\n"
                           "BEGIN; COMMIT; ROLLBACK; (and SAVEPOINT, RELEASE, START "
                           "TRANSACTION, END, ABORT) run as SQL on the shell's session.\n"
                           "  :graph NAME       use graph NAME for Cypher (it must exist)\n"
                           "  :sql STATEMENT    run SQL (several statements separated by ';' "
                           "allowed)\n"
                           "  :params JSON      parameters ($name) for the next Cypher "
                           "statements (:params alone clears)\n"
                           "  :stats            pool statistics\n"
                           "  :help             this text\n"
                           "  :quit, \\q        leave (Ctrl-D too)\n"
                           "Ctrl-C cancels the running statement, or clears the input.\n";

typedef struct shell {
    cli *c;
    char graph[128];
    char *params;       /* agtype map text or NULL */
    agec_conn *conn;    /* the shell's one session (NULL until needed, or after a loss) */
    bool tty;           /* interactive: reconnect after a loss; else end the script */
    bool on_error_stop; /* --on-error-stop */
} shell;

/* What one statement did, for the script's exit status. */
typedef enum { RUN_OK, RUN_FAILED, RUN_LOST } run_outcome;

/* The shell's session, acquired when first needed. NULL after printing
 * why when none can be had. */
static agec_conn *session(shell *sh)
{
    if (sh->conn == NULL && cli_acquire(sh->c, &sh->conn) != EXIT_OK)
        sh->conn = NULL;
    return sh->conn;
}

/* The session's transaction state as psql's prompt shows it: "" idle, "*"
 * in a transaction, "!" in a failed one. */
static const char *tx_mark(const shell *sh)
{
    if (sh->conn == NULL)
        return "";
    switch (PQtransactionStatus(agec_conn_pgconn(sh->conn))) {
    case PQTRANS_INTRANS:
        return "*";
    case PQTRANS_INERROR:
        return "!";
    default:
        return "";
    }
}

/* After a statement: when the session is gone, say so, drop it and (on a
 * terminal) get a new one at once. True when it was lost. */
static bool check_lost(shell *sh, agec_status st, bool in_tx)
{
    if (st != AGEC_ERR_CONNECTION_LOST && PQstatus(agec_conn_pgconn(sh->conn)) != CONNECTION_BAD)
        return false;
    agec_conn_release_broken(sh->conn);
    sh->conn = NULL;
    fprintf(stderr, "agec: the connection to the server was lost%s.",
            in_tx ? " (its open transaction is gone)" : "");
    if (!sh->tty) {
        fputc('\n', stderr);
        return true;
    }
    fputs(" Reconnecting: ", stderr);
    agec_error err = AGEC_ERROR_INIT;
    agec_status rs = cli_acquire_st(sh->c, &sh->conn, &err);
    if (rs == AGEC_OK)
        fputs("succeeded.\n", stderr);
    else
        fprintf(stderr, "failed (%s: %s); the next statement tries again.\n", agec_status_name(rs),
                err.message);
    if (rs != AGEC_OK)
        sh->conn = NULL;
    return true;
}

static run_outcome run(shell *sh, const char *text, bool cypher)
{
    if (cypher && sh->graph[0] == '\0') {
        fputs("no graph selected: use :graph NAME\n", stderr);
        return RUN_FAILED;
    }
    agec_conn *conn = session(sh);
    if (conn == NULL)
        return RUN_LOST;
    bool in_tx = tx_mark(sh)[0] != '\0';
    pthread_mutex_lock(&running_lock);
    running = conn;
    pthread_mutex_unlock(&running_lock);
    agec_error err = AGEC_ERROR_INIT;
    agec_result *res = NULL;
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = sh->c->statement_timeout_ms;
    /* SQL typed in the shell is sent as a simple query: several statements
     * separated by ';' run, as in psql, and nothing is left prepared. */
    o.prepare = cypher;
    double t0 = cli_now_ms();
    agec_status st = cypher ? agec_cypher_exec(conn, sh->graph, text, sh->params, &o, &res, &err)
                            : agec_sql_exec(conn, text, 0, NULL, &o, &res, &err);
    double ms = cli_now_ms() - t0;
    pthread_mutex_lock(&running_lock);
    running = NULL;
    pthread_mutex_unlock(&running_lock);
    if (st != AGEC_OK) {
        if (cypher)
            cli_param_hint(&err);
        if (st == AGEC_ERR_CANCELLED) /* Ctrl-C: our own cancel */
            fprintf(stderr, "statement cancelled\n");
        else
            cli_fail(cypher ? "query" : "sql", st, &err);
        return check_lost(sh, st, in_tx) ? RUN_LOST : RUN_FAILED;
    }
    cli out = *sh->c;
    out.quiet = false;
    if (out.format == FMT_AUTO) /* tables, as psql, unless --format says otherwise */
        out.format = FMT_TABLE;
    cli_print_statement_result(&out, res, cypher ? text : NULL, stdout);
    if (out.format == FMT_TABLE)
        printf("Time: %.3f ms\n", ms);
    fflush(stdout);
    agec_result_free(res);
    return RUN_OK;
}

/* BEGIN, COMMIT, ROLLBACK and their kin typed as statements: SQL of the
 * session (no Cypher statement starts with these words). */
static bool is_tx_statement(const char *text)
{
    static const char *const words[] = { "BEGIN",    "START", "COMMIT",    "END",
                                         "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE" };
    text += strspn(text, " \t\r\n");
    size_t n = 0;
    while (text[n] && ((text[n] | 0x20) >= 'a' && (text[n] | 0x20) <= 'z'))
        n++;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && strncasecmp(text, words[i], n) == 0)
            return true;
    return false;
}

static void stats(shell *sh)
{
    agec_pool_stats s;
    if (agec_pool_stats_get(sh->c->pool, &s) != AGEC_OK)
        return;
    printf("connections: total %d, idle %d, in use %d, opening %d, waiting %d (max %d)\n", s.total,
           s.idle, s.in_use, s.opening, s.waiting, s.max);
    printf("acquires %llu, releases %llu, opened %llu, connect failures %llu, breaker %s\n",
           (unsigned long long)s.acquires, (unsigned long long)s.releases,
           (unsigned long long)s.opened, (unsigned long long)s.connect_failures,
           agec_breaker_state_name(s.breaker));
    printf("acquire wait: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", (double)s.wait_p50_us / 1000.0,
           (double)s.wait_p99_us / 1000.0, (double)s.wait_max_us / 1000.0);
}

/* :graph NAME: the name must be valid and the graph must exist. */
static run_outcome use_graph(shell *sh, const char *name)
{
    agec_error err = AGEC_ERROR_INIT;
    if (agec_graph_name_check(name, &err) != AGEC_OK) {
        fprintf(stderr, "%s\n", err.message);
        return RUN_FAILED;
    }
    agec_conn *conn = session(sh);
    if (conn == NULL)
        return RUN_LOST;
    bool exists = false;
    bool in_tx = tx_mark(sh)[0] != '\0';
    agec_status st = agec_graph_exists(conn, name, &exists, &err);
    if (st != AGEC_OK) {
        cli_fail("graph check", st, &err);
        return check_lost(sh, st, in_tx) ? RUN_LOST : RUN_FAILED;
    }
    if (!exists) {
        fprintf(stderr, "graph %s does not exist (create it with: agec graph create %s)\n", name,
                name);
        return RUN_FAILED;
    }
    snprintf(sh->graph, sizeof sh->graph, "%s", name);
    return RUN_OK;
}

/* A shell command (":..." or "\q"); *quit is set to leave the shell. */
static run_outcome command(shell *sh, char *line, bool *quit)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        line[--n] = '\0';
    char *arg = line + strcspn(line, " \t");
    if (*arg)
        *arg++ = '\0';
    arg += strspn(arg, " \t");
    if (strcmp(line, ":quit") == 0 || strcmp(line, ":q") == 0 || strcmp(line, ":exit") == 0 ||
        strcmp(line, "\\q") == 0 || strcmp(line, "\\quit") == 0) {
        *quit = true;
        return RUN_OK;
    }
    if (strcmp(line, ":help") == 0 || strcmp(line, "\\?") == 0) {
        fputs(HELP, stdout);
    } else if (strcmp(line, ":graph") == 0) {
        return use_graph(sh, arg);
    } else if (strcmp(line, ":sql") == 0) {
        n = strlen(arg);
        while (n > 0 && (arg[n - 1] == ';' || arg[n - 1] == ' '))
            arg[--n] = '\0';
        if (n > 0)
            return run(sh, arg, false);
    } else if (strcmp(line, ":params") == 0) {
        char *p = NULL;
        if (*arg && cli_build_params(arg, NULL, 0, &p) != EXIT_OK)
            return RUN_FAILED;
        agec_free(sh->params);
        sh->params = p;
        printf(p ? "parameters set\n" : "parameters cleared\n");
    } else if (strcmp(line, ":stats") == 0) {
        stats(sh);
    } else {
        fprintf(stderr, "unknown command %s (:help)\n", line);
        return RUN_FAILED;
    }
    return RUN_OK;
}

/*
 * Where statements end: at each ';' outside strings, names, dollar quotes and
 * comments, so `RETURN 1; RETURN 2;` on one line is two statements. The state
 * carries over from line to line: '...' and "..." strings with backslash
 * escapes (Cypher), `...` names, $$...$$ and $tag$...$tag$ quotes, block and
 * line (//) comments. SQL's '' inside a string needs no rule of its own:
 * closing and reopening the string leaves the same state after the pair. A
 * $name parameter is not a quote: a quote's tag is followed by '$'.
 */
typedef enum { LX_CODE, LX_SQUOTE, LX_DQUOTE, LX_BACKTICK, LX_DOLLAR, LX_BLOCK, LX_LINE } lex_state;

typedef struct scanner {
    lex_state state;
    bool escaped;  /* the previous character in a string was a backslash */
    bool content;  /* something besides blanks and comments since the last ';' */
    size_t pos;    /* next byte of the buffer to scan */
    size_t taglen; /* LX_DOLLAR: length of the quote's "$tag$" */
    char tag[64];
} scanner;

static bool tag_char(unsigned char ch, bool first)
{
    return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80 ||
           (!first && ch >= '0' && ch <= '9');
}

/* Length of a "$tag$" (or "$$") opener at buf[i], else 0. */
static size_t dollar_quote_at(const char *buf, size_t i, size_t len)
{
    size_t j = i + 1;
    while (j < len && tag_char((unsigned char)buf[j], j == i + 1))
        j++;
    return j < len && buf[j] == '$' && j + 1 - i < sizeof((scanner *)0)->tag ? j + 1 - i : 0;
}

/* Scan from sc->pos: the offset of the next ';' that ends a statement (the
 * scan resumes after it), or -1 when the buffer ends first. *content tells
 * whether the statement before that ';' holds anything to run. */
static ptrdiff_t next_end(scanner *sc, const char *buf, size_t len, bool *content)
{
    for (size_t i = sc->pos; i < len; i++) {
        char ch = buf[i], next = i + 1 < len ? buf[i + 1] : '\0';
        switch (sc->state) {
        case LX_CODE:
            if (ch == ';') {
                *content = sc->content;
                sc->content = false;
                sc->pos = i + 1;
                return (ptrdiff_t)i;
            } else if (ch == '/' && next == '*') {
                sc->state = LX_BLOCK;
                i++;
            } else if (ch == '/' && next == '/') { /* not "--": a Cypher pattern */
                sc->state = LX_LINE;
                i++;
            } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
                sc->content = true;
                size_t q = ch == '$' && (i == 0 || !tag_char((unsigned char)buf[i - 1], false))
                               ? dollar_quote_at(buf, i, len)
                               : 0;
                if (q > 0) {
                    memcpy(sc->tag, buf + i, q);
                    sc->taglen = q;
                    sc->state = LX_DOLLAR;
                    i += q - 1;
                } else {
                    sc->state = ch == '\''  ? LX_SQUOTE
                                : ch == '"' ? LX_DQUOTE
                                : ch == '`' ? LX_BACKTICK
                                            : LX_CODE;
                }
            }
            break;
        case LX_SQUOTE:
        case LX_DQUOTE:
            if (sc->escaped)
                sc->escaped = false;
            else if (ch == '\\')
                sc->escaped = true;
            else if (ch == (sc->state == LX_SQUOTE ? '\'' : '"'))
                sc->state = LX_CODE;
            break;
        case LX_BACKTICK:
            if (ch == '`')
                sc->state = LX_CODE;
            break;
        case LX_DOLLAR:
            if (ch == '$' && len - i >= sc->taglen && memcmp(buf + i, sc->tag, sc->taglen) == 0) {
                sc->state = LX_CODE;
                i += sc->taglen - 1;
            }
            break;
        case LX_BLOCK:
            if (ch == '*' && next == '/') {
                sc->state = LX_CODE;
                i++;
            }
            break;
        case LX_LINE:
            if (ch == '\n')
                sc->state = LX_CODE;
            break;
        }
    }
    sc->pos = len;
    return -1;
}

/* Empty the prompt pipe (a Ctrl-C that cancelled a statement is not one
 * at the next prompt). */
static void drain_prompt_pipe(void)
{
    char b[64];
    while (read(prompt_pipe[0], b, sizeof b) > 0) {
    }
}

/* The line editor's read of one character: EOF on Ctrl-C (readline then
 * returns, and the loop sees `interrupted`). */
static int getc_or_ctrl_c(FILE *in)
{
    int fd = fileno(in);
    for (;;) {
        struct pollfd p[2] = { { fd, POLLIN, 0 }, { prompt_pipe[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return EOF;
        }
        if (p[1].revents & POLLIN) {
            drain_prompt_pipe();
            interrupted = 1;
            return EOF;
        }
        unsigned char ch;
        ssize_t n = read(fd, &ch, 1);
        if (n == 1)
            return ch;
        if (n < 0 && errno == EINTR)
            continue;
        return EOF;
    }
}

static char *read_line(bool tty, const char *prompt)
{
    if (tty)
        return readline(prompt);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

/* A statement the scanner ended: BEGIN/COMMIT/... as SQL, else Cypher. */
static run_outcome statement(shell *sh, const char *text)
{
    return run(sh, text, !is_tx_statement(text));
}

/* The script's exit status after an outcome; -1 to go on. */
static int stop_status(const shell *sh, run_outcome r)
{
    if (r == RUN_LOST && !sh->tty)
        return EXIT_CONN;
    if (r == RUN_FAILED && sh->on_error_stop && !sh->tty)
        return EXIT_QUERY;
    return -1;
}

int cmd_shell(cli *c, int argc, char **argv)
{
    shell sh = { .c = c };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--on-error-stop") == 0)
            sh.on_error_stop = true;
        else
            return cli_usage_error("shell: unknown argument %s (it takes --on-error-stop)",
                                   argv[i]);
    }
    int rc = cli_open_pool(c, 2, 0, true);
    if (rc != EXIT_OK)
        return rc;
    if (c->graph)
        snprintf(sh.graph, sizeof sh.graph, "%s", c->graph);
    if (pipe(sig_pipe) != 0)
        return EXIT_QUERY;
    if (pipe(prompt_pipe) != 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        return EXIT_QUERY;
    }
    for (int k = 0; k < 2; k++)
        fcntl(prompt_pipe[k], F_SETFL, fcntl(prompt_pipe[k], F_GETFL) | O_NONBLOCK);
    rl_getc_function = getc_or_ctrl_c;
    pthread_t ct;
    pthread_create(&ct, NULL, cancel_thread, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old;
    sigaction(SIGINT, &sa, &old);

    sh.tty = isatty(STDIN_FILENO);
    bool tty = sh.tty;
    char hist[1024] = "";
    const char *home = getenv("HOME");
    if (tty && home) {
        snprintf(hist, sizeof hist, "%s/.agec_history", home);
        read_history(hist);
    }
    if (tty)
        printf("agec %s shell. Statements end with ';'. :help for help, :quit to leave.\n",
               agec_version());
    char *buf = NULL;
    size_t len = 0;
    scanner sc = { .state = LX_CODE };
    int status = -1;
    while (status < 0) {
        char prompt[160];
        snprintf(prompt, sizeof prompt, "%s%s%s# ", sh.graph[0] ? sh.graph : "agec",
                 len ? "-" : "=", tx_mark(&sh));
        interrupted = 0;
        drain_prompt_pipe();
        char *line = read_line(tty, prompt);
        if (interrupted && tty) {
            /* Ctrl-C at the prompt: drop what was typed, stay (psql). */
            free(line);
            putchar('\n');
            len = 0;
            sc = (scanner){ .state = LX_CODE };
            continue;
        }
        if (line == NULL) { /* end of input: run a last statement without ';' */
            if (len > 0 && sc.content)
                status = stop_status(&sh, statement(&sh, buf));
            break;
        }
        char *t = line + strspn(line, " \t");
        bool in_code = sc.state == LX_CODE || sc.state == LX_LINE;
        if ((len == 0 && t[0] == ':') || (in_code && t[0] == '\\')) {
            if (tty)
                add_history(t);
            bool quit = false;
            status = stop_status(&sh, command(&sh, t, &quit));
            free(line);
            if (quit)
                break;
            continue;
        }
        size_t ll = strlen(line);
        char *nb = realloc(buf, len + ll + 2);
        if (nb == NULL) {
            free(line);
            break;
        }
        buf = nb;
        if (len)
            buf[len++] = '\n';
        memcpy(buf + len, line, ll + 1);
        len += ll;
        free(line);
        /* Run every statement the buffer now ends; keep the rest. */
        size_t from = 0;
        bool content = false;
        ptrdiff_t end;
        while (status < 0 && (end = next_end(&sc, buf, len, &content)) >= 0) {
            if (content) {
                if (tty) { /* with its ';', so that Up then Enter runs it again */
                    char saved = buf[end + 1];
                    buf[end + 1] = '\0';
                    add_history(buf + from);
                    buf[end + 1] = saved;
                }
                buf[end] = '\0';
                status = stop_status(&sh, statement(&sh, buf + from));
            }
            from = (size_t)end + 1;
        }
        if (!sc.content && (sc.state == LX_CODE || sc.state == LX_LINE)) {
            len = 0; /* only blanks or comments after the last ';' */
            sc = (scanner){ .state = LX_CODE };
        } else if (from > 0) {
            memmove(buf, buf + from, len - from + 1);
            len -= from;
            sc.pos -= from;
        }
    }
    free(buf);
    if (tty && hist[0])
        write_history(hist);
    sigaction(SIGINT, &old, NULL);
    char q = 'q';
    ssize_t w = write(sig_pipe[1], &q, 1);
    (void)w;
    pthread_join(ct, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    close(prompt_pipe[0]);
    close(prompt_pipe[1]);
    agec_free(sh.params);
    if (sh.conn != NULL)
        agec_conn_release(sh.conn); /* an open transaction is rolled back */
    if (tty)
        putchar('\n');
    return status < 0 ? EXIT_OK : status;
}
