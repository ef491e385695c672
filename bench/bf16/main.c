// bf16 vs fp32 GEMM micro-benchmark on SmolLM2-135M's shapes (paper study, no change to Cairn).
//
// Times OpenBLAS sgemm (fp32), oneDNN matmul fp32 and oneDNN matmul bf16 (bf16 inputs, f32
// accumulation and output) on 1 and 2 threads, for the products of a LoRA SFT step (forward
// projections, backward dx products, LM head on the loss rows) and of decoding (M = 1, M = 24);
// then measures the error of fp32 and bf16 products against fp64 on the real model's weights.
// Build and run: see README.md. All output is Markdown, pasted into results.md.
//
// Files: gemm_bf16.h lists them; this one reads the arguments and runs the pieces in order.
#include "gemm_bf16.h"

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
