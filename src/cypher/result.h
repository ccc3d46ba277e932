#ifndef AGEC_CYPHER_RESULT_H
#define AGEC_CYPHER_RESULT_H

#include <libpq-fe.h>

#include "agec/cypher.h"

/* A result wraps one PGresult; agtype values are parsed lazily per cell and
 * kept until the result is freed. */
struct agec_result {
    PGresult *pg;
    size_t rows, cols;
    agec_value **vals; /* rows*cols parsed roots, allocated on first access */
};

/* Wrap pg (taking ownership); NULL on OOM (pg is then cleared). */
agec_result *agec__result_wrap(PGresult *pg);

/* Release what a streamed row holds, keeping the struct for the next row. */
void agec__result_reset(agec_result *res, PGresult *pg);

#endif
