#!/usr/bin/env python3
"""Cairn against PyTorch on SmolLM2-135M-Instruct's shape with the task-api data, interleaved in
one run: a LoRA SFT step (batch 8, r16 on q,k,v,o; padded and padding-free), a DPO step (batch 8
pairs, LoRA r8 on q,v) against TRL's DPOTrainer, greedy generation of one prompt against
transformers' generate, and the gates' 24 prompts generated one at a time and as one batch.
Peak RSS of each process; Cairn's GFLOP/s against the sgemm peak measured in the same process.

usage: bench/smollm2/run.py [--reps 2] [--python ~/.cache/cairn-peers/venv/bin/python]
(build first: swift build -c release --product bench-smollm2 --product cairn; the model comes
from scripts/fetch-model.sh; the peers need torch, transformers, peft, trl and datasets)

Cairn runs with OPENBLAS_CORETYPE unset, i.e. with the kernel Cairn itself picks for this CPU
(it re-executes with an AVX-512 kernel where OpenBLAS 0.3.21 does not know the CPU); one more
SFT row runs with OPENBLAS_CORETYPE=Haswell, as this project's development machines export it."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from measure import run_json  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=2)
p.add_argument("--python", default=os.path.expanduser("~/.cache/cairn-peers/venv/bin/python"))
p.add_argument("--out", default=os.path.join(ROOT, "bench/smollm2/report.md"))
p.add_argument("--from-json", help="write the report from a saved report.json instead of measuring")
a = p.parse_args()
BIN, CAIRN = os.path.join(ROOT, ".build/release/bench-smollm2"), os.path.join(ROOT, ".build/release/cairn")
DATA = os.path.join(ROOT, "pipelines/task-api/data")


def prepare(tmp):
    gguf = subprocess.run([os.path.join(ROOT, "scripts/fetch-model.sh"), "--no-store"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([CAIRN, "model", "import", gguf, "--out", os.path.join(tmp, "base")], check=True, capture_output=True)
    rows = lambda n: [json.loads(l) for l in open(os.path.join(DATA, n))]
    user = lambda r: {"role": "user", "content": r["prompt"].strip()}
    def write(name, objs):
        with open(os.path.join(tmp, name), "w") as f:
            f.write("".join(json.dumps(o) + "\n" for o in objs))
    write("sft.jsonl", [{"messages": [user(r), {"role": "assistant", "content": r["completion"]}]} for r in rows("sft.jsonl")])
    write("prompts.jsonl", [{"messages": [user(r)]} for r in rows("eval_prompts.jsonl")])
    write("prefs.jsonl", [{"prompt": [user(r)], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                           "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows("preferences.jsonl")])
    return os.path.join(tmp, "base")


env_unset = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}


def cairn(*args, env=None):
    return run_json([BIN, *args], env=env or env_unset)


def peer(*args):
    return run_json([a.python, os.path.join(ROOT, "bench/smollm2/torch_peer.py"), *args])


def measure():
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = prepare(tmp)
        f = lambda n: os.path.join(tmp, n)
        cases = {
            "cairn sft": lambda: cairn("--model", model, "--what", "sft", "--data", f("sft.jsonl"), "--steps", "4"),
            "cairn sft padding-free": lambda: cairn("--model", model, "--what", "sft", "--pack", "--data", f("sft.jsonl"), "--steps", "4"),
            "cairn sft haswell": lambda: cairn("--model", model, "--what", "sft", "--data", f("sft.jsonl"), "--steps", "4",
                                               env={**env_unset, "OPENBLAS_CORETYPE": "Haswell"}),
            "pytorch sft": lambda: peer("--model", model, "--what", "sft", "--data", f("sft.jsonl"), "--steps", "4"),
            "cairn dpo": lambda: cairn("--model", model, "--what", "dpo", "--data", f("prefs.jsonl"), "--steps", "3"),
            "trl dpo": lambda: peer("--model", model, "--what", "dpo", "--data", f("prefs.jsonl"), "--steps", "3"),
            "cairn generate": lambda: cairn("--model", model, "--what", "generate", "--prompts", f("prompts.jsonl"), "--steps", "3", "--tokens", "40"),
            "transformers generate": lambda: peer("--model", model, "--what", "generate", "--data", f("prompts.jsonl"), "--steps", "3", "--tokens", "40"),
            "cairn gates": lambda: cairn("--model", model, "--what", "generate-batch", "--prompts", f("prompts.jsonl"), "--tokens", "64"),
        }
        for rep in range(a.reps):
            for name, run in cases.items():
                r = run()
                results.setdefault(name, []).append(r)
                print(f"rep {rep + 1} {name}: {json.dumps(r)}", flush=True)
    return results


results = json.load(open(a.from_json)) if a.from_json else measure()
reps = len(results["cairn sft"])

med = lambda name, k: statistics.median(r[k] for r in results[name])
weights_mib = 134515008 * 4 / 2**20
sft, pack, hsw, torch_sft = (med(n, "step_s") for n in ("cairn sft", "cairn sft padding-free", "cairn sft haswell", "pytorch sft"))
dpo, trl = med("cairn dpo", "step_s"), med("trl dpo", "step_s")
ref_per_step = med("cairn dpo", "reference_s") / 4  # the reference pass over the 4 steps' pairs
gen, tgen = med("cairn generate", "tokens_per_s"), med("transformers generate", "tokens_per_s")
one, batched = med("cairn gates", "one_at_a_time_s"), med("cairn gates", "batched_s")
c0 = results["cairn sft"][0]
lines = [
    f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `python3 bench/smollm2/run.py --reps {reps}`, {os.cpu_count()} cores, "
    f"SmolLM2-135M-Instruct (imported from its GGUF, fp32), the task-api data through the model's chat template; medians of {reps} "
    f"interleaved runs, each the median of its timed steps after one warm-up. Cairn: OpenBLAS kernel {c0['openblas_core']}, "
    f"{c0['threads']} threads; PyTorch {results['pytorch sft'][0]['torch']}, {results['pytorch sft'][0]['threads']} threads, fp32.", "",
    "| measurement | Cairn | peer | Cairn / peer | Cairn peak RSS MiB¹ | peer peak RSS MiB |", "|---|---:|---:|---:|---:|---:|",
    f"| LoRA SFT step, batch 8 ({c0['tokens']} tokens, padded to {c0['positions']}) | {sft:.3f} s | {torch_sft:.3f} s (PyTorch+PEFT) | "
    f"{torch_sft / sft:.2f}× | {med('cairn sft', 'work_peak_rss_mib'):.0f} | {med('pytorch sft', 'rss_mib'):.0f} |",
    f"| the same, padding-free | {pack:.3f} s | {torch_sft:.3f} s | {torch_sft / pack:.2f}× | {med('cairn sft padding-free', 'work_peak_rss_mib'):.0f} | |",
    f"| the same, OPENBLAS_CORETYPE=Haswell | {hsw:.3f} s | {torch_sft:.3f} s | {torch_sft / hsw:.2f}× | {med('cairn sft haswell', 'work_peak_rss_mib'):.0f} | |",
    f"| DPO step, batch 8 pairs (TRL: reference pass in the step) | {dpo:.3f} s (+{ref_per_step:.3f} s reference, computed once per pair) | "
    f"{trl:.3f} s (TRL DPOTrainer) | {trl / (dpo + ref_per_step):.2f}× with the reference, {trl / dpo:.2f}× without | "
    f"{med('cairn dpo', 'work_peak_rss_mib'):.0f} | {med('trl dpo', 'rss_mib'):.0f} |",
    f"| greedy generation, one prompt, 40 tokens | {gen:.1f} tokens/s | {tgen:.1f} tokens/s (transformers generate) | {gen / tgen:.2f}× | "
    f"{med('cairn generate', 'work_peak_rss_mib'):.0f} | {med('transformers generate', 'rss_mib'):.0f} |",
    f"| the gates' 24 prompts, up to 64 tokens ({results['cairn gates'][0]['new_tokens']} tokens) | {batched:.2f} s as one batch | "
    f"{one:.2f} s one at a time (Cairn) | {one / batched:.2f}× | {med('cairn gates', 'work_peak_rss_mib'):.0f} | |", "",
    f"SFT step: {med('cairn sft', 'gflops'):.0f} GFLOP/s (padding-free {med('cairn sft padding-free', 'gflops'):.0f}) against an sgemm peak "
    f"of {med('cairn sft', 'sgemm_peak_gflops'):.0f} measured in the same process ({100 * med('cairn sft', 'gflops') / med('cairn sft', 'sgemm_peak_gflops'):.0f}%; "
    f"Haswell kernel: {med('cairn sft haswell', 'gflops'):.0f} of {med('cairn sft haswell', 'sgemm_peak_gflops'):.0f}, "
    f"{100 * med('cairn sft haswell', 'gflops') / med('cairn sft haswell', 'sgemm_peak_gflops'):.0f}%). "
    f"Peak RSS against the fp32 weights ({weights_mib:.0f} MiB): SFT {med('cairn sft', 'work_peak_rss_mib') / weights_mib:.2f}×, "
    f"DPO {med('cairn dpo', 'work_peak_rss_mib') / weights_mib:.2f}×. Batched generation gave the same tokens as one prompt at a time: "
    f"{all(r['identical'] for r in results['cairn gates'])}.", "",
    "¹ Cairn's peak RSS is measured in its process before it times the 2048³ sgemm peak (whose three matrices add 48 MiB); "
    "the peers' is the whole process's (wait4).",
]
report = "\n".join(lines) + "\n"
open(a.out, "w").write(report)
if not a.from_json:
    json.dump(results, open(a.out.replace(".md", ".json"), "w"), indent=1)
print(report)
