/*
 * Helpers shared by bench_pool and bench_cypher: the machine line, a
 * monotonic clock, medians, a watchdog that bounds a benchmark's run time,
 * and required test-server addresses (a missing server is an error, never a
 * silent skip).
 */
#ifndef AGEC_BENCH_COMMON_H
#define AGEC_BENCH_COMMON_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void bench_sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The load average: other work on the machine skews every figure. */
static inline void bench_print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL)
            snprintf(buf, sizeof buf, "?");
        fclose(f);
        buf[strcspn(buf, "\n")] = '\0';
    }
    printf("%s: loadavg %s (1/5/15 min, runnable/total)\n", when, buf);
}

/* "machine: 2 CPUs, AMD EPYC ..., Linux 6.1.0" */
static inline void bench_print_machine(const char *name)
{
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *v = strchr(line, ':');
                if (v != NULL) {
                    v++;
                    while (*v == ' ' || *v == '\t')
                        v++;
                    snprintf(model, sizeof model, "%s", v);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    char kernel[300] = "unknown kernel";
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    printf("== %s ==\nmachine: nproc %ld, %s, %s\n", name, sysconf(_SC_NPROCESSORS_ONLN), model,
           kernel);
    bench_print_load("load at start");
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts a copy; n <= 64). */
static inline double bench_median(const double *v, int n)
{
    double tmp[64];
    if (n <= 0)
        return 0;
    if (n > 64)
        n = 64;
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, bench_cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* The connection string of a required test server, or exit(2) with a
 * message that says how to get one. */
static inline const char *bench_require_env(const char *var, const char *what)
{
    const char *v = getenv(var);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "error: %s is not set: this benchmark needs the %s.\n"
                "Run it through bench/run, or scripts/with-test-servers COMMAND.\n",
                var, what);
        exit(2);
    }
    return v;
}

/* Seconds per measurement: AGEC_BENCH_SECONDS (0.1 .. 10), else dflt. */
static inline double bench_seconds(double dflt)
{
    const char *s = getenv("AGEC_BENCH_SECONDS");
    if (s == NULL || s[0] == '\0')
        return dflt;
    double v = strtod(s, NULL);
    if (v < 0.1)
        v = 0.1;
    if (v > 10)
        v = 10;
    return v;
}

static inline int bench_fmt_rate(char *buf, size_t cap, double v)
{
    if (v >= 1e6)
        return snprintf(buf, cap, "%.2fM", v / 1e6);
    return snprintf(buf, cap, "%.0f", v);
}

#endif
