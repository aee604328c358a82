"""Writes tests/fixtures/optim.safetensors: golden values from torch.optim (CPU, single-tensor
implementations) for SGD / Adam / AdamW driven by LR schedules with gradient clipping, the
learning-rate sequences of the schedules, and an exponential moving average of weights.
Run by hand:
    python3 tests/golden/gen_optim.py

Optimizer cases "<case>.*": three parameters p0 [4, 3], p1 [4], p2 [2, 3, 2] in two groups
(group 0 = p0, p2; group 1 = p1 with its own lr / weight decay), N = 12 steps. At each step s the
gradients "<case>.grad.<s>.<i>" are set (p1 has none at step 5: torch skips it), clipped, the
optimizer steps and the scheduler steps. Stored: "<case>.p<i>.init", "<case>.p<i>.final",
"<case>.lr" (group 0's lr used at each step), "<case>.norm" (what clip_grad_norm_ returned, 0 when
clipping by value) and the final per-parameter state of p0 ("<case>.state.<name>"). The case
parameters are repeated in tests/nn/test_optim.cpp.

Schedule cases "sched.<name>.lr" (and ".momentum" for one-cycle): the lr (momentum) of a group
with base lr 0.1 at steps 0..T-1, T = 30, read before each optimizer step. Warm-up schedules use
the LambdaLR lambdas of transformers' optimization.py (get_constant_schedule_with_warmup,
get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup and its min-lr variant).

EMA: "ema.p.<k>" for k = 0..5 are successive parameter values; "ema.avg" is torch's
AveragedModel with get_ema_multi_avg_fn(0.9) after the six updates.
"""
import math
import pathlib

import torch
from safetensors.torch import save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

torch.manual_seed(20240613)
out_path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "optim.safetensors"
T = {}
N = 12
SHAPES = [(4, 3), (4,), (2, 3, 2)]


# transformers' warm-up lambdas (optimization.py).
def constant_warmup(warmup):
    return lambda s: s / max(1.0, warmup) if s < warmup else 1.0


def linear_warmup(warmup, total):
    def f(s):
        if s < warmup:
            return s / max(1, warmup)
        return max(0.0, (total - s) / max(1, total - warmup))
    return f


def cosine_warmup(warmup, total, min_ratio=0.0):
    def f(s):
        if s < warmup:
            return s / max(1, warmup)
        progress = (s - warmup) / max(1, total - warmup)
        cos = max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
        return cos * (1.0 - min_ratio) + min_ratio
    return f


def optimizer_case(name, make_opt, make_sched, clip):
    params = [torch.randn(s, dtype=torch.float32) for s in SHAPES]
    for i, p in enumerate(params):
        T[f"{name}.p{i}.init"] = p.clone()
    leaves = [p.clone().requires_grad_(True) for p in params]
    opt = make_opt(leaves)
    sched = make_sched(opt)
    lrs, norms = [], []
    for s in range(N):
        scale = [0.05, 0.5, 2.0, 8.0][s % 4]  # clipping is active at some steps only
        for i, p in enumerate(leaves):
            if i == 1 and s == 5:
                p.grad = None
                continue
            g = torch.randn(p.shape) * scale
            T[f"{name}.grad.{s}.{i}"] = g.clone()
            p.grad = g
        if clip[0] == "norm":
            norms.append(float(torch.nn.utils.clip_grad_norm_(leaves, clip[1], norm_type=clip[2],
                                                              foreach=False)))
        else:
            torch.nn.utils.clip_grad_value_(leaves, clip[1], foreach=False)
            norms.append(0.0)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for i, p in enumerate(leaves):
        T[f"{name}.p{i}.final"] = p.detach().clone()
    for k, v in opt.state[leaves[0]].items():
        if k != "step":
            T[f"{name}.state.{k}"] = v.clone()
    T[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    T[f"{name}.norm"] = torch.tensor(norms, dtype=torch.float64)


def groups(leaves, lr1, wd1):
    return [{"params": [leaves[0], leaves[2]]}, {"params": [leaves[1]], "lr": lr1,
                                                  "weight_decay": wd1}]


sched_lib = torch.optim.lr_scheduler

optimizer_case(
    "sgd_nesterov",
    lambda l: torch.optim.SGD(groups(l, 0.02, 0.0), lr=0.05, momentum=0.9, nesterov=True,
                              weight_decay=1e-2, foreach=False),
    lambda o: sched_lib.OneCycleLR(o, max_lr=[0.05, 0.02], total_steps=N),
    ("norm", 1.0, 2.0))
optimizer_case(
    "sgd_dampening",
    lambda l: torch.optim.SGD(groups(l, 0.03, 1e-2), lr=0.1, momentum=0.8, dampening=0.3,
                              weight_decay=1e-3, foreach=False),
    lambda o: sched_lib.StepLR(o, step_size=4, gamma=0.5),
    ("value", 0.5))
optimizer_case(
    "adam",
    lambda l: torch.optim.Adam(groups(l, 3e-3, 0.0), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                               weight_decay=1e-2, foreach=False),
    lambda o: sched_lib.LambdaLR(o, linear_warmup(3, N)),
    ("norm", 2.0, 2.0))
optimizer_case(
    "adam_amsgrad",
    lambda l: torch.optim.Adam(groups(l, 2e-3, 1e-3), lr=5e-3, betas=(0.8, 0.99), eps=1e-6,
                               amsgrad=True, foreach=False),
    lambda o: sched_lib.LambdaLR(o, cosine_warmup(2, N)),
    ("norm", 0.5, math.inf))
optimizer_case(
    "adamw",
    lambda l: torch.optim.AdamW(groups(l, 1e-2, 0.0), lr=1e-2, weight_decay=0.05, foreach=False),
    lambda o: sched_lib.LambdaLR(o, cosine_warmup(2, N, 0.1)),
    ("norm", 1.0, 2.0))
optimizer_case(
    "adamw_onecycle",
    lambda l: torch.optim.AdamW(groups(l, 4e-3, 0.1), lr=1e-2, weight_decay=1e-2, amsgrad=True,
                                foreach=False),
    lambda o: sched_lib.OneCycleLR(o, max_lr=[1e-2, 4e-3], total_steps=N, three_phase=True),
    ("norm", 1.0, 2.0))


def schedule_case(name, make_sched, steps=30):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = make_sched(opt)
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    T[f"sched.{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    if isinstance(sched, sched_lib.OneCycleLR):
        T[f"sched.{name}.momentum"] = torch.tensor(moms, dtype=torch.float64)


schedule_case("constant_warmup", lambda o: sched_lib.LambdaLR(o, constant_warmup(5)))
schedule_case("linear_warmup", lambda o: sched_lib.LambdaLR(o, linear_warmup(5, 30)))
schedule_case("linear", lambda o: sched_lib.LinearLR(o, start_factor=1.0, end_factor=0.0,
                                                     total_iters=30))
schedule_case("cosine_warmup", lambda o: sched_lib.LambdaLR(o, cosine_warmup(5, 30)))
schedule_case("cosine_warmup_min", lambda o: sched_lib.LambdaLR(o, cosine_warmup(4, 24, 0.2)),
              steps=25)  # transformers does not clamp past total_steps; we do
schedule_case("cosine", lambda o: sched_lib.CosineAnnealingLR(o, T_max=30, eta_min=0.01))
schedule_case("step", lambda o: sched_lib.StepLR(o, step_size=7, gamma=0.5))
schedule_case("one_cycle", lambda o: sched_lib.OneCycleLR(o, max_lr=0.1, total_steps=30))
schedule_case("one_cycle_three_phase",
              lambda o: sched_lib.OneCycleLR(o, max_lr=0.1, total_steps=30, three_phase=True,
                                             pct_start=0.25, div_factor=10.0,
                                             final_div_factor=100.0))

# EMA of weights.
model = torch.nn.Linear(3, 2, bias=False)
ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
for k in range(6):
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 3))
    T[f"ema.p.{k}"] = model.weight.detach().clone()
    ema.update_parameters(model)
T["ema.avg"] = ema.module.weight.detach().clone()

save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {len(T)} tensors to {out_path}")
