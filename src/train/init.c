/* init.c — drawing initial weights. The seed report initialises every
 * weight with "Xavier on the standard normal", W ~ N(0, 1/n_in); the other
 * two schemes are the usual alternatives (Glorot uniform, He normal). */
#include "train.h"

#include <math.h>

void cnn_param_init(cnn_param *p, cnn_init how, cnn_rng *r)
{
    if (p->init == CNN_PINIT_ZERO || p->init == CNN_PINIT_ONE) {
        float v = p->init == CNN_PINIT_ONE ? 1.0f : 0.0f;
        for (size_t i = 0; i < p->size; i++) p->data[i] = v;
        return;
    }
    /* A layer that forgot its fans still gets finite weights. */
    double fan_in = p->fan_in > 0 ? p->fan_in : 1;
    double fan_out = p->fan_out > 0 ? p->fan_out : 1;
    switch (how) {
    case CNN_INIT_XAVIER_UNIFORM: {
        float a = (float)sqrt(6.0 / (fan_in + fan_out));
        for (size_t i = 0; i < p->size; i++)
            p->data[i] = a * (2.0f * cnn_rng_uniform(r) - 1.0f);
        break;
    }
    case CNN_INIT_HE_NORMAL: {
        float sd = (float)sqrt(2.0 / fan_in);
        for (size_t i = 0; i < p->size; i++) p->data[i] = sd * cnn_rng_normal(r);
        break;
    }
    case CNN_INIT_XAVIER_NORMAL:
    default: {
        float sd = (float)sqrt(1.0 / fan_in);
        for (size_t i = 0; i < p->size; i++) p->data[i] = sd * cnn_rng_normal(r);
        break;
    }
    }
}
