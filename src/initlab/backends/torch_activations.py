"""Registry activations as torch objects: :func:`function` (a callable on tensors) and
:func:`module` (an ``nn.Module``), both read from the entry's forms in the one activation
registry, :mod:`initlab.core.activations` (no name-to-function table here).

The registry names every activation's torch function by qualified name; for the four torch has
none of, it names the functions below (:func:`identity`, :func:`quick_gelu`,
:func:`relu_squared`, :func:`xielu`), so a model that calls them is recognized too
(``lookup_function``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

import torch
from torch import nn

from ..core.activations import (
    ACTIVATION_NAMES,
    QUICK_GELU_SCALE,
    XIELU_ALPHA_INIT,
    XIELU_BETA,
    XIELU_EPS,
    Activation,
    activation,
    function_form,
    module_form,
)
from ..core.validation import fail


def identity(x: torch.Tensor) -> torch.Tensor:
    """``x``: the ``linear`` entry (no activation)."""
    return x


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(1.702 x)``, CLIP's GELU approximation (``QUICK_GELU_SCALE``)."""
    return x * torch.sigmoid(QUICK_GELU_SCALE * x)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    """``relu(x)^2`` (So et al. 2021, Primer)."""
    return torch.relu(x).square()


def xielu(x: torch.Tensor) -> torch.Tensor:
    """xIELU at its starting slopes (Huang et al. 2024): ``0.8 x^2 + 0.5 x`` for x > 0, else
    ``0.8 (expm1(min(x, -1e-6)) - x) + 0.5 x`` (Hugging Face's ``XIELUActivation`` as built)."""
    a, b = XIELU_ALPHA_INIT, XIELU_BETA
    neg = a * (torch.expm1(torch.clamp(x, max=XIELU_EPS)) - x)
    return torch.where(x > 0, a * x * x, neg) + b * x


def _resolve(target: str):
    """The object a qualified name (``"torch.nn.functional.gelu"``) names."""
    module, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _form(read: Callable, what: str, name: str, param, fix: str) -> tuple[str, dict]:
    """``read(name, param)`` (the registry's ``function_form`` or ``module_form``), or an error
    that lists the entries which have such a form."""
    form = read(name, param)
    if form is None:
        have = ", ".join(repr(n) for n in ACTIVATION_NAMES if read(n) is not None)
        raise fail("activation", f"has no {what} form in the registry (entries with one: {have})",
                   name, fix)
    return form


def _in_registry(act) -> bool:
    """Whether ``act`` is a registry :class:`Activation` (not a wrapped callable)."""
    return isinstance(act, Activation) and act.name in ACTIVATION_NAMES and \
        activation(act.name, act.param) == act


def _name_and_param(name, param) -> tuple[str, float | None]:
    """A registry :class:`Activation` gives its name and parameter; names pass through."""
    if _in_registry(name):
        return name.name, name.param if param is None else param
    activation(name, param)  # validates the name (listing the registry) and the parameter
    return name, param


def function(name: str | Activation | Callable, param: float | None = None) -> Callable:
    """The torch function of a registry activation (a name, alias or registry
    :class:`Activation`): its entry's first function form, called with the entry's keyword
    arguments (``function("leaky_relu", 0.2)`` is ``partial(F.leaky_relu, negative_slope=0.2)``).
    Any other callable is returned as it is (it is taken to compute on tensors)."""
    if callable(name) and not _in_registry(name):
        return name
    name, param = _name_and_param(name, param)
    target, kwargs = _form(function_form, "torch function", name, param,
                           "pass a torch callable that computes it, or add a function form to "
                           "its entry in initlab.core.activations (a torch function, or one in "
                           "initlab.backends.torch_activations).")
    fn = _resolve(target)
    return functools.partial(fn, **kwargs) if kwargs else fn


def module(name: str | Activation, param: float | None = None) -> nn.Module:
    """The ``torch.nn`` module of a registry activation: its entry's first ``torch.nn`` module
    form with the entry's settings (``linear``: ``nn.Identity``)."""
    name, param = _name_and_param(name, param)
    if activation(name).name == "linear":
        return nn.Identity()
    target, kwargs = _form(module_form, "torch.nn module", name, param,
                           f"use function({name!r}) in a module's forward, or pick one of those.")
    return _resolve(target)(**kwargs)
