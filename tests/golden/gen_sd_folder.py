"""Writes tests/fixtures/sd_tiny/: a tiny Stable Diffusion ControlNet pipeline folder as diffusers
0.42's save_pretrained writes it (StableDiffusionControlNetPipeline, safetensors), for
tests/models/test_sd_folder.cpp (models/sd_folder.h must load it strictly). Run by hand:
    python3 tests/golden/gen_sd_folder.py

Layout: model_index.json; unet/, vae/, controlnet/ (config.json, diffusion_pytorch_model.safetensors);
text_encoder/ (config.json, model.safetensors; transformers' CLIPTextModel); tokenizer/ (vocab.json,
merges.txt, special_tokens_map.json, tokenizer_config.json); scheduler/scheduler_config.json
(PNDMScheduler with SD v1's settings).

Tiny components (random weights: PyTorch's default init, then random norm affine parameters and
biases, and the ControlNet's zero convs filled too):
    unet        block_out_channels (16, 32), layers_per_block 1, CrossAttnDownBlock2D + DownBlock2D,
                UpBlock2D + CrossAttnUpBlock2D, cross_attention_dim 8, 2 heads, 4 groups
    controlnet  from_unet(unet, conditioning_embedding_out_channels (4, 8)) (cond at 2x latents)
    vae         block_out_channels (8, 16), layers_per_block 1, 4 groups, latent_channels 4
    text        CLIPTextModel hidden 8, 2 layers, 2 heads, intermediate 16, 16 positions, over a
                vocabulary of the 256 byte characters, the same with "</w>", 6 merges and the two
                special tokens (520 ids)
"""
import json
import pathlib
import shutil
import tempfile

import torch
from diffusers import (AutoencoderKL, ControlNetModel, PNDMScheduler,
                       StableDiffusionControlNetPipeline, UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

torch.manual_seed(20261127)
here = pathlib.Path(__file__).resolve().parent
out_dir = here.parents[0] / "fixtures" / "sd_tiny"


def byte_characters():
    """The 256 printable characters GPT-2/CLIP BPE uses for the bytes 0..255, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def randomize(module, fill_zero_convs=False):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias") or (fill_zero_convs and p.abs().max() == 0):
                p.copy_(0.3 * torch.randn_like(p))


CA_DOWN, DOWN, CA_UP, UP = "CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"
unet = UNet2DConditionModel(sample_size=8, block_out_channels=(16, 32), layers_per_block=1,
                            down_block_types=(CA_DOWN, DOWN), up_block_types=(UP, CA_UP),
                            cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4)
randomize(unet)
controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8))
randomize(controlnet, fill_zero_convs=True)
vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                    up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=4,
                    latent_channels=4, sample_size=16)
randomize(vae)

tmp_dir = tempfile.TemporaryDirectory()
tmp = pathlib.Path(tmp_dir.name)
vocab_path, merges_path = tmp / "vocab.json", tmp / "merges.txt"
byte_chars = byte_characters()
merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "n"), ("l", "u")]
vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
vocab += ["<|startoftext|>", "<|endoftext|>"]
vocab_path.write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
tokenizer = CLIPTokenizer(str(vocab_path), str(merges_path), model_max_length=16)

text_encoder = CLIPTextModel(CLIPTextConfig(
    vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=2,
    num_attention_heads=2, max_position_embeddings=16, bos_token_id=len(vocab) - 2,
    eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1))
randomize(text_encoder)
scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                          steps_offset=1)

pipe = StableDiffusionControlNetPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                         unet=unet, controlnet=controlnet, scheduler=scheduler,
                                         safety_checker=None, feature_extractor=None,
                                         requires_safety_checker=False)
if out_dir.exists():
    shutil.rmtree(out_dir)
pipe.save_pretrained(str(out_dir), safe_serialization=True)
# transformers 5 writes the tokenizer as tokenizer.json only; the SD v1.x folders on the hub (and
# ClipTokenizer::load) have vocab.json and merges.txt.
shutil.copy(vocab_path, out_dir / "tokenizer" / "vocab.json")
shutil.copy(merges_path, out_dir / "tokenizer" / "merges.txt")
total = 0
for p in sorted(out_dir.rglob("*")):
    if p.is_file():
        total += p.stat().st_size
        print(p.relative_to(out_dir), p.stat().st_size)
print(f"wrote {out_dir} ({total} bytes)")
