// Fidelity of the products against fp64 (filled in by bench_shape at 1 thread, printed at the
// end), and what bf16 storage would do to small updates.
#include "gemm_bf16.h"

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
void fidelity(int si, const float *a, const float *w, const float *c_sgemm, const float *c_f32,
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

// ---------------------------------------------------------------- reports
void report_fidelity(void) {
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
void report_updates(void) {
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
