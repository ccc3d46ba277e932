/*
 * agec/agec.h: the one header to include. A C client for PostgreSQL with
 * Apache AGE: a thread-safe connection pool over libpq (pool.h), Cypher and
 * SQL with bound parameters (cypher.h), an exact agtype parser (agtype.h),
 * transactions (tx.h), pipelined batches (batch.h), graph and label helpers (graph.h), a bulk loader
 * (load.h) and a primary + hot standbys cluster (cluster.h).
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
#include "agec/batch.h"
#include "agec/graph.h"
#include "agec/load.h"
#include "agec/cluster.h"
#include "agec/cluster_cypher.h"
#include "agec/mux.h"

#endif /* AGEC_AGEC_H */
