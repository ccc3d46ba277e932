#include "testbase.h"

#include <dirent.h>
#include <time.h>

int64_t agec_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void agec_test_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

bool agec_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = agec_test_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (agec_test_now_ms() >= deadline)
            return cond(arg);
        agec_test_sleep_ms(5);
    }
}

/* Entries of a /proc directory, "." and ".." not counted. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int agec_test_fd_count(void)
{
    int n = count_entries("/proc/self/fd");
    return n < 0 ? n : n - 1; /* the directory stream's own descriptor */
}

int agec_test_thread_count(void)
{
    return count_entries("/proc/self/task");
}
