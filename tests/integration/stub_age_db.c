#include "stub_age_db.h"

#include <stdio.h>

#include "fakeage/stub_catalog.h"
#include "testutil.h"

agec_pool *agec_test_stub_age_pool(agec_pool *admin, const char *dbname)
{
    agec_conn *c = agec_test_acquire(admin);
    char q[200];
    snprintf(q, sizeof q, "DROP DATABASE IF EXISTS %s", dbname);
    agec_test_sql(c, q);
    snprintf(q, sizeof q, "CREATE DATABASE %s", dbname);
    agec_test_sql(c, q);
    agec_conn_release(c);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%s dbname=%s", agec_test_pg_conninfo(), dbname);
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);
    cfg.conninfo = dsn;
    cfg.max = 1;
    cfg.age_mode = AGEC_AGE_OFF;
    cfg.on_event = agec_pool_event_ignore;
    agec_pool *p;
    agec_error err = AGEC_ERROR_INIT;
    agec_test_must(agec_pool_open(&cfg, &p, &err), &err, "open stub pool");
    agec_test_must(agec_pool_acquire(p, &c, &err), &err, "acquire");
    agec_result *r = NULL;
    agec_query_opts qo;
    agec_query_opts_init(&qo);
    qo.prepare = false; /* several statements: the simple protocol */
    agec_test_must(agec_sql_exec(c, AGEC_STUB_AGE_SQL, 0, NULL, &qo, &r, &err), &err, "stub");
    agec_result_free(r);
    agec_conn_release(c);
    return p;
}
