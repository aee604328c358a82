"""Writes tests/fixtures/clip_text.safetensors: transformers' CLIPTextModel (transformers 5) in a tiny
configuration with random weights, for tests/models/test_clip_text.cpp. Run by hand:
    python3 tests/golden/gen_clip_text.py

Keys:
    config                  uint8: the model's config.json as transformers writes it (save_pretrained)
    param.<name>            float32: every parameter, under SD1.x checkpoints' names (text_model.…;
                            transformers 5 itself drops the "text_model." level)
    input_ids               int64 [2, 12]: BOS 62, tokens, EOS 63 (the largest id), padding with EOS;
                            row 0 holds token 40 at position 3
    attention_mask          int64 [2, 12]: 1 up to EOS, then 0
    last_hidden_state       float32 [2, 12, 32]: model(input_ids).last_hidden_state
    pooler_output           float32 [2, 32]: .pooler_output (config eos_token_id 2: argmax of the ids)
    pooler_output_eos40     float32 [2, 32]: the same weights with eos_token_id 40 (first position of 40,
                            position 0 for row 1, which has none)
    masked_last_hidden_state float32 [2, 12, 32]: model(input_ids, attention_mask).last_hidden_state
    hidden_state.<i>        float32: output_hidden_states=True's hidden_states[i] (i = 0..layers)
    gelu_last_hidden_state  float32: the same weights with hidden_act "gelu"
    loss_weight_hidden      float32 [2, 12, 32], loss_weight_pooled [2, 32]: the loss
                            sum(last_hidden_state * wh) + sum(pooler_output * wp)
    grad.<name>             float32: its gradient w.r.t. four parameters (below)
"""
import json
import pathlib

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/clip_text.safetensors"

CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=12, hidden_act="quick_gelu", layer_norm_eps=1e-5, bos_token_id=0,
              eos_token_id=2, pad_token_id=1, projection_dim=16, attention_dropout=0.0, dropout=0.0)

GRAD_PARAMS = [
    "text_model.embeddings.token_embedding.weight",
    "text_model.encoder.layers.0.self_attn.q_proj.weight",
    "text_model.encoder.layers.1.mlp.fc1.weight",
    "text_model.final_layer_norm.weight",
]


def build(**overrides):
    cfg = CLIPTextConfig(**{**CONFIG, **overrides})
    cfg._attn_implementation = "eager"
    return CLIPTextModel(cfg).eval()


def main():
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight") or \
                    name.endswith("final_layer_norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # transformers 5's CLIPTextModel has no "text_model." level (it maps old checkpoints with
    # PrefixChange); SD1.x checkpoints and our module keep it.
    prefixed = {f"text_model.{k}": v for k, v in state.items()}

    ids = torch.tensor([[62, 5, 17, 40, 9, 33, 63, 63, 63, 63, 63, 63],
                        [62, 7, 7, 21, 2, 0, 11, 58, 30, 12, 1, 63]], dtype=torch.int64)
    mask = (torch.arange(12)[None, :] <= (ids == 63).int().argmax(-1)[:, None]).long()

    out = {"input_ids": ids, "attention_mask": mask}
    for k, v in prefixed.items():
        out[f"param.{k}"] = v
    with tempfile_dir() as d:
        model.config.save_pretrained(d)
        out["config"] = torch.tensor(list((pathlib.Path(d) / "config.json").read_bytes()), dtype=torch.uint8)

    res = model(ids, output_hidden_states=True)
    out["last_hidden_state"] = res.last_hidden_state.detach()
    out["pooler_output"] = res.pooler_output.detach()
    for i, h in enumerate(res.hidden_states):
        out[f"hidden_state.{i}"] = h.detach()
    out["masked_last_hidden_state"] = model(ids, attention_mask=mask).last_hidden_state.detach()

    eos40 = build(eos_token_id=40)
    eos40.load_state_dict(state)
    out["pooler_output_eos40"] = eos40(ids).pooler_output.detach()
    gelu = build(hidden_act="gelu")
    gelu.load_state_dict(state)
    out["gelu_last_hidden_state"] = gelu(ids).last_hidden_state.detach()

    wh = torch.randn(2, 12, 32)
    wp = torch.randn(2, 32)
    res = model(ids)
    loss = (res.last_hidden_state * wh).sum() + (res.pooler_output * wp).sum()
    loss.backward()
    out["loss_weight_hidden"] = wh
    out["loss_weight_pooled"] = wp
    params = dict(model.named_parameters())
    for name in GRAD_PARAMS:
        out[f"grad.{name}"] = params[name.removeprefix("text_model.")].grad.detach().clone()

    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, str(OUT), metadata={"source": f"transformers {transformers.__version__} CLIPTextModel"})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


class tempfile_dir:
    def __enter__(self):
        import tempfile
        self._d = tempfile.TemporaryDirectory()
        return self._d.name

    def __exit__(self, *exc):
        self._d.cleanup()


if __name__ == "__main__":
    main()
