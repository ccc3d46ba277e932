/* Pool configuration: defaults, validation (naming the bad field), copying. */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error_internal.h"
#include "common/sized.h"
#include "pool/pool_internal.h"
#include "session/pqerror.h"
#include "session/redact.h"

/* The one table of defaults (PgBouncer style). */
void agec_pool_config_init(agec_pool_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->conninfo = NULL;
    cfg->max = 10;
    cfg->min = 0;
    cfg->idle_timeout_ms = 30000;
    cfg->connect_timeout_ms = 2000;
    cfg->acquire_timeout_ms = 60000;
    cfg->max_lifetime_ms = 1800000;
    cfg->lifetime_jitter_pct = 2.5;
    cfg->validate_idle_ms = 500;
    cfg->validation_timeout_ms = 5000;
    cfg->reset_timeout_ms = 5000;
    cfg->leak_threshold_ms = 0;
    cfg->age_mode = AGEC_AGE_LOAD;
    cfg->age_create_extension = false;
    cfg->reconnect_backoff_initial_ms = 50;
    cfg->reconnect_backoff_max_ms = 5000;
    cfg->breaker_threshold = 5;
    cfg->breaker_open_ms = 5000;
    cfg->on_event = NULL;
    cfg->name = "agec";
    cfg->fair_wait_ms = 50;
    cfg->statement_mode = AGEC_STMT_NAMED;
    cfg->application_name_override = false;
}

/* Bring a caller's struct to the library's layout: a caller compiled against
 * an older header passes a smaller struct_size; the fields it does not know
 * keep their defaults. */
static agec_status normalise(const agec_pool_config *in, agec_pool_config *out, agec_error *err)
{
    agec_pool_config_init(out);
    if (!agec__sized_adopt(out, sizeof *out, in, offsetof(agec_pool_config, max) + sizeof(int)))
        return agec__error_set(err, AGEC_ERR_CONFIG,
                               "struct_size: not set (initialise the config with "
                               "agec_pool_config_init) (got %zu)",
                               in->struct_size);
    return AGEC_OK;
}

#define CHECK(cond, field, fmt, ...)                                                   \
    do {                                                                               \
        if (!(cond))                                                                   \
            return agec__error_set(err, AGEC_ERR_CONFIG, field ": " fmt, __VA_ARGS__); \
    } while (0)

static agec_status check_fields(const agec_pool_config *c, agec_error *err)
{
    CHECK(c->max >= 1, "max", "must be >= 1 (got %d)", c->max);
    CHECK(c->min >= 0 && c->min <= c->max, "min", "must be between 0 and max=%d (got %d)", c->max,
          c->min);
    CHECK(c->idle_timeout_ms >= 0, "idle_timeout_ms", "must be >= 0 (got %d)", c->idle_timeout_ms);
    CHECK(c->connect_timeout_ms > 0, "connect_timeout_ms", "must be > 0 (got %d)",
          c->connect_timeout_ms);
    CHECK(c->acquire_timeout_ms >= 0, "acquire_timeout_ms", "must be >= 0 (got %d)",
          c->acquire_timeout_ms);
    CHECK(c->max_lifetime_ms >= 0, "max_lifetime_ms", "must be >= 0 (got %d)", c->max_lifetime_ms);
    CHECK(c->lifetime_jitter_pct >= 0.0 && c->lifetime_jitter_pct <= 50.0, "lifetime_jitter_pct",
          "must be between 0 and 50 (got %g)", c->lifetime_jitter_pct);
    CHECK(c->validate_idle_ms >= -1, "validate_idle_ms", "must be >= -1 (got %d)",
          c->validate_idle_ms);
    CHECK(c->validation_timeout_ms > 0, "validation_timeout_ms", "must be > 0 (got %d)",
          c->validation_timeout_ms);
    CHECK(c->reset_timeout_ms > 0, "reset_timeout_ms", "must be > 0 (got %d)", c->reset_timeout_ms);
    CHECK(c->leak_threshold_ms >= 0, "leak_threshold_ms", "must be >= 0 (got %d)",
          c->leak_threshold_ms);
    CHECK(c->age_mode >= AGEC_AGE_LOAD && c->age_mode <= AGEC_AGE_OFF, "age_mode",
          "unknown mode %d", (int)c->age_mode);
    CHECK(c->reconnect_backoff_initial_ms > 0, "reconnect_backoff_initial_ms",
          "must be > 0 (got %d)", c->reconnect_backoff_initial_ms);
    CHECK(c->reconnect_backoff_max_ms >= c->reconnect_backoff_initial_ms,
          "reconnect_backoff_max_ms", "must be >= reconnect_backoff_initial_ms=%d (got %d)",
          c->reconnect_backoff_initial_ms, c->reconnect_backoff_max_ms);
    CHECK(c->breaker_threshold >= 0, "breaker_threshold", "must be >= 0 (got %d)",
          c->breaker_threshold);
    CHECK(c->breaker_open_ms > 0, "breaker_open_ms", "must be > 0 (got %d)", c->breaker_open_ms);
    CHECK(c->name == NULL || strlen(c->name) <= 200, "name", "longer than 200 bytes (%zu)",
          c->name ? strlen(c->name) : (size_t)0);
    CHECK(c->fair_wait_ms >= 0, "fair_wait_ms", "must be >= 0 (got %d)", c->fair_wait_ms);
    CHECK(c->statement_mode == AGEC_STMT_NAMED || c->statement_mode == AGEC_STMT_UNNAMED,
          "statement_mode", "unknown mode %d", (int)c->statement_mode);
    return AGEC_OK;
}

/* Is there the word w (case-insensitive) at q, not inside a longer word? */
static bool word_at(const char *start, const char *q, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(q, w, n) != 0)
        return false;
    bool before = q > start && (isalnum((unsigned char)q[-1]) || q[-1] == '_');
    bool after = isalnum((unsigned char)q[n]) || q[n] == '_';
    return !before && !after;
}

/* Does this SQL drop prepared statements? DISCARD ALL and DEALLOCATE are
 * the only statements that do (DISCARD TEMP, PLANS and SEQUENCES do not).
 * A word match, case-insensitive: DEALLOCATE anywhere (also in a string
 * run by EXECUTE) or DISCARD followed by ALL; errs on the side of "yes"
 * (then the cache is dropped, as a reset always did). */
static bool drops_statements(const char *sql)
{
    for (const char *q = sql; *q != '\0'; q++) {
        if (word_at(sql, q, "deallocate"))
            return true;
        if (word_at(sql, q, "discard")) {
            const char *r = q + strlen("discard");
            while (isspace((unsigned char)*r))
                r++;
            if (word_at(sql, r, "all"))
                return true;
        }
    }
    return false;
}

/* Parse conninfo into keyword/value arrays (validating it), adding the
 * config's application_name as fallback_application_name (libpq's
 * convention: conninfo's application_name and PGAPPNAME win), or as
 * application_name with application_name_override. PQconninfoParse does not
 * apply the environment, so unset keywords stay out and
 * PQconnectStartParams fills them from PG* variables. */
static agec_status parse_conninfo(const agec_pool_config *c, pool_cfg *dst, agec_error *err)
{
    PQconninfoOption *opts = NULL;
    agec_status pst = agec__conninfo_parse(c->conninfo, &opts, err);
    if (pst != AGEC_OK)
        return pst;
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        n++;
    agec_status st = AGEC_OK;
    size_t k = 0;
    /* Strings are stored in one block per entry: "keyword\0value\0". */
    dst->keys = calloc(n + 2, sizeof *dst->keys);
    dst->vals = calloc(n + 2, sizeof *dst->vals);
    if (dst->keys == NULL || dst->vals == NULL) {
        st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *val = o->val;
        if (c->application_name != NULL &&
            strcmp(o->keyword, c->application_name_override ? "application_name"
                                                            : "fallback_application_name") == 0)
            continue; /* the config field wins; added below */
        if (val == NULL)
            continue;
        size_t kl = strlen(o->keyword), vl = strlen(val);
        char *blk = malloc(kl + vl + 2);
        if (blk == NULL) {
            st = agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        memcpy(blk, o->keyword, kl + 1);
        memcpy(blk + kl + 1, val, vl + 1);
        dst->keys[k] = blk;
        dst->vals[k] = blk + kl + 1;
        k++;
    }
    if (c->application_name != NULL) {
        dst->keys[k] =
            c->application_name_override ? "application_name" : "fallback_application_name";
        dst->vals[k] = dst->application_name;
        k++;
    }
out:
    PQconninfoFree(opts);
    return st;
}

agec_status agec_pool_config_check(const agec_pool_config *cfg, agec_error *err)
{
    if (cfg == NULL)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG, "config is NULL");
    agec_pool_config c;
    agec_status st = normalise(cfg, &c, err);
    if (st == AGEC_OK)
        st = check_fields(&c, err);
    if (st == AGEC_OK) {
        pool_cfg tmp;
        memset(&tmp, 0, sizeof tmp);
        st = parse_conninfo(&c, &tmp, err);
        agec__config_free(&tmp);
    }
    return st;
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return true;
    size_t n = strlen(src) + 1;
    *dst = malloc(n);
    if (*dst == NULL)
        return false;
    memcpy(*dst, src, n);
    return true;
}

agec_status agec__config_copy(pool_cfg *dst, const agec_pool_config *src, agec_error *err)
{
    memset(dst, 0, sizeof *dst);
    agec_status st = normalise(src, &dst->c, err);
    if (st == AGEC_OK)
        st = check_fields(&dst->c, err);
    if (st != AGEC_OK)
        return st;
    agec_pool_config *c = &dst->c;
    if (!dup_str(&dst->conninfo, c->conninfo) || !dup_str(&dst->init_sql, c->init_sql) ||
        !dup_str(&dst->reset_query, c->reset_query) ||
        !dup_str(&dst->application_name, c->application_name) ||
        !dup_str(&dst->name, c->name ? c->name : "agec")) {
        agec__config_free(dst);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory copying the config");
    }
    c->conninfo = dst->conninfo;
    c->init_sql = dst->init_sql;
    c->reset_query = dst->reset_query;
    c->application_name = dst->application_name;
    c->name = dst->name;
    if (c->reset_query != NULL && c->reset_query[0] == '\0')
        c->reset_query = NULL;
    dst->reset_drops_statements = c->reset_query != NULL && drops_statements(c->reset_query);
    if (c->on_event == NULL)
        c->on_event = agec_pool_event_log_stderr;
    st = parse_conninfo(c, dst, err);
    if (st != AGEC_OK) {
        agec__config_free(dst);
        return st;
    }
    char red[AGEC_ERROR_TEXT_MAX];
    agec__redact_conninfo(c->conninfo ? c->conninfo : "", red, sizeof red);
    if (!dup_str(&dst->redacted_conninfo, red)) {
        agec__config_free(dst);
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "out of memory copying the config");
    }
    dst->init = (agec__session_init){
        .age_mode = c->age_mode,
        .age_create_extension = c->age_create_extension,
        .init_sql = c->init_sql,
        .on_connect = c->on_connect,
        .on_connect_user = c->on_connect_user,
    };
    return AGEC_OK;
}

void agec__config_free(pool_cfg *cfg)
{
    if (cfg->keys != NULL) {
        /* Each parsed entry owns one "keyword\0value\0" block at keys[i];
         * the application_name entry points into the config's own copy. */
        for (size_t i = 0; cfg->keys[i] != NULL; i++)
            if (cfg->vals[i] != cfg->application_name)
                free((void *)cfg->keys[i]);
    }
    free(cfg->keys);
    free(cfg->vals);
    free(cfg->conninfo);
    free(cfg->init_sql);
    free(cfg->reset_query);
    free(cfg->application_name);
    free(cfg->name);
    free(cfg->redacted_conninfo);
    memset(cfg, 0, sizeof *cfg);
}
