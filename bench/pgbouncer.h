/* PgBouncer started and stopped by bench_pool (see pgbouncer.c). */
#ifndef AGEC_BENCH_PGBOUNCER_H
#define AGEC_BENCH_PGBOUNCER_H

#include <stddef.h>

#define PGBOUNCER_BIN "/usr/sbin/pgbouncer"

/* Start PgBouncer (transaction mode) in front of the server of pg_conninfo;
 * the client conninfo goes to out. 0 on success, -1 after printing why. */
int bouncer_start(const char *pg_conninfo, char *out, size_t cap);

/* Stop it and remove its directory; safe to call more than once. */
void bouncer_stop(void);

/* Signal handler (SIGINT, SIGTERM, SIGALRM watchdog): stop it and exit. */
void bouncer_on_fatal_signal(int sig);

#endif
