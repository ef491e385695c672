#!/usr/bin/env python3
"""Golden trainer fixtures for CairnTrain: AdamW, LR schedules, DPO losses, grad-norm clipping.

Regenerate (from the repository root):

    python3 Tests/CairnTrainTests/Fixtures/trainers/make_fixtures.py

Generated with: Python 3.11.7, torch 2.13.0+cpu, transformers 5.23.0, peft 0.21.2,
trl 1.16.0 (installed with `pip install trl==1.16.0 --no-deps`), safetensors 0.8.0, numpy 2.4.6.
The versions actually used are written into every JSON file ("generator").
Deterministic (fixed seeds, torch.set_num_threads(1)): two runs give byte-identical JSON.

Outputs (next to this script):
    adamw.json      torch.optim.AdamW (foreach=False, fused=False), 3 cases x 4 steps
    schedules.json  transformers linear / cosine / constant warmup schedules + warmup-steps rules
    dpo.json        TRL 1.16.0 DPO losses, metrics and d(mean loss)/d(policy logps), float64
    clip.json       torch.nn.utils.clip_grad_norm_
(accumulation.json is intentionally not generated.)

DPO: TRL 1.16.0 has no standalone `dpo_loss`; the loss is inline in
`DPOTrainer._compute_loss` (trl/trainer/dpo_trainer.py).  This script does NOT import
trl (its import needs `datasets`/pyarrow); it extracts the source of that method with `ast`
from the installed file and executes the real TRL lines on a stub trainer / stub model
whose per-token log-probs sum to the fixture's per-example log-probs.  An independent
float64 port of the formulas cross-checks every number (max abs diff must be < 1e-12).

Other modes:

    # Compare a merged model with base + adapter (PeftModel.from_pretrained), fp32, eager
    # attention; prints max |logits difference|; exit status 1 if > 1e-4 (--tol).
    python3 make_fixtures.py --check-merged MERGED_DIR BASE_DIR ADAPTER_DIR [--ids 3,4,5,...]

    # Self-test of --check-merged: merges ADAPTER_DIR into BASE_DIR into temp dirs (PEFT
    # merge_and_unload -> must pass; manual merge with scale alpha/r -> must pass; manual
    # merge with the wrong scale alpha -> must fail) and runs --check-merged on each.
    python3 make_fixtures.py --selftest-check-merged BASE_DIR ADAPTER_DIR
"""

import argparse
import ast
import hashlib
import importlib.metadata as md
import importlib.util
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections import defaultdict
from types import SimpleNamespace

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- helpers
def versions():
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "trl", "numpy", "safetensors"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def fl(t):
    """Tensor -> nested list of Python floats (exact value of the stored float32/float64)."""
    return t.detach().to(torch.float64).tolist()


def _dump(o, ind):
    pad = " " * ind
    if isinstance(o, dict):
        if not o:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {_dump(v, ind + 1)}' for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in o):
            return "[" + ", ".join(_dump(x, 0) for x in o) + "]"
        if all(isinstance(x, (list, tuple)) and all(not isinstance(y, (dict, list, tuple)) for y in x) for x in o):
            return "[" + ", ".join(_dump(x, 0) for x in o) + "]"
        return "[\n" + ",\n".join(pad + " " + _dump(x, ind + 1) for x in o) + "\n" + pad + "]"
    if isinstance(o, float):
        if not math.isfinite(o):
            raise ValueError("non-finite float in fixture")
        return repr(o)
    return json.dumps(o)


def write_json(name, obj):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        f.write(_dump(obj, 0) + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def seeded_normal(seed, shape, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


# ----------------------------------------------------------------------------- 1. AdamW
def make_adamw():
    cases = []
    specs = [
        dict(name="a_lr1e-3_b0.9_0.999_eps1e-8_wd0.01", lr=1e-3, betas=(0.9, 0.999), eps=1e-8, wd=0.01, lrs=None),
        dict(name="b_lr5e-2_b0.8_0.95_eps1e-6_wd0", lr=5e-2, betas=(0.8, 0.95), eps=1e-6, wd=0.0, lrs=None),
        # per-step lr driven by transformers.get_linear_schedule_with_warmup(base 1e-2, warmup 3, total 20):
        # the first step runs with lr 0 (weight decay and update are no-ops but the moments still update).
        dict(name="c_scheduled_lr_linear_warmup_base1e-2_b0.9_0.999_eps1e-8_wd0.01", lr=1e-2, betas=(0.9, 0.999),
             eps=1e-8, wd=0.01, lrs="linear_warmup"),
    ]
    for ci, s in enumerate(specs):
        p = torch.nn.Parameter(seeded_normal(100 + ci, (3, 4)))
        init = fl(p)
        opt = torch.optim.AdamW([p], lr=s["lr"], betas=s["betas"], eps=s["eps"], weight_decay=s["wd"],
                                foreach=False, fused=False)
        sched = None
        if s["lrs"] == "linear_warmup":
            from transformers import get_linear_schedule_with_warmup
            sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=20)
        steps = []
        for k in range(4):
            g = seeded_normal(1000 + 10 * ci + k, (3, 4))
            if k == 2:
                g = g * 10.0  # one large-gradient step
            p.grad = g.clone()
            lr_used = opt.param_groups[0]["lr"]
            opt.step()
            st = opt.state[p]
            steps.append({"step": k + 1, "lr": lr_used, "grad": fl(g), "param": fl(p),
                          "exp_avg": fl(st["exp_avg"]), "exp_avg_sq": fl(st["exp_avg_sq"]),
                          "state_step": float(st["step"])})
            if sched is not None:
                sched.step()
        cases.append({"name": s["name"], "lr": s["lr"], "betas": list(s["betas"]), "eps": s["eps"],
                      "weight_decay": s["wd"], "amsgrad": False, "maximize": False,
                      "per_step_lr": [st["lr"] for st in steps], "shape": [3, 4], "param_init": init,
                      "steps": steps})
    return {
        "generator": versions(),
        "description": "torch.optim.AdamW (real class, foreach=False, fused=False), float32 parameter of shape "
                       "(3,4); after each optimizer.step() the parameter and optimizer.state exp_avg, exp_avg_sq "
                       "(float32 values written as exact Python floats). 'lr' in each step is "
                       "param_groups[0]['lr'] at the moment of that step. Grad of step 3 is scaled x10.",
        "algorithm_torch_2_13_single_tensor": [
            "step += 1  (state 'step' is a float32 tensor; read back as a Python float)",
            "param *= (1 - lr*weight_decay)            # decoupled decay, scalar computed in float64, applied in float32",
            "exp_avg.lerp_(grad, 1-beta1)              # CPU lerp: w<0.5 ? m + w*(g-m) : g - (g-m)*(1-w)",
            "exp_avg_sq = exp_avg_sq*beta2 + (1-beta2)*grad*grad   # mul_(beta2).addcmul_(grad, grad, value=1-beta2)",
            "bias_correction1 = 1 - beta1**step ; bias_correction2 = 1 - beta2**step   # Python float64",
            "step_size = lr / bias_correction1 ; bias_correction2_sqrt = bias_correction2**0.5",
            "denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps",
            "param += -step_size * exp_avg / denom     # addcdiv_(exp_avg, denom, value=-step_size)",
        ],
        "cases": cases,
    }


# ----------------------------------------------------------------------------- 2. schedules
def make_schedules():
    import transformers
    from transformers import (TrainingArguments, get_constant_schedule_with_warmup,
                              get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup)
    base_lr, warm, total = 2e-4, 3, 20
    makers = {
        "linear": lambda o: get_linear_schedule_with_warmup(o, num_warmup_steps=warm, num_training_steps=total),
        "cosine": lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=warm, num_training_steps=total,
                                                            num_cycles=0.5),
        "constant_with_warmup": lambda o: get_constant_schedule_with_warmup(o, num_warmup_steps=warm),
    }
    scheds = {}
    for name, mk in makers.items():
        p = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.AdamW([p], lr=base_lr)
        sch = mk(opt)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.zeros(2)
            opt.step()
            sch.step()
        scheds[name] = {"lr_per_optimizer_step": lrs, "lr_after_last_scheduler_step": opt.param_groups[0]["lr"]}

    # warmup-steps rules of TrainingArguments
    tmp = tempfile.mkdtemp(prefix="cairn_ta_")
    ratio = {}
    try:
        TrainingArguments(output_dir=tmp, warmup_ratio=0.1, report_to="none")
        ratio["warmup_ratio_kwarg"] = "accepted"
    except TypeError as e:
        ratio["warmup_ratio_kwarg"] = f"rejected: TypeError: {e}"
    rules = {}
    for ws in (0.1, 3, 1.0, 0.5):
        a = TrainingArguments(output_dir=tmp, warmup_steps=ws, report_to="none")
        rules[f"warmup_steps={ws!r}"] = {str(n): a.get_warmup_steps(n) for n in (20, 25, 7)}
    os.rmdir(tmp) if os.path.isdir(tmp) and not os.listdir(tmp) else None
    src = inspect.getsource(TrainingArguments.get_warmup_steps)
    return {
        "generator": versions(),
        "protocol": "For each of the 20 optimizer steps: lr = optimizer.param_groups[0]['lr'] is read BEFORE "
                    "optimizer.step(), then scheduler.step() is called AFTER it. lr_per_optimizer_step[i] is the lr "
                    "used by optimizer step i+1 (i = 0..19), i.e. base_lr * lr_lambda(i). Note step 1 uses lr 0.",
        "base_lr": base_lr, "num_warmup_steps": warm, "num_training_steps": total, "cosine_num_cycles": 0.5,
        "lr_lambda_source_transformers_optimization_py": {
            "linear": "s < W ? s/max(1,W) : max(0, (T-s)/max(1, T-W))",
            "cosine": "s < W ? s/max(1,W) : max(0, 0.5*(1 + cos(pi*num_cycles*2*(s-W)/max(1,T-W))))",
            "constant_with_warmup": "s < W ? s/max(1.0,W) : 1.0",
        },
        "schedules": scheds,
        "warmup_steps_from_ratio": {
            "finding": "transformers 5.23.0 REMOVED TrainingArguments.warmup_ratio (passing it raises TypeError). "
                       "Its replacement is warmup_steps accepting a float: a value in [0,1) is a ratio of total "
                       "steps, converted with math.ceil(num_training_steps * warmup_steps); a value >= 1 is "
                       "truncated with int() (so warmup_steps=1.0 means 1 step, not 100%). Ratio 0.1 gives "
                       "20->2, 25->3 (ceil 2.5), 7->1 (ceil 0.7) - the same ceil rule transformers 4.x used for "
                       "warmup_ratio.",
            "warmup_ratio_kwarg_transformers_" + transformers.__version__: ratio["warmup_ratio_kwarg"],
            "get_warmup_steps_source": src.strip().splitlines()[-5:],
            "get_warmup_steps_results": rules,
        },
    }


# ----------------------------------------------------------------------------- 3. DPO
def trl_compute_loss_fn():
    spec = importlib.util.find_spec("trl")
    if spec is None:
        raise SystemExit("trl is not installed: pip install trl==1.16.0 --no-deps")
    path = os.path.join(spec.submodule_search_locations[0], "trainer", "dpo_trainer.py")
    text = open(path).read()
    tree = ast.parse(text)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DPOTrainer")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "_compute_loss")
    src = textwrap.dedent(ast.get_source_segment(text, fn))
    ns = {"torch": torch, "F": F, "math": math, "warnings": warnings,
          "disable_gradient_checkpointing": None, "use_adapter": None, "is_peft_model": None}
    exec(compile(src, path + ":DPOTrainer._compute_loss", "exec"), ns)
    info = {"file": "trl/trainer/dpo_trainer.py", "function": "DPOTrainer._compute_loss",
            "lines": [fn.lineno, fn.end_lineno], "file_sha256": hashlib.sha256(text.encode()).hexdigest()}
    return ns["_compute_loss"], info


class _Acc:
    device = torch.device("cpu")

    def gather(self, t):
        return t

    gather_for_metrics = gather

    def unwrap_model(self, m):
        return m


def run_trl(compute_loss, pc, pr, rc, rr, nc, nr, loss_type, beta, ls):
    """Run TRL's real _compute_loss lines on a stub trainer. Returns loss, metrics, grads."""
    B = len(pc)
    T = max(nc + nr) + 1
    # completion_mask: position 0 is a prompt token, positions 1..n are completion tokens
    cm = torch.zeros(2 * B, T, dtype=torch.long)
    for i, n in enumerate(list(nc) + list(nr)):
        cm[i, 1:1 + n] = 1
    # fused-LM-head output: per-token log-probs over the shifted sequence (T-1 positions);
    # the whole summed log-prob sits at the first position (zeros elsewhere) so the sum is exact.
    lp = torch.zeros(2 * B, T - 1, dtype=torch.float64)
    lp[:, 0] = torch.tensor(list(pc) + list(pr), dtype=torch.float64)
    lp.requires_grad_(True)
    out = SimpleNamespace(log_probs=lp, entropy=torch.zeros(2 * B, T - 1, dtype=torch.float64),
                          mean_logits=torch.zeros(2 * B, T - 1, dtype=torch.float64),
                          is_top1=torch.zeros(2 * B, T - 1, dtype=torch.bool))
    model = SimpleNamespace(training=True)
    self = SimpleNamespace(
        model=model, accelerator=_Acc(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", f_alpha_divergence_coef=1.0, loss_types=[loss_type], loss_weights=[1.0],
        beta=beta, label_smoothing=ls, use_weighting=False, args=SimpleNamespace(discopop_tau=0.05),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.ones(2 * B, T, dtype=torch.long), "attention_mask": torch.ones(2 * B, T, dtype=torch.long),
              "completion_mask": cm, "ref_chosen_logps": torch.tensor(rc, dtype=torch.float64),
              "ref_rejected_logps": torch.tensor(rr, dtype=torch.float64)}
    loss = compute_loss(self, lambda **kw: out, inputs, False)
    loss.backward()
    m = self._metrics["train"]
    names = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
             "logps/rejected"]
    return loss.item(), {k: m[k][0] for k in names}, lp.grad[:B, 0].tolist(), lp.grad[B:, 0].tolist()


def port_per_example(pc, pr, rc, rr, nc, nr, loss_type, beta, ls):
    """Independent float64 port (used only to cross-check, and for per-example losses)."""
    pc, pr, rc, rr = (torch.tensor(x, dtype=torch.float64) for x in (pc, pr, rc, rr))
    nc, nr = (torch.tensor(x, dtype=torch.float64) for x in (nc, nr))
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    cl, rl = pc - rc, pr - rr
    d = cl - rl
    if loss_type == "sigmoid":
        per = -F.logsigmoid(beta * d)
    elif loss_type == "hinge":
        per = torch.relu(1 - beta * d)
    elif loss_type == "ipo":
        per = (cl / nc.clamp(min=1.0) - rl / nr.clamp(min=1.0) - 1 / (2 * beta)) ** 2
    elif loss_type == "robust":
        per = (-(1 - ls) * F.logsigmoid(beta * d) + ls * F.logsigmoid(-beta * d)) / (1 - 2 * ls)
    elif loss_type == "legacy_cdpo_sigmoid":
        per = -F.logsigmoid(beta * d) * (1 - ls) - F.logsigmoid(-beta * d) * ls
    else:
        raise ValueError(loss_type)
    mean = per.mean()
    mean.backward()
    cr, rw = beta * cl.detach(), beta * rl.detach()
    metrics = {"rewards/chosen": cr.mean().item(), "rewards/rejected": rw.mean().item(),
               "rewards/accuracies": (cr > rw).float().mean().item(), "rewards/margins": (cr - rw).mean().item(),
               "logps/chosen": pc.detach().mean().item(), "logps/rejected": pr.detach().mean().item()}
    return per.tolist(), mean.item(), metrics, pc.grad.tolist(), pr.grad.tolist()


def make_dpo():
    compute_loss, info = trl_compute_loss_fn()
    # per-example summed completion log-probs (float64)
    batch = {
        "policy_chosen_logps":      [-12.5, -30.75, -8.125, -22.0, -17.3, -39.2],
        "policy_rejected_logps":    [-20.25, -18.5, -35.5, -6.5, -25.9, -27.6],
        "reference_chosen_logps":   [-14.0, -28.0, -14.5, -21.25, -17.3, -36.8],
        "reference_rejected_logps": [-19.0, -21.0, -31.0, -7.75, -25.9, -30.1],
        "chosen_num_tokens":        [12, 7, 20, 5, 15, 9],
        "rejected_num_tokens":      [10, 14, 6, 18, 8, 11],
    }
    same = dict(batch)
    same["reference_chosen_logps"] = list(batch["policy_chosen_logps"])
    same["reference_rejected_logps"] = list(batch["policy_rejected_logps"])
    configs = [("sigmoid", 0.1, 0.0), ("sigmoid", 0.1, 0.1), ("sigmoid", 0.5, 0.0), ("ipo", 0.1, 0.0),
               ("hinge", 0.1, 0.0), ("robust", 0.1, 0.1)]

    def run_all(b):
        args = [b[k] for k in ("policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps",
                               "reference_rejected_logps", "chosen_num_tokens", "rejected_num_tokens")]
        res = []
        for lt, beta, ls in configs:
            loss, metrics, gc, gr = run_trl(compute_loss, *args, lt, beta, ls)
            per, mean, pm, pgc, pgr = port_per_example(*args, lt, beta, ls)
            diffs = [abs(loss - mean)] + [abs(metrics[k] - pm[k]) for k in metrics] + \
                    [abs(x - y) for x, y in zip(gc + gr, pgc + pgr)]
            assert max(diffs) < 1e-12, (lt, beta, ls, max(diffs))
            res.append({"loss_type": lt, "beta": beta, "label_smoothing": ls, "per_example_loss": per,
                        "mean_loss": loss, "metrics": metrics,
                        "grad_mean_loss_wrt_policy_chosen_logps": gc,
                        "grad_mean_loss_wrt_policy_rejected_logps": gr})
        return args, res

    args, res = run_all(batch)
    _, res_same = run_all(same)
    assert abs(res_same[0]["mean_loss"] - math.log(2)) < 1e-15 and res_same[0]["metrics"]["rewards/chosen"] == 0.0
    legacy = port_per_example(*args, "legacy_cdpo_sigmoid", 0.1, 0.1)
    return {
        "generator": versions(),
        "source": dict(info, how="The real TRL source lines of DPOTrainer._compute_loss are extracted with ast from "
                       "the installed file and executed (float64) on a stub trainer/model (precompute_ref_log_probs "
                       "path, f_divergence_type='reverse_kl', ld_alpha=None, use_weighting=False, loss_weights=[1]); "
                       "an independent port agrees to < 1e-12. TRL 1.16.0 has no standalone dpo_loss function."),
        "formulas_trl_1_16_0": {
            "logratios": "chosen_logratios = policy_chosen_logps - reference_chosen_logps; rejected_logratios = "
                         "policy_rejected_logps - reference_rejected_logps; delta = chosen_logratios - rejected_logratios",
            "sigmoid": "-logsigmoid(beta*delta)   (label_smoothing is NOT used by 'sigmoid' in TRL 1.16.0)",
            "hinge": "relu(1 - beta*delta)",
            "ipo": "(chosen_logratios/max(n_chosen,1) - rejected_logratios/max(n_rejected,1) - 1/(2*beta))**2, "
                   "n = completion_mask.sum(dim=1) = number of completion tokens of that sequence",
            "robust": "(-(1-ls)*logsigmoid(beta*delta) + ls*logsigmoid(-beta*delta)) / (1 - 2*ls)",
            "mean_loss": "per_example_loss.mean() * loss_weight (1.0)",
            "rewards/chosen": "mean(beta * chosen_logratios)",
            "rewards/rejected": "mean(beta * rejected_logratios)",
            "rewards/accuracies": "mean((chosen_rewards > rejected_rewards).float())  -- strict >, FLOAT32 mean "
                                  "(e.g. 2/6 -> 0.3333333432674408)",
            "rewards/margins": "mean(chosen_rewards - rejected_rewards)",
            "logps/chosen": "mean(policy_chosen_logps)", "logps/rejected": "mean(policy_rejected_logps)",
        },
        "ipo_token_normalisation": "TRL 1.16.0 divides each IPO log-ratio by its own completion token count "
                                   "(chosen and rejected separately, clamp(min=1)) before the squared loss; "
                                   "rewards/* metrics are NOT normalised. The token counts used are in "
                                   "batch.chosen_num_tokens / batch.rejected_num_tokens.",
        "batch": batch,
        "configs": res,
        "policy_equals_reference": {
            "note": "reference logps == policy logps: sigmoid loss = ln 2 for any beta, rewards and margins 0, "
                    "accuracies 0 (strict >), hinge = 1, ipo = (1/(2*beta))**2.",
            "batch": same, "ln2": math.log(2), "configs": res_same},
        "legacy_cdpo_sigmoid_NOT_trl_1_16_0": {
            "note": "For reference only: the label-smoothed sigmoid (cDPO) of older TRL dpo_loss, "
                    "-(1-ls)*logsigmoid(beta*delta) - ls*logsigmoid(-beta*delta); TRL 1.16.0 no longer applies "
                    "label_smoothing to 'sigmoid'. Port, not executed TRL code.",
            "beta": 0.1, "label_smoothing": 0.1, "per_example_loss": legacy[0], "mean_loss": legacy[1],
            "grad_mean_loss_wrt_policy_chosen_logps": legacy[3],
            "grad_mean_loss_wrt_policy_rejected_logps": legacy[4]},
    }


# ----------------------------------------------------------------------------- 4. clip
def make_clip():
    from torch.utils._foreach_utils import _device_has_foreach_support
    shapes = [(4, 3), (5,), (2, 3, 2)]
    base = [seeded_normal(500 + i, s) for i, s in enumerate(shapes)]
    cases = []
    for name, scale, max_norm in [("max1.0", 1.0, 1.0), ("max0.5", 1.0, 0.5), ("below_max_unchanged", 0.05, 1.0)]:
        grads = [g * scale for g in base]
        res = {}
        for fe in (None, False):
            ps = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            tn = torch.nn.utils.clip_grad_norm_(ps, max_norm, foreach=fe)
            res[fe] = (tn, [p.grad.clone() for p in ps])
        same = bool(torch.equal(res[None][0], res[False][0])) and all(
            torch.equal(a, b) for a, b in zip(res[None][1], res[False][1]))
        tn, clipped = res[None]
        cases.append({"name": name, "max_norm": max_norm, "shapes": [list(s) for s in shapes],
                      "grads": [fl(g) for g in grads], "total_norm": tn.item(),
                      "clip_coef_clamped": torch.clamp(max_norm / (tn + 1e-6), max=1.0).item(),
                      "clipped_grads": [fl(g) for g in clipped], "foreach_default_equals_foreach_false": same})
    return {
        "generator": versions(),
        "description": "torch.nn.utils.clip_grad_norm_(params, max_norm) (norm_type 2, default foreach=None, which on "
                       f"CPU uses the foreach path: {_device_has_foreach_support(torch.device('cpu'))}), float32 grads. "
                       "total_norm = ||stack([||g_i||_2])||_2 (float32); coef = clamp(max_norm/(total_norm+1e-6), "
                       "max=1) computed as a float32 tensor; every grad is multiplied by coef (even when coef == 1). "
                       "clip_coef_clamped is that float32 coefficient (recomputed the same way, for information).",
        "cases": cases,
    }


# ----------------------------------------------------------------------------- --check-merged
def _load_causal_lm(path):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def check_merged(merged_dir, base_dir, adapter_dir, ids=None, tol=1e-4):
    from peft import PeftModel
    merged = _load_causal_lm(merged_dir)
    lora = PeftModel.from_pretrained(_load_causal_lm(base_dir), adapter_dir).eval()
    vocab = merged.config.vocab_size
    if ids is None:
        ids = torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(1234))
    else:
        ids = torch.tensor([ids], dtype=torch.long)
        assert int(ids.max()) < vocab and int(ids.min()) >= 0, "ids outside the vocab"
    with torch.no_grad():
        a = merged(input_ids=ids).logits
        b = lora(input_ids=ids).logits
    diff = (a - b).abs().max().item()
    ok = diff <= tol
    print(json.dumps({"ids_shape": list(ids.shape), "max_abs_logits_diff": diff, "tol": tol,
                      "result": "PASS" if ok else "FAIL"}))
    return ok


def selftest_check_merged(base_dir, adapter_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    r, alpha = cfg["r"], cfg["lora_alpha"]
    tmp = tempfile.mkdtemp(prefix="cairn_merge_")
    good = os.path.join(tmp, "peft_merge_and_unload")
    PeftModel.from_pretrained(_load_causal_lm(base_dir), adapter_dir).merge_and_unload().save_pretrained(good)
    sd = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))

    def manual(scale, out):
        m = _load_causal_lm(base_dir)
        params = dict(m.named_parameters())
        with torch.no_grad():
            for k, A in sd.items():
                if ".lora_A." not in k:
                    continue
                B = sd[k.replace(".lora_A.", ".lora_B.")]
                mod = k.split(".lora_A.")[0].removeprefix("base_model.model.")
                params[mod + ".weight"] += scale * (B @ A)
        m.save_pretrained(out)

    manual(alpha / r, os.path.join(tmp, "manual_scale_alpha_over_r"))
    manual(float(alpha), os.path.join(tmp, "manual_WRONG_scale_alpha"))
    expected = {"peft_merge_and_unload": 0, "manual_scale_alpha_over_r": 0, "manual_WRONG_scale_alpha": 1}
    all_ok = True
    for name, want in expected.items():
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--check-merged", os.path.join(tmp, name),
                            base_dir, adapter_dir], capture_output=True, text=True)
        line = (p.stdout.strip().splitlines() or ["<no output>"])[-1]
        print(f"{name}: rc={p.returncode} (expected {want}) {line}")
        all_ok &= (p.returncode == want)
    import shutil
    shutil.rmtree(tmp)
    print("SELFTEST", "PASS" if all_ok else "FAIL")
    return all_ok


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-merged", nargs=3, metavar=("MERGED_DIR", "BASE_DIR", "ADAPTER_DIR"))
    ap.add_argument("--selftest-check-merged", nargs=2, metavar=("BASE_DIR", "ADAPTER_DIR"))
    ap.add_argument("--ids", type=lambda s: [int(x) for x in s.split(",") if x.strip()])
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    if a.check_merged:
        sys.exit(0 if check_merged(*a.check_merged, ids=a.ids, tol=a.tol) else 1)
    if a.selftest_check_merged:
        sys.exit(0 if selftest_check_merged(*a.selftest_check_merged) else 1)
    write_json("adamw.json", make_adamw())
    write_json("schedules.json", make_schedules())
    write_json("dpo.json", make_dpo())
    write_json("clip.json", make_clip())


if __name__ == "__main__":
    main()
