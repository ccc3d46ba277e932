/* Passwords out of every text: patterns, then the known secrets by value. */
#include "session/redact.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error_internal.h"

/* ---- which keywords are secret ------------------------------------------ */

#define KW_MAX 8
static char kw_store[KW_MAX][32];
static const char *kw_list[KW_MAX + 1];
static pthread_once_t kw_once = PTHREAD_ONCE_INIT;

/* libpq says which options are secret (dispchar "*"): password and
 * sslpassword in libpq 15; a later libpq may add more. Both known ones are
 * kept whatever it says. */
static void kw_load(void)
{
    size_t n = 0;
    static const char *const known[] = { "password", "sslpassword" };
    for (size_t i = 0; i < 2; i++)
        kw_list[n++] = known[i];
    PQconninfoOption *d = PQconndefaults();
    for (PQconninfoOption *o = d; o != NULL && o->keyword != NULL && n < KW_MAX; o++) {
        if (o->dispchar == NULL || strchr(o->dispchar, '*') == NULL)
            continue;
        if (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0 ||
            strlen(o->keyword) >= sizeof kw_store[0])
            continue;
        strcpy(kw_store[n], o->keyword);
        kw_list[n] = kw_store[n];
        n++;
    }
    PQconninfoFree(d);
    kw_list[n] = NULL;
}

static const char *const *secret_keywords(void)
{
    (void)pthread_once(&kw_once, kw_load);
    return kw_list;
}

/* ---- finding secret values in text ---------------------------------------- */

typedef enum span_kind { SPAN_KEYWORD, SPAN_URI_QUERY, SPAN_URI_PASSWORD } span_kind;

typedef struct span {
    size_t start, end; /* byte offsets of the value in the text */
    span_kind kind;
} span;

#define SPANS_MAX 64

typedef struct spans {
    span v[SPANS_MAX];
    size_t n;
    bool overflow;
} spans;

static void add_span(spans *sp, size_t start, size_t end, span_kind kind)
{
    if (sp->n == SPANS_MAX) {
        sp->overflow = true;
        return;
    }
    sp->v[sp->n++] = (span){ start, end, kind };
}

/* "keyword = " of a secret keyword at p (a word boundary): returns where its
 * value starts, or NULL. */
static const char *secret_keyword_at(const char *text, const char *p)
{
    if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
        return NULL;
    for (const char *const *k = secret_keywords(); *k != NULL; k++) {
        size_t n = strlen(*k);
        if (strncasecmp(p, *k, n) != 0)
            continue;
        const char *q = p + n;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        return q;
    }
    return NULL;
}

/* End of a keyword's value at q, as libpq reads it: 'quoted' with
 * backslash escapes, or up to white space (a backslash escapes the next
 * byte). In a URI query a value also ends at '&' or '#'. */
static const char *value_end(const char *q, bool uri)
{
    if (!uri && *q == '\'') {
        q++;
        while (*q != '\0' && *q != '\'') {
            if (*q == '\\' && q[1] != '\0')
                q++;
            q++;
        }
        return *q == '\'' ? q + 1 : q;
    }
    while (*q != '\0' && !isspace((unsigned char)*q) && !(uri && (*q == '&' || *q == '#'))) {
        if (!uri && *q == '\\' && q[1] != '\0')
            q++;
        q++;
    }
    return q;
}

/* A URI's scheme ends at p ("://"): the user info runs to the last '@'
 * before the query ('?') within the URI; its password from the first ':'.
 * A URI that starts the text runs to its end (its password may hold
 * spaces); one inside a message, to white space. */
static void uri_password(const char *text, const char *p, spans *sp, const char **uri_end)
{
    const char *start = p + 3;
    const char *scheme = p;
    while (scheme > text && (isalnum((unsigned char)scheme[-1]) || scheme[-1] == '+' ||
                             scheme[-1] == '-' || scheme[-1] == '.'))
        scheme--;
    const char *end = start;
    if (scheme == text)
        end += strlen(start);
    else
        while (*end != '\0' && !isspace((unsigned char)*end))
            end++;
    *uri_end = end;
    const char *query = memchr(start, '?', (size_t)(end - start));
    const char *limit = query ? query : end;
    const char *at = NULL;
    for (const char *q = start; q < limit; q++)
        if (*q == '@')
            at = q;
    if (at == NULL)
        return;
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (colon != NULL)
        add_span(sp, (size_t)(colon + 1 - text), (size_t)(at - text), SPAN_URI_PASSWORD);
}

/* Sort by start and merge overlapping spans (a keyword inside a URI's user
 * info gives a span within the URI password's). */
static void merge_spans(spans *sp)
{
    for (size_t i = 1; i < sp->n; i++)
        for (size_t j = i; j > 0 && sp->v[j].start < sp->v[j - 1].start; j--) {
            span t = sp->v[j];
            sp->v[j] = sp->v[j - 1];
            sp->v[j - 1] = t;
        }
    size_t k = 0;
    for (size_t i = 0; i < sp->n; i++) {
        if (k > 0 && sp->v[i].start <= sp->v[k - 1].end) {
            if (sp->v[i].end > sp->v[k - 1].end)
                sp->v[k - 1].end = sp->v[i].end;
        } else {
            sp->v[k++] = sp->v[i];
        }
    }
    sp->n = k;
}

/* Every secret value in text, in order, none overlapping. */
static void find_spans(const char *text, spans *sp)
{
    sp->n = 0;
    sp->overflow = false;
    const char *uri_end = NULL; /* inside a URI until here */
    for (const char *p = text; *p != '\0';) {
        bool in_uri = uri_end != NULL && p < uri_end;
        if (strncmp(p, "://", 3) == 0 && !in_uri) {
            uri_password(text, p, sp, &uri_end);
            p += 3;
            continue;
        }
        const char *v = secret_keyword_at(text, p);
        if (v != NULL) {
            const char *e = value_end(v, in_uri);
            add_span(sp, (size_t)(v - text), (size_t)(e - text),
                     in_uri ? SPAN_URI_QUERY : SPAN_KEYWORD);
            p = e > v ? e : v;
            continue;
        }
        p++;
    }
    merge_spans(sp);
}

/* ---- the set of secrets ----------------------------------------------------- */

void agec__secrets_init(agec__secrets *s)
{
    s->n = 0;
    s->used = 0;
    s->overflow = false;
}

static void secrets_add(agec__secrets *s, const char *v, size_t len)
{
    if (len == 0)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == len && memcmp(s->v[i], v, len) == 0)
            return;
    if (s->n == AGEC__SECRETS_MAX || s->used + len + 1 > sizeof s->buf) {
        s->overflow = true;
        return;
    }
    char *dst = s->buf + s->used;
    memcpy(dst, v, len);
    dst[len] = '\0';
    s->used += len + 1;
    s->v[s->n++] = dst;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value as libpq would read it: quotes and backslashes of the keyword
 * form removed, or percent escapes of a URI decoded (bad escapes kept). */
static void secrets_add_decoded(agec__secrets *s, const char *v, size_t len, span_kind kind)
{
    char tmp[1024];
    if (len >= sizeof tmp) {
        s->overflow = true;
        return;
    }
    size_t o = 0;
    if (kind == SPAN_KEYWORD) {
        size_t i = 0, n = len;
        if (n >= 1 && v[0] == '\'') {
            i = 1;
            if (n >= 2 && v[n - 1] == '\'')
                n--;
        }
        for (; i < n; i++) {
            if (v[i] == '\\' && i + 1 < n)
                i++;
            tmp[o++] = v[i];
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
                tmp[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
                i += 2;
            } else {
                tmp[o++] = v[i];
            }
        }
    }
    secrets_add(s, tmp, o);
}

void agec__secrets_from_text(agec__secrets *s, const char *conninfo)
{
    if (conninfo == NULL)
        return;
    spans sp;
    find_spans(conninfo, &sp);
    if (sp.overflow)
        s->overflow = true;
    for (size_t i = 0; i < sp.n; i++) {
        const char *v = conninfo + sp.v[i].start;
        size_t len = sp.v[i].end - sp.v[i].start;
        secrets_add(s, v, len);
        secrets_add_decoded(s, v, len, sp.v[i].kind);
    }
}

void agec__secrets_from_options(agec__secrets *s, const PQconninfoOption *opts)
{
    for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (o->val != NULL && o->dispchar != NULL && strchr(o->dispchar, '*') != NULL)
            secrets_add(s, o->val, strlen(o->val));
}

/* ---- redacting ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Secrets shorter than this are left to the patterns (a one-letter
 * password would blank every such letter of a message). */
#define VALUE_MIN 3
/* A quoted span sharing this many bytes with a secret is hidden. */
#define SHARED_MIN 4

/* text with every occurrence of a secret replaced by "***". */
static void replace_values(const char *text, const agec__secrets *s, sbuf *out)
{
    for (const char *p = text; *p != '\0';) {
        size_t best = 0;
        for (size_t i = 0; i < s->n; i++) {
            size_t n = strlen(s->v[i]);
            if (n >= VALUE_MIN && n > best && strncmp(p, s->v[i], n) == 0)
                best = n;
        }
        if (best > 0) {
            sb_put(out, "***", 3);
            p += best;
        } else {
            sb_put(out, p, 1);
            p++;
        }
    }
}

/* Does t[0..n) share SHARED_MIN bytes (or all of a shorter secret) with a
 * secret? */
static bool shares_secret(const char *t, size_t n, const agec__secrets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t sl = strlen(s->v[i]);
        if (sl < VALUE_MIN)
            continue;
        size_t w = sl < SHARED_MIN ? sl : SHARED_MIN;
        for (size_t a = 0; a + w <= sl; a++)
            for (size_t b = 0; b + w <= n; b++)
                if (memcmp(s->v[i] + a, t + b, w) == 0)
                    return true;
    }
    return false;
}

/* Double-quoted spans that share a secret's bytes become "***". */
static void hide_quoted(const char *text, const agec__secrets *s, sbuf *out)
{
    for (const char *p = text; *p != '\0';) {
        const char *close = *p == '"' ? strchr(p + 1, '"') : NULL;
        if (close != NULL && shares_secret(p + 1, (size_t)(close - p - 1), s)) {
            sb_put(out, "\"***\"", 5);
            p = close + 1;
        } else {
            sb_put(out, p, 1);
            p++;
        }
    }
}

void agec__redact(const char *in, const agec__secrets *s, char *out, size_t cap)
{
    if (cap == 0)
        return;
    const char *text = in ? in : "";
    spans sp;
    find_spans(text, &sp);
    sbuf a = { 0 }, b = { 0 };
    size_t at = 0;
    for (size_t i = 0; i < sp.n; i++) {
        sb_put(&a, text + at, sp.v[i].start - at);
        sb_put(&a, "***", 3);
        at = sp.v[i].end;
    }
    sb_put(&a, text + at, strlen(text + at));
    const char *res = a.p ? a.p : "";
    if (s != NULL && s->n > 0) {
        replace_values(res, s, &b);
        free(a.p);
        a = (sbuf){ 0 };
        hide_quoted(b.p ? b.p : "", s, &a);
        res = a.p ? a.p : "";
    }
    if (sp.overflow || a.oom || b.oom || (s != NULL && s->overflow))
        res = "(text withheld: it may hold a password)";
    agec__copy_text(out, cap, res);
    free(a.p);
    free(b.p);
}

/* ---- parsing a connection string ---------------------------------------------- */

static const char *opt_val(const PQconninfoOption *opts, const char *kw)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, kw) == 0)
            return o->val;
    return NULL;
}

agec_status agec__conninfo_parse(const char *conninfo, PQconninfoOption **out, agec_error *err)
{
    *out = NULL;
    const char *ci = conninfo ? conninfo : "";
    agec__secrets s;
    agec__secrets_init(&s);
    agec__secrets_from_text(&s, ci);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(ci, &perr);
    if (opts == NULL) {
        char red[AGEC_ERROR_TEXT_MAX];
        agec__redact(perr ? perr : "out of memory", &s, red, sizeof red);
        size_t n = strlen(red);
        while (n > 0 && (red[n - 1] == '\n' || red[n - 1] == '\r'))
            red[--n] = '\0';
        PQfreemem(perr);
        return agec__error_set(err, perr ? AGEC_ERR_CONFIG : AGEC_ERR_NO_MEMORY, "conninfo: %s",
                               red);
    }
    /* A URI's password as libpq read it must be the one agec's patterns
     * see: else part of it went to the host, port or database, where
     * libpq's errors would show it. */
    spans sp;
    find_spans(ci, &sp);
    for (size_t i = 0; i < sp.n; i++) {
        if (sp.v[i].kind != SPAN_URI_PASSWORD || sp.v[i].end == sp.v[i].start)
            continue;
        agec__secrets mine;
        agec__secrets_init(&mine);
        secrets_add_decoded(&mine, ci + sp.v[i].start, sp.v[i].end - sp.v[i].start,
                            SPAN_URI_PASSWORD);
        const char *theirs = opt_val(opts, "password");
        bool same = mine.n == 1 && theirs != NULL && strcmp(mine.v[0], theirs) == 0;
        if (!same) {
            PQconninfoFree(opts);
            return agec__error_set(err, AGEC_ERR_CONFIG,
                                   "conninfo: libpq does not read the URI's user name and password "
                                   "as written: percent-encode '@', '/', '?', '#' and ':' in them "
                                   "(%%40, %%2F, %%3F, %%23, %%3A)");
        }
        break;
    }
    *out = opts;
    return AGEC_OK;
}
