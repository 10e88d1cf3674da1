"""What a model is probed with when no batch is given: an input built from its config or its
first layer (:func:`config_inputs`; see :mod:`~initlab.modelinit.describe`), and a user's batch
as ``(args, kwargs)`` (:func:`split_batch`).

A text model whose forward takes ``token_type_ids`` is probed with segment ids (all 0) first,
then without them.

An image-text model (LLaVA, Gemma 3, GOT-OCR2...) gets ``input_ids`` that hold as many image
tokens as its ``get_image_features`` returns feature vectors for the image (computed on a meta
copy), beside ``pixel_values``; if that input does not run, the text alone is tried next (its
vision layers are then said not to have run). Pixels go in beside the text when the config
has a ``vision_config`` (CLIP's towers) or one config names the image's size (ViLT, whose
forward refuses the text alone).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn

from .params import CONV_TYPES, RNN_TYPES
from .probe_meta import meta_copy
from .units import tensors_in, unit_kind_of


def split_batch(batch: Any) -> tuple[tuple, dict]:
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, (tuple, list)):
        return tuple(batch), {}
    return (batch,), {}


def _accepts(model: nn.Module, kw: str) -> bool:
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return False
    return kw in sig.parameters or any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _names_param(model: nn.Module, kw: str) -> bool:
    """Whether ``model.forward`` names ``kw`` itself (not through ``**kwargs``)."""
    try:
        return kw in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _pixels(cfg: Any, device: torch.device) -> torch.Tensor:
    s = getattr(cfg, "image_size", 224)
    s = s[0] if isinstance(s, (tuple, list)) else s
    return torch.zeros(1, getattr(cfg, "num_channels", 3), s, s, device=device)


def _image_token(cfg: Any) -> int | None:
    """The token id an image-text model's input holds where the image's features go."""
    for key in ("image_token_id", "image_token_index"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


@runtime_checkable
class _ImageTextModel(Protocol):
    """An image-text model (transformers'): the feature vectors its vision tower gives."""

    def get_image_features(self, *, pixel_values: torch.Tensor) -> Any: ...


def _image_tokens(model: nn.Module, pixels: torch.Tensor) -> int | None:
    """How many image tokens an image-text model (LLaVA, Gemma 3, GOT-OCR2...) wants for
    ``pixels``: the number of feature vectors its ``get_image_features`` returns, computed on a
    meta copy (nothing allocated); None for a model without an image token or that method."""
    get = getattr(model, "get_image_features", None)
    if _image_token(getattr(model, "config", None)) is None or not callable(get):
        return None
    try:
        copy = meta_copy(model)             # (torch's hooks only: the user's see real data)
        if not isinstance(copy, _ImageTextModel):  # pragma: no cover - a copy of model's class
            return None
        feats = copy.get_image_features(pixel_values=pixels)
    except Exception:  # noqa: BLE001 - any failure: no image candidate, the text one is tried
        return None
    # transformers returns the features themselves, or an output whose ``pooler_output`` holds
    # them (a tensor, or one per image), beside the tower's hidden states
    pooled = getattr(feats, "pooler_output", None)
    found = tensors_in(pooled if pooled is not None else feats, [])
    if not isinstance(feats, torch.Tensor) and pooled is None:
        found = found[:1]
    found = [t for t in found if t.dim() >= 2]
    if not found:
        return None
    return sum(t.numel() // t.shape[-1] for t in found)


def config_inputs(model: nn.Module) -> list[tuple[tuple, dict]]:
    """Candidate inputs built from the model (see the module docs), meta tensors."""
    cfg = getattr(model, "config", None)
    out: list[tuple[tuple, dict]] = []
    meta = torch.device("meta")
    if cfg is not None:
        main = getattr(model, "main_input_name", "input_ids")
        text = getattr(cfg, "text_config", None) or cfg      # CLIP-like: per-tower configs
        vision = getattr(cfg, "vision_config", None) or cfg
        kw: dict[str, Any] = {}
        ids = torch.zeros(1, 8, dtype=torch.long, device=meta)
        if main == "input_ids" and isinstance(getattr(text, "vocab_size", None), int):
            kw["input_ids"] = ids
        elif main == "pixel_values":
            kw["pixel_values"] = _pixels(vision, meta)
        elif main == "input_values":          # raw audio (wav2vec2, HuBERT): (batch, samples)
            kw["input_values"] = torch.zeros(1, 16000, device=meta)
        elif main == "input_features" and isinstance(getattr(cfg, "num_mel_bins", None), int):
            n = 2 * int(getattr(cfg, "max_source_positions", 1500))  # Whisper: 2 frames/position
            kw["input_features"] = torch.zeros(1, cfg.num_mel_bins, n, device=meta)
        if kw:
            text_only = dict(kw)
            if main != "pixel_values" and _names_param(model, "pixel_values") and (
                    getattr(cfg, "vision_config", None) is not None
                    or isinstance(getattr(cfg, "image_size", None), (int, list, tuple))):
                # both towers: a CLIP's per-tower configs, or one config with the image's size
                # (ViLT, whose forward asks for the pixels beside the text)
                kw["pixel_values"] = _pixels(vision, meta)
                token, n_img = _image_token(cfg), _image_tokens(model, kw["pixel_values"])
                if token is not None and n_img is not None:    # an image-text model (LLaVA)
                    kw["input_ids"] = torch.cat([ids, torch.full(
                        (1, n_img), token, dtype=torch.long, device=meta)], dim=1)
            extra: dict[str, Any] = {}
            if getattr(cfg, "is_encoder_decoder", False):
                extra["decoder_input_ids"] = ids
            if _accepts(model, "use_cache") and getattr(cfg, "use_cache", False):
                extra["use_cache"] = False
            if "input_ids" in kw and "pixel_values" not in kw and \
                    _names_param(model, "token_type_ids"):
                # segment ids (all 0): a model that reads segments only when given them (XLNet's
                # relative segment encoding) runs them, and one with a default runs as before
                out.append(((), {**kw, **extra,
                                 "token_type_ids": torch.zeros_like(kw["input_ids"])}))
            out.append(((), {**kw, **extra}))
            if "pixel_values" in kw and "input_ids" in kw:
                # the text tower alone, when the image cannot go in (the vision layers are then
                # said not to have run)
                out.append(((), {**text_only, **extra}))
    units = [(m, k) for m in model.modules()
             if (k := unit_kind_of(m)) in ("layer", "embedding", "norm", "other")]
    first = next((m for m, k in units if k != "other"), None)
    out += _layer_inputs(first, meta) if first is not None else []
    if units and units[0][1] == "other":
        # the first unit is a module of a class initlab does not know holding one matrix (a
        # user's linear layer, stored (out, in) or (in, out)): inputs of either width, after
        # the others; or one kernel (out, in, *k) (a user's conv layer): images of in channels
        mats = [p for p in units[0][0]._parameters.values() if p is not None and p.dim() >= 2]
        if len(mats) == 1 and mats[0].dim() == 2:
            for n in dict.fromkeys((mats[0].shape[1], mats[0].shape[0])):
                out.append(((torch.zeros(2, n, device=meta),), {}))
        elif len(mats) == 1 and mats[0].dim() <= 5:
            out += _images(mats[0].dim() - 2, mats[0].shape[1], meta)
    return out


def _images(nd: int, channels: int, meta: torch.device) -> list[tuple[tuple, dict]]:
    """Candidate inputs of a convolution over ``nd`` dimensions with ``channels`` inputs."""
    return [((torch.zeros(2, channels, *([s] * nd), device=meta),), {})
            for s in (32, 28, 16, 64, 8, 224)]


def _layer_inputs(first: nn.Module, meta: torch.device) -> list[tuple[tuple, dict]]:
    """Candidate inputs for a model whose first layer (embedding, norm) is ``first``."""
    out: list[tuple[tuple, dict]] = []
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        out.append(((torch.zeros(2, 8, dtype=torch.long, device=meta),), {}))
    elif isinstance(first, nn.Linear):
        out.append(((torch.zeros(2, first.in_features, device=meta),), {}))
    elif isinstance(first, (*CONV_TYPES, nn.ConvTranspose1d, nn.ConvTranspose2d,
                            nn.ConvTranspose3d)):
        out += _images(first.weight.dim() - 2, first.in_channels, meta)
    elif isinstance(first, RNN_TYPES):   # a sequence module (batch, time, in), a cell one step
        steps = (5,) if isinstance(first, nn.RNNBase) else ()
        out.append(((torch.zeros(2, *steps, first.input_size, device=meta),), {}))
    elif isinstance(first, nn.MultiheadAttention):
        out.append(((torch.zeros(2, 5, first.embed_dim, device=meta),), {}))
    elif isinstance(first, nn.LayerNorm):
        out.append(((torch.zeros(2, 5, *first.normalized_shape, device=meta),), {}))
    return out
