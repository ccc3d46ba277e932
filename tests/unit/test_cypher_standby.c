/* agec_cypher_needs_primary: which Cypher texts go to the primary
 * (agec/cluster_cypher.h), table-driven. The server-side truth behind the
 * table is it_cluster_age (native AGE 1.6 hot standbys). */
#include "testutil.h"

#include <string.h>

#include "agec/agec.h"

typedef struct row {
    const char *query;
    bool primary;
    const char *why; /* a word of the reason, or NULL */
} row;

static const row ROWS[] = {
    { "MATCH (a:P) RETURN count(a)", false, NULL },
    { "MATCH p=(a:P {n:1})-[:K*1..3]->(b) RETURN length(p), b.n", true, "variable-length" },
    { "MATCH (a)-[*]-(b) RETURN count(*)", true, "variable-length" },
    { "MATCH (a)<-[e:K *2]-(b) RETURN b", true, "variable-length" },
    { "MATCH (a) - [ *0..1 ] -> (b) RETURN b", true, "variable-length" },
    { "MATCH (a)-/* c */[:K*]->(b) RETURN b", true, "variable-length" },
    { "MATCH (a)-[:K {w: [1, 2]}]->(b) RETURN b", false, NULL },
    { "MATCH (a)-[:K]->(b) RETURN a.n * b.n, [x IN [1,2] | x * 2]", false, NULL },
    { "MATCH (a) WHERE a.s = '-[*]-' RETURN a", false, NULL },
    { "MATCH (a) RETURN a // -[*]-\n", false, NULL },
    { "MATCH (a)-[e]->() RETURN startNode(e)", true, "startNode" },
    { "MATCH (a)-[e]->() RETURN ENDNODE (e).n", true, "startNode" },
    { "MATCH (a) RETURN vertex_stats(a)", true, "startNode" },
    { "RETURN graph_stats('g')", true, "startNode" },
    { "MATCH (a) RETURN a.startNode, a.endnode", false, NULL },
    { "MATCH (a) RETURN a.set, a.create, a.delete", false, NULL },
    { "MATCH (a:Merge)-[:Set]->(b:Create) RETURN {set: 1}", false, NULL },
    { "MATCH (a) RETURN `create`", false, NULL },
    { "CREATE (a:P {n: 1})", true, "write" },
    { "MATCH (a) SET a.n = 1", true, "write" },
    { "MATCH (a) DETACH DELETE a", true, "write" },
    { "MATCH (a) REMOVE a.n", true, "write" },
    { "merge (a:P {n: 1}) return a", true, "write" },
    { "MATCH (a) WHERE a.name =~ 'CREATE.*' RETURN a", false, NULL },
    { "MATCH (a) RETURN \"it's MERGE\"", false, NULL },
    { "", false, NULL },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++) {
        const char *why = "unset";
        bool p = agec_cypher_needs_primary(ROWS[i].query, &why);
        if (p != ROWS[i].primary)
            fail_msg("%s: expected %s", ROWS[i].query, ROWS[i].primary ? "primary" : "standby");
        if (ROWS[i].why == NULL)
            assert_null(why);
        else
            assert_non_null(strstr(why, ROWS[i].why));
    }
    assert_false(agec_cypher_needs_primary(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
