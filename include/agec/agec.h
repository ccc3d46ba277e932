/*
 * agec/agec.h: the one header to include. A C client for PostgreSQL with
 * Apache AGE: a thread-safe connection pool over libpq, Cypher with bound
 * parameters, an exact agtype parser, transactions.
 */
#ifndef AGEC_AGEC_H
#define AGEC_AGEC_H

#include "agec/export.h"
#include "agec/version.h"
#include "agec/error.h"
#include "agec/pool.h"
#include "agec/agtype.h"
#include "agec/cypher.h"
#include "agec/tx.h"
#include "agec/graph.h"
#include "agec/load.h"
#include "agec/cluster.h"
#include "agec/cluster_cypher.h"

#endif /* AGEC_AGEC_H */
