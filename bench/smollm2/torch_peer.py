#!/usr/bin/env python3
"""The peer of bench-smollm2: the same measurement with PyTorch fp32 (PEFT, TRL, transformers'
generate) on the same model directory, data and threads. One JSON line out.

usage: torch_peer.py --model DIR --what sft|dpo|generate --data FILE [--batch 8] [--steps 4] [--tokens 40]
                     [--threads 2]"""
import argparse, json, statistics, time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--what", required=True)
p.add_argument("--data", required=True)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=4)
p.add_argument("--tokens", type=int, default=40)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
rows = [json.loads(l) for l in open(a.data)]
out = {"impl": "pytorch", "what": a.what, "torch": torch.__version__, "threads": torch.get_num_threads()}


def timed(step, n):
    step()  # warm-up
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        step(i)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


if a.what == "sft":
    # PEFT LoRA r16 on q,k,v,o, no dropout; loss on the assistant turn as Cairn (TRL's assistant_only_loss).
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    examples = []
    for r in rows:
        ids = tok.apply_chat_template(r["messages"], tokenize=True, return_dict=False)
        prompt = tok.apply_chat_template(r["messages"][:-1], tokenize=True, add_generation_prompt=True, return_dict=False)
        examples.append((ids, len(prompt)))
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def batch(i):
        ex = examples[(i * a.batch) % len(examples):][:a.batch]
        T = max(len(e) for e, _ in ex)
        ids = torch.tensor([e + [pad] * (T - len(e)) for e, _ in ex])
        mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e, _ in ex])
        labels = torch.tensor([[-100] * n + e[n:] + [-100] * (T - len(e)) for e, n in ex])
        return ids, mask, labels

    def step(i=0):
        ids, mask, labels = batch(i)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    out["step_s"] = timed(step, a.steps)
elif a.what == "dpo":
    # TRL's DPOTrainer as a user runs it: LoRA r8 on q,v, the reference = the adapter disabled.
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer
    import tempfile
    from transformers import TrainerCallback

    times = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw): self.t0 = time.perf_counter()
        def on_step_end(self, args, state, control, **kw): times.append(time.perf_counter() - self.t0)

    ds = Dataset.from_list(rows[: a.batch * (a.steps + 1)])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DPOConfig(output_dir=tmp, per_device_train_batch_size=a.batch, gradient_accumulation_steps=1, max_steps=a.steps + 1,
                        learning_rate=1e-4, beta=0.1, report_to=[], logging_steps=1000, save_strategy="no", use_cpu=True,
                        dataloader_num_workers=0, max_length=512)
        tr = DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok,
                        peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
                        callbacks=[Clock()])
        torch.set_num_threads(a.threads)
        tr.train()
    out["step_s"] = statistics.median(times[1:])
elif a.what == "generate":
    ids = tok.apply_chat_template(rows[0]["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    gen = lambda n: model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    with torch.inference_mode():
        gen(4)
        ts = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            gen(a.tokens)
            ts.append(time.perf_counter() - t0)
    out["seconds"] = statistics.median(ts)
    out["tokens_per_s"] = a.tokens / out["seconds"]
print(json.dumps(out))
