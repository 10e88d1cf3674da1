"""Free weights and free biases in the model description (:mod:`~initlab.modelinit.describe`;
found by the probe, :mod:`~initlab.modelinit.dataflow`): a parameter that a module holds itself
and a product reads as a layer's weight is a layer of kind ``"free"`` named by the parameter,
with the fans of that use; one added to a layer's output, one value per output unit, is that
layer's bias. Here their parameters take the layer's dataflow and those fans."""

from __future__ import annotations

from typing import Any

from .params import Block, ParamInfo


def attach_free_biases(params: list[ParamInfo], found: dict[str, str],
                       by_name: dict[str, Any]) -> None:
    """Each free bias the probe ``found`` (parameter -> layer) joins its layer's ``biases`` when
    it holds one value per output unit of the layer, as the layer's own bias would (a position
    table added to a patch embedding's output does not)."""
    named = {n: p for p in params for n in p.names}
    for bias, layer in found.items():
        if layer in by_name and bias in named and \
                named[bias].tensor.numel() == fan_out(by_name[layer], named):
            by_name[layer].biases += (bias,)


def weight_of(layer: Any, params: dict[str, ParamInfo]) -> ParamInfo | None:
    """``layer``'s weight among ``params`` (by every name): the free weight itself, or the
    module's ``weight``."""
    if layer.kind == "free":
        return params.get(layer.name)
    return params.get(f"{layer.name}.weight" if layer.name else "weight")


def fan_out(layer: Any, params: dict[str, ParamInfo]) -> int | None:
    """The number of output units of ``layer``: a convolution's output channels (a transposed
    one's: its kernel's dimension 1), a free weight's fan_out from its use, else its weight's
    fan_out (None when it has no single weight matrix)."""
    if layer.conv is not None:
        return layer.conv[1]
    if layer.transposed_conv and layer.kind == "free":    # an ungrouped (in, out, *k) kernel
        w = weight_of(layer, params)
        return int(w.shape[1]) if w is not None else None
    if layer.fans is not None:
        return layer.fans[1]
    w = weight_of(layer, params)
    fans = w.fans if w is not None else []
    return fans[0][1] if len(fans) == 1 and fans[0] is not None else None


def stored_layout(shape: tuple[int, ...], fans: tuple[int, int], use: str) -> str | None:
    """The layout of a 2-D free weight of ``shape`` read with ``fans`` (fan_in, fan_out) by
    ``use``: ``"torch"`` when stored (out, in), ``"torch_transposed"`` when (in, out); a square
    one by its use (``x @ W`` reads (in, out); ``W @ x`` and ``F.linear`` (out, in)). None for
    any other tensor, and for a square one an ``einsum`` reads (its fans are the same either
    way)."""
    if len(shape) != 2:
        return None
    fi, fo = fans
    if shape == (fi, fo) and (fi != fo or use == "x @ W"):
        return "torch_transposed"
    if shape == (fo, fi) and (fi != fo or use in ("W @ x", "F.linear")):
        return "torch"
    return None


def fill_free(desc: Any, by_name: dict[str, Any]) -> None:
    """Free weights and free biases (:class:`LayerInfo` ``fans``/``biases``) take their layer's
    dataflow, and fans from the use the probe saw (a bias: its layer weight's), in place of
    those read from their shape."""
    named = {n: p for p in desc.params for n in p.names}
    owner = {b: layer for layer in desc.layers for b in layer.biases}
    for p in desc.params:
        layer = next((by_name[n] for n in p.names if n in by_name and
                      by_name[n].kind == "free"), None)
        bias_of = next((owner[n] for n in p.names if n in owner), None)
        if layer is not None and p.role == "embedding":
            # a readout tied to the input embedding (a user's head `x @ emb.weight.t()`): the
            # tensor is described as the embedding, as an nn.Linear head tied to it is
            p.is_readout = p.is_readout or layer.is_readout
            continue
        if layer is not None and layer.fans is not None:
            fi, fo = layer.fans
            layout = stored_layout(tuple(p.shape), (fi, fo), layer.use)
            if layout is not None:
                # a matrix read as stored, (out, in) or (in, out): its layout says which
                # dimension is the units (a user's `x @ W` with W (in, out) is HF Conv1D's)
                p.role, p.layout = "weight", layout
                p.blocks = [Block(0, p.shape[0], tuple(p.shape))]
            elif p.role != "weight" or not p.fans or any(f != (fi, fo) for f in p.fans):
                # the use's fans replace those read from the shape; blocks that already
                # agree with the use are kept (RG-LRU's block-diagonal gate: one per head)
                p.role, p.layout = "weight", "torch"
                p.blocks = [Block(0, p.shape[0] if p.shape else 0, (fo, fi))]
            p.notes = [x for x in p.notes if not x.startswith("module type ")] + [
                f"a free weight: {layer.use} reads it as a layer's weight (on "
                f"{type(layer.module).__name__}): fans ({fi}, {fo}) from that use"]
        elif bias_of is not None and p.role not in ("norm_scale", "norm_shift"):
            w = weight_of(bias_of, named)
            p.role = "bias"
            if w is not None and len(w.blocks) == 1:
                p.layout = w.layout
                p.blocks = [Block(0, p.shape[0] if p.shape else 0, w.blocks[0].fan_shape)]
            p.notes = [x for x in p.notes if not x.startswith("module type ")] + [
                f"a free bias: added to the output of `{bias_of.name}`"
                + ("" if w is not None and len(w.blocks) == 1 else " (fans from its shape)")]
            layer = bias_of
        else:
            continue
        p.activation, p.activation_why = layer.activation, layer.activation_why
        p.gated_by, p.residual_branch = layer.gated_by, layer.residual_branch
        p.is_readout = layer.is_readout
