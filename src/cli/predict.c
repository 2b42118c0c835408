/* predict.c — `cnn predict`: classify PNG, JPEG, BMP, GIF or PGM/PPM images, prepared
 * the way the model's training data was (its "prep" metadata: MNIST's
 * digit preparation, pad or crop), and optionally draw them in a grid with
 * their file names and predicted labels (the seed's Figure 3.3) or write the
 * predictions as CSV. A picture in a folder named after a class
 * (".../7/img.png") has that true label: it is shown beside the prediction
 * and counted in an accuracy. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int cls;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->cls > y->cls) - (x->cls < y->cls);
}

void cli_predict_options(predict_cfg *c, cli_opt *opts)
{
    *c = (predict_cfg){.model = NULL, .grid = NULL, .mem_limit = NULL, .prep = NULL, .csv = NULL, .top = -1,
                       .threads = 0, .scale = 4};
    const cli_opt table[] = {
        {"model", CLI_STR, &c->model, 0, 0, "FILE", "the model file (.safetensors)", "required", 0},
        {"top", CLI_INT, &c->top, 0, 1 << 24, "K", "print the K most likely classes; 0 = all", "all up to 10 classes, else 5", 0},
        {"prep", CLI_STR, &c->prep, 0, 0, "digit|pad|crop", "how pictures become inputs (see above)", "the model's", 0},
        {"grid", CLI_STR, &c->grid, 0, 0, "FILE.png", "draw the preprocessed inputs with their predictions", "none", 0},
        {"scale", CLI_INT, &c->scale, 1, 16, "N", "--grid: pixels per input pixel", NULL, 0},
        {"predictions", CLI_STR, &c->csv, 0, 0, "FILE.csv", "write file,true,predicted,probability,correct,top1,p1,... per picture", "none", 0},
        {"threads", CLI_INT, &c->threads, 0, 1024, "N", "threads for the kernels; 0 = all cores", NULL, 0},
        {"mem-limit", CLI_STR, &c->mem_limit, 0, 0, "SIZE", CLI_MEM_LIMIT_HELP, CLI_MEM_LIMIT_DEFAULT, 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == PREDICT_NOPTS + 1,
                   "PREDICT_NOPTS is not the table's size");
    memcpy(opts, table, sizeof table);
}

int cli_predict(int argc, char **argv)
{
    const char *cmd = "predict";
    predict_cfg c;
    cli_opt opts[PREDICT_NOPTS + 1];
    cli_predict_options(&c, opts);
    char *files[CLI_PREDICT_MAX_IMAGES];
    int nfiles = 0;
    int rc = cli_parse_or_help(cmd, argc, argv, opts, files, CLI_PREDICT_MAX_IMAGES, &nfiles,
        "--model FILE [options] IMAGE...",
        "Classify PNG, JPEG, BMP, GIF or PGM/PPM images. Each is turned upright "
        "(EXIF orientation),\nprepared as the model's training data was (its 'prep' "
        "metadata) and normalised\nwith the model's stored mean and std:\n"
        "  digit  the way MNIST was made (grayscale, invert a light background, crop "
        "to the ink,\n         fit 20x20, centre of mass at the centre of 28x28)\n"
        "  pad    resized to fit the input keeping the aspect ratio, padded with black\n"
        "  crop   the centre cut to the input's aspect ratio, resized to fill it\n"
        "Models without 'prep' (older files) use digit if they take 1x28x28 "
        "inputs, else pad.\n"
        "A picture in a folder named after one of the model's classes "
        "(digits/7/a.png) has that\ntrue label: each line and the --grid say "
        "whether the prediction is right,\n--predictions records it, and the "
        "accuracy is printed.");
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *model = c.model, *grid = c.grid, *mem_limit = c.mem_limit, *prep_s = c.prep;
    const char *csv = c.csv;
    int top = c.top, threads = c.threads, scale = c.scale;
    if (!model) return cli_usage_error(cmd, "--model FILE is required");
    if (nfiles == 0) return cli_usage_error(cmd, "give at least one image file");
    if ((rc = cli_set_mem_limit(cmd, mem_limit))) return rc;
    if (grid && csv && strcmp(grid, csv) == 0)
        return cli_usage_error(cmd, "--grid %s and --predictions %s name the same file: give each its own",
                               grid, csv);
    /* the outputs can be written, checked before any work */
    if (grid && cnn_check_writable(grid) != CNN_OK) return cli_error(cmd, "--grid: %s", cnn_errmsg());
    if (csv && cnn_check_writable(csv) != CNN_OK) return cli_error(cmd, "--predictions: %s", cnn_errmsg());

    cnn_model *m = NULL;
    uint8_t *pix = NULL;
    float *x = NULL, *probs = NULL;
    int *ok = NULL, *pred = NULL, *truth = NULL, *marks = NULL, *ranks = NULL;
    char **okfiles = NULL;
    char **labels = NULL;
    cli_classes names = {0};
    ranked *order = NULL;
    if ((rc = cli_load_model(cmd, model, &m))) return rc;
    int ic, ih, iw;
    cnn_model_input_shape(m, &ic, &ih, &iw);
    cnn_prep prep;
    if (prep_s) {
        if (cnn_prep_parse(prep_s, &prep) != CNN_OK) {
            rc = cli_usage_error(cmd, "--prep: expected digit, pad or crop, got '%s'", prep_s);
            goto done;
        }
    } else if ((rc = cli_prep_from_model(cmd, m, &prep))) {
        goto done;
    }
    if (ic != 1 && ic != 3) {
        rc = cli_error(cmd, "the model takes %dx%dx%d inputs; pictures become inputs of 1 or 3 channels",
                       ic, ih, iw);
        goto done;
    }
    int k = cnn_model_output_size(m);
    cli_norm nm;
    if ((rc = cli_norm_from_model(cmd, m, &nm))) goto done;
    if ((rc = cli_classes_from_model(cmd, m, &names))) goto done;
    if (top < 0) top = k <= 10 ? k : 5;
    if (top == 0 || top > k) top = k;

    const size_t plane = (size_t)ih * iw, px = plane * ic;
    pix = malloc((size_t)nfiles * plane); /* what the grid shows: the inputs' grey levels */
    uint8_t *input = malloc(px);
    x = malloc(sizeof(float) * (size_t)nfiles * px);
    probs = cnn_alloc(sizeof(float) * (size_t)nfiles * k, "the probabilities"); /* counted */
    ok = calloc((size_t)nfiles, sizeof *ok);
    pred = calloc((size_t)nfiles, sizeof *pred);
    labels = calloc((size_t)nfiles, sizeof *labels);
    order = malloc(sizeof *order * (size_t)k);
    truth = malloc(sizeof *truth * (size_t)nfiles);
    marks = calloc((size_t)nfiles, sizeof *marks);
    ranks = malloc(sizeof *ranks * (size_t)nfiles * (size_t)top);
    okfiles = malloc(sizeof *okfiles * (size_t)nfiles);
    if (!pix || !input || !x || !probs || !ok || !pred || !labels || !order || !truth || !marks ||
        !ranks || !okfiles) {
        free(input);
        rc = cli_error(cmd, "%s", probs ? "out of memory" : cnn_errmsg());
        goto done;
    }
    /* load every image; a bad file is reported and skipped */
    int nok = 0, failed = 0;
    for (int i = 0; i < nfiles; i++) {
        cnn_image img;
        cnn_status st = cnn_image_decode_file(files[i], &img);
        if (st == CNN_OK) {
            st = cnn_image_prepare(&img, prep, ic, ih, iw, input);
            if (st) cnn_fail_prefix(st, "%s", files[i]);
            cnn_image_free(&img);
        }
        if (st != CNN_OK) {
            cli_error(cmd, "%s", cnn_errmsg());
            failed = 1;
            continue;
        }
        cli_normalise(input, ic, plane, &nm, x + (size_t)nok * px);
        uint8_t *g = pix + (size_t)nok * plane;
        if (ic == 1) memcpy(g, input, plane);
        else
            for (size_t p = 0; p < plane; p++)
                g[p] = (uint8_t)((input[p] * 77u + input[plane + p] * 150u + input[2 * plane + p] * 29u) >> 8);
        ok[nok++] = i;
    }
    free(input);
    cnn_set_threads(threads);
    int bs = nok < 256 ? (nok ? nok : 1) : 256;
    if (cnn_model_set_batch(m, bs) != CNN_OK) {
        rc = cli_error(cmd, "%s", cnn_errmsg());
        goto done;
    }
    for (int first = 0; first < nok; first += bs) {
        int n = nok - first < bs ? nok - first : bs;
        const float *out;
        if (cnn_model_forward(m, x + (size_t)first * px, n, 0, &out) != CNN_OK) {
            rc = cli_error(cmd, "%s", cnn_errmsg());
            goto done;
        }
        cli_probabilities(m, out, n, k, probs + (size_t)first * k);
    }
    int known = 0, right = 0;
    for (int i = 0; i < nok; i++) {
        const float *p = probs + (size_t)i * k;
        for (int j = 0; j < k; j++) order[j] = (ranked){p[j], j};
        /* by probability, highest first (ties: the lower class) */
        qsort(order, (size_t)k, sizeof *order, cmp_ranked);
        pred[i] = order[0].cls;
        for (int j = 0; j < top; j++) ranks[(size_t)i * top + j] = order[j].cls;
        okfiles[i] = files[ok[i]];
        /* the true label, when the picture's folder names a class */
        truth[i] = cli_true_label(files[ok[i]], &names, k);
        char b[16], bt[16];
        const char *best = cli_class_name(&names, order[0].cls, b);
        const char *true_name = truth[i] >= 0 ? cli_class_name(&names, truth[i], bt) : NULL;
        int wrong = truth[i] >= 0 && truth[i] != pred[i];
        known += truth[i] >= 0;
        right += truth[i] >= 0 && !wrong;
        marks[i] = wrong ? CLI_GRID_WRONG : 0;
        printf("%s: %s (%.1f%%)", files[ok[i]], best, 100.0 * order[0].p);
        if (true_name) printf(wrong ? "  WRONG: is %s" : "  right", true_name);
        printf("\n ");
        for (int j = 0; j < top; j++)
            printf(" %s %.1f%%", cli_class_name(&names, order[j].cls, b), 100.0 * order[j].p);
        printf("\n");
        best = cli_class_name(&names, order[0].cls, b);
        if (!(labels[i] = cli_grid_caption(files[ok[i]], best, order[0].p, true_name, wrong))) {
            rc = cli_error(cmd, "out of memory");
            goto done;
        }
    }
    if (known > 0)
        printf("Accuracy: %.2f%% (%d of %d pictures whose folder names their class%s)\n",
               100.0 * right / known, right, known, known < nok ? "; the others are not counted" : "");
    if (grid && nok > 0) {
        if (cli_grid_png(grid, pix, nok, ih, iw, (const char *const *)labels, marks, scale)) {
            rc = cli_error(cmd, "--grid: %s", cnn_errmsg());
            goto done;
        }
        printf("Wrote the grid to %s\n", grid);
    }
    if (csv) {
        if (cli_predictions_csv(csv, nok, okfiles, truth, probs, ranks, k, top, &names)) {
            rc = cli_error(cmd, "--predictions: %s", cnn_errmsg());
            goto done;
        }
        printf("Wrote the predictions to %s\n", csv);
    }
    rc = failed ? CLI_EDATA : CLI_OK;
done:
    free(order);
    free(truth);
    free(marks);
    free(ranks);
    free(okfiles);
    cli_classes_free(&names);
    if (labels)
        for (int i = 0; i < nfiles; i++) free(labels[i]);
    free(labels);
    free(pred);
    free(ok);
    cnn_free(probs);
    free(x);
    free(pix);
    cnn_model_free(m);
    return rc;
}
