"""Writes tests/fixtures/diffusers_blocks.safetensors: golden values from diffusers 0.42's building
blocks (models/resnet.py ResnetBlock2D, downsampling.py Downsample2D, upsampling.py Upsample2D,
unets/unet_2d_blocks.py DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D) for
tests/models/test_diffusers_blocks.cpp. Run by hand:
    python3 tests/golden/gen_diffusers_blocks.py

Each case is one block in a tiny configuration with random float32 weights (GroupNorm affine
parameters and all biases random too, so that every parameter matters). The reference runs in
float64 on those weights; loss = sum(out * gy). Per case:
    <case>.param.<name>   the block's state dict (diffusers' names)
    <case>.x              input [N, C, H, W]
    <case>.temb           time embedding [N, T] (cases with a time embedding)
    <case>.gy             loss weight, the output's shape
    <case>.out            output
    <case>.grad_x         d loss / d x
    <case>.grad_temb      d loss / d temb (cases with a time embedding)
    <case>.grad.<name>    d loss / d parameter
Cases (the C++ test rebuilds the same configurations):
    resnet_temb     ResnetBlock2D(in 4, out 8, temb 6, groups 2, eps 1e-5): conv_shortcut, temb
    resnet_plain    ResnetBlock2D(in 8, out 8, no temb, groups 4, eps 1e-6, output_scale_factor 2)
    down_pad0       Downsample2D(4 -> 6, use_conv, padding 0) on 7x6 (the VAE's asymmetric pad)
    down_pad1       Downsample2D(4 -> 6, use_conv, padding 1) on 7x6 (the UNet's)
                    (both name="op" as the blocks build them: the conv under "conv" only; the
                    default name "conv" would also alias it as "Conv2d_0")
    up_x2           Upsample2D(4 -> 6, use_conv) on 3x5
    up_size         the same with output_size (7, 10)
    down_encoder    DownEncoderBlock2D(4, 8, num_layers 2, groups 4, add_downsample, padding 0)
    up_decoder      UpDecoderBlock2D(8, 4, num_layers 2, groups 2, add_upsample)
    mid             UNetMidBlock2D(8, temb None, groups 4, attention_head_dim 8) (the VAE's)
    mid_noattn      the same with add_attention False
"""
import pathlib

import torch
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_2d_blocks import DownEncoderBlock2D, UNetMidBlock2D, UpDecoderBlock2D
from diffusers.models.upsampling import Upsample2D
from safetensors.torch import save_file

torch.manual_seed(20261125)
here = pathlib.Path(__file__).resolve().parent
out_path = here.parents[0] / "fixtures" / "diffusers_blocks.safetensors"
T = {}


def randomize(module):
    """Random norm affine parameters and biases (diffusers starts them at 1 / 0)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))


def case(name, module, x_shape, temb_shape=None, **kwargs):
    randomize(module)
    module.eval()
    for k, v in module.state_dict().items():
        T[f"{name}.param.{k}"] = v.detach().float().contiguous().clone()
    x = torch.randn(*x_shape)
    T[f"{name}.x"] = x
    ref = module.double()
    xd = x.double().requires_grad_(True)
    args = [xd]
    if temb_shape is not None:
        temb = torch.randn(*temb_shape)
        T[f"{name}.temb"] = temb
        td = temb.double().requires_grad_(True)
        args.append(td)
    out = ref(*args, **kwargs)
    gy = torch.randn(out.shape)
    T[f"{name}.gy"] = gy
    T[f"{name}.out"] = out.detach().float()
    (out * gy.double()).sum().backward()
    T[f"{name}.grad_x"] = xd.grad.float()
    if temb_shape is not None:
        T[f"{name}.grad_temb"] = td.grad.float()
    for k, p in ref.named_parameters():
        if p.grad is not None:
            T[f"{name}.grad.{k}"] = p.grad.float()


case("resnet_temb", ResnetBlock2D(in_channels=4, out_channels=8, temb_channels=6, groups=2, eps=1e-5),
     (2, 4, 5, 6), (2, 6))
case("resnet_plain", ResnetBlock2D(in_channels=8, out_channels=8, temb_channels=None, groups=4, eps=1e-6,
                                   output_scale_factor=2.0), (2, 8, 4, 5), None, temb=None)
case("down_pad0", Downsample2D(4, use_conv=True, out_channels=6, padding=0, name="op"), (2, 4, 7, 6))
case("down_pad1", Downsample2D(4, use_conv=True, out_channels=6, padding=1, name="op"), (2, 4, 7, 6))
case("up_x2", Upsample2D(4, use_conv=True, out_channels=6), (2, 4, 3, 5))
case("up_size", Upsample2D(4, use_conv=True, out_channels=6), (2, 4, 3, 5), output_size=(7, 10))
case("down_encoder", DownEncoderBlock2D(4, 8, num_layers=2, resnet_groups=4, resnet_eps=1e-6,
                                        add_downsample=True, downsample_padding=0), (2, 4, 6, 6))
case("up_decoder", UpDecoderBlock2D(8, 4, num_layers=2, resnet_groups=2, resnet_eps=1e-6,
                                    add_upsample=True), (2, 8, 3, 4))
case("mid", UNetMidBlock2D(8, temb_channels=None, resnet_groups=4, resnet_eps=1e-6,
                           attention_head_dim=8, add_attention=True), (2, 8, 3, 4))
case("mid_noattn", UNetMidBlock2D(8, temb_channels=None, resnet_groups=4, resnet_eps=1e-6,
                                  attention_head_dim=8, add_attention=False), (2, 8, 3, 4))

out_path.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(T)} tensors)")
