/*
 * bench_agtype: agtype parse throughput, side by side with jansson and
 * simdjson (DOM) parsing the same rows as plain JSON.
 *
 * usage: bench_agtype [MB [agec]]   (corpus size, default 64; `agec`: time
 *        only agec, for profiling)
 *
 * The corpus is generated in memory: rows like the server sends them
 * (vertices, edges, paths, scalars including floats and ::numeric, long
 * strings with escapes and UTF-8), each row once as agtype and once as JSON
 * with the annotations stripped (NaN/Infinity, which JSON lacks, become
 * null). Every parser parses every row into its tree and frees it. The best
 * of several runs is reported; ratios compare times for the same rows.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agec/agtype.h"

int agec_bench_simdjson(const char *buf, size_t buf_len, const size_t *offsets, const size_t *lens,
                        size_t rows, size_t *checksum);

/* ---- corpus ------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 64 > b->cap) {
        b->cap = (b->cap + n + 64) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

typedef struct gen {
    sbuf a, j; /* agtype rows, JSON rows (each row followed by '\n') */
    size_t *aoff, *alen, *joff, *jlen;
    size_t rows, rcap;
    uint64_t rng;
} gen;

static uint64_t rnd(gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static size_t below(gen *g, size_t n)
{
    return (size_t)(rnd(g) % n);
}

/* to both outputs */
static void both(gen *g, const char *s)
{
    size_t n = strlen(s);
    put(&g->a, s, n);
    put(&g->j, s, n);
}

/* to the agtype output only */
static void ann(gen *g, const char *s)
{
    put(&g->a, s, strlen(s));
}

static void both_int(gen *g, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    both(g, tmp);
}

static const char *const words[] = {
    "graph",
    "vertex",
    "edge",
    "Ada",
    "Lovelace",
    "analytical",
    "engine",
    "caf\xc3\xa9",
    "\xe4\xb8\xad\xe6\x96\x87",
    "emoji \xf0\x9f\x98\x80",
    "tab\\there",
    "quote \\\"q\\\"",
    "back\\\\slash",
    "line\\nbreak",
    "ctl\\u0001",
    "na\xc3\xafve",
    "stra\xc3\x9f\x65",
};

static void gen_string(gen *g, size_t min_words, size_t max_words)
{
    size_t n = min_words + below(g, max_words - min_words + 1);
    both(g, "\"");
    for (size_t i = 0; i < n; i++) {
        if (i)
            both(g, " ");
        both(g, words[below(g, sizeof words / sizeof words[0])]);
    }
    both(g, "\"");
}

static void gen_float(gen *g)
{
    char tmp[64];
    double d;
    switch (below(g, 4)) {
    case 0: /* full-precision */
        d = (double)(rnd(g) >> 11) / 9007199254740992.0 * 1000.0;
        break;
    case 1: /* short decimal */
        d = (double)below(g, 100000) / 100.0;
        break;
    case 2: /* exponent */
        d = (double)(rnd(g) >> 11) * 1e250 / 9007199254740992.0;
        break;
    default:
        d = (double)below(g, 1000) + 0.5;
        break;
    }
    snprintf(tmp, sizeof tmp, "%.17g", d);
    if (strpbrk(tmp, ".e") == NULL)
        strcat(tmp, ".0");
    both(g, tmp);
}

static void gen_numeric(gen *g)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%llu.%llu", (unsigned long long)(rnd(g) % 1000000000000000u),
             (unsigned long long)(rnd(g) % 100000000000000000u));
    both(g, tmp);
    ann(g, "::numeric");
}

static uint64_t graphid(gen *g, unsigned label)
{
    return ((uint64_t)label << 48) | (rnd(g) & 0xFFFFFFu);
}

static void gen_vertex(gen *g)
{
    both(g, "{\"id\": ");
    both_int(g, (long long)graphid(g, 3));
    /* keys in the server's order: by length, then bytes */
    both(g, ", \"label\": \"Person\", \"properties\": {\"age\": ");
    both_int(g, (long long)below(g, 100));
    both(g, ", \"bio\": ");
    gen_string(g, 4, below(g, 8) == 0 ? 120 : 12);
    both(g, ", \"name\": ");
    gen_string(g, 1, 2);
    both(g, ", \"tags\": [");
    size_t nt = below(g, 4);
    for (size_t i = 0; i < nt; i++) {
        if (i)
            both(g, ", ");
        gen_string(g, 1, 1);
    }
    both(g, "], \"score\": ");
    gen_float(g);
    both(g, ", \"active\": ");
    both(g, below(g, 2) ? "true" : "false");
    both(g, "}}");
    ann(g, "::vertex");
}

static void gen_edge(gen *g)
{
    both(g, "{\"id\": ");
    both_int(g, (long long)graphid(g, 4));
    both(g, ", \"label\": \"KNOWS\", \"end_id\": ");
    both_int(g, (long long)graphid(g, 3));
    both(g, ", \"start_id\": ");
    both_int(g, (long long)graphid(g, 3));
    both(g, ", \"properties\": {\"since\": ");
    both_int(g, (long long)(1990 + below(g, 35)));
    both(g, ", \"weight\": ");
    gen_float(g);
    both(g, "}}");
    ann(g, "::edge");
}

static void gen_path(gen *g)
{
    size_t edges = 1 + below(g, 3);
    both(g, "[");
    for (size_t i = 0; i < edges; i++) {
        gen_vertex(g);
        both(g, ", ");
        gen_edge(g);
        both(g, ", ");
    }
    gen_vertex(g);
    both(g, "]");
    ann(g, "::path");
}

static void gen_scalar_row(gen *g)
{
    both(g, "[");
    for (int i = 0; i < 8; i++) {
        if (i)
            both(g, ", ");
        switch (below(g, 6)) {
        case 0:
            both_int(g, (long long)(rnd(g) >> 1) - (long long)(rnd(g) >> 1));
            break;
        case 1:
            both_int(g, (long long)below(g, 1000));
            break;
        case 2:
            gen_float(g);
            break;
        case 3:
            gen_numeric(g);
            break;
        case 4:
            if (below(g, 8) == 0) { /* rare non-finite float */
                ann(g, below(g, 2) ? "NaN" : "-Infinity");
                put(&g->j, "null", 4);
            } else {
                both(g, below(g, 2) ? "null" : "true");
            }
            break;
        default:
            gen_string(g, 1, 6);
            break;
        }
    }
    both(g, "]");
}

static void end_row(gen *g, size_t a0, size_t j0)
{
    if (g->rows == g->rcap) {
        g->rcap = g->rcap ? g->rcap * 2 : 4096;
        g->aoff = realloc(g->aoff, g->rcap * sizeof(size_t));
        g->alen = realloc(g->alen, g->rcap * sizeof(size_t));
        g->joff = realloc(g->joff, g->rcap * sizeof(size_t));
        g->jlen = realloc(g->jlen, g->rcap * sizeof(size_t));
        if (!g->aoff || !g->alen || !g->joff || !g->jlen) {
            perror("realloc");
            exit(1);
        }
    }
    g->aoff[g->rows] = a0;
    g->alen[g->rows] = g->a.len - a0;
    g->joff[g->rows] = j0;
    g->jlen[g->rows] = g->j.len - j0;
    g->rows++;
    both(g, "\n");
}

static void generate(gen *g, size_t bytes)
{
    while (g->a.len < bytes) {
        size_t a0 = g->a.len, j0 = g->j.len;
        size_t kind = below(g, 20);
        if (kind < 7)
            gen_vertex(g);
        else if (kind < 12)
            gen_edge(g);
        else if (kind < 15)
            gen_path(g);
        else if (kind < 18)
            gen_scalar_row(g);
        else
            gen_string(g, 200, 800); /* a long string on its own */
        end_row(g, a0, j0);
    }
    /* padding for simdjson's in-place parsing of the last row */
    for (int i = 0; i < 128; i++)
        put(&g->j, " ", 1);
}

/* ---- parsers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_agec(const gen *g, size_t *check)
{
    size_t sum = 0;
    for (size_t i = 0; i < g->rows; i++) {
        agec_value *v;
        agec_error err = AGEC_ERROR_INIT;
        if (agec_agtype_parse(g->a.p + g->aoff[i], g->alen[i], 0, &v, &err) != AGEC_OK) {
            fprintf(stderr, "agec: row %zu: %s\n", i, err.message);
            return -1;
        }
        sum += agec_value_length(v) + (size_t)agec_value_type(v);
        agec_value_free(v);
    }
    *check = sum;
    return 0;
}

static int run_jansson(const gen *g, size_t *check)
{
    size_t sum = 0;
    for (size_t i = 0; i < g->rows; i++) {
        json_error_t err;
        json_t *v = json_loadb(g->j.p + g->joff[i], g->jlen[i], JSON_DECODE_ANY, &err);
        if (v == NULL) {
            fprintf(stderr, "jansson: row %zu: %s\n", i, err.text);
            return -1;
        }
        sum += (size_t)json_typeof(v);
        json_decref(v);
    }
    *check = sum;
    return 0;
}

static int run_simdjson(const gen *g, size_t *check)
{
    return agec_bench_simdjson(g->j.p, g->j.len, g->joff, g->jlen, g->rows, check);
}

/* Best wall time of `reps` runs, or a negative value on failure. */
static double best_time(int (*fn)(const gen *, size_t *), const gen *g, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        size_t check = 0;
        double t0 = now_s();
        if (fn(g, &check) != 0)
            return -1;
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
    if (mb == 0)
        mb = 64;
    gen g;
    memset(&g, 0, sizeof g);
    g.rng = 0x243F6A8885A308D3u;
    generate(&g, mb << 20);
    double amb = (double)g.a.len / 1048576.0, jmb = (double)(g.j.len - 128) / 1048576.0;
    printf("corpus: %zu rows, %.1f MB agtype, %.1f MB JSON (annotations stripped)\n", g.rows, amb,
           jmb);

    const int reps = 5;
    double ta = best_time(run_agec, &g, reps);
    if (argc > 2 && strcmp(argv[2], "agec") == 0) {
        printf("agec (agtype): %.0f MB/s\n", amb / ta);
        return ta < 0;
    }
    double tj = best_time(run_jansson, &g, reps);
    double ts = best_time(run_simdjson, &g, reps);
    if (ta < 0 || tj < 0 || ts < 0) {
        fprintf(stderr, "bench_agtype: a parser failed\n");
        return 1;
    }
    printf("%-22s %10s %10s\n", "parser", "MB/s", "ms");
    printf("%-22s %10.0f %10.1f\n", "agec (agtype)", amb / ta, ta * 1e3);
    printf("%-22s %10.0f %10.1f\n", "jansson (JSON)", jmb / tj, tj * 1e3);
    printf("%-22s %10.0f %10.1f\n", "simdjson DOM (JSON)", jmb / ts, ts * 1e3);
    double vs_jansson = tj / ta, vs_simdjson = ts / ta;
    printf("agec/jansson  speed ratio (same rows): %.2fx  (target >= 2.00x: %s)\n", vs_jansson,
           vs_jansson >= 2.0 ? "met" : "MISSED");
    printf("agec/simdjson speed ratio (same rows): %.2fx  (target >= 0.33x: %s)\n", vs_simdjson,
           vs_simdjson >= 1.0 / 3.0 ? "met" : "MISSED");
    free(g.a.p);
    free(g.j.p);
    free(g.aoff);
    free(g.alen);
    free(g.joff);
    free(g.jlen);
    return 0;
}
