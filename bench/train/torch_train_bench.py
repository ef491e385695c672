#!/usr/bin/env python3
"""PyTorch peer of bench-train: one LoRA SFT or DPO optimizer step on CPU, fp32, the same
configs, data shapes, batch and thread count. transformers' LlamaForCausalLM (default sdpa
attention) + PEFT LoRA (r 16, alpha 32, q/k/v/o), torch.optim.AdamW lr 1e-4, clip 1.0.

  SFT  (plain PyTorch): forward with labels (prompt 64 tokens −100), backward, clip, step, zero_grad.
  DPO  --impl trl (default): TRL's DPOTrainer, sigmoid loss, beta 0.1, precompute_ref_log_probs
       (reference log-probs computed once in the trainer's init, timed separately as ref_s);
       the step is timed from the trainer's on_step_begin to on_step_end callbacks.
  DPO  --impl plain: the same step in plain PyTorch with TRL's sigmoid loss formula: policy
       forward on the 8 sequences, summed completion log-probs, loss with precomputed reference
       log-probs, backward, clip, step.

Median step time after one warm-up step. Prints one JSON line.
usage: torch_train_bench.py --size 10m|100m --kind sft|dpo [--impl trl|plain] [--steps N] [--threads 2] [--dropout 0]"""
import argparse, json, os, tempfile, time
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--size", default="10m"); p.add_argument("--kind", default="sft"); p.add_argument("--impl", default="trl")
p.add_argument("--steps", type=int, default=3); p.add_argument("--threads", type=int, default=2)
p.add_argument("--dropout", type=float, default=0.0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
B, T, P, BETA, LR = 4, 256, 64, 0.1, 1e-4
sizes = {
    "10m": dict(vocab_size=8192, hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                num_key_value_heads=8, tie_word_embeddings=False),
    "100m": dict(vocab_size=16384, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=12, tie_word_embeddings=True),
}
cfg = LlamaConfig(**sizes[a.size], rms_norm_eps=1e-5, max_position_embeddings=1024, pad_token_id=0, eos_token_id=1)
model = LlamaForCausalLM(cfg).float()
params = sum(p.numel() for p in model.parameters())
from peft import LoraConfig, get_peft_model
lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=a.dropout, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                  task_type="CAUSAL_LM")
g = torch.Generator().manual_seed(3)
rand = lambda n: torch.randint(0, cfg.vocab_size, (n,), generator=g).tolist()
ref_s, times = 0.0, []

def median(ts):
    ts = sorted(ts); return ts[len(ts) // 2]

if a.kind == "sft" or a.impl == "plain":
    model = get_peft_model(model, lora)
    model.train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=LR)
    trainable = [q for q in model.parameters() if q.requires_grad]
    if a.kind == "sft":
        ids = torch.tensor([rand(T) for _ in range(B)])
        labels = ids.clone(); labels[:, :P] = -100
        tokens = B * T
        def step():
            model(input_ids=ids, labels=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step(); opt.zero_grad(set_to_none=True)
    else:
        prompts = [rand(P) for _ in range(B)]
        # [chosen × 4, rejected × 4], like TRL's collator
        ids = torch.tensor([pr + rand(T - P) for pr in prompts] + [pr + rand(T - P) for pr in prompts])
        mask = torch.zeros_like(ids); mask[:, P:] = 1
        tokens = 2 * B * T
        def seq_logps(m):
            logits = m(input_ids=ids).logits[:, :-1]
            lp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            return (lp * mask[:, 1:]).sum(1)
        t0 = time.perf_counter()
        with torch.no_grad(), model.disable_adapter():
            ref = seq_logps(model)
        ref_s = time.perf_counter() - t0
        ref_c, ref_r = ref.chunk(2)
        def step():
            pol_c, pol_r = seq_logps(model).chunk(2)
            loss = -F.logsigmoid(BETA * ((pol_c - ref_c) - (pol_r - ref_r))).mean()  # TRL's sigmoid loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step(); opt.zero_grad(set_to_none=True)
    step()
    for _ in range(a.steps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
else:
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import DPOConfig, DPOTrainer
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1, "<unk>": 2}, unk_token="<unk>")),
                                  pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    rows = []
    for _ in range(B):
        rows.append({"prompt_ids": rand(P), "chosen_ids": rand(T - P), "rejected_ids": rand(T - P)})
    data = Dataset.from_list(rows)

    class PreTokenizedDPOTrainer(DPOTrainer):
        """The data is already token ids (prompt_ids / chosen_ids / rejected_ids, the columns TRL's
        tokenization produces): skip the text preparation, keep everything else."""
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw): self.t0 = time.perf_counter()
        def on_step_end(self, args, state, control, **kw): times.append(time.perf_counter() - self.t0)

    out = tempfile.mkdtemp(prefix="bench-train-trl-")
    args = DPOConfig(output_dir=out, max_steps=1 + a.steps, per_device_train_batch_size=B, gradient_accumulation_steps=1,
                     learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, optim="adamw_torch",
                     weight_decay=0.0, beta=BETA, loss_type=["sigmoid"], precompute_ref_log_probs=True, max_length=None,
                     logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                     disable_tqdm=True, seed=2, bf16=False, fp16=False)
    t0 = time.perf_counter()
    trainer = PreTokenizedDPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora,
                                     callbacks=[StepTimer()])
    ref_s = time.perf_counter() - t0  # includes precompute_ref_log_probs
    torch.set_num_threads(a.threads)
    trainer.train()
    times = times[1:]  # drop the warm-up step
    tokens = 2 * B * T
med = median(times)
print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "size": a.size, "kind": a.kind,
                  "dpo_impl": (a.impl if a.kind == "dpo" else "plain"), "params": params, "steps": len(times),
                  "step_s": med, "tokens_per_s": tokens / med, "ref_s": ref_s, "threads": torch.get_num_threads()}))
