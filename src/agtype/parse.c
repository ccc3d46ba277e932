/*
 * The agtype parser: text -> value tree.
 *
 * Why hand-written: no library packaged by Debian parses agtype's annotations
 * (`::vertex`, `::edge`, `::path`, `::numeric`), and the JSON libraries that
 * come close lose exactness (int64 read through double, `::numeric` decimals
 * rounded) or reject the NaN / Infinity the server sends. The grammar is
 * small, and owning the parser lets it be fast where it matters: one pass,
 * no recursion, no per-node allocation.
 *
 * How: the input is copied once into the document, followed by NUL padding,
 * so scanning needs no bounds checks (a NUL is never valid where the scanner
 * looks, and the end is told apart from an embedded NUL by its offset).
 * Strings are unescaped in place in that copy and NUL-terminated, so a string
 * value is a pointer into it. Values being built wait on an explicit heap
 * stack; when a container closes its children are copied in one block into
 * the arena. Nesting depth is bounded only by memory, never by the C stack.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agtype/agtype_internal.h"
#include "agtype/number.h"
#include "agtype/utf8.h"
#include "common/error_internal.h"

/* NUL bytes after the copied text: scanners read at most 8 bytes past a
 * position they have not yet checked (16 with SSE2). */
#define PAD 32

typedef struct frame {
    size_t start;  /* index in the value stack of the first child */
    size_t offset; /* byte offset of the opening bracket, for messages */
    bool object;
} frame;

typedef struct parser {
    const unsigned char *base; /* start of the copy */
    const unsigned char *end;  /* base + len: first padding byte */
    agec_value *vs;            /* value stack */
    size_t vn, vcap;
    frame *fs; /* open containers */
    size_t fn, fcap;
    agec__arena *arena;
    unsigned flags;
    agec_error *err;
    agec_status status;      /* of the first failure */
    agec_value vs_local[64]; /* small documents never touch the heap for stacks */
    frame fs_local[16];
} parser;

enum annotation { ANN_NONE, ANN_NUMERIC, ANN_INTEGER, ANN_FLOAT, ANN_VERTEX, ANN_EDGE, ANN_PATH };

static agec_status fail_at(parser *p, const unsigned char *at, agec_status code, const char *what)
{
    size_t off = (size_t)(at - p->base);
    agec__error_set(p->err, code, "agtype: %s at byte %zu", what, off);
    if (p->err != NULL)
        p->err->position = off > (size_t)INT_MAX ? INT_MAX : (int)off;
    p->status = code;
    return code;
}

static agec_status fail_oom(parser *p)
{
    p->status = AGEC_ERR_NO_MEMORY;
    return agec__error_set(p->err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
}

/* "unexpected X" for the byte at s: the end of input, or a stray byte. */
static agec_status fail_unexpected(parser *p, const unsigned char *s, const char *expected)
{
    char msg[96];
    if (s >= p->end)
        snprintf(msg, sizeof msg, "unexpected end of input, expected %s", expected);
    else if (*s >= 0x20 && *s < 0x7F)
        snprintf(msg, sizeof msg, "unexpected '%c', expected %s", *s, expected);
    else
        snprintf(msg, sizeof msg, "unexpected byte 0x%02X, expected %s", *s, expected);
    return fail_at(p, s, AGEC_ERR_PARSE, msg);
}

static inline const unsigned char *skip_ws(const unsigned char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    return s;
}

static bool grow(void **arr, size_t *cap, size_t elem, void *local)
{
    size_t ncap = *cap * 2;
    if (ncap > SIZE_MAX / elem)
        return false;
    void *n;
    if (*arr == local) {
        n = malloc(ncap * elem);
        if (n != NULL)
            memcpy(n, *arr, *cap * elem);
    } else {
        n = realloc(*arr, ncap * elem);
    }
    if (n == NULL)
        return false;
    *arr = n;
    *cap = ncap;
    return true;
}

/* Next free slot of the value stack, or NULL when out of memory. */
static inline agec_value *push_value(parser *p)
{
    if (p->vn == p->vcap && !grow((void **)&p->vs, &p->vcap, sizeof *p->vs, p->vs_local))
        return NULL;
    return &p->vs[p->vn++];
}

static int hex4(const unsigned char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c - '0' < 10u)
            d = c - '0';
        else if ((c | 0x20u) - 'a' < 6u)
            d = (c | 0x20u) - 'a' + 10u;
        else
            return -1;
        v = v * 16 + (int)d;
    }
    return v;
}

/*
 * Offset of the first byte in r[0..STRIDE) that may end a plain run of a
 * string ('"', '\\', < 0x20, >= 0x80), or STRIDE when there is none.
 * SSE2 where available (every x86-64), else 8 bytes of SWAR.
 */
#if defined(__SSE2__)
#include <emmintrin.h>
#define STRIDE 16u
static inline unsigned scan_plain(const unsigned char *r)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)r);
    /* signed compare: bytes >= 0x80 are negative, so "< 0x20" catches both */
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                             _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
    unsigned mask = (unsigned)_mm_movemask_epi8(m);
    return mask == 0 ? STRIDE : (unsigned)__builtin_ctz(mask);
}
#else
#define STRIDE 8u
/* Bytes of 8 that may end the fast string scan: '"', '\\', < 0x20, >= 0x80.
 * (A match may be reported above a true one, never below: callers go
 * bytewise from the start of the word.) */
static inline uint64_t string_stoppers(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b;
    uint64_t ctl = w - ones * 0x20u;
    return (zq | zb | ctl | w) & high;
}

static inline unsigned scan_plain(const unsigned char *r)
{
    uint64_t w;
    memcpy(&w, r, 8);
    uint64_t m = string_stoppers(w);
    if (m == 0)
        return STRIDE;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)__builtin_ctzll(m) / 8u;
#else
    return 0; /* callers go on bytewise */
#endif
}
#endif

/* A byte that needs a closer look inside a string. */
static inline bool is_stopper(unsigned c)
{
    return c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
}

/*
 * The string whose opening quote is at q. Unescapes in place, NUL-terminates,
 * fills v and returns the byte after the closing quote, or NULL on error.
 * Plain bytes are skipped (or, once an escape was seen, moved) 8 at a time.
 */
static const unsigned char *parse_string(parser *p, const unsigned char *q, agec_value *v)
{
    unsigned char *start = (unsigned char *)q + 1;
    unsigned char *r = start;
    unsigned char *wp;
    size_t n;
    /* Fast path: no escape yet, nothing to move. */
    for (;;) {
        unsigned k = scan_plain(r);
        r += k;
        if (k == STRIDE)
            continue;
        while (!is_stopper(*r))
            r++;
        if (*r == '"') {
            wp = r;
            goto done;
        }
        if (*r == '\\') {
            wp = r;
            break;
        }
        if (*r < 0x20)
            goto bad_byte;
        if ((n = agec__utf8_seq(r, (size_t)(p->end - r))) == 0)
            goto bad_utf8;
        r += n;
    }
    /* Slow path: at least one escape. wp trails r (unescaped text is never
     * longer than its escaped form). */
    for (;;) {
        unsigned k = scan_plain(r);
        if (k == STRIDE) {
            unsigned char run[STRIDE];
            memcpy(run, r, STRIDE); /* read all before writing: wp <= r */
            memcpy(wp, run, STRIDE);
            wp += STRIDE;
            r += STRIDE;
            continue;
        }
        for (unsigned i = 0; i < k; i++)
            *wp++ = *r++;
        unsigned c = *r;
        if (!is_stopper(c)) {
            *wp++ = *r++;
            continue;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            unsigned char e = r[1];
            unsigned char out;
            switch (e) {
            /* clang-format off */
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            /* clang-format on */
            case 'u': {
                int cp = hex4(r + 2);
                if (cp < 0) {
                    fail_at(p, r, AGEC_ERR_PARSE, "invalid \\u escape (needs 4 hex digits)");
                    return NULL;
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail_at(p, r, AGEC_ERR_PARSE, "lone low surrogate in \\u escape");
                    return NULL;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo = (r[6] == '\\' && r[7] == 'u') ? hex4(r + 8) : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail_at(p, r, AGEC_ERR_PARSE,
                                "high surrogate not followed by a low surrogate");
                        return NULL;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
                wp += agec__utf8_put(wp, (uint32_t)cp);
                r += 6;
                continue;
            }
            default:
                fail_at(p, r, AGEC_ERR_PARSE, "invalid escape sequence in string");
                return NULL;
            }
            *wp++ = out;
            r += 2;
        } else if (c >= 0x80) {
            if ((n = agec__utf8_seq(r, (size_t)(p->end - r))) == 0)
                goto bad_utf8;
            for (size_t i = 0; i < n; i++)
                wp[i] = r[i];
            wp += n;
            r += n;
        } else {
            goto bad_byte;
        }
    }
done:
    if ((size_t)(wp - start) > UINT32_MAX) {
        fail_at(p, q, AGEC_ERR_RANGE, "string longer than 4 GB");
        return NULL;
    }
    *wp = '\0';
    v->type = AGEC_TYPE_STRING;
    v->flags = 0;
    v->n = (uint32_t)(wp - start);
    v->u.s = (const char *)start;
    return r + 1;
bad_byte:
    if (r >= p->end)
        fail_at(p, q, AGEC_ERR_PARSE, "unterminated string");
    else
        fail_at(p, r, AGEC_ERR_PARSE, "control character in string (must be escaped)");
    return NULL;
bad_utf8:
    fail_at(p, r, AGEC_ERR_PARSE, "invalid UTF-8 in string");
    return NULL;
}

/* After "::" at s: the annotation word. Returns the byte after it, or NULL. */
static const unsigned char *parse_annotation(parser *p, const unsigned char *s,
                                             enum annotation *ann)
{
    if (p->flags & AGEC_PARSE_JSON) {
        fail_at(p, s, AGEC_ERR_PARSE, "annotations are not allowed in JSON");
        return NULL;
    }
    const unsigned char *w = skip_ws(s + 2);
    const unsigned char *e = w;
    while ((*e | 0x20u) - 'a' < 26u || *e == '_' || (unsigned)(*e - '0') < 10u)
        e++;
    static const struct {
        const char *word;
        size_t len;
        enum annotation ann;
    } words[] = {
        { "numeric", 7, ANN_NUMERIC }, { "integer", 7, ANN_INTEGER }, { "float", 5, ANN_FLOAT },
        { "vertex", 6, ANN_VERTEX },   { "edge", 4, ANN_EDGE },       { "path", 4, ANN_PATH },
    };
    size_t n = (size_t)(e - w);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (words[i].len != n)
            continue;
        size_t k = 0;
        while (k < n && (w[k] | 0x20u) == (unsigned char)words[i].word[k])
            k++;
        if (k == n) {
            *ann = words[i].ann;
            return e;
        }
    }
    fail_at(p, w, AGEC_ERR_PARSE,
            "unknown annotation (expected numeric, integer, float, vertex, edge or path)");
    return NULL;
}

/* If an annotation follows s (after optional whitespace), parse it. */
static inline const unsigned char *maybe_annotation(parser *p, const unsigned char *s,
                                                    enum annotation *ann)
{
    const unsigned char *t = s;
    if (*t <= ' ')
        t = skip_ws(t);
    if (t[0] != ':' || t[1] != ':') {
        *ann = ANN_NONE;
        return s;
    }
    return parse_annotation(p, t, ann);
}

/* Number token at s (its first byte is '-', a digit, 'N' or 'I' in any
 * case), with its annotation if any. Fills v; returns the next byte or NULL. */
static const unsigned char *parse_number(parser *p, const unsigned char *s, agec_value *v)
{
    agec__num num;
    const unsigned char *bad;
    const unsigned char *e = agec__num_scan(s, &num, &bad);
    if (e == NULL) {
        fail_unexpected(p, bad, "a digit");
        return NULL;
    }
    if (num.special != AGEC__NUM_FINITE && (p->flags & AGEC_PARSE_JSON)) {
        fail_at(p, s, AGEC_ERR_PARSE, "NaN and Infinity are not allowed in JSON");
        return NULL;
    }
    enum annotation ann = ANN_NONE;
    const unsigned char *next = e;
    if (*e == ':' || *e <= ' ') {
        next = maybe_annotation(p, e, &ann);
        if (next == NULL)
            return NULL;
    }
    size_t len = (size_t)(e - s);
    v->flags = 0;
    switch (ann) {
    case ANN_NUMERIC:
        v->type = AGEC_TYPE_NUMERIC;
        if (num.special != AGEC__NUM_FINITE) {
            const char *t = agec__num_special_text(&num);
            v->u.s = t;
            v->n = (uint32_t)strlen(t);
        } else {
            if (len > UINT32_MAX) {
                fail_at(p, s, AGEC_ERR_RANGE, "numeric longer than 4 GB");
                return NULL;
            }
            ((unsigned char *)s)[len] = '\0'; /* a space or ':' already consumed */
            v->u.s = (const char *)s;
            v->n = (uint32_t)len;
        }
        return next;
    case ANN_INTEGER:
        if (num.is_float) {
            fail_at(p, s, AGEC_ERR_PARSE, "::integer on a number that is not an integer");
            return NULL;
        }
        break;
    case ANN_NONE:
        break;
    case ANN_FLOAT:
        num.is_float = true;
        break;
    default:
        fail_at(p, s, AGEC_ERR_PARSE, "graph annotation on a number");
        return NULL;
    }
    v->n = 0;
    if (!num.is_float) {
        v->type = AGEC_TYPE_INT;
        if (!agec__num_to_int64(&num, &v->u.i)) {
            fail_at(p, s, AGEC_ERR_RANGE, "integer out of int64 range");
            return NULL;
        }
    } else {
        v->type = AGEC_TYPE_FLOAT;
        if (!agec__num_to_double(s, len, &num, &v->u.d)) {
            fail_at(p, s, AGEC_ERR_RANGE, "float out of double range");
            return NULL;
        }
    }
    return next;
}

static bool int_field(const agec_value *obj, const char *key, size_t len)
{
    const agec_value *f = agec__object_find(obj, key, len);
    return f != NULL && f->type == AGEC_TYPE_INT;
}

/* Apply a graph annotation to the container just closed (v). */
static bool annotate_container(parser *p, const unsigned char *at, agec_value *v,
                               enum annotation ann)
{
    if (ann == ANN_VERTEX || ann == ANN_EDGE) {
        bool edge = ann == ANN_EDGE;
        const agec_value *label, *props;
        if (v->type != AGEC_TYPE_OBJECT || v->n != (edge ? 5u : 3u) || !int_field(v, "id", 2) ||
            (label = agec__object_find(v, "label", 5)) == NULL || label->type != AGEC_TYPE_STRING ||
            (props = agec__object_find(v, "properties", 10)) == NULL ||
            props->type != AGEC_TYPE_OBJECT ||
            (edge && (!int_field(v, "start_id", 8) || !int_field(v, "end_id", 6)))) {
            fail_at(p, at, AGEC_ERR_PARSE,
                    edge ? "::edge needs an object of exactly id, label, end_id, start_id, "
                           "properties"
                         : "::vertex needs an object of exactly id, label, properties");
            return false;
        }
        v->type = (uint8_t)(edge ? AGEC_TYPE_EDGE : AGEC_TYPE_VERTEX);
        return true;
    }
    if (ann == ANN_PATH) {
        bool ok = v->type == AGEC_TYPE_ARRAY && (v->n & 1u) == 1u;
        for (uint32_t i = 0; ok && i < v->n; i++)
            ok = v->u.kids[i].type == ((i & 1u) ? AGEC_TYPE_EDGE : AGEC_TYPE_VERTEX);
        if (!ok) {
            fail_at(p, at, AGEC_ERR_PARSE,
                    "::path needs an array alternating vertex, edge, ..., vertex");
            return false;
        }
        v->type = AGEC_TYPE_PATH;
        return true;
    }
    fail_at(p, at, AGEC_ERR_PARSE, "numeric annotation on a container");
    return false;
}

/* Pop the innermost frame into one container value on the value stack. */
static bool close_container(parser *p)
{
    frame f = p->fs[--p->fn];
    size_t count = p->vn - f.start;
    agec_value *kids = NULL;
    if (count > 0) {
        if ((f.object ? count / 2 : count) > UINT32_MAX) {
            fail_at(p, p->base + f.offset, AGEC_ERR_RANGE, "container with over 2^32 entries");
            return false;
        }
        kids = agec__arena_alloc(p->arena, count * sizeof *kids);
        if (kids == NULL) {
            fail_oom(p);
            return false;
        }
        memcpy(kids, p->vs + f.start, count * sizeof *kids);
    }
    agec_value *v = &p->vs[f.start]; /* the stack has room: count >= 0 slots were used */
    if (count == 0)
        v = push_value(p);
    else
        p->vn = f.start + 1;
    if (v == NULL) {
        fail_oom(p);
        return false;
    }
    v->u.kids = kids;
    v->flags = 0;
    if (f.object) {
        v->type = AGEC_TYPE_OBJECT;
        v->n = (uint32_t)(count / 2);
        bool sorted = true;
        for (size_t i = 2; sorted && i < count; i += 2)
            sorted = agec__key_cmp(kids[i - 2].u.s, kids[i - 2].n, kids[i].u.s, kids[i].n) < 0;
        if (sorted)
            v->flags = AGEC__VF_SORTED;
    } else {
        v->type = AGEC_TYPE_ARRAY;
        v->n = (uint32_t)count;
    }
    return true;
}

static bool open_container(parser *p, const unsigned char *s, bool object)
{
    if (p->fn == p->fcap && !grow((void **)&p->fs, &p->fcap, sizeof *p->fs, p->fs_local)) {
        fail_oom(p);
        return false;
    }
    frame *f = &p->fs[p->fn++];
    f->start = p->vn;
    f->offset = (size_t)(s - p->base);
    f->object = object;
    return true;
}

/* Parse the whole text into p->vs[0]. */
static agec_status parse_all(parser *p)
{
    const unsigned char *s = p->base;
    agec_value *v;
    enum annotation ann;

value:
    s = skip_ws(s);
    switch (*s) {
    case '{':
        if (!open_container(p, s, true))
            return p->status;
        s = skip_ws(s + 1);
        if (*s == '}') {
            s++;
            goto close;
        }
        goto key;
    case '[':
        if (!open_container(p, s, false))
            return p->status;
        s = skip_ws(s + 1);
        if (*s == ']') {
            s++;
            goto close;
        }
        goto value;
    case '"':
        if ((v = push_value(p)) == NULL)
            goto oom;
        if ((s = parse_string(p, s, v)) == NULL)
            return p->status;
        goto scalar_done;
    /* clang-format off */
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': case 'I': case 'i': case 'N':
        /* clang-format on */
        if ((v = push_value(p)) == NULL)
            goto oom;
        if ((s = parse_number(p, s, v)) == NULL)
            return p->status;
        goto next;
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[] = { "true", "false", "null" };
        const char *w = words[*s == 't' ? 0 : *s == 'f' ? 1 : 2];
        size_t n = strlen(w);
        if (memcmp(s, w, n) != 0) {
            if (*s == 'n' && (s[1] | 0x20u) == 'a')
                goto number_nan;
            return fail_unexpected(p, s, "a value");
        }
        if ((v = push_value(p)) == NULL)
            goto oom;
        v->type = (uint8_t)(*s == 'n' ? AGEC_TYPE_NULL : AGEC_TYPE_BOOL);
        v->flags = 0;
        v->n = 0;
        v->u.i = *s == 't';
        s += n;
        goto scalar_done;
    }
    default:
        return fail_unexpected(p, s, "a value");
    }

number_nan:
    if ((v = push_value(p)) == NULL)
        goto oom;
    if ((s = parse_number(p, s, v)) == NULL)
        return p->status;
    goto next;

scalar_done:
    /* strings, booleans and null take no annotation */
    if (*s == ':' || *s <= ' ') {
        const unsigned char *t = skip_ws(s);
        if (t[0] == ':' && t[1] == ':')
            return fail_at(p, t, AGEC_ERR_PARSE, "annotation on a string, boolean or null");
    }
    goto next;

close:
    if (!close_container(p))
        return p->status;
    if (*s == ':' || *s <= ' ') {
        const unsigned char *at = s;
        if ((s = maybe_annotation(p, s, &ann)) == NULL)
            return p->status;
        if (ann != ANN_NONE && !annotate_container(p, skip_ws(at), &p->vs[p->vn - 1], ann))
            return p->status;
    }
    goto next;

next:
    if (p->fn == 0) {
        s = skip_ws(s);
        if (s != p->end)
            return fail_unexpected(p, s, "end of input");
        return AGEC_OK;
    }
    if (*s <= ' ')
        s = skip_ws(s);
    if (*s == ',') {
        s = skip_ws(s + 1);
        if (p->fs[p->fn - 1].object)
            goto key;
        goto value;
    }
    if (p->fs[p->fn - 1].object ? *s == '}' : *s == ']') {
        s++;
        goto close;
    }
    return fail_unexpected(p, s, p->fs[p->fn - 1].object ? "',' or '}'" : "',' or ']'");

key:
    if (*s != '"')
        return fail_unexpected(p, s, "a string key");
    if ((v = push_value(p)) == NULL)
        goto oom;
    if ((s = parse_string(p, s, v)) == NULL)
        return p->status;
    if (*s != ':')
        s = skip_ws(s);
    if (*s != ':' || s[1] == ':')
        return fail_unexpected(p, s, "':'");
    s++;
    goto value;

oom:
    return fail_oom(p);
}

agec_status agec_agtype_parse(const char *text, size_t len, unsigned flags, agec_value **out,
                              agec_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || (text == NULL && len > 0) || (flags & ~AGEC_PARSE_JSON) != 0)
        return agec__error_set(err, AGEC_ERR_INVALID_ARG,
                               "agec_agtype_parse: out is NULL, text is NULL or unknown flags");
    /* One allocation: the document header, the text copy and its padding,
     * then the first arena block, sized for typical agtype (about one value
     * per 8 bytes of text: 2x the text); bigger documents grow the arena. */
    size_t text_size = len + PAD + 15u; /* + room to align the arena to 16 */
    size_t first_block = len < 64 ? 128 : 2 * len;
    if (len > (SIZE_MAX - sizeof(agec__doc) - 64) / 3)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: input too large");
    agec__doc *doc = malloc(sizeof *doc + text_size + first_block);
    if (doc == NULL)
        return agec__error_set(err, AGEC_ERR_NO_MEMORY, "agtype: out of memory");
    unsigned char *copy = (unsigned char *)(doc + 1);
    if (len > 0)
        memcpy(copy, text, len);
    memset(copy + len, 0, PAD);
    doc->magic = AGEC__DOC_MAGIC;
    uintptr_t arena_at = ((uintptr_t)(copy + len + PAD) + 15u) & ~(uintptr_t)15u;
    agec__arena_init(&doc->arena, (void *)arena_at, first_block);

    parser p;
    p.base = copy;
    p.end = copy + len;
    p.vs = p.vs_local;
    p.vn = 0;
    p.vcap = sizeof p.vs_local / sizeof p.vs_local[0];
    p.fs = p.fs_local;
    p.fn = 0;
    p.fcap = sizeof p.fs_local / sizeof p.fs_local[0];
    p.arena = &doc->arena;
    p.flags = flags;
    p.err = err;
    p.status = AGEC_OK;

    agec_status st = parse_all(&p);
    if (st == AGEC_OK) {
        doc->root = p.vs[0];
        doc->root.flags |= AGEC__VF_ROOT;
        *out = &doc->root;
    } else {
        agec__arena_free(&doc->arena);
        free(doc);
    }
    if (p.vs != p.vs_local)
        free(p.vs);
    if (p.fs != p.fs_local)
        free(p.fs);
    return st;
}

void agec_value_free(agec_value *root)
{
    if (root == NULL || !(root->flags & AGEC__VF_ROOT))
        return;
    agec__doc *doc = (agec__doc *)root;
    if (doc->magic != AGEC__DOC_MAGIC)
        return;
    doc->magic = 0;
    agec__arena_free(&doc->arena);
    free(doc);
}

void agec_free(void *ptr)
{
    free(ptr);
}
