/* model.c — a sequential model: parsing the architecture text, shape
 * inference, buffers allocated once, and the forward / loss / backward of
 * one batch (the optimizer step: step.c; metadata: meta.c; shard workers:
 * shard.c; what a model needs in memory: memory.c). */
#include "model/model.h"
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ layer kinds */

static const struct {
    const char *kind;
    cnn_layer_create_fn create;
} kinds[] = {
    {"conv", cnn_conv2d_create},      {"maxpool", cnn_maxpool_create},
    {"avgpool", cnn_avgpool_create},  {"dense", cnn_dense_create},
    {"flatten", cnn_flatten_create},  {"relu", cnn_relu_create},
    {"leaky_relu", cnn_leaky_relu_create}, {"sigmoid", cnn_sigmoid_create},
    {"tanh", cnn_tanh_create},        {"softmax", cnn_softmax_create},
    {"dropout", cnn_dropout_create},  {"batchnorm", cnn_batchnorm_create},
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

cnn_layer_create_fn cnn_layer_lookup(const char *kind)
{
    for (int i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i].kind, kind) == 0) return kinds[i].create;
    return NULL;
}

/* -------------------------------------------------------------- building */

/* Largest activation (per image) any layer may produce: keeps every size
 * computation far from int overflow. */
#define MAX_ACT_PER_IMAGE ((size_t)1 << 28)

static void free_layers(cnn_model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = m->layers[i];
        if (l->ops->destroy) l->ops->destroy(l);
        free(l);
    }
    free(m->layers);
    m->layers = NULL;
    m->nlayers = 0;
}

static void free_batch_buffers(cnn_model *m)
{
    if (m->act)
        for (int i = 0; i <= m->nlayers; i++) cnn_free(m->act[i]);
    free(m->act);
    m->act = NULL;
    cnn_free(m->dbuf[0]);
    cnn_free(m->dbuf[1]);
    cnn_free(m->target);
    m->dbuf[0] = m->dbuf[1] = m->target = NULL;
    m->max_batch = 0;
}

void cnn_model_free(cnn_model *m)
{
    if (!m) return;
    cnn_shards_free(m);
    free_batch_buffers(m);
    free_layers(m);
    cnn_free(m->params);
    cnn_free(m->grads);
    cnn_free(m->opt_m);
    cnn_free(m->opt_v);
    free(m->tensors);
    for (int i = 0; i < m->nmeta; i++) {
        free(m->meta_key[i]);
        free(m->meta_val[i]);
    }
    free(m->meta_key);
    free(m->meta_val);
    free(m->arch);
    free(m);
}

static cnn_status parse_input(cnn_spec_line *s, cnn_shape *in)
{
    if (strcmp(s->words[0], "input") != 0)
        return cnn_fail(CNN_ERR_PARSE,
                        "%s:%d: the first line must be 'input CxHxW' (e.g. input 1x28x28), got '%s'",
                        s->file, s->line, s->words[0]);
    const char *t = s->nwords > 1 ? s->words[1] : "";
    int c, h, w, used = 0;
    if (s->nwords != 2 || sscanf(t, "%dx%dx%d%n", &c, &h, &w, &used) != 3 ||
        t[used] != '\0')
        return cnn_spec_error(s, "expected one shape CxHxW, e.g. 'input 1x28x28'");
    if (c < 1 || h < 1 || w < 1 || c > 65536 || h > 65536 || w > 65536 ||
        (size_t)c * h * w > MAX_ACT_PER_IMAGE)
        return cnn_spec_error(s, "input shape %dx%dx%d is out of range", c, h, w);
    *in = (cnn_shape){c, h, w};
    return CNN_OK;
}

/* More layers than any real network has; a cap keeps a hostile text from
 * building (and then drawing weights for) a model of millions of lines. */
#define MAX_LAYERS 1024

static cnn_status add_layer(cnn_model *m, cnn_layer *l)
{
    cnn_layer **grown = realloc(m->layers, sizeof *grown * (size_t)(m->nlayers + 1));
    if (!grown) return cnn_fail(CNN_ERR_NOMEM, "out of memory building the model");
    m->layers = grown;
    m->layers[m->nlayers++] = l;
    return CNN_OK;
}

static cnn_status known_kinds_error(cnn_spec_line *s)
{
    char list[256] = "";
    for (int i = 0; i < NKINDS; i++) {
        strcat(list, i ? ", " : "");
        strcat(list, kinds[i].kind);
    }
    return cnn_fail(CNN_ERR_PARSE, "%s:%d: unknown layer '%s' (known: %s)", s->file, s->line,
                    s->words[0], list);
}

/* Lay out every parameter in one allocation and every gradient in another
 * (with_params), or only describe them (data and grad stay NULL: a model
 * built for its shapes). max_floats caps the total before anything is
 * allocated (a loader passes what its file can hold, so a hostile
 * architecture cannot make it allocate gigabytes). */
static cnn_status place_params(cnn_model *m, const char *name, size_t max_floats,
                               int with_params)
{
    size_t total = 0;
    int ntensors = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i]->nparams; j++) {
            size_t sz = m->layers[i]->params[j].size;
            /* 16-float alignment of each tensor keeps vector loads aligned */
            total = cnn_add_size(total, (sz + 15) & ~(size_t)15);
            if (with_params && total > CNN_MAX_ALLOC / sizeof(float))
                return cnn_fail(CNN_ERR_NOMEM,
                                "the model is too large: its parameters would need more than %.0f GiB",
                                (double)CNN_MAX_ALLOC / (1 << 30));
            ntensors++;
        }
    if (total > max_floats)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: the architecture needs %zu parameters, more than the %zu the file "
                        "can hold", name, total, max_floats);
    m->nfloats = total;
    if (with_params) {
        /* the whole need, before either allocation */
        size_t need = cnn_add_size(cnn_alloc_charge(total * sizeof(float)),
                                   cnn_alloc_charge(total * sizeof(float)));
        if (need > cnn_memory_limit()) {
            char b[32], l[160];
            cnn_format_bytes(b, sizeof b, (double)need);
            cnn_format_limit(l, sizeof l);
            return cnn_fail(CNN_ERR_NOMEM,
                            "%s: the model's %zu parameters and their gradients need %s; the "
                            "memory limit is %s", name, total, b, l);
        }
        m->params = cnn_alloc(total * sizeof(float), "the model's parameters");
        m->grads = cnn_alloc(total * sizeof(float), "the model's gradients");
        if (!m->params || !m->grads) return CNN_ERR_NOMEM;
    }
    m->tensors = calloc((size_t)ntensors + 1, sizeof *m->tensors);
    if (!m->tensors) return cnn_fail(CNN_ERR_NOMEM, "out of memory building the model");
    size_t off = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i]->nparams; j++) {
            cnn_param *p = &m->layers[i]->params[j];
            p->data = with_params ? m->params + off : NULL;
            p->grad = with_params && p->trainable ? m->grads + off : NULL;
            off += (p->size + 15) & ~(size_t)15;
            cnn_named_param *t = &m->tensors[m->ntensors++];
            snprintf(t->name, sizeof t->name, "%d.%s", i, p->name);
            t->layer = i;
            t->p = p;
        }
    return CNN_OK;
}

static cnn_status build(const char *text, const char *name, size_t max_floats, int with_params,
                        cnn_model **out);

cnn_status cnn_model_from_text(const char *text, const char *name, cnn_model **out)
{
    return cnn_model_from_text_limited(text, name, SIZE_MAX, out);
}

cnn_status cnn_model_from_text_limited(const char *text, const char *name, size_t max_floats,
                                       cnn_model **out)
{
    return build(text, name, max_floats, 1, out);
}

cnn_status cnn_model_shapes_from_text(const char *text, const char *name, cnn_model **out)
{
    return build(text, name, SIZE_MAX, 0, out);
}

/* Parse `text` into layers and shapes; with_params, also allocate and draw
 * the parameters. */
static cnn_status build(const char *text, const char *name, size_t max_floats, int with_params,
                        cnn_model **out)
{
    *out = NULL;
    if (!text) return cnn_fail(CNN_ERR_ARG, "no architecture text given");
    if (!name) name = "<architecture>";
    cnn_model *m = calloc(1, sizeof *m);
    char *copy = strdup(text);
    if (!m || !copy) {
        free(m);
        free(copy);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory reading %s", name);
    }
    m->arch = strdup(text);
    m->kernels = CNN_KERNELS_FAST;
    m->pending_kind = -1;
    m->param_version = 1;
    cnn_rng_seed(&m->rng, 0);

    cnn_status st = CNN_OK;
    int have_input = 0, lineno = 0;
    cnn_shape shape = {0, 0, 0};
    char *save = NULL;
    for (char *p = copy; p && st == CNN_OK; p = save) {
        char *nl = strchr(p, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        lineno++;
        if (strlen(p) > 1000) {
            st = cnn_fail(CNN_ERR_PARSE, "%s:%d: line too long", name, lineno);
            break;
        }
        cnn_spec_line s;
        if ((st = cnn_spec_split(p, name, lineno, &s)) != CNN_OK) break;
        if (s.nwords == 0) continue;
        if (!have_input) {
            st = parse_input(&s, &shape);
            m->input = shape;
            have_input = 1;
            continue;
        }
        if (m->nlayers >= MAX_LAYERS) {
            st = cnn_fail(CNN_ERR_PARSE, "%s:%d: more than %d layers", name, lineno, MAX_LAYERS);
            break;
        }
        cnn_layer_create_fn create = cnn_layer_lookup(s.words[0]);
        if (!create) {
            st = strcmp(s.words[0], "input") == 0
                     ? cnn_spec_error(&s, "only the first line may be 'input'")
                     : known_kinds_error(&s);
            break;
        }
        cnn_layer *l = NULL;
        if ((st = create(&s, shape, &l)) != CNN_OK) break;
        l->line = lineno;
        l->rng = &m->rng;
        l->version = &m->param_version;
        if ((st = add_layer(m, l)) != CNN_OK) {
            if (l->ops->destroy) l->ops->destroy(l);
            free(l);
            break;
        }
        if ((st = cnn_spec_check_all_used(&s)) != CNN_OK) break;
        if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1) {
            st = cnn_spec_error(&s, "output shape %dx%dx%d is empty", l->out.c, l->out.h,
                                l->out.w);
            break;
        }
        if (cnn_shape_size(l->out) > MAX_ACT_PER_IMAGE) {
            st = cnn_spec_error(&s, "output %dx%dx%d is too large (more than %zu values per image)",
                                l->out.c, l->out.h, l->out.w, MAX_ACT_PER_IMAGE);
            break;
        }
        shape = l->out;
    }
    free(copy);
    if (st == CNN_OK && !have_input)
        st = cnn_fail(CNN_ERR_PARSE, "%s: empty architecture: expected 'input CxHxW' and layers",
                      name);
    if (st == CNN_OK && m->nlayers == 0)
        st = cnn_fail(CNN_ERR_PARSE, "%s: the architecture has an input but no layers", name);
    if (st == CNN_OK && (m->layers[m->nlayers - 1]->out.h != 1 ||
                         m->layers[m->nlayers - 1]->out.w != 1))
        st = cnn_fail(CNN_ERR_PARSE,
                      "%s: the last layer's output is %dx%dx%d; a classifier must end flat "
                      "(add 'flatten' and 'dense K')",
                      name, m->layers[m->nlayers - 1]->out.c, m->layers[m->nlayers - 1]->out.h,
                      m->layers[m->nlayers - 1]->out.w);
    if (st == CNN_OK && !m->arch) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (st == CNN_OK) st = place_params(m, name, max_floats, with_params);
    if (st != CNN_OK) {
        cnn_model_free(m);
        return st;
    }
    m->shapes_only = !with_params;
    if (with_params) cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 0);
    *out = m;
    return CNN_OK;
}

/* Read an architecture file (at most 64 KiB of text) and build it. */
static cnn_status build_file(const char *path, int with_params, cnn_model **out)
{
    *out = NULL;
    FILE *f;
    cnn_status ost = cnn_fopen_input(path, "an architecture file", &f, NULL);
    if (ost != CNN_OK) return ost;
    char *buf = malloc(65537);
    if (!buf) {
        fclose(f);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, 65537, f);
    int err = ferror(f);
    fclose(f);
    cnn_status st;
    if (err)
        st = cnn_fail(CNN_ERR_IO, "%s: read error", path);
    else if (n > 65536)
        st = cnn_fail(CNN_ERR_PARSE, "%s: architecture file larger than 64 KiB", path);
    else if (memchr(buf, '\0', n))
        st = cnn_fail(CNN_ERR_PARSE, "%s: not a text file (contains NUL bytes)", path);
    else {
        buf[n] = '\0';
        st = build(buf, path, SIZE_MAX, with_params, out);
    }
    free(buf);
    return st;
}

cnn_status cnn_model_from_file(const char *path, cnn_model **out)
{
    return build_file(path, 1, out);
}

cnn_status cnn_model_shapes_from_file(const char *path, cnn_model **out)
{
    return build_file(path, 0, out);
}

/* Calls that need the parameters refuse a model built for its shapes. */
cnn_status cnn_model_need_params(const cnn_model *m, const char *what)
{
    if (m->shapes_only)
        return cnn_fail(CNN_ERR_ARG, "%s: the model was built for its shapes only and has no "
                        "parameters", what);
    return CNN_OK;
}

const char *cnn_model_arch(const cnn_model *m) { return m->arch; }

cnn_status cnn_model_init(cnn_model *m, cnn_init how, uint64_t seed)
{
    if (how != CNN_INIT_XAVIER_NORMAL && how != CNN_INIT_XAVIER_UNIFORM &&
        how != CNN_INIT_HE_NORMAL)
        return cnn_fail(CNN_ERR_ARG, "unknown initialisation %d", (int)how);
    if (cnn_model_need_params(m, "cnn_model_init")) return CNN_ERR_ARG;
    cnn_rng_seed(&m->rng, seed);
    for (int i = 0; i < m->ntensors; i++) cnn_param_init(m->tensors[i].p, how, &m->rng);
    cnn_model_params_changed(m);
    return CNN_OK;
}

void cnn_model_params_changed(cnn_model *m) { m->param_version++; }

void cnn_model_set_params(cnn_model *m, const float *from)
{
    memcpy(m->params, from, sizeof(float) * m->nfloats);
    cnn_model_params_changed(m);
}

/* ---------------------------------------------------------------- buffers */

/* The most threads m's kernels run on: a shard worker's, the most its
 * thread group can have (shard.c). */
static int model_threads_max(const cnn_model *m)
{
    if (m->is_worker) return m->worker_threads > 1 ? m->worker_threads : 1;
    return cnn_threads_max();
}

static cnn_status reserve_layers(cnn_model *m)
{
    /* sized for the most threads: the automatic count may go up and down
     * between batches without allocating */
    int threads = model_threads_max(m);
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = m->layers[i];
        if (l->ops->reserve) {
            cnn_status st = l->ops->reserve(l, m->max_batch, threads);
            if (st != CNN_OK)
                return cnn_fail_prefix(st, "layer %d (%s, line %d)", i, l->desc, l->line);
        }
    }
    m->reserved_threads = threads;
    return m->is_worker ? CNN_OK : cnn_shards_reserve(m);
}

cnn_status cnn_model_set_batch(cnn_model *m, int max_batch)
{
    if (max_batch < 1 || max_batch > (1 << 24))
        return cnn_fail(CNN_ERR_ARG, "batch size %d is out of range (1 to %d)", max_batch, 1 << 24);
    if (cnn_model_need_params(m, "cnn_model_set_batch")) return CNN_ERR_ARG;
    cnn_status st = cnn_model_check_need(m, max_batch, m->has_opt, cnn_model_state_arrays(m));
    if (st != CNN_OK) return st;
    free_batch_buffers(m);
    m->act = calloc((size_t)m->nlayers + 1, sizeof *m->act);
    if (!m->act) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    m->max_batch = max_batch;
    for (int i = 0; i < m->nlayers; i++) {
        m->act[i + 1] = cnn_alloc(sizeof(float) * max_batch * cnn_shape_size(m->layers[i]->out),
                                  "activations");
        if (!m->act[i + 1]) goto oom;
    }
    for (int k = 0; k < 2; k++) {
        m->dbuf[k] = cnn_alloc(sizeof(float) * max_batch * cnn_model_largest_activation(m), "gradients");
        if (!m->dbuf[k]) goto oom;
    }
    m->target = cnn_alloc(sizeof(float) * max_batch * cnn_model_output_size(m), "targets");
    if (!m->target) goto oom;
    st = reserve_layers(m);
    if (st != CNN_OK) {
        free_batch_buffers(m);
        return st;
    }
    return CNN_OK;
oom:
    st = cnn_fail_prefix(CNN_ERR_NOMEM, "batch %d", max_batch);
    free_batch_buffers(m);
    return st;
}

int cnn_model_max_batch(const cnn_model *m) { return m->max_batch; }

void cnn_model_set_kernels(cnn_model *m, cnn_kernels k)
{
    m->kernels = k;
    for (int i = 0; i < m->nlayers; i++) m->layers[i]->kernels = k;
}

cnn_kernels cnn_model_kernels(const cnn_model *m) { return m->kernels; }

/* ------------------------------------------------------------------ info */

void cnn_model_input_shape(const cnn_model *m, int *c, int *h, int *w)
{
    *c = m->input.c;
    *h = m->input.h;
    *w = m->input.w;
}

int cnn_model_output_size(const cnn_model *m)
{
    return (int)cnn_shape_size(m->layers[m->nlayers - 1]->out);
}

static int last_is(const cnn_model *m, const char *kind)
{
    return strcmp(m->layers[m->nlayers - 1]->ops->kind, kind) == 0;
}

int cnn_model_ends_in_softmax(const cnn_model *m) { return last_is(m, "softmax"); }

int cnn_model_num_layers(const cnn_model *m) { return m->nlayers; }

cnn_status cnn_model_layer_info(const cnn_model *m, int i, cnn_layer_info *out)
{
    if (i < 0 || i >= m->nlayers)
        return cnn_fail(CNN_ERR_ARG, "layer %d does not exist (the model has %d)", i, m->nlayers);
    const cnn_layer *l = m->layers[i];
    out->kind = l->ops->kind;
    out->desc = l->desc;
    out->torch = l->ops->torch;
    out->out_c = l->out.c;
    out->out_h = l->out.h;
    out->out_w = l->out.w;
    out->params = 0;
    for (int j = 0; j < l->nparams; j++)
        if (l->params[j].trainable) out->params += l->params[j].size;
    out->flops = l->ops->flops ? l->ops->flops(l) : 0.0;
    out->plan[0] = '\0';
    if (l->ops->plan) {
        const int set = m->max_batch > 0;
        l->ops->plan(l, set ? m->max_batch : 64, set ? m->reserved_threads : cnn_threads_max(),
                     out->plan, sizeof out->plan);
    }
    return CNN_OK;
}

size_t cnn_model_num_params(const cnn_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].p->trainable) n += m->tensors[i].p->size;
    return n;
}

double cnn_model_flops(const cnn_model *m)
{
    double f = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->ops->flops) f += m->layers[i]->ops->flops(m->layers[i]);
    return f;
}

int cnn_model_num_tensors(const cnn_model *m) { return m->ntensors; }

cnn_status cnn_model_tensor(cnn_model *m, int i, cnn_tensor *out)
{
    if (i < 0 || i >= m->ntensors)
        return cnn_fail(CNN_ERR_ARG, "tensor %d does not exist (the model has %d)", i, m->ntensors);
    cnn_param *p = m->tensors[i].p;
    cnn_model_params_changed(m); /* the caller may write through data */
    out->name = m->tensors[i].name;
    out->data = p->data;
    out->grad = p->grad;
    out->ndim = p->ndim;
    memcpy(out->dims, p->dims, sizeof out->dims);
    out->size = p->size;
    return CNN_OK;
}

/* --------------------------------------------------------------- forward */

static cnn_status check_batch(cnn_model *m, const float *x, int n)
{
    if (m->max_batch == 0)
        return cnn_fail(CNN_ERR_ARG, "cnn_model_set_batch must be called before running the model");
    if (n < 1 || n > m->max_batch)
        return cnn_fail(CNN_ERR_ARG, "batch of %d images, but the model was set up for 1 to %d",
                        n, m->max_batch);
    if (!x) return cnn_fail(CNN_ERR_ARG, "no input batch given");
    if (m->reserved_threads != model_threads_max(m)) return reserve_layers(m);
    return CNN_OK;
}

void cnn_model_run_forward(cnn_model *m, const float *x, int n, int train, int nt)
{
    m->last_x = x;
    for (int i = 0; i < m->nlayers; i++)
        m->layers[i]->ops->forward(m->layers[i], cnn_model_act(m, i), m->act[i + 1], n, train, nt);
}

/* Values per image in act[i]: the input's for i = 0, else layer i-1's output. */
static size_t act_size(const cnn_model *m, int i)
{
    return cnn_shape_size(i == 0 ? m->input : m->layers[i - 1]->out);
}

cnn_status cnn_model_image_fault(cnn_model *m, int row, int shown)
{
    const float *x = m->last_x + (size_t)row * act_size(m, 0);
    if (cnn_first_nonfinite(x, act_size(m, 0)) >= 0)
        return cnn_fail(CNN_ERR_NUMERIC, "image %d of the batch holds a NaN or Inf in its input",
                        shown);
    for (int i = 0; i < m->nlayers; i++) {
        const size_t size = act_size(m, i + 1);
        if (cnn_first_nonfinite(m->act[i + 1] + (size_t)row * size, size) >= 0)
            return cnn_fail(CNN_ERR_NUMERIC,
                            "non-finite value (NaN or Inf) in the output of layer %d (%s, line %d) "
                            "for image %d of the batch",
                            i, m->layers[i]->desc, m->layers[i]->line, shown);
    }
    return cnn_fail(CNN_ERR_NUMERIC, "non-finite value (NaN or Inf) in the output for image %d "
                    "of the batch", shown);
}

/* The first of n images whose values in act[i] hold a NaN or Inf, or -1. */
static int first_bad_image(const cnn_model *m, int i, int n)
{
    long bad = cnn_first_nonfinite(cnn_model_act(m, i), (size_t)n * act_size(m, i));
    return bad < 0 ? -1 : (int)(bad / (long)act_size(m, i));
}

/* Results come from finite outputs only: one scan of the outputs (and of
 * the loss's input, act[li], when a final softmax or sigmoid is fused into
 * the loss) after a forward of n images. If a value is NaN or Inf, the
 * fault names the first layer that produced it for the first such image:
 * from the batch's own activations, or, after a run in shards (whose
 * activations stayed with the workers), by running that image's shard
 * again, the same way, on a worker. */
static cnn_status check_outputs(cnn_model *m, const float *x, int n, int shards, int li)
{
    m->last_x = x; /* act[0], also after a sharded run */
    int row = first_bad_image(m, m->nlayers, n);
    if (row < 0 && li != m->nlayers) row = first_bad_image(m, li, n);
    if (row < 0) return CNN_OK;
    if (shards > 1) return cnn_shards_image_fault(m, x, n, shards, row);
    return cnn_model_image_fault(m, row, row);
}

cnn_status cnn_model_forward(cnn_model *m, const float *x, int n, int train, const float **out)
{
    cnn_status st = check_batch(m, x, n);
    if (st != CNN_OK) return st;
    /* Inference is per image, so a large batch runs shard by shard; a
     * training forward stays whole: a caller may read any activation. */
    int shards = train ? 1 : cnn_shards_for(m, n, 0);
    if (shards > 1) {
        if ((st = cnn_shards_run(m, x, n, shards, 0, NULL, 0, NULL)) != CNN_OK) return st;
    } else {
        cnn_model_run_forward(m, x, n, train, cnn_threads());
    }
    if (out) *out = m->act[m->nlayers];
    return check_outputs(m, x, n, shards, m->nlayers);
}

/* ------------------------------------------------- looking inside a model */

cnn_status cnn_model_forward_layers(cnn_model *m, const float *x, int n, const float **acts)
{
    if (!acts) return cnn_fail(CNN_ERR_ARG, "cnn_model_forward_layers: no array for the layers' outputs");
    cnn_status st = check_batch(m, x, n);
    if (st != CNN_OK) return st;
    /* the whole batch in this model, every layer on every thread: its
     * activations stay here (a shard's stay with its worker) */
    cnn_model_run_forward(m, x, n, 0, cnn_threads());
    /* a NaN or Inf anywhere, not only in the outputs: the caller reads
     * every layer */
    for (int i = 1; i <= m->nlayers; i++) {
        int row = first_bad_image(m, i, n);
        if (row >= 0) return cnn_model_image_fault(m, row, row);
    }
    for (int i = 0; i < m->nlayers; i++) acts[i] = m->act[i + 1];
    return CNN_OK;
}

static cnn_status check_layer(const cnn_model *m, int layer)
{
    if (layer < 0 || layer >= m->nlayers)
        return cnn_fail(CNN_ERR_ARG, "layer %d does not exist (the model has %d)", layer, m->nlayers);
    return CNN_OK;
}

int cnn_model_layer_num_tensors(const cnn_model *m, int layer)
{
    return layer < 0 || layer >= m->nlayers ? 0 : m->layers[layer]->nparams;
}

/* The index in m->tensors of layer `layer`'s j-th tensor, or -1. */
static int layer_tensor_index(const cnn_model *m, int layer, int j)
{
    for (int t = 0; t < m->ntensors; t++)
        if (m->tensors[t].layer == layer && m->tensors[t].p == &m->layers[layer]->params[j])
            return t;
    return -1;
}

cnn_status cnn_model_layer_tensor(cnn_model *m, int layer, int j, cnn_tensor *out)
{
    cnn_status st = check_layer(m, layer);
    if (st != CNN_OK) return st;
    const cnn_layer *l = m->layers[layer];
    if (j < 0 || j >= l->nparams)
        return cnn_fail(CNN_ERR_ARG, "layer %d (%s) has %d tensor%s, not a tensor %d", layer,
                        l->desc, l->nparams, l->nparams == 1 ? "" : "s", j);
    int t = layer_tensor_index(m, layer, j);
    if (t < 0) return cnn_fail(CNN_ERR_ARG, "internal: layer %d's tensor %d is not in the table", layer, j);
    return cnn_model_tensor(m, t, out);
}

cnn_status cnn_model_layer_tensor_by_name(cnn_model *m, int layer, const char *name,
                                          cnn_tensor *out)
{
    cnn_status st = check_layer(m, layer);
    if (st != CNN_OK) return st;
    const cnn_layer *l = m->layers[layer];
    if (!name) return cnn_fail(CNN_ERR_ARG, "no tensor name given");
    char full[64];
    for (int j = 0; j < l->nparams; j++) {
        snprintf(full, sizeof full, "%d.%s", layer, l->params[j].name);
        if (strcmp(name, l->params[j].name) == 0 || strcmp(name, full) == 0)
            return cnn_model_layer_tensor(m, layer, j, out);
    }
    char list[160] = "";
    for (int j = 0; j < l->nparams; j++) {
        if (strlen(list) + strlen(l->params[j].name) + 3 >= sizeof list) break;
        strcat(list, j ? ", " : "");
        strcat(list, l->params[j].name);
    }
    return cnn_fail(CNN_ERR_ARG, "layer %d (%s) has no tensor '%s' (%s%s)", layer, l->desc, name,
                    l->nparams ? "it has: " : "it has none", list);
}

cnn_status cnn_model_layer_window(const cnn_model *m, int i, cnn_layer_window *out)
{
    cnn_status st = check_layer(m, i);
    if (st != CNN_OK) return st;
    const cnn_window *g = m->layers[i]->window;
    if (!g)
        return cnn_fail(CNN_ERR_ARG, "layer %d (%s) is not a conv or pool layer: it has no window",
                        i, m->layers[i]->desc);
    *out = (cnn_layer_window){g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, cnn_padmode_name(g->mode)};
    return CNN_OK;
}

/* ------------------------------------------------------------------ loss */

/* Which tensor each loss reads: the one its PyTorch module is given (the
 * table in cnn.h). A loss that reads the scores going into a final softmax
 * or sigmoid skips that layer's backward (the softmax/sigmoid is in the
 * loss's own formula, which is cheaper and stays finite where p underflows);
 * one that reads the model's output backpropagates through whatever the
 * model ends in. */
cnn_status cnn_model_loss_plan(const cnn_model *m, cnn_loss loss, cnn_loss_plan *plan)
{
    const cnn_layer *last = m->layers[m->nlayers - 1];
    const int softmax = last_is(m, "softmax"), sigmoid = last_is(m, "sigmoid");
    int scores; /* 1: read the input of the final activation */
    switch (loss.kind) {
    case CNN_LOSS_XENT: scores = softmax; break;          /* CrossEntropyLoss */
    case CNN_LOSS_CCE:                                    /* -sum t log p */
        if (!softmax)
            return cnn_fail(CNN_ERR_ARG,
                            "loss cce is -sum t log p on probabilities, but the model ends in "
                            "'%s' (line %d), not softmax: add a final softmax layer, or use xent "
                            "(CrossEntropyLoss on the scores)",
                            last->desc, last->line);
        scores = 0;
        break;
    case CNN_LOSS_BCE: scores = sigmoid; break;           /* BCEWithLogitsLoss / BCELoss */
    case CNN_LOSS_HINGE: scores = softmax || sigmoid; break; /* MultiMarginLoss */
    case CNN_LOSS_HUBER:
        if (!(loss.delta > 0) || !isfinite(loss.delta))
            return cnn_fail(CNN_ERR_ARG, "loss huber: delta must be a number > 0, got %g",
                            (double)loss.delta);
        scores = 0;
        break;
    case CNN_LOSS_MSE:
    case CNN_LOSS_MAE: scores = 0; break;                 /* MSELoss, L1Loss */
    default: return cnn_fail(CNN_ERR_ARG, "unknown loss kind %d", (int)loss.kind);
    }
    plan->loss = loss;
    plan->act = scores ? m->nlayers - 1 : m->nlayers;
    plan->start = plan->act - 1;
    plan->probs = !scores && (softmax || sigmoid);
    return CNN_OK;
}

cnn_status cnn_model_check_loss(const cnn_model *m, cnn_loss loss)
{
    cnn_loss_plan plan;
    return cnn_model_loss_plan(m, loss, &plan);
}

cnn_status cnn_model_numeric_fault(cnn_model *m, int n, const char *what)
{
    for (int i = 0; i < m->nlayers; i++) {
        size_t count = (size_t)n * cnn_shape_size(m->layers[i]->out);
        if (cnn_first_nonfinite(m->act[i + 1], count) >= 0)
            return cnn_fail(CNN_ERR_NUMERIC,
                            "non-finite value (NaN or Inf) in the output of layer %d (%s, line %d)",
                            i, m->layers[i]->desc, m->layers[i]->line);
    }
    return cnn_fail(CNN_ERR_NUMERIC, "non-finite value (NaN or Inf) in %s", what);
}

static cnn_status make_targets(cnn_model *m, const uint8_t *labels, int n, int k)
{
    memset(m->target, 0, sizeof(float) * (size_t)n * k);
    for (int i = 0; i < n; i++) {
        if (labels[i] >= k)
            return cnn_fail(CNN_ERR_ARG, "label %d of image %d is out of range: the model has %d outputs",
                            labels[i], i, k);
        m->target[(size_t)i * k + labels[i]] = 1.0f;
    }
    return CNN_OK;
}

static int count_correct(const float *out, const uint8_t *labels, int n, int k)
{
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *row = out + (size_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        correct += best == labels[i];
    }
    return correct;
}

/* A NaN can hide from the loss (relu maps NaN to 0), so after a training
 * forward every activation is checked, not just the loss. */
cnn_status cnn_model_check_activations(cnn_model *m, int n)
{
    for (int i = 0; i < m->nlayers; i++) {
        cnn_work_add((double)n * cnn_shape_size(m->layers[i]->out));
        if (cnn_first_nonfinite(m->act[i + 1], (size_t)n * cnn_shape_size(m->layers[i]->out)) >= 0)
            return cnn_model_numeric_fault(m, n, "the activations");
    }
    return CNN_OK;
}

/* Forward, loss and, with grad, backward of one batch: on the whole batch
 * at once (each layer using every thread), or shard by shard (each thread
 * taking whole shards through every layer) when the batch is large enough
 * and no layer couples its images. */
static cnn_status run_batch(cnn_model *m, const float *x, const uint8_t *labels, int n,
                            int train, cnn_loss loss, int grad, cnn_batch_stats *stats)
{
    cnn_loss_plan plan;
    cnn_status st = cnn_model_loss_plan(m, loss, &plan);
    if (st != CNN_OK) return st;
    if ((st = check_batch(m, x, n)) != CNN_OK) return st;
    int k = cnn_model_output_size(m);
    if (!labels) return cnn_fail(CNN_ERR_ARG, "no labels given");
    if ((st = make_targets(m, labels, n, k)) != CNN_OK) return st;
    /* gradients without an optimizer: the shard buffers are made once here */
    if (grad && (st = cnn_shards_reserve_grads(m)) != CNN_OK) return st;
    const int shards = cnn_shards_for(m, n, grad || train);
    /* a batchnorm model's training batch: in shards, layer by layer */
    const int layered = shards > 1 && train && cnn_shards_coupled(m);
    double value;
    if (shards > 1 && !layered) {
        double total;
        m->last_x = x; /* what the loss reads if it is the input itself */
        if ((st = cnn_shards_run(m, x, n, shards, train, &plan, grad, &total)) != CNN_OK)
            return st;
        /* without gradients the loss is recomputed over the gathered rows,
         * so evaluation reports the very number a whole-batch run gives */
        if (!grad) total = cnn_loss_rows(loss, plan.probs, cnn_model_act(m, plan.act), m->target,
                                         n, k, n, NULL);
        value = cnn_loss_mean(loss, total, n, k);
    } else {
        if (layered) cnn_shards_forward_layers(m, x, n, shards, train);
        else cnn_model_run_forward(m, x, n, train, cnn_threads());
        cnn_work_add((double)n * k); /* the loss, on this thread */
        value = cnn_loss_mean(loss,
                              cnn_loss_rows(loss, plan.probs, cnn_model_act(m, plan.act),
                                            m->target, n, k, n, grad ? m->dbuf[0] : NULL),
                              n, k);
    }
    if (!grad && (st = check_outputs(m, x, n, layered ? 1 : shards, plan.act)) != CNN_OK) return st;
    if (stats) {
        stats->loss = value;
        stats->correct = count_correct(m->act[m->nlayers], labels, n, k);
    }
    if (shards > 1 && !layered) /* each shard checked its own activations and gradients */
        return isfinite(value) ? CNN_OK
                               : cnn_fail(CNN_ERR_NUMERIC, "non-finite value (NaN or Inf) in the loss");
    if (!isfinite(value)) return cnn_model_numeric_fault(m, n, "the loss");
    if (!grad) return CNN_OK;
    if ((st = layered ? cnn_shards_check_layers(m, n, shards) : cnn_model_check_activations(m, n)) !=
        CNN_OK)
        return st;
    if (layered) return cnn_shards_backward_layers(m, plan.start, n, shards);
    return cnn_model_run_backward(m, plan.start, n, cnn_threads());
}

cnn_status cnn_model_eval_batch(cnn_model *m, const float *x, const uint8_t *labels, int n,
                                cnn_loss loss, cnn_batch_stats *stats)
{
    return run_batch(m, x, labels, n, 0, loss, 0, stats);
}

/* -------------------------------------------------------------- backward */

cnn_status cnn_model_compute_grads(cnn_model *m, const float *x, const uint8_t *labels, int n,
                                   cnn_loss loss, cnn_batch_stats *stats)
{
    return run_batch(m, x, labels, n, 1, loss, 1, stats);
}

cnn_status cnn_model_run_backward(cnn_model *m, int start, int n, int nt)
{
    int cur = 0; /* dbuf[cur] holds dL/d(output of layer i) */
    for (int i = start; i >= 0; i--) {
        cnn_layer *l = m->layers[i];
        float *dx = i > 0 ? m->dbuf[1 - cur] : NULL;
        l->ops->backward(l, cnn_model_act(m, i), m->act[i + 1], m->dbuf[cur], dx, n, nt);
        for (int j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            if (p->trainable) cnn_work_add((double)p->size);
            if (p->trainable && cnn_first_nonfinite(p->grad, p->size) >= 0)
                return cnn_fail(CNN_ERR_NUMERIC,
                                "non-finite gradient (NaN or Inf) for %d.%s in layer %d (%s, line %d)",
                                i, p->name, i, l->desc, l->line);
        }
        cur = 1 - cur;
    }
    return CNN_OK;
}
