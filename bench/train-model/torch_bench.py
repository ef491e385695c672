#!/usr/bin/env python3
"""PyTorch peer of bench-train-model: the same configs, batch, sequence and thread count, fp32 on
CPU, transformers' LlamaForCausalLM (its default attention, sdpa) and PEFT for LoRA. One forward
and backward per step, no optimizer, median of the timed steps. Prints one JSON line.
usage: torch_bench.py --size 10m|100m --mode full|lora [--batch B] [--seq T] [--steps N] [--threads 2]"""
import argparse, json, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--size", default="10m"); p.add_argument("--mode", default="full")
p.add_argument("--batch", type=int, default=4); p.add_argument("--seq", type=int, default=256)
p.add_argument("--steps", type=int, default=5); p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
sizes = {
    "10m": dict(vocab_size=8192, hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                num_key_value_heads=8, tie_word_embeddings=False),
    "100m": dict(vocab_size=16384, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=12, tie_word_embeddings=True),
}
cfg = LlamaConfig(**sizes[a.size], rms_norm_eps=1e-5, max_position_embeddings=1024)
model = LlamaForCausalLM(cfg).float()
if a.mode == "lora":
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
model.train()
ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq))

def step():
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    model.zero_grad(set_to_none=True)

step()
times = []
for _ in range(a.steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
tokens = a.batch * a.seq
print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "size": a.size, "mode": a.mode, "batch": a.batch, "seq": a.seq,
                  "steps": a.steps, "step_s": med, "tokens_per_s": tokens / med, "threads": torch.get_num_threads()}))
