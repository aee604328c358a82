"""Writes tests/fixtures/elementwise.safetensors and tests/fixtures/reduce.safetensors: golden
values from PyTorch (CPU) for the elementwise ops and the reductions, with the gradients of
loss = (out * gy).sum() w.r.t. every floating input.
Run by hand:
    python3 tests/golden/gen_elementwise.py
Keys are "<case>.<tensor>": inputs by name (x, a, b, w), gy the loss weight, out (and indices),
grad_<input>. Case parameters (dims, slopes, bounds, ...) are repeated in the C++ tests
(tests/tensor/test_elementwise.cpp, test_reduce.cpp, tests/autograd/test_elementwise_grad.cpp,
test_reduce_grad.cpp).
"""
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240613)
fixtures = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def record(table, case, fn, inputs, grads=True):
    """Runs fn(*inputs); floating inputs require grad when `grads`; stores inputs, out, gy, grads."""
    leaves = [v.clone().requires_grad_(grads and v.is_floating_point()) for v in inputs.values()]
    out = fn(*leaves)
    indices = None
    if isinstance(out, tuple):
        out, indices = out
    for name, v in inputs.items():
        table[f"{case}.{name}"] = v.clone().contiguous()
    table[f"{case}.out"] = out.detach().contiguous()
    if indices is not None:
        table[f"{case}.indices"] = indices.contiguous()
    if grads and out.is_floating_point() and out.requires_grad:
        gy = torch.randn_like(out)
        (out * gy).sum().backward()
        table[f"{case}.gy"] = gy.contiguous()
        for (name, v), leaf in zip(inputs.items(), leaves):
            if leaf.grad is not None:
                table[f"{case}.grad_{name}"] = leaf.grad.contiguous()


# ================================ elementwise ================================
E = {}

# ---- unary ops on float32 [6, 8]: (name, fn, input domain) ----
real = lambda shape: torch.randn(shape) * 2.5
positive = lambda shape: torch.rand(shape) * 4 + 0.05
above_m1 = lambda shape: torch.rand(shape) * 5 - 0.9
UNARY = [
    ("neg", torch.neg, real), ("abs", torch.abs, real), ("sign", torch.sign, real),
    ("square", torch.square, real), ("reciprocal", torch.reciprocal, positive),
    ("exp", torch.exp, real), ("log", torch.log, positive), ("log1p", torch.log1p, above_m1),
    ("sqrt", torch.sqrt, positive), ("rsqrt", torch.rsqrt, positive), ("sin", torch.sin, real),
    ("cos", torch.cos, real), ("tanh", torch.tanh, real), ("sigmoid", torch.sigmoid, real),
    ("relu", torch.relu, real), ("silu", F.silu, real), ("gelu", F.gelu, real),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), real),
    ("quick_gelu", lambda x: x * torch.sigmoid(1.702 * x), real), ("erf", torch.erf, real),
]
for name, fn, domain in UNARY:
    record(E, f"unary.{name}", fn, {"x": domain((6, 8))})

# Wide ranges, including tails, zeros and specials (forward only; ops defined everywhere).
wide = torch.cat([torch.linspace(-12, 12, 241), torch.tensor([0.0, -0.0, 1e-6, -1e-6, 1e-30,
                                                            float("inf"), float("-inf"),
                                                            float("nan")])])
for name, fn in [("exp", torch.exp), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
                 ("silu", F.silu), ("gelu", F.gelu), ("erf", torch.erf),
                 ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")), ("relu", torch.relu),
                 ("log1p", torch.log1p), ("log", torch.log), ("sqrt", torch.sqrt),
                 ("abs", torch.abs), ("neg", torch.neg)]:
    record(E, f"wide.{name}", fn, {"x": wide.clone()}, grads=False)

# ---- unary ops in other dtypes (computed by torch in that dtype) ----
for dt in ["float64", "float16", "bfloat16"]:
    dtype = getattr(torch, dt)
    for name, fn in [("exp", torch.exp), ("gelu", F.gelu), ("tanh", torch.tanh),
                     ("sqrt", lambda x: torch.sqrt(x.abs()))]:
        record(E, f"dtype.{dt}.{name}", fn, {"x": (torch.randn(5, 7) * 2).to(dtype)},
               grads=dt == "float64")
    for name, fn in [("add", torch.add), ("mul", torch.mul), ("div", torch.div),
                     ("maximum", torch.maximum)]:
        record(E, f"dtype.{dt}.{name}", fn,
               {"a": torch.randn(5, 7).to(dtype), "b": (torch.rand(7) + 0.5).to(dtype)},
               grads=dt == "float64")

# ---- binary ops with broadcasting a [4, 1, 5] op b [3, 1] -> [4, 3, 5] ----
for name, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
                 ("div", torch.div), ("maximum", torch.maximum), ("minimum", torch.minimum)]:
    a = torch.randn(4, 1, 5)
    b = torch.randn(3, 1)
    if name in ("maximum", "minimum"):  # ties split the gradient in half
        a[0, 0, :2] = 0.5
        b[0, 0] = 0.5
    if name == "div":
        b = b.sign() * (b.abs() + 0.5)
    record(E, f"binary.{name}", fn, {"a": a, "b": b})
record(E, "binary.pow", torch.pow, {"a": torch.rand(4, 1, 5) * 3 + 0.1, "b": torch.randn(3, 1)})
# Same shapes, b a scalar-like [1], and a 0-dim b.
record(E, "binary.mul_same", torch.mul, {"a": torch.randn(3, 4), "b": torch.randn(3, 4)})
record(E, "binary.add_scalar_tensor", torch.add, {"a": torch.randn(3, 4), "b": torch.randn(())})

# ---- type promotion ----
ia = torch.randint(-5, 6, (3, 4), dtype=torch.int32)
ib = torch.randint(1, 6, (4,), dtype=torch.int64)
record(E, "promote.int32_add_float32", torch.add, {"a": ia, "b": torch.randn(4)}, grads=False)
record(E, "promote.int32_add_int64", torch.add, {"a": ia, "b": ib}, grads=False)
record(E, "promote.int32_mul_int64", torch.mul, {"a": ia, "b": ib}, grads=False)
record(E, "promote.int32_div_int64", torch.div, {"a": ia, "b": ib}, grads=False)
record(E, "promote.float16_add_float32", torch.add,
       {"a": torch.randn(3, 4).half(), "b": torch.randn(4)}, grads=False)
record(E, "promote.bool_add_bool", torch.add,
       {"a": torch.tensor([True, False, True, False]), "b": torch.tensor([True, True, False, False])},
       grads=False)
record(E, "promote.int64_pow_int64", torch.pow,
       {"a": torch.tensor([2, -3, 0, 5, 1, -1]), "b": torch.tensor([3, 3, 2, 0, 7, 5])}, grads=False)
record(E, "promote.uint8_maximum_int32", torch.maximum,
       {"a": torch.tensor([0, 7, 200, 255], dtype=torch.uint8),
        "b": torch.tensor([3, -4, 300, 1], dtype=torch.int32)}, grads=False)

# ---- comparisons (ties included) a [3, 4] vs b [4] ----
ca = torch.randint(-2, 3, (3, 4)).float()
cb = torch.randint(-2, 3, (4,)).float()
for name, fn in [("eq", torch.eq), ("ne", torch.ne), ("lt", torch.lt), ("le", torch.le),
                 ("gt", torch.gt), ("ge", torch.ge)]:
    record(E, f"compare.{name}", fn, {"a": ca, "b": cb}, grads=False)
record(E, "compare.int_lt_float", torch.lt, {"a": ia, "b": torch.randn(4) * 3}, grads=False)

# ---- parameterised activations ----
record(E, "leaky_relu", lambda x: F.leaky_relu(x, 0.2), {"x": real((5, 6))})
sp_x = torch.cat([real((30,)), torch.tensor([2.4, 2.6, 10.0, -30.0])])  # around beta x = 5
record(E, "softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0), {"x": sp_x})
record(E, "softplus_default", F.softplus, {"x": torch.randn(20) * 10})
cl_x = torch.cat([real((30,)), torch.tensor([-0.5, 0.7, float("nan")])])
record(E, "clamp", lambda x: torch.clamp(x, -0.5, 0.7), {"x": cl_x}, grads=False)
record(E, "clamp_grad", lambda x: torch.clamp(x, -0.5, 0.7), {"x": real((30,))})
record(E, "clamp_int", lambda x: torch.clamp(x, -2, 3), {"x": torch.arange(-6, 7)}, grads=False)
record(E, "lerp_scalar", lambda a, b: torch.lerp(a, b, 0.3), {"a": real((3, 4)), "b": real((4,))})
record(E, "lerp_tensor", torch.lerp,
       {"a": real((3, 4)), "b": real((3, 4)), "w": torch.rand(3, 1) * 1.4 - 0.2})
for e in [2.0, 0.5, -1.0, 3.0, 3.5, -0.5, 0.0]:
    record(E, f"pow_scalar.{e}", lambda x, e=e: torch.pow(x, e), {"x": positive((4, 5))})
record(E, "pow_scalar_int", lambda x: torch.pow(x, 3), {"x": torch.arange(-4, 5)}, grads=False)
record(E, "rpow", lambda x: torch.pow(2.0, x), {"x": real((4, 5))})
record(E, "rsub", lambda x: 3.0 - x, {"x": real((4, 5))})
record(E, "rdiv", lambda x: 3.0 / x, {"x": positive((4, 5))})

save_file(E, str(fixtures / "elementwise.safetensors"))

# ================================ reductions ================================
R = {}
x = torch.randn(4, 5, 6)
for dims in [(), (0,), (1,), (2,), (0, 2), (1, 2), (-1,)]:
    for keep in [False, True]:
        tag = "_".join(str(d) for d in dims) or "all"
        k = "k" if keep else "n"
        d = list(dims) if dims else [0, 1, 2]
        record(R, f"sum.{tag}.{k}", lambda t, d=d, keep=keep: t.sum(dim=d, keepdim=keep), {"x": x})
        record(R, f"mean.{tag}.{k}", lambda t, d=d, keep=keep: t.mean(dim=d, keepdim=keep),
               {"x": x})
for dims in [(1,), (0, 2), ()]:
    tag = "_".join(str(d) for d in dims) or "all"
    d = list(dims) if dims else None
    for corr in [0, 1]:
        record(R, f"var.{tag}.c{corr}", lambda t, d=d, c=corr: torch.var(t, dim=d, correction=c),
               {"x": x})
        record(R, f"std.{tag}.c{corr}", lambda t, d=d, c=corr: torch.std(t, dim=d, correction=c),
               {"x": x})
    record(R, f"amax.{tag}", lambda t, d=d: torch.amax(t, dim=d if d else []), {"x": x})
    record(R, f"amin.{tag}", lambda t, d=d: torch.amin(t, dim=d if d else []), {"x": x})
    record(R, f"logsumexp.{tag}", lambda t, d=d: torch.logsumexp(t, dim=d if d else [0, 1, 2]),
           {"x": x * 5})
    for p in [1.0, 2.0, 3.0, float("inf")]:
        record(R, f"norm.{tag}.p{p}", lambda t, d=d, p=p: torch.linalg.vector_norm(t, ord=p, dim=d),
               {"x": x})
# max/min with ties (first index wins) on integer-valued data, and with a NaN.
xt = torch.randint(-3, 4, (4, 5, 6)).float()
for dim in [0, 1, 2]:
    record(R, f"max.{dim}", lambda t, dim=dim: torch.max(t, dim=dim), {"x": xt}, grads=False)
    record(R, f"min.{dim}", lambda t, dim=dim: torch.min(t, dim=dim), {"x": xt}, grads=False)
    record(R, f"max_grad.{dim}", lambda t, dim=dim: torch.max(t, dim=dim), {"x": x})
xn = torch.randn(3, 7)
xn[1, 4] = float("nan")
xn[2, 2] = float("nan")
xn[2, 5] = float("nan")
record(R, "max_nan", lambda t: torch.max(t, dim=1), {"x": xn}, grads=False)
record(R, "amax_nan", lambda t: torch.amax(t, dim=0), {"x": xn}, grads=False)
for dim in [0, 1, 2]:
    record(R, f"cumsum.{dim}", lambda t, dim=dim: torch.cumsum(t, dim=dim), {"x": x})
record(R, "cumsum_int", lambda t: torch.cumsum(t, dim=1),
       {"x": torch.randint(-9, 10, (3, 5), dtype=torch.int32)}, grads=False)
record(R, "sum_int", lambda t: t.sum(dim=0), {"x": torch.randint(-9, 10, (3, 5), dtype=torch.int32)},
       grads=False)
record(R, "sum_bool", lambda t: t.sum(), {"x": torch.rand(3, 5) > 0.5}, grads=False)
for dt in ["float64", "float16", "bfloat16"]:
    xd = torch.randn(4, 37).to(getattr(torch, dt))
    record(R, f"dtype.{dt}.sum", lambda t: t.sum(dim=1), {"x": xd}, grads=False)
    record(R, f"dtype.{dt}.mean", lambda t: t.mean(dim=0), {"x": xd}, grads=False)
    record(R, f"dtype.{dt}.amax", lambda t: t.amax(dim=1), {"x": xd}, grads=False)

save_file(R, str(fixtures / "reduce.safetensors"))
print("wrote", len(E), "elementwise and", len(R), "reduce tensors")
