/* safetensors.c — models and checkpoints as safetensors files
 * (github.com/huggingface/safetensors), loadable by PyTorch.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON (padded with
 * spaces to a multiple of 8), then the data buffer. The JSON maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the buffer) and "__metadata__" to string pairs.
 *
 * Tensor names follow torch.nn.Sequential's state_dict ("0.weight",
 * "3.running_mean", "3.num_batches_tracked"), so
 * Sequential(...).load_state_dict(tensors, strict=True) accepts a model
 * file. Checkpoints add "optim.m.<name>" / "optim.v.<name>" tensors and the
 * optimizer kind, step and RNG state in the metadata.
 *
 * Every file is treated as hostile: all sizes are checked against the file
 * before anything is allocated or read, and the model is only written to
 * once every check has passed. */
#define _XOPEN_SOURCE 700
#include "model/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20)
#define ST_MAX_DIMS 8
/* Loading stores each metadata entry with cnn_model_set_meta, which looks
 * for the key among those already stored: bounded here, or a hostile header
 * of millions of keys takes hours (tests/fuzz/FINDINGS.md F1). Our own files
 * hold a dozen. */
#define ST_MAX_META 1024
#define ST_MAX_ARCH 65536
/* JSON numbers are doubles: integers above 2^53 would not be exact */
#define ST_MAX_JSON_INT 9007199254740992.0

/* ------------------------------------------------------------ endianness */

/* The format is little-endian; so is every machine we expect, but a
 * big-endian host swaps bytes instead of writing a file nobody can read. */
static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void swap_bytes(void *buf, size_t count, size_t elsize)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < count; i++, p += elsize)
        for (size_t a = 0, b = elsize - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
    {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1},
    {"F8_E4M3", 1}, {"F8_E5M2", 1},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))
#define DT_F32 0

static int dtype_lookup(const char *name)
{
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0) return i;
    return -1;
}

static int is_batchnorm(const cnn_layer *l) { return strcmp(l->ops->kind, "batchnorm") == 0; }

/* Metadata keys the writer sets itself; a user key of the same name would
 * make a duplicate JSON key, so it is not written twice nor read back. */
static int reserved_meta(const char *key)
{
    static const char *const keys[] = {"format", "format_version", "arch",
                                       "optim_kind", "optim_step", "rng"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i], key) == 0) return 1;
    return 0;
}

static void shape_text(char *out, size_t cap, int ndim, const long long *dims)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", dims[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static void param_shape_text(char *out, size_t cap, const cnn_param *p)
{
    long long d[4];
    for (int i = 0; i < p->ndim; i++) d[i] = p->dims[i];
    shape_text(out, cap, p->ndim, d);
}

/* ================================================================ saving */

typedef struct {
    char name[64];
    int dtype;
    int ndim;
    long long dims[4];
    const void *data;
    size_t nbytes;
} out_tensor;

/* The tensors to write, in state_dict order. */
typedef struct {
    out_tensor *t;
    int n;
    int64_t batches_tracked; /* the value of every num_batches_tracked */
} out_list;

static void add_out(out_list *L, const char *prefix, const cnn_named_param *np, const float *data)
{
    out_tensor *o = &L->t[L->n++];
    snprintf(o->name, sizeof o->name, "%s%s", prefix, np->name);
    o->dtype = DT_F32;
    o->ndim = np->p->ndim;
    for (int i = 0; i < o->ndim; i++) o->dims[i] = np->p->dims[i];
    o->data = data;
    o->nbytes = np->p->size * sizeof(float);
}

/* The weights and buffers; with_state: the optimizer's moments too, as
 * zeros where the optimizer keeps none (plain SGD, v of momentum), so every
 * checkpoint has the same tensors whatever its optimizer. */
static cnn_status collect_tensors(cnn_model *m, int with_state, out_list *L)
{
    L->n = 0;
    L->t = calloc((size_t)m->ntensors * 3 + (size_t)m->nlayers + 1, sizeof *L->t);
    if (!L->t) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->ntensors; i++) {
        add_out(L, "", &m->tensors[i], m->tensors[i].p->data);
        int last_of_layer = i + 1 == m->ntensors || m->tensors[i + 1].layer != m->tensors[i].layer;
        if (last_of_layer && is_batchnorm(m->layers[m->tensors[i].layer])) {
            out_tensor *o = &L->t[L->n++];
            snprintf(o->name, sizeof o->name, "%d.num_batches_tracked", m->tensors[i].layer);
            o->dtype = dtype_lookup("I64");
            o->ndim = 0;
            o->data = &L->batches_tracked;
            o->nbytes = sizeof(int64_t);
        }
    }
    if (with_state)
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < m->ntensors; i++) {
                cnn_param *p = m->tensors[i].p;
                if (!p->trainable) continue;
                const float *state = pass ? m->opt_v : m->opt_m;
                size_t off = (size_t)(p->data - m->params);
                add_out(L, pass ? CNN_OPTIM_V_PREFIX : CNN_OPTIM_M_PREFIX, &m->tensors[i],
                        state ? state + off : NULL);
            }
    return CNN_OK;
}

/* The JSON header padded with spaces to a multiple of 8 (NULL on OOM). */
static char *build_header(cnn_model *m, const out_list *L, int with_state, int opt_kind,
                          long opt_step, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    int ok = root && meta && cJSON_AddStringToObject(meta, "format", "cnn") &&
             cJSON_AddStringToObject(meta, "format_version", "1") &&
             cJSON_AddStringToObject(meta, "arch", m->arch);
    for (int i = 0; ok && i < m->nmeta; i++)
        if (!reserved_meta(m->meta_key[i]))
            ok = cJSON_AddStringToObject(meta, m->meta_key[i], m->meta_val[i]) != NULL;
    if (ok && with_state) {
        char num[32], rng[65];
        cnn_model_rng_to_hex(m, rng);
        ok = cJSON_AddStringToObject(meta, "rng", rng) != NULL;
        if (ok && opt_kind >= 0) {
            snprintf(num, sizeof num, "%d", opt_kind);
            ok = cJSON_AddStringToObject(meta, "optim_kind", num) != NULL;
            snprintf(num, sizeof num, "%ld", opt_step);
            ok = ok && cJSON_AddStringToObject(meta, "optim_step", num) != NULL;
        }
    }
    size_t off = 0;
    for (int i = 0; ok && i < L->n; i++) {
        const out_tensor *o = &L->t[i];
        cJSON *t = cJSON_AddObjectToObject(root, o->name);
        ok = t && cJSON_AddStringToObject(t, "dtype", dtypes[o->dtype].name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offs != NULL;
        for (int d = 0; ok && d < o->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)o->dims[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + o->nbytes)));
        off += o->nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) & ~(size_t)7;
    char *h = malloc(padded + 1);
    if (h) {
        memcpy(h, json, n);
        memset(h + n, ' ', padded - n);
        h[padded] = '\0';
        *len = padded;
    }
    cJSON_free(json);
    return h;
}

/* Write data as little-endian elements of elsize bytes (zeros for NULL). */
static int write_le(FILE *f, const void *data, size_t nbytes, size_t elsize)
{
    if (!data) {
        static const uint8_t zeros[1 << 12];
        for (size_t k; nbytes > 0; nbytes -= k) {
            k = nbytes < sizeof zeros ? nbytes : sizeof zeros;
            if (fwrite(zeros, 1, k, f) != k) return 0;
        }
        return 1;
    }
    if (host_is_little_endian()) return fwrite(data, 1, nbytes, f) == nbytes;
    uint8_t chunk[1 << 16];
    const uint8_t *p = data;
    while (nbytes > 0) {
        size_t k = nbytes < sizeof chunk ? nbytes : sizeof chunk;
        memcpy(chunk, p, k);
        swap_bytes(chunk, k / elsize, elsize);
        if (fwrite(chunk, 1, k, f) != k) return 0;
        p += k;
        nbytes -= k;
    }
    return 1;
}

cnn_status cnn_model_save(cnn_model *m, const char *path, int with_train_state)
{
    if (!m || !path || !*path) return cnn_fail(CNN_ERR_ARG, "cnn_model_save: no model or path");
    if (m->shapes_only)
        return cnn_fail(CNN_ERR_ARG, "cnn_model_save: the model was built for its shapes only "
                        "and has no parameters");

    /* the optimizer state: the live one, or the one a checkpoint brought in
     * that no optimizer has taken over yet */
    int kind = m->has_opt ? (int)m->opt.kind : m->pending_kind;
    if (!with_train_state) kind = -1;

    out_list L;
    cnn_status st = collect_tensors(m, kind >= 0, &L);
    if (st != CNN_OK) return st;
    L.batches_tracked = m->step;
    size_t hlen = 0;
    char *header = build_header(m, &L, with_train_state, kind, m->step, &hlen);
    if (!header) {
        free(L.t);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    /* written atomically (src/core/file.c): an interrupted save leaves the
     * previous file whole */
    cnn_outfile o;
    st = cnn_out_open(&o, path);
    if (st == CNN_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        int ok = fwrite(len8, 1, 8, o.f) == 8 && fwrite(header, 1, hlen, o.f) == hlen;
        for (int i = 0; ok && i < L.n; i++)
            ok = write_le(o.f, L.t[i].data, L.t[i].nbytes, dtypes[L.t[i].dtype].size);
        st = cnn_out_commit(&o); /* a failed write left the stream's error flag set */
    }
    free(header);
    free(L.t);
    return st;
}

/* =============================================================== loading */

typedef struct {
    const char *name;     /* points into the parsed JSON */
    int dtype;
    int ndim;
    long long dims[ST_MAX_DIMS];
    uint64_t begin, end;  /* within the data buffer */
} st_entry;

typedef struct {
    const char *path;
    FILE *f;
    uint64_t data_start, data_size;
    cJSON *root;
    cJSON *meta;          /* __metadata__ or NULL */
    st_entry *e;
    int n;
} st_file;

static void st_close(st_file *s)
{
    if (s->f) fclose(s->f);
    cJSON_Delete(s->root);
    free(s->e);
    memset(s, 0, sizeof *s);
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_JSON_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static cnn_status parse_entry(st_file *s, const cJSON *item, st_entry *e)
{
    const char *p = s->path, *name = item->string;
    e->name = name;
    if (!cJSON_IsObject(item))
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", p, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: tensor '%s' needs a string 'dtype' and arrays 'shape' and 'data_offsets'",
                        p, name);
    e->dtype = dtype_lookup(dt->valuestring);
    if (e->dtype < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", p, name,
                        dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > ST_MAX_DIMS)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d supported)",
                        p, name, nd, ST_MAX_DIMS);
    e->ndim = nd;
    size_t count = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: tensor '%s': shape entry %d is not a non-negative whole number",
                            p, name, i);
        e->dims[i] = (long long)v;
        count = cnn_mul_size(count, (size_t)v);
    }
    size_t nbytes = cnn_mul_size(count, dtypes[e->dtype].size);
    if (cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &e->begin) ||
        !json_uint(offs->child->next, &e->end))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets must be two non-negative whole numbers", p,
                        name);
    if (e->begin > e->end || e->end > s->data_size)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] out of order or beyond the "
                        "%llu-byte data buffer",
                        p, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)s->data_size);
    if (nbytes == SIZE_MAX || e->end - e->begin != nbytes) {
        char sh[160];
        shape_text(sh, sizeof sh, e->ndim, e->dims);
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets span %llu bytes but shape %s of %s needs %s",
                        p, name, (unsigned long long)(e->end - e->begin), sh,
                        dtypes[e->dtype].name, nbytes == SIZE_MAX ? "more than fits in memory" : "a different size");
    }
    return CNN_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(st_entry *const *)a)->name, (*(st_entry *const *)b)->name);
}

/* Duplicate names and overlapping data, both found by sorting. */
static cnn_status check_entries(st_file *s)
{
    if (s->n < 2) return CNN_OK;
    st_entry **v = malloc(sizeof *v * (size_t)s->n);
    if (!v) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", s->path);
    cnn_status st = CNN_OK;
    for (int i = 0; i < s->n; i++) v[i] = &s->e[i];
    qsort(v, (size_t)s->n, sizeof *v, cmp_name);
    for (int i = 1; i < s->n && st == CNN_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' appears twice", s->path, v[i]->name);
    qsort(v, (size_t)s->n, sizeof *v, cmp_begin);
    uint64_t end = 0;
    const char *prev = NULL;
    for (int i = 0; i < s->n && st == CNN_OK; i++) {
        if (v[i]->begin == v[i]->end) continue; /* empty tensors take no room */
        if (prev && v[i]->begin < end)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: the data of tensors '%s' and '%s' overlap", s->path,
                          prev, v[i]->name);
        end = v[i]->end;
        prev = v[i]->name;
    }
    free(v);
    return st;
}

static cnn_status st_open(const char *path, st_file *s)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    long long fsize;
    cnn_status fst = cnn_fopen_input(path, "a model file", &s->f, &fsize);
    if (fst != CNN_OK) return fst;
    uint64_t size = (uint64_t)fsize;
    uint8_t len8[8];
    if (size < 8)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %llu bytes is too short for a safetensors file (8-byte header length "
                        "missing)", path, (unsigned long long)size);
    if (fread(len8, 1, 8, s->f) != 8)
        return cnn_fail(CNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > ST_MAX_HEADER)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header length %llu is larger than the %llu-byte limit "
                        "(not a safetensors file?)", path, (unsigned long long)hlen,
                        (unsigned long long)ST_MAX_HEADER);
    if (hlen > size - 8)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header length %llu goes beyond the end of the file "
                        "(%llu bytes)", path, (unsigned long long)hlen, (unsigned long long)size);
    if (hlen < 2)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header of %llu bytes cannot hold a JSON object", path,
                        (unsigned long long)hlen);
    s->data_start = 8 + hlen;
    s->data_size = size - 8 - hlen;

    char *h = malloc((size_t)hlen + 1);
    if (!h) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                            (unsigned long long)hlen);
    if (fread(h, 1, (size_t)hlen, s->f) != hlen) {
        free(h);
        return cnn_fail(CNN_ERR_IO, "%s: read error in the header", path);
    }
    h[hlen] = '\0';
    const char *end = NULL;
    if (h[0] != '{') {
        free(h);
        return cnn_fail(CNN_ERR_FORMAT, "%s: the header does not start with a JSON object '{'", path);
    }
    s->root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!s->root) {
        long at = end && end >= h && end <= h + hlen ? (long)(end - h) : -1;
        free(h);
        return cnn_fail(CNN_ERR_FORMAT, "%s: malformed JSON in the header (near byte %ld)", path, at);
    }
    /* after the object only the padding may follow */
    long junk = -1;
    for (const char *q = end; q && q < h + hlen && junk < 0; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') junk = (long)(q - h);
    free(h);
    if (junk >= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: unexpected bytes after the JSON header (byte %ld)",
                        path, junk);
    if (!cJSON_IsObject(s->root))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the header is not a JSON object", path);

    int count = 0;
    for (const cJSON *c = s->root->child; c; c = c->next) count++;
    s->e = calloc((size_t)count + 1, sizeof *s->e);
    if (!s->e) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    for (cJSON *c = s->root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (s->meta)
                return cnn_fail(CNN_ERR_FORMAT, "%s: __metadata__ appears twice", path);
            if (!cJSON_IsObject(c))
                return cnn_fail(CNN_ERR_FORMAT, "%s: __metadata__ is not a JSON object", path);
            int nkeys = 0;
            for (const cJSON *kv = c->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv))
                    return cnn_fail(CNN_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                                    path, kv->string);
                if (++nkeys > ST_MAX_META)
                    return cnn_fail(CNN_ERR_FORMAT,
                                    "%s: __metadata__ has more than %d entries (not a model file?)",
                                    path, ST_MAX_META);
            }
            s->meta = c;
            continue;
        }
        cnn_status st = parse_entry(s, c, &s->e[s->n]);
        if (st != CNN_OK) return st;
        s->n++;
    }
    return check_entries(s);
}

static const char *st_meta(const st_file *s, const char *key)
{
    if (!s->meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int find_tensor(const cnn_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

/* Does file entry e hold a tensor of exactly p's shape, as F32? */
static cnn_status check_shape(const st_file *s, const st_entry *e, const cnn_param *p)
{
    int same = e->dtype == DT_F32 && e->ndim == p->ndim;
    for (int i = 0; same && i < p->ndim; i++) same = e->dims[i] == p->dims[i];
    if (same) return CNN_OK;
    char fs[160], ms[160];
    shape_text(fs, sizeof fs, e->ndim, e->dims);
    param_shape_text(ms, sizeof ms, p);
    return cnn_fail(CNN_ERR_FORMAT,
                    "%s: tensor '%s' is %s %s in the file but the model needs F32 %s", s->path,
                    e->name, dtypes[e->dtype].name, fs, ms);
}

/* Which file entry feeds each model tensor (and its optimizer state). */
typedef struct {
    int *weight, *om, *ov; /* per model tensor: index into s->e, or -1 */
    int n_optim;
} st_match;

static void match_free(st_match *x)
{
    free(x->weight);
    free(x->om);
    free(x->ov);
}

static cnn_status match_tensors(const st_file *s, const cnn_model *m, st_match *x)
{
    size_t nt = (size_t)m->ntensors + 1;
    x->n_optim = 0;
    x->weight = malloc(sizeof(int) * nt);
    x->om = malloc(sizeof(int) * nt);
    x->ov = malloc(sizeof(int) * nt);
    if (!x->weight || !x->om || !x->ov) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", s->path);
    for (int i = 0; i < m->ntensors; i++) x->weight[i] = x->om[i] = x->ov[i] = -1;

    for (int k = 0; k < s->n; k++) {
        const st_entry *e = &s->e[k];
        const char *name = e->name;
        int *slot = x->weight;
        if (starts_with(name, CNN_OPTIM_M_PREFIX)) {
            slot = x->om;
            name += strlen(CNN_OPTIM_M_PREFIX);
        } else if (starts_with(name, CNN_OPTIM_V_PREFIX)) {
            slot = x->ov;
            name += strlen(CNN_OPTIM_V_PREFIX);
        } else if (ends_with(name, ".num_batches_tracked")) {
            continue; /* PyTorch's counter; ours is the optimizer step */
        }
        int t = find_tensor(m, name);
        if (t < 0 || (slot != x->weight && !m->tensors[t].p->trainable))
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: unknown tensor '%s': the model has no such %s (does the "
                            "architecture match?)",
                            s->path, e->name, slot == x->weight ? "tensor" : "trainable tensor");
        cnn_status st = check_shape(s, e, m->tensors[t].p);
        if (st != CNN_OK) return st;
        slot[t] = k;
        if (slot != x->weight) x->n_optim++;
    }
    for (int i = 0; i < m->ntensors; i++)
        if (x->weight[i] < 0) {
            char ms[160];
            param_shape_text(ms, sizeof ms, m->tensors[i].p);
            return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (F32 %s) is missing from the file",
                            s->path, m->tensors[i].name, ms);
        }
    return CNN_OK;
}

/* Read entry e's F32 data into dst and check every value is finite. */
static cnn_status read_f32(const st_file *s, const st_entry *e, float *dst)
{
    size_t count = (size_t)(e->end - e->begin) / sizeof(float);
    if (fseeko(s->f, (off_t)(s->data_start + e->begin), SEEK_SET) != 0 ||
        fread(dst, sizeof(float), count, s->f) != count)
        return cnn_fail(CNN_ERR_IO, "%s: read error in the data of tensor '%s'", s->path, e->name);
    if (!host_is_little_endian()) swap_bytes(dst, count, sizeof(float));
    long bad = cnn_first_nonfinite(dst, count);
    if (bad >= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' holds a NaN or Inf (element %ld)", s->path,
                        e->name, bad);
    return CNN_OK;
}

static cnn_status parse_long(const st_file *s, const char *key, long lo, long hi, long *out)
{
    const char *v = st_meta(s, key);
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata '%s' must be a whole number from %ld to %ld, "
                        "got %s%.40s%s", s->path, key, lo, hi, v ? "'" : "", v ? v : "nothing",
                        v ? "'" : "");
    *out = x;
    return CNN_OK;
}

/* Read a checkpoint's optimizer state of kind at step straight into the
 * arrays m's optimizer will use, to be taken over by the next
 * cnn_model_set_optimizer of that kind. A moment the kind does not keep
 * (zeros in our files) is still read and checked, into a one-tensor
 * buffer that is then dropped. */
static cnn_status read_state(st_file *s, cnn_model *m, const st_match *x, cnn_opt_kind kind,
                             long step)
{
    cnn_status st = cnn_model_reset_state(m, kind);
    if (st != CNN_OK) return cnn_fail_prefix(st, "%s", s->path);
    size_t largest = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].p->trainable && m->tensors[i].p->size > largest)
            largest = m->tensors[i].p->size;
    float *dropped = NULL;
    if ((!m->opt_m || !m->opt_v) && largest > 0) {
        dropped = cnn_alloc(sizeof(float) * largest, "loading optimizer state");
        if (!dropped) return cnn_fail_prefix(CNN_ERR_NOMEM, "%s", s->path);
    }
    for (int i = 0; st == CNN_OK && i < m->ntensors; i++) {
        if (!m->tensors[i].p->trainable) continue;
        size_t off = (size_t)(m->tensors[i].p->data - m->params);
        st = read_f32(s, &s->e[x->om[i]], m->opt_m ? m->opt_m + off : dropped);
        if (st == CNN_OK) st = read_f32(s, &s->e[x->ov[i]], m->opt_v ? m->opt_v + off : dropped);
    }
    cnn_free(dropped);
    m->step = step;
    m->pending_kind = (int)kind;
    return st;
}

/* Copy the file's tensors into m. with_state: restore the optimizer state
 * and RNG too (a fresh model from cnn_model_load). The weights land in a
 * scratch copy first so a failure leaves m's weights as they were. */
static cnn_status apply_file(st_file *s, cnn_model *m, int with_state)
{
    st_match x = {0};
    cnn_status st = match_tensors(s, m, &x);
    float *scratch = NULL;
    long kind = -1, step = 0;
    if (st == CNN_OK && with_state) {
        int has_kind = st_meta(s, "optim_kind") != NULL;
        if (x.n_optim > 0 || has_kind) {
            if ((st = parse_long(s, "optim_kind", 0, CNN_OPT_ADAMW, &kind)) == CNN_OK)
                st = parse_long(s, "optim_step", 0, 1L << 62, &step);
            for (int i = 0; st == CNN_OK && i < m->ntensors; i++)
                if (m->tensors[i].p->trainable && (x.om[i] < 0 || x.ov[i] < 0))
                    st = cnn_fail(CNN_ERR_FORMAT,
                                  "%s: optimizer state for '%s' is missing (an incomplete "
                                  "checkpoint)", s->path, m->tensors[i].name);
        }
    }
    if (st == CNN_OK) {
        scratch = cnn_alloc(sizeof(float) * m->nfloats, "loading weights");
        if (!scratch) st = CNN_ERR_NOMEM;
    }
    for (int i = 0; st == CNN_OK && i < m->ntensors; i++)
        st = read_f32(s, &s->e[x.weight[i]], scratch + (m->tensors[i].p->data - m->params));
    if (st == CNN_OK && kind >= 0) st = read_state(s, m, &x, (cnn_opt_kind)kind, step);
    if (st == CNN_OK && with_state && st_meta(s, "rng") &&
        (st = cnn_model_rng_from_hex(m, st_meta(s, "rng"))) != CNN_OK)
        st = cnn_fail_prefix(st, "%s: metadata 'rng'", s->path);
    if (st == CNN_OK) cnn_model_set_params(m, scratch);
    cnn_free(scratch);
    match_free(&x);
    return st;
}

cnn_status cnn_model_load(const char *path, cnn_model **out)
{
    if (!out) return cnn_fail(CNN_ERR_ARG, "cnn_model_load: no output pointer");
    *out = NULL;
    if (!path) return cnn_fail(CNN_ERR_ARG, "cnn_model_load: no path");
    st_file s;
    cnn_model *m = NULL;
    cnn_status st = st_open(path, &s);
    const char *arch = st == CNN_OK ? st_meta(&s, "arch") : NULL;
    const char *format = st == CNN_OK ? st_meta(&s, "format") : NULL;
    const char *version = st == CNN_OK ? st_meta(&s, "format_version") : NULL;
    if (st == CNN_OK && format && strcmp(format, "cnn") != 0 && !arch)
        st = cnn_fail(CNN_ERR_FORMAT,
                      "%s: written by another program (format '%.32s'), it has no architecture; "
                      "build the model from an architecture file and load the weights into it",
                      path, format);
    else if (st == CNN_OK && !arch)
        st = cnn_fail(CNN_ERR_FORMAT,
                      "%s: no 'arch' in __metadata__: not a cnn model file (build the model from "
                      "an architecture file and load the weights into it)", path);
    else if (st == CNN_OK && version && strcmp(version, "1") != 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: format_version '%.32s' is not supported (this build "
                      "reads version 1)", path, version);
    /* The limit of an architecture file (cnn_model_from_file): every line
     * is a layer costing ~0.5 KB, and a header may hold 100 MB of "relu"
     * lines (tests/fuzz/FINDINGS.md F2). */
    else if (st == CNN_OK && strlen(arch) > ST_MAX_ARCH)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: the 'arch' metadata is %zu bytes, more than the %d-byte "
                      "limit of an architecture", path, strlen(arch), ST_MAX_ARCH);
    if (st == CNN_OK) {
        size_t nlen = strlen(path) + 8;
        char *name = malloc(nlen);
        if (!name) {
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        } else {
            snprintf(name, nlen, "%s: arch", path);
            /* The file holds at most data_size/4 floats; the model pads each
             * tensor to 16 floats. Refuse an architecture far larger than the
             * file before allocating for it (the exact per-tensor checks,
             * with their precise messages, come after). */
            size_t cap = 2 * (size_t)(s.data_size / sizeof(float)) + 4096;
            st = cnn_model_from_text_limited(arch, name, cap, &m);
            free(name);
        }
    }
    if (st == CNN_OK) st = apply_file(&s, m, 1);
    for (const cJSON *kv = s.meta ? s.meta->child : NULL; st == CNN_OK && kv; kv = kv->next)
        if (!reserved_meta(kv->string) && *kv->string)
            st = cnn_model_set_meta(m, kv->string, kv->valuestring);
    st_close(&s);
    if (st != CNN_OK) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

cnn_status cnn_model_load_weights(cnn_model *m, const char *path)
{
    if (!m || !path) return cnn_fail(CNN_ERR_ARG, "cnn_model_load_weights: no model or path");
    if (m->shapes_only)
        return cnn_fail(CNN_ERR_ARG, "cnn_model_load_weights: the model was built for its shapes "
                        "only and has no parameters");
    st_file s;
    cnn_status st = st_open(path, &s);
    if (st == CNN_OK) st = apply_file(&s, m, 0);
    st_close(&s);
    return st;
}
