/*
 * dataset.h — data sets of a user's own images: image-folder trees
 * (imagefolder.c), CSV files (csv.c), and the cache file both are decoded
 * into once (cache.c), found or rebuilt by source.c.
 *
 * Every loader treats its input as hostile and fails with a message naming
 * the file (and the line of a CSV) and the problem; nothing here exits.
 */
#ifndef CNN_IO_DATASET_H
#define CNN_IO_DATASET_H

#include "internal.h"

/* Labels are one byte in cnn_dataset and cnn_model_train_batch: a data set
 * of more classes is refused with a message saying so. */
#define CNN_MAX_CLASSES 256
/* A class name: 1 to this many bytes of UTF-8, no comma, no control
 * character (it goes into the model's comma-separated "classes"). */
#define CNN_CLASS_NAME_MAX 100

/* Why `s` (len bytes) cannot be a class name, or NULL if it can. */
const char *cnn_class_name_problem(const char *s, size_t len);

/* ------------------------------------------------------------ fingerprints */

/* FNV-1a, 64 bits, over everything that decides a cache's contents. */
#define CNN_FP_INIT 0xcbf29ce484222325ULL
uint64_t cnn_fp_add(uint64_t h, const void *data, size_t len);
uint64_t cnn_fp_u64(uint64_t h, uint64_t v);

/* ------------------------------------------------------------ cache files */

/* A cache file: a data set decoded and converted to one input shape.
 * Little-endian, fixed width:
 *
 *   offset  size  field
 *        0     8  magic "CNNCACHE"
 *        8     4  version (1)
 *       12     4  header size (128)
 *       16    12  c, h, w (u32 each)
 *       28     4  classes
 *       32     8  count (images)
 *       40     8  fingerprint of the sources and the conversion
 *       48     8  images offset (n images of c*h*w bytes, planar)
 *       56     8  labels offset (n u16 labels)
 *       64     8  names offset (classes names, each ending in a 0 byte)
 *       72     8  names size
 *       80     4  prep (0 digit, 1 pad, 2 crop)
 *       84     4  0
 *       88     8  file size
 *       96    32  0
 */
#define CNN_CACHE_MAGIC "CNNCACHE"
#define CNN_CACHE_VERSION 1
#define CNN_CACHE_HEADER 128
/* Above this many bytes of images, a cache is read image by image with
 * pread instead of through its mapping: the mapping would otherwise become
 * resident as training touches every page in shuffled order. */
#define CNN_CACHE_MAP_MAX ((uint64_t)256 << 20)

typedef struct {
    int n, c, h, w, classes;
    cnn_prep prep;
    uint64_t fingerprint;
    uint8_t *labels;        /* n labels, malloc'd */
    char **names;           /* classes names, malloc'd */
    const uint8_t *images;  /* into the mapping; NULL when read with pread */
    int fd;
    uint64_t images_offset;
    void *map;
    size_t map_len;
    char *path;
} cnn_cache;

/* Open and check a cache file: every field against the file's size, every
 * label against the classes, every name. Labels past CNN_MAX_CLASSES
 * classes are refused. */
cnn_status cnn_cache_open(const char *path, cnn_cache *out);
/* Only the header's fingerprint (0 if the file is not a readable cache). */
uint64_t cnn_cache_peek_fingerprint(const char *path);
/* Image i (c*h*w bytes): a pointer into the mapping, or read into scratch. */
const uint8_t *cnn_cache_image(const cnn_cache *c, int i, uint8_t *scratch);
void cnn_cache_close(cnn_cache *c);

/* Writing one: images and labels as they come, then the names. */
typedef struct {
    cnn_outfile o;
    int c, h, w;
    cnn_prep prep;
    uint64_t fingerprint;
    uint64_t count;
    uint16_t *labels;
    size_t labels_cap;
    int max_label;
} cnn_cache_writer;
cnn_status cnn_cache_begin(cnn_cache_writer *wr, const char *path, int c, int h, int w,
                           cnn_prep prep, uint64_t fingerprint);
cnn_status cnn_cache_add(cnn_cache_writer *wr, const uint8_t *image, int label);
/* Writes the labels, the names and the header, and renames the file into
 * place. A data set of no image is refused (the file is not written). */
cnn_status cnn_cache_finish(cnn_cache_writer *wr, char *const *names, int classes);
void cnn_cache_abort(cnn_cache_writer *wr);

/* ---------------------------------------------------------- image folders */

/* An image-folder tree (torchvision's ImageFolder): ROOT/<class>/<image>.
 * Classes are the sub-folders, sorted by byte order; images the files
 * named *.png, *.jpg, *.jpeg, *.bmp, *.gif, *.pgm, *.ppm (any case), also
 * sorted. Names starting with '.' are not looked at; other files are
 * skipped. */
typedef struct {
    int nclasses;
    char **classes;
    int nfiles;
    char **files;         /* "class/name", relative to the root */
    uint16_t *labels;     /* the class of each file */
    uint64_t fingerprint; /* every name, size and modification time */
    size_t cap, ccap;
} cnn_folder;

/* Walk ROOT, one directory open at a time. A class folder with no image,
 * a class name that cannot be one (cnn_class_name_problem) and a root of
 * no class folder are refused, naming them. */
cnn_status cnn_folder_scan(const char *root, cnn_folder *out);
/* What the walk does with the names it reads, for a listing given as text:
 * one entry a line, "class" (a folder) or "class/name" (a file of size and
 * time 0). For the fuzzer and the tests. */
cnn_status cnn_folder_from_listing(const char *text, size_t len, const char *root,
                                   cnn_folder *out);
void cnn_folder_free(cnn_folder *f);
/* 1 if `name` has one of the image extensions. */
int cnn_folder_is_image_name(const char *name);

/* A warning for an image that is skipped (cannot be decoded). */
typedef void (*cnn_warn_fn)(void *ctx, const char *msg);

/* Decode every image of the folder in parallel (OpenMP over files, a
 * chunk at a time), convert it (cnn_image_prepare) and add it to the
 * writer. An image that cannot be decoded is skipped with a warning, or
 * refused when strict. */
cnn_status cnn_folder_decode(const cnn_folder *f, const char *root, cnn_prep prep, int strict,
                             cnn_warn_fn warn, void *ctx, cnn_cache_writer *wr, int *skipped);

/* ------------------------------------------------------------------- CSV */

/* A CSV file of "label,pixel0,...,pixelN-1" lines, N = c*h*w, pixels in
 * planar order (channel, row, column: a CHW tensor flattened), integers
 * 0..255, labels integers 0..CNN_MAX_CLASSES-1. The first line may be a
 * header (its first field is not a number). Blank lines are skipped; a
 * last line may lack its newline; "\r\n" is accepted. Each image goes to
 * `row` as it is read; a row's failure stops the read. */
typedef cnn_status (*cnn_row_fn)(void *ctx, const uint8_t *image, int label);
cnn_status cnn_csv_read(const char *path, int c, int h, int w, cnn_row_fn row, void *ctx);
/* The same on bytes in memory (name for messages): for the fuzzer. */
cnn_status cnn_csv_parse(const char *data, size_t len, const char *name, int c, int h, int w,
                         cnn_row_fn row, void *ctx);
/* A cnn_row_fn that adds the row to a cnn_cache_writer. */
cnn_status cnn_cache_row(void *writer, const uint8_t *image, int label);

/* ----------------------------------------------------- sources and caches */

/* How a source is read and where its cache goes. */
typedef struct {
    int c, h, w;            /* the model's input */
    cnn_prep prep;          /* how pictures are converted to it */
    int strict;             /* refuse an undecodable picture instead of skipping it */
    const char *cache_dir;  /* where caches go; NULL: next to the data, or where
                               cnn_default_cache_dir says when that is not writable */
    cnn_warn_fn warn;       /* skipped pictures and cache notes */
    void *ctx;
    /* what happened, for the caller to report */
    int built;              /* the cache was (re)built by this call */
    int skipped;            /* pictures skipped while building */
    double seconds;         /* time spent listing and opening or building */
    char cache_path[4096];
} cnn_source_opts;

/* $XDG_CACHE_HOME/cnn, else $HOME/.cache/cnn, into buf. */
void cnn_default_cache_dir(char *buf, size_t len);
/* An image-folder tree through its cache: the tree is listed, and the
 * cache whose fingerprint matches (every name, size and time, the shape and
 * the policy) is opened; otherwise the pictures are decoded into a new one,
 * written atomically to ROOT/.cnn-cache/ or, if that cannot be written, to
 * the cache folder. */
cnn_status cnn_source_folder(const char *root, cnn_source_opts *o, cnn_cache *out);
/* A CSV file the same way (fingerprint: its size and time, the shape). */
cnn_status cnn_source_csv(const char *path, cnn_source_opts *o, cnn_cache *out);

#endif
