#!/usr/bin/env python3
"""Golden model fixtures for CairnTrain (Llama MHA + Qwen2 GQA, tiny random, fp32, CPU).

Regenerate (from the repository root):

    python3 Tests/CairnTrainTests/Fixtures/model/make_fixtures.py

Generated with: Python 3.11.7, torch 2.13.0+cpu, transformers 5.23.0, peft 0.21.2,
safetensors 0.8.0, numpy 2.4.6 (the versions actually used are also written into each
cases.json). Fully deterministic: running it twice gives byte-identical files.

Other modes (ad-hoc cross-checks against Cairn):

    # load MODEL_DIR with transformers + ADAPTER_DIR with PeftModel.from_pretrained,
    # fail loudly on missing/unexpected adapter keys, run the fixture batch and print
    # max |logits - lora.logits| against the fixture
    python3 make_fixtures.py --check-cairn-adapter MODEL_DIR ADAPTER_DIR [--cases CASES_DIR]

    # print logits (shape [1, T, vocab]) as JSON for the given ids
    python3 make_fixtures.py --logits MODEL_DIR [ADAPTER_DIR] --ids 3,4,5

Output layout, per model folder (llama-mha/, qwen2-gqa/):
    config.json, generation_config.json, model.safetensors   (model.save_pretrained, fp32)
    lora-adapter/                                           (peft save_pretrained)
    cases.safetensors, cases.json                           (batch, logits, loss, grads, ...)
"""

import argparse
import copy
import json
import logging
import os
import sys
import warnings

# PEFT writes adapter_config.json "target_modules" from a Python set, whose order depends on
# string hash randomisation: pin PYTHONHASHSEED so the written file is byte-stable.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np
import torch
import torch.nn.functional as F

import transformers
import peft
import safetensors
from safetensors.torch import save_file, load_file
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from peft import LoraConfig, PeftModel, get_peft_model

HERE = os.path.dirname(os.path.abspath(__file__))

torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)  # bit-stable reductions across machines/thread counts

SEQ = 12
BATCH = 2
PAD_ID = 0
N_PAD_ROW1 = 4     # row 1: last 4 positions are padding
N_PROMPT = 3       # first 3 positions of each row are a "prompt": label -100
GEN_PROMPT_LEN = 5
GEN_NEW = 8

MODELS = {
    "llama-mha": dict(
        cls=LlamaForCausalLM,
        config_cls=LlamaConfig,
        config=dict(
            vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, head_dim=8, rms_norm_eps=1e-5,
            rope_theta=10000.0, max_position_embeddings=64, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
            pad_token_id=0,
        ),
        lora=dict(r=4, lora_alpha=8, use_rslora=False),
        seed=1234,
    ),
    "qwen2-gqa": dict(
        cls=Qwen2ForCausalLM,
        config_cls=Qwen2Config,
        config=dict(
            vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            rope_theta=1000000.0, max_position_embeddings=64, tie_word_embeddings=True,
            use_sliding_window=False,
        ),
        lora=dict(r=8, lora_alpha=16, use_rslora=True),
        seed=5678,
    ),
}

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def versions():
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


# --------------------------------------------------------------------------- helpers

def init_weights_(model, seed):
    """Every parameter from a seeded normal: weights N(0, 0.2), norm weights 1 + N(0, 0.1),
    biases N(0, 0.1). Parameters visited in model.named_parameters() order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def init_lora_(peft_model, seed):
    """Every lora_A / lora_B weight from seeded N(0, 0.2) (B nonzero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float32))


def make_batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, vocab, (BATCH, SEQ), generator=g, dtype=torch.int64)  # [3, 127]
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.int64)
    attention_mask[1, SEQ - N_PAD_ROW1:] = 0
    input_ids[1, SEQ - N_PAD_ROW1:] = PAD_ID
    labels = input_ids.clone()
    labels[attention_mask == 0] = -100
    labels[:, :N_PROMPT] = -100
    gen_prompt = torch.randint(3, vocab, (1, GEN_PROMPT_LEN), generator=g, dtype=torch.int64)
    return input_ids, attention_mask, labels, gen_prompt


def adapter_key(name):
    """peft named_parameters name -> key in adapter_model.safetensors (strip '.default')."""
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def load_model(model_dir):
    return AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager").eval()


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_adapter_strict(base, adapter_dir):
    """PeftModel.from_pretrained, but fail loudly on any missing/unexpected adapter key."""
    handler = _LogCapture()
    loggers = [logging.getLogger(n) for n in ("peft", "transformers", "")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    msgs = [str(w.message) for w in caught] + handler.records
    bad = [m for m in msgs if any(s in m.lower() for s in ("missing", "unexpected", "mismatch"))]
    # Independent key check: file keys vs what PEFT expects for this config.
    from peft.utils import get_peft_model_state_dict
    expected = get_peft_model_state_dict(model)
    fpath = os.path.join(adapter_dir, "adapter_model.safetensors")
    got = load_file(fpath)
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shape_bad = sorted(k for k in set(got) & set(expected) if tuple(got[k].shape) != tuple(expected[k].shape))
    dtype_bad = sorted(k for k in got if got[k].dtype != torch.float32)
    if bad or missing or unexpected or shape_bad:
        raise SystemExit(
            "ADAPTER CHECK FAILED (keys must be exactly PEFT's canonical adapter_model.safetensors "
            "names, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight; note PEFT "
            "itself silently ignores unexpected keys and tolerates a '.default' infix)\n"
            f"  warnings: {bad}\n  missing keys: {missing}\n  unexpected keys: {unexpected}\n"
            f"  shape mismatches: {[(k, tuple(got[k].shape), tuple(expected[k].shape)) for k in shape_bad]}")
    # The loaded values must be exactly the file values.
    loaded = get_peft_model_state_dict(model)
    for k in got:
        if not torch.equal(loaded[k].float(), got[k].float()):
            raise SystemExit(f"ADAPTER LOAD FAILED: value of {k} differs after load")
    return model.eval(), {"n_keys": len(got), "non_fp32_keys": dtype_bad, "other_warnings": msgs}


# --------------------------------------------------------------------------- generation

def build_one(name, spec):
    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    seed = spec["seed"]
    torch.manual_seed(seed)

    config = spec["config_cls"](**spec["config"])
    config._attn_implementation = "eager"
    model = spec["cls"](config).to(torch.float32)
    model.config._attn_implementation = "eager"
    init_weights_(model, seed)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)

    vocab = config.vocab_size
    input_ids, attention_mask, labels, gen_prompt = make_batch(vocab, seed + 1)

    tensors = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
    }
    info = {}

    # ---- record the position_ids the model actually uses (rotary embedding input)
    seen_pos = []
    hook = model.model.rotary_emb.register_forward_hook(
        lambda mod, args, kwargs, out: seen_pos.append(
            (kwargs.get("position_ids") if "position_ids" in kwargs else args[1]).clone()),
        with_kwargs=True)

    # ---- logits (eval, no grad)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    hook.remove()
    tensors["logits"] = logits.contiguous()
    info["position_ids_used"] = seen_pos[0].tolist()

    # ---- loss + grads
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    loss = out.loss
    loss.backward()
    shift_logits = out.logits[:, :-1, :].reshape(-1, vocab)
    shift_labels = labels[:, 1:].reshape(-1)
    loss_sum = F.cross_entropy(shift_logits.detach(), shift_labels, ignore_index=-100, reduction="sum")
    n_tokens = int((shift_labels != -100).sum())
    tensors["loss"] = loss.detach().reshape(())
    tensors["loss_sum"] = loss_sum.detach().reshape(())
    tensors["n_tokens"] = torch.tensor(n_tokens, dtype=torch.int64)
    manual_mean = (loss_sum / n_tokens).item()
    grad_names = []
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        tensors["grad." + pname] = p.grad.detach().clone().contiguous()
        grad_names.append(pname)
    model.zero_grad(set_to_none=True)

    # ---- generation with KV cache (greedy)
    gen_cfg = copy.deepcopy(model.generation_config)
    gen_cfg.eos_token_id = None
    gen_cfg.do_sample = False
    gen_cfg.max_new_tokens = GEN_NEW
    gen_cfg.pad_token_id = PAD_ID
    gen_cfg.use_cache = True
    with torch.no_grad():
        gen_out = model.generate(gen_prompt, attention_mask=torch.ones_like(gen_prompt),
                                 generation_config=gen_cfg)
        logits_last = model(input_ids=gen_prompt).logits[:, -1, :]
        # no-cache greedy reference: full recompute each step must agree with the KV-cache run
        seq = gen_prompt.clone()
        for _ in range(GEN_NEW):
            nxt = model(input_ids=seq, use_cache=False).logits[:, -1, :].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert gen_out.shape == (1, GEN_PROMPT_LEN + GEN_NEW), gen_out.shape
    assert torch.equal(gen_out, seq), (gen_out, seq)
    tensors["generate.prompt"] = gen_prompt
    tensors["generate.output"] = gen_out.contiguous()
    tensors["generate.logits_last"] = logits_last.contiguous()

    # ---- LoRA
    lspec = spec["lora"]
    lcfg = LoraConfig(r=lspec["r"], lora_alpha=lspec["lora_alpha"], lora_dropout=0.0,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM", bias="none",
                      use_rslora=lspec["use_rslora"])
    base_for_lora = copy.deepcopy(model)
    pmodel = get_peft_model(base_for_lora, lcfg)
    init_lora_(pmodel, seed + 2)
    pmodel.eval()
    adapter_dir = os.path.join(out_dir, "lora-adapter")
    pmodel.save_pretrained(adapter_dir)

    with torch.no_grad():
        lora_logits = pmodel(input_ids=input_ids, attention_mask=attention_mask).logits
    tensors["lora.logits"] = lora_logits.contiguous()

    pmodel.zero_grad(set_to_none=True)
    lout = pmodel(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    lout.loss.backward()
    tensors["lora.loss"] = lout.loss.detach().reshape(())
    trainable, base_with_grad = [], []
    for pname, p in pmodel.named_parameters():
        if p.requires_grad:
            assert ("lora_A" in pname or "lora_B" in pname), pname
            key = adapter_key(pname)
            tensors["lora.grad." + key] = p.grad.detach().clone().contiguous()
            trainable.append(key)
        elif p.grad is not None:
            base_with_grad.append(pname)
    assert not base_with_grad, base_with_grad
    adapter_keys = sorted(load_file(os.path.join(adapter_dir, "adapter_model.safetensors")).keys())
    assert sorted(trainable) == adapter_keys, (sorted(trainable), adapter_keys)
    pmodel.zero_grad(set_to_none=True)

    # scaling PEFT uses
    first_lora = next(m for m in pmodel.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict))
    scaling = float(first_lora.scaling["default"])

    # ---- merged (on a deep copy)
    merged = copy.deepcopy(pmodel).merge_and_unload().eval()
    with torch.no_grad():
        merged_logits = merged(input_ids=input_ids, attention_mask=attention_mask).logits
    tensors["lora.merged_logits"] = merged_logits.contiguous()
    del merged

    # ---- write cases
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(out_dir, "cases.safetensors"), metadata={"format": "pt"})

    with open(os.path.join(out_dir, "config.json")) as f:
        written_config = json.load(f)
    valid = attention_mask.bool()
    cases = {
        "generator": "Tests/CairnTrainTests/Fixtures/model/make_fixtures.py",
        "versions": versions(),
        "model_class": spec["cls"].__name__,
        "config_args": spec["config"],
        "config_json_as_written": written_config,
        "seeds": {"weights": seed, "batch": seed + 1, "lora": seed + 2},
        "init": "all params N(0,0.2); params with 'norm' in name 1+N(0,0.1); '.bias' N(0,0.1); "
                "visited in named_parameters() order from torch.Generator().manual_seed(seeds.weights)",
        "batch": {
            "input_ids": input_ids.tolist(),
            "attention_mask": attention_mask.tolist(),
            "labels": labels.tolist(),
            "pad_token_id": PAD_ID,
            "prompt_masked_positions": N_PROMPT,
        },
        "position_ids": {
            "used_by_transformers": info["position_ids_used"],
            "note": "No position_ids were passed. transformers derives them from cache_position "
                    "(arange(seq)), NOT from attention_mask, so the right-padded row 1 also uses "
                    "0..11; with right padding the valid tokens get 0..7 either way.",
        },
        "attention_mask_note": "eager attention; mask = causal AND key-is-not-padding. Padded query "
                               "positions (row 1, 8..11) still attend to the valid keys 0..7, so their "
                               "logits are finite and stored, but they are implementation details: "
                               "compare only positions where attention_mask == 1 unless replicating "
                               "that exact masking.",
        "loss": {
            "loss": loss.item(),
            "loss_sum": loss_sum.item(),
            "n_tokens": n_tokens,
            "loss_sum_over_n_tokens": manual_mean,
            "normalisation": "transformers ForCausalLMLoss: labels padded with -100 on the right "
                             "and shifted by one (labels[:,1:] vs logits[:,:-1]); "
                             "F.cross_entropy(reduction='mean', ignore_index=-100) over all "
                             "non-ignored shifted labels of the whole batch (token-mean, not "
                             "per-row mean). loss == loss_sum / n_tokens.",
        },
        "grad": {
            "parameter_names": grad_names,
            "tied_embeddings": bool(config.tie_word_embeddings),
            "note": ("tie_word_embeddings=True: lm_head.weight is the same Parameter as "
                     "model.embed_tokens.weight; named_parameters() lists it once, so the single "
                     "stored gradient grad.model.embed_tokens.weight is the SUM of the embedding "
                     "and lm_head contributions. model.safetensors likewise holds only "
                     "model.embed_tokens.weight."
                     if config.tie_word_embeddings else
                     "untied: separate grad.model.embed_tokens.weight and grad.lm_head.weight"),
            "mode": "gradients taken with the model in eval() mode (dropout is 0 anyway)",
        },
        "generate": {
            "prompt": gen_prompt.tolist(),
            "output": gen_out.tolist(),
            "max_new_tokens": GEN_NEW,
            "do_sample": False,
            "eos_token_id": None,
            "note": "greedy, KV cache (use_cache=True), eos disabled so exactly 8 new tokens; "
                    "verified identical to a no-cache full-recompute argmax loop. "
                    "generate.logits_last = logits of the prompt's last position.",
        },
        "lora": {
            "config": {"r": lspec["r"], "lora_alpha": lspec["lora_alpha"], "lora_dropout": 0.0,
                       "target_modules": LORA_TARGETS, "task_type": "CAUSAL_LM", "bias": "none",
                       "use_rslora": lspec["use_rslora"]},
            "scaling_used_by_peft": scaling,
            "loss": lout.loss.item(),
            "init": "after get_peft_model every lora_A/lora_B weight N(0,0.2) from "
                    "torch.Generator().manual_seed(seeds.lora), in named_parameters() order",
            "trainable_parameter_keys": sorted(trainable),
            "key_naming": "adapter_model.safetensors names ('.default' adapter name stripped)",
            "base_weights_got_gradient": False,
            "adapter_dir": "lora-adapter",
            "merged_note": "lora.merged_logits from merge_and_unload() on a deep copy",
        },
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                    for k, v in sorted(tensors.items())},
        "max_abs": {
            "logits_minus_lora_logits": (logits - lora_logits).abs().max().item(),
            "lora_logits_minus_merged_logits": (lora_logits - merged_logits).abs().max().item(),
            "logits_valid_positions_absmax": logits[valid].abs().max().item(),
        },
    }
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=False)
        f.write("\n")
    return cases


def generate_all():
    for name, spec in MODELS.items():
        c = build_one(name, spec)
        print(f"{name}: loss={c['loss']['loss']:.6f} loss_sum={c['loss']['loss_sum']:.6f} "
              f"n_tokens={c['loss']['n_tokens']} lora.loss={c['lora']['loss']:.6f} "
              f"scaling={c['lora']['scaling_used_by_peft']} gen={c['generate']['output']} "
              f"pos={c['position_ids']['used_by_transformers']} max_abs={c['max_abs']}")


# --------------------------------------------------------------------------- check modes

def find_cases(model_dir, cases_dir):
    for d in [cases_dir, model_dir]:
        if d and os.path.exists(os.path.join(d, "cases.safetensors")):
            return d
    # fall back: fixture folder whose config matches MODEL_DIR's config
    with open(os.path.join(model_dir, "config.json")) as f:
        mt = json.load(f).get("model_type")
    for name in MODELS:
        d = os.path.join(HERE, name)
        if os.path.exists(os.path.join(d, "config.json")):
            with open(os.path.join(d, "config.json")) as f:
                if json.load(f).get("model_type") == mt:
                    return d
    return None


def check_cairn_adapter(model_dir, adapter_dir, cases_dir=None):
    base = load_model(model_dir)
    model, rep = load_adapter_strict(base, adapter_dir)
    print(f"adapter OK: {rep['n_keys']} tensors, no missing/unexpected keys, shapes match")
    if rep["non_fp32_keys"]:
        print(f"note: non-fp32 tensors in adapter: {rep['non_fp32_keys']}")
    if rep["other_warnings"]:
        print("other warnings during load:", *rep["other_warnings"], sep="\n  ")
    cd = find_cases(model_dir, cases_dir)
    if cd is None:
        print("no fixture cases found; skipping logits comparison")
        return
    cases = load_file(os.path.join(cd, "cases.safetensors"))
    with torch.no_grad():
        got = model(input_ids=cases["input_ids"], attention_mask=cases["attention_mask"]).logits
    valid = cases["attention_mask"].bool()
    d_all = (got - cases["lora.logits"]).abs().max().item()
    d_valid = (got - cases["lora.logits"])[valid].abs().max().item()
    d_base = (got - cases["logits"])[valid].abs().max().item()
    print(f"fixture: {cd}")
    print(f"max |logits - lora.logits| = {d_all:.3e} (all positions), {d_valid:.3e} (valid positions)")
    print(f"max |logits - base logits| = {d_base:.3e} (valid positions; large => adapter has effect)")
    print("(the lora.logits comparison is meaningful when ADAPTER_DIR holds the fixture adapter's values)")


def print_logits(model_dir, adapter_dir, ids):
    model = load_model(model_dir)
    if adapter_dir:
        model, _ = load_adapter_strict(model, adapter_dir)
    x = torch.tensor([ids], dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=x).logits
    print(json.dumps({"ids": ids, "shape": list(logits.shape), "logits": logits.tolist()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-cairn-adapter", nargs=2, metavar=("MODEL_DIR", "ADAPTER_DIR"))
    ap.add_argument("--cases", metavar="CASES_DIR", help="folder with cases.safetensors (default: MODEL_DIR or matching fixture)")
    ap.add_argument("--logits", nargs="+", metavar="DIR", help="MODEL_DIR [ADAPTER_DIR]")
    ap.add_argument("--ids", help="comma-separated token ids for --logits")
    a = ap.parse_args()
    if a.check_cairn_adapter:
        check_cairn_adapter(*a.check_cairn_adapter, cases_dir=a.cases)
    elif a.logits:
        if len(a.logits) > 2 or not a.ids:
            ap.error("--logits MODEL_DIR [ADAPTER_DIR] --ids 3,4,5")
        print_logits(a.logits[0], a.logits[1] if len(a.logits) == 2 else None,
                     [int(t) for t in a.ids.split(",")])
    else:
        generate_all()


if __name__ == "__main__":
    main()
