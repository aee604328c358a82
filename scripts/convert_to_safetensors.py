#!/usr/bin/env python3
"""Convert PyTorch state dicts (.bin, .pt, .pth, .ckpt) to safetensors, the only weight format
the C++ side of SynthCXR reads. Optional tool: needs Python with torch and safetensors; run once
per checkpoint.

    python3 scripts/convert_to_safetensors.py pytorch_model.bin                # -> pytorch_model.safetensors
    python3 scripts/convert_to_safetensors.py last.ckpt -o unet.safetensors --key state_dict \\
        --strip-prefix model.diffusion_model.
    python3 scripts/convert_to_safetensors.py shard-00001.bin shard-00002.bin -o model.safetensors
    python3 scripts/convert_to_safetensors.py model.pt --dtype float16

What it does:
  * loads each input with torch.load(map_location="cpu", weights_only=True) (no arbitrary code
    runs); --allow-pickle falls back to full unpickling for old checkpoints that store other
    Python objects — only for files you trust;
  * finds the state dict: --key names it (dots go deeper: "module.ema"), otherwise a top-level
    "state_dict" (PyTorch Lightning .ckpt), "model" or "module" entry holding tensors is used,
    otherwise the top level itself;
  * flattens nested dicts with "." (so names match nn::Module's PyTorch names), drops entries that
    are not tensors (epoch counters, hyper-parameters; they are listed), strips --strip-prefix
    (e.g. "module." left by DistributedDataParallel) and keeps --select-prefix only;
  * makes every tensor contiguous and gives tensors that share storage (tied weights, views of one
    buffer) their own copies, since safetensors refuses aliasing and the C++ loader expects
    every name;
  * optionally casts floating tensors to --dtype; integer/bool tensors (num_batches_tracked,
    position ids) are never cast;
  * writes atomically (a temporary file renamed into place), with metadata format=pt and the
    source file names, then reloads the result and checks names, shapes, dtypes and values.
Merging several inputs (sharded .bin files) into one output rejects duplicate names.
"""
import argparse
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load(path, allow_pickle):
    if not os.path.isfile(path):
        sys.exit(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses custom classes
        if not allow_pickle:
            sys.exit(f"{path}: cannot load with weights_only=True ({e}); if you trust this file, "
                     "rerun with --allow-pickle")
        print(f"{path}: loading with full unpickling (--allow-pickle)", file=sys.stderr)
        return torch.load(path, map_location="cpu", weights_only=False)


def has_tensors(obj):
    return isinstance(obj, dict) and any(
        isinstance(v, torch.Tensor) or has_tensors(v) for v in obj.values())


def find_state_dict(obj, key, path):
    if key:
        for part in key.split("."):
            if not isinstance(obj, dict) or part not in obj:
                sys.exit(f"{path}: no entry '{part}' while looking for --key {key}")
            obj = obj[part]
        return obj
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):  # a pickled nn.Module
        return obj.state_dict()
    if isinstance(obj, dict):
        for candidate in ("state_dict", "model", "module"):
            if has_tensors(obj.get(candidate)):
                print(f"{path}: using the '{candidate}' entry", file=sys.stderr)
                return obj[candidate]
    return obj


def flatten(obj, prefix, out, skipped):
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, skipped)
    else:
        skipped.append(prefix or "<top level>")


def prepare(tensors, dtype):
    """Contiguous, unaliased tensors (each storage used by one name), cast if asked."""
    seen = {}
    out, shared = {}, []
    for name in sorted(tensors):
        t = tensors[name].detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        ptr = t.untyped_storage().data_ptr() if t.numel() > 0 else None
        if ptr is not None and ptr in seen:
            shared.append((name, seen[ptr]))
            t = t.clone()
        elif ptr is not None:
            seen[ptr] = name
        out[name] = t.contiguous()
    # A tensor that only views part of its storage is copied too, so the file holds no hidden
    # bytes and the writer never sees two names on one buffer.
    for name, t in out.items():
        if t.numel() > 0 and t.untyped_storage().nbytes() != t.numel() * t.element_size():
            out[name] = t.clone()
    return out, shared


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("What it does"):])
    ap.add_argument("inputs", nargs="+", help=".bin/.pt/.pth/.ckpt files (several: merged)")
    ap.add_argument("-o", "--output", help="output .safetensors (default: first input's name)")
    ap.add_argument("--key", help="dotted path of the state dict inside the checkpoint")
    ap.add_argument("--strip-prefix", default="", help="remove this prefix from names")
    ap.add_argument("--select-prefix", default="", help="keep only names with this prefix "
                    "(applied before --strip-prefix)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="cast floating tensors")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="allow full unpickling (runs code from the file: trusted files only)")
    ap.add_argument("--no-verify", action="store_true", help="skip reloading the output")
    args = ap.parse_args()

    if len(args.inputs) > 1 and not args.output:
        sys.exit("several inputs: give the merged output with -o")
    output = args.output or os.path.splitext(args.inputs[0])[0] + ".safetensors"

    tensors, skipped = {}, []
    for path in args.inputs:
        obj = find_state_dict(load(path, args.allow_pickle), args.key, path)
        flat = {}
        flatten(obj, "", flat, skipped)
        for name, t in flat.items():
            if args.select_prefix and not name.startswith(args.select_prefix):
                continue
            if args.strip_prefix and name.startswith(args.strip_prefix):
                name = name[len(args.strip_prefix):]
            if name in tensors:
                sys.exit(f"{path}: tensor '{name}' is already in an earlier input")
            tensors[name] = t
    if not tensors:
        sys.exit("no tensors found (try --key, or check --select-prefix)")
    if skipped:
        print(f"skipped {len(skipped)} non-tensor entries: {', '.join(skipped[:10])}"
              + (" ..." if len(skipped) > 10 else ""), file=sys.stderr)

    tensors, shared = prepare(tensors, DTYPES.get(args.dtype))
    for name, other in shared:
        print(f"'{name}' shared storage with '{other}': stored as its own copy", file=sys.stderr)

    tmp = f"{output}.tmp.{os.getpid()}"
    try:
        save_file(tensors, tmp, metadata={
            "format": "pt", "source": ",".join(os.path.basename(p) for p in args.inputs)})
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    if not args.no_verify:
        with safe_open(output, framework="pt") as f:
            assert set(f.keys()) == set(tensors), "names differ after writing"
            for name in f.keys():
                t = f.get_tensor(name)
                assert t.shape == tensors[name].shape and t.dtype == tensors[name].dtype, name
                bits = lambda x: x.reshape(-1).view(torch.uint8)  # bitwise, so NaN == NaN
                assert torch.equal(bits(t), bits(tensors[name])), name
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({total / 2**20:.1f} MiB) to {output}")


if __name__ == "__main__":
    main()
