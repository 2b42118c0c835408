/* eval.c — `cnn eval`: a model's classification report on a test set (the
 * seed's table, section 3.5.2) and its confusion matrix; --predictions
 * writes every test image's label, prediction and class probabilities. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

void cli_eval_options(eval_cfg *c, cli_opt *opts)
{
    *c = (eval_cfg){.model = NULL, .dataset = "mnist", .data = NULL, .preds = NULL, .kernels = "fast",
                    .mem_limit = NULL, .cache_dir = NULL, .test_limit = 0, .threads = 0, .batch = 256,
                    .strict = 0, .test_split = 0.2};
    const cli_opt table[] = {
        {"model", CLI_STR, &c->model, 0, 0, "FILE", "the model file (.safetensors)", "required", 0},
        {"dataset", CLI_STR, &c->dataset, 0, 0, "mnist|fashion", "a known data set under data/", "the model's", 0},
        {"data", CLI_STR, &c->data, 0, 0, "PATH", "a data set instead of --dataset: a folder of IDX files, CSV files or class folders, or a CSV file (see `cnn train --help`)", "none", 0},
        {"test-split", CLI_FLOAT_ABOVE, &c->test_split, 0, 0.99, "X", "a data set without a test split: the share tested, drawn as the model's training run drew it", "the model's, else 0.2", 0},
        {"cache-dir", CLI_STR, &c->cache_dir, 0, 0, "DIR", "where decoded data sets are cached when their own folder cannot be written", "$XDG_CACHE_HOME/cnn or ~/.cache/cnn", 0},
        {"strict", CLI_FLAG, &c->strict, 0, 0, NULL, "refuse a picture that cannot be decoded instead of skipping it", NULL, 0},
        {"test-limit", CLI_INT, &c->test_limit, 0, 100000000, "N", "evaluate the first N test images only; 0 = all", "0 (all)", 0},
        {"predictions", CLI_STR, &c->preds, 0, 0, "FILE.csv", "write index,label,predicted,p0,... per image", "none", 0},
        {"batch", CLI_INT, &c->batch, 1, 65536, "N", "images per forward pass", NULL, 0},
        {"threads", CLI_INT, &c->threads, 0, 1024, "N", "threads for the kernels; 0 = all cores", NULL, 0},
        {"kernels", CLI_STR, &c->kernels, 0, 0, "ref|fast", "textbook loops or im2col + GEMM", NULL, 0},
        {"mem-limit", CLI_STR, &c->mem_limit, 0, 0, "SIZE", CLI_MEM_LIMIT_HELP, CLI_MEM_LIMIT_DEFAULT, 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == EVAL_NOPTS + 1, "EVAL_NOPTS is not the table's size");
    memcpy(opts, table, sizeof table);
}

int cli_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    eval_cfg c;
    cli_opt opts[EVAL_NOPTS + 1];
    cli_eval_options(&c, opts);
    int rc = cli_parse_or_help(cmd, argc, argv, opts, NULL, 0, NULL,
        "--model FILE [options]",
        "Print the classification report (precision, recall, F1-score and support "
        "per class,\naccuracy, macro and weighted averages) and the confusion matrix "
        "of a model on a test set.");
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *model = c.model, *dataset = c.dataset, *data = c.data, *preds = c.preds;
    const char *kernels = c.kernels, *mem_limit = c.mem_limit, *cache_dir = c.cache_dir;
    int test_limit = c.test_limit, threads = c.threads, batch = c.batch, strict = c.strict;
    double test_split = c.test_split;
    if (!model) return cli_usage_error(cmd, "--model FILE is required");
    if (data && opts[1].given) return cli_usage_error(cmd, "--data and --dataset conflict: give one");
    cnn_kernels kern;
    if ((rc = cli_parse_kernels(cmd, kernels, &kern))) return rc;
    if ((rc = cli_set_mem_limit(cmd, mem_limit))) return rc;

    cnn_model *m = NULL;
    cli_data dset = {0};
    float *xbuf = NULL, *probs = NULL;
    int *predicted = NULL;
    cli_confusion conf = {0};
    cli_classes names = {0};
    if ((rc = cli_load_model(cmd, model, &m))) return rc;
    if (!data && !opts[1].given) {
        /* the data set the model was trained on */
        const char *ds = cnn_model_get_meta(m, "dataset");
        if (ds && strcmp(ds, "custom") == 0) {
            rc = cli_usage_error(cmd, "%s was trained on a custom data set: give --data DIR", model);
            goto done;
        }
        if (ds) dataset = ds;
    }
    cli_data_opts dopt = {dataset, data, 0, 0, 0, CNN_PREP_PAD, test_split, 1, cache_dir, strict, 0};
    if ((rc = cli_data_for_model(cmd, m, model, &dopt, !cli_opt_find(opts, "test-split")->given,
                                 &dset)))
        goto done;
    int ic, ih, iw;
    cnn_model_input_shape(m, &ic, &ih, &iw);
    const char *dir = dset.where;
    const cli_split *test = &dset.test;
    int k = cnn_model_output_size(m);
    cli_norm nm;
    if ((rc = cli_norm_from_model(cmd, m, &nm))) goto done;
    if ((rc = cli_classes_from_model(cmd, m, &names))) goto done;

    cnn_set_threads(threads);
    cnn_model_set_kernels(m, kern);
    if (cnn_model_set_batch(m, batch) != CNN_OK) {
        rc = cli_error(cmd, "%s", cnn_errmsg());
        goto done;
    }
    int n = test_limit > 0 && test_limit < test->n ? test_limit : test->n;
    size_t px = (size_t)ic * ih * iw;
    xbuf = cnn_alloc(sizeof(float) * px * (size_t)batch, "the input batch");
    predicted = malloc(sizeof *predicted * (size_t)n);
    /* counted against the memory limit: n x k can be large */
    if (preds) probs = cnn_alloc(sizeof(float) * (size_t)n * (size_t)k, "--predictions' probabilities");
    if (!xbuf || !predicted || (preds && !probs)) {
        rc = cli_error(cmd, "%s", !xbuf || (preds && !probs) ? cnn_errmsg() : "out of memory");
        goto done;
    }
    cnn_loss xent = {CNN_LOSS_XENT, 1.0f};
    double t0 = cli_now();
    if ((rc = cli_predict_all(cmd, m, test, n, &nm, xbuf, xent, predicted, probs, NULL, NULL, NULL)))
        goto done;
    double secs = cli_now() - t0;
    if (cli_confusion_init(&conf, k)) {
        rc = cli_error(cmd, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) cli_confusion_add(&conf, cli_split_label(test, i), predicted[i]);
    printf("Model %s on %d test images of %s\n\n", model, n, dir);
    cli_report_print(stdout, &conf, &names);
    printf("Evaluated in %.2f s (%.0f images/s)\n", secs, secs > 0 ? n / secs : 0.0);

    if (preds) {
        cnn_outfile o;
        if (cnn_out_open(&o, preds) != CNN_OK) {
            rc = cli_error(cmd, "--predictions: %s", cnn_errmsg());
            goto done;
        }
        FILE *f = o.f;
        fprintf(f, "index,label,predicted");
        for (int j = 0; j < k; j++) fprintf(f, ",p%d", j);
        fputc('\n', f);
        for (int i = 0; i < n; i++) {
            fprintf(f, "%d,%d,%d", i, cli_split_label(test, i), predicted[i]);
            for (int j = 0; j < k; j++) fprintf(f, ",%.6g", probs[(size_t)i * k + j]);
            fputc('\n', f);
        }
        if (cnn_out_commit(&o) != CNN_OK) {
            rc = cli_error(cmd, "--predictions: %s", cnn_errmsg());
            goto done;
        }
        printf("Wrote the predictions to %s\n", preds);
    }
    rc = CLI_OK;
done:
    cli_classes_free(&names);
    cli_confusion_free(&conf);
    cnn_free(probs);
    free(predicted);
    cnn_free(xbuf);
    cli_data_free(&dset);
    cnn_model_free(m);
    return rc;
}
