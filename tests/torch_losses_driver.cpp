/* torch_losses_driver.cpp — our side of tests/torch_losses.py: one SGD step
 * for every loss with every ending, written out for PyTorch to repeat.
 *
 * usage: torch_losses_driver DIR
 *
 * The model is conv 4 3x3 + relu + maxpool 2 + flatten + dense 5 on 1x8x8
 * images, then a final softmax, a final sigmoid or nothing. For each loss
 * (xent, cce, bce, hinge, mse, mae, huber, huber:0.3), each ending and each
 * path (reference kernels, fast kernels, fast kernels on a batch cut into
 * shards by two threads), it initialises the model from a fixed seed, saves
 * it (<case>.before.safetensors), trains one SGD step on a fixed batch and
 * saves the result (<case>.after.safetensors). DIR/x<N>.f32 and
 * DIR/y<N>.u8 hold the batches of N images; DIR/cases.tsv lists one line per
 * case:
 *   step    <case> <loss> <ending> <path> <n> <lr> <loss value>
 *   refused <case> <loss> <ending> <path> <message>
 * A refused pair (cce without a final softmax) must be refused by the check,
 * evaluation and training alike, leaving the weights as they were; the
 * driver exits 1 if not. */
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
#include "model/model.h"
}

namespace {

const char *const kLosses[] = {"xent", "cce", "bce", "hinge", "mse", "mae", "huber", "huber:0.3"};
const char *const kEndings[] = {"softmax", "sigmoid", "none"};
const char *const kPaths[] = {"ref", "fast", "shards"};
const float kLr = 0.5f;

std::string arch_for(const std::string &ending)
{
    std::string a = "input 1x8x8\n"
                    "conv 4 3x3 pad=1\n"
                    "relu\n"
                    "maxpool 2\n"
                    "flatten\n"
                    "dense 5\n";
    if (ending != "none") a += ending + "\n";
    return a;
}

bool write_file(const std::string &path, const void *data, size_t bytes)
{
    FILE *f = fopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, bytes, f) == bytes;
    return fclose(f) == 0 && ok;
}

/* Every tensor's values, in order. */
std::vector<float> weights(cnn_model *m)
{
    std::vector<float> all;
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        cnn_model_tensor(m, i, &t);
        all.insert(all.end(), t.data, t.data + t.size);
    }
    return all;
}

int fail(const std::string &what)
{
    fprintf(stderr, "torch_losses_driver: %s: %s\n", what.c_str(), cnn_errmsg());
    return 1;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: torch_losses_driver DIR\n");
        return 2;
    }
    const std::string dir = argv[1];

    /* the batches: 8 images for the whole-batch paths, 32 for the shards */
    const int sizes[2] = {8, 32};
    std::vector<float> xs[2];
    std::vector<uint8_t> ys[2];
    for (int b = 0; b < 2; b++) {
        const int n = sizes[b];
        cnn_rng r;
        cnn_rng_seed(&r, 17 + b);
        xs[b].resize((size_t)n * 64);
        for (float &v : xs[b]) v = cnn_rng_normal(&r);
        ys[b].resize(n);
        for (int i = 0; i < n; i++) ys[b][i] = (uint8_t)cnn_rng_below(&r, 5);
        const std::string sn = std::to_string(n);
        if (!write_file(dir + "/x" + sn + ".f32", xs[b].data(), xs[b].size() * sizeof(float)) ||
            !write_file(dir + "/y" + sn + ".u8", ys[b].data(), ys[b].size())) {
            fprintf(stderr, "torch_losses_driver: cannot write the batches to %s\n", dir.c_str());
            return 1;
        }
    }

    FILE *list = fopen((dir + "/cases.tsv").c_str(), "w");
    if (!list) {
        fprintf(stderr, "torch_losses_driver: cannot write %s/cases.tsv\n", dir.c_str());
        return 1;
    }
    int rc = 0;
    for (const char *lname : kLosses)
        for (const char *ending : kEndings)
            for (int p = 0; p < 3; p++) {
                std::string name = std::string(lname) + "-" + ending + "-" + kPaths[p];
                for (char &ch : name)
                    if (ch == ':') ch = '_';
                const int b = p == 2 ? 1 : 0, n = sizes[b];
                cnn_loss loss;
                if (cnn_loss_parse(lname, &loss) != CNN_OK) return fail(name);
                cnn_set_threads(p == 2 ? 2 : 1);
                cnn_model *m = nullptr;
                if (cnn_model_from_text(arch_for(ending).c_str(), name.c_str(), &m) != CNN_OK)
                    return fail(name);
                cnn_model_set_kernels(m, p == 0 ? CNN_KERNELS_REF : CNN_KERNELS_FAST);
                cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
                oc.lr = kLr;
                if (cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 3) != CNN_OK ||
                    cnn_model_set_batch(m, n) != CNN_OK || cnn_model_set_optimizer(m, &oc) != CNN_OK)
                    return fail(name);
                if ((cnn_shards_for(m, n, 1) > 1) != (p == 2)) {
                    fprintf(stderr, "torch_losses_driver: %s: not on the %s path\n", name.c_str(),
                            kPaths[p]);
                    return 1;
                }
                cnn_batch_stats st;
                if (cnn_model_check_loss(m, loss) != CNN_OK) {
                    const std::string msg = cnn_errmsg();
                    const std::vector<float> before = weights(m);
                    /* the calls that run the model must refuse it too */
                    if (cnn_model_eval_batch(m, xs[b].data(), ys[b].data(), n, loss, &st) !=
                            CNN_ERR_ARG ||
                        cnn_model_train_batch(m, xs[b].data(), ys[b].data(), n, loss, &st) !=
                            CNN_ERR_ARG ||
                        weights(m) != before) {
                        fprintf(stderr, "torch_losses_driver: %s: checked as refused, but "
                                        "evaluation or training ran\n", name.c_str());
                        rc = 1;
                    }
                    fprintf(list, "refused\t%s\t%s\t%s\t%s\t%s\n", name.c_str(), lname, ending,
                            kPaths[p], msg.c_str());
                    cnn_model_free(m);
                    continue;
                }
                const std::string base = dir + "/" + name;
                if (cnn_model_save(m, (base + ".before.safetensors").c_str(), 0) != CNN_OK ||
                    cnn_model_train_batch(m, xs[b].data(), ys[b].data(), n, loss, &st) != CNN_OK ||
                    cnn_model_save(m, (base + ".after.safetensors").c_str(), 0) != CNN_OK)
                    return fail(name);
                fprintf(list, "step\t%s\t%s\t%s\t%s\t%d\t%.9g\t%.17g\n", name.c_str(), lname,
                        ending, kPaths[p], n, (double)kLr, st.loss);
                cnn_model_free(m);
            }
    if (fclose(list) != 0) {
        fprintf(stderr, "torch_losses_driver: cannot write %s/cases.tsv\n", dir.c_str());
        return 1;
    }
    return rc;
}
