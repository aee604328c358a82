"""Deterministic "formula weights" for real-size models whose weights are too large to commit.

The k-th entry of the state dict in sorted key order, element i of its flattened (row-major) data:
s = 2 u - 1 with u = (splitmix64(k * 2^32 + i) >> 11) * 2^-53, a hash uniform in [-1, 1) that both
languages compute exactly (a smooth formula such as sin(0.37 i) makes convolutions nearly rank one,
and BatchNorm in training then amplifies rounding a millionfold); the value below is evaluated in
float64 and cast to the tensor's dtype:
    *.num_batches_tracked      untouched
    *.running_mean             0.1 * s
    *.running_var              1.25 + 0.25 * s
    weights with >= 2 dims     GAIN / sqrt(fan_in) * s, fan_in = size(1) * prod(size(2:))
    other 1-dim *.weight       1 + 0.1 * s          (normalisation scales)
    everything else            0.05 * s             (biases)
tests/support/formula_weights.cpp implements the same fill for the C++ tests; a change here needs
the same change there (and regenerated fixtures). Used by tests/golden/gen_resnet.py and
tests/golden/gen_unetplusplus.py:
    model.load_state_dict(formula_weights.state_dict(model.state_dict()))
"""
import math

import numpy as np
import torch

GAIN = 2.0  # eval-mode activations O(1) through resnet18 and resnet50 (1.5: 0.06, 2.5: 100)


def splitmix64(x):
    """Steele, Lea & Flood's SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(k, n):
    """u_i in [0, 1) for i < n: the top 53 bits of splitmix64(k * 2^32 + i)."""
    keys = (np.uint64(k) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    return (splitmix64(keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def formula_tensor(name, t, k):
    """The formula value of tensor `t` (state-dict entry `name`, k-th in sorted order)."""
    if name.endswith("num_batches_tracked"):
        return t.clone()
    # (offset, scale) of value = offset + scale * s, the same arithmetic as the C++ fill.
    offset, scale = 0.0, 0.05
    if name.endswith("running_mean"):
        scale = 0.1
    elif name.endswith("running_var"):
        offset, scale = 1.25, 0.25
    elif t.dim() >= 2:
        scale = GAIN / math.sqrt(t.numel() // t.shape[0])  # fan_in = size(1) * receptive field
    elif name.endswith("weight"):
        offset, scale = 1.0, 0.1
    s = 2.0 * uniform(k, t.numel()) - 1.0
    v = offset + scale * s
    return torch.from_numpy(v).reshape(t.shape).to(t.dtype)


def state_dict(sd):
    """A new state dict with the keys, shapes and dtypes of `sd` holding the formula values."""
    return {name: formula_tensor(name, sd[name], k) for k, name in enumerate(sorted(sd))}
