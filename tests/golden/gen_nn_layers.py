"""Writes tests/fixtures/nn_layers.safetensors: golden values from PyTorch (CPU) for the nn/ layers.
Run by hand:
    python3 tests/golden/gen_nn_layers.py
For each case a torch module with random weights (and random affine parameters / running
statistics where PyTorch would start at ones and zeros) runs forward on random inputs, then
loss = sum(out * gy) runs backward. Keys:
    <case>.param.<state-dict name>   the module's state dict before the forward (PyTorch's names)
    <case>.<input>                   inputs (x, or query/key/value/context/masks)
    <case>.out, <case>.gy            the output and the loss weight (= grad of the output)
    <case>.grad_<input>              gradients of floating inputs
    <case>.grad.<parameter name>     gradients of the parameters
    <case>.after.<buffer name>       buffers after the forward (BatchNorm running statistics)
    <case>.eval.out / .eval.grad_x   the same module in eval mode, where that differs
Layer configurations are repeated in tests/nn/test_layers.cpp and test_attention.cpp. The diffusers
Attention block is not installed here: DiffusersAttention below restates
diffusers.models.attention_processor.Attention + AttnProcessor2_0 with the same parameter names.
"""
import pathlib
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
torch.manual_seed(20240613)
out_path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "nn_layers.safetensors"
T = {}


def randomize(module):
    """Random values for parameters and float buffers that PyTorch initialises to constants, so the
    test exercises them (biases, norm affine weights, running statistics)."""
    norms = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)
    with torch.no_grad():
        for mod in module.modules():
            for name, p in mod.named_parameters(recurse=False):
                if name.endswith("bias"):
                    p.copy_(torch.randn_like(p) * 0.5)
                elif isinstance(mod, norms):
                    p.copy_(torch.randn_like(p) * 0.5 + 1.0)
            for name, b in mod.named_buffers(recurse=False):
                if name == "running_mean":
                    b.copy_(torch.randn_like(b) * 0.3)
                elif name == "running_var":
                    b.copy_(torch.rand_like(b) + 0.5)
                elif name == "num_batches_tracked":
                    b.fill_(3)


def record(case, module, inputs, constants=None, call=None, eval_too=False):
    """Stores the module's state dict, runs forward/backward in train mode (and, with eval_too, in
    eval mode from the same starting state)."""
    constants = constants or {}
    call = call or (lambda m, *a: m(*a))
    for name, v in module.state_dict().items():
        T[f"{case}.param.{name}"] = v.detach().clone().contiguous()
    start = {k: v.clone() for k, v in module.state_dict().items()}
    for name, v in {**inputs, **constants}.items():
        T[f"{case}.{name}"] = v.clone().contiguous()

    def run(prefix):
        leaves = [v.clone().requires_grad_(v.is_floating_point()) for v in inputs.values()]
        module.zero_grad(set_to_none=True)
        out = call(module, *leaves, *constants.values())
        gy = T.setdefault(f"{case}.gy", torch.randn(out.shape))
        (out * gy).sum().backward()
        T[f"{prefix}out"] = out.detach().contiguous()
        for (name, _), leaf in zip(inputs.items(), leaves):
            if leaf.grad is not None:
                T[f"{prefix}grad_{name}"] = leaf.grad.contiguous()
        for name, p in module.named_parameters():
            if p.grad is not None:
                T[f"{prefix}grad.{name}"] = p.grad.contiguous()

    module.train()
    run(f"{case}.")
    for name, b in module.named_buffers():
        T[f"{case}.after.{name}"] = b.detach().clone().contiguous()
    if eval_too:
        module.load_state_dict(start)
        module.eval()
        run(f"{case}.eval.")


def fn_module(fn):
    class Fn(nn.Module):
        def forward(self, x):
            return fn(x)

    return Fn()


# ---- Linear ----
m = nn.Linear(5, 3)
randomize(m)
record("linear", m, {"x": torch.randn(2, 4, 5)})
record("linear_nobias", nn.Linear(4, 2, bias=False), {"x": torch.randn(3, 4)})

# ---- Conv2d ----
m = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
record("conv", m, {"x": torch.randn(2, 4, 7, 7)})
m = nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 1), dilation=2, bias=False)
record("conv_dilated", m, {"x": torch.randn(1, 3, 8, 8)})

# ---- norms ----
m = nn.GroupNorm(2, 6)
randomize(m)
record("group_norm", m, {"x": torch.randn(2, 6, 3, 3)})
m = nn.LayerNorm([4, 5])
randomize(m)
record("layer_norm", m, {"x": torch.randn(2, 3, 4, 5)})
m = nn.LayerNorm(6, eps=1e-6, bias=False)
randomize(m)
record("layer_norm_nobias", m, {"x": torch.randn(3, 6)})
m = nn.BatchNorm2d(3)
randomize(m)
record("batch_norm", m, {"x": torch.randn(4, 3, 5, 5)}, eval_too=True)
m = nn.BatchNorm2d(3, momentum=None)
randomize(m)
record("batch_norm_cma", m, {"x": torch.randn(2, 3, 4, 4)})

# ---- Embedding ----
record("embedding", nn.Embedding(10, 4), {}, {"idx": torch.tensor([[1, 3, 3], [9, 0, 1]])})
m = nn.Embedding(6, 3, padding_idx=1)
with torch.no_grad():
    m.weight[1] = torch.randn(3)  # a loaded, non-zero padding row: used forward, no gradient
record("embedding_pad", m, {}, {"idx": torch.tensor([[1, 2], [1, 5], [0, 2]])})

# ---- activations ----
x_act = torch.randn(3, 7) * 2
for name, mod in [("relu", nn.ReLU()), ("silu", nn.SiLU()), ("gelu", nn.GELU()),
                  ("gelu_tanh", nn.GELU(approximate="tanh")), ("sigmoid", nn.Sigmoid()),
                  ("tanh", nn.Tanh()), ("quick_gelu", fn_module(lambda x: x * torch.sigmoid(1.702 * x)))]:
    record(name, mod, {"x": x_act})

# ---- resampling and pooling ----
record("up_nearest", nn.Upsample(scale_factor=2, mode="nearest"), {"x": torch.randn(1, 2, 3, 4)})
record("up_bilinear_size", nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False),
       {"x": torch.randn(1, 2, 3, 4)})
record("up_bilinear_align", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
       {"x": torch.randn(2, 1, 3, 3)})
record("max_pool", nn.MaxPool2d(3, stride=2, padding=1), {"x": torch.randn(2, 3, 7, 7)})
record("max_pool_ceil", nn.MaxPool2d(2, ceil_mode=True), {"x": torch.randn(1, 2, 5, 5)})
record("avg_pool", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
       {"x": torch.randn(2, 3, 7, 7)})
record("adaptive_avg_pool", nn.AdaptiveAvgPool2d((2, 3)), {"x": torch.randn(2, 3, 5, 7)})

# ---- MultiheadAttention ----
m = nn.MultiheadAttention(8, 2)
randomize(m)
record("mha_self", m, {"x": torch.randn(5, 2, 8)}, call=lambda m, x: m(x, x, x, need_weights=False)[0])
m = nn.MultiheadAttention(8, 4, batch_first=True)
randomize(m)
kpm = torch.tensor([[False, False, True, False, False, True], [False, False, False, False, True, True]])
am = torch.randn(4, 6)
record("mha_cross", m, {"query": torch.randn(2, 4, 8), "key": torch.randn(2, 6, 8), "value": torch.randn(2, 6, 8)},
       {"key_padding_mask": kpm, "attn_mask": am},
       call=lambda m, q, k, v, kpm, am: m(q, k, v, key_padding_mask=kpm, attn_mask=am, need_weights=False)[0])
m = nn.MultiheadAttention(6, 2, bias=False)
causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)  # True = not allowed
record("mha_causal", m, {"x": torch.randn(4, 6)}, {"attn_mask": causal},
       call=lambda m, x, am: m(x, x, x, attn_mask=am, need_weights=False)[0])


# ---- diffusers' Attention block ----
class DiffusersAttention(nn.Module):
    """diffusers Attention (attention_processor.py) with AttnProcessor2_0, same parameter names."""

    def __init__(self, query_dim, cross_attention_dim=None, heads=8, dim_head=64, bias=False,
                 out_bias=True, norm_num_groups=None, eps=1e-5, residual_connection=False,
                 rescale_output_factor=1.0):
        super().__init__()
        inner = heads * dim_head
        cross = cross_attention_dim or query_dim
        self.heads, self.residual_connection = heads, residual_connection
        self.rescale_output_factor = rescale_output_factor
        self.group_norm = nn.GroupNorm(norm_num_groups, query_dim, eps=eps) if norm_num_groups else None
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(cross, inner, bias=bias)
        self.to_v = nn.Linear(cross, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=out_bias), nn.Dropout(0.0)])

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None):
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attention_mask is not None and attention_mask.ndim == 3:
            attention_mask = attention_mask.unsqueeze(1)
        if self.group_norm is not None:
            hidden_states = self.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = self.to_q(hidden_states)
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        key, value = self.to_k(ctx), self.to_v(ctx)
        head_dim = key.shape[-1] // self.heads
        query, key, value = (t.view(batch, -1, self.heads, head_dim).transpose(1, 2) for t in (query, key, value))
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, self.heads * head_dim)
        hidden_states = self.to_out[1](self.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if self.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / self.rescale_output_factor


m = DiffusersAttention(16, heads=2, dim_head=4)
record("attn_self", m, {"x": torch.randn(2, 6, 16)})
m = DiffusersAttention(16, cross_attention_dim=10, heads=2, dim_head=4, bias=True)
randomize(m)
amask = torch.tensor([[[True, True, False, True, True]], [[True, True, True, True, False]]])  # True = keep
record("attn_cross", m, {"x": torch.randn(2, 6, 16), "context": torch.randn(2, 5, 10)},
       {"mask": amask}, call=lambda m, x, c, mask: m(x, c, mask))
m = DiffusersAttention(8, heads=1, dim_head=8, bias=True, norm_num_groups=4, eps=1e-6,
                       residual_connection=True, rescale_output_factor=2.0)
randomize(m)
record("attn_vae", m, {"x": torch.randn(2, 8, 3, 3)})


# ---- a small network: nested names (ModuleList of Sequential), BatchNorm, train and eval ----
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.layers = nn.ModuleList([
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.SiLU()),
            nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        ])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        for layer in self.layers:
            x = layer(x)
        return self.fc(self.pool(x).flatten(1))


m = Net()
randomize(m)
record("net", m, {"x": torch.randn(2, 2, 6, 6)}, eval_too=True)

save_file(T, str(out_path))
print(f"wrote {len(T)} tensors, {out_path.stat().st_size} bytes to {out_path}")
