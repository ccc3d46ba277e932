/* Merging the Prometheus texts of several pools (prom_merge.h). */
#include "cluster/prom_merge.h"

#include <stdlib.h>
#include <string.h>

/* One line of a text. */
typedef struct line {
    const char *s;
    size_t len;
} line;

/* One metric family: its name and the lines of one text under it. */
typedef struct family {
    const char *name;
    size_t name_len;
    int text;            /* which text */
    line *lines;         /* of that text */
    int first, count;    /* lines[first .. first+count) */
    bool header_written; /* (only the first text's header is written) */
} family;

/* The family a "# HELP name ..." or "# TYPE name ..." line names. */
static bool header_name(const line *l, const char **name, size_t *len)
{
    if (l->len < 7 || (strncmp(l->s, "# HELP ", 7) != 0 && strncmp(l->s, "# TYPE ", 7) != 0))
        return false;
    *name = l->s + 7;
    *len = strcspn(*name, " \n");
    return true;
}

static void emit(char *buf, size_t cap, size_t *len, const line *l)
{
    if (*len < cap) {
        size_t room = cap - *len - 1; /* keep the NUL */
        size_t k = l->len < room ? l->len : room;
        memcpy(buf + *len, l->s, k);
        buf[*len + k] = '\0';
    }
    *len += l->len;
}

bool agec__prom_merge(const char *const *texts, int n, char *buf, size_t cap, size_t *len)
{
    /* Split every text into lines, and the lines into families. */
    size_t nlines = 0;
    for (int t = 0; t < n; t++)
        for (const char *p = texts[t]; *p != '\0'; p++)
            nlines += *p == '\n';
    line *lines = malloc((nlines + (size_t)n) * sizeof *lines);
    family *fams = malloc((nlines + (size_t)n) * sizeof *fams);
    if (lines == NULL || fams == NULL) {
        free(lines);
        free(fams);
        return false;
    }
    int nl = 0, nf = 0;
    for (int t = 0; t < n; t++) {
        for (const char *p = texts[t]; *p != '\0';) {
            const char *eol = strchr(p, '\n');
            size_t l = eol ? (size_t)(eol - p) + 1 : strlen(p);
            lines[nl] = (line){ p, l };
            const char *name;
            size_t name_len;
            bool header = header_name(&lines[nl], &name, &name_len);
            if (header && (nf == 0 || fams[nf - 1].text != t || fams[nf - 1].name_len != name_len ||
                           strncmp(fams[nf - 1].name, name, name_len) != 0))
                fams[nf++] = (family){ name, name_len, t, lines, nl, 0, false };
            if (nf > 0 && fams[nf - 1].text == t)
                fams[nf - 1].count++;
            nl++;
            p += l;
        }
    }
    /* Each family once: the first text's header, then every text's samples. */
    for (int f = 0; f < nf; f++) {
        if (fams[f].header_written)
            continue;
        for (int g = f; g < nf; g++) {
            family *x = &fams[g];
            if (x->header_written || x->name_len != fams[f].name_len ||
                strncmp(x->name, fams[f].name, x->name_len) != 0)
                continue;
            for (int i = x->first; i < x->first + x->count; i++)
                if (g == f || lines[i].s[0] != '#')
                    emit(buf, cap, len, &lines[i]);
            x->header_written = true;
        }
    }
    free(lines);
    free(fams);
    return true;
}
