"""Writes tests/fixtures/unetplusplus.safetensors: golden values from segmentation_models_pytorch
(smp 0.6) UnetPlusPlus for tests/models/test_unetplusplus.cpp. Run by hand:
    python3 tests/golden/gen_unetplusplus.py

Tiny cases (weights stored): smp's UnetPlusPlus whose ResNet encoder is rebuilt with torchvision's
own blocks (ResNet._make_layer) at a small base width instead of 64 (our encoder_base_width);
decoder and head are smp's, built for the smaller encoder channels. Random weights, with random
BatchNorm affine parameters, running statistics and biases, redrawn until PyTorch's own float32
train-mode run agrees with float64 to 2e-5 (relative to the largest value), so the comparison
measures the model and not rounding amplified by BatchNorm over a few values. The reference runs
in float64 on the float32 weights. Per case:
    <case>.param.<name>            the state dict (smp's names) before the forward
    <case>.x, <case>.gy            input and loss weight: loss = sum(out * gy) (+ the deep-supervision
                                   outputs times <case>.gy_ds.<i>)
    <case>.<mode>.out              logits, mode = train | eval (eval starts from the same state dict)
    <case>.<mode>.ds.<i>           deep-supervision logits (cases with deep supervision)
    <case>.<mode>.grad_x           d loss / d x
    <case>.<mode>.grad.<name>      d loss / d parameter (every parameter that gets a gradient)
    <case>.train.after.<name>      BatchNorm buffers after the train-mode forward
Deep supervision is our extension (smp has none): deep_supervision_heads.<i> is smp's
SegmentationHead(C, classes, kernel_size=1, upsampling=2) on decoder node
x_<depth-2-i>_<depth-2>, captured with a forward hook on smp's decoder block.

Real size (no weights): smp's default-sized models, their state-dict names and shapes
(<case>.shape.<name>, int64) and parameter counts (<case>.num_parameters):
    real34: UnetPlusPlus("resnet34", in_channels=1, classes=1) (the study's model)
    real50: UnetPlusPlus("resnet50", in_channels=3, classes=1)
real34 also runs at 1x1x64x64 with the formula weights of tests/golden/formula_weights.py
(real34.x, real34.gy, real34.<mode>.out, real34.<mode>.grad_x for mode = train | eval).
"""
import pathlib
import sys

import segmentation_models_pytorch as smp
import torch
import torch.nn as nn
from safetensors.torch import save_file
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.decoders.unetplusplus.decoder import UnetPlusPlusDecoder
from segmentation_models_pytorch.encoders.resnet import ResNetEncoder
from torchvision.models.resnet import BasicBlock, Bottleneck

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import formula_weights  # noqa: E402

torch.manual_seed(20261125)
here = pathlib.Path(__file__).resolve().parent
out_path = here.parents[0] / "fixtures" / "unetplusplus.safetensors"
T = {}

BLOCKS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
          "resnet50": (Bottleneck, [3, 4, 6, 3])}


class NarrowResNetEncoder(ResNetEncoder):
    """smp's ResNetEncoder with base width `width`: torchvision's stem and stages rebuilt by
    torchvision's own _make_layer with planes width, 2w, 4w, 8w instead of 64 .. 512."""

    def __init__(self, name, depth, in_channels, width):
        block, layers = BLOCKS[name]
        e = block.expansion
        super().__init__(out_channels=[in_channels, width, width * e, 2 * width * e,
                                       4 * width * e, 8 * width * e],
                         depth=depth, block=block, layers=layers)
        self._in_channels = in_channels
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)


def tiny_model(name, depth, decoder_channels, in_channels, classes, width, deep_supervision):
    m = smp.UnetPlusPlus(name, encoder_weights=None, encoder_depth=depth,
                         decoder_channels=decoder_channels, in_channels=in_channels,
                         classes=classes)
    m.encoder = NarrowResNetEncoder(name, depth, in_channels, width)
    m.decoder = UnetPlusPlusDecoder(m.encoder.out_channels, decoder_channels, n_blocks=depth)
    m.segmentation_head = SegmentationHead(decoder_channels[-1], classes, kernel_size=3)
    if deep_supervision:
        channels = m.encoder.out_channels[1]
        m.deep_supervision_heads = nn.ModuleList(
            [SegmentationHead(channels, classes, kernel_size=1, upsampling=2)
             for _ in range(depth - 2)])
    return m


def randomize(m):
    """Conv weights ~ N(0, 1/fan_in) (activations keep their scale), biases, BatchNorm affine
    parameters and running statistics random, so that every tensor is exercised."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn_like(mod.weight) / fan_in ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn_like(mod.bias) * 0.2)
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand_like(mod.weight) * 0.6 + 0.7)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.2)
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.2)
                mod.running_var.copy_(torch.rand_like(mod.running_var) * 0.8 + 0.6)
                mod.num_batches_tracked.fill_(5)


def run(m, x, gy, gy_ds):
    """Forward (+ deep-supervision heads) and backward of sum(out * gy) + sum(ds_i * gy_ds_i)."""
    depth = len(m.decoder.out_channels)
    nodes = {}
    hooks = []
    if hasattr(m, "deep_supervision_heads"):
        for i in range(depth - 2):
            block = m.decoder.blocks[f"x_{depth - 2 - i}_{depth - 2}"]
            hooks.append(block.register_forward_hook(
                lambda mod, inp, out, i=i: nodes.__setitem__(i, out)))
    x = x.clone().requires_grad_(True)
    m.zero_grad(set_to_none=True)
    out = m(x)
    for h in hooks:
        h.remove()
    ds = [m.deep_supervision_heads[i](nodes[i]) for i in range(len(nodes))]
    loss = (out * gy).sum() + sum((d * g).sum() for d, g in zip(ds, gy_ds))
    loss.backward()
    return out, ds, x.grad


def float32_error(m, x, gy, gy_ds):
    """Largest error, relative to the largest magnitude, of PyTorch's own float32 train-mode run
    (output, deep-supervision outputs, input gradient) against float64. BatchNorm over a few
    values can amplify rounding a thousandfold; such draws would test the rounding, not the model."""
    start = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    res32 = run(m, x, gy.float(), [g.float() for g in gy_ds])
    m.double()
    m.load_state_dict(start)
    res64 = run(m, x.double(), gy, gy_ds)
    m.float()
    m.load_state_dict(start)
    pairs = [(res32[0], res64[0]), *zip(res32[1], res64[1]), (res32[2], res64[2])]
    return max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in pairs)


def record_tiny(case, m, x):
    out_shape = (x.shape[0], m.segmentation_head[0].out_channels, *x.shape[2:])
    gy = torch.randn(out_shape, dtype=torch.float64)
    n_ds = len(getattr(m, "deep_supervision_heads", []))
    gy_ds = [torch.randn(out_shape, dtype=torch.float64) for _ in range(n_ds)]
    for attempt in range(20):
        randomize(m)
        error = float32_error(m, x, gy, gy_ds)
        if error < 2e-5:
            break
    else:
        raise RuntimeError(f"{case}: no well-conditioned draw in 20 attempts")
    print(f"{case}: draw {attempt}, float32 vs float64 relative error {error:.2e}")
    for k, v in m.state_dict().items():
        T[f"{case}.param.{k}"] = v.detach().clone().contiguous()
    start = {k: v.clone() for k, v in m.state_dict().items()}
    m.double()
    xd = x.double()
    T[f"{case}.x"] = x.contiguous()
    T[f"{case}.gy"] = gy.float()
    for i, g in enumerate(gy_ds):
        T[f"{case}.gy_ds.{i}"] = g.float()
    for mode in ("train", "eval"):
        m.load_state_dict(start)
        m.train(mode == "train")
        out, ds, gx = run(m, xd, gy, gy_ds)
        T[f"{case}.{mode}.out"] = out.detach().float().contiguous()
        for i, d in enumerate(ds):
            T[f"{case}.{mode}.ds.{i}"] = d.detach().float().contiguous()
        T[f"{case}.{mode}.grad_x"] = gx.float().contiguous()
        for k, p in m.named_parameters():
            if p.grad is not None:
                T[f"{case}.{mode}.grad.{k}"] = p.grad.float().contiguous()
        if mode == "train":
            for k, b in m.named_buffers():
                T[f"{case}.train.after.{k}"] = b.detach().to(
                    torch.float32 if b.is_floating_point() else b.dtype).clone().contiguous()


def record_real(case, m):
    for k, v in m.state_dict().items():
        T[f"{case}.shape.{k}"] = torch.tensor(list(v.shape), dtype=torch.int64)
    T[f"{case}.num_parameters"] = torch.tensor(sum(p.numel() for p in m.parameters()),
                                               dtype=torch.int64)


# Tiny 1: resnet18 layout at depth 3, two classes, one input channel, deep supervision (one head).
record_tiny("tiny18", tiny_model("resnet18", 3, (16, 8, 4), 1, 2, 4, True),
            torch.randn(2, 1, 32, 32))
# Tiny 2: resnet50 layout (Bottleneck) at depth 4, two deep-supervision heads.
record_tiny("tiny50", tiny_model("resnet50", 4, (16, 12, 8, 4), 3, 1, 2, True),
            torch.randn(2, 3, 32, 32))

real34 = smp.UnetPlusPlus("resnet34", encoder_weights=None, in_channels=1, classes=1)
record_real("real34", real34)
record_real("real50", smp.UnetPlusPlus("resnet50", encoder_weights=None, in_channels=3, classes=1))

# The study's model with the formula weights: float32 rounding amplified by train-mode BatchNorm
# over layer4's 2x2 values (printed) makes its train-mode input gradient a loose comparison.
real34.load_state_dict(formula_weights.state_dict(real34.state_dict()))
x = torch.randn(1, 1, 64, 64)
gy = torch.randn(1, 1, 64, 64, dtype=torch.float64)
print(f"real34: float32 vs float64 relative error {float32_error(real34, x, gy, []):.2e}")
start = {k: v.clone() for k, v in real34.state_dict().items()}
real34.double()
T["real34.x"] = x
T["real34.gy"] = gy.float()
for mode in ("train", "eval"):
    real34.load_state_dict(start)
    real34.train(mode == "train")
    out, _, gx = run(real34, x.double(), gy, [])
    T[f"real34.{mode}.out"] = out.detach().float().contiguous()
    T[f"real34.{mode}.grad_x"] = gx.float().contiguous()

save_file(T, str(out_path))
print(f"wrote {len(T)} tensors, {out_path.stat().st_size} bytes to {out_path}")
