"""Fan-in and fan-out of a weight tensor, from its shape and a documented layout.

Layouts
-------
``"torch"`` (default)
    ``(out, in, *kernel)`` as ``nn.Linear`` / ``nn.Conv*`` store weights:
    ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
    Grouped and depthwise convs store ``(out, in / groups, *kernel)``, so ``fan_in`` is already the
    number of inputs a unit sees. ``fan_out`` counts every output channel (torch's convention, and
    what ``torch.nn.init`` computes); pass ``fans=`` explicitly if you want ``out / groups``.
``"torch_transposed"``
    ``(in, out / groups, *kernel)`` as ``nn.ConvTranspose*`` stores weights. torch's own
    ``_calculate_fan_in_and_fan_out`` reads dims 1 and 0 as if this were a conv, i.e. it swaps the
    roles; the ``"torch"`` layout reproduces that (and is what the ``initlab.torch`` drop-ins use).
    ``"torch_transposed"`` instead gives the fans of the layer as a map from its input to its
    output: ``fan_in = shape[0] * prod(kernel)``, ``fan_out = shape[1] * prod(kernel)``.
``"jax"``
    ``(*kernel, in, out)`` as JAX/Flax/Keras store kernels (``in_axis=-2, out_axis=-1``):
    receptive field = ``size / (in * out)``.

0-D shapes have no fans; 1-D shapes (biases, norm weights) have none either unless given, as
``fans=(fan_in, fan_out)`` of the layer they belong to.
"""

from __future__ import annotations

import math

from .validation import MAX_DIM, check_choice, check_scalar, check_shape, fail

LAYOUTS = ("torch", "torch_transposed", "jax")


def receptive_field(shape: tuple[int, ...], layout: str = "torch") -> int:
    """Number of kernel taps (1 for a dense layer)."""
    shape = check_shape(shape)
    check_choice(layout, "layout", LAYOUTS)
    if len(shape) < 2:
        return 1
    if layout == "jax":
        return math.prod(shape[:-2])
    return math.prod(shape[2:])


def fans(shape, layout: str = "torch") -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight tensor of ``shape`` in ``layout``.

    Examples
    --------
    >>> fans((256, 784))               # nn.Linear(784, 256).weight
    (784, 256)
    >>> fans((64, 3, 3, 3))            # nn.Conv2d(3, 64, 3).weight
    (27, 576)
    >>> fans((3, 3, 3, 64), layout="jax")
    (27, 576)
    """
    shape = check_shape(shape)
    check_choice(layout, "layout", LAYOUTS)
    if len(shape) < 2:
        raise fail(
            "shape",
            f"must have at least 2 dimensions to compute fan_in and fan_out ({len(shape)}-D tensors "
            "have no fans)",
            shape,
            "pass `fans=(fan_in, fan_out)` of the layer this tensor belongs to (e.g. a bias gets "
            "its layer's fans), or use an initializer that needs no fans (zeros, normal, uniform).",
        )
    rf = receptive_field(shape, layout)
    if layout == "jax":
        return shape[-2] * rf, shape[-1] * rf
    if layout == "torch_transposed":
        return shape[0] * rf, shape[1] * rf
    return shape[1] * rf, shape[0] * rf


def check_fans(value) -> tuple[int, int]:
    """Validate user-given ``fans=(fan_in, fan_out)``."""
    try:
        fi, fo = value
    except (TypeError, ValueError):
        raise fail("fans", "must be a pair (fan_in, fan_out) of positive integers", value,
                   "pass e.g. fans=(784, 256).") from None
    fi = int(check_scalar(fi, "fans[0] (fan_in)", min_val=1, max_val=MAX_DIM, integer=True))
    fo = int(check_scalar(fo, "fans[1] (fan_out)", min_val=1, max_val=MAX_DIM, integer=True))
    return fi, fo


def fan_for_mode(fan_in: int, fan_out: int, mode: str) -> float:
    """The ``n`` of Var(w) = scale / n: fan_in, fan_out, their average (``fan_avg``) or their
    geometric mean (``fan_geo_avg``, computed as JAX does: ``(fan_in * fan_out) ** 0.5``)."""
    check_choice(mode, "mode", ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"))
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_geo_avg":
        return float(fan_in * fan_out) ** 0.5
    return (fan_in + fan_out) / 2.0


# Layout conversions for structured initializers, which are defined on the torch layout.

def to_torch_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """Shape in torch layout ``(out, in, *kernel)`` of a tensor stored in ``layout``."""
    if layout == "jax" and len(shape) >= 2:
        return (shape[-1], shape[-2], *shape[:-2])
    if layout == "torch_transposed" and len(shape) >= 2:
        return (shape[1], shape[0], *shape[2:])
    return tuple(shape)


def torch_axes_to(layout: str, ndim: int) -> tuple[int, ...] | None:
    """Axes permutation that turns a torch-layout array into ``layout`` (None: identity)."""
    if ndim < 2 or layout == "torch":
        return None
    if layout == "jax":
        # torch (out, in, k1..kd) -> jax (k1..kd, in, out)
        return (*range(2, ndim), 1, 0)
    # torch_transposed: (out, in, *k) -> (in, out, *k)
    return (1, 0, *range(2, ndim))


def io_axes(layout: str, ndim: int) -> tuple[int, int] | None:
    """``(in_axis, out_axis)`` of a tensor of ``ndim`` dims stored in ``layout`` (None below 2-D):
    torch ``(out, in, *k)`` -> (1, 0); torch_transposed ``(in, out, *k)`` -> (0, 1); jax
    ``(*k, in, out)`` -> (ndim - 2, ndim - 1)."""
    if ndim < 2:
        return None
    if layout == "jax":
        return (ndim - 2, ndim - 1)
    if layout == "torch_transposed":
        return (0, 1)
    return (1, 0)
