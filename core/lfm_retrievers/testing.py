"""Write miniature checkpoints in exactly the real on-disk layout, for offline tests.

The real weights cannot be downloaded everywhere (CI, air-gapped machines). A checkpoint
written here has the real file names, config keys (legacy spellings included), tensor names,
storage dtype, sentence-transformers / PyLate head files and tokenizer files, so it goes through
the same public loading path as ``LiquidAI/LFM2.5-*``. Only the sizes are small and the weights
random. Use it to test your own pipelines::

    from lfm_retrievers import load
    from lfm_retrievers.testing import build_tiny_checkpoint

    path = build_tiny_checkpoint("colbert", "/tmp/tiny-colbert")
    encoder = load(path)
"""

from __future__ import annotations

import json
import os
import shutil
import string
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file

from ._validation import check_choice
from .models.trunk import ATTENTION, CONV, Lfm2Trunk, TrunkConfig

TinyKind = Literal["embedding", "colbert", "colbert-causal"]
KINDS: tuple[str, ...] = ("embedding", "colbert", "colbert-causal")
PRESETS: tuple[str, ...] = ("tiny", "full")

PAD, BOS, EOS = "<|pad|>", "<|startoftext|>", "<|im_end|>"
SPECIAL_TOKENS = [
    PAD,
    BOS,
    "<|endoftext|>",
    "<|fim_pre|>",
    "<|fim_mid|>",
    "<|fim_suf|>",
    "<|im_start|>",
    EOS,
]
SKIPLIST_WORDS = list(string.punctuation)

_TINY: dict[str, Any] = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 256,  # real width after the auto-adjust rule: 192
    "block_multiple_of": 32,
    "layer_types": [CONV, CONV, ATTENTION, CONV, ATTENTION, CONV],
    "colbert_dim": 16,
}
_FULL: dict[str, Any] = {
    "hidden_size": 1024,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "intermediate_size": 6656,  # real width 4608
    "block_multiple_of": 256,
    "layer_types": [
        CONV,
        CONV,
        ATTENTION,
        CONV,
        CONV,
        ATTENTION,
        CONV,
        CONV,
        ATTENTION,
        CONV,
        ATTENTION,
        CONV,
        ATTENTION,
        CONV,
        ATTENTION,
        CONV,
    ],
    "colbert_dim": 128,
}

# A few sentences in the 11 supported languages, enough to train a small byte-level BPE.
_CORPUS = """\
The quick brown fox jumps over the lazy dog. How do I reset my password? Shipping takes three days.
Der schnelle braune Fuchs springt über den faulen Hund. Wie setze ich mein Passwort zurück?
El rápido zorro marrón salta sobre el perro perezoso. ¿Cómo restablezco mi contraseña?
Le renard brun rapide saute par-dessus le chien paresseux. Comment réinitialiser mon mot de passe ?
La volpe marrone veloce salta sopra il cane pigro. Come reimposto la mia password?
A rápida raposa marrom pula sobre o cão preguiçoso. Como redefino minha senha?
Den snabba bruna räven hoppar över den lata hunden. Hur återställer jag mitt lösenord?
Den raske brune reven hopper over den late hunden. Hvordan tilbakestiller jeg passordet mitt?
素早い茶色の狐が怠け者の犬を飛び越える。パスワードをリセットするにはどうすればよいですか？
빠른 갈색 여우가 게으른 개를 뛰어넘는다. 비밀번호를 어떻게 재설정하나요?
الثعلب البني السريع يقفز فوق الكلب الكسول. كيف أعيد تعيين كلمة المرور الخاصة بي؟
Preheat the oven to 200C, then butter a cake tin. Arc<Mutex<T>> is the idiomatic way to share state.
Returns are accepted within 30 days; refunds go to the original payment method (card or PayPal).
"""


def build_tokenizer(vocab_size: int = 1024, markers: bool = False) -> Any:
    """A small byte-level BPE with the LFM special tokens at their real ids (0-7; BOS=1, EOS=7).

    With ``markers`` the ColBERT markers ``"[Q] "`` / ``"[D] "`` are appended as the last two
    ids, as PyLate does for the real checkpoints (64400 / 64401 there).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, 1)]
    )
    if markers:
        _add_markers(tok)
    return tok


def _add_markers(tok: Any) -> None:
    from tokenizers import AddedToken

    tok.add_tokens([AddedToken(m, normalized=True, special=False) for m in ("[Q] ", "[D] ")])


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _init_weights(trunk: Lfm2Trunk, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, param in trunk.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            param.data = 1.0 + 0.1 * torch.randn(param.shape, generator=gen)
        elif name == "embed_tokens.weight":
            param.data = torch.randn(param.shape, generator=gen)
        else:
            fan_in = param.shape[-1] if param.dim() > 1 else 1
            if name.endswith("conv.conv.weight"):
                fan_in = param.shape[-1]
            param.data = torch.randn(param.shape, generator=gen) / fan_in**0.5


def build_tiny_checkpoint(
    kind: TinyKind,
    directory: str | os.PathLike[str],
    *,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    preset: Literal["tiny", "full"] = "tiny",
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint of ``kind`` into ``directory`` and return its path.

    kind: ``"embedding"`` (LFM2.5-Embedding layout: bidirectional, bf16, 1_Pooling CLS),
    ``"colbert"`` (LFM2.5-ColBERT: bidirectional, bf16, 1_Dense + PyLate settings) or
    ``"colbert-causal"`` (LFM2-ColBERT: ``Lfm2Model``, float32, legacy config spellings).
    tokenizer_dir: use these tokenizer files (e.g. the real LFM2 tokenizer) instead of a small
    generated one; ColBERT markers are added if the tokenizer lacks them.
    preset: ``"tiny"`` (hidden 64, 6 layers) or ``"full"`` (the real 350M shape, random weights,
    for benchmarks).
    """
    check_choice(kind, "kind", KINDS)
    check_choice(preset, "preset", PRESETS)
    from tokenizers import Tokenizer

    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            msg = f"{out} is not empty; pass overwrite=True to replace it"
            raise FileExistsError(msg)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    shape = _TINY if preset == "tiny" else _FULL
    colbert = kind != "embedding"
    causal = kind == "colbert-causal"

    # -- tokenizer ---------------------------------------------------------------------------
    if tokenizer_dir is not None:
        src = Path(tokenizer_dir)
        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        if colbert and tok.token_to_id("[Q] ") is None:
            _add_markers(tok)
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if (src / name).exists():
                shutil.copyfile(src / name, out / name)
    else:
        tok = build_tokenizer(markers=colbert)
        pad = EOS if colbert else PAD
        _write_json(
            out / "tokenizer_config.json",
            {
                "add_bos_token": True,
                "add_eos_token": False,
                "bos_token": BOS,
                "eos_token": EOS,
                "pad_token": pad,
                "clean_up_tokenization_spaces": False,
                "legacy": False,
                "model_input_names": ["input_ids", "attention_mask"],
                "model_max_length": 1000000000000000019884624838656,
                "tokenizer_class": "PreTrainedTokenizerFast",
                "use_fast": True,
            },
        )
        _write_json(
            out / "special_tokens_map.json",
            {
                "bos_token": {
                    "content": BOS,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                },
                "eos_token": {
                    "content": EOS,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                },
                "pad_token": pad,
            },
        )
    tok.save(str(out / "tokenizer.json"))
    n_tok = tok.get_vocab_size(with_added_tokens=True)
    # The Embedding checkpoint's matrix is padded past the tokenizer (65,536 rows for 64,400 ids);
    # PyLate resizes the ColBERT matrix to exactly len(tokenizer) (64,402).
    vocab = n_tok if colbert else ((n_tok + 1023) // 1024) * 1024
    if preset == "full" and not colbert:
        vocab = max(vocab, 65536)

    # -- config.json ---------------------------------------------------------------------------
    hidden = shape["hidden_size"]
    layer_types = list(shape["layer_types"])
    config: dict[str, Any] = {
        "architectures": ["Lfm2Model" if causal else "Lfm2BidirectionalModel"],
        "block_auto_adjust_ff_dim": True,
        "block_dim": hidden,
        "block_ff_dim": shape["intermediate_size"],
        "block_ffn_dim_multiplier": 1.0,
        "block_mlp_init_scale": 1.0,
        "block_multiple_of": shape["block_multiple_of"],
        "block_norm_eps": 1e-05,
        "block_out_init_scale": 1.0,
        "block_use_swiglu": True,
        "block_use_xavier_init": True,
        "bos_token_id": 1,
        "conv_L_cache": 3,
        "conv_bias": False,
        "conv_dim": hidden,
        "conv_use_xavier_init": True,
        "eos_token_id": 7,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape["intermediate_size"],
        "max_position_embeddings": 128000,
        "model_type": "lfm2",
        "norm_eps": 1e-05,
        "num_attention_heads": shape["num_attention_heads"],
        "num_heads": shape["num_attention_heads"],
        "num_hidden_layers": len(layer_types),
        "num_key_value_heads": shape["num_key_value_heads"],
        "pad_token_id": 0,
        "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
        "rope_theta": 1000000.0,
        "use_cache": True,
        "use_pos_enc": True,
        "vocab_size": vocab,
    }
    if causal:
        # The older checkpoint: full_attn_idxs instead of layer_types, the newer tie key, f32.
        config["full_attn_idxs"] = [i for i, t in enumerate(layer_types) if t == ATTENTION]
        config["tie_word_embeddings"] = True
        config["dtype"] = "float32"
        config["transformers_version"] = "4.57.1"
    else:
        config["layer_types"] = layer_types
        config["tie_embedding"] = True
        config["dtype"] = "bfloat16"
        config["transformers_version"] = "4.56.2"
        config["auto_map"] = {"AutoModel": "modeling_lfm2_bidirectional.Lfm2BidirectionalModel"}
        if colbert:
            config["disable_flash_attention"] = True
    _write_json(out / "config.json", dict(sorted(config.items())))

    # -- weights ---------------------------------------------------------------------------------
    cfg = TrunkConfig.from_dict(config, causal=causal)
    trunk = Lfm2Trunk(cfg)
    _init_weights(trunk, seed)
    storage = torch.float32 if causal else torch.bfloat16
    state = {k: v.detach().to(storage).contiguous() for k, v in trunk.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    del trunk, state

    # -- sentence-transformers / PyLate modules -----------------------------------------------
    max_len = 511 if colbert else 512
    _write_json(
        out / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": False}
    )
    head = {"idx": 1, "name": "1"}
    if colbert:
        head.update({"path": "1_Dense", "type": "pylate.models.Dense.Dense"})
    else:
        head.update({"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            head,
        ],
    )
    versions = {
        "sentence_transformers": "5.1.0",
        "transformers": config["transformers_version"],
        "pytorch": "2.8.0",
    }
    if colbert:
        dim = shape["colbert_dim"]
        gen = torch.Generator().manual_seed(seed + 1)
        weight = (torch.randn((dim, hidden), generator=gen) / hidden**0.5).to(storage)
        (out / "1_Dense").mkdir()
        save_file(
            {"linear.weight": weight},
            str(out / "1_Dense" / "model.safetensors"),
            metadata={"format": "pt"},
        )
        _write_json(
            out / "1_Dense" / "config.json",
            {
                "in_features": hidden,
                "out_features": dim,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
                "use_residual": False,
            },
        )
        _write_json(
            out / "config_sentence_transformers.json",
            {
                "__version__": {**versions, "pylate": "1.3.0"},
                "prompts": {"query": "", "document": ""},
                "default_prompt_name": None,
                "similarity_fn_name": "MaxSim",
                "query_prefix": "[Q] ",
                "document_prefix": "[D] ",
                "query_length": 32,
                "document_length": 512,
                "attend_to_expansion_tokens": False,
                "skiplist_words": SKIPLIST_WORDS,
                "do_query_expansion": True,
            },
        )
    else:
        _write_json(
            out / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": hidden,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
                "pooling_mode_weightedmean_tokens": False,
                "pooling_mode_lasttoken": False,
                "include_prompt": True,
            },
        )
        _write_json(
            out / "config_sentence_transformers.json",
            {
                "__version__": versions,
                "prompts": {"query": "query: ", "document": "document: "},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
                "model_type": "SentenceTransformer",
            },
        )
    (out / "README.md").write_text(
        f"Miniature `{kind}` checkpoint written by lfm_retrievers.testing (random weights, "
        f"real on-disk layout). Not a trained model.\n",
        encoding="utf-8",
    )
    return out


def example_models(work_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """(embedding, colbert) checkpoint folders for examples and cookbooks.

    Taken from ``$LFM_RETRIEVERS_MODEL_DIR`` (a folder holding ``embedding/`` and ``colbert/``,
    e.g. the downloaded real checkpoints); when it is unset, tiny random checkpoints are built
    in ``work_dir`` (a temporary folder by default) and a warning says the rankings mean nothing.
    """
    import logging
    import tempfile

    model_dir = os.environ.get("LFM_RETRIEVERS_MODEL_DIR")
    if model_dir:
        return Path(model_dir) / "embedding", Path(model_dir) / "colbert"
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="lfm-models-"))
    logging.getLogger(__name__).warning(
        "LFM_RETRIEVERS_MODEL_DIR is not set: using tiny random checkpoints in %s "
        "(everything runs end to end, but the rankings are meaningless)",
        work,
    )
    return (
        build_tiny_checkpoint("embedding", work / "embedding", overwrite=True),
        build_tiny_checkpoint("colbert", work / "colbert", overwrite=True),
    )


__all__ = ["KINDS", "SPECIAL_TOKENS", "build_tiny_checkpoint", "build_tokenizer", "example_models"]
