"""Writes tests/fixtures/resnet.safetensors: golden values from torchvision's ResNet
(torchvision/models/resnet.py) for tests/models/test_resnet.cpp. Run by hand:
    python3 tests/golden/gen_resnet.py

Tiny cases (weights stored): torchvision's ResNet with in_channels 1, 3 classes and base width w
instead of 64, the stem and stages rebuilt by torchvision's own ResNet._make_layer with planes
w, 2w, 4w, 8w:
    basic:      BasicBlock, layers [2, 1, 1, 1], w = 8
    bottleneck: Bottleneck, layers [1, 2, 1, 1], w = 4
Weights: torchvision's init (kaiming_normal fan_out convolutions, default Linear), then random
BatchNorm affine parameters and running statistics. The reference runs in float64 on the float32
weights; the printout gives PyTorch's own float32 error against it. Per case:
    <case>.param.<name>          the state dict before the forward
    <case>.x, <case>.gy          input [2, 1, 64, 64] and loss weight: loss = sum(out * gy)
    <case>.<mode>.out            logits, mode = train | eval (both start from param.*)
    <case>.<mode>.grad_x         d loss / d x
    <case>.train.grad.<name>     d loss / d parameter, every parameter
    <case>.eval.grad.<name>      the same in eval mode for EVAL_GRADS (a few, to keep the file small)
    <case>.train.after.<name>    BatchNorm buffers after the train-mode forward
    <case>.eval.feature.<i>      smp ResNetEncoder's features 1..5 (eval mode)

Real size (no weights stored): the formula weights of tests/golden/formula_weights.py,
    real50: torchvision resnet50() (1000 classes), input [2, 3, 64, 64]
    real18: torchvision resnet18(num_classes=1) with a 1-channel conv1, input [2, 1, 64, 64]
with <case>.x, .gy, .<mode>.out, .<mode>.grad_x as above, and formula.<k>.<name>: a few formula
tensors (k-th entry called name) for a bitwise check of the C++ fill. State-dict names and shapes
(<name>.shape.<key>, int64) and parameter counts (<name>.num_parameters) of torchvision's
resnet18, resnet34, resnet50 and resnet50(num_classes=1).
"""
import pathlib
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, Bottleneck

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
import formula_weights  # noqa: E402

torch.manual_seed(20261125)
out_path = here.parents[0] / "fixtures" / "resnet.safetensors"
T = {}


def tiny_resnet(block, layers, width, in_channels, classes):
    m = torchvision.models.ResNet(block, [1, 1, 1, 1], num_classes=classes)
    m.inplanes = width
    m.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.layer1 = m._make_layer(block, width, layers[0])
    m.layer2 = m._make_layer(block, 2 * width, layers[1], stride=2)
    m.layer3 = m._make_layer(block, 4 * width, layers[2], stride=2)
    m.layer4 = m._make_layer(block, 8 * width, layers[3], stride=2)
    m.fc = nn.Linear(8 * width * block.expansion, classes)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):  # torchvision's init of the rebuilt convolutions
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand_like(mod.weight) * 0.6 + 0.7)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.2)
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.2)
                mod.running_var.copy_(torch.rand_like(mod.running_var) * 0.8 + 0.6)
                mod.num_batches_tracked.fill_(5)
    return m


def run(m, x, gy):
    """Forward and backward of sum(out * gy); returns out, d/dx and the parameter gradients."""
    x = x.clone().requires_grad_(True)
    m.zero_grad(set_to_none=True)
    out = m(x)
    (out * gy).sum().backward()
    return out, x.grad, {k: p.grad for k, p in m.named_parameters()}


def encoder_features(m, x):
    """segmentation_models_pytorch ResNetEncoder.forward at depth 5 (features 1..5)."""
    h = m.relu(m.bn1(m.conv1(x)))
    feats = [h]
    h = m.layer1(m.maxpool(h))
    feats.append(h)
    for layer in (m.layer2, m.layer3, m.layer4):
        h = layer(h)
        feats.append(h)
    return feats


EVAL_GRADS = ("conv1.weight", "bn1.weight", "layer2.0.downsample.0.weight", "layer4.0.bn1.bias",
              "fc.weight", "fc.bias")


def rel_err(a, b):
    """Error norm relative to the norm of the reference."""
    return ((a.double() - b).norm() / b.norm()).item()


def record(case, m, x, gy, weights_stored):
    """Records the case; returns PyTorch's float32 error (relative norm) in eval mode. Train mode
    stores it as <case>.train.float32_error: through resnet50's train-mode BatchNorm backward over
    a few values per channel, PyTorch's own float32 input gradient is off by 1e-2."""
    worst = 0.0
    start = {k: v.clone() for k, v in m.state_dict().items()}
    if weights_stored:
        for k, v in start.items():
            T[f"{case}.param.{k}"] = v.contiguous()
    T[f"{case}.x"] = x
    T[f"{case}.gy"] = gy
    m32 = m
    m64 = m.__class__.__new__(m.__class__)
    for mode in ("train", "eval"):
        # float32 PyTorch, to report its own error against the float64 reference.
        m32.load_state_dict(start)
        m32.float().train(mode == "train")
        out32, gx32, _ = run(m32, x, gy)
        m64 = m32.double()
        m64.load_state_dict(start)
        m64.train(mode == "train")
        out, gx, grads = run(m64, x.double(), gy.double())
        print(f"{case} {mode}: |out| max {out.abs().max().item():.3g}, float32 error out "
              f"{rel_err(out32, out):.1e} grad_x {rel_err(gx32, gx):.1e} (relative norms)")
        if mode == "eval":
            worst = max(rel_err(out32, out), rel_err(gx32, gx))
        else:
            T[f"{case}.train.float32_error"] = torch.tensor(
                [rel_err(out32, out), rel_err(gx32, gx)], dtype=torch.float64)
        T[f"{case}.{mode}.out"] = out.detach().float().contiguous()
        T[f"{case}.{mode}.grad_x"] = gx.float().contiguous()
        if weights_stored:
            for k, g in grads.items():
                if mode == "train" or k in EVAL_GRADS:
                    T[f"{case}.{mode}.grad.{k}"] = g.float().contiguous()
            if mode == "train":
                for k, v in m64.state_dict().items():
                    if "running" in k or "num_batches" in k:
                        T[f"{case}.train.after.{k}"] = v.to(start[k].dtype).clone()
            else:
                with torch.no_grad():
                    for i, f in enumerate(encoder_features(m64, x.double())):
                        T[f"{case}.eval.feature.{i + 1}"] = f.float().contiguous()
        m.float()
    return worst


# ---- tiny cases ----
for case, block, layers, width in (("basic", BasicBlock, [2, 1, 1, 1], 8),
                                   ("bottleneck", Bottleneck, [1, 2, 1, 1], 4)):
    m = tiny_resnet(block, layers, width, in_channels=1, classes=3)
    record(case, m, torch.randn(2, 1, 64, 64), torch.randn(2, 3), weights_stored=True)

# ---- real sizes with formula weights ----
real50 = torchvision.models.resnet50()
real18 = torchvision.models.resnet18(num_classes=1)
real18.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
for case, m, c, classes in (("real50", real50, 3, 1000), ("real18", real18, 1, 1)):
    m.load_state_dict(formula_weights.state_dict(m.state_dict()))
    # A ReLU or max-pool input within rounding of its kink flips the gradient path: inputs are
    # redrawn until PyTorch's own float32 eval-mode run agrees with float64 to 1e-4, so the test
    # measures the model, not such flips.
    for attempt in range(20):
        x, gy = torch.randn(2, c, 64, 64), torch.randn(2, classes)
        if record(case, m, x, gy, weights_stored=False) < 1e-4:
            break
    else:
        raise RuntimeError(f"{case}: no well-conditioned input in 20 draws")

# ---- the formula itself, to check the C++ fill bit for bit ----
for k, name, shape in ((3, "conv.weight", (5, 3, 3, 3)), (0, "bn.weight", (7,)),
                       (11, "fc.bias", (6,)), (2, "bn.running_mean", (4,)),
                       (70000, "bn.running_var", (4,)), (1, "fc.weight", (3, 9))):
    T[f"formula.{k}.{name}"] = formula_weights.formula_tensor(name, torch.zeros(shape), k)

# ---- state-dict names, shapes and parameter counts ----
for name, m in (("resnet18", torchvision.models.resnet18()),
                ("resnet34", torchvision.models.resnet34()),
                ("resnet50", torchvision.models.resnet50()),
                ("resnet50_1", torchvision.models.resnet50(num_classes=1))):
    for k, v in m.state_dict().items():
        T[f"{name}.shape.{k}"] = torch.tensor(list(v.shape), dtype=torch.int64)
    T[f"{name}.num_parameters"] = torch.tensor(sum(p.numel() for p in m.parameters()))
    print(name, "parameters:", T[f"{name}.num_parameters"].item())

save_file(T, str(out_path))
print(f"wrote {len(T)} tensors, {out_path.stat().st_size} bytes to {out_path}")
