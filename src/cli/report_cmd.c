/* report_cmd.c — `cnn report`: one HTML page that shows what a trained
 * model learned (src/cli/report_html.c writes it), and reading a training
 * history back, from a CSV of `cnn train --history` or from the record a
 * model file of `cnn train` keeps. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ histories */

#define HISTORY_MAX_ROWS 100000
#define HISTORY_MAX_BYTES (16L << 20)

/* One number of a row: empty is NaN (a column the run did not have). */
static int field_num(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0) {
        *out = NAN;
        return 0;
    }
    if (len >= sizeof tmp) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int push(cli_epoch_row **rows, int *n, cli_epoch_row r)
{
    if (*n >= HISTORY_MAX_ROWS) return -1;
    cli_epoch_row *g = realloc(*rows, sizeof *g * (size_t)(*n + 1));
    if (!g) return -1;
    *rows = g;
    (*rows)[(*n)++] = r;
    return 0;
}

/* Parse rows of 6 or 7 comma-separated numbers split by `sep`; names the
 * row in msg on failure. */
static int parse_rows(const char *text, char sep, int first_line, const char *what,
                      cli_epoch_row **rows, int *n, char *msg, size_t len)
{
    static const char *const names[7] = {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                                         "seconds"};
    int line = first_line;
    for (const char *s = text, *next; *s; s = next, line++) {
        const char *end = strchr(s, sep);
        next = end ? end + 1 : s + strlen(s);
        size_t rlen = end ? (size_t)(end - s) : strlen(s);
        if (rlen && s[rlen - 1] == '\r') rlen--;
        if (rlen == 0) continue; /* a blank line (the file's last) */
        double v[7] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        const char *f = s;
        int nf = 0;
        while (nf < 7) {
            const char *comma = memchr(f, ',', (size_t)(s + rlen - f));
            size_t flen = comma ? (size_t)(comma - f) : (size_t)(s + rlen - f);
            if (field_num(f, flen, &v[nf])) {
                snprintf(msg, len, "%s %d: %s is not a number", what, line, names[nf]);
                return -1;
            }
            nf++;
            if (!comma) break;
            f = comma + 1;
            if (nf == 7) {
                snprintf(msg, len, "%s %d: more than 7 fields", what, line);
                return -1;
            }
        }
        if (nf < 6) {
            snprintf(msg, len, "%s %d: %d fields, expected epoch,lr,train_loss,train_acc,val_loss,val_acc",
                     what, line, nf);
            return -1;
        }
        if (!(v[0] >= 1 && v[0] <= 1e6 && v[0] == floor(v[0]))) {
            snprintf(msg, len, "%s %d: the epoch must be a whole number from 1", what, line);
            return -1;
        }
        if (*n > 0 && (int)v[0] <= (*rows)[*n - 1].epoch) {
            snprintf(msg, len, "%s %d: epoch %d does not follow epoch %d", what, line, (int)v[0],
                     (*rows)[*n - 1].epoch);
            return -1;
        }
        cli_epoch_row r = {(int)v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
        if (push(rows, n, r)) {
            snprintf(msg, len, "%s %d: more than %d epochs, or out of memory", what, line, HISTORY_MAX_ROWS);
            return -1;
        }
    }
    return 0;
}

int cli_history_read(const char *path, cli_epoch_row **rows, int *n, char *msg, size_t len)
{
    *rows = NULL;
    *n = 0;
    FILE *f;
    long long size;
    if (cnn_fopen_input(path, "a history file", &f, &size) != CNN_OK) {
        snprintf(msg, len, "%s", cnn_errmsg());
        return -1;
    }
    if (size > HISTORY_MAX_BYTES) {
        fclose(f);
        snprintf(msg, len, "%s: %lld bytes, more than a history of %d epochs", path, size, HISTORY_MAX_ROWS);
        return -1;
    }
    char *text = malloc((size_t)size + 1);
    size_t got = text ? fread(text, 1, (size_t)size, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!text || err) {
        free(text);
        snprintf(msg, len, "%s: %s", path, text ? "read error" : "out of memory");
        return -1;
    }
    text[got] = '\0';
    if (memchr(text, '\0', got)) {
        free(text);
        snprintf(msg, len, "%s: not a text file", path);
        return -1;
    }
    /* the header of cli_history_csv */
    const char *want = "epoch,lr,train_loss,train_acc,val_loss,val_acc";
    if (strncmp(text, want, strlen(want)) != 0) {
        free(text);
        snprintf(msg, len, "%s: line 1 is not the header '%s,seconds' of a history written by cnn "
                 "train --history", path, want);
        return -1;
    }
    const char *body = strchr(text, '\n');
    char what[4096 + 8];
    snprintf(what, sizeof what, "%s: line", path);
    int rc = body ? parse_rows(body + 1, '\n', 2, what, rows, n, msg, len) : 0;
    free(text);
    if (!rc && *n == 0) {
        snprintf(msg, len, "%s: no epochs", path);
        rc = -1;
    }
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

int cli_history_from_model(const cnn_model *m, cli_epoch_row **rows, int *n, char *msg, size_t len)
{
    *rows = NULL;
    *n = 0;
    const char *h = cnn_model_get_meta(m, "train.history");
    if (!h || !*h) return 0;
    if (parse_rows(h, ';', 1, "train.history: row", rows, n, msg, len)) {
        free(*rows);
        *rows = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the command */

/* Whether two paths name one existing file. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino && S_ISREG(sa.st_mode);
}

int cli_report(int argc, char **argv)
{
    const char *cmd = "report";
    const char *model = NULL, *dataset = NULL, *data = NULL, *history = NULL, *out = NULL;
    const char *mem_limit = NULL;
    int test_limit = 0, threads = 0, no_live = 0;
    cli_opt opts[] = {
        {"model", CLI_STR, &model, 0, 0, "FILE", "the model file (.safetensors)", "required", 0},
        {"out", CLI_STR, &out, 0, 0, "FILE.html", "where to write the page", "required", 0},
        {"dataset", CLI_STR, &dataset, 0, 0, "mnist|fashion", "test images of a known data set under data/", "none", 0},
        {"data", CLI_STR, &data, 0, 0, "PATH", "test images from a data set: a folder of IDX files, CSV files or class folders, or a CSV file (as `cnn train --data`)", "none", 0},
        {"history", CLI_STR, &history, 0, 0, "FILE.csv", "the training history (cnn train --history)", "the model's own", 0},
        {"test-limit", CLI_INT, &test_limit, 0, 100000000, "N", "use the first N test images only; 0 = all", "0 (all)", 0},
        {"no-live", CLI_FLAG, &no_live, 0, 0, NULL, "leave out the live panel (the model's weights and the WebAssembly module)", NULL, 0},
        {"threads", CLI_INT, &threads, 0, 1024, "N", "threads for the kernels; 0 = all cores", NULL, 0},
        {"mem-limit", CLI_STR, &mem_limit, 0, 0, "SIZE", CLI_MEM_LIMIT_HELP, CLI_MEM_LIMIT_DEFAULT, 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    int rc = cli_parse_or_help(cmd, argc, argv, opts, NULL, 0, NULL,
        "--model FILE [--data DIR | --dataset mnist|fashion] --out FILE.html",
        "Write one self-contained HTML page (no network, no other file) that shows what\n"
        "a trained model learned: its architecture, the training curves, the\n"
        "classification report and a confusion matrix whose cells show their test\n"
        "images, the most confidently wrong images, every conv layer's filters and\n"
        "the test patches that excite them most, the feature maps of chosen test\n"
        "images after every layer, a convolution explained pixel by pixel with the\n"
        "real numbers, and statistics of every layer.\n"
        "\n"
        "A live panel runs the model in the page itself (cnn's C code compiled to\n"
        "WebAssembly): draw a digit or drop a picture and watch every layer and the\n"
        "prediction follow it.\n"
        "\n"
        "Without --data or --dataset the page shows the architecture, the curves,\n"
        "the filters and the weights, and says why the rest is absent.\n"
        "The history is the --history CSV, or the one a model file of cnn train\n"
        "keeps. cnn train --report FILE writes the same page at the end of a run.\n"
        "\n"
        "  cnn train --arch lenet5 --epochs 5 --out lenet5.safetensors\n"
        "  cnn report --model lenet5.safetensors --dataset mnist --out lenet5.html");
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!model) return cli_usage_error(cmd, "--model FILE is required");
    if (!out) return cli_usage_error(cmd, "--out FILE.html is required");
    if (data && dataset) return cli_usage_error(cmd, "--data and --dataset conflict: give one");
    if (dataset && strcmp(dataset, "mnist") != 0 && strcmp(dataset, "fashion") != 0)
        return cli_usage_error(cmd, "--dataset: expected mnist or fashion, got '%s'", dataset);
    if (same_file(out, model)) return cli_usage_error(cmd, "--out %s is the model file: give another name", out);
    if (same_file(out, history))
        return cli_usage_error(cmd, "--out %s is the history file: give another name", out);
    if ((rc = cli_set_mem_limit(cmd, mem_limit))) return rc;
    if (cnn_check_writable(out) != CNN_OK) return cli_error(cmd, "--out: %s", cnn_errmsg());

    double t0 = cli_now();
    cnn_model *m = NULL;
    cli_data dset = {0};
    cli_epoch_row *rows = NULL;
    int nrows = 0;
    char msg[4608], note[4700] = "", from[4200] = "", dir[4096] = "", data_name[4200] = "",
         no_data[1024] = "";
    if ((rc = cli_load_model(cmd, model, &m))) return rc;

    /* the history: the CSV given, else the model's own */
    if (history) {
        if (cli_history_read(history, &rows, &nrows, msg, sizeof msg)) {
            rc = cli_error(cmd, "--history: %s", msg);
            goto done;
        }
        snprintf(from, sizeof from, "%s", history);
    } else if (cli_history_from_model(m, &rows, &nrows, msg, sizeof msg)) {
        snprintf(note, sizeof note, "the history stored in %s cannot be read (%s): give --history FILE.csv",
                 model, msg);
    } else if (nrows > 0) {
        snprintf(from, sizeof from, "the record in %s", model);
    }

    /* the test images, when asked for */
    if (data || dataset) {
        cli_data_opts dopt = {dataset ? dataset : "mnist", data, 0, 0, 0, CNN_PREP_PAD, 0.2, 1,
                              NULL, 0, 0};
        if ((rc = cli_data_for_model(cmd, m, model, &dopt, 1, &dset))) goto done;
        snprintf(dir, sizeof dir, "%s", dset.where);
        snprintf(data_name, sizeof data_name, "%s (%s)", data ? "test images" : dataset, dir);
    } else {
        const char *ds = cnn_model_get_meta(m, "dataset");
        if (ds && (!strcmp(ds, "mnist") || !strcmp(ds, "fashion")))
            snprintf(no_data, sizeof no_data,
                     "No test images were given. The model was trained on %s: "
                     "cnn report --model %s --dataset %s --out PAGE.html adds them.", ds, model, ds);
        else
            snprintf(no_data, sizeof no_data,
                     "No test images were given: cnn report --data PATH (the data set's folder or CSV file) or "
                     "--dataset mnist|fashion adds them.");
        fprintf(stderr, "cnn report: no --data or --dataset: the page shows the architecture, the "
                        "filters and the weights only\n");
    }

    cnn_set_threads(threads);
    if (cnn_model_set_batch(m, 256) != CNN_OK) {
        rc = cli_error(cmd, "%s", cnn_errmsg());
        goto done;
    }
    cli_report_in in = {
        .model_name = model, .test = dset.test.n > 0 ? &dset.test : NULL, .ntest = test_limit,
        .data_name = data_name, .no_data = no_data, .rows = rows, .nrows = nrows,
        .history_from = from, .history_note = note[0] ? note : NULL,
        .progress = isatty(fileno(stderr)), .no_live = no_live,
    };
    size_t bytes = 0;
    if ((rc = cli_report_html(cmd, m, &in, out, &bytes))) goto done;
    printf("Wrote the report to %s (%.1f MB) in %.1f s\n", out, (double)bytes / 1e6, cli_now() - t0);
    rc = CLI_OK;
done:
    free(rows);
    cli_data_free(&dset);
    cnn_model_free(m);
    return rc;
}
