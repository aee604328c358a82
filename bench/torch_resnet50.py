"""ResNet-50 training step and inference in PyTorch next to ours (bench/bench_resnet.cpp), on the
same machine: torchvision resnet50 from scratch at 224x224, cross-entropy over 1000 classes, SGD
(momentum 0.9, weight decay 1e-4). Prints images/s of both and the ratio ours / PyTorch (and on
CUDA the peak device memory of both). PyTorch is needed only for this script.

    python3 bench/torch_resnet50.py [--bench build/release/bench/bench_resnet] [--threads 2]
    python3 bench/torch_resnet50.py --device cuda --amp bf16      # the GPU target, batch 256

CPU: float32, batch 8; both sides use the same thread count (torch.set_num_threads /
OMP_NUM_THREADS). CUDA: batch 256, eager PyTorch with torch.autocast (--amp bf16 or fp16; none
runs float32 with TF32 matmuls and convolutions, as cuBLAS/cuDNN on our side) against
bench_resnet --device=cuda --autocast=...; every timed step ends with a device synchronisation on
both sides. Both time STEPS steps after one warm-up step (bench_resnet's Iterations).
"""
import argparse
import contextlib
import json
import os
import subprocess
import time

import torch
import torchvision

SIDE, CLASSES = 224, 1000
BATCH = {"cpu": 8, "cuda": 256}  # bench_resnet.cpp's kCpuBatch / kCudaBatch
STEPS = 5  # bench_resnet.cpp's kSteps
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def images_per_s(step, batch, steps, sync):
    step()  # warm-up: first allocations, optimizer state, cuDNN autotuning
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
        sync()
    return batch * steps / (time.perf_counter() - t0)


def torch_figures(device, amp, batch, steps):
    torch.manual_seed(1)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    model = torchvision.models.resnet50().to(device)
    x = torch.randn(batch, 3, SIDE, SIDE, device=device)
    target = torch.randint(0, CLASSES, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def autocast():
        if AMP[amp] is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if cuda else "cpu", dtype=AMP[amp])

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()

    def infer():
        with autocast():
            model(x)

    model.train()
    out = {"train_step": images_per_s(train_step, batch, steps, sync)}
    model.eval()
    with torch.no_grad():
        out["inference"] = images_per_s(infer, batch, steps, sync)
    if cuda:
        out["peak_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def our_figures(binary, threads, device, amp, batch, steps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [binary, "--benchmark_format=json", f"--device={device}", f"--autocast={amp}",
           f"--batch={batch}", f"--iters={steps}"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = {b["name"].split("/")[0]: b for b in json.loads(out)["benchmarks"]}
    train, infer = rows["BM_resnet50_train_step"], rows["BM_resnet50_inference"]
    figures = {"train_step": train["images_per_s"], "inference": infer["images_per_s"]}
    if "peak_GiB" in train:
        figures["peak_GiB"] = max(train["peak_GiB"], infer["peak_GiB"])
    return figures


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "release", "bench",
                                                   "bench_resnet"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--amp", default="none", choices=list(AMP),
                   help="autocast dtype of both sides (torch.autocast / --autocast)")
    p.add_argument("--batch", type=int, default=0, help="default: 8 on cpu, 256 on cuda")
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--torch-only", action="store_true", help="skip our binary")
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device")
    batch = a.batch or BATCH["cuda" if a.device.startswith("cuda") else "cpu"]
    torch.set_num_threads(a.threads)
    print(f"load average before: {os.getloadavg()}")
    theirs = torch_figures(a.device, a.amp, batch, a.steps)
    ours = None if a.torch_only else our_figures(a.bench, a.threads, a.device, a.amp, batch,
                                                 a.steps)
    print(f"load average after: {os.getloadavg()}")
    where = (torch.cuda.get_device_name(a.device) if a.device.startswith("cuda")
             else f"CPU, {a.threads} threads")
    print(f"ResNet-50 on {where}, autocast {a.amp}, batch {batch} at {SIDE}x{SIDE}, "
          f"{a.steps} timed steps (torch {torch.__version__})")
    print(f"{'':12} {'ours img/s':>11} {'torch img/s':>12} {'ours/torch':>11}")
    for k in ("train_step", "inference"):
        if ours is None:
            print(f"{k:12} {'-':>11} {theirs[k]:12.2f} {'-':>11}")
        else:
            print(f"{k:12} {ours[k]:11.2f} {theirs[k]:12.2f} {ours[k] / theirs[k]:11.2f}")
    if "peak_GiB" in theirs:
        mine = f"{ours['peak_GiB']:.2f}" if ours and "peak_GiB" in ours else "-"
        print(f"{'peak GiB':12} {mine:>11} {theirs['peak_GiB']:12.2f}")


if __name__ == "__main__":
    main()
