"""Native LFM2 trunk: bidirectional (LFM2.5 retrievers) and causal (LFM2-ColBERT-350M).

No remote code: the stack is written here from the checkpoint contract and loaded from the
checkpoint's own tensor names. Two choices make batched encoding equal to encoding each
sequence alone (contract section 5.4): sequences are right-padded and every conv input is
multiplied by a 0/1 ``conv_mask`` so padding never leaks into real tokens through the conv.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from lfm_retrievers.errors import CheckpointError

from .files import open_safetensors, read_json

logger = logging.getLogger(__name__)

CONV = "conv"
ATTENTION = "full_attention"


def _first(raw: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in raw and raw[key] is not None:
            return raw[key]
    return default


def real_ff_dim(
    intermediate_size: int, auto_adjust: bool, multiplier: float | None, multiple_of: int
) -> int:
    """The FFN width the weights actually have (6656 in the config -> 4608 in the tensors)."""
    width = intermediate_size
    if auto_adjust:
        width = int(2 * width / 3)
        if multiplier is not None:
            width = int(multiplier * width)
        width = multiple_of * ((width + multiple_of - 1) // multiple_of)
    return width


@dataclass(frozen=True)
class TrunkConfig:
    """The trunk shape read from ``config.json``, legacy spellings accepted."""

    vocab_size: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    ff_dim: int
    layer_types: tuple[str, ...]
    conv_kernel: int = 3
    conv_bias: bool = False
    norm_eps: float = 1e-5
    rope_theta: float = 1_000_000.0
    causal: bool = False

    @property
    def head_dim(self) -> int:
        """The size of each attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def num_hidden_layers(self) -> int:
        """The number of layers (one per entry of ``layer_types``)."""
        return len(self.layer_types)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, causal: bool) -> TrunkConfig:
        """Read a HF ``config.json`` dict, accepting both key spellings of each value."""
        hidden = int(_first(raw, "hidden_size", "block_dim", "conv_dim", default=1024))
        for alias in ("block_dim", "conv_dim"):
            if alias in raw and int(raw[alias]) != hidden:
                msg = f"config.json: {alias}={raw[alias]} disagrees with hidden_size={hidden}"
                raise ValueError(msg)
        n_layers = int(_first(raw, "num_hidden_layers", default=16))
        layer_types = raw.get("layer_types")
        if layer_types is None:
            attn_idx = set(_first(raw, "full_attn_idxs", default=[]))
            layer_types = [ATTENTION if i in attn_idx else CONV for i in range(n_layers)]
        layer_types = tuple(str(t) for t in layer_types)
        bad = sorted({t for t in layer_types} - {CONV, ATTENTION})
        if bad:
            msg = f"config.json: unknown layer_types {bad}; expected {CONV!r} or {ATTENTION!r}"
            raise ValueError(msg)
        rope = raw.get("rope_parameters") or {}
        theta = float(_first(rope, "rope_theta", default=_first(raw, "rope_theta", default=1e6)))
        ff = real_ff_dim(
            int(_first(raw, "intermediate_size", "block_ff_dim", default=6656)),
            bool(_first(raw, "block_auto_adjust_ff_dim", default=True)),
            _first(raw, "block_ffn_dim_multiplier", default=1.0),
            int(_first(raw, "block_multiple_of", default=256)),
        )
        return cls(
            vocab_size=int(_first(raw, "vocab_size", default=65536)),
            hidden_size=hidden,
            num_attention_heads=int(_first(raw, "num_attention_heads", "num_heads", default=16)),
            num_key_value_heads=int(_first(raw, "num_key_value_heads", default=8)),
            ff_dim=ff,
            layer_types=layer_types,
            conv_kernel=int(_first(raw, "conv_L_cache", default=3)),
            conv_bias=bool(_first(raw, "conv_bias", default=False)),
            norm_eps=float(_first(raw, "norm_eps", "block_norm_eps", default=1e-5)),
            rope_theta=theta,
            causal=causal,
        )


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) in float32, times the plain weight (no 1 + w offset).

    Written as a division (not ``x * rsqrt(...)``, which rounds the same to within an ulp) so
    that an ONNX export matches ONNX Runtime's simplified-layer-norm fusion pattern (Pow,
    ReduceMean, Add, Sqrt, Div, Mul) and runs as one fused kernel.
    """

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class FeedForward(nn.Module):
    def __init__(self, dim: int, ff_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, ff_dim, bias=False)
        self.w3 = nn.Linear(dim, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ShortConv(nn.Module):
    """Gated depthwise conv: out_proj(C * conv(B * x)), centered or causal."""

    def __init__(self, dim: int, kernel: int, bias: bool, causal: bool) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, 3 * dim, bias=bias)
        self.conv = nn.Conv1d(dim, dim, kernel, groups=dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        k = kernel - 1
        self.padding = (k, 0) if causal else (k // 2, k - k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bcx = self.in_proj(x).transpose(-1, -2)
        b, c, h = bcx.chunk(3, dim=-2)
        y = F.conv1d(
            F.pad(b * h, self.padding), self.conv.weight, self.conv.bias, groups=h.shape[1]
        )
        return self.out_proj((c * y).transpose(-1, -2))


class Attention(nn.Module):
    """GQA attention with per-head QK RMSNorm applied before RoPE."""

    def __init__(self, cfg: TrunkConfig) -> None:
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.n_heads, self.n_kv, self.head_dim = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            hd,
        )
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * hd, bias=False)
        self.out_proj = nn.Linear(self.n_heads * hd, d, bias=False)
        self.q_layernorm = RMSNorm(hd, cfg.norm_eps)
        self.k_layernorm = RMSNorm(hd, cfg.norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        is_causal: bool,
    ) -> torch.Tensor:
        bsz, seq, _ = x.shape
        q = self.q_layernorm(self.q_proj(x).view(bsz, seq, self.n_heads, self.head_dim))
        k = self.k_layernorm(self.k_proj(x).view(bsz, seq, self.n_kv, self.head_dim))
        v = self.v_proj(x).view(bsz, seq, self.n_kv, self.head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = rope
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if self.n_kv != self.n_heads:
            rep = self.n_heads // self.n_kv
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        return self.out_proj(out.transpose(1, 2).reshape(bsz, seq, -1))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


class Block(nn.Module):
    self_attn: Attention
    conv: ShortConv

    def __init__(self, cfg: TrunkConfig, layer_type: str) -> None:
        super().__init__()
        self.is_attention = layer_type == ATTENTION
        self.operator_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.hidden_size, cfg.ff_dim)
        if self.is_attention:
            self.self_attn = Attention(cfg)
        else:
            self.conv = ShortConv(cfg.hidden_size, cfg.conv_kernel, cfg.conv_bias, cfg.causal)


class Lfm2Trunk(nn.Module):
    """embed_tokens -> 16 pre-norm blocks -> embedding_norm, named like the checkpoint."""

    def __init__(self, cfg: TrunkConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, t) for t in cfg.layer_types)
        self.embedding_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def _rope(self, seq: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hd = self.config.head_dim
        inv_freq = 1.0 / (
            self.config.rope_theta
            ** (torch.arange(0, hd, 2, dtype=torch.int64, device=like.device).float() / hd)
        )
        pos = torch.arange(seq, device=like.device, dtype=torch.float32)
        freqs = torch.outer(pos, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(like.dtype), emb.sin().to(like.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        conv_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the final hidden states ``(batch, seq, hidden)``.

        ``attention_mask`` (1 = may be attended to) masks attention keys only. ``conv_mask``
        (1 = real token) zeroes the input of every conv layer; leave it ``None`` for inputs
        without padding, such as ColBERT queries whose expansion tokens must stay visible.
        """
        h = self.embed_tokens(input_ids)
        _bsz, seq = input_ids.shape
        rope = self._rope(seq, h)
        causal = self.config.causal
        mask: torch.Tensor | None = None
        is_causal = False
        # A graph being exported for ONNX always carries the mask: its batches may have pads.
        exporting = torch.compiler.is_exporting()
        if attention_mask is not None and (exporting or not bool(attention_mask.all())):
            keys = attention_mask.bool()[:, None, None, :]
            if causal:
                tri = torch.ones(seq, seq, dtype=torch.bool, device=h.device).tril()
                keys = keys & tri
            mask = keys
        elif causal:
            is_causal = True
        cmask = conv_mask.to(h.dtype)[..., None] if conv_mask is not None else None
        for module in self.layers:
            layer = cast(Block, module)
            x = layer.operator_norm(h)
            if layer.is_attention:
                h = h + layer.self_attn(x, rope, mask, is_causal)
            else:
                if cmask is not None:
                    x = x * cmask
                h = h + layer.conv(x)
            h = h + layer.feed_forward(layer.ffn_norm(h))
        return self.embedding_norm(h)


def _strip_prefix(names: list[str]) -> str:
    for prefix in ("model.", "lfm2."):
        if names and all(n.startswith(prefix) for n in names):
            return prefix
    return ""


def load_trunk(
    directory: Path, cfg: TrunkConfig, dtype: torch.dtype, device: torch.device
) -> Lfm2Trunk:
    """Build the trunk on the meta device and fill it tensor by tensor from safetensors.

    One copy of the weights is ever materialised, in the compute dtype: no fp32 shadow of the
    bf16 file, so peak memory stays near the weights' size.
    """
    path = directory / "model.safetensors"
    with torch.device("meta"):
        trunk = Lfm2Trunk(cfg)
    expected = {name: tuple(p.shape) for name, p in trunk.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    with open_safetensors(path) as fh:
        names = list(fh.keys())
        prefix = _strip_prefix(names)
        for name in names:
            key = name[len(prefix) :]
            if key not in expected:
                if key.startswith("lm_head."):
                    continue
                msg = (
                    f"{path}: unexpected tensor {name!r}; this loader knows the LFM2 trunk names "
                    f"(embed_tokens, layers.N.*, embedding_norm)"
                )
                raise CheckpointError(msg)
            tensor = fh.get_tensor(name)
            if tuple(tensor.shape) != expected[key]:
                msg = (
                    f"{path}: tensor {name!r} has shape {tuple(tensor.shape)} but config.json "
                    f"implies {expected[key]} (check intermediate_size / block_auto_adjust_ff_dim)"
                )
                raise CheckpointError(msg)
            state[key] = tensor.to(device=device, dtype=dtype)
            del tensor
    missing = sorted(set(expected) - set(state))
    if missing:
        msg = f"{path}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        raise CheckpointError(msg)
    trunk.load_state_dict(state, assign=True, strict=True)
    return trunk.eval()


def load_dense_head(directory: Path, dtype: torch.dtype, device: torch.device) -> nn.Linear:
    """The ColBERT projection from ``1_Dense`` (``linear.weight``, no bias)."""
    cfg = read_json(directory / "config.json", dict)
    act = str(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))
    if not act.endswith("Identity"):
        msg = (
            f"{directory}/config.json: activation_function {act!r} is not supported (Identity only)"
        )
        raise CheckpointError(msg)
    if cfg.get("use_residual"):
        msg = f"{directory}/config.json: use_residual=true is not supported"
        raise CheckpointError(msg)
    with open_safetensors(directory / "model.safetensors") as fh:
        weight = fh.get_tensor("linear.weight")
        bias = fh.get_tensor("linear.bias") if "linear.bias" in fh.keys() else None  # noqa: SIM118
    out_f, in_f = weight.shape
    if (in_f, out_f) != (cfg.get("in_features", in_f), cfg.get("out_features", out_f)):
        msg = f"{directory}: linear.weight shape {tuple(weight.shape)} disagrees with config.json"
        raise CheckpointError(msg)
    with torch.device("meta"):
        head = nn.Linear(in_f, out_f, bias=bias is not None)
    state = {"weight": weight.to(device=device, dtype=dtype)}
    if bias is not None:
        state["bias"] = bias.to(device=device, dtype=dtype)
    head.load_state_dict(state, assign=True)
    return head.eval()


def trunk_flops_per_token(cfg: TrunkConfig, seq: int) -> float:
    """Approximate forward FLOPs per token (2 x MACs), for the benchmark's GFLOP/s figure."""
    d, f = cfg.hidden_size, cfg.ff_dim
    kv = cfg.num_key_value_heads * cfg.head_dim
    total = 0.0
    for t in cfg.layer_types:
        total += 3 * d * f  # SwiGLU
        if t == ATTENTION:
            total += d * d * 2 + d * kv * 2 + 2 * seq * d  # q,out + k,v + scores and values
        else:
            total += d * 3 * d + d * d + cfg.conv_kernel * d
    return 2.0 * total


__all__ = [
    "Lfm2Trunk",
    "TrunkConfig",
    "load_dense_head",
    "load_trunk",
    "real_ff_dim",
    "trunk_flops_per_token",
]
