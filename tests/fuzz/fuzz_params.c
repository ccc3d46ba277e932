/* libFuzzer: the JSON parameter path of the CLI (--params / --param). Any
 * bytes: either an error with a position inside the input, or agtype map
 * text that parses back to an equal value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agec/agtype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL;
    size_t len = 0;
    agec_error err = AGEC_ERROR_INIT;
    agec_status st = agec_agtype_params_from_json((const char *)data, size, &out, &len, &err);
    if (st != AGEC_OK) {
        if (out != NULL || err.message[0] == '\0')
            abort();
        if ((st == AGEC_ERR_PARSE || st == AGEC_ERR_RANGE) && (size_t)err.position > size)
            abort();
        return 0;
    }
    agec_value *json = NULL, *back = NULL;
    if (agec_agtype_parse((const char *)data, size, AGEC_PARSE_JSON, &json, NULL) != AGEC_OK)
        abort();
    if (agec_agtype_parse(out, len, 0, &back, NULL) != AGEC_OK)
        abort();
    if (agec_value_type(back) != AGEC_TYPE_OBJECT || !agec_value_equal(json, back))
        abort();
    agec_value_free(json);
    agec_value_free(back);
    agec_free(out);
    return 0;
}
