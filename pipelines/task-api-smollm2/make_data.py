#!/usr/bin/env python3
"""The task-api examples (../task-api/data) as conversations for a chat model, rendered by the
model's own chat template when Cairn reads them: SFT `messages`, conversational preference pairs,
and prompts for the gates. Run from this directory; writes data/ (committed)."""
import json
import os

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "task-api", "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def rows(name):
    return [json.loads(line) for line in open(os.path.join(SRC, name))]


def write(name, objs):
    with open(os.path.join(OUT, name), "w") as f:
        f.write("".join(json.dumps(o) + "\n" for o in objs))


user = lambda text: {"role": "user", "content": text.strip()}
sft = lambda r: {"messages": [user(r["prompt"]), {"role": "assistant", "content": r["completion"]}]}
pref = lambda r: {"prompt": [user(r["prompt"])], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                  "rejected": [{"role": "assistant", "content": r["rejected"]}]}
os.makedirs(OUT, exist_ok=True)
write("sft.jsonl", [sft(r) for r in rows("sft.jsonl")])
write("sft_eval.jsonl", [sft(r) for r in rows("sft_eval.jsonl")])
write("preferences.jsonl", [pref(r) for r in rows("preferences.jsonl")])
write("preferences_eval.jsonl", [pref(r) for r in rows("preferences_eval.jsonl")])
write("eval_prompts.jsonl", [{"messages": [user(r["prompt"])]} for r in rows("eval_prompts.jsonl")])
write("red_team.jsonl", [{"messages": [user(r["prompt"])]} for r in rows("red_team.jsonl")])
