"""The model's own small tables and constants that are not layers: layer scales (CaiT), the
relative-position bias tables of Swin, BEiT and LeViT, learned logit temperatures (CLIP,
SigLIP, CLAP, Swin-V2), ConvNeXt V2's global response norms and differential attention's
lambdas (DiffLlama). Each is found by name on a module initlab does not otherwise know
(:func:`~initlab.modelinit.params.module_kind` ``"other"``), and its start is read from the
architecture and config, never from the tensor (which may be trained)."""

from __future__ import annotations

import fnmatch
import math

import torch
import torch.nn as nn

from ..core.activations import XIELU_ALPHA_INIT, XIELU_BETA, XIELU_SCALARS
from .params import is_response_norm, module_kind

#: local names (globs) of *layer scales* held by a module of the model's own class: the
#: per-channel multipliers on a residual branch's output (Touvron et al. 2021, CaiT), started at
#: a small constant: Hugging Face BEiT/Data2Vec ``lambda_1``/``lambda_2``, ConvNeXt
#: ``layer_scale_parameter``; every parameter of a leaf module whose class name contains
#: ``LayerScale`` (DINOv2's ``lambda1``, timm's ``gamma``) is one too; PoolFormer's and
#: EfficientFormer's ``layer_scale_1``/``layer_scale_2``
LAYER_SCALE_GLOBS = ("lambda_1", "lambda_2", "layer_scale_parameter", "layer_scale",
                     "layer_scale_[0-9]")
#: config attributes holding a model's layer-scale initial value
LAYER_SCALE_CONFIG_ATTRS = ("layer_scale_init_value", "layerscale_value")


def layer_scales(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of every layer scale of ``model`` (:data:`LAYER_SCALE_GLOBS`): a 1-D
    parameter of a module initlab does not otherwise know."""
    out, seen = [], set()
    for mname, m in model.named_modules():
        if module_kind(m) != "other":
            continue
        leaf_scale = "layerscale" in type(m).__name__.lower()
        for local, t in m._parameters.items():
            if t is None or t.dim() != 1 or id(t) in seen:
                continue
            if leaf_scale or any(fnmatch.fnmatchcase(local, g) for g in LAYER_SCALE_GLOBS):
                seen.add(id(t))
                out.append((f"{mname}.{local}" if mname else local, t))
    return out


def layer_scale_value(model: nn.Module) -> tuple[float | None, str]:
    """``(value, where)``: the layer scales' initial value from the model's config
    (:data:`LAYER_SCALE_CONFIG_ATTRS`), or ``(None, "")``."""
    cfg = getattr(model, "config", None)
    for attr in LAYER_SCALE_CONFIG_ATTRS:
        v = getattr(cfg, attr, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v), f"config.{attr}"
    return None, ""


#: local names (globs) of *relative-position bias tables*: one learned attention-logit bias per
#: relative offset and head (Swin's and BEiT's ``relative_position_bias_table``), gathered into
#: every attention's logits; an embedding in all but use, it starts at 0 (no positional
#: preference; Hugging Face zeroes it, timm draws N(0, 0.02^2), within 0.02 of it). LeViT's
#: and EfficientFormer's ``attention_biases`` (heads, offsets) are the same table.
#: CPM-Ant's ``relative_attention_bias`` (buckets and segment pairs, heads) is a raw parameter of
#: its position module (T5's, an ``nn.Embedding``, is an embedding and keeps the embedding rule).
#: SAM's (and ViTDet's, GOT-OCR2's) decomposed tables ``rel_pos_h``/``rel_pos_w`` (offsets,
#: head size), read by every query; the reference code and Hugging Face zero them too.
RELATIVE_POSITION_GLOBS = ("relative_position_bias_table", "attention_biases",
                           "relative_attention_bias", "rel_pos_h", "rel_pos_w")

#: local names of learned *logit temperatures*: CLIP's ``logit_scale`` (log 1/tau), CLAP's
#: ``logit_scale_a``/``logit_scale_t``, Swin-V2's per-head ``logit_scale``, SigLIP's
#: ``logit_scale`` with its ``logit_bias``
LOGIT_SCALE_NAMES = ("logit_scale", "logit_scale_a", "logit_scale_t", "logit_bias")
#: CLIP's start (Radford et al. 2021, sec. 2.5): tau = 0.07, the parameter holds log(1/tau)
CLIP_LOGIT_SCALE = math.log(1 / 0.07)
#: SigLIP's start (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training", sec. 3.2):
#: t' = log 10 and b = -10, so that the many negative pairs start with a small loss
SIGLIP_LOGIT_SCALE, SIGLIP_LOGIT_BIAS = math.log(10.0), -10.0
#: Swin-V2's per-head cosine-attention temperature (Liu et al. 2022, sec. 3.2): log 10, clamped
#: at log 100 in use
SWINV2_LOGIT_SCALE = math.log(10.0)


def _other_params(model: nn.Module, names) -> list[tuple[str, str, nn.Module, torch.Tensor]]:
    """``(full name, local name, module, tensor)`` of the parameters named ``names`` (globs)
    held by modules initlab does not otherwise know, each tensor once."""
    out, seen = [], set()
    for mname, m in model.named_modules():
        if module_kind(m) != "other":
            continue
        for local, t in m._parameters.items():
            if t is None or id(t) in seen or not any(fnmatch.fnmatchcase(local, g)
                                                     for g in names):
                continue
            seen.add(id(t))
            out.append((f"{mname}.{local}" if mname else local, local, m, t))
    return out


#: local names of the *differential attention* re-parametrized lambdas (Ye et al. 2024,
#: "Differential Transformer", eq. 2: lambda = exp(lq1 . lk1) - exp(lq2 . lk2) + lambda_init),
#: one vector per head dimension each, drawn N(0, 0.1^2) in the paper's code and by
#: Hugging Face's DiffLlama (``config.lambda_std_dev``)
DIFF_LAMBDA_NAMES = ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2")
DIFF_LAMBDA_STD = 0.1


def differential_lambdas(model: nn.Module) -> tuple[list[str], float, str]:
    """``(full names, std, where the std was read)`` of the differential-attention lambdas of
    ``model`` (:data:`DIFF_LAMBDA_NAMES`): the config's ``lambda_std_dev``, else 0.1."""
    names = [name for name, *_ in _other_params(model, DIFF_LAMBDA_NAMES)]
    std = _number(getattr(getattr(model, "config", None), "lambda_std_dev", None))
    if std is not None and std > 0:
        return names, std, "config.lambda_std_dev"
    return names, DIFF_LAMBDA_STD, "Differential Transformer's 0.1"


def relative_position_tables(model: nn.Module) -> list[str]:
    """Full names of the relative-position bias tables of ``model``
    (:data:`RELATIVE_POSITION_GLOBS`)."""
    return [name for name, *_ in _other_params(model, RELATIVE_POSITION_GLOBS)]


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def logit_scales(model: nn.Module) -> list[tuple[str, float | None, str]]:
    """``(name, value, where)`` of every learned logit temperature of ``model``
    (:data:`LOGIT_SCALE_NAMES`), the value it starts at, from the architecture, never from the
    tensor (which may be trained):

    - SigLIP's pair (a module holding ``logit_scale`` and ``logit_bias``): log 10 and -10;
    - CLAP's ``logit_scale_a``/``logit_scale_t``: log of ``config.logit_scale_init_value``
      (CLAP's config holds 1/tau itself);
    - a per-head ``logit_scale`` of shape (heads, 1, 1) (Swin-V2's cosine attention): log 10;
    - a scalar ``logit_scale``: ``config.logit_scale_init_value`` where the config has one
      (CLIP's meaning: already the log), else CLIP's log(1/0.07);
    - anything else: ``None``, left to the other rules (unmatched, said by the plan's warning).
    """
    cfg_value = _number(getattr(getattr(model, "config", None), "logit_scale_init_value", None))
    out: list[tuple[str, float | None, str]] = []
    for name, local, m, t in _other_params(model, LOGIT_SCALE_NAMES):
        pair = all(isinstance(m._parameters.get(k), torch.Tensor)
                   for k in ("logit_scale", "logit_bias"))
        if pair and local in ("logit_scale", "logit_bias"):
            v = SIGLIP_LOGIT_SCALE if local == "logit_scale" else SIGLIP_LOGIT_BIAS
            out.append((name, v, "SigLIP's start, Zhai et al. 2023: t' = log 10, b = -10"))
        elif local in ("logit_scale_a", "logit_scale_t"):
            if cfg_value is not None and cfg_value > 0:
                out.append((name, math.log(cfg_value),
                            "CLAP: log of config.logit_scale_init_value"))
            else:
                out.append((name, None, ""))
        elif local == "logit_scale" and t.dim() == 3 and t.shape[1:] == (1, 1):
            out.append((name, SWINV2_LOGIT_SCALE, "Swin-V2's per-head start, log 10"))
        elif local == "logit_scale" and t.numel() == 1:
            if cfg_value is not None:
                out.append((name, cfg_value, "config.logit_scale_init_value"))
            else:
                out.append((name, CLIP_LOGIT_SCALE, "CLIP's start, log(1/0.07)"))
        else:
            out.append((name, None, ""))
    return out


def response_norm_params(model: nn.Module) -> list[str]:
    """Full names of the parameters of every global response norm of ``model``
    (:func:`~initlab.modelinit.params.is_response_norm`: ConvNeXt V2's gamma and beta, in
    Hugging Face ``weight`` and ``bias`` of shape (1, 1, 1, C)), each tensor once."""
    out, seen = [], set()
    for mname, m in model.named_modules():
        if not is_response_norm(m) or module_kind(m) != "other":
            continue
        for local, t in m._parameters.items():
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                out.append(f"{mname}.{local}" if mname else local)
    return out


#: PReLU's slope at the start (He et al. 2015, "Delving Deep into Rectifiers", sec. 2.1, and
#: torch's default), where the module does not say (torch's ``nn.PReLU`` keeps its ``init``)
PRELU_INIT = 0.25
#: Hugging Face's xIELU module (its starting slopes, and the floats it keeps beside its buffers,
#: are the activation registry's: :data:`initlab.core.activations.XIELU_SCALARS`)
XIELU_TYPE = "XIELUActivation"


def activation_params(model: nn.Module) -> list[tuple[str, float, str]]:
    """``(name, value, why)`` of the learnable parameters of every activation module of
    ``model`` that has them, at the value the activation starts with:

    - ``nn.PReLU``'s ``weight``: the module's ``init`` (torch's and He et al.'s 0.25);
    - Hugging Face's ``XIELUActivation`` (Apertus): ``alpha_p = softplus^-1(0.8)`` and
      ``alpha_n = softplus^-1(0.8 - beta)``, so the slopes softplus(alpha_p) = 0.8 and
      beta + softplus(alpha_n) = 0.8 (beta the module's, 0.5 by default).
    """
    out = []
    for mname, m in model.named_modules():
        p = f"{mname}." if mname else ""
        if isinstance(m, nn.PReLU) and isinstance(m._parameters.get("weight"), torch.Tensor):
            v = _number(getattr(m, "init", None))
            v, src = (v, "the module's init") if v is not None else (PRELU_INIT, "He et al. 2015")
            out.append((p + "weight", v, f"PReLU slope {v:g} ({src}; He et al. 2015 start at "
                                         "0.25)"))
        elif type(m).__name__ == XIELU_TYPE and all(
                isinstance(m._parameters.get(k), torch.Tensor) for k in ("alpha_p", "alpha_n")):
            beta = _number(getattr(m, XIELU_SCALARS["beta"], None))
            beta = XIELU_BETA if beta is None else beta
            a = XIELU_ALPHA_INIT
            if a - beta <= 0:
                continue      # no softplus preimage: left to the other rules (said unmatched)
            for local, v in (("alpha_p", a), ("alpha_n", a - beta)):
                out.append((p + local, math.log(math.expm1(v)),
                            f"xIELU {local}: softplus^-1({v:g}), slope {a:g} (Huang et al. "
                            "2024)"))
    return out
