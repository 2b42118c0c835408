/* grid.c — the picture of predictions (the seed's Figure 3.3): each
 * preprocessed input scaled up, in a grid, with its caption (file name,
 * predicted label, right or wrong) written under it. Text comes from stb_easy_font's quads (a header-only part of
 * Debian's libstb-dev), the file from libpng (cnn_png_write_gray) through
 * the atomic writer. */
#include "cli/cli.h"
#include "io/image.h"

#include <stb/stb_easy_font.h>
#include <stdlib.h>
#include <string.h>

/* stb_easy_font's vertices: x, y, z floats and 4 colour bytes */
typedef struct {
    float x, y, z;
    unsigned char rgba[4];
} font_vertex;

static void fill_rect(uint8_t *img, int W, int H, int x0, int y0, int x1, int y1, uint8_t v)
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > W) x1 = W;
    if (y1 > H) y1 = H;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) img[(size_t)y * W + x] = v;
}

/* Draw text with its top-left corner at (x, y), each font pixel fs x fs. */
static void draw_text(uint8_t *img, int W, int H, int x, int y, const char *text, int fs)
{
    static font_vertex vb[4 * 1200];
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    unsigned char black[4] = {0, 0, 0, 255};
    int quads = stb_easy_font_print(0, 0, buf, black, vb, (int)sizeof vb);
    for (int q = 0; q < quads; q++) {
        const font_vertex *v = vb + 4 * q;
        /* quads are axis-aligned: vertex 0 and 2 are opposite corners */
        int qx0 = (int)v[0].x, qy0 = (int)v[0].y, qx1 = (int)v[2].x, qy1 = (int)v[2].y;
        fill_rect(img, W, H, x + qx0 * fs, y + qy0 * fs, x + qx1 * fs, y + qy1 * fs, 0);
    }
}

cnn_status cli_grid_png(const char *path, const uint8_t *images, int n, int h, int w,
                 const char *const *labels, const int *marks, int scale)
{
    if (n < 1) return cnn_fail(CNN_ERR_ARG, "%s: no images to draw", path);
    int fs = scale >= 3 ? 2 : 1;  /* font pixel size */
    int text_w = 0, text_h = 0;
    char buf[128];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%s", labels[i]);
        int tw = stb_easy_font_width(buf) * fs, th = stb_easy_font_height(buf) * fs;
        if (tw > text_w) text_w = tw;
        if (th > text_h) text_h = th;
    }
    int pad = 8;
    int cell_w = (w * scale > text_w ? w * scale : text_w) + 2 * pad;
    int cell_h = h * scale + 2 * pad + text_h + 6 * fs;
    int cols = 1;
    while (cols * cols < n) cols++;
    if (cols > 10) cols = 10;
    int rows = (n + cols - 1) / cols;
    int W = cols * cell_w, H = rows * cell_h;
    uint8_t *img = malloc((size_t)W * (size_t)H);
    if (!img) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for a %dx%d picture", path, W, H);
    memset(img, 255, (size_t)W * H);
    for (int i = 0; i < n; i++) {
        int cx = (i % cols) * cell_w, cy = (i / cols) * cell_h;
        int ox = cx + (cell_w - w * scale) / 2, oy = cy + pad;
        /* a thin frame (a thick black one for a wrong prediction), then the
         * digit as dark ink on white paper */
        int t = marks && marks[i] == CLI_GRID_WRONG ? 5 : 1;
        fill_rect(img, W, H, ox - t, oy - t, ox + w * scale + t, oy + h * scale + t, t > 1 ? 0 : 160);
        for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
                img[(size_t)(oy + y) * W + ox + x] =
                    (uint8_t)(255 - images[(size_t)i * h * w + (size_t)(y / scale) * w + x / scale]);
        snprintf(buf, sizeof buf, "%s", labels[i]);
        int tw = stb_easy_font_width(buf) * fs;
        draw_text(img, W, H, cx + (cell_w - tw) / 2, oy + h * scale + 6 * fs, labels[i], fs);
    }
    cnn_outfile o;
    cnn_status st = cnn_out_open(&o, path);
    if (st == CNN_OK) {
        st = cnn_png_write_gray(o.f, path, img, W, H);
        if (st == CNN_OK)
            st = cnn_out_commit(&o);
        else
            cnn_out_abort(&o);
    }
    free(img);
    return st;
}
