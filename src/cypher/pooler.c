/* Pooler detection for pipelining (see pooler.h). */
#include "cypher/pooler.h"

#include <stdlib.h>

#include "agec/cypher.h"
#include "pool/conn_ext.h"

agec_status agec__conn_behind_pooler(agec_conn *c, int timeout_ms, bool *pooled, agec_error *err)
{
    int known = agec__conn_pooler(c);
    if (known >= 0) {
        *pooled = known == 1;
        return AGEC_OK;
    }
    agec_query_opts o;
    agec_query_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.prepare = false;
    agec_result *r = NULL;
    agec_status st = agec_sql_exec(c, "SELECT pg_backend_pid()", 0, NULL, &o, &r, err);
    if (st == AGEC_OK) {
        const char *v = agec_result_text(r, 0, 0, NULL);
        *pooled = v == NULL || strtol(v, NULL, 10) != (long)PQbackendPID(agec_conn_pgconn(c));
        agec__conn_set_pooler(c, *pooled);
    }
    agec_result_free(r);
    return st;
}
