#!/usr/bin/env python3
"""Golden fixtures for Cairn's safetensors and PEFT readers/writers (Sources/CairnTrain/Formats).

Regenerate (from the repository root; needs torch, safetensors, transformers, peft):

    python3 Tests/CairnTrainTests/Fixtures/formats/make_fixtures.py

It writes, beside itself:
    f32.safetensors, f16.safetensors, bf16.safetensors   one tensor "values" (shape [V]) and one
                                                          "matrix" (shape [3, 4]) each, made by
                                                          safetensors.torch.save_file
    values.json                                          the float32 source values and, per dtype, the
                                                          stored bits and the float32 they read back as
                                                          (all as integer bit patterns: NaN/Inf safe)
    sharded/model.safetensors.index.json + 2 shards      a sharded model directory (save_file per shard)
    sharded/expected.json                                every tensor's shape and first values
    adapter/adapter_config.json, adapter_model.safetensors
                                                          a real PEFT LoRA adapter (tiny Llama base)

Checks of what Cairn writes (run by hand; CI has no torch):

    python3 make_fixtures.py --check-cairn-adapter DIR       load DIR with PEFT on the same tiny base
                                                              model; no missing/unexpected keys, weights
                                                              equal the file
    python3 make_fixtures.py --check-cairn-safetensors FILE  load with safetensors.torch.load_file and
                                                              print names, dtypes and shapes

`CAIRN_FORMATS_EXPORT_DIR=/tmp/x swift test --filter "SafeTensors|PEFT"` makes the Swift tests leave a Cairn-written
adapter in /tmp/x/adapter and Cairn-written safetensors files in /tmp/x.
"""
import json
import math
import os
import struct
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the base model name is a label, never fetched

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def source_values():
    """float32 values that exercise rounding, range and specials in F16 and BF16."""
    v = [
        0.0, -0.0, 1.0, -1.0, 1.0 / 3.0, -2.5e-3, 65504.0, -65504.0,
        65519.0,            # F16: rounds down to 65504
        65520.0,            # F16: ties to even → inf
        1e10,               # F16: inf
        2.0 ** -24,         # F16: smallest subnormal
        2.0 ** -25,         # F16: halfway to 0 → 0 (even)
        3 * 2.0 ** -25,     # F16: halfway → 2^-23 (even)
        1e-8,               # F16: underflows to 0
        6.0e-5,             # F16: subnormal
        6.103515625e-05,    # F16: smallest normal
        1e-40,              # F32/BF16 subnormal
        1.1754943508222875e-38,  # F32 smallest normal
        3.4028234663852886e38,   # F32 max: BF16 rounds to inf
        1.0 + 2.0 ** -8,    # BF16: tie → 1.0 (even)
        1.0 + 3 * 2.0 ** -8,  # BF16: tie → up
        1.0 + 2.0 ** -10,   # F16: tie → 1.0
        1.0 + 3 * 2.0 ** -11,  # F16: tie → up
        math.pi, math.e, -123.456, 0.1, 1e-3, 7.0e4,
        float("inf"), float("-inf"), float("nan"),
    ]
    g = torch.Generator().manual_seed(7)
    v += (torch.randn(32, generator=g) * 3).tolist()
    return torch.tensor(v, dtype=torch.float32)


def u16(t):
    return [int(b) & 0xFFFF for b in t.view(torch.int16).tolist()]


def u32(t):
    return [int(b) & 0xFFFFFFFF for b in t.view(torch.int32).tolist()]


def make_dtype_files():
    src = source_values()
    matrix = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8 - 0.75
    out = {"source_f32_bits": u32(src), "matrix_f32_bits": u32(matrix.flatten())}
    for name, dt in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
        conv = src.to(dt)
        save_file({"values": conv, "matrix": matrix.to(dt)},
                  os.path.join(HERE, f"{name}.safetensors"), metadata={"format": "pt"})
        entry = {"read_back_f32_bits": u32(conv.float()), "matrix_read_back_f32_bits": u32(matrix.to(dt).float().flatten())}
        if dt != torch.float32:
            entry["stored_bits"] = u16(conv)  # torch's .to(dtype) on CPU: the bits Cairn's writer must match
        out[name] = entry
    with open(os.path.join(HERE, "values.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def make_sharded():
    d = os.path.join(HERE, "sharded")
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(11)
    tensors = {
        "model.embed_tokens.weight": torch.randn(16, 8, generator=g),
        "model.layers.0.mlp.up_proj.weight": torch.randn(12, 8, generator=g),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(8, 8, generator=g),
        "model.layers.1.mlp.up_proj.weight": torch.randn(12, 8, generator=g),
        "model.layers.1.self_attn.q_proj.weight": torch.randn(8, 8, generator=g),
        "model.norm.weight": torch.randn(8, generator=g),
    }
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
    weight_map, total = {}, 0
    for shard, keys in shards.items():
        # the second shard in BF16: an archive mixes dtypes
        part = {k: (tensors[k] if shard.startswith("model-00001") else tensors[k].to(torch.bfloat16)) for k in keys}
        save_file(part, os.path.join(d, shard), metadata={"format": "pt"})
        for k in keys:
            weight_map[k] = shard
            total += part[k].numel() * part[k].element_size()
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    expected = {}
    for shard, keys in shards.items():
        loaded = load_file(os.path.join(d, shard))
        for k in keys:
            t = loaded[k]
            expected[k] = {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                           "first_f32_bits": u32(t.float().flatten()[:4])}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def tiny_base():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=64, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def make_adapter():
    from peft import LoraConfig, get_peft_model
    base = tiny_base()
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=MODULES, bias="none",
                     task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                n = p.numel()
                p.copy_((torch.arange(n, dtype=torch.float32).reshape(p.shape) % 17 - 8) / 64)
    model.base_model.model.name_or_path = "cairn/tiny-llama"
    model.peft_config["default"].base_model_name_or_path = "cairn/tiny-llama"
    out = os.path.join(HERE, "adapter")
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))  # PEFT's model card: not a fixture
    # PEFT keeps target_modules as a set, whose order changes from run to run: sort it so that
    # regenerating gives the same bytes (same format otherwise: indent 2, sorted keys).
    path = os.path.join(out, "adapter_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def make_readable():
    for root, _, files in os.walk(HERE):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)  # save_file creates 0600


def check_cairn_adapter(d):
    from peft import PeftModel
    from peft.utils import set_peft_model_state_dict
    base = tiny_base()
    model = PeftModel.from_pretrained(base, d)
    file_sd = load_file(os.path.join(d, "adapter_model.safetensors"))
    # Load the same file again through PEFT's own state-dict path to see its incompatible keys.
    res = set_peft_model_state_dict(model, file_sd, adapter_name="default")
    unexpected = list(res.unexpected_keys)
    model_lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    missing = [k for k in res.missing_keys if "lora_" in k]
    print(f"adapter config: {type(model.peft_config['default']).__name__} r={model.peft_config['default'].r} "
          f"alpha={model.peft_config['default'].lora_alpha} targets={sorted(model.peft_config['default'].target_modules)}")
    print(f"file tensors: {len(file_sd)}, LoRA parameters in the model: {len(model_lora)}")
    print(f"missing keys: {missing}")
    print(f"unexpected keys: {unexpected}")
    assert not missing and not unexpected, "PEFT reports missing or unexpected keys"
    assert len(file_sd) == len(model_lora), "file and model disagree on the number of LoRA tensors"
    worst = 0.0
    for k, t in file_sd.items():
        pname = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        p = model_lora[pname]
        assert p.shape == t.shape, f"{k}: model {tuple(p.shape)} file {tuple(t.shape)}"
        worst = max(worst, (p.detach() - t.float()).abs().max().item())
    print(f"max |model - file| over all LoRA weights: {worst}")
    assert worst == 0.0
    print("OK: PEFT loads the Cairn adapter with no missing or unexpected keys; weights equal the file")


def check_cairn_safetensors(path):
    sd = load_file(path)
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    print(f"header length {n} (multiple of 8: {n % 8 == 0}), __metadata__ {header.get('__metadata__')}")
    for k in sorted(sd):
        print(f"{k}\t{str(sd[k].dtype).replace('torch.', '')}\t{list(sd[k].shape)}")
    print(f"OK: {len(sd)} tensors")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-cairn-adapter":
        check_cairn_adapter(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--check-cairn-safetensors":
        check_cairn_safetensors(sys.argv[2])
    elif len(sys.argv) == 1:
        make_dtype_files()
        make_sharded()
        make_adapter()
        make_readable()
        print("fixtures written to", HERE)
    else:
        sys.exit(__doc__)
