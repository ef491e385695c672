// bf16 vs fp32 GEMM micro-benchmark on SmolLM2-135M's shapes (paper study, no change to Cairn).
//
// Times OpenBLAS sgemm (fp32), oneDNN matmul fp32 and oneDNN matmul bf16 (bf16 inputs, f32
// accumulation and output) on 1 and 2 threads, for the products of a LoRA SFT step (forward
// projections, backward dx products, LM head on the loss rows) and of decoding (M = 1, M = 24);
// then measures the error of fp32 and bf16 products against fp64 on the real model's weights.
// Build and run: see README.md. All output is Markdown, pasted into results.md.
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

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// ---------------------------------------------------------------- options
static const char *model_path = "/tmp/sb/base/model.safetensors";
static int layer = 15;
static const int n_layers = 30;
static int sgemm_only = 0, do_fidelity = 1;
static const char *only_group = "";  // run only the shapes whose group starts with this ("train", "decode")
static int thread_counts[2] = {1, 2}, n_thread_counts = 2;
static double batch_seconds = 0.02;  // each timed batch runs at least this long; median of 5 batches
static const double sgemm_share = 0.81;  // profiled share of a LoRA SFT step spent in sgemm

// ---------------------------------------------------------------- random numbers
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double uniform01(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return ((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double normal01(void) {
    double u = uniform01(), v = uniform01();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static float *alloc_f32(size_t n) {
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!p) { perror("aligned_alloc"); exit(1); }
    return p;
}

// bf16 round-to-nearest-even of a float, returned as a float (for the fp64 "rounded inputs" reference).
static float bf16_round(float x) {
    uint32_t u; memcpy(&u, &x, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    u &= 0xFFFF0000u;
    float y; memcpy(&y, &u, 4);
    return y;
}

// ---------------------------------------------------------------- weights (safetensors)
// data: the layer used for training shapes and fidelity; layers[l]: all 30 layers (decode shapes
// cycle through them so that weights come from memory, as they do when a token goes through the model).
typedef struct { const char *short_name, *suffix; int rows, cols; float *data; int real; double rms; float *layers[30]; } Weight;
enum { W_Q, W_K, W_GATE, W_DOWN, W_EMBED, N_WEIGHTS };
static Weight weights[N_WEIGHTS] = {
    {"q_proj", "self_attn.q_proj.weight", 576, 576, NULL, 0, 0},
    {"k_proj", "self_attn.k_proj.weight", 192, 576, NULL, 0, 0},
    {"gate_proj", "mlp.gate_proj.weight", 1536, 576, NULL, 0, 0},
    {"down_proj", "mlp.down_proj.weight", 576, 1536, NULL, 0, 0},
    {"embed_tokens (tied LM head)", NULL, 49152, 576, NULL, 0, 0},
};

// Reads the named F32 tensor ([rows, cols], as stored: [out, in]) from a safetensors file:
// 8 bytes little-endian header length, the JSON header, then the raw data.
static int read_tensor(const char *file, const char *name, int rows, int cols, float *out) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) return 0;
    struct stat st; fstat(fd, &st);
    uint8_t *map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return 0;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)map[i] << (8 * i);
    char *hdr = strndup((const char *)map + 8, hlen);
    char key[300]; snprintf(key, sizeof key, "\"%s\"", name);
    int ok = 0;
    char *p = strstr(hdr, key);
    if (p) {
        char *end = strchr(p, '}');
        char *d = strstr(p, "\"data_offsets\"");
        char *t = strstr(p, "\"dtype\"");
        unsigned long long a = 0, b = 0;
        if (d && end && d < end && t && t < end && strncmp(strchr(t + 7, '"'), "\"F32\"", 5) == 0 &&
            sscanf(strchr(d, '['), "[%llu,%llu]", &a, &b) == 2 && b - a == (unsigned long long)rows * cols * 4) {
            memcpy(out, map + 8 + hlen + a, b - a);
            ok = 1;
        }
    }
    free(hdr);
    munmap(map, st.st_size);
    return ok;
}

static void load_weights(void) {
    for (int i = 0; i < N_WEIGHTS; i++) {
        Weight *w = &weights[i];
        size_t n = (size_t)w->rows * w->cols;
        int nl = w->suffix ? n_layers : 1;
        for (int l = 0; l < nl; l++) {
            float *d = w->layers[l] = alloc_f32(n);
            char name[256];
            if (w->suffix) snprintf(name, sizeof name, "model.layers.%d.%s", l, w->suffix);
            else snprintf(name, sizeof name, "model.embed_tokens.weight");
            int real = read_tensor(model_path, name, w->rows, w->cols, d);
            if (!real)
                for (size_t j = 0; j < n; j++) d[j] = (float)(0.02 * normal01());
            if (l == (w->suffix ? layer : 0)) { w->data = d; w->real = real; }
        }
        double s = 0;
        for (size_t j = 0; j < n; j++) s += (double)w->data[j] * w->data[j];
        w->rms = sqrt(s / n);
    }
}

// ---------------------------------------------------------------- shapes
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
static Shape shapes[] = {
    {"train fwd", "q,o: x·Wᵀ", TR, 576, 576, W_Q, 1, 2, 0},
    {"train fwd", "k,v: x·Wᵀ", TR, 576, 192, W_K, 1, 2, 0},
    {"train fwd", "gate,up: x·Wᵀ", TR, 576, 1536, W_GATE, 1, 2, 0},
    {"train fwd", "down: h·Wᵀ", TR, 1536, 576, W_DOWN, 1, 1, 0},
    {"train fwd", "LM head: x·Eᵀ", LM, 576, 49152, W_EMBED, 1, 1, 1},
    {"train bwd", "q,o: dy·W", TR, 576, 576, W_Q, 0, 2, 0},
    {"train bwd", "k,v: dy·W", TR, 192, 576, W_K, 0, 2, 0},
    {"train bwd", "gate,up: dy·W", TR, 1536, 576, W_GATE, 0, 2, 0},
    {"train bwd", "down: dy·W", TR, 576, 1536, W_DOWN, 0, 1, 0},
    {"train bwd", "LM head: dlogits·E", LM, 49152, 576, W_EMBED, 0, 1, 1},
    {"decode M=1", "q,o", 1, 576, 576, W_Q, 1, 2, 0},
    {"decode M=1", "k,v", 1, 576, 192, W_K, 1, 2, 0},
    {"decode M=1", "gate,up", 1, 576, 1536, W_GATE, 1, 2, 0},
    {"decode M=1", "down", 1, 1536, 576, W_DOWN, 1, 1, 0},
    {"decode M=1", "LM head", 1, 576, 49152, W_EMBED, 1, 1, 1},
    {"decode M=24", "q,o", 24, 576, 576, W_Q, 1, 2, 0},
    {"decode M=24", "k,v", 24, 576, 192, W_K, 1, 2, 0},
    {"decode M=24", "gate,up", 24, 576, 1536, W_GATE, 1, 2, 0},
    {"decode M=24", "down", 24, 1536, 576, W_DOWN, 1, 1, 0},
    {"decode M=24", "LM head", 24, 576, 49152, W_EMBED, 1, 1, 1},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))
static int is_train(const Shape *s) { return strncmp(s->group, "train", 5) == 0; }
static double flops(const Shape *s) { return 2.0 * s->M * s->K * s->N; }

// ---------------------------------------------------------------- timing
typedef void (*Fn)(void *);
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
// Seconds per call: two warm-up calls, then the median over 5 batches of ≥ batch_seconds each.
static double time_it(Fn fn, void *ctx) {
    fn(ctx); fn(ctx);
    double t0 = now(); fn(ctx); double one = now() - t0;
    int reps = one >= batch_seconds ? 1 : (int)(batch_seconds / (one > 1e-7 ? one : 1e-7)) + 1;
    double b[5];
    for (int i = 0; i < 5; i++) {
        t0 = now();
        for (int r = 0; r < reps; r++) fn(ctx);
        b[i] = (now() - t0) / reps;
    }
    qsort(b, 5, sizeof b[0], cmp_double);
    return b[2];
}

// ---------------------------------------------------------------- oneDNN helpers
static dnnl_engine_t eng;
static dnnl_stream_t strm;

static dnnl_memory_desc_t md2(int r, int c, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {r, c};
    CHECK(dnnl_memory_desc_init_by_tag(&md, 2, d, dt, tag));
    return md;
}
static dnnl_memory_t mem(const dnnl_memory_desc_t *md, void *ptr) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, eng, ptr ? ptr : DNNL_MEMORY_ALLOCATE));
    return m;
}
static void impl_name(const_dnnl_primitive_desc_t pd, char *out, size_t n) {
    const char *s = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s));
    snprintf(out, n, "%s", s);
}
typedef struct { dnnl_primitive_t p; int nargs; dnnl_exec_arg_t args[3]; } Exec;
static void run_exec(void *v) {
    Exec *e = v;
    CHECK(dnnl_primitive_execute(e->p, strm, e->nargs, e->args));
    CHECK(dnnl_stream_wait(strm));
}
static Exec make_reorder(dnnl_memory_t from, dnnl_memory_t to) {
    const dnnl_memory_desc_t *a, *b;
    CHECK(dnnl_memory_get_memory_desc(from, &a));
    CHECK(dnnl_memory_get_memory_desc(to, &b));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL));
    Exec e = {0};
    CHECK(dnnl_primitive_create(&e.p, pd));
    dnnl_primitive_desc_destroy(pd);
    e.nargs = 2;
    e.args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, from};
    e.args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, to};
    return e;
}
// A matmul primitive src (M×K, tag ab, type st) · weights (K×N, type wt, tag wtag or any) → dst f32.
// Returns the primitive desc (caller queries the weights layout).
static dnnl_primitive_desc_t matmul_pd(int M, int K, int N, dnnl_data_type_t st, dnnl_data_type_t wt,
                                       dnnl_format_tag_t wtag) {
    dnnl_memory_desc_t s = md2(M, K, st, dnnl_ab), w = md2(K, N, wt, wtag), d = md2(M, N, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &s, &w, NULL, &d));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL));
    return pd;
}
static Exec make_matmul(dnnl_primitive_desc_t pd, dnnl_memory_t src, dnnl_memory_t wei, dnnl_memory_t dst) {
    Exec e = {0};
    CHECK(dnnl_primitive_create(&e.p, pd));
    e.nargs = 3;
    e.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src};
    e.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wei};
    e.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    return e;
}

// ---------------------------------------------------------------- OpenBLAS
// w[i] for i = 0, 1, …, n−1 in turn (n > 1: cold weights for decode shapes).
typedef struct { const Shape *s; const float *a; float **w; int n, i; float *c; } SgemmCtx;
static void run_sgemm(void *v) {
    SgemmCtx *x = v;
    const Shape *s = x->s;
    const float *w = x->w[x->i];
    x->i = (x->i + 1) % x->n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, x->a,
                s->K, w, s->trans ? s->K : s->N, 0.0f, x->c, s->N);
}
// One token: what Cairn's LinearOp.forward calls for N == 1 (y = W·x, W stored [out][in]).
static void run_sgemv(void *v) {
    SgemmCtx *x = v;
    const Shape *s = x->s;
    const float *w = x->w[x->i];
    x->i = (x->i + 1) % x->n;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, s->N, s->K, 1.0f, w, s->K, x->a, 1, 0.0f, x->c, 1);
}
// A primitive whose weights argument (args[1]) cycles through w[0..n−1].
typedef struct { Exec *e; dnnl_memory_t *w; int n, i; } Rot;
static void run_rot(void *v) {
    Rot *r = v;
    r->e->args[1].memory = r->w[r->i];
    r->i = (r->i + 1) % r->n;
    run_exec(r->e);
}
// bf16 with per-call activation conversion: reorder A f32 → bf16, then the bf16 matmul.
typedef struct { Exec *conv; Rot *mm; } Pair;
static void run_pair(void *v) {
    Pair *p = v;
    run_exec(p->conv);
    run_rot(p->mm);
}

// ---------------------------------------------------------------- fidelity
typedef struct { double rel_fro, max_rel; } Err;  // ‖C−R‖_F/‖R‖_F and max|C−R| / rms(R)
typedef struct {
    int done;
    Err sgemm, f32, bf16, bf16_inputs_only;
    double max_abs_bf16, max_abs_sgemm, ref_rms;
} Fid;
static Fid fid[N_SHAPES];

// Reference over every 10th row (all columns) in fp64; `rounded` also computes the fp64 product
// of the bf16-rounded inputs (what bf16 costs before any accumulation error).
static void fidelity(int si, const float *a, const float *w, const float *c_sgemm, const float *c_f32,
                     const float *c_bf16) {
    const Shape *s = &shapes[si];
    int K = s->K, N = s->N;
    double *ref = malloc(sizeof(double) * N), *rr = malloc(sizeof(double) * N);
    float *wr = alloc_f32((size_t)K * N), *ar = alloc_f32(K);
    for (size_t i = 0; i < (size_t)K * N; i++) wr[i] = bf16_round(w[i]);
    double ss = 0, e[4][2] = {{0}}, mx[4] = {0}, mxabs[4] = {0};
    long cnt = 0;
    for (int i = 0; i < s->M; i += 10) {
        const float *ai = a + (size_t)i * K;
        for (int p = 0; p < K; p++) ar[p] = bf16_round(ai[p]);
        if (s->trans) {  // W [N][K]
            for (int j = 0; j < N; j++) {
                const float *wj = w + (size_t)j * K, *wrj = wr + (size_t)j * K;
                double x = 0, y = 0;
                for (int p = 0; p < K; p++) { x += (double)ai[p] * wj[p]; y += (double)ar[p] * wrj[p]; }
                ref[j] = x; rr[j] = y;
            }
        } else {  // W [K][N]
            for (int j = 0; j < N; j++) ref[j] = rr[j] = 0;
            for (int p = 0; p < K; p++) {
                const float *wp = w + (size_t)p * N, *wrp = wr + (size_t)p * N;
                double x = ai[p], y = ar[p];
                for (int j = 0; j < N; j++) { ref[j] += x * wp[j]; rr[j] += y * wrp[j]; }
            }
        }
        for (int j = 0; j < N; j++) {
            size_t o = (size_t)i * N + j;
            double got[4] = {c_sgemm[o], c_f32[o], c_bf16[o], rr[j]};
            ss += ref[j] * ref[j];
            for (int k = 0; k < 4; k++) {
                double d = fabs(got[k] - ref[j]);
                e[k][0] += d * d;
                if (d > mxabs[k]) mxabs[k] = d;
            }
            cnt++;
        }
    }
    double rms = sqrt(ss / cnt);
    for (int k = 0; k < 4; k++) mx[k] = mxabs[k] / rms;
    Fid *f = &fid[si];
    f->sgemm = (Err){sqrt(e[0][0] / ss), mx[0]};
    f->f32 = (Err){sqrt(e[1][0] / ss), mx[1]};
    f->bf16 = (Err){sqrt(e[2][0] / ss), mx[2]};
    f->bf16_inputs_only = (Err){sqrt(e[3][0] / ss), mx[3]};
    f->max_abs_bf16 = mxabs[2];
    f->max_abs_sgemm = mxabs[0];
    f->ref_rms = rms;
    f->done = 1;
    free(ref); free(rr); free(wr); free(ar);
}

// ---------------------------------------------------------------- one shape at one thread count
static int is_decode(const Shape *s) { return !is_train(s); }

static void bench_shape(int si, int ti) {
    Shape *s = &shapes[si];
    int t = thread_counts[ti];
    size_t nA = (size_t)s->M * s->K, nC = (size_t)s->M * s->N, nW = (size_t)s->K * s->N;
    const Weight *W = &weights[s->w];
    // Decode shapes cycle through copies of the 30 layers' weights, ≥ 256 MB in fp32 (128 MB in
    // bf16, 4× the L3), so that every call reads its weights from memory as generation does. The
    // LM head (113 MB fp32) is one copy. Training shapes (compute-bound) use layer `layer`.
    int n = 1;
    if (is_decode(s) && !s->lm) n = (int)((256e6 + 4.0 * nW - 1) / (4.0 * nW));
    s->nrot = n;
    float **w32 = malloc(sizeof(float *) * n);
    if (n == 1) w32[0] = W->data;
    else
        for (int r = 0; r < n; r++) {
            w32[r] = alloc_f32(nW);
            memcpy(w32[r], W->layers[r % n_layers], sizeof(float) * nW);
        }
    float *a = alloc_f32(nA), *c0 = alloc_f32(nC), *c1 = alloc_f32(nC), *c2 = alloc_f32(nC), *c3 = alloc_f32(nC);
    for (size_t i = 0; i < nA; i++) a[i] = (float)normal01();  // activations (or dy): RMS 1

    // OpenBLAS fp32 (its own pthreads pool); M = 1: sgemv as Cairn calls it, and sgemm for reference.
    openblas_set_num_threads(t);
    SgemmCtx sc = {s, a, w32, n, 0, c0};
    if (s->M == 1) {
        s->t_sgemm[ti] = time_it(run_sgemv, &sc);
        s->t_sgemm_m1[ti] = time_it(run_sgemm, &sc);
    } else s->t_sgemm[ti] = time_it(run_sgemm, &sc);
    if (sgemm_only) goto done;
    usleep(150000);  // OpenBLAS's idle workers spin ~0.1 s before sleeping; keep them off oneDNN's cores

    {
    // oneDNN (OpenMP runtime in Debian's build); primitives are created after the thread count is set.
    omp_set_num_threads(t);
    dnnl_format_tag_t wtag = s->trans ? dnnl_ba : dnnl_ab;  // dims {K, N}: ba = stored [N][K]
    dnnl_memory_desc_t a32 = md2(s->M, s->K, dnnl_f32, dnnl_ab), a16 = md2(s->M, s->K, dnnl_bf16, dnnl_ab);
    dnnl_memory_desc_t w32d = md2(s->K, s->N, dnnl_f32, wtag), d32 = md2(s->M, s->N, dnnl_f32, dnnl_ab);
    dnnl_memory_t mA = mem(&a32, a), mA16 = mem(&a16, NULL);
    dnnl_memory_t *mW = malloc(sizeof(dnnl_memory_t) * n), *mW16 = malloc(sizeof(dnnl_memory_t) * n),
                  *mW16p = malloc(sizeof(dnnl_memory_t) * n);
    for (int r = 0; r < n; r++) mW[r] = mem(&w32d, w32[r]);

    // fp32 matmul on the fp32 weights as Cairn stores them (drop-in for sgemm)
    dnnl_primitive_desc_t pd = matmul_pd(s->M, s->K, s->N, dnnl_f32, dnnl_f32, wtag);
    impl_name(pd, s->impl_f32, sizeof s->impl_f32);
    dnnl_memory_t mC1 = mem(&d32, c1);
    Exec e_f32 = make_matmul(pd, mA, mW[0], mC1);
    dnnl_primitive_desc_destroy(pd);
    Rot r_f32 = {&e_f32, mW, n, 0};
    s->t_f32[ti] = time_it(run_rot, &r_f32);

    // bf16 with weights pre-converted once into the layout oneDNN asks for (format any)
    pd = matmul_pd(s->M, s->K, s->N, dnnl_bf16, dnnl_bf16, dnnl_format_tag_any);
    impl_name(pd, s->impl_bf16, sizeof s->impl_bf16);
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    for (int r = 0; r < n; r++) mW16[r] = mem(wq, NULL);
    dnnl_memory_t mC2 = mem(&d32, c2);
    Exec pack = make_reorder(mW[0], mW16[0]);
    for (int r = 0; r < n; r++) {  // once, as stored
        pack.args[0].memory = mW[r]; pack.args[1].memory = mW16[r];
        run_exec(&pack);
    }
    Exec e_bf16 = make_matmul(pd, mA16, mW16[0], mC2);
    dnnl_primitive_desc_destroy(pd);
    Rot r_bf16 = {&e_bf16, mW16, n, 0};
    Exec conv = make_reorder(mA, mA16);  // per call: activations f32 → bf16
    s->t_conv[ti] = time_it(run_exec, &conv);
    s->t_bf16[ti] = time_it(run_rot, &r_bf16);

    // bf16 with weights in the plain layout (same [out][in] as now, just bf16), conversion included
    dnnl_memory_desc_t w16p = md2(s->K, s->N, dnnl_bf16, wtag);
    pd = matmul_pd(s->M, s->K, s->N, dnnl_bf16, dnnl_bf16, wtag);
    impl_name(pd, s->impl_plain, sizeof s->impl_plain);
    for (int r = 0; r < n; r++) mW16p[r] = mem(&w16p, NULL);
    dnnl_memory_t mC3 = mem(&d32, c3);
    Exec packp = make_reorder(mW[0], mW16p[0]);
    for (int r = 0; r < n; r++) {
        packp.args[0].memory = mW[r]; packp.args[1].memory = mW16p[r];
        run_exec(&packp);
    }
    Exec e_plain = make_matmul(pd, mA16, mW16p[0], mC3);
    dnnl_primitive_desc_destroy(pd);
    Rot r_plain = {&e_plain, mW16p, n, 0};
    Pair pp = {&conv, &r_plain};
    s->t_plain[ti] = time_it(run_pair, &pp);

    if (do_fidelity && t == 1 && is_train(s)) {
        sc.i = 0; r_f32.i = 0; r_bf16.i = 0;
        run_sgemm(&sc); run_rot(&r_f32); run_exec(&conv); run_rot(&r_bf16);
        fidelity(si, a, W->data, c0, c1, c2);
    }

    Exec *all[] = {&e_f32, &pack, &e_bf16, &conv, &packp, &e_plain};
    for (int i = 0; i < 6; i++) dnnl_primitive_destroy(all[i]->p);
    for (int r = 0; r < n; r++) { dnnl_memory_destroy(mW[r]); dnnl_memory_destroy(mW16[r]); dnnl_memory_destroy(mW16p[r]); }
    free(mW); free(mW16); free(mW16p);
    dnnl_memory_t ms[] = {mA, mA16, mC1, mC2, mC3};
    for (int i = 0; i < 5; i++) dnnl_memory_destroy(ms[i]);
    usleep(20000);  // let OpenMP's workers go idle before the next sgemm
    }
done:
    if (n > 1)
        for (int r = 0; r < n; r++) free(w32[r]);
    free(w32);
    free(a); free(c0); free(c1); free(c2); free(c3);
}

// ---------------------------------------------------------------- reports
static const char *isa_name(dnnl_cpu_isa_t i) {
    switch (i) {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx2: return "avx2";
        default: return "other";
    }
}
static int any_ran(const char *group) {
    for (int i = 0; i < N_SHAPES; i++)
        if (shapes[i].ran && !strncmp(shapes[i].group, group, strlen(group))) return 1;
    return 0;
}

static double gf(const Shape *s, double t) { return flops(s) / t / 1e9; }

static void report_table(int ti) {
    int t = thread_counts[ti];
    printf("\n### %d thread%s\n\n", t, t > 1 ? "s" : "");
    if (sgemm_only) {
        printf("| group | product | M×K·K×N | fp32 µs | fp32 GFLOP/s | M=1 via sgemm µs |\n|---|---|---|--:|--:|--:|\n");
        for (int i = 0; i < N_SHAPES; i++) {
            Shape *s = &shapes[i];
        if (!s->ran) continue;
            char extra[32] = "";
            if (s->M == 1) snprintf(extra, sizeof extra, "%.1f", s->t_sgemm_m1[ti] * 1e6);
            printf("| %s | %s | %d×%d·%d×%d | %.1f | %.1f | %s |\n", s->group, s->name, s->M, s->K, s->K, s->N,
                   s->t_sgemm[ti] * 1e6, gf(s, s->t_sgemm[ti]), extra);
        }
        printf("\nfp32 = cblas_sgemm, except M=1: cblas_sgemv (Cairn's one-token path).\n");
        return;
    }
    printf("| group | product | M×K·K×N | sgemm fp32 | oneDNN fp32 | oneDNN bf16 (matmul only) | A→bf16 µs | "
           "**bf16 incl. A→bf16** | bf16 plain-W incl. A→bf16 | **bf16/sgemm** | bf16/oneDNN fp32 |\n");
    printf("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < N_SHAPES; i++) {
        Shape *s = &shapes[i];
        if (!s->ran) continue;
        double tb = s->t_bf16[ti] + s->t_conv[ti];
        printf("| %s | %s | %d×%d·%d×%d | %.1f | %.1f | %.1f | %.1f | **%.1f** | %.1f | **%.2f×** | %.2f× |\n",
               s->group, s->name, s->M, s->K, s->K, s->N, gf(s, s->t_sgemm[ti]), gf(s, s->t_f32[ti]),
               gf(s, s->t_bf16[ti]), s->t_conv[ti] * 1e6, gf(s, tb), gf(s, s->t_plain[ti]), s->t_sgemm[ti] / tb,
               s->t_f32[ti] / tb);
    }
    printf("\nGFLOP/s = 2·M·K·N / median time per call. sgemm fp32 = OpenBLAS cblas_sgemm, except M=1: "
           "cblas_sgemv, which Cairn's LinearOp.forward calls for one token. bf16/sgemm = that fp32 time / (bf16 "
           "matmul + activation conversion time). Decode rows cycle through copies of the 30 layers' weights "
           "(≥ 256 MB fp32) so weights are read from memory, not cache.\n");
    if (!any_ran("decode")) return;
    printf("\nDecode, weight bytes read per second (fp32: 4 B/weight, bf16: 2 B/weight; M=1 fp32 = sgemv; last "
           "column: M=1 through cblas_sgemm instead, not what Cairn does):\n\n");
    printf("| decode | product | weights | fp32 GB/s | bf16 incl. conv GB/s | fp32 µs | bf16 µs | bf16/fp32 | M=1 via sgemm µs |\n");
    printf("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < N_SHAPES; i++) {
        Shape *s = &shapes[i];
        if (!s->ran) continue;
        if (is_train(s)) continue;
        double nw = (double)s->K * s->N, tb = s->t_bf16[ti] + s->t_conv[ti];
        char extra[32] = "";
        if (s->M == 1) snprintf(extra, sizeof extra, "%.1f", s->t_sgemm_m1[ti] * 1e6);
        printf("| M=%d | %s | %.2f M | %.1f | %.1f | %.1f | %.1f | %.2f× | %s |\n", s->M, s->name, nw / 1e6,
               4 * nw / s->t_sgemm[ti] / 1e9, 2 * nw / tb / 1e9, s->t_sgemm[ti] * 1e6, tb * 1e6, s->t_sgemm[ti] / tb, extra);
    }
}

static void report_model(int ti) {
    int t = thread_counts[ti];
    if (!any_ran("train")) goto decode;
    printf("\n### Model-level estimate, %d thread%s per product\n\n", t, t > 1 ? "s" : "");
    double F = 0, T32 = 0, TD = 0, TB = 0, TP = 0;
    for (int i = 0; i < N_SHAPES; i++) {
        Shape *s = &shapes[i];
        if (!s->ran) continue;
        if (!is_train(s)) continue;
        double n = s->per_step * (s->lm ? 1 : n_layers);
        F += n * flops(s);
    }
    printf("LoRA SFT step, one worker (M = %d rows; LM head on %d loss rows); base weights frozen, so no dW "
           "products for them.\n\n", TR, LM);
    printf("| product | per step | FLOP share | fp32 ms/step | bf16 ms/step | speed-up |\n|---|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < N_SHAPES; i++) {
        Shape *s = &shapes[i];
        if (!s->ran) continue;
        if (!is_train(s)) continue;
        double n = s->per_step * (s->lm ? 1 : n_layers);
        double tb = s->t_bf16[ti] + s->t_conv[ti];
        T32 += n * s->t_sgemm[ti]; TB += n * tb; TD += n * s->t_f32[ti]; TP += n * s->t_plain[ti];
        printf("| %s %s | %g | %.1f%% | %.1f | %.1f | %.2f× |\n", s->group, s->name, n, 100 * n * flops(s) / F,
               1e3 * n * s->t_sgemm[ti], 1e3 * n * tb, s->t_sgemm[ti] / tb);
    }
    double S = T32 / TB, SD = T32 / TD, SP = T32 / TP;
    printf("| **total** | | 100%% (%.2f GFLOP) | **%.1f** | **%.1f** | **%.2f×** |\n", F / 1e9, 1e3 * T32, 1e3 * TB, S);
    printf("\nShape-weighted GEMM speed-up (each shape weighted by its FLOPs per step × its fp32 time per FLOP, "
           "i.e. summed times): bf16 packed %.2f×, bf16 plain-layout weights %.2f×, oneDNN fp32 alone %.2f×.\n", S,
           SP, SD);
    printf("Step speed-up by Amdahl with %.0f%% of the step in sgemm: bf16 packed **%.2f×** (step time × %.2f), "
           "plain-layout bf16 %.2f×, oneDNN fp32 %.2f×.\n", 100 * sgemm_share, 1 / (1 - sgemm_share + sgemm_share / S),
           1 - sgemm_share + sgemm_share / S, 1 / (1 - sgemm_share + sgemm_share / SP),
           1 / (1 - sgemm_share + sgemm_share / SD));

    // decode: GEMM time per generated token (30 layers + LM head)
decode:
    if (!any_ran("decode")) return;
    for (int m = 0; m < 2; m++) {
        int M = m == 0 ? 1 : 24;
        double a = 0, b = 0;
        for (int i = 0; i < N_SHAPES; i++) {
            Shape *s = &shapes[i];
        if (!s->ran) continue;
            if (is_train(s) || s->M != M) continue;
            double n = s->per_step * (s->lm ? 1 : n_layers);
            a += n * s->t_sgemm[ti]; b += n * (s->t_bf16[ti] + s->t_conv[ti]);
        }
        printf("\nDecode M=%d: projection + LM head GEMM time per step (%d token%s) fp32 %.2f ms, bf16 %.2f ms → "
               "%.2f× (GEMM-only ceiling: %.0f → %.0f tokens/s).\n", M, M, M > 1 ? "s" : "", a * 1e3, b * 1e3, a / b,
               M / a, M / b);
    }
}

static void report_fidelity(void) {
    printf("\n## Fidelity: relative error against an fp64 product (1 thread)\n\n");
    printf("Activations (or dy) normal, RMS 1; weights: layer %d and embed_tokens of %s. Every 10th row of each "
           "product, all columns. rel = ‖C−R‖_F/‖R‖_F; max = max|C−R| / rms(R).\n\n",
           layer, weights[0].real ? model_path : "normal(0, 0.02) (model not readable)");
    printf("| product | M×K·K×N | rms(R) | sgemm fp32 rel | sgemm max | oneDNN fp32 rel | bf16 rel | bf16 max | "
           "bf16-rounded inputs, fp64 sum: rel | bf16 max abs |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < N_SHAPES; i++) {
        Fid *f = &fid[i];
        Shape *s = &shapes[i];
        if (!f->done) continue;
        printf("| %s %s | %d×%d·%d×%d | %.3g | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e |\n", s->group, s->name,
               s->M, s->K, s->K, s->N, f->ref_rms, f->sgemm.rel_fro, f->sgemm.max_rel, f->f32.rel_fro, f->bf16.rel_fro,
               f->bf16.max_rel, f->bf16_inputs_only.rel_fro, f->max_abs_bf16);
    }
}

// What bf16 storage would do to small updates: a value held in bf16, plus an update of size u
// (Adam's step is about lr per element), rounded back to bf16.
static void report_updates(void) {
    printf("\n## Small updates applied to values held in bf16 vs fp32\n\n");
    printf("A value w held in bf16 gets w + u rounded back to bf16 (u = an Adam-sized step, about lr per element, "
           "sign alternating). lost = the stored value does not change at all; err = mean |applied − u| / u; "
           "100× = the same +u applied 100 times in a row: mean distance moved / 100u (fp32 master: 100%%).\n\n");
    printf("| values | rms | u=1e-5 lost | err | u=1e-4 lost | err | 100× | u=3e-4 lost | err | u=1e-3 lost | err | "
           "fp32, u=1e-5: lost |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    const int n = 576 * 576;
    float *v = alloc_f32(n);
    for (int kind = 0; kind < 3; kind++) {
        const char *name;
        if (kind == 0) { name = "q_proj weights (real, layer above)"; memcpy(v, weights[W_Q].data, sizeof(float) * n); }
        else if (kind == 1) {  // PEFT's LoRA A init: kaiming_uniform(a=√5) → U(−1/√in, 1/√in)
            name = "LoRA A at init, U(±1/√576)";
            for (int i = 0; i < n; i++) v[i] = (float)((2 * uniform01() - 1) / 24.0);
        } else {  // B starts at 0 and grows by about lr per step
            name = "LoRA B after some steps, N(0, 1e-3)";
            for (int i = 0; i < n; i++) v[i] = (float)(1e-3 * normal01());
        }
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
        printf("| %s | %.3g |", name, sqrt(ss / n));
        const double us[4] = {1e-5, 1e-4, 3e-4, 1e-3};
        for (int k = 0; k < 4; k++) {
            long lost = 0; double err = 0;
            for (int i = 0; i < n; i++) {
                float wb = bf16_round(v[i]);
                float u = (float)((i & 1) ? us[k] : -us[k]);
                float nb = bf16_round(wb + u);
                lost += nb == wb;
                err += fabs((double)nb - wb - u) / us[k];
            }
            printf(" %.1f%% | %.0f%% |", 100.0 * lost / n, 100 * err / n);
            if (k == 1) {
                double moved = 0;
                for (int i = 0; i < n; i++) {
                    float w0 = bf16_round(v[i]), wb = w0, u = (float)((i & 1) ? us[k] : -us[k]);
                    for (int step = 0; step < 100; step++) wb = bf16_round(wb + u);
                    moved += fabs((double)wb - w0) / (100 * us[k]);
                }
                printf(" %.0f%% |", 100 * moved / n);
            }
        }
        long lost32 = 0;
        for (int i = 0; i < n; i++) { float u = (i & 1) ? 1e-5f : -1e-5f; lost32 += (float)(v[i] + u) == v[i]; }
        printf(" %.2f%% |\n", 100.0 * lost32 / n);
    }
    free(v);
}

static void cpu_model(char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(out, n, "unknown");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':') + 2;
            p[strcspn(p, "\n")] = 0;
            snprintf(out, n, "%s", p);
            break;
        }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sgemm-only")) sgemm_only = 1, do_fidelity = 0;
        else if (!strcmp(argv[i], "--no-fidelity")) do_fidelity = 0;
        else if (!strcmp(argv[i], "--group") && i + 1 < argc) only_group = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--layer") && i + 1 < argc) layer = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_thread_counts = sscanf(argv[++i], "%d,%d", &thread_counts[0], &thread_counts[1]);
        } else {
            fprintf(stderr, "usage: %s [--sgemm-only] [--no-fidelity] [--group train|decode] [--model F] [--layer L] [--threads 1,2] "
                            "[--batch S]\n", argv[0]);
            return 2;
        }
    }
    double t_start = now();
    char cpu[256]; cpu_model(cpu, sizeof cpu);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("CPU: %s, %ld online cores. OpenBLAS %s, core %s (OPENBLAS_CORETYPE=%s).", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           openblas_get_config(), openblas_get_corename(), ct ? ct : "(unset)");
    if (!sgemm_only) {
        const dnnl_version_t *v = dnnl_version();
        printf(" oneDNN %d.%d.%d, CPU runtime %s, effective ISA %s.", v->major, v->minor, v->patch,
               v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", isa_name(dnnl_get_effective_cpu_isa()));
        CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
        CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    }
    printf("\n");
    load_weights();
    printf("Weights: layer %d of %s: ", layer, model_path);
    for (int i = 0; i < N_WEIGHTS; i++)
        printf("%s%s %s rms %.4f", i ? ", " : "", weights[i].short_name, weights[i].real ? "(real)" : "(normal 0.02)",
               weights[i].rms);
    printf(".\n");

    for (int ti = 0; ti < n_thread_counts; ti++)
        for (int si = 0; si < N_SHAPES; si++)
            if (!strncmp(shapes[si].group, only_group, strlen(only_group))) { bench_shape(si, ti); shapes[si].ran = 1; }

    printf("\n## Throughput, GFLOP/s (median of 5 batches of ≥ %.0f ms)\n", batch_seconds * 1e3);
    for (int ti = 0; ti < n_thread_counts; ti++) report_table(ti);
    if (!sgemm_only) {
        printf("\noneDNN implementations (last thread count): ");
        const char *last = "";
        for (int i = 0; i < N_SHAPES; i++) {
            if (!shapes[i].ran) continue;
            char buf[256];
            snprintf(buf, sizeof buf, "f32 %s, bf16 packed %s, bf16 plain %s", shapes[i].impl_f32, shapes[i].impl_bf16,
                     shapes[i].impl_plain);
            if (strcmp(buf, last)) printf("%s%s %s: %s", *last ? "; " : "", shapes[i].group, shapes[i].name, buf);
            last = strdup(buf);
        }
        printf(".\n");
        printf("\n## Model-level estimates\n");
        for (int ti = 0; ti < n_thread_counts; ti++) report_model(ti);
    }
    if (do_fidelity && any_ran("train")) { report_fidelity(); report_updates(); }
    printf("\nTotal run time %.1f s.\n", now() - t_start);
    return 0;
}
