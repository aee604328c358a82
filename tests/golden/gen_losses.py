"""Writes tests/fixtures/losses.safetensors: golden values and gradients of the segmentation losses
(models/losses.h) from segmentation_models_pytorch 0.6's DiceLoss(mode='binary', from_logits=True)
and torch's BCEWithLogitsLoss, for tests/models/test_losses.cpp. Run by hand:
    python3 tests/golden/gen_losses.py

Keys, per case <c> (all float32 unless noted):
    <c>.logits             [N, 1, H, W]
    <c>.target             [N, 1, H, W], 0/1
    <c>.smooth / <c>.eps   float64 [1]: DiceLoss's smooth and eps
    <c>.dice               []: DiceLoss(smooth, eps)(logits, target)
    <c>.dice.grad          d dice / d logits
    <c>.dice_bce           []: DiceLoss() + BCEWithLogitsLoss() (weights 1, 1; default smooth/eps)
    <c>.dice_bce.grad      its gradient
    <c>.dice_bce_w         []: 0.25 * DiceLoss() + 2.0 * BCEWithLogitsLoss()
    <c>.dice_bce_w.grad    its gradient
Cases: basic (random logits and masks), smooth (smooth = 1, eps = 1e-5), one_empty (one image of
the batch without positives: still one Dice over the batch), empty (no positive pixel in the batch:
the Dice term is 0), saturated (|logits| up to 40, sigmoid rounds to 0/1).
"""
import pathlib

import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "losses.safetensors"


def case(tensors, name, logits, target, smooth=0.0, eps=1e-7):
    tensors[f"{name}.logits"] = logits
    tensors[f"{name}.target"] = target
    tensors[f"{name}.smooth"] = torch.tensor([smooth], dtype=torch.float64)
    tensors[f"{name}.eps"] = torch.tensor([eps], dtype=torch.float64)
    dice = smp.losses.DiceLoss(mode="binary", from_logits=True, smooth=smooth, eps=eps)
    dice_default = smp.losses.DiceLoss(mode="binary", from_logits=True)
    bce = torch.nn.BCEWithLogitsLoss()
    losses = {
        "dice": lambda x: dice(x, target),
        "dice_bce": lambda x: dice_default(x, target) + bce(x, target),
        "dice_bce_w": lambda x: 0.25 * dice_default(x, target) + 2.0 * bce(x, target),
    }
    for key, fn in losses.items():
        x = logits.clone().requires_grad_(True)
        value = fn(x)
        (grad,) = torch.autograd.grad(value, x)
        tensors[f"{name}.{key}"] = value.detach().reshape([])
        tensors[f"{name}.{key}.grad"] = grad


def main():
    g = torch.Generator().manual_seed(6)
    tensors = {}

    def randn(*shape, scale=2.0):
        return torch.randn(*shape, generator=g) * scale

    def mask(*shape, p=0.3):
        return (torch.rand(*shape, generator=g) < p).float()

    case(tensors, "basic", randn(2, 1, 5, 6), mask(2, 1, 5, 6))
    case(tensors, "smooth", randn(2, 1, 4, 4), mask(2, 1, 4, 4), smooth=1.0, eps=1e-5)
    target = mask(3, 1, 4, 5)
    target[1].zero_()
    case(tensors, "one_empty", randn(3, 1, 4, 5), target)
    case(tensors, "empty", randn(2, 1, 3, 4), torch.zeros(2, 1, 3, 4))
    case(tensors, "saturated", randn(2, 1, 3, 3, scale=20.0), mask(2, 1, 3, 3, p=0.5))
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(OUT), metadata={"smp": smp.__version__, "torch": torch.__version__})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
