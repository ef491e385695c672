#!/usr/bin/env python3
"""Forward+backward tokens/s of Cairn against PyTorch on CPU, same configs, batch, sequence
length and threads, interleaved in one run; peak RSS of each process; Cairn's achieved GFLOP/s
against the sgemm peak measured in the same process. Writes a markdown report.

usage: bench/train-model/run.py [--reps 3] [--out bench/train-model/report.md]
(build first: swift build -c release --product bench-train-model)"""
import argparse, json, os, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=3)
p.add_argument("--out", default=os.path.join(ROOT, "bench/train-model/report.md"))
p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/bench-train-model"))
a = p.parse_args()

CASES = [("10m", "full", 5), ("10m", "lora", 5), ("100m", "full", 3), ("100m", "lora", 3)]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from measure import run_json as run  # noqa: E402  (bench/measure.py)

results = {}
for rep in range(a.reps):
    for size, mode, steps in CASES:
        for impl in ("cairn", "pytorch"):
            cmd = ([a.bin] if impl == "cairn" else [sys.executable, os.path.join(ROOT, "bench/train-model/torch_bench.py")]) + \
                  ["--size", size, "--mode", mode, "--steps", str(steps), "--batch", "4", "--seq", "256"]
            r = run(cmd)
            results.setdefault((size, mode, impl), []).append(r)
            print(f"rep {rep + 1} {size} {mode} {impl}: {r['step_s']:.3f} s/step, {r['tokens_per_s']:.0f} tok/s, {r['rss_mib']:.0f} MiB", flush=True)

def med(rs, k): return statistics.median(r[k] for r in rs)

lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, batch 4 × 256 tokens, "
         f"median of {a.reps} interleaved runs (each the median of its timed steps after one warm-up step).", "",
         "| model | mode | Cairn tok/s | PyTorch tok/s | Cairn / PyTorch | Cairn GFLOP/s | sgemm peak GFLOP/s | % of peak | Cairn peak RSS MiB | PyTorch peak RSS MiB |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for size, mode, _ in CASES:
    c, t = results[(size, mode, "cairn")], results[(size, mode, "pytorch")]
    ct, tt = med(c, "tokens_per_s"), med(t, "tokens_per_s")
    g, peak = med(c, "gflops"), med(c, "sgemm_peak_gflops")
    lines.append(f"| {size} ({c[0]['params'] / 1e6:.1f} M) | {mode} | {ct:.0f} | {tt:.0f} | {ct / tt:.2f}× | {g:.0f} | {peak:.0f} | "
                 f"{100 * g / peak:.0f}% | {med(c, 'rss_mib'):.0f} | {med(t, 'rss_mib'):.0f} |")
lines += ["", f"Cairn: OpenBLAS core {results[CASES[0][:2] + ('cairn',)][0]['openblas_core']}, {results[CASES[0][:2] + ('cairn',)][0]['threads']} threads; "
          f"PyTorch {results[CASES[0][:2] + ('pytorch',)][0]['torch']}, {results[CASES[0][:2] + ('pytorch',)][0]['threads']} threads."]
report = "\n".join(lines) + "\n"
open(a.out, "w").write(report)
print(report)
