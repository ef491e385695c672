// Reports of the throughput measurements: per thread count, the GFLOP/s table (and decode's
// weight bytes per second), then the model-level estimates of a LoRA SFT step and of decoding.
#include "gemm_bf16.h"

int any_ran(const char *group) {
    for (int i = 0; i < N_SHAPES; i++)
        if (shapes[i].ran && !strncmp(shapes[i].group, group, strlen(group))) return 1;
    return 0;
}

static double gf(const Shape *s, double t) { return flops(s) / t / 1e9; }

void report_table(int ti) {
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

void report_model(int ti) {
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
