/* The pool's random nonce (see agec__conn_pool_nonce in conn_ext.h). */
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "pool/pool_internal.h"
#include "session/clock.h"

static bool read_urandom(uint64_t *v)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, v, sizeof *v);
    close(fd);
    return n == (ssize_t)sizeof *v;
}

uint64_t agec__pool_nonce_new(const void *salt)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v && v != 0)
        return v;
    if (read_urandom(&v) && v != 0)
        return v;
    /* No kernel randomness: the clock, the pid and an address (splitmix64). */
    v = (uint64_t)agec__now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
    v += 0x9E3779B97F4A7C15ULL;
    v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ULL;
    v = (v ^ (v >> 27)) * 0x94D049BB133111EBULL;
    return v ^ (v >> 31);
}
