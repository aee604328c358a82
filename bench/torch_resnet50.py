"""ResNet-50 training step and inference in PyTorch next to ours (bench/bench_resnet.cpp), on the
same machine: float32, CPU, batch 8 at 224x224, torchvision resnet50 from scratch, cross-entropy
over 1000 classes, SGD (momentum 0.9, weight decay 1e-4). Prints images/s of both and the ratio
ours / PyTorch. PyTorch is needed only for this script.

    python3 bench/torch_resnet50.py [--bench build/release/bench/bench_resnet] [--threads 2]

Both sides use the same thread count (torch.set_num_threads / OMP_NUM_THREADS) and time STEPS
steps after one warm-up step (bench_resnet's Iterations).
"""
import argparse
import json
import os
import subprocess
import time

import torch
import torchvision

BATCH, SIDE, CLASSES = 8, 224, 1000
STEPS = 5  # bench_resnet.cpp's kSteps


def images_per_s(step, steps):
    step()  # warm-up: first allocations, optimizer state
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return BATCH * steps / (time.perf_counter() - t0)


def torch_figures(steps):
    torch.manual_seed(1)
    model = torchvision.models.resnet50()
    x = torch.randn(BATCH, 3, SIDE, SIDE)
    target = torch.randint(0, CLASSES, (BATCH,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()

    model.train()
    train = images_per_s(train_step, steps)
    model.eval()
    with torch.no_grad():
        infer = images_per_s(lambda: model(x), steps)
    return {"train_step": train, "inference": infer}


def our_figures(binary, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "--benchmark_format=json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    rows = {b["name"].split("/")[0]: b["images_per_s"] for b in json.loads(out)["benchmarks"]}
    return {"train_step": rows["BM_resnet50_train_step"],
            "inference": rows["BM_resnet50_inference"]}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "release", "bench",
                                                   "bench_resnet"))
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"load average before: {os.getloadavg()}")
    theirs = torch_figures(STEPS)
    ours = our_figures(a.bench, a.threads)
    print(f"load average after: {os.getloadavg()}")
    print(f"ResNet-50, float32 CPU, batch {BATCH} at {SIDE}x{SIDE}, {a.threads} threads, "
          f"{STEPS} timed steps (torch {torch.__version__})")
    print(f"{'':12} {'ours img/s':>11} {'torch img/s':>12} {'ours/torch':>11}")
    for k in ("train_step", "inference"):
        print(f"{k:12} {ours[k]:11.2f} {theirs[k]:12.2f} {ours[k] / theirs[k]:11.2f}")


if __name__ == "__main__":
    main()
