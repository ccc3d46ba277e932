/* libFuzzer: the RETURN-column helper on arbitrary query text. Either
 * AGEC_ERR_COLUMNS with a message, or names that are non-empty, unique,
 * at most 63 bytes, and safe to quote; then the SQL text builder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/cypher.h"
#include "cypher/sqltext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (q == NULL)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    char **names = NULL;
    size_t n = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_cypher_return_columns(q, &names, &n, &err);
    if (st != AGEC_OK) {
        if (names != NULL || n != 0 || err.message[0] == '\0')
            abort();
        free(q);
        return 0;
    }
    if (n == 0 || names[n] != NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l == 0 || l > 63)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[i], names[k]) == 0)
                abort();
    }
    char *sql = NULL;
    st = agec__cypher_sql("fuzz_graph", q, true, (const char *const *)names, n, &sql, &err);
    if (st == AGEC_OK) {
        /* The chosen dollar-quote tag must not occur inside the query. */
        const char *open = strstr(sql, "', $agec");
        if (open == NULL)
            abort();
        const char *tag = open + 3;
        const char *tag_end = strchr(tag + 1, '$');
        if (tag_end == NULL)
            abort();
        size_t tl = (size_t)(tag_end - tag) + 1;
        char t[32];
        if (tl >= sizeof t)
            abort();
        memcpy(t, tag, tl);
        t[tl] = '\0';
        if (strstr(q, t) != NULL)
            abort();
    }
    free(sql);
    agec_strings_free(names);
    free(q);
    return 0;
}
