/* fuzz_image.c — user images: the decoders behind cnn_image_load_mnist
 * (PNG via libpng, JPEG via libjpeg-turbo, BMP/GIF via the stb_image built
 * in our tree, PGM/PPM by our reader), the EXIF orientation parser, the
 * grey conversion and the MNIST preprocessing on arbitrary grayscale pixels.
 *
 * The whole input is written to a file and loaded. The input also goes to
 * the EXIF parser twice: as a JPEG whose APP1 is looked for, and as a bare
 * TIFF stream (a PNG eXIf chunk). Then the input, read as a grayscale
 * picture (width from the first byte, 1..64, height from the length), goes
 * through cnn_image_preprocess_mnist directly: most inputs never decode,
 * but every one is a picture. */
#include "fuzz_common.h"
#include "io/image.h"

static fuzz_file image_file;
static volatile unsigned fuzz_sink;

static void check_out(const uint8_t out[28 * 28])
{
    /* every output byte is written (MSan would say more; ASan checks the
     * bounds), and some ink survives the preprocessing */
    unsigned sum = 0;
    for (int i = 0; i < 28 * 28; i++) sum += out[i];
    if (sum == 0) fuzz_die("preprocessing succeeded with an empty 28x28 result");
    fuzz_sink = sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[28 * 28];
    const char *path = fuzz_file_set(&image_file, "image", data, size);
    cnn_status s = cnn_image_load_mnist(path, out);
    if (s)
        fuzz_check_failure(s, path);
    else
        check_out(out);

    size_t tlen;
    const uint8_t *tiff = cnn_jpeg_find_exif(data, size, &tlen);
    if (tiff && (tiff < data || tlen > size || (size_t)(tiff - data) > size - tlen))
        fuzz_die("the Exif block found lies outside the file");
    int o1 = tiff ? cnn_exif_orientation(tiff, tlen) : 1;
    int o2 = cnn_exif_orientation(data, size);
    if (o1 < 1 || o1 > 8 || o2 < 1 || o2 > 8) fuzz_die("orientation out of 1..8");

    if (size < 2) return 0;
    int w = data[0] % 64 + 1;
    size_t npix = size - 1;
    int h = (int)(npix / (size_t)w);
    if (h < 1) return 0;
    /* an exact-size heap copy, so reading one pixel too far is caught */
    uint8_t *gray = malloc((size_t)w * h);
    if (!gray) return 0;
    memcpy(gray, data + 1, (size_t)w * h);
    s = cnn_image_preprocess_mnist(gray, w, h, out);
    free(gray);
    if (s)
        fuzz_check_failure(s, NULL);
    else
        check_out(out);
    return 0;
}
