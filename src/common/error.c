/* Status names and the caller-owned agec_error helpers. */
#include "common/error_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agec/version.h"

size_t agec__error_extent(const agec_error *err)
{
    /* A size the library knows (from a header at least as old as the
     * fields up to hint, and no larger than ours) is trusted; anything else
     * (uninitialised, an older layout) gets the base fields only. */
    size_t sz = err->size;
    if (sz >= AGEC__ERROR_BASE_SIZE && sz <= sizeof *err)
        return sz;
    return AGEC__ERROR_BASE_SIZE;
}

void agec_error_clear_sized(agec_error *err, size_t size)
{
    if (err == NULL)
        return;
    err->size = size;
    size_t n = agec__error_extent(err);
    memset(err, 0, n);
    err->size = size;
}

void agec__error_reset(agec_error *err)
{
    size_t sz = err->size;
    memset(err, 0, agec__error_extent(err));
    err->size = sz;
}

agec_status agec__error_ok(agec_error *err)
{
    if (err != NULL)
        agec__error_reset(err);
    return AGEC_OK;
}

void agec__error_copy(agec_error *dst, const agec_error *src)
{
    if (dst == NULL || src == NULL || dst == src)
        return;
    size_t sz = dst->size;
    size_t n = agec__error_extent(dst);
    size_t m = agec__error_extent(src);
    memcpy(dst, src, n < m ? n : m);
    if (m < n)
        memset((char *)dst + m, 0, n - m);
    dst->size = sz;
}

/* One table: code -> (identifier, English text). Indexed by code. */
static const struct {
    const char *name;
    const char *text;
} status_table[] = {
    [AGEC_OK] = { "AGEC_OK", "success" },
    [AGEC_ERR_INVALID_ARG] = { "AGEC_ERR_INVALID_ARG", "invalid argument" },
    [AGEC_ERR_NO_MEMORY] = { "AGEC_ERR_NO_MEMORY", "out of memory" },
    [AGEC_ERR_CONFIG] = { "AGEC_ERR_CONFIG", "invalid configuration" },
    [AGEC_ERR_UNREACHABLE] = { "AGEC_ERR_UNREACHABLE", "database unreachable" },
    [AGEC_ERR_AUTH] = { "AGEC_ERR_AUTH", "authentication failed" },
    [AGEC_ERR_POOL_EXHAUSTED] = { "AGEC_ERR_POOL_EXHAUSTED", "pool exhausted" },
    [AGEC_ERR_BREAKER_OPEN] = { "AGEC_ERR_BREAKER_OPEN", "circuit breaker open" },
    [AGEC_ERR_POOL_CLOSED] = { "AGEC_ERR_POOL_CLOSED", "pool closed" },
    [AGEC_ERR_TIMEOUT] = { "AGEC_ERR_TIMEOUT", "statement timeout" },
    [AGEC_ERR_SERVER] = { "AGEC_ERR_SERVER", "server error" },
    [AGEC_ERR_CONNECTION_LOST] = { "AGEC_ERR_CONNECTION_LOST", "connection lost" },
    [AGEC_ERR_INIT] = { "AGEC_ERR_INIT", "session initialisation failed" },
    [AGEC_ERR_PARSE] = { "AGEC_ERR_PARSE", "parse error" },
    [AGEC_ERR_NAME] = { "AGEC_ERR_NAME", "invalid name" },
    [AGEC_ERR_TYPE] = { "AGEC_ERR_TYPE", "type mismatch" },
    [AGEC_ERR_RANGE] = { "AGEC_ERR_RANGE", "out of range" },
    [AGEC_ERR_NOT_FOUND] = { "AGEC_ERR_NOT_FOUND", "not found" },
    [AGEC_ERR_STATE] = { "AGEC_ERR_STATE", "invalid state" },
    [AGEC_ERR_AGE_MISSING] = { "AGEC_ERR_AGE_MISSING", "Apache AGE not available" },
    [AGEC_ERR_COLUMNS] = { "AGEC_ERR_COLUMNS", "cannot derive result columns" },
    [AGEC_ERR_SYSTEM] = { "AGEC_ERR_SYSTEM", "system call failed" },
    [AGEC_ERR_CANCELLED] = { "AGEC_ERR_CANCELLED", "cancelled" },
    [AGEC_ERR_NO_NODE] = { "AGEC_ERR_NO_NODE", "no cluster node available" },
    [AGEC_ERR_INPUT] = { "AGEC_ERR_INPUT", "bad input" },
    [AGEC_ERR_BATCH_ABORTED] = { "AGEC_ERR_BATCH_ABORTED",
                                 "not run: another statement of the batch failed" },
};

#define STATUS_COUNT (sizeof status_table / sizeof status_table[0])

const char *agec_strerror(agec_status code)
{
    if ((unsigned)code >= STATUS_COUNT || status_table[code].text == NULL)
        return "unknown error";
    return status_table[code].text;
}

const char *agec_status_name(agec_status code)
{
    if ((unsigned)code >= STATUS_COUNT || status_table[code].name == NULL)
        return "AGEC_ERR_UNKNOWN";
    return status_table[code].name;
}

/* Bytes in a UTF-8 sequence led by byte c (1 for anything else). */
static size_t utf8_seq_len(unsigned char c)
{
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

void agec__utf8_trim(char *s)
{
    size_t n = strlen(s), i = n;
    /* The last lead byte, at most 3 continuation bytes back. */
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && (i - 1) + utf8_seq_len((unsigned char)s[i - 1]) > n)
        s[i - 1] = '\0';
}

const char *agec__utf8_cut(char *buf, size_t cap, const char *src)
{
    agec__copy_text(buf, cap, src);
    return buf;
}

void agec__copy_text(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        /* Do not cut a UTF-8 sequence in half: back up over continuation bytes. */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

agec_status agec__error_set(agec_error *err, agec_status code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    agec__error_reset(err);
    err->code = code;
    char buf[AGEC_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        buf[0] = '\0';
    else if ((size_t)n >= sizeof buf)
        agec__utf8_trim(buf);
    agec__copy_text(err->message, sizeof err->message, buf);
    if (err->message[0] == '\0')
        agec__copy_text(err->message, sizeof err->message, agec_strerror(code));
    return code;
}

const char *agec_version(void)
{
    return AGEC_VERSION_STRING;
}

unsigned agec_version_num(void)
{
    return AGEC_VERSION_NUM;
}
