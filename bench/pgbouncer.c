/*
 * PgBouncer for the side-by-side benchmark: started in transaction mode as
 * user postgres on a free loopback port in a temporary directory, and always
 * stopped (atexit, signals and the watchdog included).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "agec/cypher.h"
#include "agec/pool.h"
#include "bench_common.h"
#include "pgbouncer.h"

/* ---- PgBouncer, started and always stopped by us ------------------------------ */

static volatile sig_atomic_t g_runuser_pid; /* runuser (or pgbouncer when not root) */
static volatile sig_atomic_t g_bouncer_pid; /* pgbouncer itself, from its pidfile */
static char g_bouncer_dir[512];
/* The files of g_bouncer_dir, prepared up front for the signal handler. */
static char g_bouncer_files[5][600];

static void bouncer_kill_now(void)
{
    if (g_bouncer_pid > 0)
        kill((pid_t)g_bouncer_pid, SIGTERM);
    if (g_runuser_pid > 0)
        kill((pid_t)g_runuser_pid, SIGTERM);
}

void bouncer_on_fatal_signal(int sig)
{
    bouncer_kill_now();
    if (g_bouncer_dir[0] != '\0') {
        for (int i = 0; i < 5; i++)
            unlink(g_bouncer_files[i]);
        rmdir(g_bouncer_dir);
    }
    static const char msg[] =
        "\nbench_pool: stopped by the watchdog or a signal (PgBouncer was stopped)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(sig == SIGALRM ? 124 : 128 + sig);
}

static bool pid_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void bouncer_remove_dir(void)
{
    if (g_bouncer_dir[0] == '\0')
        return;
    static const char *const files[] = { "pgbouncer.ini", "userlist.txt", "pgbouncer.log",
                                         "pgbouncer.pid", "stdout.log" };
    char path[600];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_bouncer_dir, files[i]);
        unlink(path);
    }
    rmdir(g_bouncer_dir);
    g_bouncer_dir[0] = '\0';
}

/* Stop PgBouncer and wait for it (SIGKILL after 5 s). Safe to call twice. */
void bouncer_stop(void)
{
    pid_t bpid = (pid_t)g_bouncer_pid, rpid = (pid_t)g_runuser_pid;
    if (bpid > 0)
        kill(bpid, SIGTERM); /* immediate shutdown */
    else if (rpid > 0)
        kill(rpid, SIGTERM); /* runuser passes it on to its child */
    int64_t until = bench_now_ns() + 5000000000LL;
    bool reaped = rpid <= 0;
    while (bench_now_ns() < until) {
        if (!reaped && waitpid(rpid, NULL, WNOHANG) == rpid)
            reaped = true;
        if (reaped && !pid_alive(bpid))
            break;
        bench_sleep_ms(10);
    }
    if (!reaped) {
        kill(rpid, SIGKILL);
        waitpid(rpid, NULL, 0);
    }
    if (pid_alive(bpid))
        kill(bpid, SIGKILL);
    g_bouncer_pid = 0;
    g_runuser_pid = 0;
    bouncer_remove_dir();
}

static int free_loopback_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "bench_pool: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    fclose(f);
    chmod(path, 0644);
    return 0;
}

static void print_file(const char *dir, const char *name)
{
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "--- %s ---\n", path);
    while (fgets(line, sizeof line, f) != NULL)
        fputs(line, stderr);
    fclose(f);
}

/* Start PgBouncer in transaction mode in front of the server of `pg_conninfo`.
 * On success the client conninfo goes to out. */
int bouncer_start(const char *pg_conninfo, char *out, size_t cap)
{
    if (access(PGBOUNCER_BIN, X_OK) != 0) {
        fprintf(stderr, "bench_pool: %s not found: apt-get install pgbouncer\n", PGBOUNCER_BIN);
        return -1;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(pg_conninfo, &perr);
    if (opts == NULL) {
        fprintf(stderr, "bench_pool: bad AGEC_TEST_PG: %s\n", perr ? perr : "?");
        PQfreemem(perr);
        return -1;
    }
    const char *host = "127.0.0.1", *port = "5432", *user = "postgres", *db = "postgres";
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }

    const char *base = getenv("AGEC_BENCH_RUNDIR");
    if (base == NULL || base[0] == '\0')
        base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(g_bouncer_dir, sizeof g_bouncer_dir, "%s/agec-pgbouncer.XXXXXX", base);
    if (mkdtemp(g_bouncer_dir) == NULL) {
        fprintf(stderr, "bench_pool: mkdtemp %s: %s\n", g_bouncer_dir, strerror(errno));
        g_bouncer_dir[0] = '\0';
        PQconninfoFree(opts);
        return -1;
    }
    chmod(g_bouncer_dir, 0755);
    static const char *const names[5] = { "pgbouncer.ini", "userlist.txt", "pgbouncer.log",
                                          "pgbouncer.pid", "stdout.log" };
    for (int i = 0; i < 5; i++)
        snprintf(g_bouncer_files[i], sizeof g_bouncer_files[i], "%s/%s", g_bouncer_dir, names[i]);
    bool root = geteuid() == 0;
    if (root) {
        /* PgBouncer refuses to run as root: it runs as postgres and writes
         * its log and pidfile here. */
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL || chown(g_bouncer_dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "bench_pool: running as root needs user postgres for PgBouncer\n");
            PQconninfoFree(opts);
            bouncer_remove_dir();
            return -1;
        }
    }
    char text[2048];
    snprintf(text, sizeof text, "\"%s\" \"\"\n", user);
    int rc = write_file(g_bouncer_dir, "userlist.txt", text);

    int lport = -1;
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        lport = free_loopback_port();
        snprintf(text, sizeof text,
                 "[databases]\n"
                 "%s = host=%s port=%s dbname=%s user=%s\n"
                 "[pgbouncer]\n"
                 "listen_addr = 127.0.0.1\n"
                 "listen_port = %d\n"
                 "unix_socket_dir =\n"
                 "auth_type = trust\n"
                 "auth_file = %s/userlist.txt\n"
                 "pool_mode = transaction\n"
                 "default_pool_size = 32\n"
                 "max_client_conn = 200\n"
                 "ignore_startup_parameters = extra_float_digits\n"
                 "logfile = %s/pgbouncer.log\n"
                 "pidfile = %s/pgbouncer.pid\n"
                 "log_connections = 0\n"
                 "log_disconnections = 0\n",
                 db, host, port, db, user, lport, g_bouncer_dir, g_bouncer_dir, g_bouncer_dir);
        if (lport <= 0 || write_file(g_bouncer_dir, "pgbouncer.ini", text) != 0) {
            rc = -1;
            break;
        }
        char ini[600], logp[600];
        snprintf(ini, sizeof ini, "%s/pgbouncer.ini", g_bouncer_dir);
        snprintf(logp, sizeof logp, "%s/stdout.log", g_bouncer_dir);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            rc = -1;
            break;
        }
        if (pid == 0) {
            int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            int nul = open("/dev/null", O_RDONLY);
            if (nul >= 0) {
                dup2(nul, 0);
                close(nul);
            }
            if (root)
                execl("/usr/sbin/runuser", "runuser", "-u", "postgres", "--", PGBOUNCER_BIN, ini,
                      (char *)NULL);
            else
                execl(PGBOUNCER_BIN, "pgbouncer", ini, (char *)NULL);
            _exit(127);
        }
        g_runuser_pid = pid;
        snprintf(out, cap,
                 "host=127.0.0.1 port=%d dbname=%s user=%s sslmode=disable connect_timeout=5",
                 lport, db, user);
        /* Ready when it answers a query through to the server. */
        bool ready = false, died = false;
        int64_t until = bench_now_ns() + 10000000000LL;
        while (!ready && !died && bench_now_ns() < until) {
            PGconn *c = PQconnectdb(out);
            if (PQstatus(c) == CONNECTION_OK) {
                PGresult *r = PQexec(c, "SELECT 1");
                ready = PQresultStatus(r) == PGRES_TUPLES_OK;
                PQclear(r);
            }
            PQfinish(c);
            if (!ready) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                    died = true;
                    g_runuser_pid = 0;
                } else {
                    bench_sleep_ms(50);
                }
            }
        }
        if (ready) {
            char pidpath[600];
            snprintf(pidpath, sizeof pidpath, "%s/pgbouncer.pid", g_bouncer_dir);
            FILE *f = fopen(pidpath, "r");
            long bp = 0;
            if (f != NULL) {
                if (fscanf(f, "%ld", &bp) != 1)
                    bp = 0;
                fclose(f);
            }
            if (bp <= 0 && !root)
                bp = pid;
            g_bouncer_pid = (sig_atomic_t)bp;
            break;
        }
        fprintf(stderr, "bench_pool: PgBouncer on port %d did not come up (attempt %d)\n", lport,
                attempt + 1);
        print_file(g_bouncer_dir, "stdout.log");
        print_file(g_bouncer_dir, "pgbouncer.log");
        if (!died) {
            pid_t rp = (pid_t)g_runuser_pid;
            kill(rp, SIGTERM);
            bench_sleep_ms(200);
            kill(rp, SIGKILL);
            waitpid(rp, NULL, 0);
        }
        g_runuser_pid = 0; /* next attempt: another port */
    }
    PQconninfoFree(opts);
    if (rc != 0 || g_runuser_pid == 0) {
        bouncer_stop();
        return -1;
    }
    return 0;
}
