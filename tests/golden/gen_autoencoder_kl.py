"""Writes tests/fixtures/autoencoder_kl.safetensors: golden values from diffusers 0.42's
AutoencoderKL (models/autoencoders/autoencoder_kl.py, vae.py) for
tests/models/test_autoencoder_kl.cpp. Run by hand:
    python3 tests/golden/gen_autoencoder_kl.py

Tiny cases (weights stored): random float32 weights (PyTorch's default init, then random GroupNorm
affine parameters and biases so that every parameter matters); the reference runs in float64 on
those weights. Per case:
    <case>.config          uint8: the model's config.json as diffusers writes it (to_json_string)
    <case>.param.<name>    the state dict (diffusers' names)
    <case>.x               sample [2, 3, 16, 16]
    <case>.mean / .logvar  encode(x).latent_dist.mean / .logvar
    <case>.kl              encode(x).latent_dist.kl() [2]
    <case>.gm / .gl        loss weights of the encoder: loss = sum(mean * gm + logvar * gl)
    <case>.encode_grad_x   d loss / d x for that loss
    <case>.z               latents [2, 4, 4, 4]
    <case>.decode          decode(z).sample
    <case>.gy              loss weight of the decoder: loss = sum(decode * gy)
    <case>.decode_grad_z   d loss / d z
    <case>.forward         forward(x).sample (sample_posterior False: decode(mean))
Cases:
    tiny      block_out_channels (8, 16), layers_per_block 1, norm_num_groups 4, latent_channels 4
    tiny_bare the same with use_quant_conv, use_post_quant_conv and mid_block_add_attention False,
              layers_per_block 2, three blocks (4, 8, 8) and 2 groups (x [2, 3, 16, 16] -> 4x4)

Real size (no weights): SD v1's VAE config (block_out_channels 128, 256, 512, 512,
layers_per_block 2, 32 groups):
    sd.config              uint8: its config.json
    sd.num_parameters      int64 [1]: vae.num_parameters()
    sd.shape.<name>        int64: the shape of every state-dict entry
"""
import json
import pathlib

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

torch.manual_seed(20261125)
here = pathlib.Path(__file__).resolve().parent
out_path = here.parents[0] / "fixtures" / "autoencoder_kl.safetensors"
T = {}


def text_tensor(s):
    return torch.tensor(list(s.encode("utf-8")), dtype=torch.uint8)


def randomize(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))


def tiny_case(name, **config):
    vae = AutoencoderKL(**config)
    randomize(vae)
    vae.eval()
    T[f"{name}.config"] = text_tensor(vae.to_json_string())
    for k, v in vae.state_dict().items():
        T[f"{name}.param.{k}"] = v.detach().float().contiguous().clone()
    ref = vae.double()
    factor = 2 ** (len(config["block_out_channels"]) - 1)

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    T[f"{name}.x"] = x
    xd = x.double().requires_grad_(True)
    dist = ref.encode(xd).latent_dist
    T[f"{name}.mean"] = dist.mean.detach().float()
    T[f"{name}.logvar"] = dist.logvar.detach().float()
    T[f"{name}.kl"] = dist.kl().detach().float()
    gm, gl = torch.randn(dist.mean.shape), torch.randn(dist.logvar.shape)
    T[f"{name}.gm"], T[f"{name}.gl"] = gm, gl
    (dist.mean * gm.double() + dist.logvar * gl.double()).sum().backward()
    T[f"{name}.encode_grad_x"] = xd.grad.float()

    z = torch.randn(2, 4, 16 // factor, 16 // factor)
    T[f"{name}.z"] = z
    zd = z.double().requires_grad_(True)
    dec = ref.decode(zd).sample
    gy = torch.randn(dec.shape)
    T[f"{name}.decode"] = dec.detach().float()
    T[f"{name}.gy"] = gy
    (dec * gy.double()).sum().backward()
    T[f"{name}.decode_grad_z"] = zd.grad.float()

    with torch.no_grad():
        T[f"{name}.forward"] = ref(x.double()).sample.float()


DOWN, UP = "DownEncoderBlock2D", "UpDecoderBlock2D"
tiny_case("tiny", block_out_channels=(8, 16), down_block_types=(DOWN,) * 2, up_block_types=(UP,) * 2,
          layers_per_block=1, norm_num_groups=4, latent_channels=4)
tiny_case("tiny_bare", block_out_channels=(4, 8, 8), down_block_types=(DOWN,) * 3, up_block_types=(UP,) * 3,
          layers_per_block=2, norm_num_groups=2, latent_channels=4, use_quant_conv=False,
          use_post_quant_conv=False, mid_block_add_attention=False)

sd = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=(DOWN,) * 4, up_block_types=(UP,) * 4,
                   block_out_channels=(128, 256, 512, 512), layers_per_block=2, act_fn="silu",
                   latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
T["sd.config"] = text_tensor(sd.to_json_string())
T["sd.num_parameters"] = torch.tensor([sd.num_parameters()], dtype=torch.int64)
for k, v in sd.state_dict().items():
    T[f"sd.shape.{k}"] = torch.tensor(list(v.shape), dtype=torch.int64)
print("sd config:", json.loads(sd.to_json_string()))
print("sd parameters:", sd.num_parameters(), "tensors:", len(sd.state_dict()))

out_path.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(T)} tensors)")
