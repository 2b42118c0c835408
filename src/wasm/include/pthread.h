/* pthread.h for the WebAssembly module, which has one thread (wasi-libc
 * without threads has no pthread.h): once-flags and thread-specific values
 * become plain variables, which is what they are with a single thread. */
#ifndef CNN_WASM_PTHREAD_H
#define CNN_WASM_PTHREAD_H
typedef int pthread_once_t;
#define PTHREAD_ONCE_INIT 0
typedef unsigned pthread_key_t;
#define CNN_WASM_MAX_KEYS 16
static void *cnn_wasm_specific[CNN_WASM_MAX_KEYS];
static unsigned cnn_wasm_nkeys;
static inline int pthread_once(pthread_once_t *o, void (*f)(void))
{
    if (!*o) {
        *o = 1;
        f();
    }
    return 0;
}
static inline int pthread_key_create(pthread_key_t *k, void (*destroy)(void *))
{
    (void)destroy; /* the one thread never exits */
    if (cnn_wasm_nkeys >= CNN_WASM_MAX_KEYS) return 11; /* EAGAIN */
    *k = cnn_wasm_nkeys++;
    return 0;
}
static inline int pthread_setspecific(pthread_key_t k, const void *v)
{
    cnn_wasm_specific[k] = (void *)v;
    return 0;
}
static inline void *pthread_getspecific(pthread_key_t k) { return cnn_wasm_specific[k]; }
#endif
