#!/usr/bin/env python3
"""Token ids of the Qwen2.5 and Llama 3.1 chat renderings in models.json, with each model family's
own vocabulary, as transformers tokenizes them (`apply_chat_template(..., tokenize=True)` tokenizes
the rendered text without adding special tokens).

The vocabularies are llama.cpp's vocab-only GGUFs (its tokenizer test files), shipped in
llama-cpp-python 0.3.36's source distribution from PyPI: vendor/llama.cpp/models/
ggml-vocab-qwen2.gguf (Qwen2/2.5) and ggml-vocab-llama-bpe.gguf (Llama 3/3.1). Mistral's
vocabulary is SentencePiece, which Cairn does not read, so it has no ids here.

Regenerate (scripts/fetch-vocab.sh puts the two files in ~/.cache/cairn/vocab):

    scripts/fetch-vocab.sh
    ~/.cache/cairn-peers/venv/bin/python Tests/CairnTrainTests/Fixtures/chat_templates/make_ids.py

Writes ids.json next to this script.
"""
import hashlib
import json
import os

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.expanduser("~/.cache/cairn/vocab")
FILES = {"qwen2_5": "ggml-vocab-qwen2.gguf", "llama3_1": "ggml-vocab-llama-bpe.gguf"}


def main():
    cases = json.load(open(os.path.join(HERE, "models.json")))["cases"]
    out = {"vocabularies": {}, "cases": []}
    for model, name in FILES.items():
        path = os.path.join(VOCAB, name)
        out["vocabularies"][model] = {"file": name, "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}
        tok = AutoTokenizer.from_pretrained(VOCAB, gguf_file=name)
        for c in cases:
            if c["model"] == model and isinstance(c.get("expected"), str):
                out["cases"].append({"model": model, "conversation": c["conversation"], "add_generation_prompt": c["add_generation_prompt"],
                                     "ids": tok(c["expected"], add_special_tokens=False)["input_ids"]})
    with open(os.path.join(HERE, "ids.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(len(out["cases"]), "cases")


if __name__ == "__main__":
    main()
