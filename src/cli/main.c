/* main.c — the `cnn` program: dispatch to a subcommand. */
#include "cli/cli.h"
#include "dist/dist.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cnn <command> [options]\n"
            "\n"
            "A convolutional neural network trainer written from scratch in C.\n"
            "\n"
            "Commands:\n"
            "  train     train a model on an IDX data set (MNIST, Fashion-MNIST, ...)\n"
            "  eval      the classification report and confusion matrix of a model\n"
            "  predict   classify PNG, JPEG or PGM images with a model\n"
            "  info      the layer table of an architecture or a model file\n"
            "  report    one HTML page that shows what a trained model learned\n"
            "\n"
            "Presets (--arch NAME):");
    for (const struct cnn_preset *p = cnn_presets; p->name; p++) fprintf(f, " %s", p->name);
    fprintf(f,
            "\n\n"
            "Run 'cnn <command> --help' for the options of a command.\n"
            "  cnn --help       this help\n"
            "  cnn --version    the version\n"
            "\n"
            "The seed report's experiment, every setting explicit (models/seed-experiment.sh):\n"
            "  cnn train --arch simplecnn --limit 300 --val 50 --test-limit 100 --batch all \\\n"
            "            --opt sgd --lr 0.07 --sched constant --weight-decay 0 --clip 0 \\\n"
            "            --loss xent --init-weights xavier --seed 1 --epochs 40 --no-shuffle\n");
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] && *argv[0]) cli_program = argv[0];
    if (argc < 2) {
        usage(stderr);
        return CLI_EUSAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(c, "--version") == 0 || strcmp(c, "version") == 0) {
        printf("cnn %s (%s kernels)\n", CNN_VERSION, cnn_simd_name());
        return CLI_OK;
    }
    if (strcmp(c, "train") == 0) {
        /* under mpirun every rank runs the same command (src/dist) */
        cnn_dist_start();
        return cnn_dist_finish(cli_train(argc - 1, argv + 1));
    }
    if (strcmp(c, "eval") == 0) return cli_eval(argc - 1, argv + 1);
    if (strcmp(c, "predict") == 0) return cli_predict(argc - 1, argv + 1);
    if (strcmp(c, "info") == 0) return cli_info(argc - 1, argv + 1);
    if (strcmp(c, "report") == 0) return cli_report(argc - 1, argv + 1);
    fprintf(stderr, "cnn: unknown command '%s' (commands: train, eval, predict, info, report)\n"
                    "Try 'cnn --help'.\n", c);
    return CLI_EUSAGE;
}
