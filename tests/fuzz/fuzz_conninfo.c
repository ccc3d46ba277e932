/* libFuzzer: password redaction of connection strings and libpq error
 * texts, and graph/label name checks. A password value written after
 * "password=" or in a URI's user:password@ never survives redaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/cypher.h"
#include "session/pqerror.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    char out[512];
    agec__redact_conninfo(in, out, sizeof out);
    if (strlen(out) >= sizeof out)
        abort();
    /* A secret embedded the two documented ways must be gone. */
    static const char *const forms[] = {
        "host=h password=ZQXJ9 port=1 ",    "postgresql://u:ZQXJ9@h/d ",
        "host=h sslpassword=ZQXJ9 port=1 ", "postgresql://u:ZQXJ9/@h/d ", /* issue 23 */
        "postgresql://u:ZQXJ9@@h/d ",       "host=h password=ZQXJ9&x port=1 ",
    };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        size_t cap = size * 2 + 64;
        char *dsn = malloc(cap), *red = malloc(cap + 16);
        if (dsn == NULL || red == NULL)
            abort();
        /* the fuzz input becomes the tail; the secret has no separators */
        snprintf(dsn, cap, "%s%s", forms[f], in);
        agec__redact_conninfo(dsn, red, cap + 16);
        if (strstr(red, "ZQXJ9") != NULL && strstr(in, "ZQXJ9") == NULL)
            abort();
        free(dsn);
        free(red);
    }
    (void)agec_graph_name_check(in, NULL);
    (void)agec_label_name_check(in, NULL);
    free(in);
    return 0;
}
