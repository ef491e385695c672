#!/usr/bin/env python3
"""LoRA SFT and DPO optimizer-step tokens/s of Cairn's trainers against PyTorch + PEFT (TRL's
DPOTrainer for DPO) on CPU: same models, data shapes, batch and threads, interleaved in one
run; peak RSS of each process (wait4). Writes a markdown report.

usage: bench/train/run.py [--reps 2] [--sizes 10m,100m] [--plain-dpo] [--out bench/train/report.md]
(build first: swift build -c release --product bench-train)
--plain-dpo also runs the DPO step in plain PyTorch (TRL's sigmoid loss by hand) for comparison."""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=2)
p.add_argument("--plain-dpo", action="store_true")
p.add_argument("--sizes", default="10m,100m", help="comma-separated subset of 10m,100m")
p.add_argument("--out", default=os.path.join(ROOT, "bench/train/report.md"))
p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/bench-train"))
a = p.parse_args()

# (size, kind, timed steps after one warm-up step)
CASES = [c for c in [("10m", "sft", 5), ("10m", "dpo", 4), ("100m", "sft", 2), ("100m", "dpo", 2)] if c[0] in a.sizes.split(",")]
GOAL = {"10m": 1.5, "100m": 1.0}
TORCH = os.path.join(ROOT, "bench/train/torch_train_bench.py")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from measure import run_json as run  # noqa: E402  (bench/measure.py)

t_start = time.time()
results = {}
for rep in range(a.reps):
    for size, kind, steps in CASES:
        impls = ["cairn", "pytorch"] + (["plain"] if kind == "dpo" and a.plain_dpo else [])
        for impl in impls:
            common = ["--size", size, "--kind", kind, "--steps", str(steps)]
            cmd = [a.bin] + common if impl == "cairn" else \
                  [sys.executable, TORCH] + common + (["--impl", "plain" if impl == "plain" else "trl"] if kind == "dpo" else [])
            r = run(cmd)
            results.setdefault((size, kind, impl), []).append(r)
            print(f"rep {rep + 1} {size} {kind} {impl}: {r['step_s']:.3f} s/step, {r['tokens_per_s']:.0f} tok/s, "
                  f"ref {r['ref_s']:.2f} s, {r['rss_mib']:.0f} MiB", flush=True)

def med(rs, k): return statistics.median(r[k] for r in rs)

names = {"sft": "LoRA SFT (4 × 256)", "dpo": "LoRA DPO (4 pairs, 8 × 256)"}
lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
         f"median of {a.reps} interleaved runs (each the median of its timed steps after one warm-up step); "
         f"whole run {time.time() - t_start:.0f} s.", "",
         "| model | step | Cairn tok/s | PyTorch tok/s | Cairn / PyTorch | goal | Cairn peak RSS MiB | PyTorch peak RSS MiB | goal met |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for size, kind, _ in CASES:
    c, t = results[(size, kind, "cairn")], results[(size, kind, "pytorch")]
    ct, tt = med(c, "tokens_per_s"), med(t, "tokens_per_s")
    cr, tr = med(c, "rss_mib"), med(t, "rss_mib")
    ratio = ct / tt
    met = "yes" if ratio >= GOAL[size] and cr < tr else \
          "no (" + ", ".join(x for x in [f"speed {ratio:.2f}× < {GOAL[size]}×" if ratio < GOAL[size] else "",
                                         "RSS not lower" if cr >= tr else ""] if x) + ")"
    peer = "PyTorch+PEFT" if kind == "sft" else "TRL DPOTrainer"
    lines.append(f"| {size} ({c[0]['params'] / 1e6:.1f} M) | {names[kind]}, vs {peer} | {ct:.0f} | {tt:.0f} | {ratio:.2f}× | "
                 f"≥ {GOAL[size]}× | {cr:.0f} | {tr:.0f} | {met} |")
lines += ["", "Reference log-probs, computed once before the first step and not in the step time (median s): " +
          "; ".join(f"{s} Cairn {med(results[(s, 'dpo', 'cairn')], 'ref_s'):.2f}, TRL {med(results[(s, 'dpo', 'pytorch')], 'ref_s'):.2f} "
                    f"(TRL's figure is its whole trainer init)" for s, k, _ in CASES if k == "dpo") + "."]
if a.plain_dpo:
    lines += ["", "| model | DPO step in plain PyTorch (TRL's sigmoid loss by hand) tok/s | Cairn / plain | plain peak RSS MiB |",
              "|---|---:|---:|---:|"]
    for size, kind, _ in CASES:
        if kind == "dpo":
            pl, c = results[(size, kind, "plain")], results[(size, kind, "cairn")]
            lines.append(f"| {size} | {med(pl, 'tokens_per_s'):.0f} | {med(c, 'tokens_per_s') / med(pl, 'tokens_per_s'):.2f}× | {med(pl, 'rss_mib'):.0f} |")
c0, t0 = results[(CASES[0][0], CASES[0][1], "cairn")][0], results[(CASES[0][0], CASES[0][1], "pytorch")][0]
lines += ["", f"Cairn: OpenBLAS core {c0['openblas_core']}, {c0['threads']} threads; PyTorch {t0['torch']}, {t0['threads']} threads."]
report = "\n".join(lines) + "\n"
open(a.out, "w").write(report)
print(report)
