/* plot.c — training curves: an SVG with two panels (loss, accuracy) of the
 * train and validation series per epoch, and the same numbers as CSV. */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double range, int want)
{
    if (!(range > 0)) return 1.0;
    double raw = range / want, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

typedef struct {
    double x0, y0, w, h;         /* plot area in pixels */
    double xmin, xmax, ymin, ymax;
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

static void draw_panel(FILE *f, panel *p, const char *title, const char *ylabel,
                       const cli_epoch_row *rows, int n, int acc)
{
    /* y range from the data, with room above and below */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v[2] = {acc ? rows[i].train_acc : rows[i].train_loss,
                       acc ? rows[i].val_acc : rows[i].val_loss};
        for (int j = 0; j < 2; j++)
            if (isfinite(v[j])) {
                lo = v[j] < lo ? v[j] : lo;
                hi = v[j] > hi ? v[j] : hi;
            }
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    double ystep = nice_step(hi - lo, 5);
    p->ymin = floor(lo / ystep) * ystep;
    p->ymax = ceil(hi / ystep) * ystep;
    if (!acc && p->ymin < 0) p->ymin = 0;
    if (acc && p->ymax > 100) p->ymax = 100;
    if (p->ymax <= p->ymin) p->ymax = p->ymin + ystep;
    p->xmin = 1;
    p->xmax = n > 1 ? n : 2;

    fprintf(f, "<g class=\"panel\">\n");
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" stroke=\"#444\"/>\n",
            p->x0, p->y0, p->w, p->h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">%s</text>\n",
            p->x0 + p->w / 2, p->y0 - 10, title);
    /* y ticks and grid */
    for (double y = p->ymin; y <= p->ymax + ystep * 1e-6; y += ystep) {
        double yy = py(p, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p->x0, yy,
                p->x0 + p->w, yy);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", p->x0 - 5,
                yy, p->x0, yy);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n",
                p->x0 - 8, yy + 4, fabs(y) < ystep * 1e-6 ? 0.0 : y);
    }
    /* x ticks: whole epochs */
    double xstep = nice_step(p->xmax - p->xmin, 8);
    if (xstep < 1) xstep = 1;
    for (double x = p->xmin; x <= p->xmax + 1e-9; x += xstep) {
        double xx = px(p, x);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", xx,
                p->y0 + p->h, xx, p->y0 + p->h + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%g</text>\n", xx,
                p->y0 + p->h + 18, x);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 36);
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">%s</text>\n",
            p->x0 - 48, p->y0 + p->h / 2, ylabel);

    static const char *const series[2] = {"train", "validation"};
    static const char *const colour[2] = {"#1f77b4", "#ff7f0e"};
    for (int s = 0; s < 2; s++) {
        char pts[64];
        fprintf(f, "<polyline class=\"%s-%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                series[s], acc ? "acc" : "loss", colour[s], s ? " stroke-dasharray=\"6,3\"" : "");
        for (int i = 0; i < n; i++) {
            double v = s ? (acc ? rows[i].val_acc : rows[i].val_loss)
                         : (acc ? rows[i].train_acc : rows[i].train_loss);
            if (!isfinite(v)) continue;
            snprintf(pts, sizeof pts, "%.2f,%.2f ", px(p, rows[i].epoch), py(p, v));
            fputs(pts, f);
        }
        fprintf(f, "\"/>\n");
        for (int i = 0; i < n; i++) {
            double v = s ? (acc ? rows[i].val_acc : rows[i].val_loss)
                         : (acc ? rows[i].train_acc : rows[i].train_loss);
            if (!isfinite(v)) continue;
            fprintf(f, "<circle class=\"point %s-%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"><title>epoch %d: %.6g</title></circle>\n",
                    series[s], acc ? "acc" : "loss", px(p, rows[i].epoch), py(p, v), colour[s],
                    rows[i].epoch, v);
        }
    }
    /* legend in the top right corner */
    double lx = p->x0 + p->w - 120, ly = p->y0 + 12;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"112\" height=\"42\" fill=\"white\" stroke=\"#aaa\"/>\n",
            lx, ly - 4);
    for (int s = 0; s < 2; s++) {
        double yy = ly + 8 + 18 * s;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                lx + 6, yy, lx + 30, yy, colour[s], s ? " stroke-dasharray=\"6,3\"" : "");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n", lx + 36, yy + 4,
                series[s]);
    }
    fprintf(f, "</g>\n");
}

cnn_status cli_plot_svg(const char *path, const char *title, const cli_epoch_row *rows, int n)
{
    cnn_outfile o;
    cnn_status st = cnn_out_open(&o, path);
    if (st != CNN_OK) return st;
    FILE *f = o.f;
    const double W = 960, H = 420;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">", W / 2);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    panel loss = {70, 70, 380, 280, 0, 0, 0, 0}, acc = {560, 70, 380, 280, 0, 0, 0, 0};
    draw_panel(f, &loss, "Loss", "loss", rows, n, 0);
    draw_panel(f, &acc, "Accuracy", "accuracy (%)", rows, n, 1);
    fprintf(f, "</svg>\n");
    return cnn_out_commit(&o);
}

static void csv_num(FILE *f, double v, const char *fmt)
{
    if (isfinite(v)) fprintf(f, fmt, v);
}

cnn_status cli_history_csv(const char *path, const cli_epoch_row *rows, int n)
{
    cnn_outfile o;
    cnn_status st = cnn_out_open(&o, path);
    if (st != CNN_OK) return st;
    FILE *f = o.f;
    fprintf(f, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n");
    static const char *const formats[] = {"%.6g", "%.6f", "%.4f", "%.6f", "%.4f", "%.3f"};
    for (int i = 0; i < n; i++) {
        const cli_epoch_row *r = &rows[i];
        const double v[] = {r->lr, r->train_loss, r->train_acc, r->val_loss, r->val_acc, r->seconds};
        fprintf(f, "%d", r->epoch);
        for (int j = 0; j < 6; j++) {
            fputc(',', f);
            csv_num(f, v[j], formats[j]);
        }
        fputc('\n', f);
    }
    return cnn_out_commit(&o);
}
