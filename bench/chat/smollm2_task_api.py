#!/usr/bin/env python3
"""SmolLM2-135M-Instruct fine-tuned to the task API through its own chat template: the full run.

The task-api examples (pipelines/task-api/data) written as conversations — 160 SFT conversations,
32 held out, 24 held-out prompts, 128 preference pairs and 32 held out — rendered by SmolLM2's own
template (its default system prompt included). Everything runs through the release `cairn`:
  base      held-out loss (one SFT step at learning rate 1e-12 from LoRA B = 0: the base model, measured by the same code path) and
            valid-JSON replies to the held-out prompts (`cairn check output_format_valid`, 64 tokens)
  sft       LoRA r16 on q,k,v,o, 2 epochs of batch 8 (40 steps), lr 1e-3: held-out loss, valid JSON
  dpo       on the merged SFT model, LoRA r8 on q,v, 1 epoch of batch 8 (16 steps), beta 0.1:
            held-out preference accuracy and margin, then valid JSON of the aligned model

Run from the repository root (release build; scripts/fetch-model.sh fetches the model):

    swift build -c release --product cairn
    python3 bench/chat/smollm2_task_api.py        # writes bench/chat/smollm2_task_api.md
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAIRN = os.environ.get("CAIRN", os.path.join(ROOT, ".build/release/cairn"))
DATA = os.path.join(ROOT, "pipelines/task-api/data")
SCHEMA = os.path.join(ROOT, "pipelines/task-api/schema.json")


def cairn(*args):
    t = time.perf_counter()
    r = subprocess.run([CAIRN, *args], capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"cairn {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r, time.perf_counter() - t


def rows(name):
    return [json.loads(l) for l in open(os.path.join(DATA, name))]


def write(path, objs):
    with open(path, "w") as f:
        f.write("".join(json.dumps(o) + "\n" for o in objs))


def config(path, **keys):
    with open(path, "w") as f:
        f.write("".join(f"{k}: {json.dumps(v) if isinstance(v, list) else v}\n" for k, v in keys.items()))


def format_rate(tmp, model, adapter=None):
    args = ["check", "output_format_valid", "--model", model, "--data", os.path.join(tmp, "eval_prompts.jsonl"),
            "--schema", SCHEMA, "--max-new-tokens", "64", "--threshold", "0.9", "--result", os.path.join(tmp, "check.json")]
    if adapter:
        args += ["--adapter", adapter]
    _, seconds = cairn(*args)
    return json.load(open(os.path.join(tmp, "check.json")))[0]["value"], seconds


def main():
    gguf = subprocess.run([os.path.join(ROOT, "scripts/fetch-model.sh"), "--no-store"], capture_output=True, text=True,
                          check=True).stdout.strip()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base")
        cairn("model", "import", gguf, "--out", base)
        user = lambda r: {"role": "user", "content": r["prompt"].strip()}
        sft = lambda r: {"messages": [user(r), {"role": "assistant", "content": r["completion"]}]}
        pref = lambda r: {"prompt": [user(r)], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                          "rejected": [{"role": "assistant", "content": r["rejected"]}]}
        write(os.path.join(tmp, "sft.jsonl"), [sft(r) for r in rows("sft.jsonl")])
        write(os.path.join(tmp, "sft_eval.jsonl"), [sft(r) for r in rows("sft_eval.jsonl")])
        write(os.path.join(tmp, "eval_prompts.jsonl"), [{"messages": [user(r)]} for r in rows("eval_prompts.jsonl")])
        write(os.path.join(tmp, "prefs.jsonl"), [pref(r) for r in rows("preferences.jsonl")])
        write(os.path.join(tmp, "prefs_eval.jsonl"), [pref(r) for r in rows("preferences_eval.jsonl")])
        common = dict(max_seq_length=160, lora_dropout=0.0, batch_size=8, gradient_accumulation=1, save_steps=1000, seed=7, logging_steps=4)
        sft_keys = dict(lora_r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], warmup_ratio=0.1, **common)

        config(os.path.join(tmp, "zero.yaml"), max_steps=1, learning_rate=1e-12, **sft_keys)
        cairn("train", "sft", "--model", base, "--data", os.path.join(tmp, "sft.jsonl"), "--eval", os.path.join(tmp, "sft_eval.jsonl"),
              "--config", os.path.join(tmp, "zero.yaml"), "--out", os.path.join(tmp, "zero"))
        out["base_heldout_loss"] = json.load(open(os.path.join(tmp, "zero/metrics.json")))["eval_loss"]
        out["base_valid_json"], _ = format_rate(tmp, base)

        config(os.path.join(tmp, "sft.yaml"), epochs=2, learning_rate=1.0e-3, **sft_keys)
        _, out["sft_seconds"] = cairn("train", "sft", "--model", base, "--data", os.path.join(tmp, "sft.jsonl"), "--eval",
                                      os.path.join(tmp, "sft_eval.jsonl"), "--config", os.path.join(tmp, "sft.yaml"), "--out", os.path.join(tmp, "sft"))
        m = json.load(open(os.path.join(tmp, "sft/metrics.json")))
        out["sft_steps"], out["sft_heldout_loss"], out["sft_final_loss"] = m["total_steps"], m["eval_loss"], m["final_loss"]
        out["sft_valid_json"], out["generate_seconds"] = format_rate(tmp, base, os.path.join(tmp, "sft"))

        merged = os.path.join(tmp, "merged")
        cairn("merge", "--model", base, "--adapter", os.path.join(tmp, "sft"), "--out", merged)
        config(os.path.join(tmp, "dpo.yaml"), epochs=1, learning_rate=5.0e-4, beta=0.1, lora_r=8, lora_alpha=16,
               target_modules=["q_proj", "v_proj"], **common)
        _, out["dpo_seconds"] = cairn("train", "dpo", "--model", merged, "--data", os.path.join(tmp, "prefs.jsonl"), "--eval",
                                      os.path.join(tmp, "prefs_eval.jsonl"), "--config", os.path.join(tmp, "dpo.yaml"), "--out", os.path.join(tmp, "dpo"))
        d = json.load(open(os.path.join(tmp, "dpo/metrics.json")))
        out["dpo_steps"], out["dpo_heldout_accuracy"], out["dpo_heldout_margin"] = d["total_steps"], d["eval_accuracy"], d["eval_margin"]
        out["dpo_valid_json"], _ = format_rate(tmp, merged, os.path.join(tmp, "dpo"))
    lines = ["# SmolLM2-135M-Instruct fine-tuned to the task API through its own chat template", "",
             "`python3 bench/chat/smollm2_task_api.py` (release build, 2 cores).", "",
             "| | held-out loss | valid JSON (24 held-out prompts) | held-out preference accuracy (32 pairs) | time |",
             "|---|---|---|---|---|",
             f"| base | {out['base_heldout_loss']:.4f} | {out['base_valid_json']:.0%} | | |",
             f"| after SFT ({out['sft_steps']} steps) | {out['sft_heldout_loss']:.4f} | {out['sft_valid_json']:.0%} | | {out['sft_seconds']:.0f} s |",
             f"| after DPO ({out['dpo_steps']} steps) | | {out['dpo_valid_json']:.0%} | {out['dpo_heldout_accuracy']:.3f} (margin {out['dpo_heldout_margin']:.2f}) | {out['dpo_seconds']:.0f} s |",
             "", f"Generating the 24 replies (up to 64 tokens each, one prompt at a time) took {out['generate_seconds']:.0f} s."]
    with open(os.path.join(ROOT, "bench/chat/smollm2_task_api.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(ROOT, "bench/chat/smollm2_task_api.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
