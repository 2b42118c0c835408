/* cli.h — what the files of the `cnn` program share: option parsing, error
 * reporting, data sets, metrics, and the subcommands themselves.
 *
 * Exit codes: 0 success, 1 bad data / model / I/O (or a numeric fault),
 * 2 a usage error (bad flag or value), 128 + the signal when stopped by one
 * (130 for Ctrl-C, 143 for SIGTERM). */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include "cnn.h"
#include "internal.h"
#include "io/dataset.h"

#include <stdint.h>
#include <stdio.h>

#define CLI_OK 0
#define CLI_EDATA 1
#define CLI_EUSAGE 2
#define CLI_EINTR 130
/* Returned by a loop that saw its stop flag set; never an exit code. */
#define CLI_STOPPED (-2)

#include <signal.h>

/* The program's name as it was run (argv[0]), for commands printed to be
 * run again. */
extern const char *cli_program;

/* ------------------------------------------------------------ subcommands */

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_report(int argc, char **argv);

/* ------------------------------------------------------------- messages */

/* "cnn <cmd>: message" + "Try 'cnn <cmd> --help'." on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "cnn <cmd>: message" on stderr; returns 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code for a library failure: 2 for CNN_ERR_ARG, else 1. */
int cli_status_exit(cnn_status s);

/* -------------------------------------------------------------- options */

typedef enum {
    CLI_INT,   /* int *, range [lo, hi] */
    CLI_U64,   /* uint64_t * (seeds) */
    CLI_FLOAT, /* double *, range [lo, hi] */
    CLI_FLOAT_ABOVE, /* double *, range (lo, hi]: lo itself is refused */
    CLI_STR,   /* const char ** (checked by the command) */
    CLI_FLAG   /* int *, set to 1; takes no value */
} cli_kind;

typedef struct {
    const char *name;  /* without the dashes: "epochs" */
    cli_kind kind;
    void *dest;
    double lo, hi;     /* CLI_INT / CLI_FLOAT */
    const char *meta;  /* value placeholder in --help: "N", "FILE" */
    const char *help;
    const char *def;   /* default shown in --help; NULL: print *dest */
    int given;         /* set by cli_parse when the flag appears */
} cli_opt;

/* Parse argv[1..] (argv[0] is the subcommand) against opts (terminated by an
 * entry with name == NULL). Positional arguments are collected in pos (up to
 * max_pos; pass max_pos 0 to refuse any). Returns CLI_OK, CLI_EUSAGE after
 * printing the message, or -1 if --help was printed (exit 0). */
int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, char **pos, int max_pos,
              int *npos);
/* cli_parse for a command: on --help its help (cli_print_help with
 * synopsis and about) is printed to stdout and -1 returned (exit 0). */
int cli_parse_or_help(const char *cmd, int argc, char **argv, cli_opt *opts, char **pos,
                      int max_pos, int *npos, const char *synopsis, const char *about);
/* Print "Usage: cnn <cmd> <synopsis>", the description and every option
 * with its default. */
void cli_print_help(FILE *f, const char *cmd, const char *synopsis, const char *about,
                    const cli_opt *opts);
/* Set one option from text (the parser's checks and messages). */
int cli_opt_set(const char *cmd, cli_opt *o, const char *text);
/* The same checks without printing: 0, or -1 with the reason in msg
 * ("expected a whole number from 1 to 100000, got 'x'"). */
int cli_opt_check(const cli_opt *o, const char *text, char *msg, size_t len);
/* The option's current value as text that cli_opt_set reads back exactly. */
void cli_opt_format(const cli_opt *o, char *buf, size_t len);
cli_opt *cli_opt_find(cli_opt *opts, const char *name);

/* Each command's options: the defaults into its configuration and the
 * table cli_parse reads into opts (the command's NOPTS entries and the
 * terminating one). `cnn train`'s are in src/cli/train.h. */
typedef struct {
    const char *model, *dataset, *data, *preds, *kernels, *mem_limit, *cache_dir;
    int test_limit, threads, batch, strict;
    double test_split;
} eval_cfg;
#define EVAL_NOPTS 12
void cli_eval_options(eval_cfg *c, cli_opt *opts);

typedef struct {
    const char *model, *grid, *mem_limit, *prep, *csv;
    int top, threads, scale;
} predict_cfg;
#define PREDICT_NOPTS 8
#define CLI_PREDICT_MAX_IMAGES 4096 /* image files on one command line */
void cli_predict_options(predict_cfg *c, cli_opt *opts);

typedef struct {
    const char *arch, *model;
} info_cfg;
#define INFO_NOPTS 2
void cli_info_options(info_cfg *c, cli_opt *opts);

/* --------------------------------------------------------------- models */

/* The presets compiled from models/NAME.txt (NULL-terminated). */
extern const struct cnn_preset {
    const char *name;
    const char *text;
} cnn_presets[];
/* The architecture text of a preset, or NULL. */
const char *cli_preset(const char *name);
/* A preset name or an architecture file. Returns 0, or 1/2 after printing. */
int cli_build_model(const char *cmd, const char *arch, cnn_model **out);
/* Load a model file; 0 or 1 after printing. */
int cli_load_model(const char *cmd, const char *path, cnn_model **out);
/* An architecture's layers and shapes without its parameters (for `cnn
 * info`: a table in a few kilobytes whatever the model's size). */
int cli_build_shapes(const char *cmd, const char *arch, cnn_model **out);
/* "--kernels ref|fast" */
int cli_parse_kernels(const char *cmd, const char *s, cnn_kernels *out);

/* --------------------------------------------------------------- memory */

/* --mem-limit SIZE: bytes ("1073741824"), with a binary unit ("512M",
 * "1.5G", "2GiB"; K, M, G, T, optionally followed by B or iB), or a share
 * of the memory ("50%"). Sets the library's limit; NULL sets the default
 * (80% of the memory). Returns 0, or 2 after printing for junk. */
int cli_set_mem_limit(const char *cmd, const char *text);
/* The same text checked without applying it or reading anything: a size in
 * bytes (*bytes in [1, 2^64), *percent 0) or a share of the memory
 * (*percent in (0, 100], *bytes 0). Returns 0, or -1 for junk. */
int cli_mem_limit_parse(const char *text, double *bytes, double *percent);
#define CLI_MEM_LIMIT_HELP "the memory the run may use: bytes, K/M/G/T, or a % of the memory"
#define CLI_MEM_LIMIT_DEFAULT "80%"

/* ----------------------------------------------------------------- data */

/* Class names. A model stores them as its "classes" metadata, a comma-
 * separated list: name i for output i. A name is 1 to CLI_CLASS_NAME_MAX
 * bytes of UTF-8 text without commas or control characters, kept whole;
 * outputs past the end of the list are named by their index ("7"). A list
 * that breaks these rules (more names than outputs, an empty, overlong or
 * non-UTF-8 name, the same name twice) is refused up front, naming the
 * entry, so no report ever shows a wrong or ambiguous name. */
#define CLI_CLASS_NAME_MAX 100
typedef struct {
    int n;          /* names given; the model may have more outputs */
    char **names;
} cli_classes;

/* A data set's images as the model reads them (c x h x w bytes each, the
 * model's input shape): in memory (IDX files) or in a cache file (image
 * folders, CSV files). */
typedef struct {
    int n, c, h, w;
    const uint8_t *labels;  /* n labels */
    const uint8_t *images;  /* n images in memory, or NULL: read from the cache */
    cnn_dataset idx;        /* what an IDX store owns */
    cnn_cache cache;        /* what a cached store owns */
    uint8_t *scratch;       /* one image read from the cache file */
    int classes;            /* 1 + the largest label */
    char where[4096];       /* the folder or file it came from */
} cli_store;

/* Part of a store: n images, by index. */
typedef struct {
    cli_store *store;
    int n;
    int *idx;   /* n indices into the store (owned), or NULL: first, first + 1, ... */
    int first;
} cli_split;

/* Store index of image i of a split. */
static inline int cli_split_index(const cli_split *s, int i)
{
    return s->idx ? s->idx[i] : s->first + i;
}
/* Image i of a split (valid until the next call: it may be read into the
 * store's scratch buffer) and its label. */
const uint8_t *cli_split_image(const cli_split *s, int i);
static inline int cli_split_label(const cli_split *s, int i)
{
    return s->store->labels[cli_split_index(s, i)];
}

/* What to load: the source, the model's input and how to convert to it. */
typedef struct {
    const char *dataset;   /* --dataset (used when data is NULL) */
    const char *data;      /* --data: a folder or a file, or NULL */
    int c, h, w;           /* the model's input */
    cnn_prep prep;
    double test_split;     /* a single source: the share held out for testing */
    uint64_t split_seed;   /* and the seed of that cut */
    const char *cache_dir; /* --cache-dir, or NULL */
    int strict;            /* --strict: refuse an undecodable picture */
    int quiet;             /* print no line about the cache */
} cli_data_opts;

/* A data set found and loaded: its training, validation (DIR/val only)
 * and test splits and its class names. */
typedef struct {
    char kind[16];          /* "idx", "folder", "csv", "cache" */
    char where[4096];       /* the --data path or the known data set's folder */
    cli_store store[3];     /* train, test, val: n 0 when absent */
    cli_split train, val, test;
    int single;             /* 1: one source cut into train and test by test_split */
    int classes;            /* the larger of the splits' label counts */
    cli_classes names;      /* the data set's class names */
    int named;              /* 1: names of its own (folders, a known data set, a cache
                               file); 0: its labels' numbers (custom IDX, CSV) */
} cli_data;

/* Find and load a data set (detected by content: a folder of IDX files; a
 * folder of train.csv and test.csv; a folder with train/ and test/ (and
 * val/) image-folder trees; an image-folder tree; a CSV file; a cache
 * file) and convert it to the model's input. Prints a line per cache
 * opened or built unless quiet. Returns 0, or 1 (2 for a usage error)
 * after printing. */
int cli_data_load(const char *cmd, const cli_data_opts *o, cli_data *d);
void cli_data_free(cli_data *d);
/* The preparation a data set is read with when the model or the command
 * line does not say: digit for --dataset mnist, pad for anything else. */
cnn_prep cli_default_prep(const char *dataset, const char *data);
/* 0 if the two class lists agree; else 1 after printing both, naming
 * `what_a` and `what_b`. */
int cli_classes_agree(const char *cmd, const char *what_a, const cli_classes *a,
                      const char *what_b, const cli_classes *b);
/* The model's preparation ("prep" metadata): what it records, or digit
 * for an older 1x28x28 model without the key, pad for any other. 0, or 1
 * after printing for an unknown value. */
int cli_prep_from_model(const char *cmd, const cnn_model *m, cnn_prep *out);
/* Load the data set o names for the model m (file name `model`), as `cnn
 * eval` reads it: in the model's input shape and preparation, cut as its
 * training run cut it when split_from_model, with no more classes than its
 * outputs and class names that agree with its own. 0, or the exit code
 * after printing. */
int cli_data_for_model(const char *cmd, const cnn_model *m, const char *model, cli_data_opts *o,
                       int split_from_model, cli_data *d);

/* The names of the k classes of a data set: a known one's (fashion), or
 * "0".."k-1". 0, or -1 if out of memory. */
int cli_default_classes(const char *dataset, int k, cli_classes *c);
/* The class names a model stores, checked against its outputs. Returns 0,
 * or 1 after printing why the list is refused. */
int cli_classes_from_model(const char *cmd, const cnn_model *m, cli_classes *c);
/* "a,b,c", malloc'd (NULL if out of memory). */
char *cli_classes_join(const cli_classes *c);
void cli_classes_free(cli_classes *c);
/* Class i's name: the stored one, or its index written into buf. */
const char *cli_class_name(const cli_classes *c, int i, char buf[16]);
/* Columns a UTF-8 string takes on a terminal (one per character). */
int cli_text_width(const char *s);

/* Input normalisation: x = (pixel / 255 - mean) / std, per channel, as
 * 256-entry tables so every command converts a pixel to exactly the same
 * float. One channel's values apply to every channel. */
#define CLI_NORM_MAX 4
typedef struct {
    int channels;
    float mean[CLI_NORM_MAX], std[CLI_NORM_MAX];
    float lut[CLI_NORM_MAX][256];
} cli_norm;
void cli_norm_init(cli_norm *nm, float mean, float std);
void cli_norm_init_channels(cli_norm *nm, int channels, const float *mean, const float *std);
/* Mean and standard deviation of n pixels (as 0..1). */
void cli_pixel_stats(const uint8_t *px, size_t n, double *mean, double *std);
/* Per channel over every image of a split (the training pixels). */
void cli_split_stats(const cli_split *s, cli_norm *nm);
/* The model's stored normalisation (defaults 0 / 1 if absent): one value,
 * or one per input channel, comma-separated. A mean or std that cannot turn
 * every pixel into a finite input (std zero, denormal or not a number; a
 * mean so large the division overflows) is refused, naming the field:
 * returns 1 after printing. */
int cli_norm_from_model(const char *cmd, const cnn_model *m, cli_norm *nm);
/* Record nm as the model's norm_mean and norm_std. 0, or 1 after printing. */
int cli_norm_to_model(const char *cmd, cnn_model *m, const cli_norm *nm);
/* Images pos[first .. first + n) of a split (pos NULL: first .. first + n)
 * into x (n, c, h, w), normalised, and their labels. */
void cli_batch(const cli_split *s, const int *pos, int first, int n, const cli_norm *nm,
               float *x, uint8_t *labels);
/* The same with only the rows [row0, row0 + rows) of x read and prepared
 * (the rows this MPI rank runs: cnn_shards_rows); labels for all n. */
void cli_batch_rows(const cli_split *s, const int *pos, int first, int n, int row0, int rows,
                    const cli_norm *nm, float *x, uint8_t *labels);
/* One image's c planes of h x w pixels, normalised. */
void cli_normalise(const uint8_t *img, int c, size_t plane, const cli_norm *nm, float *x);

/* Random shift (up to `shift` px) and rotation (up to `degrees`) of one
 * h x w image, bilinear, written normalised into out. */
void cli_augment(const uint8_t *img, int c, int h, int w, float shift, float degrees, cnn_rng *r,
                 const cli_norm *nm, float *out);
/* The RNG draws one image's augmentation takes, whatever the image. */
#define CLI_AUGMENT_DRAWS 3
/* Advance r past `images` images' augmentations without making them. */
void cli_augment_skip(cnn_rng *r, int images);

/* Probabilities from model outputs: copies if the model ends in softmax, else
 * a softmax per row. */
void cli_probabilities(const cnn_model *m, const float *out, int n, int k, float *p);

/* Run the model over a whole data set (eval mode) in batches of the model's
 * max batch. Writes predicted[i] (a class index: a model may have more
 * outputs than a byte holds) and, if probs != NULL, the n x k
 * probabilities; returns the mean loss in *loss if non-NULL. If stop is
 * not NULL it is looked at between batches: once it is set the pass ends
 * with CLI_STOPPED (nothing printed). */
int cli_predict_all(const char *cmd, cnn_model *m, const cli_split *d, int count,
                    const cli_norm *nm, float *xbuf, cnn_loss loss, int *predicted,
                    float *probs, double *mean_loss, int *correct,
                    const volatile sig_atomic_t *stop);

/* ---------------------------------------------------------------- report */

/* Every (true, predicted) pair of a test: memory grows with the images,
 * not with the square of the classes, so a model of any output size has a
 * report. */
typedef struct {
    int k;
    int *truth, *pred;
    long n, cap;
    long total, correct;
    int lost;          /* pairs dropped for want of memory (the report says so) */
} cli_confusion;
int cli_confusion_init(cli_confusion *c, int k);
void cli_confusion_add(cli_confusion *c, int truth, int predicted);
void cli_confusion_free(cli_confusion *c);
/* The seed's table (Class Precision Recall F1-Score Support, Accuracy,
 * Macro avg, Weighted avg) and the confusion matrix. Up to
 * CLI_REPORT_ALL_CLASSES outputs every class has a row and a column; a
 * larger model's report lists the classes that occur (as a true class or a
 * prediction) and, when those are too many for a matrix, the most
 * frequent confusions instead of it. */
#define CLI_REPORT_ALL_CLASSES 20
void cli_report_print(FILE *f, const cli_confusion *c, const cli_classes *names);

/* ---------------------------------------------------------------- plots */

typedef struct {
    int epoch;          /* 1-based */
    double lr, train_loss, train_acc, val_loss, val_acc, seconds; /* NaN: none */
} cli_epoch_row;
/* An SVG with two panels (loss, accuracy) of train and validation curves,
 * and the same numbers as CSV; both written atomically. */
cnn_status cli_plot_svg(const char *path, const char *title, const cli_epoch_row *rows, int n);
cnn_status cli_history_csv(const char *path, const cli_epoch_row *rows, int n);

/* ----------------------------------------------------------- report page */

/* What the report page is made from besides the model (src/cli/report_html.c). */
typedef struct {
    const char *model_name;       /* the model file as the user named it (the title) */
    const cli_split *test;        /* the test images, or NULL: the page says why not */
    int ntest;                    /* use the first ntest of them (0: all) */
    const char *data_name;        /* where they come from, e.g. "mnist (data/mnist)" */
    const char *no_data;          /* why there are none (test == NULL) */
    const cli_epoch_row *rows;    /* the training history, or NULL */
    int nrows;
    const char *history_from;     /* where the history comes from */
    const char *history_note;     /* why there is none (rows == NULL), or NULL */
    int progress;                 /* say on stderr what takes time */
    int no_live;                  /* leave out the live panel (the page says so) */
} cli_report_in;
/* Write the report page of m (one self-contained HTML file) to path,
 * atomically; *bytes gets its size. m must be ready to run (weights, a
 * batch set); its class names and normalisation are its metadata's.
 * Returns 0, or the exit code after printing. */
int cli_report_html(const char *cmd, cnn_model *m, const cli_report_in *in, const char *path,
                    size_t *bytes);
/* The live panel's part of the page (src/cli/report_live.c): a JSON object
 * with the WebAssembly module (base64), the model's tensors in state_dict
 * order (base64 float32, little-endian) and its preparation, or
 * {"absent": why} when the panel cannot be offered (no module in this
 * build, no_live, a model the panel cannot take, or a page that would grow
 * past 5 MB from page_bytes without the panel). Safe inside a <script>
 * element. malloc'd, *len its length; NULL when out of memory. */
char *cli_report_live_json(cnn_model *m, int no_live, size_t page_bytes, size_t *len);
/* A history CSV as cli_history_csv writes it (epoch,lr,train_loss,...),
 * read back; rows malloc'd. Returns 0, or -1 with the reason in msg. */
int cli_history_read(const char *path, cli_epoch_row **rows, int *n, char *msg, size_t len);
/* The history a model file written by cnn train keeps (train.history);
 * 0 (n = 0 if there is none), or -1 with the reason in msg. */
int cli_history_from_model(const cnn_model *m, cli_epoch_row **rows, int *n, char *msg, size_t len);

/* -------------------------------------------------------------- progress */

typedef struct {
    int tty;
    int epoch, epochs;
    long total, done;
    double t0, last_draw;
    double loss_sum;
    long loss_n;
} cli_progress;
double cli_now(void);
void cli_progress_start(cli_progress *p, int epoch, int epochs, long total);
void cli_progress_update(cli_progress *p, long done, double loss_sum, long loss_n);
void cli_progress_end(cli_progress *p);

/* ------------------------------------------------------------------ grid */

/* A PNG of n h x w images scaled by `scale`, in a grid, each with its label
 * text drawn under it (lines split by '\n'), written atomically. marks
 * (NULL: none) frames each image: 0 thinly, CLI_GRID_WRONG thickly in black,
 * for a wrong prediction. */
#define CLI_GRID_WRONG 2
cnn_status cli_grid_png(const char *path, const uint8_t *images, int n, int h, int w,
                 const char *const *labels, const int *marks, int scale);

/* ------------------------------------------------------- predict's output */

/* The class a picture's folder names (".../7/img.png" -> the index of class
 * "7"), or -1 when the folder's name is none of the model's k classes. */
int cli_true_label(const char *path, const cli_classes *names, int k);
/* A grid caption: the file's name (its end when long), the prediction, and
 * with a known true label "right" or "WRONG: is <truth>". malloc'd; NULL
 * when out of memory. */
char *cli_grid_caption(const char *path, const char *predicted, float p, const char *truth, int wrong);
/* The predictions as CSV, written atomically: file, true (the folder's
 * class, or empty), predicted, probability, correct (1, 0, or empty), then
 * top1, p1 ... topK, pK. order holds each picture's `top` classes, most
 * likely first; probs its k probabilities. */
cnn_status cli_predictions_csv(const char *path, int n, char *const *files, const int *truth,
                               const float *probs, const int *order, int k, int top,
                               const cli_classes *names);

#endif
