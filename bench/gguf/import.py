#!/usr/bin/env python3
"""GGUF import: `cairn model import` against transformers' GGUF loading, same file, same run.

Each repetition imports SmolLM2-135M-Instruct (Q4_1/Q8_0/F32, 98 MB; scripts/fetch-model.sh) into
a fresh Hugging Face directory, in a fresh process, alternating the two sides:
  cairn        `cairn model import FILE --out DIR` (release build): dequantise, write config.json,
               model.safetensors (f32), tokenizer files, generation_config.json
  transformers AutoTokenizer + AutoModelForCausalLM.from_pretrained(dir, gguf_file=...) (fp32), then
               config, weights (safetensors' save_model: transformers refuses save_pretrained
               of a model it loaded from GGUF) and tokenizer into DIR: the same files
Wall time of the whole process (its start-up included) and its peak RSS (wait4), medians.

Run from the repository root (needs the release build and a venv with torch transformers gguf):

    swift build -c release --product cairn
    ~/.cache/cairn-peers/venv/bin/python bench/gguf/import.py [--reps 5]

Writes bench/gguf/import.md.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAIRN = os.environ.get("CAIRN", os.path.join(ROOT, ".build/release/cairn"))
TRANSFORMERS = r"""
import os, sys, torch
torch.set_num_threads(2)
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer
d, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
os.makedirs(out, exist_ok=True)
model.config.save_pretrained(out)
model.generation_config.save_pretrained(out)
save_model(model, os.path.join(out, "model.safetensors"))
tok.save_pretrained(out)
"""


def measure(cmd):
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return seconds, ru.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    gguf = subprocess.run([os.path.join(ROOT, "scripts/fetch-model.sh"), "--no-store"], capture_output=True, text=True,
                          check=True).stdout.strip()
    d, name = os.path.dirname(gguf), os.path.basename(gguf)
    runs = {"cairn": [], "transformers": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.reps):
            for side in ["cairn", "transformers"] if i % 2 == 0 else ["transformers", "cairn"]:
                out = os.path.join(tmp, f"{side}-{i}")
                if side == "cairn":
                    cmd = [CAIRN, "model", "import", gguf, "--out", out]
                else:
                    cmd = [sys.executable, "-c", TRANSFORMERS, d, name, out]
                runs[side].append(measure(cmd))
                shutil.rmtree(out, ignore_errors=True)
                print(side, f"{runs[side][-1][0]:.2f} s, {runs[side][-1][1]:.0f} MiB", flush=True)
    med = {k: (statistics.median(s for s, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()}
    ratio_t = med["transformers"][0] / med["cairn"][0]
    ratio_m = med["transformers"][1] / med["cairn"][1]
    import transformers, torch
    lines = [
        "# GGUF import: SmolLM2-135M-Instruct (Q4_1, 98 MB) to a Hugging Face directory (f32)", "",
        f"`python bench/gguf/import.py --reps {args.reps}`; "
        f"transformers {transformers.__version__}, torch {torch.__version__}; {os.cpu_count()} CPUs. Medians of {args.reps} fresh processes, "
        "sides alternating; wall time includes start-up.", "",
        "| | wall time (s) | peak RSS (MiB) | every run (s / MiB) |", "|---|---|---|---|",
    ]
    for k, v in runs.items():
        lines.append(f"| {k} | {med[k][0]:.2f} | {med[k][1]:.0f} | " + ", ".join(f"{s:.2f}/{r:.0f}" for s, r in v) + " |")
    lines += ["", f"Cairn is {ratio_t:.1f}× faster and uses {ratio_m:.1f}× less memory."]
    with open(os.path.join(ROOT, "bench/gguf/import.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
