/* omp.h for the WebAssembly module: one thread. The library's sources are
 * compiled unchanged without -fopenmp (their pragmas are then ignored) and
 * their few OpenMP calls answer as a team of one. */
#ifndef CNN_WASM_OMP_H
#define CNN_WASM_OMP_H
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_in_parallel(void) { return 0; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif
