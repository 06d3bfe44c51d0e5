"""Native trunk vs transformers' Lfm2Model (causal) and a slow reference (bidirectional)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from lfm_retrievers.models.trunk import ATTENTION, Lfm2Trunk, TrunkConfig, load_trunk, real_ff_dim


def _trunk(path: Path, causal: bool) -> Lfm2Trunk:
    cfg = TrunkConfig.from_dict(json.loads((path / "config.json").read_text()), causal=causal)
    return load_trunk(path, cfg, torch.float32, torch.device("cpu"))


def test_real_ffn_width_rule() -> None:
    # The real checkpoints say 6656 but store 4608-wide FFN weights (contract 2.3).
    assert real_ff_dim(6656, True, 1.0, 256) == 4608
    assert real_ff_dim(6656, False, 1.0, 256) == 6656


def test_config_reads_legacy_and_new_spellings() -> None:
    base = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10}
    legacy = TrunkConfig.from_dict(
        {
            **base,
            "block_ff_dim": 6656,
            "block_multiple_of": 256,
            "num_hidden_layers": 4,
            "full_attn_idxs": [1, 3],
            "rope_theta": 10000.0,
        },
        causal=True,
    )
    new = TrunkConfig.from_dict(
        {
            **base,
            "intermediate_size": 6656,
            "block_multiple_of": 256,
            "layer_types": ["conv", "full_attention", "conv", "full_attention"],
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
        },
        causal=True,
    )
    assert legacy == new
    assert legacy.ff_dim == 4608 and legacy.layer_types[1] == ATTENTION
    with pytest.raises(ValueError, match="block_dim"):
        TrunkConfig.from_dict({**base, "block_dim": 32}, causal=False)


def _hf_model(path: Path):  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers")
    config = json.loads((path / "config.json").read_text())
    hf = transformers.Lfm2Model(transformers.Lfm2Config(**config)).eval()
    state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
    hf.load_state_dict(state, strict=True)
    return hf


@pytest.mark.parametrize("padded", [False, True])
def test_causal_trunk_matches_transformers_lfm2model(
    tiny_causal_colbert_path: Path, padded: bool
) -> None:
    ours = _trunk(tiny_causal_colbert_path, causal=True)
    hf = _hf_model(tiny_causal_colbert_path)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(8, ours.config.vocab_size, (3, 19), generator=gen)
    mask = torch.ones_like(ids)
    if padded:
        mask[1, 11:] = 0
        mask[2, 5:] = 0
    with torch.inference_mode():
        expected = hf(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        got = ours(ids, mask, mask)
    real = mask.bool()
    assert (got[real] - expected[real]).abs().max().item() <= 1e-5


# --- an explicit, slow reference of the bidirectional trunk, from the contract's equations ------


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def _reference_bidirectional(path: Path, ids: list[int]) -> torch.Tensor:
    cfg = json.loads((path / "config.json").read_text())
    w = {k: v.double() for k, v in load_file(str(path / "model.safetensors")).items()}
    d, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, theta = d // nh, cfg["norm_eps"], cfg["rope_parameters"]["rope_theta"]
    seq = len(ids)
    h = w["embed_tokens.weight"][ids]  # (S, d)
    for i, kind in enumerate(cfg["layer_types"]):
        p = f"layers.{i}."
        x = _rms(h, w[p + "operator_norm.weight"], eps)
        if kind == "conv":
            bcx = x @ w[p + "conv.in_proj.weight"].T
            b, c, xx = bcx[:, :d], bcx[:, d : 2 * d], bcx[:, 2 * d :]
            bx = b * xx
            k = w[p + "conv.conv.weight"][:, 0, :]  # (d, 3)
            y = torch.zeros_like(bx)
            for t in range(seq):  # y[t] = w0*Bx[t-1] + w1*Bx[t] + w2*Bx[t+1], zeros outside
                for j, off in enumerate((-1, 0, 1)):
                    if 0 <= t + off < seq:
                        y[t] += k[:, j] * bx[t + off]
            h = h + (c * y) @ w[p + "conv.out_proj.weight"].T
        else:
            q = (x @ w[p + "self_attn.q_proj.weight"].T).view(seq, nh, hd)
            kk = (x @ w[p + "self_attn.k_proj.weight"].T).view(seq, nkv, hd)
            v = (x @ w[p + "self_attn.v_proj.weight"].T).view(seq, nkv, hd)
            q = _rms(q, w[p + "self_attn.q_layernorm.weight"], eps)
            kk = _rms(kk, w[p + "self_attn.k_layernorm.weight"], eps)
            out = torch.zeros(seq, nh, hd, dtype=torch.float64)
            for head in range(nh):
                kv = head // (nh // nkv)
                qr, kr = (
                    torch.zeros(seq, hd, dtype=torch.float64),
                    torch.zeros(seq, hd, dtype=torch.float64),
                )
                for t in range(seq):
                    for j in range(hd // 2):
                        ang = t / theta ** (2 * j / hd)
                        co, si = math.cos(ang), math.sin(ang)
                        for src, dst in ((q[t, head], qr[t]), (kk[t, kv], kr[t])):
                            a, bb = src[j], src[j + hd // 2]
                            dst[j], dst[j + hd // 2] = a * co - bb * si, bb * co + a * si
                att = torch.softmax(qr @ kr.T / math.sqrt(hd), dim=-1)  # no causal mask
                out[:, head] = att @ v[:, kv]
            h = h + out.reshape(seq, d) @ w[p + "self_attn.out_proj.weight"].T
        x = _rms(h, w[p + "ffn_norm.weight"], eps)
        ff = F.silu(x @ w[p + "feed_forward.w1.weight"].T) * (x @ w[p + "feed_forward.w3.weight"].T)
        h = h + ff @ w[p + "feed_forward.w2.weight"].T
    return _rms(h, w["embedding_norm.weight"], eps)


def test_bidirectional_trunk_matches_slow_reference(tiny_embedding_path: Path) -> None:
    ours = _trunk(tiny_embedding_path, causal=False)
    ids = [1, 40, 77, 300, 12, 9, 512, 81, 33]
    with torch.inference_mode():
        got = ours(torch.tensor([ids]))[0].double()
    ref = _reference_bidirectional(tiny_embedding_path, ids)
    assert (got - ref).abs().max().item() <= 1e-5


def test_bidirectional_sees_the_future_and_causal_does_not(
    tiny_embedding_path: Path, tiny_causal_colbert_path: Path
) -> None:
    ids = torch.tensor([[1, 40, 77, 300, 12, 9]])
    changed = ids.clone()
    changed[0, -1] = 500
    bi = _trunk(tiny_embedding_path, causal=False)
    ca = _trunk(tiny_causal_colbert_path, causal=True)
    with torch.inference_mode():
        assert (bi(ids)[0, 0] - bi(changed)[0, 0]).abs().max() > 1e-3
        assert torch.equal(ca(ids)[0, :-1], ca(changed)[0, :-1])


def test_padded_batch_equals_unpadded_forward(tiny_embedding_path: Path) -> None:
    trunk = _trunk(tiny_embedding_path, causal=False)
    a, b = [1, 40, 77, 300, 12, 9, 81, 5], [1, 90, 14]
    ids = torch.tensor([a, b + [7] * (len(a) - len(b))])
    mask = torch.tensor([[1] * len(a), [1] * len(b) + [0] * (len(a) - len(b))])
    with torch.inference_mode():
        batch = trunk(ids, mask, mask)
        alone = trunk(torch.tensor([b]))
        # Without zeroing the pads before the conv, the last real token would read a pad.
        leaky = trunk(ids, mask, None)
    assert (batch[1, : len(b)] - alone[0]).abs().max().item() <= 1e-5
    assert (leaky[1, : len(b)] - alone[0]).abs().max().item() > 1e-4


def test_weights_load_once_in_compute_dtype(tiny_embedding_path: Path) -> None:
    # bf16 file -> fp32 parameters, with no extra copy kept around.
    trunk = _trunk(tiny_embedding_path, causal=False)
    assert {p.dtype for p in trunk.parameters()} == {torch.float32}
    assert not any(p.is_meta for p in trunk.parameters())


def test_unexpected_or_misshapen_tensors_are_rejected(
    tiny_embedding_path: Path, tmp_path: Path
) -> None:
    import shutil

    from safetensors.torch import save_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_embedding_path, bad)
    state = load_file(str(bad / "model.safetensors"))
    state["layers.0.feed_forward.w1.weight"] = state["layers.0.feed_forward.w1.weight"][:10]
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(ValueError, match=r"w1\.weight.*shape"):
        _trunk(bad, causal=False)
