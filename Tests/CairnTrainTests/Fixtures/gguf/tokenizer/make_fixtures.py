#!/usr/bin/env python3
"""Golden fixtures for GGUFTokenizer (Sources/CairnTrain/GGUF/GGUFTokenizer*.swift): GGUF tokenizer metadata
(`tokenizer.ggml.*`, `tokenizer.chat_template`) and the ids HF `tokenizers` gives with the ORIGINAL tokenizer.

Regenerate (needs `pip install tokenizers transformers gguf jinja2`; llama-cpp-python is optional and only
used for a cross-check), from the repository root:

    python3 Tests/CairnTrainTests/Fixtures/gguf/tokenizer/make_fixtures.py

For every pre-tokenizer llama.cpp names in `tokenizer.ggml.pre` that Cairn converts, it trains a tiny byte-level
BPE tokenizer with HF `tokenizers` using that model family's ORIGINAL Hugging Face pre_tokenizer, saves it as a
Hugging Face directory, and converts that directory to GGUF tokenizer metadata the way llama.cpp's
convert_hf_to_gguf.py does (`get_vocab_base` re-implemented below, `gguf.SpecialVocab` from gguf-py itself, the
pre name given since llama.cpp's chkhsh table only knows released models), written with gguf-py's GGUFWriter and
read back with GGUFReader so that every value keeps the GGUF type llama.cpp writes. It writes, next to this script:

  NAME.metadata.json   the tokenizer metadata of NAME's GGUF: {"entries": [{"key", "type", "value"} or
                       {"key", "type": "array", "element_type", "value"}]} in file order
  original/NAME/       the original tokenizer.json and tokenizer_config.json (and config.json where llama.cpp's
                       converter reads it), for the test that Cairn's export matches convert_hf_to_gguf.py
  expected.json        the test corpus ("lines"), and per NAME: the pre name, the HF ids of every line and of
                       the whole corpus (add_special_tokens=False) with the original tokenizer.json, and the ids
                       transformers' AutoTokenizer gives for every line with add_special_tokens=True

  NAME: gpt2 (pre "gpt-2": ByteLevel with the GPT-2 regex), llama3 (pre "llama-bpe": Split(Llama-3 regex) +
        ByteLevel(use_regex false), ignore_merges, BOS by a TemplateProcessing), qwen2 (pre "qwen2": NFC +
        Split(Qwen2 regex) + ByteLevel(use_regex false), a vocabulary padded to config.json's vocab_size so the
        GGUF has [PADn] UNUSED tokens, user-defined <think> tokens), smollm (pre "smollm": SmolLM/StarCoder's
        Digits(individual_digits) + ByteLevel(use_regex true), add_bos_token false).

It also prints how transformers' own GGUF tokenizer conversion (AutoTokenizer.from_pretrained(dir,
gguf_file=...)) and, when installed, llama.cpp's tokenizer (llama-cpp-python, vocab_only) tokenize the corpus
from the GGUF files, and where they disagree with the original.

SmolLM2 (the real GGUF, /root/.cache/cairn/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf or --gguf PATH):

    python3 .../make_fixtures.py --smollm2-metadata DIR
        writes DIR/smollm2.metadata.json (its tokenizer metadata and the SmolLM2 corpus; 1.2 MB, too large to commit)
    CAIRN_GGUF_TOKENIZER_CHECK_DIR=DIR swift test --filter GGUFTokenizer
        (GGUFTokenizerTests.writeConvertedFilesForTheHuggingFaceCheck) converts every NAME.metadata.json and
        DIR/smollm2.metadata.json with Cairn and writes DIR/NAME/{tokenizer.json, tokenizer_config.json,
        cairn_ids.json}
    python3 .../make_fixtures.py --smollm2-expected DIR
        loads DIR/smollm2/tokenizer.json (the files Cairn wrote) with HF tokenizers and records the ids of the
        SmolLM2 corpus in smollm2_expected.json ({"gguf", "lines", "ids" per line, "corpus_ids" of the lines
        joined by "\\n" plus "\\n", "chat": {"messages", "rendered" by transformers' apply_chat_template with the
        GGUF's template and add_generation_prompt}}, all add_special_tokens=False); cross-checks them against transformers' AutoTokenizer on
        Cairn's directory, against transformers' GGUF conversion, against the reference structure (SmolLM2's
        tokenizer.json: Digits + ByteLevel) built here from the GGUF, and against llama.cpp when installed.
    python3 .../make_fixtures.py --check-cairn DIR
        loads every DIR/NAME written by the Swift test with HF tokenizers and transformers' AutoTokenizer and
        compares with Cairn's ids in DIR/NAME/cairn_ids.json (exit status 1 on any mismatch).
"""
import importlib.util
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SMOLLM2_GGUF = "/root/.cache/cairn/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

_spec = importlib.util.spec_from_file_location(
    "tokenizer_fixtures", os.path.join(HERE, "..", "..", "tokenizer", "make_fixtures.py"))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

LLAMA3 = base.LLAMA3
QWEN2 = base.QWEN2

CHATML = base.CHATML
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def extra_lines():
    """Lines for what these pre-tokenizers do differently: digit runs, code, numerals, whitespace, specials."""
    return [
        "digits 0123456789 1,234.56 -42 3.14159 2024-06-01 007 10000000",
        "numerals ٣٤٥ ½ Ⅻ ² 10⁴ ①② x1y22z333 v1.2.3",
        "def add(a, b):\n    return a + b  # 12 + 30 == 42\n",
        "\tif (x[i] >= 100) { y += x[i] * 2; }\n\t\treturn 0;",
        "for i in range(10):\n        print(f\"{i:03d}\")\n\n\n",
        "<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n42<|im_end|>",
        "<think>reasoning 123</think>answer <think> </think>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "<repo_name>cairn<file_sep>Sources/main.swift\n<|endoftext|>",
        "[[note]] a[[note]]b [[note]]",
        "a    b\n\n\n    c\t \t d   \r\n  e",
        "ﬁ café cafe\u0301 Å A\u030a 한국어 مرحبا Привет",
        "[PAD5] [PAD1000] <unk> <s> </s>",
        "zebra zebras Zebra  zebra",
    ]


def corpus_lines():
    return base.corpus_lines() + extra_lines()


def training_text():
    return base.training_text() + [
        "def f(x):\n    return x * 1234 + 56789\n", "int main() { return 42; }", "x = [1, 2, 3, 4, 5]",
        "The year 2024 had 366 days and 8784 hours.", "call 555-0199 or 0800 123 456",
    ] * 20


SPECS = {
    "gpt2": dict(pre="gpt-2", specials=["<|endoftext|>"], user_defined=["[[note]]"], vocab_size=520,
                 config=dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")),
    "llama3": dict(pre="llama-bpe", specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                             "<|end_header_id|>", "<|eot_id|>"],
                   vocab_size=560, config=dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                               chat_template=LLAMA3_TEMPLATE, clean_up_tokenization_spaces=True)),
    "qwen2": dict(pre="qwen2", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                  user_defined=["<think>", "</think>"], vocab_size=540, padded_vocab=4,
                  config=dict(bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
                              chat_template=CHATML, clean_up_tokenization_spaces=False)),
    "smollm": dict(pre="smollm", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<file_sep>"],
                   vocab_size=500, config=dict(bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                               pad_token="<|im_end|>", add_bos_token=False, chat_template=SMOLLM2_TEMPLATE,
                                               clean_up_tokenization_spaces=False)),
}


def train(name, spec):
    """The original tokenizer of NAME: trained by HF tokenizers with that family's original pipeline."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE())
    byte_level_post = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    if name == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.post_processor = byte_level_post
    elif name == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif name == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    elif name == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tok.post_processor = byte_level_post
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec["vocab_size"], special_tokens=spec["specials"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    if spec.get("user_defined"):
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec["user_defined"]])
    data = json.loads(tok.to_str())
    if name == "llama3":
        # Llama 3: ignore_merges, and BOS by a TemplateProcessing after ByteLevel, as Meta-Llama-3's tokenizer.json.
        data["model"]["ignore_merges"] = True
        assert "Ġzebra" not in data["model"]["vocab"]
        ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data["added_tokens"]]
        data["model"]["vocab"]["Ġzebra"] = max(ids) + 1  # a whole word without merges: ignore_merges matters
        bos = "<|begin_of_text|>"
        bos_id = data["model"]["vocab"][bos]
        data["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}]}
    if name == "gpt2":
        data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]  # GPT-2's legacy "a b" merges
    return data


def save_original(name, spec, directory):
    data = train(name, spec)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 8192}
    config.update(spec["config"])
    added = {}
    for t in data["added_tokens"]:
        added[str(t["id"])] = {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
    config["added_tokens_decoder"] = added
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    if spec.get("padded_vocab"):
        # Qwen2's config.json gives a vocab_size past the tokenizer's and the ids of bos/eos; llama.cpp reads both.
        n = max(list(data["model"]["vocab"].values()) + [t["id"] for t in data["added_tokens"]]) + 1
        vocab = data["model"]["vocab"]
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
            json.dump({"vocab_size": n + spec["padded_vocab"], "bos_token_id": vocab["<|endoftext|>"],
                       "eos_token_id": vocab["<|im_end|>"]}, f, indent=1)
            f.write("\n")
    return data


def does_token_look_special(token):
    """convert_hf_to_gguf.py TextModel.does_token_look_special."""
    seems_special = token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
    seems_special = seems_special or (token.startswith("<|") and token.endswith("|>"))
    seems_special = seems_special or (token.startswith("<｜") and token.endswith("｜>"))
    seems_special = seems_special or (token.startswith("<unused") and token.endswith(">"))
    return seems_special


def get_vocab_base(directory):
    """convert_hf_to_gguf.py TextModel.get_vocab_base (llama.cpp master, 2025), without the chkhsh lookup."""
    import gguf
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(directory)
    hparams = {}
    if os.path.exists(os.path.join(directory, "config.json")):
        with open(os.path.join(directory, "config.json")) as f:
            hparams = json.load(f)
    vocab_size = hparams.get("vocab_size", len(tokenizer.vocab))
    assert max(tokenizer.vocab.values()) < vocab_size
    reverse_vocab = {id_: encoded_tok for encoded_tok, id_ in tokenizer.vocab.items()}
    added_vocab = tokenizer.get_added_vocab()
    added_tokens_decoder = tokenizer.added_tokens_decoder
    tokens, toktypes = [], []
    for i in range(vocab_size):
        if i not in reverse_vocab:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
        else:
            token = reverse_vocab[i]
            if token in added_vocab:
                if not added_tokens_decoder[i].normalized:
                    token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
                if added_tokens_decoder[i].special or does_token_look_special(token):
                    toktypes.append(gguf.TokenType.CONTROL)
                else:
                    token = token.replace(b"\xe2\x96\x81".decode("utf-8"), " ")
                    toktypes.append(gguf.TokenType.USER_DEFINED)
            else:
                toktypes.append(gguf.TokenType.NORMAL)
            tokens.append(token)
    return tokens, toktypes


def write_gguf(directory, pre, path):
    """convert_hf_to_gguf.py TextModel._set_vocab_gpt2, into a GGUF with only metadata (plus the llama.* keys
    llama.cpp needs to load a vocabulary)."""
    import gguf
    tokens, toktypes = get_vocab_base(directory)
    writer = gguf.GGUFWriter(path, "llama")
    for key, value in [("context_length", 64), ("embedding_length", 8), ("block_count", 1),
                       ("feed_forward_length", 16), ("attention.head_count", 1)]:
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(toktypes)
    special_vocab = gguf.SpecialVocab(directory, load_merges=True)
    special_vocab.add_to_gguf(writer, quiet=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_metadata(path):
    """The tokenizer.* metadata of a GGUF, in file order, with GGUF types."""
    from gguf import GGUFReader, GGUFValueType
    reader = GGUFReader(path)
    entries = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        types = [GGUFValueType(t).name.lower() for t in field.types]
        value = field.contents()
        if types[0] == "array":
            entries.append({"key": key, "type": "array", "element_type": types[-1], "value": value})
        else:
            entries.append({"key": key, "type": types[0], "value": value})
    return {"entries": entries}


def write_json(path, data, indent=None):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=indent, sort_keys=False, separators=None if indent else (",", ":"))
        f.write("\n")


LLAMA_CPP_TOKENIZE = """
import json, sys
import llama_cpp
texts = json.load(sys.stdin)
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
json.dump([llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts], sys.stdout)
"""


def llama_cpp_ids(gguf_path, texts):
    """llama.cpp's ids (parse_special true, no BOS), from llama-cpp-python in this interpreter or in the one
    $LLAMA_CPP_PYTHON names (default /root/.cache/cairn-peers/llama-venv/bin/python); None when neither has it."""
    import subprocess
    python = sys.executable
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        python = os.environ.get("LLAMA_CPP_PYTHON", "/root/.cache/cairn-peers/llama-venv/bin/python")
        if not os.path.exists(python):
            return None
    result = subprocess.run([python, "-c", LLAMA_CPP_TOKENIZE, gguf_path], input=json.dumps(texts),
                            capture_output=True, text=True)
    if result.returncode != 0:
        print("  llama.cpp failed:", result.stderr.strip()[-500:])
        return None
    return json.loads(result.stdout)


def report(label, texts, want, got):
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    print(f"  {label}: {len(texts) - len(bad)}/{len(texts)} lines agree")
    for t, w, g in bad[:4]:
        print(f"    {t[:60]!r}\n      original {w[:24]}\n      {label[:8]:8} {g[:24]}")
    return len(bad)


def make():
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    lines = corpus_lines()
    corpus = "\n".join(lines) + "\n"
    expected = {"lines": lines, "tokenizers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in SPECS.items():
            directory = os.path.join(HERE, "original", name)
            data = save_original(name, spec, directory)
            gguf_path = os.path.join(tmp, name + ".gguf")
            write_gguf(directory, spec["pre"], gguf_path)
            write_json(os.path.join(HERE, name + ".metadata.json"), read_metadata(gguf_path))
            tok = Tokenizer.from_str(json.dumps(data))
            auto = AutoTokenizer.from_pretrained(directory)
            ids = [tok.encode(line, add_special_tokens=False).ids for line in lines]
            entry = {"pre": spec["pre"], "ids": ids,
                     "corpus_ids": tok.encode(corpus, add_special_tokens=False).ids,
                     "ids_with_special_tokens": [auto.encode(line, add_special_tokens=True) for line in lines]}
            expected["tokenizers"][name] = entry
            # The other converters, for the record.
            print(f"{name} (pre {spec['pre']!r}):")
            hf_gguf = AutoTokenizer.from_pretrained(tmp, gguf_file=name + ".gguf")
            report("transformers gguf_file", lines, ids, [hf_gguf.encode(t, add_special_tokens=False) for t in lines])
            llama = llama_cpp_ids(gguf_path, lines)
            if llama is not None:
                report("llama.cpp", lines, ids, llama)
            else:
                print("  llama.cpp: not compared")
    write_json(os.path.join(HERE, "expected.json"), expected)
    print("wrote", ", ".join(sorted(os.listdir(HERE))))


# MARK: SmolLM2

def smollm2_lines():
    return corpus_lines() + [
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
        "<|im_start|>user\nWrite a Python function that sums 1..100.<|im_end|>\n<|im_start|>assistant\n",
        "<jupyter_code>import numpy as np\nx = np.arange(10)<jupyter_output>[0 1 2 3 4 5 6 7 8 9]<empty_output>",
        "<issue_start>Bug #1234: crash on 0x7fff<issue_comment>Fixed in v2.0.1<issue_closed>",
        "<gh_stars>1000<filename>src/lib.rs\nfn main() { println!(\"{}\", 6 * 7); }",
        "    \n\n\t\t   \u3000\u00a0x",
        "emoji 🦙🦙 ✅ 😶\u200d🌫️ and CJK 我想在apple工作1314151天～",
        "Hello, we can use", "Hello world! 123", "  multiple   spaces", "Café déjà vu.",
    ]


def smollm2_metadata(directory, gguf_path):
    os.makedirs(directory, exist_ok=True)
    metadata = read_metadata(gguf_path)
    metadata["lines"] = smollm2_lines()  # the texts the Swift test encodes for --smollm2-expected
    write_json(os.path.join(directory, "smollm2.metadata.json"), metadata)
    print("wrote", os.path.join(directory, "smollm2.metadata.json"))


def reference_smollm2(gguf_path):
    """SmolLM2's tokenizer.json as HuggingFaceTB ships it (Digits(individual) + ByteLevel, ByteLevel
    post-processor and decoder, 17 special added tokens), built from the GGUF's vocabulary and merges."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer
    reader = GGUFReader(gguf_path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, (t, k) in enumerate(zip(tokens, types)) if k == 3],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [m.split(" ", 1) for m in merges]},
    }
    return Tokenizer.from_str(json.dumps(data))


def smollm2_expected(directory, gguf_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    converted = os.path.join(directory, "smollm2")
    lines = smollm2_lines()
    corpus = "\n".join(lines) + "\n"
    tok = Tokenizer.from_file(os.path.join(converted, "tokenizer.json"))
    ids = [tok.encode(t, add_special_tokens=False).ids for t in lines]
    auto = AutoTokenizer.from_pretrained(converted)
    print(f"SmolLM2: Cairn's tokenizer.json loaded by tokenizers; AutoTokenizer {type(auto).__name__} "
          f"(bos {auto.bos_token!r}, eos {auto.eos_token!r}, pad {auto.pad_token!r}, unk {auto.unk_token!r})")
    mismatches = report("AutoTokenizer on Cairn's directory", lines, ids,
                        [auto.encode(t, add_special_tokens=False) for t in lines])
    with_special = [auto.encode(t, add_special_tokens=True) for t in lines]
    mismatches += report("add_special_tokens=True adds nothing", lines, ids, with_special)
    reference = reference_smollm2(gguf_path)
    mismatches += report("reference SmolLM2 tokenizer.json", lines, ids,
                         [reference.encode(t, add_special_tokens=False).ids for t in lines])
    hf_gguf = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    report("transformers gguf_file", lines, ids, [hf_gguf.encode(t, add_special_tokens=False) for t in lines])
    llama = llama_cpp_ids(gguf_path, lines)
    if llama is not None:
        report("llama.cpp", lines, ids, llama)
    else:
        print("  llama.cpp: not compared")
    cairn_path = os.path.join(converted, "cairn_ids.json")
    if os.path.exists(cairn_path):
        with open(cairn_path, encoding="utf-8") as f:
            cairn = json.load(f)
        by_text = dict(zip(cairn["texts"], cairn["ids"]))
        mismatches += report("Cairn", lines, ids, [by_text.get(t) for t in lines])
    chat = [{"role": "user", "content": "What is 12+30?"}, {"role": "assistant", "content": "42"}]
    expected = {
        "gguf": os.path.basename(gguf_path), "lines": lines, "ids": ids,
        "corpus_ids": tok.encode(corpus, add_special_tokens=False).ids,
        "chat": {"messages": chat,
                 "rendered": auto.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)},
    }
    write_json(os.path.join(HERE, "smollm2_expected.json"), expected)
    print("wrote smollm2_expected.json;", mismatches, "mismatches")
    return 1 if mismatches else 0


def check_cairn(directory):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    mismatches = 0
    for name in sorted(os.listdir(directory)):
        sub = os.path.join(directory, name)
        if not os.path.exists(os.path.join(sub, "cairn_ids.json")):
            continue
        with open(os.path.join(sub, "cairn_ids.json"), encoding="utf-8") as f:
            cairn = json.load(f)
        tok = Tokenizer.from_file(os.path.join(sub, "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(sub)
        print(f"{name}: AutoTokenizer {type(auto).__name__} (bos {auto.bos_token!r}, eos {auto.eos_token!r}, "
              f"pad {auto.pad_token!r}, unk {auto.unk_token!r}, chat template {auto.chat_template is not None})")
        texts = cairn["texts"]
        mismatches += report("tokenizers", texts, cairn["ids"], [tok.encode(t, add_special_tokens=False).ids for t in texts])
        mismatches += report("AutoTokenizer", texts, cairn["ids"], [auto.encode(t, add_special_tokens=False) for t in texts])
        mismatches += report("AutoTokenizer add_special_tokens", texts, cairn["ids_with_special_tokens"],
                             [auto.encode(t, add_special_tokens=True) for t in texts])
    print(mismatches, "mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    gguf_path = SMOLLM2_GGUF
    if "--gguf" in args:
        i = args.index("--gguf")
        gguf_path = args[i + 1]
        del args[i:i + 2]
    if not args:
        make()
    elif len(args) == 2 and args[0] == "--smollm2-metadata":
        smollm2_metadata(args[1], gguf_path)
    elif len(args) == 2 and args[0] == "--smollm2-expected":
        sys.exit(smollm2_expected(args[1], gguf_path))
    elif len(args) == 2 and args[0] == "--check-cairn":
        sys.exit(check_cairn(args[1]))
    else:
        sys.exit(__doc__)
