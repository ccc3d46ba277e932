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

/* Marks functions whose status must not be ignored: every call that hands
 * out something (a handle, an allocation, a result, a value through an out
 * parameter: ignoring the status means reading an undefined or NULL out)
 * or whose success says whether work was done (agec_tx_commit,
 * agec_tx_run, agec_loader_finish). Calls whose failure can be ignored are
 * not marked: closing, cancelling, rolling back, the builder's steps (their
 * error is sticky and reported by agec_builder_finish). */
#if defined(__GNUC__)
#define AGEC_NODISCARD __attribute__((warn_unused_result))
#else
#define AGEC_NODISCARD
#endif

#endif /* AGEC_EXPORT_H */
