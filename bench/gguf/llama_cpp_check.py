#!/usr/bin/env python3
"""Does llama.cpp run what `cairn model export` writes, and generate what Cairn generates?

SmolLM2-135M-Instruct (scripts/fetch-model.sh) is imported by Cairn, exported again as f32, f16 and
q8_0 GGUF, and each export is loaded by llama.cpp itself (llama-cpp-python). For each prompt both
tokenize it and continue it greedily for up to 48 tokens (stopping at EOS): Cairn from the model
imported back from that export, llama.cpp from the export. For f32 the ids must be identical; f16
and q8_0 compute in their own precision in llama.cpp (q8_0 also quantises activations), so the
report gives how many tokens agree before the first difference, and — with LLAMA_CPP_DIR naming
llama.cpp's source (its convert_hf_to_gguf.py, run by CONVERTER_PYTHON, a Python with torch and
transformers) — whether llama.cpp's own converter, given the same model directory, writes the same
tensor bytes and makes llama.cpp generate the same tokens.

Run from the repository root (needs a release build and llama-cpp-python; see the README):

    swift build -c release --product cairn
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" pip install llama-cpp-python
    LLAMA_CPP_DIR=.../vendor/llama.cpp CONVERTER_PYTHON=~/.cache/cairn-peers/venv/bin/python \
      python bench/gguf/llama_cpp_check.py      # writes bench/gguf/llama_cpp_check.json and .md

Exit status 1 when the f32 export's tokens differ from Cairn's.
"""
import json
import os
import subprocess
import sys
import tempfile

import gguf
import llama_cpp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAIRN = os.environ.get("CAIRN", os.path.join(ROOT, ".build/release/cairn"))
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
PROMPTS = [
    SYSTEM + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    SYSTEM + "<|im_start|>user\nCreate a task: buy milk tomorrow, high priority. Reply with JSON only.<|im_end|>\n<|im_start|>assistant\n",
    "The three primary colours are",
    "def fibonacci(n):\n",
]
MAX_TOKENS = 48


def cairn(*args):
    r = subprocess.run([CAIRN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"cairn {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def llama_greedy(llm, prompt):
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.reset()
    llm.eval(ids)
    out = []
    eos = llm.token_eos()
    while len(out) < MAX_TOKENS:
        logits = llm.scores[llm.n_tokens - 1]
        nxt = int(logits.argmax())
        out.append(nxt)
        if nxt == eos:
            break
        llm.eval([nxt])
    return ids, out


def converter_export(model_dir, qtype, out):
    """llama.cpp's own convert_hf_to_gguf.py on the same directory, or None without LLAMA_CPP_DIR."""
    src = os.environ.get("LLAMA_CPP_DIR")
    if not src:
        return None
    py = os.environ.get("CONVERTER_PYTHON", sys.executable)
    subprocess.run([py, os.path.join(src, "convert_hf_to_gguf.py"), model_dir, "--outtype", qtype, "--outfile", out],
                   check=True, capture_output=True)
    return out


def same_tensor_bytes(a, b):
    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
    tb = {t.name: t for t in rb.tensors}
    return [t.name for t in ra.tensors
            if t.name not in tb or t.tensor_type != tb[t.name].tensor_type or not np.array_equal(np.asarray(t.data), np.asarray(tb[t.name].data))]


def main():
    gguf = subprocess.run([os.path.join(ROOT, "scripts/fetch-model.sh"), "--no-store"], capture_output=True, text=True,
                          check=True).stdout.strip()
    results = {"model": os.path.basename(gguf), "max_tokens": MAX_TOKENS, "llama_cpp_python": llama_cpp.__version__, "exports": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "imported")
        cairn("model", "import", gguf, "--out", base)
        for qtype in ["f32", "f16", "q8_0"]:
            exported = os.path.join(tmp, f"smollm2-{qtype}.gguf")
            cairn("model", "export", base, "--format", "gguf", "--type", qtype, "--out", exported)
            back = os.path.join(tmp, f"back-{qtype}")
            cairn("model", "import", exported, "--out", back)
            llm = llama_cpp.Llama(model_path=exported, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
            conv = converter_export(base, qtype, os.path.join(tmp, f"converter-{qtype}.gguf"))
            conv_llm = llama_cpp.Llama(model_path=conv, n_ctx=512, n_threads=2, logits_all=True, verbose=False) if conv else None
            rows = []
            for prompt in PROMPTS:
                c = json.loads(cairn("model", "generate", back, "--prompt", prompt, "--max-tokens", str(MAX_TOKENS), "--json"))
                lp_ids, l_out = llama_greedy(llm, prompt)
                agree = next((i for i, (a, b) in enumerate(zip(c["ids"], l_out)) if a != b), min(len(c["ids"]), len(l_out)))
                conv_same = llama_greedy(conv_llm, prompt)[1] == l_out if conv_llm else None
                rows.append({"prompt": prompt[-60:], "same_prompt_ids": c["prompt_ids"] == lp_ids, "converter_file_same_tokens": conv_same,
                             "cairn_ids": c["ids"], "llama_cpp_ids": l_out, "identical": c["ids"] == l_out,
                             "agreeing_prefix": agree, "cairn_text": c["text"],
                             "llama_cpp_text": llm.detokenize([t for t in l_out if t != llm.token_eos()]).decode(errors="replace")})
            results["exports"][qtype] = {"size_bytes": os.path.getsize(exported), "prompts": rows,
                                         "tensors_differing_from_converter": same_tensor_bytes(exported, conv) if conv else None}
            del llm, conv_llm
    with open(os.path.join(ROOT, "bench/gguf/llama_cpp_check.json"), "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    lines = ["# llama.cpp runs Cairn's GGUF exports", "",
             f"`python bench/gguf/llama_cpp_check.py` (llama-cpp-python {llama_cpp.__version__}, {results['model']} imported "
             f"and re-exported by Cairn, greedy, up to {MAX_TOKENS} new tokens).", "",
             "Cairn: greedy tokens of Cairn on the model imported back from the export. llama.cpp: greedy tokens of llama.cpp "
             "on the export. Converter: llama.cpp's convert_hf_to_gguf.py on the same model directory (tensor bytes compared; "
             "llama.cpp's tokens on its file compared with llama.cpp's tokens on Cairn's).", "",
             "| export | size | tensors differing from the converter's | prompt | same prompt ids | Cairn = llama.cpp | agreeing prefix | converter's file, same llama.cpp tokens | llama.cpp's reply |",
             "|---|---|---|---|---|---|---|---|---|"]
    for qtype, e in results["exports"].items():
        differing = e["tensors_differing_from_converter"]
        for r in e["prompts"]:
            reply = r["llama_cpp_text"].replace("\n", "\\n").replace("|", "\\|")[:60]
            lines.append(f"| {qtype} | {e['size_bytes'] / 2**20:.1f} MiB | {'-' if differing is None else len(differing)} | "
                         f"`{r['prompt'][-30:].encode('unicode_escape').decode()}` | "
                         f"{r['same_prompt_ids']} | {r['identical']} | {r['agreeing_prefix']}/{len(r['cairn_ids'])} | "
                         f"{'-' if r['converter_file_same_tokens'] is None else r['converter_file_same_tokens']} | {reply} |")
    with open(os.path.join(ROOT, "bench/gguf/llama_cpp_check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    f32_ok = all(r["identical"] and r["same_prompt_ids"] for r in results["exports"]["f32"]["prompts"])
    sys.exit(0 if f32_ok else 1)


if __name__ == "__main__":
    main()
