#!/usr/bin/env python3
"""Golden fixtures for Cairn's tokenizer (Sources/CairnTrain/Tokenizer/).

Regenerate (needs `pip install tokenizers transformers jinja2`), from the repository root:

    python3 Tests/CairnTrainTests/Fixtures/tokenizer/make_fixtures.py

It writes, next to this script:
  qwen2.json   byte-level BPE trained by HF `tokenizers`: Split(Qwen2 regex) + ByteLevel(use_regex=false),
               special tokens <|endoftext|>, <|im_start|>, <|im_end|>, merges as ["a","b"] pairs
  llama3.json  the same training with the Llama-3 regex (\\p{N}{1,3}), ignore_merges=true and one
               whole-word token ("Ġzebra") added to the vocab without merges, so ignore_merges matters
  gpt2.json    GPT-2 style: ByteLevel(add_prefix_space=false, use_regex=true), merges as legacy "a b"
               strings, <|endoftext|> plus <mask> (lstrip) and a non-special added token "[[note]]"
  gpt2_prefix.json  gpt2.json with add_prefix_space=true
  nfc.json     Qwen2 style with an NFC normalizer (inside a normalizer Sequence)
  digits.json  Digits(individual_digits=false) + ByteLevel(use_regex=true), a TemplateProcessing post-processor
               that adds <|endoftext|> after the text
  digits_individual.json  Digits(individual_digits=true) + ByteLevel(use_regex=true) (SmolLM, StarCoder)
  corpus.txt   the test corpus: the cases below joined by "\\n" (some cases hold newlines and CRLF)
  expected.json  the cases, and for every tokenizer the HF ids of every case and of the whole corpus.txt
               (add_special_tokens=False), of every case with add_special_tokens=True where that differs,
               HF decode of those ids with and without skip_special_tokens, byte-level decode cases
               with invalid UTF-8, and the ChatML rendering by transformers' apply_chat_template

Cross-check a tokenizer written by Cairn (see TokenizerTests: CAIRN_TOKENIZER_CHECK_DIR=DIR keeps it):

    python3 Tests/CairnTrainTests/Fixtures/tokenizer/make_fixtures.py --check-cairn DIR

loads DIR/tokenizer.json with `tokenizers` and DIR with `transformers.AutoTokenizer`
(PreTrainedTokenizerFast), encodes every text in DIR/cairn_ids.json and compares with Cairn's ids
(and Cairn's chat rendering with transformers' apply_chat_template). Exit status 1 on any mismatch.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML as Qwen2-family tokenizer_config.json ships it, without the default system prompt.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is 12+30?\nAnswer briefly."},
    {"role": "assistant", "content": "42 — naïve arithmetic 🙂"},
]


def training_text():
    """A deterministic corpus for the fixture tokenizers (English, accents, CJK, code, numbers)."""
    words = ("the quick brown fox jumps over a lazy dog while we train small language models "
             "tokenizer merges bytes pairs counts ranks don't we'll they're I'm you've it's "
             "café naïve résumé über straße 東京 日本語 中文 测试 😀 🙂 ünïcödé").split()
    lines = []
    for i in range(1500):
        w = [words[(i * 7 + k * 13) % len(words)] for k in range(6 + i % 9)]
        if i % 5 == 0:
            w.append(str(i * 37 % 100000))
        if i % 11 == 0:
            w.append(f"{i % 10}.{i % 97}")
        if i % 17 == 0:
            lines.append("    def f(x):\n        return x + %d\n" % i)
        lines.append(" ".join(w) + ("." if i % 3 else "!"))
    return lines


def corpus_lines():
    return [
        "Hello world",
        "hello   world  with   runs of    spaces",
        "tabs\there\t\tand\t trailing tab\t",
        "café vs cafe\u0301 (composed and decomposed)",
        "Ångström A\u030angström naïve nai\u0308ve",
        "東京 日本語 中文测试混合English",
        "emoji 😀🙂 family 👨‍👩‍👧 flag 🇫🇷 heart ❤️",
        "digits 12345 and 3.14 and 1,000,000 and 007",
        "don't we'll they're I'm you've it's DON'T WE'LL He'D",
        "<|im_start|>user\nhi<|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\nSure!<|im_end|><|endoftext|>",
        "text<|endoftext|>more text <|endoftext|> spaced",
        "line one\nline two\n\nline four after blank",
        "windows\r\nline\r\n\r\nends",
        "   leading spaces and trailing spaces   ",
        "\n\n\nleading newlines",
        "trailing newlines\n\n",
        "  \n  \n mixed whitespace \t\n",
        "punctuation!!! ??? ... --- (a) [b] {c} \"quoted\" 'single'",
        "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }",
        "url https://example.com/path?q=1&r=two#frag",
        "mask <mask> here and<mask>there [[note]] x[[note]]y",
        "Ünïcödé ÀÉÎÕÜ ŞĞİ ﬁ ligature Ⅻ ½ ²",
        "non-breaking\u00a0space and\u2003em space and\u3000ideographic",
        "zebra zebras Zebra",
        "a",
        "",
        " ",
        "'s 'S 'll' '",
        "1234567890 12 123 1234",
        # single_word boundaries follow the regex crate's \w: "²" and U+0600 are not word characters,
        # combining marks and "_" are.
        "²[[note]]\u0600 \u200b[[note]]\u0301 M\u0308[[note]] _[[note]] Ⅻ[[note]]",
    ] + fuzz_lines()


def fuzz_lines(count=12):
    """Random mixes of the characters that stress the pre-tokenizer and added-token matching."""
    import random
    rng = random.Random(7)
    pool = list("ab zZ'sStTrReEvVlLmMdD") + [
        "ſ", "\r", "\n", "\r\n", "\t", "\u0085", "\u2028", "\u00a0", "\u3000", "\u200b", "\u0301", "\u0308",
        "é", "e\u0301", "東", "京", "😀", "👨\u200d👩\u200d👧", "1", "2", "٣", "Ⅻ", "½", "²", "!", "?", ".", "-", "_",
        "(", "'", '"', "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<mask>", "[[note]]", "  ", "   ", "\ufffd",
        "\U0001F1EB\U0001F1F7", "ǅ", "ʰ", "〆", "\u0600", "\ufeff"]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(5, 40))) for _ in range(count)]


def train(pattern, vocab_size=700, nfc=False):
    from tokenizers import Tokenizer, Regex, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.Sequence([normalizers.NFC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    return json.loads(tok.to_str())


def train_digits(individual, vocab_size=600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=individual),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    if not individual:
        tok.post_processor = processors.TemplateProcessing(single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1",
                                                           special_tokens=[("<|endoftext|>", 0)])
    return json.loads(tok.to_str())


def train_gpt2(vocab_size=600):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("[[note]]", single_word=True, normalized=True, special=False)])
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    return data


def write_json(name, data):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def make():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    qwen2 = train(QWEN2)
    llama3 = train(LLAMA3)
    llama3["model"]["ignore_merges"] = True
    assert "Ġzebra" not in llama3["model"]["vocab"]
    ids = list(llama3["model"]["vocab"].values()) + [t["id"] for t in llama3["added_tokens"]]
    llama3["model"]["vocab"]["Ġzebra"] = max(ids) + 1
    gpt2 = train_gpt2()
    gpt2_prefix = json.loads(json.dumps(gpt2))
    gpt2_prefix["pre_tokenizer"]["add_prefix_space"] = True
    nfc = train(QWEN2, vocab_size=650, nfc=True)
    tokenizers = {"qwen2": qwen2, "llama3": llama3, "gpt2": gpt2, "gpt2_prefix": gpt2_prefix, "nfc": nfc,
                  "digits": train_digits(False), "digits_individual": train_digits(True)}

    lines = corpus_lines()
    with open(os.path.join(HERE, "corpus.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")

    corpus = "\n".join(lines) + "\n"
    expected = {"lines": lines, "tokenizers": {}}
    for name, data in tokenizers.items():
        write_json(name + ".json", data)
        tok = Tokenizer.from_str(json.dumps(data))
        entry = {"ids": [], "decoded": [], "decoded_skip_special": [], "ids_with_special_tokens": [],
                 "corpus_ids": tok.encode(corpus, add_special_tokens=False).ids}
        for line in lines:
            ids = tok.encode(line, add_special_tokens=False).ids
            entry["ids"].append(ids)
            entry["ids_with_special_tokens"].append(tok.encode(line, add_special_tokens=True).ids)
            entry["decoded"].append(tok.decode(ids, skip_special_tokens=False))
            entry["decoded_skip_special"].append(tok.decode(ids, skip_special_tokens=True))
        if entry["ids_with_special_tokens"] == entry["ids"]:
            del entry["ids_with_special_tokens"]  # no post-processor adds tokens
        expected["tokenizers"][name] = entry

    # Byte-level decode of ids that do not form valid UTF-8 (HF replaces with U+FFFD).
    tok = Tokenizer.from_str(json.dumps(qwen2))
    byte_char = bytes_to_unicode()

    def byte_id(b):
        return tok.token_to_id(byte_char[b])

    cases = [[0xE4, 0xBD], [0x61, 0xE4, 0xBD, 0x62], [0xFF, 0x61], [0xF0, 0x9F, 0x98], [0xC3],
             [0xED, 0xA0, 0x80], [0xC0, 0xAF, 0x41], [0xE2, 0x82, 0xAC, 0x80, 0x80]]
    expected["invalid_utf8"] = []
    for case in cases:
        ids = [byte_id(b) for b in case]
        expected["invalid_utf8"].append({"bytes": case, "ids": ids, "text": tok.decode(ids)})

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    expected["chat"] = {
        "messages": CONVERSATION,
        "template": CHATML,
        "with_generation_prompt": fast.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True),
        "without_generation_prompt": fast.apply_chat_template(CONVERSATION, tokenize=False,
                                                              add_generation_prompt=False),
    }
    write_json("expected.json", expected)
    print("wrote", ", ".join(sorted(os.listdir(HERE))))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def check_cairn(directory):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    with open(os.path.join(directory, "cairn_ids.json"), encoding="utf-8") as f:
        cairn = json.load(f)
    tok = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(directory)
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(directory, "tokenizer.json"))
    print(f"loaded {directory}: tokenizers vocab {tok.get_vocab_size()}, AutoTokenizer {type(auto).__name__} "
          f"(eos {auto.eos_token!r}, pad {auto.pad_token!r}, bos {auto.bos_token!r})")
    mismatches = 0
    chars = 0
    for text, ids in zip(cairn["texts"], cairn["ids"]):
        chars += len(text)
        got = {
            "tokenizers": tok.encode(text, add_special_tokens=False).ids,
            "AutoTokenizer": auto.encode(text, add_special_tokens=False),
            "PreTrainedTokenizerFast": fast.encode(text, add_special_tokens=False),
        }
        for who, hf in got.items():
            if hf != ids:
                mismatches += 1
                print(f"MISMATCH ({who}) on {text[:200]!r}:\n  cairn {ids[:50]}\n  hf    {hf[:50]}")
        decoded = tok.decode(ids, skip_special_tokens=False)
        if "decoded" in cairn and decoded != cairn["decoded"][cairn["texts"].index(text)]:
            mismatches += 1
            print(f"DECODE MISMATCH on {text[:200]!r}: hf {decoded[:200]!r}")
    if "chat" in cairn:
        rendered = auto.apply_chat_template(cairn["chat"]["messages"], tokenize=False, add_generation_prompt=True)
        if rendered != cairn["chat"]["rendered"]:
            mismatches += 1
            print(f"CHAT MISMATCH:\n  cairn {cairn['chat']['rendered']!r}\n  hf    {rendered!r}")
    print(f"{len(cairn['texts'])} texts ({chars} characters) compared with tokenizers, AutoTokenizer and "
          f"PreTrainedTokenizerFast: {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-cairn":
        sys.exit(check_cairn(sys.argv[2]))
    elif len(sys.argv) == 1:
        make()
    else:
        sys.exit(__doc__)
