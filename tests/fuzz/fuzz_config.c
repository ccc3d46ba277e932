/* libFuzzer: pool configuration checking and copying. The input fills the
 * numeric fields and the conninfo/name/init strings; the check must either
 * accept, or refuse with AGEC_ERR_CONFIG and a message naming a field, and
 * never echo a password from the conninfo. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/pool.h"
#include "pool/pool_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int take_int(const uint8_t **p, size_t *n)
{
    int32_t v = 0;
    size_t k = *n < sizeof v ? *n : sizeof v;
    memcpy(&v, *p, k);
    *p += k;
    *n -= k;
    return (int)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    const uint8_t *p = data;
    size_t n = size;
    int *fields[] = { &cfg.max,
                      &cfg.min,
                      &cfg.idle_timeout_ms,
                      &cfg.connect_timeout_ms,
                      &cfg.acquire_timeout_ms,
                      &cfg.max_lifetime_ms,
                      &cfg.validate_idle_ms,
                      &cfg.validation_timeout_ms,
                      &cfg.leak_threshold_ms,
                      &cfg.reconnect_backoff_initial_ms,
                      &cfg.reconnect_backoff_max_ms,
                      &cfg.breaker_threshold,
                      &cfg.breaker_open_ms };
    unsigned mask = n > 0 ? *p++ : 0;
    n -= n > 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (mask & (1u << (i % 8)))
            *fields[i] = take_int(&p, &n);
    /* The rest is conninfo, with a secret appended that must never leak. */
    char *ci = malloc(n + 32);
    if (ci == NULL)
        return 0;
    memcpy(ci, p, n);
    strcpy(ci + n, " password=QZX7secret");
    cfg.conninfo = ci;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_pool_config_check(&cfg, &err);
    /* (A secret the input itself spells outside password= may be echoed.) */
    bool own = false;
    for (size_t i = 0; i + 10 <= n && !own; i++)
        own = memcmp(p + i, "QZX7secret", 10) == 0;
    if (st != AGEC_OK &&
        (err.message[0] == '\0' || (!own && strstr(err.message, "QZX7secret") != NULL)))
        abort();
    if (st == AGEC_OK) {
        pool_cfg copy;
        memset(&copy, 0, sizeof copy);
        if (agec__config_copy(&copy, &cfg, &err) == AGEC_OK)
            agec__config_free(&copy);
    }
    free(ci);
    return 0;
}
