// Options, the model's weights (read from safetensors) and the table of shapes, shared by the
// other files of the bf16 GEMM micro-benchmark (declarations: gemm_bf16.h).
#include "gemm_bf16.h"

// ---------------------------------------------------------------- options
const char *model_path = "/tmp/sb/base/model.safetensors";
int layer = 15;
int sgemm_only = 0, do_fidelity = 1;
const char *only_group = "";
int thread_counts[2] = {1, 2}, n_thread_counts = 2;
double batch_seconds = 0.02;

// ---------------------------------------------------------------- random numbers
uint64_t rng = 0x9E3779B97F4A7C15ull;

// ---------------------------------------------------------------- weights (safetensors)
Weight weights[N_WEIGHTS] = {
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

void load_weights(void) {
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
Shape shapes[] = {
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
_Static_assert(sizeof shapes / sizeof shapes[0] == N_SHAPES, "N_SHAPES in gemm_bf16.h must count shapes[]");
