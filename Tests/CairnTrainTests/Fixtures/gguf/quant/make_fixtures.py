#!/usr/bin/env python3
"""Golden fixtures for Cairn's ggml block (de)quantisation (Sources/CairnTrain/GGUF/GGMLQuant*.swift),
made by gguf-py (`gguf.quants`, the package llama.cpp's converters use).

Regenerate (from the repository root; needs numpy and gguf 0.19, both in the peers' venv):

    /root/.cache/cairn-peers/venv/bin/python Tests/CairnTrainTests/Fixtures/gguf/quant/make_fixtures.py

It deletes and rewrites, beside itself (all binary files little-endian, no headers):

    index.json              what every file holds: type, ggml type number, element count, rows,
                            and what the rows / blocks exercise
    dequant_<TYPE>.bin      raw ggml blocks of TYPE (rows × 512 elements) for every type Cairn reads:
                            F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K
    dequant_<TYPE>.f32      gguf.quants.dequantize(those bytes) as float32
    quant_<TYPE>.in.f32     float32 input for TYPE in F32 F16 BF16 Q8_0
    quant_<TYPE>.bin        gguf.quants.quantize(that input) (for BF16 also ggml's fp32_to_bf16)

Block bytes: for the types gguf-py can quantise (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16) the
first two rows are gguf-py's quantisation of random normal data with edge blocks (all zero, one
huge value, constant, tiny, one sign only; Q4_0/Q5_0 get negative d wherever the largest-|x| value
is positive); a further row is random bytes with random finite f16 d/m fields, negative ones
included. K-quants (gguf-py only dequantises them) are random bytes with finite f16 d/dmin fields
and some edge blocks. F16 and BF16 rows are random bit patterns plus specials (±0, subnormals,
±inf, quiet and signalling NaNs with payloads). numpy keeps an f16 signalling NaN signalling where
ggml's GGML_FP16_TO_FP32 makes it quiet; the Swift test sets the quiet bit of those expected values.
"""
import glob
import importlib.metadata
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
ROW = 512
rng = np.random.default_rng(20240611)


def f16_bytes(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float16).view(np.uint8)


def finite_f16(n, scale):
    """n random finite f16 values of both signs, as raw bytes (n, 2)."""
    return f16_bytes(rng.normal(0, scale, n)).reshape(n, 2)


def write(name, array):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(np.ascontiguousarray(array).tobytes())


def edge_data(rows):
    """rows × ROW float32 normal data with edge blocks in the first row (32-element blocks)."""
    x = (rng.standard_normal((rows, ROW)) * rng.uniform(0.01, 2, (rows, ROW // 32)).repeat(32, 1)).astype(np.float32)
    r = x[0]
    r[0:32] = 0                                   # block 0: all zero (d = 0, id = 0)
    r[32 + 7] = 3000.0                            # block 1: one huge positive value (Q4_0/Q5_0: d < 0)
    r[64 + 3] = -2500.0                           # block 2: one huge negative value (d > 0)
    r[96:128] = 0.3                               # block 3: constant (Q4_1/Q5_1: d = 0, m = 0.3)
    r[128:160] *= 1e-6                            # block 4: tiny (f16 d subnormal or 0)
    r[160:192] = -np.abs(r[160:192])              # block 5: all negative
    r[192:224] = np.abs(r[192:224]) + 1           # block 6: all positive, offset (Q4_1 m > 0)
    r[224:256] = np.float32(7.0) * rng.integers(-8, 8, 32)  # block 7: exact multiples
    return x


def raw_legacy(qtype, rows):
    """Random block bytes of a 32-element type with random finite f16 fields in front."""
    block, size = GGML_QUANT_SIZES[qtype]
    nb = rows * ROW // block
    b = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    n_half = 2 if qtype in (T.Q4_1, T.Q5_1) else 1   # d (and m)
    for k in range(n_half):
        b[:, 2 * k:2 * k + 2] = finite_f16(nb, 0.05)
    b[0, 0:2] = f16_bytes([-0.0])                    # d = −0
    b[1, 0:2] = f16_bytes([2.0 ** -24])              # d = smallest subnormal
    b[2, 0:2] = f16_bytes([-65504.0])                # d = −max
    return b.reshape(rows, -1)


def raw_kquant(qtype, rows):
    block, size = GGML_QUANT_SIZES[qtype]
    nb = rows * ROW // block
    b = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    if qtype == T.Q6_K:
        b[:, 208:210] = finite_f16(nb, 0.002)
        b[0, 208:210] = f16_bytes([0.0])             # d = 0
        b[1, 208:210] = f16_bytes([65504.0])         # d = max, scales ±127
        b[1, 192:208] = np.array([127, 129] * 8, dtype=np.uint8)
        b[2, 208:210] = f16_bytes([-3 * 2.0 ** -24])  # negative subnormal d
        b[3, 0:192] = 0                               # all quants −32
    else:
        b[:, 0:2] = finite_f16(nb, 0.01)
        b[:, 2:4] = finite_f16(nb, 0.01)              # dmin of both signs
        b[0, 0:4] = f16_bytes([0.0, 0.0])             # d = dmin = 0
        b[1, 0:4] = f16_bytes([65504.0, -65504.0])    # extreme d/dmin, all 6-bit scales/mins 63
        b[1, 4:16] = 0xFF
        b[2, 0:4] = f16_bytes([2.0 ** -24, -2.0 ** -14])  # subnormal d, smallest normal dmin
        b[3, 4:16] = 0                                # all scales/mins 0
        b[4, 16:] = 0xFF                              # all quants at their maximum
    return b.reshape(rows, -1)


def half_patterns(specials):
    bits = rng.integers(0, 1 << 16, ROW, dtype=np.uint16)
    bits[:len(specials)] = specials
    return bits.reshape(1, ROW).view(np.uint8)


F16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
                0x7E00, 0xFE00, 0x7C01, 0x7D55, 0xFFFF, 0x3C00, 0x3555]
BF16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80,
                 0x7FC0, 0xFFC0, 0x7F81, 0x7FFF, 0x3F80, 0x3EAB]


def dequant_cases():
    cases = []
    for qtype in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]:
        name = qtype.name
        if qtype == T.F32:
            x = rng.standard_normal(ROW).astype(np.float32)
            x[:8] = [0.0, -0.0, np.inf, -np.inf, 1e-40, -3.4028235e38, np.nan, 1.0]
            raw, notes = x.reshape(1, ROW).view(np.uint8), "random normal and specials (±0, ±inf, subnormal, NaN)"
        elif qtype == T.F16:
            raw, notes = half_patterns(F16_SPECIALS), "random f16 bit patterns after specials " + " ".join(f"{v:04x}" for v in F16_SPECIALS)
        elif qtype == T.BF16:
            raw, notes = half_patterns(BF16_SPECIALS), "random bf16 bit patterns after specials " + " ".join(f"{v:04x}" for v in BF16_SPECIALS)
        elif qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
            raw = raw_kquant(qtype, 3)
            notes = "random bytes with finite f16 d/dmin; blocks 0-4 edge cases (see raw_kquant in make_fixtures.py)"
        else:
            q = quants.quantize(edge_data(2), qtype)
            raw = np.concatenate([q, raw_legacy(qtype, 1)], axis=0)
            notes = ("rows 0-1: gguf-py quantisation of normal data, row 0 blocks 0-7 edge cases (see edge_data); "
                     "row 2: random bytes with finite f16 fields (blocks 0-2: d = -0, 2^-24, -65504)")
        values = quants.dequantize(raw, qtype).astype(np.float32, copy=False)
        assert values.shape == (raw.shape[0], ROW), (name, values.shape)
        write(f"dequant_{name}.bin", raw)
        write(f"dequant_{name}.f32", values)
        cases.append({"type": name, "ggml_type": int(qtype), "count": int(values.size), "rows": int(raw.shape[0]),
                      "bytes": f"dequant_{name}.bin", "values": f"dequant_{name}.f32", "notes": notes})
    return cases


def quant_inputs():
    x16 = np.concatenate([np.array([
        0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, -1e10, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25,
        1e-8, 6.1e-5, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, -(1.0 + 2.0 ** -11), np.inf, -np.inf, np.nan,
    ], dtype=np.float32), (rng.standard_normal(237) * 10.0 ** rng.integers(-6, 4, 237)).astype(np.float32)])
    xbf = np.concatenate([np.array([
        0.0, -0.0, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -(1.0 + 2.0 ** -8), 3.4028235e38, -3.4028235e38,
        1e-40, 1.1754942e-38, np.inf, -np.inf, np.nan, -np.nan,
    ], dtype=np.float32), np.array([0x7F800001, 0x7FA12345, 0xFFC0FFFF, 0x7FFFFFFF], dtype=np.uint32).view(np.float32),
        (rng.standard_normal(239) * 10.0 ** rng.integers(-30, 30, 239)).astype(np.float32)])
    q8 = (rng.standard_normal((8, 32)) * 0.05).astype(np.float32)
    q8[0] = 0                                                       # all zero: d = 0, id = 0
    q8[1, 5] = 40.0                                                 # one huge value
    q8[2] = np.arange(-15.5, 16.5, 1.0, dtype=np.float32)           # ties at d = 1: ±k.5 (and amax 15.5)
    q8[2, 0] = 127.0                                                #   amax 127 → d = 1, id = 1
    q8[3] = np.float32(0.5) * (np.arange(32, dtype=np.float32) - 16) + np.float32(0.25)  # ties at d = 0.5:
    q8[3, 31] = 63.5                                                #   amax 63.5 → id = 2, x·id = ±k.5
    q8[4] = -np.abs(q8[4])                                          # all negative
    q8[5] *= 1e-4                                                   # tiny: f16 d subnormal
    q8[6] = np.float32(1e-9) * rng.standard_normal(32)              # tinier: f16 d rounds to 0, qs still ±127
    return {T.F32: np.concatenate([x16[:64], xbf[:16]]), T.F16: x16, T.BF16: xbf, T.Q8_0: q8.reshape(-1)}


def bf16_ggml(x: np.ndarray) -> np.ndarray:
    """ggml_compute_fp32_to_bf16 (ggml-impl.h), written out to cross-check gguf-py's BF16."""
    u = x.view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    rounded = (u + (0x7FFF + ((u >> 16) & 1))) >> 16
    return np.where(nan, (u >> 16) | 64, rounded).astype(np.uint16)


def quant_cases():
    cases = []
    for qtype, x in quant_inputs().items():
        name = qtype.name
        with np.errstate(over="ignore", invalid="ignore"):
            q = quants.quantize(x.reshape(1, -1), qtype)
        q = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
        if qtype == T.BF16:
            assert (q.view(np.uint16) == bf16_ggml(x)).all()
        write(f"quant_{name}.in.f32", x)
        write(f"quant_{name}.bin", q)
        cases.append({"type": name, "ggml_type": int(qtype), "count": int(x.size),
                      "input": f"quant_{name}.in.f32", "bytes": f"quant_{name}.bin"})
    return cases


def main():
    for old in glob.glob(os.path.join(HERE, "*.bin")) + glob.glob(os.path.join(HERE, "*.f32")):
        os.remove(old)
    index = {"generator": "make_fixtures.py", "gguf": importlib.metadata.version("gguf"), "numpy": np.__version__, "row": ROW, "dequantize": dequant_cases(), "quantize": quant_cases()}
    with open(os.path.join(HERE, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
