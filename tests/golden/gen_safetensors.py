"""Writes tests/fixtures/safetensors_reference.safetensors with the reference `safetensors` package,
so the C++ reader is checked against files it did not write itself. Run by hand:
    python3 tests/golden/gen_safetensors.py
"""
import pathlib

import torch
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "safetensors_reference.safetensors"
tensors = {
    "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
    "f64": torch.tensor([1.5, -2.25], dtype=torch.float64),
    "f16": torch.tensor([[0.5, -1.0], [65504.0, 2.0**-24]], dtype=torch.float16),
    "bf16": torch.tensor([1.0, -3.0, 0.0078125], dtype=torch.bfloat16),
    "i32": torch.tensor([-7, 0, 2147483647], dtype=torch.int32),
    "i64": torch.tensor([[-(2**40)], [3]], dtype=torch.int64),
    "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
    "b": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.25),
    "empty": torch.zeros(0, 4),
}
save_file(tensors, str(out), metadata={"format": "pt", "source": "gen_safetensors.py"})
print("wrote", out)
