#!/usr/bin/env python3
"""Golden fixtures for Cairn's GGUF model import and export (Sources/CairnTrain/GGUF/).

Made by the real tools: transformers builds two tiny models, llama.cpp's own converter
(convert_hf_to_gguf.py) writes them as GGUF, llama.cpp's quantizer (llama-cpp-python's
llama_model_quantize) makes the quantised tensors, gguf-py writes the fixture files, and
transformers' GGUF loader (from_pretrained(dir, gguf_file=...)) gives the expected values.

Regenerate, from the repository root:

    python3 -m venv ~/.cache/cairn-peers/venv
    ~/.cache/cairn-peers/venv/bin/pip install torch transformers tokenizers gguf llama-cpp-python
      (llama-cpp-python: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON")
    # llama.cpp's converter ships in llama-cpp-python's source distribution:
    #   pip download --no-deps --no-binary :all: llama-cpp-python, untar, vendor/llama.cpp
    LLAMA_CPP_DIR=.../vendor/llama.cpp ~/.cache/cairn-peers/venv/bin/python \
        Tests/CairnTrainTests/Fixtures/gguf/model/make_fixtures.py

It writes, for ARCH in llama (untied output, Q/K permuted by the converter) and qwen2 (tied,
q/k/v biases), into ARCH/:
  mixed.gguf     the converter's metadata and tensor names, each matrix in a different ggml type
                 so that every type Cairn reads appears: Q4_K, Q5_K, Q6_K (llama.cpp's quantizer),
                 Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (llama.cpp's quantizer), F16, BF16 (gguf-py), F32
  expected.json  transformers' config read from mixed.gguf; per HF tensor name its shape, sum,
                 sum of squares and 16 values at fixed strides of the dequantised weight; per-token
                 log-probs of two token sequences
  layout.json    what llama.cpp's converter writes for the original model with --outtype f32, f16
                 and q8_0: metadata keys with their GGUF types, tensor names, types and shapes
                 (Cairn's export is compared against it)
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_CPP_DIR = os.environ.get("LLAMA_CPP_DIR")
if not LLAMA_CPP_DIR or not os.path.exists(os.path.join(LLAMA_CPP_DIR, "convert_hf_to_gguf.py")):
    sys.exit("set LLAMA_CPP_DIR to llama.cpp's source (it holds convert_hf_to_gguf.py)")

LLAMA3_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Create a task: buy milk tomorrow, high priority. Reply with JSON only.",
    '{"title": "buy milk", "due": "2026-12-01", "priority": "high"}',
    "def add(a, b):\n    return a + b\n\nprint(add(12, 345))",
    "Numbers 1 22 333 4444 and words that repeat: repeat repeat repeat.",
]

ARCHS = {
    # Llama has a BOS token that llama.cpp adds (the converter writes add_bos_token true); Qwen2 has none.
    "llama": dict(cls="LlamaForCausalLM", regex=LLAMA3_REGEX, pre="llama-bpe", tie=False, theta=10000.0, bos="<|endoftext|>"),
    "qwen2": dict(cls="Qwen2ForCausalLM", regex=QWEN2_REGEX, pre="qwen2", tie=True, theta=1000000.0, bos=None),
}
# One ggml type per matrix, in the converter's tensor order; the list repeats.
TYPES = ["Q4_K", "Q5_K", "Q6_K", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16", "F32"]
# llama_ftype numbers (llama.h) for the files the quantised bytes are taken from.
FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q4_K": 14, "Q5_K": 16, "Q6_K": 18}


def make_tokenizer(regex, out_dir, bos):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=bos)
    fast.chat_template = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n'}}{% endif %}"
    fast.save_pretrained(out_dir)
    return fast


def make_model(arch, spec, out_dir, vocab):
    import transformers
    torch.manual_seed(7 if arch == "llama" else 11)
    cfg_cls = getattr(transformers, spec["cls"].replace("ForCausalLM", "Config"))
    cfg = cfg_cls(vocab_size=vocab, hidden_size=256, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=64, rms_norm_eps=1e-5,
                  rope_theta=spec["theta"], max_position_embeddings=512, tie_word_embeddings=spec["tie"],
                  bos_token_id=0 if spec["bos"] else None, eos_token_id=2, pad_token_id=0)
    model = getattr(transformers, spec["cls"])(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))      # not all ones: the norms' mapping shows
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.save_pretrained(out_dir, safe_serialization=True)


def convert(hf_dir, outfile, outtype, pre):
    """llama.cpp's convert_hf_to_gguf.py, with the BPE pre-tokenizer named (the converter recognises
    real models by a hash of their tokenizer's output; a tiny trained tokenizer has none)."""
    sys.path.insert(0, LLAMA_CPP_DIR)
    import convert_hf_to_gguf as conv
    from conversion import base
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", hf_dir, "--outtype", outtype, "--outfile", outfile]
    try:
        conv.main()
    finally:
        sys.argv = argv


def quantize(src, dst, ftype):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    assert rc == 0, f"llama_model_quantize {ftype} failed: {rc}"


def layout(path):
    import gguf
    r = gguf.GGUFReader(path)
    keys = [[k, [t.name for t in f.types]] for k, f in r.fields.items() if not k.startswith("GGUF.")]
    tensors = [[t.name, t.tensor_type.name, [int(x) for x in t.shape]] for t in r.tensors]
    return {"metadata": keys, "tensors": tensors}


def write_mixed(f32_path, quantised, out_path):
    """Copies f32_path's metadata and tensors into out_path, each matrix as TYPES[i % len]."""
    import gguf
    src = gguf.GGUFReader(f32_path)
    qreaders = {k: gguf.GGUFReader(v) for k, v in quantised.items()}
    arch = src.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(out_path, arch)
    for key, field in src.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub_type=sub)
    used = {}
    matrix = 0
    for t in src.tensors:
        shape = [int(x) for x in reversed(t.shape)]        # PyTorch order
        if len(shape) == 1:
            w.add_tensor(t.name, np.array(t.data, dtype=np.float32))
            continue
        # Each quantised file's copy of this tensor, by the type llama.cpp chose for it (it keeps
        # some tensors, e.g. output.weight, in a higher type than the file's).
        avail = {"F32": None, "F16": None, "BF16": None}
        for r in qreaders.values():
            x = next(x for x in r.tensors if x.name == t.name)
            avail.setdefault(x.tensor_type.name, x)
        want = next(TYPES[(matrix + i) % len(TYPES)] for i in range(len(TYPES)) if TYPES[(matrix + i) % len(TYPES)] in avail)
        matrix += 1
        if want == "F32":
            w.add_tensor(t.name, np.array(t.data, dtype=np.float32))
        elif want in ("F16", "BF16"):
            qt = getattr(gguf.GGMLQuantizationType, want)
            data = gguf.quants.quantize(np.array(t.data, dtype=np.float32), qt)
            w.add_tensor(t.name, data, raw_shape=data.shape, raw_dtype=qt)
        else:
            qt = avail[want]
            w.add_tensor(t.name, np.array(qt.data), raw_shape=qt.data.shape, raw_dtype=qt.tensor_type)
        used[t.name] = want
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return used


def expected(gguf_dir, name, sequences):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=name, dtype=torch.float32).eval()
    tensors = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        flat = v.detach().double().flatten()
        idx = torch.linspace(0, flat.numel() - 1, 16).round().long()
        tensors[k] = {"shape": list(v.shape), "sum": float(flat.sum()), "sum_sq": float((flat * flat).sum()),
                      "samples": [[int(i), float(v.flatten()[i])] for i in idx]}
    logprobs = []
    with torch.no_grad():
        for ids in sequences:
            logits = model(torch.tensor([ids])).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            logprobs.append([float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)])
    c = model.config
    config = {k: getattr(c, k) for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                          "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
                                          "tie_word_embeddings", "max_position_embeddings"]}
    config["rope_theta"] = (getattr(c, "rope_parameters", None) or {}).get("rope_theta", getattr(c, "rope_theta", None))
    return {"config": config, "tensors": tensors, "sequences": sequences, "logprobs": logprobs}


def main():
    for arch, spec in ARCHS.items():
        out = os.path.join(HERE, arch)
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            hf = os.path.join(tmp, "hf")
            tok = make_tokenizer(spec["regex"], hf, spec["bos"])
            make_model(arch, spec, hf, len(tok))
            files = {}
            for outtype in ["f32", "f16", "q8_0"]:
                files[outtype] = os.path.join(tmp, f"{outtype}.gguf")
                convert(hf, files[outtype], outtype, spec["pre"])
            quantised = {}
            for qname, ftype in FTYPES.items():
                quantised[qname] = os.path.join(tmp, f"{qname}.gguf")
                quantize(files["f32"], quantised[qname], ftype)
            mixed = os.path.join(out, "mixed.gguf")
            types = write_mixed(files["f32"], quantised, mixed)
            missing = set(TYPES) - set(types.values())
            assert not missing, f"{arch}: no tensor of {missing}"
            seqs = [tok.encode(CORPUS[1], add_special_tokens=False)[:24], tok.encode(CORPUS[3], add_special_tokens=False)[:24]]
            exp = expected(out, "mixed.gguf", seqs)
            exp["types"] = types
            with open(os.path.join(out, "expected.json"), "w") as f:
                json.dump(exp, f, indent=1)
            with open(os.path.join(out, "layout.json"), "w") as f:
                json.dump({k: layout(v) for k, v in files.items()}, f, indent=1)
        print(arch, "done:", sorted(set(types.values())))


if __name__ == "__main__":
    main()
