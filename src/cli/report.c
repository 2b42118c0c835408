/* report.c — classification metrics: the seed report's table (section
 * 3.5.2: per-class precision, recall, F1 and support, then accuracy, macro
 * and weighted averages) and a confusion matrix. A class that is never
 * predicted has precision 0 (scikit-learn's zero_division=0). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

int cli_confusion_init(cli_confusion *c, int k)
{
    c->k = k;
    c->total = c->correct = 0;
    c->cm = calloc((size_t)k * (size_t)k, sizeof *c->cm);
    return c->cm ? CLI_OK : CLI_EDATA;
}

void cli_confusion_add(cli_confusion *c, int truth, int predicted)
{
    if (truth < 0 || truth >= c->k || predicted < 0 || predicted >= c->k) return;
    c->cm[(size_t)truth * c->k + predicted]++;
    c->total++;
    c->correct += truth == predicted;
}

void cli_confusion_free(cli_confusion *c)
{
    free(c->cm);
    c->cm = NULL;
}

void cli_report_print(FILE *f, const cli_confusion *c, const cli_classes *names)
{
    int k = c->k;
    int w = 12; /* "Weighted avg" */
    for (int i = 0; i < k && i < names->n; i++) {
        int l = (int)strlen(names->names[i]);
        if (l > w) w = l;
    }
    double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
    fprintf(f, "%-*s  %9s  %6s  %8s  %7s\n", w, "Class", "Precision", "Recall", "F1-Score",
            "Support");
    for (int i = 0; i < k; i++) {
        long tp = c->cm[(size_t)i * k + i], support = 0, predicted = 0;
        for (int j = 0; j < k; j++) {
            support += c->cm[(size_t)i * k + j];
            predicted += c->cm[(size_t)j * k + i];
        }
        double p = predicted ? (double)tp / predicted : 0.0;
        double r = support ? (double)tp / support : 0.0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        mp += p / k, mr += r / k, mf += f1 / k;
        if (c->total) {
            double s = (double)support / c->total;
            wp += p * s, wr += r * s, wf += f1 * s;
        }
        char label[48];
        snprintf(label, sizeof label, "%s", i < names->n ? names->names[i] : "?");
        if (i >= names->n) snprintf(label, sizeof label, "%d", i);
        fprintf(f, "%-*s  %9.2f  %6.2f  %8.2f  %7ld\n", w, label, p, r, f1, support);
    }
    double acc = c->total ? (double)c->correct / c->total : 0.0;
    fprintf(f, "%-*s  %9s  %6s  %8.2f  %7ld\n", w, "Accuracy", "", "", acc, c->total);
    fprintf(f, "%-*s  %9.2f  %6.2f  %8.2f  %7ld\n", w, "Macro avg", mp, mr, mf, c->total);
    fprintf(f, "%-*s  %9.2f  %6.2f  %8.2f  %7ld\n", w, "Weighted avg", wp, wr, wf, c->total);

    /* the matrix: columns are labelled by class index to stay narrow;
     * rows carry the names */
    long mx = 0;
    for (size_t i = 0; i < (size_t)k * k; i++) mx = c->cm[i] > mx ? c->cm[i] : mx;
    int cw = snprintf(NULL, 0, "%ld", mx);
    int iw = snprintf(NULL, 0, "%d", k - 1);
    if (cw < iw) cw = iw;
    int nw = 0;
    for (int i = 0; i < k && i < names->n; i++) {
        int l = (int)strlen(names->names[i]);
        if (l > nw) nw = l;
    }
    int digits_only = 1;
    for (int i = 0; i < k && i < names->n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (strcmp(names->names[i], num) != 0) digits_only = 0;
    }
    int rw = digits_only ? iw : iw + 1 + nw;
    if (rw < 4) rw = 4;
    fprintf(f, "\nConfusion matrix (rows: true class, columns: predicted class)\n");
    fprintf(f, "%*s ", rw, "");
    for (int j = 0; j < k; j++) fprintf(f, " %*d", cw, j);
    fputc('\n', f);
    for (int i = 0; i < k; i++) {
        char label[64];
        if (digits_only || i >= names->n) snprintf(label, sizeof label, "%d", i);
        else snprintf(label, sizeof label, "%*d %s", iw, i, names->names[i]);
        fprintf(f, digits_only ? "%*s " : "%-*s ", rw, label);
        for (int j = 0; j < k; j++) fprintf(f, " %*ld", cw, c->cm[(size_t)i * k + j]);
        fputc('\n', f);
    }
    fprintf(f, "\nTest accuracy: %.2f%% (%ld of %ld)\n", 100.0 * acc, c->correct, c->total);
}
