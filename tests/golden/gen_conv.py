"""Writes tests/fixtures/conv.safetensors: golden values from PyTorch (CPU) for conv2d, pooling,
upsampling, matmul and linear, with the gradients of loss = (out * gy).sum() w.r.t. every input.
Run by hand:
    python3 tests/golden/gen_conv.py
Keys are "<case>.<tensor>": x/w/b inputs, gy the loss weight (= grad of the output), out, grad_*.
Case parameters are repeated in the C++ tests (tests/tensor/test_conv.cpp, test_pool.cpp,
test_linalg.cpp).
"""
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240611)
out_path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "conv.safetensors"
T = {}


def record(case, fn, inputs, extra=None):
    """Runs fn(*inputs) (inputs require grad), stores inputs, output, gy and the gradients."""
    leaves = [v.clone().requires_grad_(True) for v in inputs.values()]
    out = fn(*leaves)
    gy = torch.randn_like(out)
    (out * gy).sum().backward()
    for (name, v), leaf in zip(inputs.items(), leaves):
        T[f"{case}.{name}"] = v.clone()
        T[f"{case}.grad_{name}"] = leaf.grad.contiguous()
    T[f"{case}.out"] = out.detach().contiguous()
    T[f"{case}.gy"] = gy.contiguous()
    for name, v in (extra or {}).items():
        T[f"{case}.{name}"] = v.contiguous()


# ---- conv2d: (case, x shape, w shape, bias, stride, padding, dilation, groups) ----
CONV = [
    ("basic", (2, 3, 7, 9), (4, 3, 3, 3), True, 1, 0, 1, 1),
    ("s2p1", (2, 4, 11, 10), (6, 4, 3, 3), True, 2, 1, 1, 1),
    ("dil2", (1, 3, 13, 12), (5, 3, 3, 3), False, 1, 2, 2, 1),
    ("g2", (2, 6, 9, 9), (8, 3, 3, 3), True, (2, 1), (1, 0), 1, 2),
    ("dw", (2, 5, 8, 7), (5, 1, 3, 3), True, 1, 1, 1, 5),
    ("dwmult", (1, 3, 6, 6), (6, 1, 3, 3), False, 1, 0, 1, 3),
    ("pw", (3, 8, 5, 6), (7, 8, 1, 1), True, 1, 0, 1, 1),
    ("pw_s2", (2, 8, 9, 9), (4, 8, 1, 1), False, 2, 0, 1, 1),
    ("k7s2", (1, 3, 23, 23), (4, 3, 7, 7), True, 2, 3, 1, 1),
    ("rect", (2, 3, 10, 8), (4, 3, 2, 5), True, (1, 2), (1, 2), (2, 1), 1),
    ("batch9", (9, 4, 5, 5), (6, 4, 3, 3), True, 1, 1, 1, 1),
]
for case, xs, ws, has_b, s, p, d, g in CONV:
    inputs = {"x": torch.randn(xs), "w": torch.randn(ws) * 0.3}
    if has_b:
        inputs["b"] = torch.randn(ws[0])
    fn = (lambda x, w, b=None, s=s, p=p, d=d, g=g:
          F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g))
    record("conv_" + case, fn, inputs)

# ---- max_pool2d: (case, shape, kernel, stride, padding, dilation, ceil_mode) ----
MAXPOOL = [
    ("k3s2p1", (2, 3, 9, 10), 3, 2, 1, 1, False),
    ("ceil", (1, 2, 10, 11), 3, 2, 0, 1, True),
    ("dil2", (1, 2, 12, 12), 3, 1, 1, 2, False),
    ("k2", (1, 2, 8, 8), 2, 2, 0, 1, False),
    ("rect", (2, 2, 9, 7), (3, 2), (2, 1), (1, 0), 1, True),
]
for case, xs, k, s, p, d, c in MAXPOOL:
    x = torch.randn(xs)
    _, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=c, return_indices=True)
    record("maxpool_" + case, lambda x, k=k, s=s, p=p, d=d, c=c:
           F.max_pool2d(x, k, s, p, d, ceil_mode=c), {"x": x}, {"indices": idx})

# ---- avg_pool2d: (case, shape, kernel, stride, padding, ceil_mode, count_include_pad) ----
AVGPOOL = [
    ("k3s2p1_incl", (2, 3, 9, 10), 3, 2, 1, False, True),
    ("k3s2p1_excl", (2, 3, 9, 10), 3, 2, 1, False, False),
    ("ceil_incl", (1, 2, 10, 11), 3, 2, 1, True, True),
    ("ceil_excl", (1, 2, 10, 11), 3, 2, 1, True, False),
    ("k2", (1, 2, 8, 8), 2, 2, 0, False, True),
    ("rect", (2, 2, 9, 7), (3, 2), (2, 1), (1, 0), True, False),
]
for case, xs, k, s, p, c, inc in AVGPOOL:
    record("avgpool_" + case, lambda x, k=k, s=s, p=p, c=c, inc=inc:
           F.avg_pool2d(x, k, s, p, ceil_mode=c, count_include_pad=inc), {"x": torch.randn(xs)})

# ---- adaptive_avg_pool2d: (case, shape, output size) ----
for case, xs, o in [("down", (2, 3, 7, 9), (3, 4)), ("global", (1, 2, 10, 10), (1, 1)),
                    ("up", (1, 1, 3, 3), (5, 4)), ("unbatched", (3, 6, 5), (4, 2))]:
    record("adaptive_" + case, lambda x, o=o: F.adaptive_avg_pool2d(x, o), {"x": torch.randn(xs)})

# ---- upsampling: (case, shape, output size) ----
RESIZE = [("x2", (1, 2, 5, 7), (10, 14)), ("odd", (2, 2, 5, 7), (8, 11)),
          ("down", (1, 2, 5, 7), (3, 4)), ("one", (1, 1, 4, 5), (1, 3))]
for case, xs, o in RESIZE:
    x = torch.randn(xs)
    record("nearest_" + case, lambda x, o=o: F.interpolate(x, size=o, mode="nearest"), {"x": x})
    for ac in (False, True):
        record(f"bilinear_{case}_ac{int(ac)}",
               lambda x, o=o, ac=ac: F.interpolate(x, size=o, mode="bilinear", align_corners=ac),
               {"x": x})

# ---- matmul / linear: (case, a shape, b shape) ----
MATMUL = [("mm", (5, 7), (7, 3)), ("dot", (6,), (6,)), ("vm", (4,), (4, 3)), ("mv", (3, 4), (4,)),
          ("bcast", (2, 1, 3, 5), (4, 5, 6)), ("bvec", (2, 3, 4), (4,)), ("vb", (4,), (2, 4, 3))]
for case, a, b in MATMUL:
    record("matmul_" + case, torch.matmul, {"a": torch.randn(a), "b": torch.randn(b)})
record("bmm", torch.bmm, {"a": torch.randn(3, 4, 5), "b": torch.randn(3, 5, 2)})
record("linear_bias", F.linear,
       {"x": torch.randn(2, 3, 7), "w": torch.randn(5, 7), "b": torch.randn(5)})
record("linear_nobias", F.linear, {"x": torch.randn(4, 6), "w": torch.randn(3, 6)})
record("linear_vec", F.linear, {"x": torch.randn(6), "w": torch.randn(3, 6), "b": torch.randn(3)})

save_file(T, str(out_path), metadata={"source": "gen_conv.py", "torch": torch.__version__})
print("wrote", out_path, out_path.stat().st_size, "bytes,", len(T), "tensors")
