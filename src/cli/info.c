/* info.c — `cnn info`: the layer table of an architecture or a model file,
 * as Keras's summary() shows it, with FLOPs and the torch.nn equivalent. */
#include "cli/cli.h"

#include <string.h>

/* 61706 -> "61,706" */
static const char *commas(unsigned long long v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static void shape_text(char *buf, size_t len, int c, int h, int w)
{
    if (h == 1 && w == 1) snprintf(buf, len, "%d", c);
    else snprintf(buf, len, "%dx%dx%d", c, h, w);
}

static void human_flops(char *buf, size_t len, double f)
{
    if (f >= 1e9) snprintf(buf, len, "%.2f G", f / 1e9);
    else if (f >= 1e6) snprintf(buf, len, "%.2f M", f / 1e6);
    else if (f >= 1e3) snprintf(buf, len, "%.1f K", f / 1e3);
    else snprintf(buf, len, "%.0f", f);
}

static void print_table(cnn_model *m, const char *name)
{
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    int nl = cnn_model_num_layers(m);
    int dw = 30;
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        if (cnn_model_layer_info(m, i, &li) == CNN_OK && (int)strlen(li.desc) > dw)
            dw = (int)strlen(li.desc);
    }
    int pw = 0; /* the plan column: as wide as its longest entry */
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        if (cnn_model_layer_info(m, i, &li) == CNN_OK && (int)strlen(li.plan) > pw)
            pw = (int)strlen(li.plan);
    }
    char s1[32], s2[32], s3[32];
    printf("Model: %s\n\n", name);
    printf("%3s  %-*s  %-12s  %12s  %14s  %-*s%s\n", "#", dw, "Layer", "Output shape", "Params",
           "FLOPs/image", pw ? 13 : 0, "torch.nn", pw ? "Algorithms (fast kernels)" : "");
    int total_w = 3 + 2 + dw + 2 + 12 + 2 + 12 + 2 + 14 + 2 + (pw ? 13 + pw : 12);
    for (int i = 0; i < total_w; i++) putchar('-');
    putchar('\n');
    char inp[32], desc[48];
    shape_text(inp, sizeof inp, c, h, w);
    snprintf(desc, sizeof desc, "input %dx%dx%d", c, h, w);
    printf("%3s  %-*s  %-12s  %12s  %14s  %s\n", "", dw, desc, inp, "0", "0", "");
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        if (cnn_model_layer_info(m, i, &li) != CNN_OK) continue;
        shape_text(s1, sizeof s1, li.out_c, li.out_h, li.out_w);
        printf("%3d  %-*s  %-12s  %12s  %14s  %-*s%s\n", i, dw, li.desc, s1,
               commas(li.params, s2, sizeof s2), commas((unsigned long long)(li.flops + 0.5), s3, sizeof s3),
               li.plan[0] ? 13 : 0, li.torch ? li.torch : "", li.plan);
    }
    for (int i = 0; i < total_w; i++) putchar('-');
    putchar('\n');
    size_t params = cnn_model_num_params(m), stored = 0;
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        if (cnn_model_tensor(m, i, &t) == CNN_OK) stored += t.size;
    }
    double flops = cnn_model_flops(m);
    printf("Total params:          %s\n", commas(params, s1, sizeof s1));
    printf("Non-trainable buffers: %s (batchnorm running statistics)\n",
           commas(stored > params ? stored - params : 0, s1, sizeof s1));
    human_flops(s2, sizeof s2, flops);
    printf("FLOPs per image:       %s (%sFLOPs forward; a multiply-add counts 2)\n",
           commas((unsigned long long)(flops + 0.5), s1, sizeof s1), s2);
    char b1[32], b2[32], lim[160];
    cnn_format_bytes(b1, sizeof b1, (double)stored * 4);
    printf("Weights memory:        %s (float32, %s floats)\n", b1, commas(stored, s3, sizeof s3));
    /* what `cnn train` (batch buffers of 256, an optimizer) and `cnn eval`
     * (batch 256) set up, from the shapes alone */
    cnn_format_bytes(b1, sizeof b1, (double)cnn_model_memory_need(m, 256, 1));
    cnn_format_bytes(b2, sizeof b2, (double)cnn_model_memory_need(m, 256, 0));
    cnn_format_limit(lim, sizeof lim);
    printf("Memory at batch 256:   %s to train, %s to evaluate on %d thread%s; the limit is %s\n",
           b1, b2, cnn_get_threads(), cnn_get_threads() == 1 ? "" : "s", lim);
    if (pw) printf("Algorithms:            as the fast kernels choose them for a batch of 64 (%s)\n",
                   cnn_simd_name());
}

void cli_info_options(info_cfg *c, cli_opt *opts)
{
    *c = (info_cfg){.arch = NULL, .model = NULL};
    const cli_opt table[] = {
        {"arch", CLI_STR, &c->arch, 0, 0, "NAME|FILE", "a preset name or an architecture file", "none", 0},
        {"model", CLI_STR, &c->model, 0, 0, "FILE", "a model file (.safetensors)", "none", 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == INFO_NOPTS + 1, "INFO_NOPTS is not the table's size");
    memcpy(opts, table, sizeof table);
}

int cli_info(int argc, char **argv)
{
    const char *cmd = "info";
    info_cfg c;
    cli_opt opts[INFO_NOPTS + 1];
    cli_info_options(&c, opts);
    int rc = cli_parse_or_help(cmd, argc, argv, opts, NULL, 0, NULL,
        "--arch NAME|FILE | --model FILE",
        "Print the layer table of an architecture or a model: output shape, "
        "parameters and\nforward FLOPs per image of each layer, the totals, and the "
        "matching torch.nn module.");
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *arch = c.arch, *model = c.model;
    if (!!arch == !!model) return cli_usage_error(cmd, "give exactly one of --arch and --model");
    cli_set_mem_limit(cmd, NULL);
    /* an architecture's table comes from its shapes alone: no parameter is
     * allocated or drawn, whatever the model's size */
    cnn_model *m = NULL;
    if (arch) rc = cli_build_shapes(cmd, arch, &m);
    else rc = cli_load_model(cmd, model, &m);
    if (rc) return rc;
    print_table(m, arch ? arch : model);
    if (model) {
        static const char *const keys[] = {"dataset", "classes", "norm_mean", "norm_std",
                                           "epochs", "test_accuracy"};
        printf("\n");
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = cnn_model_get_meta(m, keys[i]);
            if (v) printf("%-22s %s\n", keys[i], v);
        }
    }
    cnn_model_free(m);
    return CLI_OK;
}
