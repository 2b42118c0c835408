/* xor_conv.c — the smallest program built against an installed libcnn.
 *
 * It builds a tiny convolutional net from an architecture text, trains it
 * to tell horizontal bars from vertical bars in 6x6 images, and prints the
 * accuracy. Build it with pkg-config:
 *
 *   cc xor_conv.c $(pkg-config --cflags --libs cnn) -o xor_conv
 */
#include <cnn.h>

#include <stdio.h>
#include <string.h>

static const char *arch =
    "input 1x6x6\n"
    "conv 4 3x3 pad=1\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 2\n"
    "softmax\n";

int main(void)
{
    enum { N = 32 };
    float x[N * 36];
    uint8_t y[N];
    /* image i: a bar at row/column (i / 2) % 6, horizontal when i is even */
    memset(x, 0, sizeof x);
    for (int i = 0; i < N; i++) {
        int pos = (i / 2) % 6;
        y[i] = (uint8_t)(i % 2);
        for (int k = 0; k < 6; k++)
            x[i * 36 + (y[i] ? k * 6 + pos : pos * 6 + k)] = 1.0f;
    }

    cnn_model *m;
    if (cnn_model_from_text(arch, "xor_conv", &m) != CNN_OK) {
        fprintf(stderr, "xor_conv: %s\n", cnn_errmsg());
        return 1;
    }
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_MOMENTUM);
    oc.lr = 0.1f;
    if (cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 7) || cnn_model_set_batch(m, N) ||
        cnn_model_set_optimizer(m, &oc)) {
        fprintf(stderr, "xor_conv: %s\n", cnn_errmsg());
        cnn_model_free(m);
        return 1;
    }
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st = {0, 0};
    for (int step = 0; step < 100; step++)
        if (cnn_model_train_batch(m, x, y, N, loss, &st) != CNN_OK) {
            fprintf(stderr, "xor_conv: %s\n", cnn_errmsg());
            cnn_model_free(m);
            return 1;
        }
    cnn_model_eval_batch(m, x, y, N, loss, &st);
    printf("cnn %s (%s kernels): %zu parameters, loss %.4f, accuracy %d/%d\n", CNN_VERSION,
           cnn_simd_name(), cnn_model_num_params(m), st.loss, st.correct, N);
    cnn_model_free(m);
    return st.correct == N ? 0 : 1;
}
