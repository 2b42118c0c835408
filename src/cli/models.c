/* models.c — finding an architecture (a compiled-in preset or a file) and
 * loading model files, with the CLI's messages and exit codes. */
#include "cli/cli.h"

#include <string.h>
#include <sys/stat.h>

const char *cli_preset(const char *name)
{
    for (const struct cnn_preset *p = cnn_presets; p->name; p++)
        if (strcmp(p->name, name) == 0) return p->text;
    return NULL;
}

/* A preset or an architecture file, with its parameters or for its shapes. */
static int build(const char *cmd, const char *arch, int shapes, cnn_model **out)
{
    const char *text = cli_preset(arch);
    cnn_status st;
    if (text) {
        st = shapes ? cnn_model_shapes_from_text(text, arch, out)
                    : cnn_model_from_text(text, arch, out);
    } else {
        /* a name that is no file is a usage error; a file that cannot be
         * read (a directory, a FIFO, ...) is refused by the loader */
        struct stat sb;
        if (stat(arch, &sb) != 0) {
            char names[256] = "";
            for (const struct cnn_preset *p = cnn_presets; p->name; p++) {
                if (strlen(names) + strlen(p->name) + 3 >= sizeof names) break;
                strcat(names, names[0] ? ", " : "");
                strcat(names, p->name);
            }
            return cli_usage_error(cmd,
                                   "--arch: '%s' is neither a preset (%s) nor an architecture file",
                                   arch, names);
        }
        st = shapes ? cnn_model_shapes_from_file(arch, out) : cnn_model_from_file(arch, out);
    }
    if (st != CNN_OK) return cli_error(cmd, "%s", cnn_errmsg());
    return CLI_OK;
}

int cli_build_model(const char *cmd, const char *arch, cnn_model **out)
{
    return build(cmd, arch, 0, out);
}

int cli_build_shapes(const char *cmd, const char *arch, cnn_model **out)
{
    return build(cmd, arch, 1, out);
}

int cli_load_model(const char *cmd, const char *path, cnn_model **out)
{
    cnn_status st = cnn_model_load(path, out);
    if (st != CNN_OK) return cli_error(cmd, "cannot load the model: %s", cnn_errmsg());
    return CLI_OK;
}

int cli_parse_kernels(const char *cmd, const char *s, cnn_kernels *out)
{
    if (strcmp(s, "ref") == 0) *out = CNN_KERNELS_REF;
    else if (strcmp(s, "fast") == 0) *out = CNN_KERNELS_FAST;
    else return cli_usage_error(cmd, "--kernels: expected ref or fast, got '%s'", s);
    return CLI_OK;
}
