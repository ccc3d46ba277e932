/*
 * agec load: bulk loading of CSV and JSON Lines files through the loader
 * (agec/load.h), with a progress line on a terminal and a summary.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "agec/load.h"
#include "cli.h"

void cli_load_progress(const agec_load_stats *s, void *user)
{
    load_progress *p = user;
    double now = cli_now_ms();
    if (!p->enabled || (now - p->last_ms < 100 && !p->final))
        return;
    p->last_ms = now;
    static const char spin[] = "|/-\\";
    int width = 24, pos = (int)(p->ticks++ % (unsigned)width);
    fprintf(stderr, "\r  %-8s [", p->what);
    if (p->total_bytes > 0) {
        /* A bar by the bytes read from the files. */
        double done = p->final ? 1.0 : (double)s->input_bytes / (double)p->total_bytes;
        int fill = (int)(done > 1 ? width : done * width);
        for (int i = 0; i < width; i++)
            fputc(i < fill ? '#' : '.', stderr);
        fprintf(stderr, "] %3.0f%%", done > 1 ? 100.0 : done * 100.0);
    } else {
        for (int i = 0; i < width; i++)
            fputc(p->final ? '#' : i == pos ? spin[p->ticks % 4] : '.', stderr);
        fputc(']', stderr);
    }
    fprintf(stderr, " %llu vertices, %llu edges, %.1f MB, %.0f rows/s, %llu rejected ",
            (unsigned long long)s->vertices, (unsigned long long)s->edges, (double)s->bytes / 1e6,
            s->rows_per_s, (unsigned long long)s->rejected);
    fflush(stderr);
}

typedef struct input {
    const char *label, *path;
    bool edges;
} input;

static bool reject_to_file(const agec_error *e, const char *row, size_t len, void *user)
{
    FILE *f = user;
    fprintf(f, "%s", e->message);
    if (row != NULL)
        fprintf(f, "\t%.*s", (int)len, row);
    fputc('\n', f);
    return true;
}

/* A count for --resume and --chunk: decimal digits, 0 .. 2^64 - 1 (a
 * load may commit past 2^31 rows; the number printed must read back). */
static bool parse_count(const char *v, uint64_t *out)
{
    if (*v == '\0')
        return false;
    uint64_t n = 0;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - (uint64_t)(*v - '0')) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

/* "LABEL=VALUE" split in place; false when there is no '='. */
static bool split(char *arg, const char **label, const char **value)
{
    char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || eq[1] == '\0')
        return false;
    *eq = '\0';
    *label = arg;
    *value = eq + 1;
    return true;
}

static int summary(const cli *c, agec_status st, const agec_load_stats *s, const agec_error *err,
                   uint64_t chunk, uint64_t resume)
{
    bool json = c->format == FMT_JSON || (c->format == FMT_AUTO && !isatty(STDOUT_FILENO));
    if (json) {
        printf("{\"ok\": %s, \"vertices\": %llu, \"edges\": %llu, \"rows\": %llu, \"rejected\": "
               "%llu, \"skipped\": %llu, \"committed\": %llu, \"bytes\": %llu, \"seconds\": %.3f, "
               "\"rows_per_s\": %.0f, \"method\": \"%s\"",
               st == AGEC_OK ? "true" : "false", (unsigned long long)s->vertices,
               (unsigned long long)s->edges, (unsigned long long)s->rows,
               (unsigned long long)s->rejected, (unsigned long long)s->skipped,
               (unsigned long long)s->committed, (unsigned long long)s->bytes, s->elapsed_s,
               s->rows_per_s, agec_load_method_name(s->method));
        if (st != AGEC_OK) {
            fputs(", \"error\": ", stdout);
            /* The message as a JSON string, through the library's writer. */
            agec_builder *b = NULL;
            char *txt = NULL;
            if (agec_builder_new(&b, NULL) == AGEC_OK &&
                agec_builder_string(b, err->message, strlen(err->message), NULL) == AGEC_OK &&
                agec_builder_finish(b, &txt, NULL, NULL) == AGEC_OK)
                fputs(txt, stdout);
            else
                fputs("null", stdout);
            agec_free(txt);
            agec_builder_free(b);
            printf(", \"code\": \"%s\"", agec_status_name(st));
            if (chunk > 0)
                printf(", \"resume\": %llu", (unsigned long long)resume);
        }
        puts("}");
    } else if (!c->quiet && st == AGEC_OK) {
        printf("loaded %llu vertices and %llu edges in %.2f s (%.0f rows/s, method %s); "
               "%llu rows read: %llu rejected, %llu skipped%s\n",
               (unsigned long long)s->vertices, (unsigned long long)s->edges, s->elapsed_s,
               s->rows_per_s, agec_load_method_name(s->method), (unsigned long long)s->rows,
               (unsigned long long)s->rejected, (unsigned long long)s->skipped,
               s->skipped ? " (resumed)" : "");
    }
    if (st != AGEC_OK) {
        int rc = cli_fail("load", st, err);
        if (chunk > 0)
            fprintf(stderr, "agec: %llu input rows are committed: run again with --resume %llu\n",
                    (unsigned long long)resume, (unsigned long long)resume);
        return st == AGEC_ERR_INPUT ? EXIT_USAGE : rc;
    }
    return EXIT_OK;
}

int cmd_load(cli *c, int argc, char **argv)
{
    input *in = calloc((size_t)argc, sizeof *in);
    const char **keys = calloc((size_t)argc, sizeof *keys),
               **klabels = calloc((size_t)argc, sizeof *klabels);
    const char *default_key = NULL, *reject_path = NULL;
    size_t nin = 0, nkeys = 0;
    agec_load_opts o;
    agec_load_opts_init(&o);
    o.timeout_ms = c->statement_timeout_ms; /* --statement-timeout: every statement of the load */
    int rc = EXIT_OK, n;
    if (in == NULL || keys == NULL || klabels == NULL) {
        rc = EXIT_QUERY;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            cli_command_help("load", stdout);
            goto out;
        }
        if (v == NULL) {
            rc = cli_usage_error("load: %s needs a value", a);
            goto out;
        }
        i++;
        if (strcmp(a, "--vertices") == 0 || strcmp(a, "--edges") == 0) {
            in[nin].edges = a[2] == 'e';
            if (!split(v, &in[nin].label, &in[nin].path)) {
                rc = cli_usage_error("load: %s wants LABEL=FILE", a);
                goto out;
            }
            nin++;
        } else if (strcmp(a, "--key") == 0) {
            if (strchr(v, '=') == NULL)
                default_key = v;
            else if (split(v, &klabels[nkeys], &keys[nkeys]))
                nkeys++;
        } else if (strcmp(a, "--method") == 0) {
            o.method = strcmp(v, "copy") == 0     ? AGEC_LOAD_COPY
                       : strcmp(v, "insert") == 0 ? AGEC_LOAD_INSERT
                                                  : AGEC_LOAD_AUTO;
            if (o.method == AGEC_LOAD_AUTO && strcmp(v, "auto") != 0) {
                rc = cli_usage_error("load: --method must be auto, insert or copy");
                goto out;
            }
        } else if (strcmp(a, "--batch") == 0 && cli_parse_int(v, &n) && n > 0) {
            o.batch_rows = (size_t)n;
        } else if (strcmp(a, "--chunk") == 0 && parse_count(v, &o.chunk_rows)) {
        } else if (strcmp(a, "--resume") == 0 && parse_count(v, &o.skip_rows)) {
        } else if (strcmp(a, "--reject") == 0) {
            reject_path = v;
        } else if (strcmp(a, "--format") == 0 &&
                   (strcmp(v, "json") == 0 || strcmp(v, "table") == 0)) {
            c->format = v[0] == 'j' ? FMT_JSON : FMT_TABLE;
        } else {
            rc = cli_usage_error("load: bad option or value: %s %s", a, v);
            goto out;
        }
    }
    if (c->graph == NULL || nin == 0) {
        rc = cli_usage_error("load: --graph G and at least one --vertices or --edges are needed");
        goto out;
    }
    FILE *rej = NULL;
    /* A resumed load appends: the rejects of the run it resumes stay (its
     * rows before the resume point are not read again). */
    if (reject_path != NULL && (rej = fopen(reject_path, o.skip_rows > 0 ? "a" : "w")) == NULL) {
        rc = cli_usage_error("load: cannot write %s", reject_path);
        goto out;
    }
    o.reject = rej ? reject_to_file : NULL;
    o.reject_user = rej;
    load_progress lp = { .enabled = !c->quiet && isatty(STDERR_FILENO), .what = "loading" };
    for (size_t i = 0; i < nin; i++) {
        struct stat sb;
        if (stat(in[i].path, &sb) == 0)
            lp.total_bytes += (unsigned long long)sb.st_size;
    }
    o.progress = cli_load_progress;
    o.progress_user = &lp;
    agec_conn *conn = NULL;
    if ((rc = cli_open_pool(c, 1, 0, false)) != EXIT_OK || (rc = cli_acquire(c, &conn)) != EXIT_OK)
        goto close_rej;
    agec_error err = AGEC_ERROR_INIT;
    agec_loader *ld = NULL;
    agec_status st = agec_loader_open(conn, c->graph, &o, &ld, &err);
    /* Keys of the vertex labels (and of labels named only by --key). */
    for (size_t i = 0; st == AGEC_OK && i < nin; i++) {
        if (in[i].edges)
            continue;
        const char *key = default_key;
        for (size_t k = 0; k < nkeys; k++)
            if (strcmp(klabels[k], in[i].label) == 0)
                key = keys[k];
        if (key != NULL)
            st = agec_loader_key(ld, in[i].label, key, &err);
    }
    for (size_t k = 0; st == AGEC_OK && k < nkeys; k++)
        st = agec_loader_key(ld, klabels[k], keys[k], &err);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; st == AGEC_OK && i < nin; i++)
            if (in[i].edges == (pass == 1))
                st = agec_loader_file(ld, in[i].edges, in[i].label, in[i].path, AGEC_FORMAT_AUTO,
                                      &err);
    agec_load_stats s = { .size = sizeof s };
    if (ld != NULL && st == AGEC_OK)
        st = agec_loader_finish(ld, &s, &err);
    else
        agec_loader_stats(ld, &s);
    if (lp.enabled) {
        lp.final = true;
        if (st == AGEC_OK)
            cli_load_progress(&s, &lp);
        fputc('\n', stderr);
    }
    agec_loader_free(ld);
    agec_conn_release(conn);
    /* The last COMMIT's answer lost: a new connection asks the server
     * whether it committed, so that --resume loads nothing twice. */
    uint64_t resume = s.committed;
    if (st != AGEC_OK && s.uncertain > 0 && cli_acquire(c, &conn) == EXIT_OK) {
        agec_error rerr = AGEC_ERROR_INIT;
        if (agec_load_resume_point(conn, &s, &resume, &rerr) != AGEC_OK)
            fprintf(stderr,
                    "agec: the last %llu rows may or may not be committed (%s): check before "
                    "resuming\n",
                    (unsigned long long)s.uncertain, rerr.message);
        agec_conn_release(conn);
    }
    rc = summary(c, st, &s, &err, o.chunk_rows, resume);
close_rej:
    if (rej != NULL)
        fclose(rej);
out:
    free(in);
    free(keys);
    free(klabels);
    return rc;
}
