// Throughput of one shape at one thread count: OpenBLAS sgemm (sgemv for one token), oneDNN
// matmul fp32, oneDNN matmul bf16 with packed weights plus the per-call activation conversion,
// and bf16 with plain-layout weights. The timed calls and their timer live together here.
#include "gemm_bf16.h"

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
dnnl_engine_t eng;
dnnl_stream_t strm;

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

// ---------------------------------------------------------------- one shape at one thread count
static int is_decode(const Shape *s) { return !is_train(s); }

void bench_shape(int si, int ti) {
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
