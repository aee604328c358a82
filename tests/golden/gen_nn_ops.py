"""Writes tests/fixtures/nn_ops.safetensors: golden values from PyTorch (CPU) for softmax,
log_softmax, layer/group/batch norm, embedding, scaled_dot_product_attention and the losses, with
the gradients of loss = (out * gy).sum() w.r.t. every floating input.
Run by hand:
    python3 tests/golden/gen_nn_ops.py
Keys are "<case>.<tensor>": inputs by name, gy the loss weight (= grad of the output), out,
grad_<input>, and extras (running statistics after the update, masks, targets). Case parameters
(dims, eps, groups, reduction, ...) are repeated in the C++ tests (tests/tensor/test_nn_ops.cpp,
test_attention.cpp, tests/autograd/test_nn_ops_grad.cpp, test_loss.cpp).
"""
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240612)
out_path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "nn_ops.safetensors"
T = {}


def record(case, fn, inputs, extra=None, constants=None):
    """Runs fn(*inputs, *constants): floating inputs require grad; stores inputs, output, gy and
    the gradients. `constants` (targets, masks) are stored and passed without grad."""
    leaves = [v.clone().requires_grad_(v.is_floating_point()) for v in inputs.values()]
    consts = list((constants or {}).values())
    out = fn(*leaves, *consts)
    gy = torch.randn_like(out)
    (out * gy).sum().backward()
    for (name, v), leaf in zip(inputs.items(), leaves):
        T[f"{case}.{name}"] = v.clone()
        if leaf.grad is not None:
            T[f"{case}.grad_{name}"] = leaf.grad.contiguous()
    for name, v in (constants or {}).items():
        T[f"{case}.{name}"] = v.contiguous()
    T[f"{case}.out"] = out.detach().contiguous()
    T[f"{case}.gy"] = gy.contiguous()
    for name, v in (extra or {}).items():
        T[f"{case}.{name}"] = v.contiguous()


# ---- softmax / log_softmax: (case, shape, dim, log, transpose_input) ----
# With transpose_input the stored x is the contiguous base and the op runs on x.transpose(0, 1).
SOFTMAX = [
    ("softmax_last", (3, 7), -1, False, False),
    ("softmax_dim1", (2, 5, 4), 1, False, False),
    ("softmax_dim0_t", (4, 6), 0, False, True),
    ("softmax_wide", (2, 300), 1, False, False),
    ("log_softmax_last", (3, 33), -1, True, False),
    ("log_softmax_dim0", (5, 3, 2), 0, True, False),
    ("log_softmax_dim1_t", (3, 5, 2), 1, True, True),
]
for case, shape, dim, log, tr in SOFTMAX:
    f = F.log_softmax if log else F.softmax
    record(case, lambda x, f=f, dim=dim, tr=tr: f(x.transpose(0, 1) if tr else x, dim=dim),
           {"x": torch.randn(shape) * 3})

# ---- layer norm: (case, shape, normalized_ndim, affine) ----
LAYER = [
    ("layer_norm_affine", (2, 3, 8), 1, True),
    ("layer_norm_plain", (4, 10), 1, False),
    ("layer_norm_2d", (2, 3, 5), 2, True),
]
for case, shape, nd, affine in LAYER:
    ns = shape[-nd:]
    inputs = {"x": torch.randn(shape) * 2 + 1}
    if affine:
        inputs["w"] = torch.randn(ns)
        inputs["b"] = torch.randn(ns)
    record(case, lambda x, w=None, b=None, ns=ns: F.layer_norm(x, ns, w, b, eps=1e-5), inputs)

# ---- group norm: (case, shape, groups, affine, silu) ----
GROUP = [
    ("group_norm_affine", (2, 6, 4, 4), 3, True, False),
    ("group_norm_plain", (2, 4, 5), 2, False, False),
    ("group_norm_silu", (2, 6, 3, 3), 2, True, True),
    ("group_norm_1group", (3, 4, 2, 2), 1, True, False),
]
for case, shape, groups, affine, silu in GROUP:
    inputs = {"x": torch.randn(shape) * 1.5 - 0.5}
    if affine:
        inputs["w"] = torch.randn(shape[1])
        inputs["b"] = torch.randn(shape[1])

    def fn(x, w=None, b=None, groups=groups, silu=silu):
        y = F.group_norm(x, groups, w, b, eps=1e-5)
        return F.silu(y) if silu else y
    record(case, fn, inputs)

# ---- batch norm: training with running stats (momentum 0.1), training without affine, eval ----
for case, shape, affine, training in [
    ("batch_norm_train", (4, 3, 5), True, True),
    ("batch_norm_train_plain", (3, 2, 4, 4), False, True),
    ("batch_norm_eval", (2, 3, 4), True, False),
]:
    c = shape[1]
    rm, rv = torch.randn(c) * 0.5, torch.rand(c) + 0.5
    inputs = {"x": torch.randn(shape) * 2 + 0.5}
    if affine:
        inputs["w"] = torch.randn(c)
        inputs["b"] = torch.randn(c)
    rm_run, rv_run = rm.clone(), rv.clone()

    def fn(x, w=None, b=None, training=training, rm_run=rm_run, rv_run=rv_run):
        return F.batch_norm(x, rm_run, rv_run, w, b, training=training, momentum=0.1, eps=1e-5)
    record(case, fn, inputs,
           extra={"running_mean": rm, "running_var": rv, "running_mean_after": rm_run,
                  "running_var_after": rv_run})

# ---- embedding: repeated indices accumulate ----
record("embedding", lambda w, idx: F.embedding(idx, w), {"w": torch.randn(10, 4)},
       constants={"idx": torch.tensor([[1, 3, 3], [9, 0, 1]], dtype=torch.int64)})

# ---- attention: (case, B, H, L, S, D, Dv, mask kind, causal, scale) ----
ATTN = [
    ("attn_d40", 1, 2, 5, 7, 40, 40, None, False, None),
    ("attn_d64", 2, 1, 9, 9, 64, 64, None, False, None),
    ("attn_d80", 1, 2, 6, 11, 80, 80, None, False, None),
    ("attn_bool", 1, 2, 6, 8, 40, 40, "bool", False, None),
    ("attn_float", 2, 2, 5, 6, 40, 40, "float", False, None),
    ("attn_causal", 1, 2, 8, 8, 64, 64, None, True, None),
    ("attn_causal_ls", 1, 1, 5, 9, 40, 40, None, True, None),
    ("attn_scale", 1, 2, 4, 6, 80, 80, None, False, 0.3),
    ("attn_dv", 2, 1, 5, 7, 16, 24, None, False, None),
]
for case, B, H, L, S, D, Dv, mk, causal, scale in ATTN:
    inputs = {"q": torch.randn(B, H, L, D), "k": torch.randn(B, H, S, D), "v": torch.randn(B, H, S, Dv)}
    consts = {}
    if mk == "bool":  # [L, S] keep-mask broadcast over batch and heads; every row keeps a key
        m = torch.rand(L, S) > 0.4
        m[:, 0] = True
        consts["mask"] = m
    elif mk == "float":  # [B, 1, L, S] additive mask broadcast over heads
        consts["mask"] = torch.randn(B, 1, L, S)

    def fn(q, k, v, mask=None, causal=causal, scale=scale):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                              scale=scale)
    record(case, fn, inputs, constants=consts)

# ---- losses ----
RED = ["mean", "sum", "none"]
for red in RED:
    record(f"mse_{red}", lambda x, y, red=red: F.mse_loss(x, y, reduction=red),
           {"x": torch.randn(3, 4), "y": torch.randn(3, 4)})
    record(f"l1_{red}", lambda x, y, red=red: F.l1_loss(x, y, reduction=red),
           {"x": torch.randn(3, 4), "y": torch.randn(3, 4)})

# cross entropy with class indices: (case, logits shape, weight, ignore_index, smoothing, red)
CE = [
    ("ce_mean", (5, 4), False, None, 0.0, "mean"),
    ("ce_sum", (5, 4), False, None, 0.0, "sum"),
    ("ce_none", (5, 4), False, None, 0.0, "none"),
    ("ce_weight_ignore", (6, 4), True, 2, 0.0, "mean"),
    ("ce_smooth", (5, 4), False, None, 0.1, "mean"),
    ("ce_smooth_weight_ignore_mean", (6, 5), True, 1, 0.2, "mean"),
    ("ce_smooth_weight_ignore_sum", (6, 5), True, 1, 0.2, "sum"),
    ("ce_smooth_weight_none", (6, 5), True, -100, 0.2, "none"),
    ("ce_kdim", (2, 4, 3, 3), False, None, 0.0, "mean"),
    ("ce_kdim_weight_none", (2, 3, 4), True, 0, 0.0, "none"),
]
for case, shape, has_w, ignore, eps, red in CE:
    c = shape[1]
    tshape = (shape[0],) + shape[2:]
    target = torch.randint(0, c, tshape)
    if ignore is not None and ignore >= 0:
        target.view(-1)[::3] = ignore
    inputs = {"x": torch.randn(shape) * 2}
    consts = {"weight": torch.rand(c) + 0.5} if has_w else {}
    consts["target"] = target
    ii = -100 if ignore is None else ignore

    def fn(x, *rest, red=red, ii=ii, eps=eps, has_w=has_w):
        weight = rest[0] if has_w else None
        return F.cross_entropy(x, rest[-1], weight=weight, ignore_index=ii, reduction=red,
                               label_smoothing=eps)
    record(case, fn, inputs, constants=consts)

# cross entropy with probability targets
for case, has_w, eps, red in [("ce_prob_mean", False, 0.0, "mean"),
                              ("ce_prob_weight_smooth_sum", True, 0.1, "sum"),
                              ("ce_prob_none", False, 0.0, "none")]:
    probs = F.softmax(torch.randn(5, 4), dim=1)
    inputs = {"x": torch.randn(5, 4), "target": probs}
    consts = {"weight": torch.rand(4) + 0.5} if has_w else {}

    def fn(x, target, *rest, red=red, eps=eps):
        return F.cross_entropy(x, target, weight=rest[0] if rest else None, reduction=red,
                               label_smoothing=eps)
    record(case, fn, inputs, constants=consts)

# nll loss on log-probabilities
for case, has_w, ignore, red in [("nll_mean", False, -100, "mean"),
                                 ("nll_weight_ignore_mean", True, 1, "mean"),
                                 ("nll_weight_sum", True, -100, "sum"),
                                 ("nll_none", False, 2, "none")]:
    target = torch.randint(0, 4, (6,))
    if ignore >= 0:
        target[::3] = ignore
    inputs = {"x": F.log_softmax(torch.randn(6, 4), dim=1)}
    consts = {"weight": torch.rand(4) + 0.5} if has_w else {}
    consts["target"] = target

    def fn(x, *rest, red=red, ignore=ignore, has_w=has_w):
        return F.nll_loss(x, rest[-1], weight=rest[0] if has_w else None, ignore_index=ignore,
                          reduction=red)
    record(case, fn, inputs, constants=consts)

# binary cross entropy with logits: (case, pos_weight, weight, reduction); x [2, 3] with large
# logits to exercise the stable form
for case, pw, w, red in [("bce_mean", False, False, "mean"),
                         ("bce_sum", False, False, "sum"),
                         ("bce_none", False, False, "none"),
                         ("bce_posw_weight_mean", True, True, "mean"),
                         ("bce_posw_none", True, False, "none")]:
    inputs = {"x": torch.tensor([[-30.0, -2.0, 0.5], [3.0, 40.0, -0.1]]) + torch.randn(2, 3) * 0.1,
              "y": torch.rand(2, 3)}
    consts = {}
    if w:
        consts["weight"] = torch.rand(2, 3) + 0.5
    if pw:
        consts["pos_weight"] = torch.rand(3) * 2 + 0.5

    def fn(x, y, *rest, red=red, w=w, pw=pw):
        weight = rest[0] if w else None
        posw = rest[-1] if pw else None
        return F.binary_cross_entropy_with_logits(x, y, weight=weight, pos_weight=posw,
                                                  reduction=red)
    record(case, fn, inputs, constants=consts)

save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {len(T)} tensors to {out_path} ({out_path.stat().st_size} bytes)")
