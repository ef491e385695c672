#!/usr/bin/env python3
"""Two builds of bench-train against each other: LoRA SFT and DPO optimizer-step tokens/s of a
"before" and an "after" binary, alternated in one run (which goes first swaps every repetition,
so neither always runs on a warmer machine). Prints a markdown table of medians, with each
process's CPU seconds (user + system, from RUSAGE_CHILDREN): on a loaded machine the wall-clock
rates move by tens of percent between runs, the work done much less.

usage: bench/train/before_after.py --before BIN --after BIN [--reps 4] [--sizes 10m,100m]
(build each first: swift build -c release --product bench-train, in a worktree of each commit)"""
import argparse, os, resource, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from measure import run_json as run  # noqa: E402  (bench/measure.py)

p = argparse.ArgumentParser()
p.add_argument("--before", required=True)
p.add_argument("--after", required=True)
p.add_argument("--reps", type=int, default=4)
p.add_argument("--sizes", default="10m,100m", help="comma-separated subset of 10m,100m")
a = p.parse_args()

# (size, kind, timed steps after one warm-up step), as bench/train/run.py
CASES = [c for c in [("10m", "sft", 5), ("10m", "dpo", 4), ("100m", "sft", 2), ("100m", "dpo", 2)] if c[0] in a.sizes.split(",")]
t_start = time.time()
results = {}
for rep in range(a.reps):
    for size, kind, steps in CASES:
        order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
        for which in order:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = run([getattr(a, which), "--size", size, "--kind", kind, "--steps", str(steps)])
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            r["cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            results.setdefault((size, kind, which), []).append(r)
            print(f"rep {rep + 1} {size} {kind} {which}: {r['step_s']:.3f} s/step, {r['tokens_per_s']:.0f} tok/s, "
                  f"{r['cpu_s']:.1f} CPU s, {r['rss_mib']:.0f} MiB", flush=True)

def med(rs, k): return statistics.median(r[k] for r in rs)

r0 = results[(CASES[0][0], CASES[0][1], "before")][0]
lines = [f"Median of {a.reps} alternated runs each (each the median of its timed steps after one warm-up step); "
         f"{os.cpu_count()} cores, OpenBLAS core {r0['openblas_core']}, {r0['threads']} threads; whole run {time.time() - t_start:.0f} s.", "",
         "| model | step | before tok/s | after tok/s | after / before | before CPU s | after CPU s | after / before | "
         "before peak RSS MiB | after peak RSS MiB |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for size, kind, _ in CASES:
    b, f = results[(size, kind, "before")], results[(size, kind, "after")]
    lines.append(f"| {size} | {kind} | {med(b, 'tokens_per_s'):.0f} | {med(f, 'tokens_per_s'):.0f} | "
                 f"{med(f, 'tokens_per_s') / med(b, 'tokens_per_s'):.3f} | {med(b, 'cpu_s'):.1f} | {med(f, 'cpu_s'):.1f} | "
                 f"{med(f, 'cpu_s') / med(b, 'cpu_s'):.3f} | {med(b, 'rss_mib'):.0f} | {med(f, 'rss_mib'):.0f} |")
print("\n".join(lines))
