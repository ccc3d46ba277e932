/*
 * Options structs that grow: each starts with `size_t struct_size`, set by
 * its _init function to the sizeof the caller was built with. The library
 * reads only that many bytes and takes its own defaults for the fields a
 * program built against an older header does not know: agec_pool_config,
 * agec_query_opts, agec_tx_opts, agec_load_opts.
 */
#ifndef AGEC_COMMON_SIZED_H
#define AGEC_COMMON_SIZED_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/error_internal.h"

/* dst (dst_size bytes) holds the library's defaults; overlay the caller's
 * struct src on it. False if src's struct_size is not plausible (below
 * min_size, the fields of the first version, or absurdly large): the
 * struct was not initialised with its _init function. */
static inline bool agec__sized_adopt(void *dst, size_t dst_size, const void *src, size_t min_size)
{
    size_t n;
    memcpy(&n, src, sizeof n);
    if (n < min_size || n > ((size_t)1 << 20))
        return false;
    memcpy(dst, src, n < dst_size ? n : dst_size);
    memcpy(dst, &dst_size, sizeof dst_size);
    return true;
}

/* agec__sized_adopt for the options struct `name` (made by name_init):
 * src NULL keeps the defaults; AGEC_ERR_INVALID_ARG naming name_init when
 * src's struct_size is not set. */
static inline agec_status agec__sized_opts(void *dst, size_t dst_size, const void *src,
                                           size_t min_size, const char *name, agec_error *err)
{
    if (src == NULL || agec__sized_adopt(dst, dst_size, src, min_size))
        return AGEC_OK;
    size_t n;
    memcpy(&n, src, sizeof n);
    return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                           "%s: struct_size %zu is not set (initialise the options with %s_init)",
                           name, n, name);
}

#endif
