/* meta.c — a model's string metadata, and the RNG state that checkpoints
 * carry besides the weights. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- metadata */

cnn_status cnn_model_set_meta(cnn_model *m, const char *key, const char *value)
{
    if (!key || !*key || !value) return cnn_fail(CNN_ERR_ARG, "metadata needs a key and a value");
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta_key[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
            free(m->meta_val[i]);
            m->meta_val[i] = v;
            return CNN_OK;
        }
    char **k = realloc(m->meta_key, sizeof *k * (size_t)(m->nmeta + 1));
    if (k) m->meta_key = k;
    char **v = realloc(m->meta_val, sizeof *v * (size_t)(m->nmeta + 1));
    if (v) m->meta_val = v;
    if (!k || !v) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    m->meta_key[m->nmeta] = strdup(key);
    m->meta_val[m->nmeta] = strdup(value);
    if (!m->meta_key[m->nmeta] || !m->meta_val[m->nmeta]) {
        free(m->meta_key[m->nmeta]);
        free(m->meta_val[m->nmeta]);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    m->nmeta++;
    return CNN_OK;
}

void cnn_model_unset_meta(cnn_model *m, const char *key)
{
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta_key[i], key) == 0) {
            free(m->meta_key[i]);
            free(m->meta_val[i]);
            /* the others keep their order: it is the order they are saved in */
            memmove(m->meta_key + i, m->meta_key + i + 1, sizeof *m->meta_key * (size_t)(m->nmeta - i - 1));
            memmove(m->meta_val + i, m->meta_val + i + 1, sizeof *m->meta_val * (size_t)(m->nmeta - i - 1));
            m->nmeta--;
            return;
        }
}

const char *cnn_model_get_meta(const cnn_model *m, const char *key)
{
    if (strcmp(key, "arch") == 0) return m->arch;
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta_key[i], key) == 0) return m->meta_val[i];
    return NULL;
}

/* ------------------------------------------------------- training state */

void cnn_model_rng_to_hex(const cnn_model *m, char out[65]) { cnn_rng_to_hex(&m->rng, out); }

cnn_status cnn_model_rng_from_hex(cnn_model *m, const char *hex)
{
    if (cnn_rng_from_hex(hex, &m->rng))
        return cnn_fail(CNN_ERR_FORMAT, "bad RNG state '%s'", hex ? hex : "");
    return CNN_OK;
}
