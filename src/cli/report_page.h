/* report_page.h — what the files that write the report page share:
 * report_html.c (the page, and its sections about the model) and
 * report_test.c (its sections about the test set), both writing with
 * report_json.h. */
#ifndef CNN_CLI_REPORT_PAGE_H
#define CNN_CLI_REPORT_PAGE_H

#include "cli/cli.h"
#include "cli/report_json.h"

#define MAX_PICKS 32 /* images whose feature maps the page holds */
#define HIST_BINS 24

/* The shape (c, h, w) of activation a: 0 the input, i + 1 layer i's output. */
void shape_of(cnn_model *m, int a, int *c, int *h, int *w);
size_t act_size(cnn_model *m, int a);
/* Whether layer `layer` is of kind k ("conv", "dropout", ...). */
int is_kind(cnn_model *m, int layer, const char *k);
/* The activation whose numbers activation a repeats: dropout (in eval
 * mode) and flatten pass their input on unchanged. */
int same_as(cnn_model *m, int a);

/* Statistics of an array, with a histogram of HIST_BINS bins if asked. */
typedef struct {
    double mean, std, min, max, zeros;
    long hist[HIST_BINS];
} stats;
void stats_of(const float *x, size_t n, stats *s, int with_hist);

/* Receptive field of each activation along one axis: output index o of
 * activation a covers input rows [start + o*jump, start + o*jump + size). */
typedef struct {
    int valid; /* a spatial activation whose field is known */
    long size_y, size_x, jump_y, jump_x, start_y, start_x;
} field;
/* rf[a] for every activation a (nlayers + 1 of them). */
void receptive_fields(cnn_model *m, field *rf);

/* The test set's sections: the classification report's counts, the cells,
 * the wrong images, the feature maps (with their statistics into
 * act_stats, the number of images into *npicks), the patches and the
 * image store. Returns 0, or the exit code after printing. */
int report_test(page *pg, cnn_model *m, const cli_report_in *in, const cli_norm *nm,
                stats *act_stats, int *npicks);

#endif
