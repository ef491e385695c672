#!/usr/bin/env python3
"""What a sweep saves, on the tiny task-api pipeline (issue 16), each case on a fresh copy of one
store that holds only the base model (made as `MODEL=tiny make demo` makes it, not timed):

1. the 2x2 grid (sft.lora_r x dpo.beta) as one sweep, one run at a time, against the same four
   variants as four independent runs (each on its own fresh store: nothing shared);
2. the same grid with two runs at once (parallel: 2) against one after the other;
3. successive halving over four SFT learning rates (rungs at 20 and 40 steps) against the full
   grid of the same four: time, and whether both found the same best.

Wall clock of each `cairn` process; every case run --reps times, alternating, medians reported.
usage: bench/sweep/run.py [--reps 3] [--out bench/sweep/report.md]
(build first: swift build -c release --product cairn)"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=3)
p.add_argument("--out", default=os.path.join(ROOT, "bench/sweep/report.md"))
p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/cairn"))
a = p.parse_args()

def cairn(args, store, cwd=ROOT):
    t = time.perf_counter()
    r = subprocess.run([a.bin] + args, cwd=cwd, env=dict(os.environ, CAIRN_STORE=store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: cairn {' '.join(args)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r.stdout, time.perf_counter() - t

WORK = tempfile.mkdtemp(prefix="cairn-bench-sweep-")
BASE = os.path.join(WORK, "base-store")
cairn(["init"], BASE)
cairn(["tokenizer", "train", "--corpus", "pipelines/task-api/data/corpus.txt", "--vocab-size", "512", "--out", WORK + "/tok"], BASE)
cairn(["model", "init", "--arch", "llama", "--config", "pipelines/base-model/model.json", "--tokenizer", WORK + "/tok", "--out", WORK + "/init", "--seed", "1"], BASE)
out, _ = cairn(["add", WORK + "/init", "--kind", "base-model"], BASE)
cairn(["alias", "set", "task-api-base@init", out.strip().split()[-1]], BASE)
cairn(["run", "pipelines/base-model", "--quiet"], BASE)

GRID = "space:\n  sft.lora_r: [16, 24]\n  sft.lora_alpha: \"2*lora_r\"\n  dpo.beta: [0.1, 0.3]\n"
OBJ = "objective: {metric: dpo.eval_accuracy, then: {metric: dpo.eval_margin, goal: maximize}}\n"
LRS = "space:\n  sft.learning_rate: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]\nobjective: {metric: dpo.eval_accuracy, then: sft.eval_loss}\n"
CASES = {
    "grid, one at a time": f"sweep_id: grid\npipeline: .\nparallel: 1\n{GRID}{OBJ}",
    "grid, two at once": f"sweep_id: grid\npipeline: .\nparallel: 2\n{GRID}{OBJ}",
    "four learning rates, full grid": f"sweep_id: lr\npipeline: .\nparallel: 1\n{LRS}",
    "four learning rates, successive halving": f"sweep_id: lr\npipeline: .\nparallel: 1\n{LRS}"
        "early_stop: {strategy: successive_halving, metric: sft.eval_loss, min_steps: 20, reduction_factor: 2}\n",
}

def fresh(name):
    """A scratch repository holding the task-api pipeline, and a copy of the base store."""
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d + "/repo/.git")
    shutil.copytree(os.path.join(ROOT, "pipelines/task-api"), d + "/repo/p")
    y = open(d + "/repo/p/pipeline.yaml").read().replace("output_dir: ../../artifacts/task-api", "output_dir: ./artifacts")
    open(d + "/repo/p/pipeline.yaml", "w").write(y)
    shutil.copytree(BASE, d + "/store")
    return d

def sweep(name, text):
    d = fresh(name)
    open(d + "/repo/p/sweep.yaml", "w").write(text)
    _, wall = cairn(["sweep", d + "/repo/p/sweep.yaml", "--quiet"], d + "/store")
    rows = json.loads(cairn(["compare", d + "/repo/p/sweep.yaml", "--json"], d + "/store")[0])
    best = [r["label"] for r in rows if r["best"]]
    return wall, best[0] if best else None, rows

def independent():
    """The grid's four variants as four runs, each on its own fresh store (no stage shared)."""
    total = 0.0
    for r, beta in [(16, 0.1), (16, 0.3), (24, 0.1), (24, 0.3)]:
        d = fresh(f"independent-{r}-{beta}")
        for f, k, v in [("sft_config.yaml", "lora_r", r), ("sft_config.yaml", "lora_alpha", 2 * r), ("dpo_config.yaml", "beta", beta)]:
            lines = open(f"{d}/repo/p/{f}").read().split("\n")
            open(f"{d}/repo/p/{f}", "w").write("\n".join(f"{k}: {v}" if l.startswith(k + ":") else l for l in lines))
        total += cairn(["run", d + "/repo/p", "--quiet"], d + "/store")[1]
        # The time of the stages a sweep shares between the two variants of a rank (SFT, merge).
        run = json.loads(cairn(["runs", "--json", "--limit", "1"], d + "/store")[0])[0]["run"]["id"]
        for st in json.loads(cairn(["run", "show", str(run), "--json"], d + "/store")[0])["stages"]:
            if st["stage"] in ("sft", "merge") and st.get("finished_at"):
                shared[-1] += st["finished_at"] - st["started_at"]
    return total

times = {k: [] for k in list(CASES) + ["four independent runs"]}
bests = {k: set() for k in CASES}
shared = []  # per repetition: seconds of SFT and merge (with their gates) in the four independent runs
t0 = time.time()
for rep in range(a.reps):
    for k, text in CASES.items():
        wall, best, _ = sweep(k.replace(" ", "-").replace(",", ""), text)
        times[k].append(wall); bests[k].add(best)
        print(f"rep {rep + 1}: {k}: {wall:.2f} s, best {best}", flush=True)
    shared.append(0.0)
    times["four independent runs"].append(independent())
    print(f"rep {rep + 1}: four independent runs: {times['four independent runs'][-1]:.2f} s", flush=True)
shutil.rmtree(WORK, ignore_errors=True)

m = {k: statistics.median(v) for k, v in times.items()}
lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, `python3 bench/sweep/run.py --reps {a.reps}` "
         f"(whole benchmark {time.time() - t0:.0f} s); medians of {a.reps}, each case on a fresh copy of a store holding only the base model.", "",
         "| case | wall time (median) | against |", "|---|---:|---|",
         f"| 2x2 grid (lora_r x beta), one sweep, one run at a time | {m['grid, one at a time']:.1f} s | four independent runs {m['four independent runs']:.1f} s: "
         f"{m['four independent runs'] / m['grid, one at a time']:.2f}x faster (SFT and merge run 2 times, not 4); saved "
         f"{m['four independent runs'] - m['grid, one at a time']:.1f} s, where the shared stages (SFT and merge with their gates) took "
         f"{statistics.median(shared):.1f} s in the four runs, half of which the sweep skips ({statistics.median(shared) / 2:.1f} s) |",
         f"| the same grid, two runs at once | {m['grid, two at once']:.1f} s | one at a time {m['grid, one at a time']:.1f} s: "
         f"{m['grid, one at a time'] / m['grid, two at once']:.2f}x |",
         f"| four SFT learning rates, successive halving (rungs at 20, 40 steps) | {m['four learning rates, successive halving']:.1f} s | "
         f"the full grid {m['four learning rates, full grid']:.1f} s: {m['four learning rates, full grid'] / m['four learning rates, successive halving']:.2f}x faster |", "",
         f"Best found: grid one at a time {sorted(bests['grid, one at a time'])}, two at once {sorted(bests['grid, two at once'])}; "
         f"learning rates, full grid {sorted(bests['four learning rates, full grid'])}, successive halving {sorted(bests['four learning rates, successive halving'])}."]
open(a.out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
