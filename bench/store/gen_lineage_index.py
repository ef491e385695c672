#!/usr/bin/env python3
"""Fill a freshly initialised Cairn store's index.db with a synthetic lineage graph.

    gen_lineage_index.py --store DIR [--artifacts 1000000] [--depth 50] [--datasets 400] [--sample 400]

Layout (deterministic; ids are sha256("cairn-bench-artifact:<seq>")):
  * `datasets` shared dataset artifacts, added by hand (pinned, no producer);
  * chains of depth+1 artifacts: a base model added by hand, then `depth` levels, each made by one
    stage execution (sft -> merge -> dpo, repeating) that used the previous level (role
    "base_model") and the chain's shared dataset (role "data"), and generated the next level;
  * one run (pipeline task-api, a fake commit) per 10 levels of a chain;
  * 1,000 aliases with 3 history moves each, and one alias, busy@production, with --busy-history
    moves (a production alias promoted on every commit for years).
Chain count = (artifacts - datasets) // (depth + 1); the remainder becomes extra datasets, so the
index holds exactly `artifacts` artifact rows. No blobs are written: lineage reads only the index.
Writes DIR/bench-nodes.tsv (sampled chain roots and deep nodes, some datasets) for the timer.
Rows go in with Python's sqlite3 in one transaction into the schema `cairn init` created.
"""
import argparse, hashlib, os, random, sqlite3, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--store", required=True)
ap.add_argument("--artifacts", type=int, default=1_000_000)
ap.add_argument("--depth", type=int, default=50)
ap.add_argument("--datasets", type=int, default=400)
ap.add_argument("--sample", type=int, default=400, help="chains listed in bench-nodes.tsv")
ap.add_argument("--aliases", type=int, default=1000)
ap.add_argument("--busy-history", type=int, default=10_000)
args = ap.parse_args()

depth, n = args.depth, args.artifacts
chains = (n - args.datasets) // (depth + 1)
datasets = n - chains * (depth + 1)
if chains < 2:
    sys.exit("too few artifacts for one chain")
db_path = os.path.join(args.store, "index.db")
if not os.path.exists(db_path):
    sys.exit(f"{db_path} missing: run `cairn init --store {args.store}` first")

t0 = time.time()
db = sqlite3.connect(db_path, isolation_level=None)
if db.execute("SELECT count(*) FROM artifacts").fetchone()[0]:
    sys.exit(f"{db_path} is not empty; generate into a fresh store")
db.execute("PRAGMA journal_mode=MEMORY")  # bulk load; set back to WAL below
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-1048576")  # 1 GiB page cache for index building

def aid(seq):
    return "sha256:" + hashlib.sha256(b"cairn-bench-artifact:%d" % seq).hexdigest()

def chain_seq(c, level):  # artifact seq of level `level` (0 = base model) of chain c
    return datasets + c * (depth + 1) + level + 1

stages = [("sft", "adapter"), ("merge", "merged-model"), ("dpo", "aligned-model")]
T = 1.7e9  # created_at base (2023-11)
runs_per_chain = (depth + 9) // 10

def artifact_rows():
    for s in range(1, datasets + 1):
        yield (s, aid(s), "dataset", f"dataset-{s}", 10_000_000 + s, 1, T + s, "bench", "{}", 1)
    for c in range(chains):
        for level in range(depth + 1):
            s = chain_seq(c, level)
            kind = "base-model" if level == 0 else stages[(level - 1) % 3][1]
            yield (s, aid(s), kind, f"chain{c}-L{level}", 50_000_000 + level, 3 if level else 5,
                   T + s, "bench", "{}", 1 if level == 0 else 0)

def run_rows():
    for c in range(chains):
        for r in range(runs_per_chain):
            rid = c * runs_per_chain + r + 1
            sha = hashlib.sha1(b"commit:%d" % rid).hexdigest()
            yield (rid, "task-api", "/srv/train-repo", "main", sha, "bench", f"train chain {c} part {r}",
                   "succeeded", T + rid, T + rid + 60)

def exec_id(c, level):  # the execution that generated level `level` >= 1 of chain c
    return c * depth + level

def execution_rows():
    for c in range(chains):
        for level in range(1, depth + 1):
            run = c * runs_per_chain + (level - 1) // 10 + 1
            yield (exec_id(c, level), run, stages[(level - 1) % 3][0], 1, "succeeded", T + level, T + level + 30)

def lineage_rows():
    # In primary-key order (execution, relation, artifact, role).
    for c in range(chains):
        ds = c % datasets + 1
        for level in range(1, depth + 1):
            e = exec_id(c, level)
            yield (e, "generated", chain_seq(c, level), "")
            for seq, role in sorted([(chain_seq(c, level - 1), "base_model"), (ds, "data")]):
                yield (e, "used", seq, role)

db.execute("BEGIN")
db.executemany("INSERT INTO artifacts(seq, id, kind, name, size, file_count, created_at, created_by, metadata, pinned) "
               "VALUES(?,?,?,?,?,?,?,?,?,?)", artifact_rows())
db.executemany("INSERT INTO runs(id, pipeline, repo, branch, commit_sha, author, message, status, started_at, finished_at) "
               "VALUES(?,?,?,?,?,?,?,?,?,?)", run_rows())
db.executemany("INSERT INTO stage_executions(id, run, stage, attempt, status, started_at, finished_at) "
               "VALUES(?,?,?,?,?,?,?)", execution_rows())
db.executemany("INSERT INTO lineage(execution, relation, artifact, role) VALUES(?,?,?,?)", lineage_rows())
rng = random.Random(42)
hist = []
alias_rows = []
for i in range(args.aliases):
    name = f"model-{i}@production"
    targets = [chain_seq(rng.randrange(chains), depth) for _ in range(3)]
    prev = None
    for v, t in enumerate(targets, 1):
        hist.append((name, v, "set", prev, t, "bench", T + i + v, "synthetic", None))
        prev = t
    alias_rows.append((name, prev, 3, T + i + 3))
if args.busy_history > 0:
    prev = None
    for v in range(1, args.busy_history + 1):
        t = chain_seq(rng.randrange(chains), depth)
        hist.append(("busy@production", v, "set", prev, t, "bench", T + v, "synthetic", None))
        prev = t
    alias_rows.append(("busy@production", prev, args.busy_history, T + args.busy_history))
db.executemany("INSERT INTO alias_history(alias, version, action, from_artifact, to_artifact, actor, at, reason, run) "
               "VALUES(?,?,?,?,?,?,?,?,?)", hist)
db.executemany("INSERT INTO aliases(name, artifact, version, updated_at) VALUES(?,?,?,?)", alias_rows)
db.execute("COMMIT")
db.execute("PRAGMA journal_mode=WAL")
counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
          for t in ("artifacts", "runs", "stage_executions", "lineage", "aliases", "alias_history")}
db.close()

sample = rng.sample(range(chains), min(args.sample, chains))
with open(os.path.join(args.store, "bench-nodes.tsv"), "w") as f:
    for c in sample:
        f.write(f"{aid(chain_seq(c, 0))}\t{aid(chain_seq(c, depth))}\t{depth}\n")
    for s in rng.sample(range(1, datasets + 1), min(50, datasets)):
        f.write(f"#dataset\t{aid(s)}\n")
    if args.busy_history > 0:
        f.write(f"#busy-alias\tbusy@production\t{args.busy_history}\n")

size = os.path.getsize(db_path)
print(f"generated in {time.time() - t0:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
      + f"; {chains:,} chains of {depth + 1} artifacts ({depth} levels) + {datasets} shared datasets; index.db {size / 2**20:.0f} MiB")
