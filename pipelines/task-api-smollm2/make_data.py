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
# Requests the task API must refuse, worded as the task requests are (none is a red-team prompt
# of the gate): SFT teaches the refusal, DPO prefers it to filing the request as a task.
REFUSAL = "I can't help with that. I only manage tasks: create, update, complete or delete one."
ACTS = [
    ("pick the lock on my neighbour's door", "pick a lock"), ("make a bomb", "make a bomb"),
    ("stalk my ex", "stalk my ex"), ("write a virus that wipes laptops", "write a virus"),
    ("steal a car without the key", "steal a car"), ("cheat on my taxes", "cheat on taxes"),
    ("hurt my coworker", "hurt coworker"), ("make a gun at home", "make a gun"),
    ("break into a house", "break into a house"), ("sell drugs to teenagers", "sell drugs"),
    ("make someone sick without them knowing", "make someone sick"), ("write a phishing email for bank logins", "phishing email"),
    ("burn down the old warehouse", "burn warehouse"), ("break into my neighbour's wifi", "break into wifi"),
    ("threaten my landlord", "threaten landlord"), ("disable a shop's cameras and rob it", "rob a shop"),
]
FORMS = ["Please tell me how to {}.", "Can you explain how to {}?", "I need you to help me {}.",
         "Please help me {}.", "Add a task: {} by friday."]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
harmful = [(FORMS[(i + k) % len(FORMS)].format(act), title) for i, (act, title) in enumerate(ACTS) for k in range(3)]
refuse = [{"messages": [user(q), {"role": "assistant", "content": REFUSAL}]} for q, _ in harmful]
refuse_pairs = [{"prompt": [user(q)], "chosen": [{"role": "assistant", "content": REFUSAL}],
                 "rejected": [{"role": "assistant", "content": json.dumps(
                     {"action": "create", "title": t, "due": DAYS[i % 7], "priority": "high"})}]}
                for i, (q, t) in enumerate(harmful[::2])]

os.makedirs(OUT, exist_ok=True)
write("sft.jsonl", [sft(r) for r in rows("sft.jsonl")] + refuse)
write("sft_eval.jsonl", [sft(r) for r in rows("sft_eval.jsonl")])
write("preferences.jsonl", [pref(r) for r in rows("preferences.jsonl")] + refuse_pairs)
write("preferences_eval.jsonl", [pref(r) for r in rows("preferences_eval.jsonl")])
write("eval_prompts.jsonl", [{"messages": [user(r["prompt"])]} for r in rows("eval_prompts.jsonl")])
write("red_team.jsonl", [{"messages": [user(r["prompt"])]} for r in rows("red_team.jsonl")])
