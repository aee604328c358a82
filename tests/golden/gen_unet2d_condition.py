"""Writes tests/fixtures/unet2d_condition.safetensors: golden values from diffusers 0.42's
UNet2DConditionModel (models/unets/unet_2d_condition.py and the blocks of unet_2d_blocks.py,
transformers/transformer_2d.py, attention.py, embeddings.py) for
tests/models/test_unet2d_condition.cpp. Run by hand:
    python3 tests/golden/gen_unet2d_condition.py

Tiny models with random float32 weights (PyTorch's default init, then random GroupNorm/LayerNorm
affine parameters and biases so that every parameter matters); the reference runs in float64 on
those weights (the sinusoidal timestep embedding stays float32, as in diffusers). Per case:
    <case>.config            uint8: the model's config.json as diffusers writes it
    <case>.param.<name>      the state dict (diffusers' names)
    <case>.sample            [B, 4, H, W]
    <case>.ehs               encoder_hidden_states [B, S, cross_attention_dim]
    <case>.t_float           float32 timesteps [B]
    <case>.t_int             int64 scalar timestep (a 0-dim tensor)
    <case>.gy                loss weight: loss = sum(out * gy)
  run "float" (timestep t_float), run "int" (timestep t_int), run "ctrl" (t_float plus ControlNet
  residuals <case>.ctrl.down.<i> and <case>.ctrl.mid, random, the shapes of the skip tensors):
    <case>.<run>.out             forward(...).sample
    <case>.<run>.grad_sample     d loss / d sample
    <case>.<run>.grad_ehs        d loss / d encoder_hidden_states
    <case>.ctrl.grad_down.<i>    d loss / d down residual i (run "ctrl" only)
    <case>.ctrl.grad_mid         d loss / d mid residual
Cases:
    tiny    block_out_channels (16, 32), layers_per_block 1, CrossAttnDownBlock2D + DownBlock2D,
            UpBlock2D + CrossAttnUpBlock2D, cross_attention_dim 8, attention_head_dim 2 (heads),
            norm_num_groups 4, sample [2, 4, 8, 8], S 5
    linear  block_out_channels (8, 16, 16), three blocks, use_linear_projection, attention_head_dim
            [2, 4, 4], transformer_layers_per_block [1, 2, 2], layers_per_block 2 (3 resnets per up
            block), flip_sin_to_cos False, freq_shift 1, center_input_sample, mid_block_scale_factor
            1.5, time_embedding_dim 40, conv_in_kernel 5, 2 groups, sample [1, 4, 7, 9] (not a
            multiple of 4: upsample_size is forwarded), S 3

Timestep embedding (embeddings.py get_timestep_embedding), for tests/models/test_unet_blocks.cpp:
    temb.t / temb.t_int    float32 [5] / int64 [3] timesteps
    temb.<name>            the embedding of temb.t for: sd (dim 320, flip_sin_to_cos, shift 0),
                           odd (dim 7, no flip, shift 1, scale 2), int (dim 8, flip, of temb.t_int)

Real size (no weights): SD v1's unet/config.json (cross_attention_dim 768):
    sd.config              uint8: its config.json
"""
import pathlib

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.embeddings import get_timestep_embedding
from safetensors.torch import save_file

torch.manual_seed(20261126)
here = pathlib.Path(__file__).resolve().parent
out_path = here.parents[0] / "fixtures" / "unet2d_condition.safetensors"
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


def skip_shapes(config, b, h, w):
    """Shapes of the down path's skip tensors (conv_in output, each layer, each downsampler)."""
    ch = config["block_out_channels"]
    layers = config["layers_per_block"]
    shapes = [(b, ch[0], h, w)]
    for i, c in enumerate(ch):
        shapes += [(b, c, h, w)] * layers
        if i + 1 < len(ch):
            h, w = (h + 1) // 2, (w + 1) // 2
            shapes.append((b, c, h, w))
    return shapes, (b, ch[-1], h, w)


def run(ref, name, tag, sample, ehs, t, gy, ctrl=None):
    s = sample.double().requires_grad_(True)
    e = ehs.double().requires_grad_(True)
    kwargs = {}
    if ctrl is not None:
        down = [d.double().requires_grad_(True) for d in ctrl[0]]
        mid = ctrl[1].double().requires_grad_(True)
        kwargs = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
    out = ref(s, t, e, **kwargs).sample
    T[f"{name}.{tag}.out"] = out.detach().float()
    (out * gy.double()).sum().backward()
    T[f"{name}.{tag}.grad_sample"] = s.grad.float()
    T[f"{name}.{tag}.grad_ehs"] = e.grad.float()
    if ctrl is not None:
        for i, d in enumerate(down):
            T[f"{name}.{tag}.grad_down.{i}"] = d.grad.float()
        T[f"{name}.{tag}.grad_mid"] = mid.grad.float()


def tiny_case(name, shape, seq, **config):
    unet = UNet2DConditionModel(**config)
    randomize(unet)
    unet.eval()
    T[f"{name}.config"] = text_tensor(unet.to_json_string())
    for k, v in unet.state_dict().items():
        T[f"{name}.param.{k}"] = v.detach().float().contiguous().clone()
    print(name, "parameters:", unet.num_parameters())
    ref = unet.double()

    b, _, h, w = shape
    sample = torch.randn(shape)
    ehs = torch.randn(b, seq, config["cross_attention_dim"])
    t_float = torch.rand(b) * 1000
    t_int = torch.tensor(981, dtype=torch.int64)
    T[f"{name}.sample"], T[f"{name}.ehs"] = sample, ehs
    T[f"{name}.t_float"], T[f"{name}.t_int"] = t_float, t_int
    gy = torch.randn(shape[0], config.get("out_channels", 4), h, w)
    T[f"{name}.gy"] = gy

    run(ref, name, "float", sample, ehs, t_float, gy)
    run(ref, name, "int", sample, ehs, t_int, gy)
    down_shapes, mid_shape = skip_shapes(unet.config, b, h, w)
    down = [torch.randn(s) for s in down_shapes]
    mid = torch.randn(mid_shape)
    for i, d in enumerate(down):
        T[f"{name}.ctrl.down.{i}"] = d
    T[f"{name}.ctrl.mid"] = mid
    run(ref, name, "ctrl", sample, ehs, t_float, gy, ctrl=(down, mid))


CA_DOWN, DOWN, CA_UP, UP = "CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"
tiny_case("tiny", (2, 4, 8, 8), 5, block_out_channels=(16, 32), layers_per_block=1,
          down_block_types=(CA_DOWN, DOWN), up_block_types=(UP, CA_UP), cross_attention_dim=8,
          attention_head_dim=2, norm_num_groups=4)
tiny_case("linear", (1, 4, 7, 9), 3, block_out_channels=(8, 16, 16), layers_per_block=2,
          down_block_types=(CA_DOWN, CA_DOWN, DOWN), up_block_types=(UP, CA_UP, CA_UP),
          cross_attention_dim=6, attention_head_dim=[2, 4, 4], transformer_layers_per_block=[1, 2, 2],
          use_linear_projection=True, norm_num_groups=2, flip_sin_to_cos=False, freq_shift=1,
          center_input_sample=True, mid_block_scale_factor=1.5, time_embedding_dim=40,
          conv_in_kernel=5)

T["temb.t"] = torch.tensor([0.0, 1.0, 37.5, 500.25, 999.0])
T["temb.t_int"] = torch.tensor([0, 981, 3], dtype=torch.int64)
T["temb.sd"] = get_timestep_embedding(T["temb.t"], 320, flip_sin_to_cos=True, downscale_freq_shift=0)
T["temb.odd"] = get_timestep_embedding(T["temb.t"], 7, flip_sin_to_cos=False, downscale_freq_shift=1,
                                       scale=2.0)
T["temb.int"] = get_timestep_embedding(T["temb.t_int"], 8, flip_sin_to_cos=True, downscale_freq_shift=0)

# SD v1.x's unet/config.json (diffusers defaults except cross_attention_dim and sample_size); the
# model itself is not built here (the C++ test compares with ../shared/spec/keys/unet.tsv).
sd_config = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0",
             "act_fn": "silu", "attention_head_dim": 8,
             "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
             "cross_attention_dim": 768,
             "down_block_types": [CA_DOWN, CA_DOWN, CA_DOWN, DOWN], "downsample_padding": 1,
             "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
             "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
             "out_channels": 4, "sample_size": 64, "up_block_types": [UP, CA_UP, CA_UP, CA_UP]}
T["sd.config"] = text_tensor(__import__("json").dumps(sd_config))

out_path.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in T.items()}, str(out_path))
print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(T)} tensors)")
