"""Randomness a forward draws, switched off while initlab runs a model (the probe, the
doctor, LSUV): dropout and stochastic-depth modules, LayerDrop and SpecAugment flags, the
global random states."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn as nn

#: parameterless module classes (by name suffix) that drop whole examples of a residual branch
#: (stochastic depth: timm's ``DropPath``, Hugging Face's ``BeitDropPath``/``SwinDropPath``...,
#: torchvision's ``StochasticDepth``): looked inside (a scaling, so the branch is still seen),
#: and switched off by the doctor like dropout
STOCHASTIC_DEPTH = ("DropPath", "StochasticDepth")


def is_stochastic_depth(module: nn.Module) -> bool:
    """Whether ``module`` is a stochastic-depth (drop path) module (:data:`STOCHASTIC_DEPTH`)."""
    return type(module).__name__.endswith(STOCHASTIC_DEPTH)


#: attributes (of a module, or of the ``config`` it holds) that make a forward skip whole layers
#: at random in train mode (LayerDrop: Hugging Face's wav2vec2/HuBERT read ``config.layerdrop``,
#: BART/Whisper/OPT copy ``encoder_layerdrop``/``decoder_layerdrop``/``layerdrop`` onto the
#: encoder/decoder) or augment the input at random (wav2vec2's SpecAugment,
#: ``config.apply_spec_augment``): set to 0 / False while initlab runs the model
STOCHASTIC_ATTRS = ("layerdrop", "encoder_layerdrop", "decoder_layerdrop", "apply_spec_augment")


@contextlib.contextmanager
def global_rng_kept(tensors: Iterable[torch.Tensor] = ()) -> Iterator[None]:
    """The one owner of "leave the user's global random state as it was": the global states of
    Python, NumPy (the legacy ones a forward may draw from), the CPU and the GPUs ``tensors``
    are on are saved on entry and restored on exit (``torch.random.fork_rng``), whatever a
    forward or a Hugging Face ``_init_weights`` draws in between."""
    cuda = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


@contextlib.contextmanager
def stochastic_off(model: nn.Module) -> Iterator[None]:
    """Run ``model`` without its randomness: dropout and stochastic-depth modules in eval mode,
    :data:`STOCHASTIC_ATTRS` at 0 / False, and the global random state of Python, NumPy, the CPU
    and the model's GPUs as it was before (a forward that draws from it, wav2vec2's LayerDrop
    ``torch.rand([])``, leaves the user's stream untouched). Everything is restored on exit."""
    flags: list[tuple[nn.Module, bool]] = []
    attrs: list[tuple[Any, str, Any]] = []
    seen: set[int] = set()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) or is_stochastic_depth(m):
            flags.append((m, m.training))
            m.training = False
        for obj in (m, getattr(m, "config", None)):
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            for a in STOCHASTIC_ATTRS:
                v = getattr(obj, a, None)
                if isinstance(v, bool) and v:
                    attrs.append((obj, a, v))
                    setattr(obj, a, False)
                elif isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                    attrs.append((obj, a, v))
                    setattr(obj, a, type(v)(0))
    try:
        with global_rng_kept(model.parameters()):
            yield
    finally:
        for obj, a, v in reversed(attrs):
            setattr(obj, a, v)
        for m, flag in flags:
            m.training = flag
