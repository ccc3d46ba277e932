/* Helpers shared by the agtype unit tests (include after testutil.h). */
#ifndef AGEC_TEST_AGTYPE_UTIL_H
#define AGEC_TEST_AGTYPE_UTIL_H

#include <string.h>

#include "agec/agtype.h"

/* Parse NUL-terminated agtype text; fails the test with the parser's message. */
static inline agec_value *agtype_parse_or_fail(const char *text)
{
    agec_value *v = NULL;
    agec_error err = AGEC_ERROR_INIT;
    if (agec_agtype_parse(text, strlen(text), 0, &v, &err) != AGEC_OK)
        fail_msg("parse <%s>: %s", text, err.message);
    return v;
}

#endif
