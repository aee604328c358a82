"""Stable Diffusion UNet forwards and a ControlNet training step in diffusers (PyTorch, CPU) next to
ours (bench/bench_unet.cpp), on the same machine: float32, random weights (the models' default
initialisation), the same shapes and iteration counts:

    tiny_forward   tiny UNet2DConditionModel (block_out_channels (32, 64), 1 layer per block,
                   cross_attention_dim 32), batch 2 at a 32x32 latent, text [2, 77, 32], no grad
    sd_forward     SD v1.x UNet2DConditionModel, batch 1 at a 64x64 latent (512 px), text
                   [1, 77, 768], no grad
    cn_train_step  ControlNetModel.from_unet(SD v1.x UNet) + the frozen UNet, batch 1 at a 32x32
                   latent (256 px): ControlNet forward, UNet forward with its residuals, MSE against
                   the noise, backward into the ControlNet only, AdamW (lr 1e-5) step

Prints images/s and seconds/iteration of both and the ratio ours / diffusers (throughput: higher is
better for us). diffusers and PyTorch are needed only for this script.

    python3 bench/diffusers_unet.py [--bench build/release/bench/bench_unet] [--threads 2]
                                    [--only tiny_forward,sd_forward,cn_train_step]

Both sides use the same thread count (torch.set_num_threads / OMP_NUM_THREADS) and time ITERS
iterations after one warm-up iteration (bench_unet's Iterations). Peak memory: about 4 GB for
sd_forward and about 10 GB for cn_train_step on each side (they run one after the other).
"""
import argparse
import json
import os
import subprocess
import time

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

TEXT_LEN, TIMESTEP = 77, 500
# name: (batch, latent side, timed iterations), as bench_unet.cpp's constants
CASES = {"tiny_forward": (2, 32, 20), "sd_forward": (1, 64, 3), "cn_train_step": (1, 32, 3)}
OUR_ROWS = {"tiny_forward": "BM_unet_tiny_forward", "sd_forward": "BM_unet_sd_forward",
            "cn_train_step": "BM_controlnet_sd_train_step"}


def tiny_unet():
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8)


def sd_unet():
    return UNet2DConditionModel(cross_attention_dim=768)  # SD v1.x's unet/config.json


def timed(step, batch, iters):
    """(images/s, s/iteration) of `iters` calls after one warm-up call."""
    step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    secs = (time.perf_counter() - t0) / iters
    return batch / secs, secs


def forward_case(make, batch, side, iters):
    unet = make().eval()
    cfg = unet.config
    sample = torch.randn(batch, cfg.in_channels, side, side)
    text = torch.randn(batch, TEXT_LEN, cfg.cross_attention_dim)
    t = torch.full((batch,), TIMESTEP, dtype=torch.int64)
    with torch.no_grad():
        return timed(lambda: unet(sample, t, text).sample, batch, iters)


def train_case(batch, side, iters):
    unet = sd_unet()
    unet.requires_grad_(False)
    controlnet = ControlNetModel.from_unet(unet)
    controlnet.train()
    cfg = unet.config
    noisy = torch.randn(batch, cfg.in_channels, side, side)
    noise = torch.randn_like(noisy)
    cond = torch.rand(batch, 3, 8 * side, 8 * side)
    text = torch.randn(batch, TEXT_LEN, cfg.cross_attention_dim)
    t = torch.full((batch,), TIMESTEP, dtype=torch.int64)
    opt = torch.optim.AdamW(controlnet.parameters(), lr=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        down, mid = controlnet(noisy, t, text, controlnet_cond=cond, return_dict=False)
        pred = unet(noisy, t, text, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        opt.step()

    return timed(step, batch, iters)


def diffusers_figures(names):
    torch.manual_seed(1)
    out = {}
    for name in names:
        batch, side, iters = CASES[name]
        if name == "tiny_forward":
            out[name] = forward_case(tiny_unet, batch, side, iters)
        elif name == "sd_forward":
            out[name] = forward_case(sd_unet, batch, side, iters)
        else:
            out[name] = train_case(batch, side, iters)
    return out


def our_figures(binary, threads, names):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    pattern = "|".join(OUR_ROWS[n] for n in names)
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_filter={pattern}"],
                         env=env, check=True, capture_output=True, text=True).stdout
    rows = {b["name"].split("/")[0]: b for b in json.loads(out)["benchmarks"]}
    return {n: (rows[OUR_ROWS[n]]["images_per_s"], rows[OUR_ROWS[n]]["real_time"] / 1e3)
            for n in names}  # real_time is in ms (Unit(kMillisecond))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "release", "bench",
                                                   "bench_unet"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=",".join(CASES), help="comma-separated subset of the cases")
    a = p.parse_args()
    names = [n for n in a.only.split(",") if n]
    for n in names:
        if n not in CASES:
            p.error(f"unknown case {n!r}; expected some of {', '.join(CASES)}")
    torch.set_num_threads(a.threads)
    print(f"load average before: {os.getloadavg()}", flush=True)
    theirs = diffusers_figures(names)
    print(f"load average between: {os.getloadavg()}", flush=True)
    ours = our_figures(a.bench, a.threads, names)
    print(f"load average after: {os.getloadavg()}")
    import diffusers
    print(f"float32 CPU, {a.threads} threads, random weights (torch {torch.__version__}, "
          f"diffusers {diffusers.__version__})")
    print(f"{'':14} {'ours img/s':>11} {'ours s/it':>10} {'diffusers img/s':>16} "
          f"{'diffusers s/it':>15} {'ours/diffusers':>15}")
    for n in names:
        (oi, os_), (ti, ts) = ours[n], theirs[n]
        print(f"{n:14} {oi:11.3f} {os_:10.3f} {ti:16.3f} {ts:15.3f} {oi / ti:15.2f}")


if __name__ == "__main__":
    main()
