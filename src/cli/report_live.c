/* report_live.c — what the report page's live panel needs (page script
 * live.js): cnn's WebAssembly module, compiled at build time from the
 * library's own sources (src/wasm, generated/live_wasm.c), and the model's
 * tensors, both base64 in one JSON object. The panel rebuilds the model
 * from the architecture text the page already holds and runs it on what
 * the reader draws or drops. When it cannot, the object says why and the
 * page shows that instead. */
#include "cli/cli.h"
#include "cli/report_json.h"

#include <stdlib.h>
#include <string.h>

extern const unsigned char cli_live_wasm[];
extern const size_t cli_live_wasm_size;
extern const char cli_live_wasm_why[];

/* The most weight bytes the page embeds for the panel (half a million
 * floats, a third more as base64): beyond this the page would no longer be
 * a few MB. */
#define LIVE_WEIGHT_BUDGET (2u << 20)
/* The panel is left out of a page it would take past this size: the report
 * stays under 5 MB for the presets. */
#define LIVE_PAGE_LIMIT 5000000u

/* A JSON string of base64 */
static void base64_str(buf *t, const unsigned char *p, size_t n)
{
    buf_puts(t, "\"");
    base64(t, p, n, 0);
    buf_puts(t, "\"");
}

static char *absent(buf *t, size_t *len, const char *why)
{
    t->n = 0;
    buf_puts(t, "{\"absent\":");
    json_str(t, why);
    buf_puts(t, "}");
    if (t->oom) {
        free(t->p);
        return NULL;
    }
    *len = t->n;
    return t->p;
}

char *cli_report_live_json(cnn_model *m, int no_live, size_t page_bytes, size_t *len)
{
    buf t = {0};
    char why[1024];
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    if (no_live) return absent(&t, len, "This page was written with --no-live: it has no live panel.");
    if (cli_live_wasm_size == 0) {
        snprintf(why, sizeof why, "The live panel runs cnn's own C code compiled to WebAssembly, and "
                 "the cnn that wrote this page was built without that module: %s.", cli_live_wasm_why);
        return absent(&t, len, why);
    }
    if (c != 1 && c != 3) {
        snprintf(why, sizeof why, "The live panel takes pictures, which become inputs of 1 or 3 "
                 "channels; this model takes %dx%dx%d inputs.", c, h, w);
        return absent(&t, len, why);
    }
    cnn_prep prep;
    if (cli_prep_from_model("report", m, &prep)) {
        snprintf(why, sizeof why, "The model's 'prep' metadata is not one cnn knows, so the panel "
                 "cannot prepare pictures the way the model expects.");
        return absent(&t, len, why);
    }
    size_t nfloats = 0;
    const int nt = cnn_model_num_tensors(m);
    for (int i = 0; i < nt; i++) {
        cnn_tensor tn;
        if (cnn_model_tensor(m, i, &tn) != CNN_OK || !tn.data)
            return absent(&t, len, "The model's tensors cannot be read.");
        nfloats += tn.size;
    }
    if (nfloats * sizeof(float) > LIVE_WEIGHT_BUDGET) {
        snprintf(why, sizeof why, "The model's %zu weights (%.1f MB) are more than this page embeds "
                 "for the live panel (%u MB).", nfloats, nfloats * 4.0 / 1e6, LIVE_WEIGHT_BUDGET >> 20);
        return absent(&t, len, why);
    }
    size_t live_bytes = (nfloats * sizeof(float) + cli_live_wasm_size) / 3 * 4 + 256;
    if (page_bytes + live_bytes > LIVE_PAGE_LIMIT) {
        snprintf(why, sizeof why, "With the model's %zu weights and the WebAssembly module (%.1f MB "
                 "as text) this page would be larger than %.0f MB, so the live panel is left out.",
                 nfloats, live_bytes / 1e6, LIVE_PAGE_LIMIT / 1e6);
        return absent(&t, len, why);
    }
    unsigned char *bytes = malloc(nfloats * sizeof(float) + 1);
    if (!bytes) return absent(&t, len, "There was not enough memory to embed the model's weights.");
    size_t at = 0;
    for (int i = 0; i < nt; i++) {
        cnn_tensor tn;
        cnn_model_tensor(m, i, &tn);
        /* little-endian float32, whatever the host */
        for (size_t j = 0; j < tn.size; j++, at += 4) {
            uint32_t u;
            memcpy(&u, &tn.data[j], 4);
            bytes[at] = (unsigned char)u;
            bytes[at + 1] = (unsigned char)(u >> 8);
            bytes[at + 2] = (unsigned char)(u >> 16);
            bytes[at + 3] = (unsigned char)(u >> 24);
        }
    }
    buf_printf(&t, "{\"prep\":\"%s\",\"prep_id\":%d,\"nfloats\":%zu,\"module_bytes\":%zu,\"weights\":",
               cnn_prep_name(prep), (int)prep, nfloats, cli_live_wasm_size);
    base64_str(&t, bytes, at);
    free(bytes);
    buf_puts(&t, ",\"module\":");
    base64_str(&t, cli_live_wasm, cli_live_wasm_size);
    buf_puts(&t, "}");
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.n;
    return t.p;
}
