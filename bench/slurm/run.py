#!/usr/bin/env python3
"""How many jobs a minute Cairn's coordinator follows and ingests through Slurm.

Starts a one-node Slurm of its own (scripts/slurm-local.sh), builds the release `cairn` and
`bench-slurm`, and runs bench-slurm --reps times: N tiny jobs (each writes 64 KiB, its one
output) first as bare `sbatch --wrap` jobs followed with squeue (Slurm alone, the floor), then
through Cairn's SlurmExecutor from P threads, each output stored as blobs by its worker and
indexed by the coordinator. Prints the medians and the coordinator's CPU seconds per job.

usage: python3 bench/slurm/run.py [--jobs 40] [--parallel 8] [--reps 3]
"""
import argparse, json, os, signal, statistics, subprocess, sys, tempfile

# SIGTERM ends the benchmark through `finally`, which stops the cluster it started.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--jobs", type=int, default=40)
p.add_argument("--parallel", type=int, default=8)
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()

subprocess.run(["swift", "build", "-c", "release", "--product", "cairn"], cwd=root, check=True)
subprocess.run(["swift", "build", "-c", "release", "--product", "bench-slurm"], cwd=root, check=True)
cluster = tempfile.mkdtemp(prefix="cairn-bench-cluster-")
env = dict(os.environ, SLURM_LOCAL_PORT="17817", SLURM_CONF=cluster + "/slurm.conf")
subprocess.run(["bash", root + "/scripts/slurm-local.sh", "start", cluster], env=env, check=True, stdout=subprocess.DEVNULL)
try:
    runs = []
    for r in range(a.reps):
        out = subprocess.run([root + "/.build/release/bench-slurm", "--cairn", root + "/.build/release/cairn",
                              "--jobs", str(a.jobs), "--parallel", str(a.parallel)], env=env, check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout))
        print(f"rep {r + 1}: {json.dumps(runs[-1], sort_keys=True)}", file=sys.stderr)
        if out.stderr: print(out.stderr, end="", file=sys.stderr)
finally:
    subprocess.run(["bash", root + "/scripts/slurm-local.sh", "stop", cluster], env=env)

def med(k):
    return statistics.median(x[k] for x in runs)

print(f"{a.jobs} jobs, {a.parallel} followed at once, {os.cpu_count()} cores, one-node Slurm, median of {a.reps}")
print(f"| | jobs/min | seconds |")
print(f"|---|---|---|")
print(f"| Slurm alone (sbatch --wrap, squeue) | {med('peer_jobs_per_minute'):.1f} | {med('peer_seconds'):.1f} |")
print(f"| Cairn's SlurmExecutor, outputs indexed | {med('cairn_jobs_per_minute'):.1f} | {med('cairn_seconds'):.1f} |")
print(f"ratio Cairn / Slurm alone: {med('ratio_cairn_to_peer'):.2f}")
own = med('coordinator_cpu_seconds_per_job')
cmds = med('slurm_commands_cpu_seconds_per_job')
print(f"coordinator CPU per job: {own * 1000:.1f} ms in cairn + {cmds * 1000:.1f} ms in the Slurm commands it runs "
      f"(so one coordinator core follows and ingests about {60 / (own + cmds):.0f} jobs a minute)")
print(f"squeue calls per run: {med('squeue_calls'):.0f}; failed jobs: {max(x['failed'] for x in runs)}; "
      f"outputs indexed from the workers' blobs: {min(x['outputs_indexed_from_worker_blobs'] for x in runs)}/{a.jobs}")
