/* report_pages.c — report pages of models that no data set of the cnn
 * program gives yet, for the browser test (tests/cli_report_browser.sh):
 *
 *   report_pages colour OUT.html   3x20x20 colour images, 5 named classes,
 *                                  every layer kind, every padding mode
 *   report_pages many OUT.html     1x16x16 grey images, 30 classes, a
 *                                  model without a final softmax
 *
 * Each model is trained for a few hundred steps on synthetic images (so
 * that its filters and mistakes mean something) through the library, and
 * its page is written by the same code as `cnn report` (cli_report_html)
 * with a test set and a history of the steps. */
#include "cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *kColour =
    "input 3x20x20\n"
    "conv 6 3x3 pad=1 padmode=reflect\n"
    "batchnorm\n"
    "relu\n"
    "maxpool 2\n"
    "conv 8 3x3 stride=2 pad=1 padmode=replicate\n"
    "leaky_relu 0.1\n"
    "avgpool 2 stride=1\n"
    "conv 8 1x1 bias=0\n"
    "tanh\n"
    "flatten\n"
    "dropout 0.2\n"
    "dense 16\n"
    "sigmoid\n"
    "dense 5\n"
    "softmax\n";

static const char *kMany =
    "input 1x16x16\n"
    "conv 8 5x5 pad=same\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 30\n";

/* Class k of the colour set: a square of colour k on a noisy background,
 * anywhere; of the grey set: a bright bar at one of 30 places and angles. */
static void make_image(int colour, int k, cnn_rng *r, int c, int h, int w, uint8_t *px)
{
    static const uint8_t rgb[5][3] = {{230, 40, 40}, {40, 200, 60}, {50, 80, 230}, {230, 210, 40}, {40, 210, 220}};
    for (int i = 0; i < c * h * w; i++) px[i] = (uint8_t)cnn_rng_below(r, 50);
    if (colour) {
        int y0 = (int)cnn_rng_below(r, (uint32_t)(h - 6)), x0 = (int)cnn_rng_below(r, (uint32_t)(w - 6));
        for (int ch = 0; ch < 3; ch++)
            for (int y = y0; y < y0 + 6; y++)
                for (int x = x0; x < x0 + 6; x++) px[(ch * h + y) * w + x] = rgb[k][ch];
        return;
    }
    int pos = k % 10, vertical = k / 10 == 1, diagonal = k / 10 == 2;
    int jitter = (int)cnn_rng_below(r, 3) - 1;
    for (int t = 2; t < 14; t++) {
        int y = vertical ? t : diagonal ? t : 2 + pos + jitter / 2;
        int x = vertical ? 2 + pos + jitter / 2 : diagonal ? (t + pos + jitter) % w : t;
        if (y >= 0 && y < h && x >= 0 && x < w) px[y * w + x] = (uint8_t)(180 + cnn_rng_below(r, 76));
    }
}

static int make_set(int colour, int k, int n, uint64_t seed, cnn_dataset *d)
{
    d->n = n;
    d->c = colour ? 3 : 1;
    d->h = d->w = colour ? 20 : 16;
    d->classes = k;
    d->images = malloc((size_t)n * d->c * d->h * d->w);
    d->labels = malloc((size_t)n);
    if (!d->images || !d->labels) return -1;
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        d->labels[i] = (uint8_t)cnn_rng_below(&r, (uint32_t)k);
        make_image(colour, d->labels[i], &r, d->c, d->h, d->w, d->images + (size_t)i * d->c * d->h * d->w);
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_program = "report_pages";
    if (argc != 3 || (strcmp(argv[1], "colour") && strcmp(argv[1], "many"))) {
        fprintf(stderr, "usage: report_pages colour|many OUT.html\n");
        return 2;
    }
    const int colour = strcmp(argv[1], "colour") == 0, k = colour ? 5 : 30;
    cnn_set_threads(1);
    cnn_model *m = NULL;
    cnn_dataset train = {0}, test = {0};
    if (cnn_model_from_text(colour ? kColour : kMany, argv[1], &m) != CNN_OK ||
        cnn_model_init(m, CNN_INIT_HE_NORMAL, 3) != CNN_OK || cnn_model_set_batch(m, 64) != CNN_OK) {
        fprintf(stderr, "report_pages: %s\n", cnn_errmsg());
        return 1;
    }
    if (make_set(colour, k, 3000, 1, &train) || make_set(colour, k, 600, 2, &test)) {
        fprintf(stderr, "report_pages: out of memory\n");
        return 1;
    }
    /* the sets as the commands hold them: a store in memory, split whole */
    cli_store tr_store = {.n = train.n, .c = train.c, .h = train.h, .w = train.w, .labels = train.labels,
                          .images = train.images, .classes = k};
    cli_store te_store = {.n = test.n, .c = test.c, .h = test.h, .w = test.w, .labels = test.labels,
                          .images = test.images, .classes = k};
    cli_split tr_split = {&tr_store, train.n, NULL, 0}, te_split = {&te_store, test.n, NULL, 0};
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
    oc.lr = 0.01f;
    cnn_model_set_optimizer(m, &oc);
    cli_norm nm;
    cli_norm_init(&nm, 0.2f, 0.3f);
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", nm.mean[0]);
    cnn_model_set_meta(m, "norm_mean", buf);
    snprintf(buf, sizeof buf, "%.9g", nm.std[0]);
    cnn_model_set_meta(m, "norm_std", buf);
    if (colour) cnn_model_set_meta(m, "classes", "red,green,blue,yellow,cyan");

    /* a few "epochs" of a few batches each, recorded as a history */
    const int batch = 32, epochs = 4, steps = colour ? 8 : 40;
    size_t px = (size_t)train.c * train.h * train.w;
    float *x = malloc(sizeof(float) * px * batch);
    uint8_t labels[32];
    cli_epoch_row rows[4];
    cnn_loss xent = {CNN_LOSS_XENT, 1.0f};
    int first = 0;
    for (int e = 0; e < epochs; e++) {
        double loss = 0;
        int correct = 0;
        for (int s = 0; s < steps; s++, first = (first + batch) % (train.n - batch)) {
            cli_batch(&tr_split, NULL, first, batch, &nm, x, labels);
            cnn_batch_stats st;
            if (cnn_model_train_batch(m, x, labels, batch, xent, &st) != CNN_OK) {
                fprintf(stderr, "report_pages: %s\n", cnn_errmsg());
                return 1;
            }
            loss += st.loss;
            correct += st.correct;
        }
        rows[e] = (cli_epoch_row){e + 1, oc.lr, loss / steps, 100.0 * correct / (steps * batch), NAN, NAN, 0.1};
    }
    free(x);
    cli_report_in in = {.model_name = colour ? "colour.safetensors" : "many.safetensors", .test = &te_split,
                        .ntest = 0, .data_name = "synthetic test images", .rows = rows, .nrows = epochs,
                        .history_from = "the training of report_pages"};
    size_t bytes;
    int rc = cli_report_html("report", m, &in, argv[2], &bytes);
    if (!rc) printf("wrote %s (%zu bytes)\n", argv[2], bytes);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    cnn_model_free(m);
    return rc;
}
