#!/usr/bin/env python3
"""Commit → run process started, for `cairn watch` (inotify + reconcile) against a 60 s poller
(`cairn watch --poll-only --interval 60`, what Flux's default interval does), both watching the
same repository in the same run with their own stores; then a burst of 1,000 commits pushed at
once to a bare repository.

Latency of a commit = the start of the first run of its pipeline, in that daemon, at this commit
or a later one, minus the moment before `git commit` was called (git's own time included).
The pipelines' runs fail at once (their base model is an alias that does not exist): what is
measured is the trigger, not training. Both daemons run with --jobs 4, so a run that is still
finishing does not hold the next one back. Run starts come from the queue's started_at.

usage: bench/trigger/run.py [--commits 100] [--window 120] [--burst 1000] [--out bench/trigger/report.md]
(build first: swift build -c release --product cairn)"""
import argparse, json, os, random, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("--commits", type=int, default=100)
p.add_argument("--window", type=float, default=120.0, help="seconds over which the commits are spread (random gaps)")
p.add_argument("--burst", type=int, default=1000)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--out", default=os.path.join(ROOT, "bench/trigger/report.md"))
p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/cairn"))
a = p.parse_args()

work = tempfile.mkdtemp(prefix="cairn-bench-trigger-")
repo = os.path.join(work, "repo")
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@e", GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@e")

def git(*args, cwd=repo):
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def write(path, text):
    full = os.path.join(repo, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    open(full, "w").write(text)

PIPE = """pipeline_id: {id}
base_model: no-such-model@bench
stages:
  - name: sft
    config_path: ./sft_config.yaml
datasets:
  sft: data/sft.jsonl
"""

def setup_repo():
    os.makedirs(repo)
    git("init", "-q", "-b", "main", ".")
    for pid in ("alpha", "beta"):
        write(f"pipelines/{pid}/pipeline.yaml", PIPE.format(id=pid))
        write(f"pipelines/{pid}/sft_config.yaml", "lora_r: 8\n")
        write(f"pipelines/{pid}/data/sft.jsonl", '{"prompt": "a", "completion": "b"}\n')
    write("README.md", "bench\n")
    git("add", "-A"); git("commit", "-q", "-m", "init")

def daemon(store, *extra, repo_path=None):
    subprocess.run([a.bin, "init", "--store", store], check=True, stdout=subprocess.DEVNULL)
    return subprocess.Popen([a.bin, "watch", repo_path or repo, "--store", store, *extra], stdout=subprocess.DEVNULL,
                            stderr=open(store + ".log", "w"))

def starts(store):
    db = sqlite3.connect(os.path.join(store, "index.db"))
    return [(pl, c, s) for pl, c, s in db.execute("SELECT pipeline, commit_sha, started_at FROM run_queue WHERE started_at IS NOT NULL")]

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

t_start = time.time()
setup_repo()
fast, slow = os.path.join(work, "store-watch"), os.path.join(work, "store-poll")
d_fast = daemon(fast, "--interval", "60", "--jobs", "4")
d_slow = daemon(slow, "--poll-only", "--interval", "60", "--jobs", "4")
time.sleep(2)  # both have taken the first sight of main

rng = random.Random(1)
gaps = [rng.expovariate(a.commits / a.window) for _ in range(a.commits)]
commits = []  # (pipeline, sha, t_before_commit)
for i, g in enumerate(gaps):
    time.sleep(g)
    pid = "alpha" if i % 2 == 0 else "beta"
    write(f"pipelines/{pid}/sft_config.yaml", f"lora_r: {100 + i}\n")
    git("add", "-A")
    t0 = time.time()
    git("commit", "-q", "-m", f"{pid} {i}")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    commits.append((f"pipelines/{pid}", sha, t0))
time.sleep(62)  # the poller's next tick
order = {sha: i for i, (_, sha, _) in enumerate(commits)}

def latencies(store):
    s = starts(store)
    out = []
    for i, (pl, sha, t0) in enumerate(commits):
        later = [st for p2, c2, st in s if p2 == pl and c2 in order and order[c2] >= i and st >= t0 - 1]
        if later:
            out.append(min(later) - t0)
    return out

lat_fast, lat_slow = latencies(fast), latencies(slow)
runs_fast, runs_slow = len(starts(fast)), len(starts(slow))
d_slow.terminate(); d_slow.wait()

# Burst: 1,000 commits made in a clone, pushed at once to a bare repository the daemon watches.
bare = os.path.join(work, "server.git")
git("clone", "-q", "--bare", repo, bare, cwd=work)
git("remote", "add", "origin", bare)
burst_store = os.path.join(work, "store-burst")
d_burst = daemon(burst_store, "--interval", "60", repo_path=bare)
time.sleep(2)
rss = [rss_kib(d_burst.pid)]
newest = {}
ok_rounds = []
for round_ in range(a.rounds):
    for i in range(a.burst):
        pid = ["alpha", "beta", None][i % 3]
        if pid:
            write(f"pipelines/{pid}/sft_config.yaml", f"lora_r: {1000 * (round_ + 1) + i}\n")
        else:
            write("README.md", f"burst {round_} {i}\n")
        git("add", "-A"); git("commit", "-q", "-m", f"burst {round_} {i}")
        if pid:
            newest[f"pipelines/{pid}"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    tb = time.time()
    git("push", "-q", "origin", "main")
    deadline = time.time() + 120
    while time.time() < deadline:
        got = {pl: c for pl, c, _ in starts(burst_store)}
        if all(got.get(pl) == c for pl, c in newest.items()):
            break
        time.sleep(0.1)
    burst_started = {pl: c for pl, c, _ in starts(burst_store) if c in newest.values()}
    ok_rounds.append(all(burst_started.get(pl) == c for pl, c in newest.items()))
    rss.append(rss_kib(d_burst.pid))
db = sqlite3.connect(os.path.join(burst_store, "index.db"))
queued = db.execute("SELECT count(*) FROM run_queue").fetchone()[0]
d_burst.terminate(); d_burst.wait()
d_fast.terminate(); d_fast.wait()

ok_burst = all(ok_rounds)
lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores; whole benchmark {time.time() - t_start:.0f} s.", "",
         f"{a.commits} commits spread over {a.window:.0f} s (random gaps), alternating between two pipelines; both daemons watched the same repository.", "",
         "| daemon | commits measured | runs started | p50 | p99 | max |", "|---|---:|---:|---:|---:|---:|",
         f"| `cairn watch` (inotify + 60 s reconcile) | {len(lat_fast)} | {runs_fast} | {1000 * pct(lat_fast, 50):.1f} ms | {1000 * pct(lat_fast, 99):.1f} ms | {1000 * max(lat_fast):.1f} ms |",
         f"| 60 s poller (`cairn watch --poll-only --interval 60`) | {len(lat_slow)} | {runs_slow} | {pct(lat_slow, 50):.1f} s | {pct(lat_slow, 99):.1f} s | {max(lat_slow):.1f} s |",
         "", f"Goal: p99 under 100 ms — {'met' if pct(lat_fast, 99) < 0.1 else 'NOT met'}.", "",
         f"Burst: {a.rounds} × {a.burst} commits (a third of them README-only) pushed at once to a bare repository: "
         f"{queued} queue entries in all (first sight + one per pipeline per burst), the newest affecting commit of each pipeline started (every burst): "
         f"{'yes' if ok_burst else 'NO'}; daemon RSS (MiB) before the first burst and after each: " + ", ".join(f"{r / 1024:.1f}" for r in rss) + "."]
report = "\n".join(lines) + "\n"
open(a.out, "w").write(report)
print(report)
shutil.rmtree(work, ignore_errors=True)
