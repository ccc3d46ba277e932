/* The README's example: a pool, Cypher with a parameter, reading a vertex. */
#include <stdio.h>
#include <agec/agec.h>

int main(int argc, char **argv)
{
    agec_pool_config cfg;
    agec_pool_config_init(&cfg);              /* every default */
    cfg.conninfo = argc > 1 ? argv[1] : NULL; /* NULL: PGHOST, PGPORT, ... */
    agec_pool *pool;
    agec_conn *conn;
    agec_result *res;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_pool_open(&cfg, &pool, &err) || agec_pool_acquire(pool, &conn, &err))
        return fprintf(stderr, "%s\n", err.message), 1;
    agec_graph_create(conn, "hello_graph", NULL); /* fails harmlessly if it exists */
    if (agec_cypher_exec(conn, "hello_graph", "MERGE (p:Person {name: $name}) RETURN p",
                         "{\"name\": \"Ada\"}", NULL, &res, &err) == AGEC_OK) {
        const agec_value *p;
        const char *name;
        size_t len;
        agec_result_value(res, 0, 0, &p, &err); /* the vertex, parsed from agtype */
        agec_value_get_string(agec_element_property(p, "name"), &name, &len, &err);
        printf("vertex %.*s\n", (int)len, name);
        agec_result_free(res);
    } else {
        fprintf(stderr, "%s [%s] %s\n", agec_status_name(err.code), err.sqlstate, err.message);
    }
    agec_conn_release(conn);
    return agec_pool_close(pool, 1000, NULL) != AGEC_OK;
}
