/*
 * agec/export.h: symbol visibility. The library is built with
 * -fvisibility=hidden; only declarations marked AGEC_EXPORT are exported.
 */
#ifndef AGEC_EXPORT_H
#define AGEC_EXPORT_H

#if defined(AGEC_BUILDING) && defined(__GNUC__)
#define AGEC_EXPORT __attribute__((visibility("default")))
#else
#define AGEC_EXPORT
#endif

/* Marks functions whose status must not be ignored. */
#if defined(__GNUC__)
#define AGEC_NODISCARD __attribute__((warn_unused_result))
#else
#define AGEC_NODISCARD
#endif

#endif /* AGEC_EXPORT_H */
