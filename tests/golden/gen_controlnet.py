"""Writes tests/fixtures/controlnet.safetensors: golden values from diffusers 0.42's ControlNetModel
(models/controlnets/controlnet.py: ControlNetConditioningEmbedding, the UNet's encoder blocks,
the zero 1x1 convs) for tests/models/test_controlnet.cpp. Run by hand:
    python3 tests/golden/gen_controlnet.py

A tiny model with random float32 weights: PyTorch's default init, then random GroupNorm/LayerNorm
affine parameters and biases, and the zero-initialised convs (controlnet_cond_embedding.conv_out,
controlnet_down_blocks.*, controlnet_mid_block) filled with random values, so that every parameter
matters. The reference runs in float64 on those weights. Tensors:
    tiny.config              uint8: the model's config.json as diffusers writes it
    tiny.param.<name>        the state dict (diffusers' names)
    tiny.sample              [2, 4, 8, 8]
    tiny.ehs                 encoder_hidden_states [2, 5, 8]
    tiny.t                   float32 timesteps [2]
    tiny.cond                controlnet_cond [2, 3, 64, 64] in [0, 1] (8x the latent size)
    tiny.gy.down.<i>         loss weights: loss = sum_i sum(down_i * gy.down.i) + sum(mid * gy.mid)
    tiny.gy.mid
  with conditioning_scale 0.5 (guess_mode False):
    tiny.down.<i>            down_block_res_samples[i]
    tiny.mid                 mid_block_res_sample
    tiny.grad_sample         d loss / d sample
    tiny.grad_cond           d loss / d controlnet_cond
Tiny config: block_out_channels (16, 32), layers_per_block 1, CrossAttnDownBlock2D + DownBlock2D,
cross_attention_dim 8, attention_head_dim 2 (heads), norm_num_groups 4,
conditioning_embedding_out_channels (4, 8, 8, 16) (three stride-2 convs: 8x), 4 down residuals.

Real size (no weights): an SD v1.x ControlNet config.json (lllyasviel/sd-controlnet-*, diffusers
defaults with cross_attention_dim 768):
    sd.config                uint8: its config.json
"""
import json
import pathlib

import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file

torch.manual_seed(20261125)
here = pathlib.Path(__file__).resolve().parent
out_path = here.parents[0] / "fixtures" / "controlnet.safetensors"
T = {}


def text_tensor(s):
    return torch.tensor(list(s.encode("utf-8")), dtype=torch.uint8)


def randomize(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            zero_conv = name.startswith(("controlnet_down_blocks", "controlnet_mid_block",
                                         "controlnet_cond_embedding.conv_out"))
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias") or zero_conv:
                assert not zero_conv or p.abs().max() == 0, name  # diffusers zero-initialises them
                p.copy_(0.3 * torch.randn_like(p))


CA_DOWN, DOWN = "CrossAttnDownBlock2D", "DownBlock2D"
net = ControlNetModel(block_out_channels=(16, 32), layers_per_block=1,
                      down_block_types=(CA_DOWN, DOWN), cross_attention_dim=8, attention_head_dim=2,
                      norm_num_groups=4, conditioning_embedding_out_channels=(4, 8, 8, 16))
randomize(net)
net.eval()
T["tiny.config"] = text_tensor(net.to_json_string())
for k, v in net.state_dict().items():
    T[f"tiny.param.{k}"] = v.detach().float().contiguous().clone()
print("tiny parameters:", net.num_parameters())
ref = net.double()

b = 2
sample = torch.randn(b, 4, 8, 8)
ehs = torch.randn(b, 5, 8)
t = torch.rand(b) * 1000
cond = torch.rand(b, 3, 64, 64)
T["tiny.sample"], T["tiny.ehs"], T["tiny.t"], T["tiny.cond"] = sample, ehs, t, cond

s = sample.double().requires_grad_(True)
c = cond.double().requires_grad_(True)
out = ref(s, t, ehs.double(), controlnet_cond=c, conditioning_scale=0.5, return_dict=True)
loss = 0
for i, d in enumerate(out.down_block_res_samples):
    T[f"tiny.down.{i}"] = d.detach().float()
    gy = torch.randn(d.shape)
    T[f"tiny.gy.down.{i}"] = gy
    loss = loss + (d * gy.double()).sum()
mid = out.mid_block_res_sample
T["tiny.mid"] = mid.detach().float()
T["tiny.gy.mid"] = torch.randn(mid.shape)
loss = loss + (mid * T["tiny.gy.mid"].double()).sum()
loss.backward()
T["tiny.grad_sample"] = s.grad.float()
T["tiny.grad_cond"] = c.grad.float()

sd_config = {"_class_name": "ControlNetModel", "_diffusers_version": "0.16.0.dev0",
             "_name_or_path": "lllyasviel/sd-controlnet-canny", "act_fn": "silu",
             "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
             "class_embed_type": None, "conditioning_embedding_out_channels": [16, 32, 96, 256],
             "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 768,
             "down_block_types": [CA_DOWN, CA_DOWN, CA_DOWN, DOWN], "downsample_padding": 1,
             "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
             "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
             "num_class_embeds": None, "only_cross_attention": False,
             "projection_class_embeddings_input_dim": None, "resnet_time_scale_shift": "default",
             "upcast_attention": False, "use_linear_projection": False}
T["sd.config"] = text_tensor(json.dumps(sd_config))

out_path.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(T)} tensors)")
