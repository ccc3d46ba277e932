/*
 * agec/version.h: compile-time and run-time version.
 * Same major version, same ABI (libuv's rule).
 */
#ifndef AGEC_VERSION_H
#define AGEC_VERSION_H

#include "agec/export.h"

#define AGEC_VERSION_MAJOR 0
#define AGEC_VERSION_MINOR 1
#define AGEC_VERSION_PATCH 0
#define AGEC_VERSION_STRING "0.1.0"
/** 0xMMmmpp, comparable with AGEC_AT_LEAST_VERSION. */
#define AGEC_VERSION_NUM \
    ((AGEC_VERSION_MAJOR << 16) | (AGEC_VERSION_MINOR << 8) | AGEC_VERSION_PATCH)
#define AGEC_AT_LEAST_VERSION(x, y, z) (AGEC_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the linked library as "MAJOR.MINOR.PATCH". Static; thread-safe. */
AGEC_EXPORT const char *agec_version(void);

/** AGEC_VERSION_NUM of the linked library (may differ from the header's). */
AGEC_EXPORT unsigned agec_version_num(void);

#ifdef __cplusplus
}
#endif

#endif /* AGEC_VERSION_H */
