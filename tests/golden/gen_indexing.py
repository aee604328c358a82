"""Writes tests/fixtures/indexing.safetensors: golden values for views and indexing/joining ops.

Each case "<case>" stores its contiguous base input "<case>.x" (float32) and any other inputs; the
C++ tests apply the same non-contiguous view to the base (the `view` comment of each case: a
transpose or a slice with a step) before the op. "<case>.out" is the op's output, "<case>.w" a
random weight and "<case>.grad_x" (and "<case>.grad_<other>") the gradient of (out * w).sum()
with respect to the BASE input. Run by hand:
    python3 tests/golden/gen_indexing.py
"""
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
out_path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "indexing.safetensors"
tensors = {}


def case(name, fn, x, others=None, grad_others=()):
    """Stores fn(x, **others) with the gradient of (out * w).sum() w.r.t. x and grad_others."""
    others = others or {}
    x = x.clone().requires_grad_(True)
    diff = {k: v.clone().requires_grad_(True) for k, v in others.items() if k in grad_others}
    args = {k: diff.get(k, v) for k, v in others.items()}
    out = fn(x, **args)
    w = torch.rand(out.shape, dtype=out.dtype) + 0.5
    wrt = [x] + [diff[k] for k in grad_others]
    grads = torch.autograd.grad((out * w).sum(), wrt)
    tensors[f"{name}.x"] = x.detach()
    for k, v in others.items():
        tensors[f"{name}.{k}"] = v
    tensors[f"{name}.out"] = out.detach().contiguous()
    tensors[f"{name}.w"] = w
    tensors[f"{name}.grad_x"] = grads[0]
    for k, g in zip(grad_others, grads[1:]):
        tensors[f"{name}.grad_{k}"] = g


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


# ---- views; chains of views ----
# view: x.transpose(0, 2) (non-contiguous), then reshape (must copy).
case("reshape_t", lambda x: x.transpose(0, 2).reshape(4, -1), randn(2, 3, 4))
# view: x[:, ::2] then view of a chunk that stays evenly spaced.
case("view_sliced", lambda x: x[:, ::2].reshape(3, 2, 2), randn(3, 8))
case("permute", lambda x: x.permute(2, 0, 1), randn(2, 3, 4))
case("slice_step", lambda x: x[:, 1::2], randn(3, 7))
case("slice_neg", lambda x: x[..., -4:-1], randn(2, 6))
case("select_t", lambda x: x.t().select(0, -2), randn(3, 4))
case("narrow_t", lambda x: x.t().narrow(1, 1, 2), randn(3, 4))
# view: x.t() [3, 1]
case("expand", lambda x: x.t().unsqueeze(0).expand(2, 3, 4), randn(1, 3))
case("expand_new", lambda x: x.expand(2, 3, 4), randn(3, 1))
case("flatten_t", lambda x: x.transpose(0, 1).flatten(1), randn(2, 3, 4))
case("unflatten", lambda x: x.unflatten(1, (2, -1)), randn(3, 6))
case("squeeze", lambda x: x.unsqueeze(1).squeeze(), randn(3, 1, 4))
case("chain", lambda x: x.permute(1, 0, 2).reshape(3, 8)[:, 1:7:2], randn(2, 3, 4))

# ---- indexing ----
idx = torch.tensor([2, 0, 2, 1], dtype=torch.int64)
# view: x.t()
case("index_select_t", lambda x, index: x.t().index_select(1, index), randn(3, 4), {"index": idx})
case("index_select_i32", lambda x, index: x.index_select(0, index.long()), randn(3, 5),
     {"index": idx.to(torch.int32)})
# view: x.t(); index [3, 2] into dim 1 of a [4, 3] view
case("gather_t", lambda x, index: x.t().gather(1, index), randn(3, 4),
     {"index": torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])})
case("gather_d0", lambda x, index: x.gather(0, index), randn(4, 3),
     {"index": torch.tensor([[3, 0, 1], [3, 3, 2]])})
# view: src[:, ::2] [4, 3]; index [3, 3] has duplicates (accumulation) and is smaller than src in
# dim 0, so only src[:3] is read. (torch's own backward rejects a src larger than the index, so
# the golden gradient is taken through the equivalent src[:3]; the C++ op gets the whole view.)
case("scatter_add", lambda x, src, index: x.scatter_add(1, index, src[:, ::2][:3]), randn(3, 4),
     {"src": randn(4, 6), "index": torch.tensor([[0, 0, 3], [1, 2, 1], [3, 3, 3]])},
     grad_others=("src",))
case("index_add", lambda x, src, index: x.index_add(0, index, src), randn(3, 4),
     {"src": randn(4, 4), "index": idx}, grad_others=("src",))
# view: x.t(); mask broadcast over rows
case("masked_fill_t", lambda x, mask: x.t().masked_fill(mask, -2.5), randn(3, 4),
     {"mask": torch.tensor([[True, False, True]])})
# view: a = x.t() [4, 3]; cond [4, 1]; b [3] broadcast
case("where", lambda x, cond, b: torch.where(cond, x.t(), b), randn(3, 4),
     {"cond": torch.tensor([[True], [False], [True], [True]]), "b": randn(3)}, grad_others=("b",))
# view: x.t() and y[:, ::2]
case("cat_d1", lambda x, y: torch.cat([x.t(), y[:, ::2]], 1), randn(2, 4),
     {"y": randn(4, 6)}, grad_others=("y",))
case("cat_d0", lambda x, y: torch.cat([x, y], 0), randn(2, 3), {"y": randn(1, 3)},
     grad_others=("y",))
case("stack_d1", lambda x, y: torch.stack([x.t(), y], 1), randn(3, 2), {"y": randn(2, 3)},
     grad_others=("y",))
# view: x.transpose(1, 2) [1, 4, 3]
case("pad_constant", lambda x: F.pad(x.transpose(1, 2), (2, 1, 1, 0), value=1.5), randn(1, 3, 4))
case("pad_negative", lambda x: F.pad(x.transpose(1, 2), (-1, 2, 0, -2)), randn(1, 3, 4))
case("pad_reflect", lambda x: F.pad(x.transpose(1, 2), (2, 1, 3, 2), mode="reflect"),
     randn(1, 3, 4))
case("pad_replicate", lambda x: F.pad(x.transpose(1, 2), (2, 1, 1, 3), mode="replicate"),
     randn(1, 3, 4))
# view: x[:, ::2] [3, 4]; reflect on a 3-D tensor (one padded dim)
case("pad_reflect1d", lambda x: F.pad(x[:, ::2].unsqueeze(0), (3, 2), mode="reflect"), randn(3, 8))
case("flip", lambda x: x.transpose(0, 1).flip(0, 2), randn(2, 3, 4))
case("roll", lambda x: x.transpose(0, 1).roll((1, -2), (0, 2)), randn(2, 3, 4))
case("roll_flat", lambda x: x.t().roll(5), randn(3, 4))
case("repeat", lambda x: x.t().repeat(2, 1, 3), randn(3, 2))

tensors = {k: v.contiguous().clone() for k, v in tensors.items()}
save_file(tensors, str(out_path), metadata={"source": "tests/golden/gen_indexing.py"})
print("wrote", out_path, sum(t.numel() * t.element_size() for t in tensors.values()), "bytes")
