/* infer.c — running a model over a data set in eval mode (the outputs
 * become probabilities in norm.c). */
#include "cli/cli.h"
#include "model/model.h"

#include <math.h>
#include <string.h>

static int argmax(const float *o, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (o[j] > o[best]) best = j;
    return best;
}

int cli_predict_all(const char *cmd, cnn_model *m, const cli_split *d, int count,
                    const cli_norm *nm, float *xbuf, cnn_loss loss, int *predicted,
                    float *probs, double *mean_loss, int *correct,
                    const volatile sig_atomic_t *stop)
{
    int bs = cnn_model_max_batch(m);
    int k = cnn_model_output_size(m);
    double loss_sum = 0.0;
    int right = 0;
    uint8_t labels[4096];
    if (bs > 4096) bs = 4096;
    for (int first = 0; first < count; first += bs) {
        if (stop && *stop) return CLI_STOPPED;
        int n = count - first < bs ? count - first : bs;
        /* under MPI, only the rows of this rank's shards */
        int row0, rows;
        cnn_shards_rows(m, n, 0, mean_loss ? &loss : NULL, &row0, &rows);
        cli_batch_rows(d, NULL, first, n, row0, rows, nm, xbuf, labels);
        cnn_status s;
        /* the loss needs the loss layer's view (fused softmax, ...), the
         * predictions the model's outputs: run only what the caller asked */
        if (mean_loss) {
            cnn_batch_stats st;
            s = cnn_model_eval_batch(m, xbuf, labels, n, loss, &st);
            if (s != CNN_OK)
                return cli_error(cmd, "evaluating images %d..%d: %s", first, first + n - 1,
                                 cnn_errmsg());
            loss_sum += st.loss * n;
            if (!predicted && !probs) right += st.correct;
        }
        if (predicted || probs || !mean_loss) {
            const float *out;
            s = cnn_model_forward(m, xbuf, n, 0, &out);
            if (s != CNN_OK)
                return cli_error(cmd, "evaluating images %d..%d: %s", first, first + n - 1,
                                 cnn_errmsg());
            for (int i = 0; i < n; i++) {
                int p = argmax(out + (size_t)i * k, k);
                if (predicted) predicted[first + i] = p;
                right += p == labels[i];
            }
            if (probs) cli_probabilities(m, out, n, k, probs + (size_t)first * k);
        }
    }
    if (mean_loss) *mean_loss = count ? loss_sum / count : NAN;
    if (correct) *correct = right;
    return CLI_OK;
}
