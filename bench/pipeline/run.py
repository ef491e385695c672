#!/usr/bin/env python3
"""Orchestration overhead of the task-api example pipeline, and the time of a fully cached re-run.

For each repetition, on a fresh store: the base model is made as `make demo` makes it (not
timed), then `cairn run pipelines/task-api` (timed: wall clock of the process, and the
orchestrator's own split from pipeline_result.json: stage processes, gate checks,
orchestration = the rest), then the same command again with nothing changed (every stage
cached; wall clock timed). Writes a markdown report.

usage: bench/pipeline/run.py [--reps 3] [--out bench/pipeline/report.md]
(build first: swift build -c release --product cairn)"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=3)
p.add_argument("--out", default=os.path.join(ROOT, "bench/pipeline/report.md"))
p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/cairn"))
a = p.parse_args()

def cairn(args, env):
    t = time.perf_counter()
    r = subprocess.run([a.bin] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: cairn {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    return r.stdout, wall

rows = []
t_start = time.time()
for rep in range(a.reps):
    work = tempfile.mkdtemp(prefix="cairn-bench-pipeline-")
    env = dict(os.environ, CAIRN_STORE=os.path.join(work, "store"))
    shutil.rmtree(os.path.join(ROOT, "artifacts/task-api"), ignore_errors=True)
    cairn(["init"], env)
    cairn(["tokenizer", "train", "--corpus", "pipelines/task-api/data/corpus.txt", "--vocab-size", "512", "--out", work + "/tok"], env)
    cairn(["model", "init", "--arch", "llama", "--config", "pipelines/base-model/model.json", "--tokenizer", work + "/tok",
           "--out", work + "/init", "--seed", "1"], env)
    out, _ = cairn(["add", work + "/init", "--kind", "base-model"], env)
    cairn(["alias", "set", "task-api-base@init", out.strip().split()[-1]], env)
    cairn(["run", "pipelines/base-model", "--quiet"], env)
    out, wall = cairn(["run", "pipelines/task-api", "--quiet"], env)
    res = json.load(open(os.path.join(ROOT, "artifacts/task-api/pipeline_result.json")))
    assert res["success"], res
    t = res["timings"]
    out2, cached_wall = cairn(["run", "pipelines/task-api", "--quiet"], env)
    res2 = json.load(open(os.path.join(ROOT, "artifacts/task-api/pipeline_result.json")))
    assert res2["final_artifact"] == res["final_artifact"] and all(s.get("cached") for s in res2["stage_results"].values()), res2
    row = dict(wall=wall, total=t["total_seconds"], stages=t["stage_process_seconds"], gates=t["gate_seconds"],
               orch=t["orchestration_seconds"], cached=cached_wall, cached_orch=res2["timings"]["orchestration_seconds"])
    rows.append(row)
    print(f"rep {rep + 1}: run {wall:.2f} s (stage processes {row['stages']:.2f}, gates {row['gates']:.2f}, "
          f"orchestration {row['orch']:.3f} = {100 * row['orch'] / row['total']:.2f}%); cached re-run {cached_wall:.3f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)

med = lambda k: statistics.median(r[k] for r in rows)
share = statistics.median(100 * r["orch"] / r["total"] for r in rows)
lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, median of {a.reps} repetitions "
         f"on fresh stores; whole benchmark {time.time() - t_start:.0f} s.", "",
         "| measure | median | goal | met |", "|---|---:|---:|---|",
         f"| `cairn run pipelines/task-api`, wall clock | {med('wall'):.2f} s | | |",
         f"| of which stage processes (train sft/dpo, merge) | {med('stages'):.2f} s | | |",
         f"| of which gate checks | {med('gates'):.2f} s | | |",
         f"| of which orchestration (configs, store, lineage, cache, journal) | {med('orch'):.3f} s | < 1 s | {'yes' if med('orch') < 1 else 'no'} |",
         f"| orchestration share of the run | {share:.2f}% | < 2% | {'yes' if share < 2 else 'no'} |",
         f"| fully cached re-run, wall clock | {med('cached'):.3f} s | < 1 s | {'yes' if med('cached') < 1 else 'no'} |", "",
         "Per repetition (s): " + "; ".join(f"run {r['wall']:.2f} / orchestration {r['orch']:.3f} / cached {r['cached']:.3f}" for r in rows) + "."]
report = "\n".join(lines) + "\n"
open(a.out, "w").write(report)
print(report)
