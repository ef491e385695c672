#!/usr/bin/env python3
"""Does llama.cpp run what `cairn model export` writes, and generate what Cairn generates?

SmolLM2-135M-Instruct (scripts/fetch-model.sh) is imported by Cairn, exported again as f32, f16 and
q8_0 GGUF, and each export is loaded by llama.cpp itself (llama-cpp-python). For each prompt both
tokenize it and continue it greedily for up to 48 tokens (stopping at EOS): Cairn from the model
imported back from that export, llama.cpp from the export. For f32 the ids must be identical; f16
and q8_0 compute in their own precision in llama.cpp (q8_0 also quantises activations), so the
report gives how many tokens agree before the first difference.

Run from the repository root (needs a release build and llama-cpp-python; see the README):

    swift build -c release --product cairn
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" pip install llama-cpp-python
    python bench/gguf/llama_cpp_check.py        # writes bench/gguf/llama_cpp_check.json and .md

Exit status 1 when the f32 export's tokens differ from Cairn's.
"""
import json
import os
import subprocess
import sys
import tempfile

import llama_cpp

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
            rows = []
            for prompt in PROMPTS:
                c = json.loads(cairn("model", "generate", back, "--prompt", prompt, "--max-tokens", str(MAX_TOKENS), "--json"))
                lp_ids, l_out = llama_greedy(llm, prompt)
                agree = next((i for i, (a, b) in enumerate(zip(c["ids"], l_out)) if a != b), min(len(c["ids"]), len(l_out)))
                rows.append({"prompt": prompt[-60:], "same_prompt_ids": c["prompt_ids"] == lp_ids,
                             "cairn_ids": c["ids"], "llama_cpp_ids": l_out, "identical": c["ids"] == l_out,
                             "agreeing_prefix": agree, "cairn_text": c["text"],
                             "llama_cpp_text": llm.detokenize([t for t in l_out if t != llm.token_eos()]).decode(errors="replace")})
            results["exports"][qtype] = {"size_bytes": os.path.getsize(exported), "prompts": rows}
            del llm
    with open(os.path.join(ROOT, "bench/gguf/llama_cpp_check.json"), "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    lines = ["# llama.cpp runs Cairn's GGUF exports", "",
             f"`python bench/gguf/llama_cpp_check.py` (llama-cpp-python {llama_cpp.__version__}, {results['model']} imported "
             f"and re-exported by Cairn, greedy, up to {MAX_TOKENS} new tokens).", "",
             "| export | size | prompt | same prompt ids | identical tokens | agreeing prefix | llama.cpp's reply |", "|---|---|---|---|---|---|---|"]
    for qtype, e in results["exports"].items():
        for r in e["prompts"]:
            reply = r["llama_cpp_text"].replace("\n", "\\n").replace("|", "\\|")[:60]
            lines.append(f"| {qtype} | {e['size_bytes'] / 2**20:.1f} MiB | `{r['prompt'][-30:].encode('unicode_escape').decode()}` | "
                         f"{r['same_prompt_ids']} | {r['identical']} | {r['agreeing_prefix']}/{len(r['cairn_ids'])} | {reply} |")
    with open(os.path.join(ROOT, "bench/gguf/llama_cpp_check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    f32_ok = all(r["identical"] and r["same_prompt_ids"] for r in results["exports"]["f32"]["prompts"])
    sys.exit(0 if f32_ok else 1)


if __name__ == "__main__":
    main()
