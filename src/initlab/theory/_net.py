"""A plain functional MLP in torch for the theory's measurements (propagation, Jacobians).

Layer l computes ``z_l = W_l h_{l-1} + b_l`` and ``h_l = phi(z_l)``; the last layer is linear unless
``activate_last``. Parameters are drawn by :func:`initlab.backends.torch_backend.draw_` from the
initializers' resolved distributions, all from one seeded ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..backends.torch_activations import function as torch_activation
from ..core.distributions import Distribution
from ..core.initializer import Initializer
from ..core.registry import get
from ..core.validation import InitlabTypeError, check_scalar, error_message, fail


def check_widths(widths) -> list[int]:
    try:
        ws = [check_scalar(w, "widths[i]", min_val=1, integer=True) for w in widths]
    except TypeError:
        raise InitlabTypeError(error_message("widths", "must be a sequence of positive ints",
                                             widths, "pass e.g. [784, 256, 256, 10].")) from None
    if len(ws) < 2:
        raise fail("widths", "must have at least 2 entries (input width, then each layer's)",
                   widths, "pass e.g. [784, 256, 10].")
    return ws


def per_layer(init, n_layers: int, name: str, *, allow_none: bool, allow_same: bool = False
              ) -> list[Initializer | Distribution | str | None]:
    """One initializer (or None, or ``"same"`` where ``allow_same``: a bias drawn by the weight
    initializer's bias rule) per layer from a single one or a sequence."""
    if isinstance(init, Sequence) and not isinstance(init, str):
        items = list(init)
        if len(items) != n_layers:
            raise fail(name, f"must have one entry per layer ({n_layers})", len(items),
                       f"pass a single initializer or a list of {n_layers}.")
    else:
        items = [init] * n_layers
    out: list[Initializer | Distribution | str | None] = []
    for it in items:
        if it is None:
            if not allow_none:
                raise fail(name, "must not be None", it, "pass an initializer name.")
            out.append(None)
        elif isinstance(it, str) and it == "same" and not allow_same:
            raise fail(name, "cannot be 'same' (a bias_init value: the weight initializer's bias "
                       "rule)", it, "pass an initializer name, e.g. 'lecun_normal'.")
        elif isinstance(it, (Initializer, Distribution)) or it == "same":
            out.append(it)
        elif isinstance(it, str):
            out.append(get(it))
        else:
            raise InitlabTypeError(error_message(
                name, "must be an initializer name, Initializer or Distribution", it,
                "pass e.g. 'he_normal'."))
    return out


def resolve_layer(weight_init, bias_init, n_in: int, n_out: int):
    """``(weight Distribution, bias Distribution or None)`` of a dense ``n_in -> n_out`` layer."""
    fans = (n_in, n_out)
    wd = weight_init if isinstance(weight_init, Distribution) else \
        weight_init.resolve((n_out, n_in), fans=fans)
    if bias_init is None:
        bd = None
    elif isinstance(bias_init, str) and bias_init == "same":
        if isinstance(weight_init, Distribution):
            raise fail("bias_init", "cannot be 'same' when the weight init is a Distribution",
                       bias_init, "pass the bias initializer explicitly.")
        bd = weight_init.resolve((n_out,), fans=fans, role="bias")
    else:
        bd = bias_init if isinstance(bias_init, Distribution) else \
            bias_init.resolve((n_out,), fans=fans, role="bias")
    return wd, bd


@dataclass
class MLP:
    weights: list[torch.Tensor]
    biases: list[torch.Tensor | None]
    act: Callable[[torch.Tensor], torch.Tensor]
    activate_last: bool = False

    def layer(self, li: int, h: torch.Tensor) -> torch.Tensor:
        """Pre-activation of layer ``l`` (0-based) from the previous layer's output ``h``."""
        z = h @ self.weights[li].T
        b = self.biases[li]
        return z if b is None else z + b

    def apply_act(self, li: int, z: torch.Tensor) -> torch.Tensor:
        last = li == len(self.weights) - 1
        return self.act(z) if (not last or self.activate_last) else z

    def forward(self, x: torch.Tensor, *, record: bool = False):
        """Output, and (when ``record``) the list of pre-activations ``z_l``."""
        zs = []
        h = x
        for li in range(len(self.weights)):
            z = self.layer(li, h)
            if record:
                zs.append(z)
            h = self.apply_act(li, z)
        return (h, zs) if record else h


def build_mlp(widths, activation="tanh", weight_init="lecun_normal", bias_init=None, *,
              generator: torch.Generator, dtype=torch.float64, activate_last: bool = False,
              param: float | None = None) -> MLP:
    """Draw an MLP's parameters (see module docstring) from ``generator``."""
    from ..backends.torch_backend import draw_

    ws = check_widths(widths)
    L = len(ws) - 1
    winits = per_layer(weight_init, L, "weight_init", allow_none=False)
    binits = per_layer(bias_init, L, "bias_init", allow_none=True, allow_same=True)
    weights: list[torch.Tensor] = []
    biases: list[torch.Tensor | None] = []
    for li in range(L):
        wd, bd = resolve_layer(winits[li], binits[li], ws[li], ws[li + 1])
        W = torch.empty(ws[li + 1], ws[li], dtype=dtype)
        draw_(W, wd, generator)
        weights.append(W)
        if bd is None:
            biases.append(None)
        else:
            b = torch.empty(ws[li + 1], dtype=dtype)
            draw_(b, bd, generator)
            biases.append(b)
    return MLP(weights, biases, torch_activation(activation, param), activate_last)
