/*
 * libFuzzer target for the agtype parser and writers.
 *
 * For any input: parsing never crashes or reads out of bounds, and a failure
 * reports an offset inside the input. When parsing succeeds: the agtype
 * writer's output parses back to an equal value, the JSON writer's output is
 * strict JSON, and every accessor walks the tree without error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_agtype: %s\n", what);
        abort();
    }
}

/* Touch every node with the typed accessors (iteratively, bounded work). */
static void walk(const agec_value *root)
{
    const agec_value *stack[64];
    size_t n = 0, visited = 0;
    stack[n++] = root;
    while (n > 0 && visited < 100000) {
        const agec_value *v = stack[--n];
        visited++;
        int64_t i;
        double d;
        const char *s;
        size_t len;
        bool b;
        switch (agec_value_type(v)) {
        case AGEC_TYPE_BOOL:
            check(agec_value_get_bool(v, &b, NULL) == AGEC_OK, "bool");
            break;
        case AGEC_TYPE_INT:
            check(agec_value_get_int64(v, &i, NULL) == AGEC_OK, "int");
            break;
        case AGEC_TYPE_FLOAT:
            check(agec_value_get_double(v, &d, NULL) == AGEC_OK, "float");
            break;
        case AGEC_TYPE_NUMERIC:
            check(agec_value_get_numeric(v, &s, &len, NULL) == AGEC_OK && strlen(s) == len,
                  "numeric text");
            (void)agec_value_get_int64(v, &i, NULL);
            (void)agec_value_get_double(v, &d, NULL);
            break;
        case AGEC_TYPE_STRING:
            check(agec_value_get_string(v, &s, &len, NULL) == AGEC_OK && s[len] == '\0', "string");
            break;
        case AGEC_TYPE_VERTEX:
        case AGEC_TYPE_EDGE:
            check(agec_element_id(v, &i, NULL) == AGEC_OK, "element id");
            check(agec_element_label(v, &s, &len, NULL) == AGEC_OK, "element label");
            check(agec_element_properties(v) != NULL, "element properties");
            /* fall through: also an object */
        case AGEC_TYPE_OBJECT:
            for (size_t k = 0; k < agec_value_length(v); k++) {
                const char *key;
                size_t keylen;
                const agec_value *e = agec_value_entry(v, k, &key, &keylen);
                check(e != NULL && agec_value_get(v, key, keylen) != NULL, "object lookup");
                if (n < 64)
                    stack[n++] = e;
            }
            break;
        case AGEC_TYPE_PATH:
            check(agec_path_vertex(v, agec_path_length(v)) != NULL, "path end");
            /* fall through */
        case AGEC_TYPE_ARRAY:
            for (size_t k = 0; k < agec_value_length(v) && n < 64; k++)
                stack[n++] = agec_value_at(v, k);
            break;
        default:
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (unsigned flags = 0; flags <= AGEC_PARSE_JSON; flags += AGEC_PARSE_JSON) {
        agec_value *v = NULL;
        agec_error err = AGEC_ERROR_INIT;
        agec_status st = agec_agtype_parse((const char *)data, size, flags, &v, &err);
        if (st != AGEC_OK) {
            check(v == NULL, "value on failure");
            if (st == AGEC_ERR_PARSE || st == AGEC_ERR_RANGE)
                check(err.position >= 0 && (size_t)err.position <= size, "error offset");
            continue;
        }
        walk(v);

        char *text;
        size_t len;
        check(agec_value_to_agtype(v, &text, &len, NULL) == AGEC_OK, "write agtype");
        agec_value *back = NULL;
        check(agec_agtype_parse(text, len, 0, &back, &err) == AGEC_OK, "reparse agtype");
        check(agec_value_equal(v, back), "round trip differs");
        agec_value_free(back);
        agec_free(text);

        check(agec_value_to_json(v, AGEC_JSON_COMPACT, &text, &len, NULL) == AGEC_OK, "write json");
        st = agec_agtype_parse(text, len, AGEC_PARSE_JSON, &back, &err);
        /* numerics beyond int64 are valid JSON that agec reads as RANGE */
        check(st == AGEC_OK || st == AGEC_ERR_RANGE, "json output is not JSON");
        agec_value_free(back);
        agec_free(text);
        agec_value_free(v);
    }
    /* the numeric helpers on the raw bytes */
    int64_t i;
    double d;
    (void)agec_numeric_to_int64((const char *)data, size, &i, NULL);
    (void)agec_numeric_to_double((const char *)data, size, &d, NULL);
    return 0;
}
