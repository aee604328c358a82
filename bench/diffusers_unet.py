"""Stable Diffusion UNet forwards and a ControlNet training step in diffusers (PyTorch) next to ours
(bench/bench_unet.cpp), on the same machine: random weights (the models' default initialisation),
the same shapes and iteration counts:

    tiny_forward   tiny UNet2DConditionModel (block_out_channels (32, 64), 1 layer per block,
                   cross_attention_dim 32), batch 2 at a 32x32 latent, text [2, 77, 32], no grad
    sd_forward     SD v1.x UNet2DConditionModel at a 64x64 latent (512 px), text [B, 77, 768], no
                   grad; batch 1 on the CPU, 2 on CUDA
    cn_train_step  ControlNetModel.from_unet(SD v1.x UNet) + the frozen UNet: ControlNet forward,
                   UNet forward with its residuals, MSE against the noise (float32), backward into
                   the ControlNet only, AdamW (lr 1e-5) step. CPU: batch 1 at a 32x32 latent
                   (256 px); CUDA: batch 4 at a 64x64 latent (512 px) with gradient checkpointing
                   of both models (--checkpointing), and with --amp the frozen UNet's weights in
                   the autocast dtype (as examples/controlnet/train_controlnet.py)

Prints images/s, seconds/iteration (latency) and on CUDA the peak device memory of both, and the
ratio ours / diffusers (throughput: higher is better for us). diffusers and PyTorch are needed
only for this script.

    python3 bench/diffusers_unet.py [--bench build/release/bench/bench_unet] [--threads 2]
                                    [--only tiny_forward,sd_forward,cn_train_step]
    python3 bench/diffusers_unet.py --device cuda --dtype float16 --only sd_forward
    python3 bench/diffusers_unet.py --device cuda --amp bf16 --only cn_train_step

--dtype sets the forwards' weights and inputs (float16 is the GPU latency target; attention runs
through torch's scaled_dot_product_attention, diffusers' AttnProcessor2_0), --amp wraps forwards
and the training step in torch.autocast; our binary gets the same flags. --unet-config reads the
SD UNet's configuration from a diffusers config.json (e.g. a checkpoint's unet/config.json)
instead of SD v1.x's defaults (the diffusers side only; our binary always builds SD v1.x).

CPU: both sides use the same thread count (torch.set_num_threads / OMP_NUM_THREADS). Both time
ITERS iterations after one warm-up iteration (bench_unet's Iterations); on CUDA every iteration
ends with a device synchronisation on both sides. CPU peak memory: about 4 GB for sd_forward and
about 10 GB for cn_train_step on each side (they run one after the other).
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import torch

try:
    import diffusers
    from diffusers import ControlNetModel, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0
except ImportError as e:  # the GPU machine may have torch without diffusers
    diffusers = None
    DIFFUSERS_ERROR = str(e)

TEXT_LEN, TIMESTEP = 77, 500
# name: {device kind: (batch, latent side, timed iterations)}, as bench_unet.cpp's kTiny/kSd/kTrain
CASES = {"tiny_forward": {"cpu": (2, 32, 20), "cuda": (2, 32, 20)},
         "sd_forward": {"cpu": (1, 64, 3), "cuda": (2, 64, 10)},
         "cn_train_step": {"cpu": (1, 32, 3), "cuda": (4, 64, 5)}}
OUR_ROWS = {"tiny_forward": "BM_unet_tiny_forward", "sd_forward": "BM_unet_sd_forward",
            "cn_train_step": "BM_controlnet_sd_train_step"}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Runner:
    """Device, dtype and autocast settings shared by the cases."""

    def __init__(self, device, dtype, amp, checkpointing, unet_config):
        self.device, self.dtype, self.amp = device, DTYPES[dtype], AMP[amp]
        self.cuda = device.startswith("cuda")
        self.checkpointing = checkpointing
        self.unet_config = unet_config

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.cuda else "cpu", dtype=self.amp)

    def timed(self, step, batch, iters):
        """(images/s, s/iteration, peak GiB or None) of `iters` calls after one warm-up call."""
        step()
        self.sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
            self.sync()
        secs = (time.perf_counter() - t0) / iters
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda else None
        return batch / secs, secs, peak

    def start_case(self):
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def tiny_unet(self):
        return UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8)

    def sd_unet(self):
        if self.unet_config:
            with open(self.unet_config) as f:
                return UNet2DConditionModel.from_config(json.load(f))
        return UNet2DConditionModel(cross_attention_dim=768)  # SD v1.x's unet/config.json

    def forward_case(self, make, batch, side, iters):
        self.start_case()
        unet = make().eval().to(self.device, self.dtype)
        unet.set_attn_processor(AttnProcessor2_0())
        cfg = unet.config
        sample = torch.randn(batch, cfg.in_channels, side, side).to(self.device, self.dtype)
        text = torch.randn(batch, TEXT_LEN, cfg.cross_attention_dim).to(self.device, self.dtype)
        t = torch.full((batch,), TIMESTEP, dtype=torch.int64, device=self.device)

        def step():
            with self.autocast():
                unet(sample, t, text)

        with torch.no_grad():
            return self.timed(step, batch, iters)

    def train_case(self, batch, side, iters):
        self.start_case()
        unet = self.sd_unet()
        unet.requires_grad_(False)
        controlnet = ControlNetModel.from_unet(unet).to(self.device)
        controlnet.train()
        unet.to(self.device, self.amp or torch.float32)  # frozen weights in the autocast dtype
        if self.checkpointing:
            controlnet.enable_gradient_checkpointing()
            unet.enable_gradient_checkpointing()
        for m in (unet, controlnet):
            m.set_attn_processor(AttnProcessor2_0())
        cfg = unet.config
        noisy = torch.randn(batch, cfg.in_channels, side, side, device=self.device)
        noise = torch.randn_like(noisy)
        cond = torch.rand(batch, 3, 8 * side, 8 * side, device=self.device)
        text = torch.randn(batch, TEXT_LEN, cfg.cross_attention_dim, device=self.device)
        t = torch.full((batch,), TIMESTEP, dtype=torch.int64, device=self.device)
        opt = torch.optim.AdamW(controlnet.parameters(), lr=1e-5)

        def step():
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                down, mid = controlnet(noisy, t, text, controlnet_cond=cond, return_dict=False)
                pred = unet(noisy, t, text, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
            loss.backward()
            opt.step()

        return self.timed(step, batch, iters)

    def figures(self, names, shapes):
        torch.manual_seed(1)
        out = {}
        for name in names:
            batch, side, iters = shapes[name]
            if name == "tiny_forward":
                out[name] = self.forward_case(self.tiny_unet, batch, side, iters)
            elif name == "sd_forward":
                out[name] = self.forward_case(self.sd_unet, batch, side, iters)
            else:
                out[name] = self.train_case(batch, side, iters)
        return out


def our_figures(binary, threads, names, flags):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    pattern = "|".join(OUR_ROWS[n] for n in names)
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_filter={pattern}"]
                         + flags, env=env, check=True, capture_output=True, text=True).stdout
    rows = {b["name"].split("/")[0]: b for b in json.loads(out)["benchmarks"]}
    return {n: (rows[OUR_ROWS[n]]["images_per_s"], rows[OUR_ROWS[n]]["real_time"] / 1e3,
                rows[OUR_ROWS[n]].get("peak_GiB"))
            for n in names}  # real_time is in ms (Unit(kMillisecond))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "release", "bench",
                                                   "bench_unet"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=",".join(CASES), help="comma-separated subset of the cases")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES),
                   help="weights and inputs of the forwards")
    p.add_argument("--amp", default="none", choices=list(AMP), help="torch.autocast dtype")
    p.add_argument("--checkpointing", choices=["on", "off"], default=None,
                   help="gradient checkpointing in cn_train_step (default: on for cuda)")
    p.add_argument("--iters", type=int, default=0, help="timed iterations (default: per case)")
    p.add_argument("--unet-config", default=None, help="diffusers config.json of the SD UNet")
    p.add_argument("--diffusers-only", action="store_true", help="skip our binary")
    a = p.parse_args()
    names = [n for n in a.only.split(",") if n]
    for n in names:
        if n not in CASES:
            p.error(f"unknown case {n!r}; expected some of {', '.join(CASES)}")
    if diffusers is None:
        sys.exit(f"{sys.argv[0]}: diffusers is not importable here ({DIFFUSERS_ERROR}); this "
                 "script needs it for the PyTorch side (pip install diffusers), or run "
                 "bench_unet alone")
    cuda = a.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device")
    checkpointing = cuda if a.checkpointing is None else a.checkpointing == "on"
    shapes = {n: CASES[n]["cuda" if cuda else "cpu"] for n in names}
    if a.iters:
        shapes = {n: (b, s, a.iters) for n, (b, s, _) in shapes.items()}
    torch.set_num_threads(a.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    runner = Runner(a.device, a.dtype, a.amp, checkpointing, a.unet_config)
    print(f"load average before: {os.getloadavg()}", flush=True)
    theirs = runner.figures(names, shapes)
    print(f"load average between: {os.getloadavg()}", flush=True)
    flags = [f"--device={a.device}", f"--dtype={a.dtype}", f"--autocast={a.amp}",
             f"--checkpointing={'on' if checkpointing else 'off'}"]
    if a.iters:
        flags.append(f"--iters={a.iters}")
    ours = None if a.diffusers_only else our_figures(a.bench, a.threads, names, flags)
    print(f"load average after: {os.getloadavg()}")
    where = torch.cuda.get_device_name(a.device) if cuda else f"CPU, {a.threads} threads"
    print(f"{where}, dtype {a.dtype}, autocast {a.amp}, checkpointing "
          f"{'on' if checkpointing else 'off'}, random weights (torch {torch.__version__}, "
          f"diffusers {diffusers.__version__})")
    print(f"{'':14} {'batch':>5} {'ours img/s':>11} {'ours s/it':>10} {'ours GiB':>9} "
          f"{'diffusers img/s':>16} {'diffusers s/it':>15} {'diffusers GiB':>14} "
          f"{'ours/diffusers':>15}")
    def num(x, spec):
        return "-" if x is None else format(x, spec)

    for n in names:
        ti, ts, tg = theirs[n]
        oi, os_, og = ours[n] if ours else (None, None, None)
        ratio = None if oi is None else oi / ti
        print(f"{n:14} {shapes[n][0]:5d} {num(oi, '.3f'):>11} {num(os_, '.3f'):>10} "
              f"{num(og, '.2f'):>9} {ti:16.3f} {ts:15.3f} {num(tg, '.2f'):>14} "
              f"{num(ratio, '.2f'):>15}")

if __name__ == "__main__":
    main()
