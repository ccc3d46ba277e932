#ifndef AGEC_CYPHER_SQLTEXT_H
#define AGEC_CYPHER_SQLTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "agec/cypher.h"

/* Build the SELECT ... FROM ag_catalog.cypher(...) AS (...) text into a
 * malloc'ed *out. columns NULL = generated names c1..cN. The graph name is
 * checked here. */
agec_status agec__cypher_sql(const char *graph, const char *query, bool with_params,
                             const char *const *columns, size_t ncolumns, char **out,
                             agec_error *err);

#endif
