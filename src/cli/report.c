/* report.c — classification metrics: the seed report's table (section
 * 3.5.2: per-class precision, recall, F1 and support, then accuracy, macro
 * and weighted averages) and a confusion matrix. A class that is never
 * predicted has precision 0 (scikit-learn's zero_division=0); the macro
 * average is over the classes that occur as a true class or a prediction
 * (scikit-learn's default labels).
 *
 * Many classes. A model may have far more outputs than its test set has
 * classes, or thousands of classes. Up to CLI_REPORT_ALL_CLASSES outputs
 * every class has a row and a column, as in the seed's report. Beyond, the
 * table lists the classes that occur, with their matrix if they are few
 * enough, else the most frequent confusions: a 1000-class model's report
 * stays readable instead of a megabyte of matrix. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Confusions listed when the matrix would be too large. */
#define TOP_CONFUSIONS 20

int cli_confusion_init(cli_confusion *c, int k)
{
    memset(c, 0, sizeof *c);
    c->k = k;
    return CLI_OK;
}

void cli_confusion_add(cli_confusion *c, int truth, int predicted)
{
    if (truth < 0 || truth >= c->k || predicted < 0 || predicted >= c->k) return;
    c->total++;
    c->correct += truth == predicted;
    if (c->n == c->cap) {
        long cap = c->cap ? 2 * c->cap : 1024;
        int *t = realloc(c->truth, sizeof(int) * (size_t)cap);
        if (t) c->truth = t;
        int *p = t ? realloc(c->pred, sizeof(int) * (size_t)cap) : NULL;
        if (p) c->pred = p;
        if (!t || !p) {
            c->lost++;
            return;
        }
        c->cap = cap;
    }
    c->truth[c->n] = truth;
    c->pred[c->n] = predicted;
    c->n++;
}

void cli_confusion_free(cli_confusion *c)
{
    free(c->truth);
    free(c->pred);
    c->truth = c->pred = NULL;
    c->n = c->cap = 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Where class `cls` is among the m shown classes (sorted), or -1. */
static int shown_index(const int *shown, int m, int cls)
{
    const int *at = bsearch(&cls, shown, (size_t)m, sizeof *shown, cmp_int);
    return at ? (int)(at - shown) : -1;
}

/* `s` left-aligned in `width` terminal columns (UTF-8 aware). */
static void print_padded(FILE *f, const char *s, int width)
{
    fputs(s, f);
    for (int w = cli_text_width(s); w < width; w++) fputc(' ', f);
}

/* "7", or "7 (cat)" for a class with a name of its own */
static const char *class_label(const cli_classes *names, int cls, char *buf, size_t len)
{
    char num[16], b[16];
    snprintf(num, sizeof num, "%d", cls);
    const char *name = cli_class_name(names, cls, b);
    if (strcmp(name, num) == 0) snprintf(buf, len, "%s", num);
    else snprintf(buf, len, "%s (%s)", num, name);
    return buf;
}

typedef struct {
    int truth, pred;
    long count;
} confusion;

static int cmp_pair(const void *a, const void *b)
{
    const confusion *x = a, *y = b;
    if (x->truth != y->truth) return (x->truth > y->truth) - (x->truth < y->truth);
    return (x->pred > y->pred) - (x->pred < y->pred);
}

static int cmp_count(const void *a, const void *b)
{
    const confusion *x = a, *y = b;
    if (x->count != y->count) return (x->count < y->count) - (x->count > y->count);
    return cmp_pair(a, b);
}

/* The most frequent (true, predicted) mistakes, for a matrix too large to
 * print. */
static void print_top_confusions(FILE *f, const cli_confusion *c, const cli_classes *names)
{
    confusion *v = malloc(sizeof *v * (size_t)(c->n ? c->n : 1));
    if (!v) {
        fprintf(f, "\n(out of memory for the list of confusions)\n");
        return;
    }
    long nv = 0;
    for (long i = 0; i < c->n; i++)
        if (c->truth[i] != c->pred[i]) v[nv++] = (confusion){c->truth[i], c->pred[i], 1};
    qsort(v, (size_t)nv, sizeof *v, cmp_pair);
    long distinct = 0;
    for (long i = 0; i < nv; i++) {
        if (distinct && cmp_pair(&v[distinct - 1], &v[i]) == 0) v[distinct - 1].count++;
        else v[distinct++] = v[i];
    }
    qsort(v, (size_t)distinct, sizeof *v, cmp_count);
    fprintf(f, "\nMost frequent confusions (of %ld distinct; too many classes occur for a matrix, "
               "`cnn eval --predictions` writes every prediction)\n", distinct);
    for (long i = 0; i < distinct && i < TOP_CONFUSIONS; i++) {
        char t[CLI_CLASS_NAME_MAX + 24], p[CLI_CLASS_NAME_MAX + 24];
        fprintf(f, "  %7ld  true %s predicted as %s\n", v[i].count,
                class_label(names, v[i].truth, t, sizeof t), class_label(names, v[i].pred, p, sizeof p));
    }
    free(v);
}

void cli_report_print(FILE *f, const cli_confusion *c, const cli_classes *names)
{
    const int k = c->k;
    /* the classes shown, increasing: every class of a small model, else
     * those that occur */
    int m = 0;
    int *shown = malloc(sizeof(int) * (size_t)(k <= CLI_REPORT_ALL_CLASSES ? k : 2 * c->n) + 1);
    long *tp = NULL, *support = NULL, *predicted = NULL;
    if (shown) {
        if (k <= CLI_REPORT_ALL_CLASSES) {
            for (m = 0; m < k; m++) shown[m] = m;
        } else {
            for (long i = 0; i < c->n; i++) shown[m++] = c->truth[i], shown[m++] = c->pred[i];
            qsort(shown, (size_t)m, sizeof *shown, cmp_int);
            int u = 0;
            for (int i = 0; i < m; i++)
                if (u == 0 || shown[u - 1] != shown[i]) shown[u++] = shown[i];
            m = u;
        }
        tp = calloc((size_t)m + 1, sizeof *tp);
        support = calloc((size_t)m + 1, sizeof *support);
        predicted = calloc((size_t)m + 1, sizeof *predicted);
    }
    if (!shown || !tp || !support || !predicted) {
        fprintf(f, "(out of memory for the classification report)\n");
        goto done;
    }
    for (long i = 0; i < c->n; i++) {
        int t = shown_index(shown, m, c->truth[i]), p = shown_index(shown, m, c->pred[i]);
        support[t]++;
        predicted[p]++;
        tp[t] += c->truth[i] == c->pred[i];
    }

    char b[16];
    int w = 12; /* "Weighted avg" */
    for (int i = 0; i < m; i++) {
        int l = cli_text_width(cli_class_name(names, shown[i], b));
        if (l > w) w = l;
    }
    double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
    int occurring = 0;
    fprintf(f, "%-*s  %9s  %6s  %8s  %7s\n", w, "Class", "Precision", "Recall", "F1-Score",
            "Support");
    for (int i = 0; i < m; i++) {
        double p = predicted[i] ? (double)tp[i] / predicted[i] : 0.0;
        double r = support[i] ? (double)tp[i] / support[i] : 0.0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        if (support[i] || predicted[i]) {
            occurring++;
            mp += p, mr += r, mf += f1;
        }
        if (c->n) {
            double s = (double)support[i] / c->n;
            wp += p * s, wr += r * s, wf += f1 * s;
        }
        print_padded(f, cli_class_name(names, shown[i], b), w);
        fprintf(f, "  %9.2f  %6.2f  %8.2f  %7ld\n", p, r, f1, support[i]);
    }
    if (occurring) mp /= occurring, mr /= occurring, mf /= occurring;
    double acc = c->total ? (double)c->correct / c->total : 0.0;
    fprintf(f, "%-*s  %9s  %6s  %8.2f  %7ld\n", w, "Accuracy", "", "", acc, c->total);
    fprintf(f, "%-*s  %9.2f  %6.2f  %8.2f  %7ld\n", w, "Macro avg", mp, mr, mf, c->total);
    fprintf(f, "%-*s  %9.2f  %6.2f  %8.2f  %7ld\n", w, "Weighted avg", wp, wr, wf, c->total);
    if (m < k)
        fprintf(f, "(%d of the model's %d classes occur in the test, as a true class or a "
                   "prediction; the others are not listed)\n", m, k);

    if (m > CLI_REPORT_ALL_CLASSES) {
        print_top_confusions(f, c, names);
    } else {
        /* the matrix: columns are labelled by class index to stay narrow;
         * rows carry the names */
        long *cm = calloc((size_t)m * m + 1, sizeof *cm);
        if (!cm) {
            fprintf(f, "(out of memory for the confusion matrix)\n");
            goto done;
        }
        for (long i = 0; i < c->n; i++)
            cm[(size_t)shown_index(shown, m, c->truth[i]) * m + shown_index(shown, m, c->pred[i])]++;
        long mx = 0;
        for (size_t i = 0; i < (size_t)m * m; i++) mx = cm[i] > mx ? cm[i] : mx;
        int cw = snprintf(NULL, 0, "%ld", mx);
        int iw = snprintf(NULL, 0, "%d", m ? shown[m - 1] : 0);
        if (cw < iw) cw = iw;
        int nw = 0, digits_only = 1;
        for (int i = 0; i < m; i++) {
            const char *name = cli_class_name(names, shown[i], b);
            char num[16];
            snprintf(num, sizeof num, "%d", shown[i]);
            if (cli_text_width(name) > nw) nw = cli_text_width(name);
            if (strcmp(name, num) != 0) digits_only = 0;
        }
        int rw = digits_only ? iw : iw + 1 + nw;
        if (rw < 4) rw = 4;
        fprintf(f, "\nConfusion matrix (rows: true class, columns: predicted class)\n");
        fprintf(f, "%*s ", rw, "");
        for (int j = 0; j < m; j++) fprintf(f, " %*d", cw, shown[j]);
        fputc('\n', f);
        for (int i = 0; i < m; i++) {
            if (digits_only) {
                fprintf(f, "%*d ", rw, shown[i]);
            } else {
                fprintf(f, "%*d ", iw, shown[i]);
                print_padded(f, cli_class_name(names, shown[i], b), rw - iw);
            }
            for (int j = 0; j < m; j++) fprintf(f, " %*ld", cw, cm[(size_t)i * m + j]);
            fputc('\n', f);
        }
        free(cm);
    }
    if (c->lost)
        fprintf(f, "(%d predictions are missing from the table and matrix: out of memory)\n",
                c->lost);
    fprintf(f, "\nTest accuracy: %.2f%% (%ld of %ld)\n", 100.0 * acc, c->correct, c->total);
done:
    free(predicted);
    free(support);
    free(tp);
    free(shown);
}
