/* imgfiles.cpp — see imgfiles.h. The libpng and libjpeg calls are made in
 * functions holding no C++ objects, since an error longjmps out of them. */
#include "imgfiles.h"

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

/* ------------------------------------------------------------------- PNG */

namespace {

void png_append(png_structp png, png_bytep data, size_t n)
{
    auto *out = static_cast<Bytes *>(png_get_io_ptr(png));
    out->insert(out->end(), data, data + n);
}

void png_flush_nothing(png_structp) {}

int png_channels_of(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

/* Returns false after a libpng error. Holds no C++ objects. */
bool png_write_all(png_structp png, png_infop info, int w, int h, const PngOptions *o,
                   png_bytepp rows, Bytes *out)
{
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_write_fn(png, out, png_append, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, o->bit_depth, o->color_type,
                 o->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!o->palette.empty())
        png_set_PLTE(png, info, o->palette.data(), (int)o->palette.size());
    if (!o->palette_alpha.empty())
        png_set_tRNS(png, info, o->palette_alpha.data(), (int)o->palette_alpha.size(), nullptr);
    if (o->color_key) png_set_tRNS(png, info, nullptr, 0, &o->key);
    if (!o->exif.empty() && !o->exif_after_pixels)
        png_set_eXIf_1(png, info, (png_uint_32)o->exif.size(), (png_bytep)o->exif.data());
    png_write_info(png, info);
    png_write_image(png, rows);
    if (!o->exif.empty() && o->exif_after_pixels)
        png_set_eXIf_1(png, info, (png_uint_32)o->exif.size(), (png_bytep)o->exif.data());
    png_write_end(png, info);
    return true;
}

}  // namespace

Bytes png_encode(int w, int h, const std::vector<unsigned> &samples, const PngOptions &o)
{
    int ch = png_channels_of(o.color_type);
    if (samples.size() != (size_t)w * h * ch) return {};
    /* pack the samples: below 8 bits most significant first, 16 bits big endian */
    size_t rowbytes = ((size_t)w * ch * o.bit_depth + 7) / 8;
    Bytes packed((size_t)h * rowbytes, 0);
    for (int y = 0; y < h; y++) {
        uint8_t *row = packed.data() + (size_t)y * rowbytes;
        for (int i = 0; i < w * ch; i++) {
            unsigned v = samples[(size_t)y * w * ch + i];
            if (o.bit_depth == 16) {
                row[2 * i] = (uint8_t)(v >> 8);
                row[2 * i + 1] = (uint8_t)v;
            } else if (o.bit_depth == 8) {
                row[i] = (uint8_t)v;
            } else {
                int per = 8 / o.bit_depth, shift = 8 - o.bit_depth * (i % per + 1);
                row[i / per] |= (uint8_t)(v << shift);
            }
        }
    }
    std::vector<png_bytep> rows(h);
    for (int y = 0; y < h; y++) rows[y] = packed.data() + (size_t)y * rowbytes;
    Bytes out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    bool ok = png && info && png_write_all(png, info, w, h, &o, rows.data(), &out);
    png_destroy_write_struct(&png, &info);
    return ok ? out : Bytes{};
}

/* ------------------------------------------------------------------ JPEG */

namespace {

struct JpegErr {
    jpeg_error_mgr mgr;
    jmp_buf jump;
};

void jpeg_err_exit(j_common_ptr c)
{
    longjmp(reinterpret_cast<JpegErr *>(c->err)->jump, 1);
}

/* Returns false after a libjpeg error; *data (malloc'd) is the file.
 * Holds no C++ objects. */
bool jpeg_write_all(jpeg_compress_struct *c, JpegErr *err, int w, int h, const uint8_t *samples,
                    const JpegOptions *o, unsigned char **data, unsigned long *size)
{
    if (setjmp(err->jump)) return false;
    jpeg_mem_dest(c, data, size);
    c->image_width = (JDIMENSION)w;
    c->image_height = (JDIMENSION)h;
    c->in_color_space = o->in_space;
    c->input_components = o->in_space == JCS_GRAYSCALE ? 1 : o->in_space == JCS_CMYK ? 4 : 3;
    jpeg_set_defaults(c);
    if (o->file_space != JCS_UNKNOWN) jpeg_set_colorspace(c, o->file_space);
    jpeg_set_quality(c, o->quality, TRUE);
    if (!o->adobe_marker) c->write_Adobe_marker = FALSE;
    if (o->full_chroma)
        for (int i = 0; i < c->num_components; i++)
            c->comp_info[i].h_samp_factor = c->comp_info[i].v_samp_factor = 1;
    if (o->progressive) jpeg_simple_progression(c);
    if (!o->scans.empty()) {
        c->scan_info = o->scans.data();
        c->num_scans = (int)o->scans.size();
    }
    jpeg_start_compress(c, TRUE);
    if (!o->app1.empty())
        jpeg_write_marker(c, JPEG_APP0 + 1, o->app1.data(), (unsigned)o->app1.size());
    int stride = w * c->input_components;
    while (c->next_scanline < c->image_height) {
        JSAMPROW row = (JSAMPROW)(samples + (size_t)c->next_scanline * stride);
        jpeg_write_scanlines(c, &row, 1);
    }
    jpeg_finish_compress(c);
    return true;
}

}  // namespace

Bytes jpeg_encode(int w, int h, const Bytes &samples, const JpegOptions &o)
{
    int ch = o.in_space == JCS_GRAYSCALE ? 1 : o.in_space == JCS_CMYK ? 4 : 3;
    if (samples.size() != (size_t)w * h * ch) return {};
    jpeg_compress_struct c;
    JpegErr err;
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_err_exit;
    jpeg_create_compress(&c);
    unsigned char *data = nullptr;
    unsigned long size = 0;
    bool ok = jpeg_write_all(&c, &err, w, h, samples.data(), &o, &data, &size);
    jpeg_destroy_compress(&c);
    Bytes out;
    if (ok && data) out.assign(data, data + size);
    free(data);
    return out;
}

namespace {

/* Entropy-coded bits, most significant first, with an FF byte stuffed with
 * 00; finish() pads the last byte with ones. */
struct BitWriter {
    Bytes &out;
    unsigned acc = 0;
    int n = 0;
    void put(unsigned bits, int count)
    {
        for (int i = count - 1; i >= 0; i--) {
            acc = acc << 1 | ((bits >> i) & 1);
            if (++n == 8) emit();
        }
    }
    void emit()
    {
        out.push_back((uint8_t)acc);
        if (acc == 0xFF) out.push_back(0);
        acc = 0, n = 0;
    }
    void finish()
    {
        while (n) put(1, 1);
    }
};

void put_segment(Bytes &b, uint8_t marker, const Bytes &body)
{
    b.push_back(0xFF), b.push_back(marker);
    b.push_back((uint8_t)((body.size() + 2) >> 8)), b.push_back((uint8_t)(body.size() + 2));
    b.insert(b.end(), body.begin(), body.end());
}

}  // namespace

Bytes jpeg_flat_many_scans(int w, int h)
{
    Bytes b = {0xFF, 0xD8};
    Bytes dqt = {0};
    dqt.resize(65, 1);
    put_segment(b, 0xDB, dqt);
    put_segment(b, 0xC2, {8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, 3,
                          1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0});
    /* DC table 0: one code, "0", for a difference of 0. AC table 0: the 15
     * end-of-band runs EOB0..EOB14 (symbol r << 4: a run of 2^r blocks
     * plus r more bits), 4-bit codes 0000..1110. */
    Bytes dht = {0x00, 1};
    dht.resize(17, 0);
    dht.push_back(0x00);
    Bytes ac = {0x10, 0, 0, 0, 15};
    ac.resize(17, 0);
    for (int r = 0; r < 15; r++) ac.push_back((uint8_t)(r << 4));
    dht.insert(dht.end(), ac.begin(), ac.end());
    put_segment(b, 0xC4, dht);
    long blocks = (long)((w + 7) / 8) * ((h + 7) / 8);
    /* the DC scan: all three components, one 1-bit code per block */
    put_segment(b, 0xDA, {3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 0, 0x00});
    {
        BitWriter bw{b};
        for (long i = 0; i < 3 * blocks; i++) bw.put(0, 1);
        bw.finish();
    }
    /* AC scans: one component and one coefficient each; the whole scan is
     * end-of-band runs of at most 32767 blocks */
    for (int comp = 1; comp <= 3; comp++)
        for (int k = 1; k < 64; k++)
            for (int al = 10; al >= 0; al--) {
                int ah = al == 10 ? 0 : al + 1;
                put_segment(b, 0xDA, {1, (uint8_t)comp, 0x00, (uint8_t)k, (uint8_t)k,
                                      (uint8_t)(ah << 4 | al)});
                BitWriter bw{b};
                for (long left = blocks; left > 0;) {
                    long run = std::min(left, 32767L);
                    int r = 0;
                    while ((2L << r) <= run) r++;
                    bw.put((unsigned)r, 4);
                    if (r) bw.put((unsigned)(run - (1L << r)), r);
                    left -= run;
                }
                bw.finish();
            }
    b.push_back(0xFF), b.push_back(0xD9);
    return b;
}

namespace {

/* Holds no C++ objects: an error longjmps out. */
bool jpeg_read_all(jpeg_decompress_struct *c, JpegErr *err, const Bytes *file, JSAMPROW row)
{
    if (setjmp(err->jump)) return false;
    jpeg_mem_src(c, file->data(), (unsigned long)file->size());
    jpeg_read_header(c, TRUE);
    jpeg_start_decompress(c);
    while (c->output_scanline < c->output_height) jpeg_read_scanlines(c, &row, 1);
    jpeg_finish_decompress(c);
    return true;
}

}  // namespace

bool jpeg_plain_decode(const Bytes &file, int *scans, long *warnings)
{
    jpeg_decompress_struct c;
    JpegErr err;
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_err_exit;
    err.mgr.output_message = [](j_common_ptr) {};
    jpeg_create_decompress(&c);
    std::vector<uint8_t> row((size_t)1 << 20); /* wide enough for 65535 x 10 samples */
    bool ok = jpeg_read_all(&c, &err, &file, row.data());
    *scans = c.input_scan_number;
    *warnings = err.mgr.num_warnings;
    jpeg_destroy_decompress(&c);
    return ok;
}

/* ------------------------------------------------------------------ EXIF */

Bytes tiff_orientation(int orientation, bool big_endian)
{
    Bytes t;
    auto u16 = [&](unsigned v) {
        if (big_endian) t.push_back((uint8_t)(v >> 8)), t.push_back((uint8_t)v);
        else t.push_back((uint8_t)v), t.push_back((uint8_t)(v >> 8));
    };
    auto u32 = [&](uint32_t v) {
        if (big_endian) u16(v >> 16), u16(v & 0xFFFF);
        else u16(v & 0xFFFF), u16(v >> 16);
    };
    t.push_back(big_endian ? 'M' : 'I');
    t.push_back(big_endian ? 'M' : 'I');
    u16(42);
    u32(8);  /* IFD0 right after the header */
    u16(2);  /* two entries */
    u16(0x010F), u16(2), u32(4), t.insert(t.end(), {'c', 'n', 'n', 0}); /* Make, ASCII */
    u16(0x0112), u16(3), u32(1), u16((unsigned)orientation), u16(0);   /* Orientation */
    u32(0);  /* no next IFD */
    return t;
}

Bytes exif_app1(int orientation, bool big_endian)
{
    Bytes a = {'E', 'x', 'i', 'f', 0, 0};
    Bytes t = tiff_orientation(orientation, big_endian);
    a.insert(a.end(), t.begin(), t.end());
    return a;
}

/* ------------------------------------------------------------- BMP, GIF */

namespace {
void put_le(Bytes &b, uint32_t v, int n)
{
    for (int i = 0; i < n; i++) b.push_back((uint8_t)(v >> (8 * i)));
}
}  // namespace

Bytes bmp24(int w, int h, const Bytes &rgb)
{
    int row = (3 * w + 3) & ~3;
    Bytes b = {'B', 'M'};
    put_le(b, 54 + (uint32_t)row * h, 4), put_le(b, 0, 4), put_le(b, 54, 4);
    put_le(b, 40, 4), put_le(b, (uint32_t)w, 4), put_le(b, (uint32_t)h, 4);
    put_le(b, 1, 2), put_le(b, 24, 2), put_le(b, 0, 4), put_le(b, (uint32_t)row * h, 4);
    put_le(b, 2835, 4), put_le(b, 2835, 4), put_le(b, 0, 4), put_le(b, 0, 4);
    for (int y = h - 1; y >= 0; y--) {
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb.data() + ((size_t)y * w + x) * 3;
            b.push_back(p[2]), b.push_back(p[1]), b.push_back(p[0]); /* BGR */
        }
        for (int i = 3 * w; i < row; i++) b.push_back(0);
    }
    return b;
}

Bytes gif_bw(int w, int h, const Bytes &grey)
{
    /* 2-bit codes: a clear code (4) before every pixel keeps the code width
     * at 3 bits; 5 ends the data. */
    std::vector<int> codes;
    for (uint8_t v : grey) codes.push_back(4), codes.push_back(v > 127 ? 1 : 0);
    codes.push_back(5);
    Bytes data;
    unsigned bits = 0, nbits = 0;
    for (int c : codes) {
        bits |= (unsigned)c << nbits;
        nbits += 3;
        while (nbits >= 8) data.push_back((uint8_t)bits), bits >>= 8, nbits -= 8;
    }
    if (nbits) data.push_back((uint8_t)bits);
    Bytes b = {'G', 'I', 'F', '8', '9', 'a'};
    put_le(b, (uint32_t)w, 2), put_le(b, (uint32_t)h, 2);
    b.insert(b.end(), {0x81, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0});
    b.push_back(',');
    put_le(b, 0, 2), put_le(b, 0, 2), put_le(b, (uint32_t)w, 2), put_le(b, (uint32_t)h, 2);
    b.push_back(0);
    b.push_back(2); /* LZW minimum code size */
    for (size_t i = 0; i < data.size(); i += 255) {
        size_t n = std::min<size_t>(255, data.size() - i);
        b.push_back((uint8_t)n);
        b.insert(b.end(), data.begin() + (long)i, data.begin() + (long)(i + n));
    }
    b.push_back(0);
    b.push_back(';');
    return b;
}

void write_bytes(const std::string &path, const Bytes &b)
{
    std::ofstream f(path, std::ios::binary);
    f.write((const char *)b.data(), (std::streamsize)b.size());
}

Bytes read_bytes(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
