// Shared declarations of the bf16 vs fp32 GEMM micro-benchmark (see main.c and README.md):
// options, random numbers, the model's weights, the shape table, and the functions each file
// offers the others. Split out of the former single gemm_bf16.c; behaviour and output unchanged.
//
//   common.c      options, weights (safetensors), shape table
//   throughput.c  timing and oneDNN / OpenBLAS calls: one shape at one thread count
//   report.c      throughput tables and model-level estimates
//   fidelity.c    error against fp64, and small updates held in bf16
//   main.c        arguments, header lines, order of the pieces
#ifndef GEMM_BF16_H
#define GEMM_BF16_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>  // OpenBLAS's (openblas_set_num_threads, openblas_get_corename)
#include <oneapi/dnnl/dnnl.h>

#define CHECK(x)                                                                          \
    do {                                                                                  \
        dnnl_status_t s_ = (x);                                                           \
        if (s_ != dnnl_success) {                                                         \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x, (int)s_); \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// ---------------------------------------------------------------- options (common.c)
extern const char *model_path;
extern int layer;
static const int n_layers = 30;
extern int sgemm_only, do_fidelity;
extern const char *only_group;  // run only the shapes whose group starts with this ("train", "decode")
extern int thread_counts[2], n_thread_counts;
extern double batch_seconds;  // each timed batch runs at least this long; median of 5 batches
static const double sgemm_share = 0.81;  // profiled share of a LoRA SFT step spent in sgemm

// ---------------------------------------------------------------- random numbers
extern uint64_t rng;  // one stream for the whole run (common.c)
static inline double uniform01(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return ((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static inline double normal01(void) {
    double u = uniform01(), v = uniform01();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static inline float *alloc_f32(size_t n) {
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!p) { perror("aligned_alloc"); exit(1); }
    return p;
}

// bf16 round-to-nearest-even of a float, returned as a float (for the fp64 "rounded inputs" reference).
static inline float bf16_round(float x) {
    uint32_t u; memcpy(&u, &x, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    u &= 0xFFFF0000u;
    float y; memcpy(&y, &u, 4);
    return y;
}

// ---------------------------------------------------------------- weights (common.c)
// data: the layer used for training shapes and fidelity; layers[l]: all 30 layers (decode shapes
// cycle through them so that weights come from memory, as they do when a token goes through the model).
typedef struct { const char *short_name, *suffix; int rows, cols; float *data; int real; double rms; float *layers[30]; } Weight;
enum { W_Q, W_K, W_GATE, W_DOWN, W_EMBED, N_WEIGHTS };
extern Weight weights[N_WEIGHTS];
void load_weights(void);

// ---------------------------------------------------------------- shapes (common.c)
// C (M×N) = A (M×K) · B (K×N), row-major. trans = 1: B = Wᵀ with W stored [N][K] ([out][in],
// the forward x·Wᵀ); trans = 0: B = W stored [K][N] (the backward dx = dy·W).
typedef struct {
    const char *group, *name;
    int M, K, N, w, trans;
    int per_step;  // products of this shape per training step and worker (× 30 layers unless lm)
    int lm;        // LM head (once per step, not per layer)
    // results per thread count (index into thread_counts)
    double t_sgemm[2], t_f32[2], t_bf16[2], t_conv[2], t_plain[2];
    double t_sgemm_m1[2];  // M = 1 only: sgemm instead of Cairn's sgemv (t_sgemm holds sgemv there)
    int nrot;              // weight copies cycled through
    int ran;
    char impl_f32[64], impl_bf16[64], impl_plain[64];
} Shape;

#define TR 300   // training rows per worker: 8 examples × ~75 tokens over 2 workers
#define LM 100   // loss rows per worker going through the LM head
#define N_SHAPES 20  // entries of shapes[] (checked in common.c)
extern Shape shapes[];
static inline int is_train(const Shape *s) { return strncmp(s->group, "train", 5) == 0; }
static inline double flops(const Shape *s) { return 2.0 * s->M * s->K * s->N; }

// ---------------------------------------------------------------- the pieces
extern dnnl_engine_t eng;  // created in main unless --sgemm-only (throughput.c)
extern dnnl_stream_t strm;
void bench_shape(int si, int ti);  // times shape si at thread_counts[ti]; 1 thread: fidelity too (throughput.c)
void fidelity(int si, const float *a, const float *w, const float *c_sgemm, const float *c_f32,
              const float *c_bf16);  // (fidelity.c)
int any_ran(const char *group);      // (report.c)
void report_table(int ti);
void report_model(int ti);
void report_fidelity(void);          // (fidelity.c)
void report_updates(void);

#endif
