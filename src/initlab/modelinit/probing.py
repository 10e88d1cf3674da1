"""Which forward describes a model (:mod:`~initlab.modelinit.describe`'s first step): a probe
on a meta copy with the user's batch or inputs built from the model (``"probe"``; the user's
forward hooks left out of the copy, unless the forward fails without them); when the
forward cannot run on meta, the same probe on the model itself (``"probe-real"``, its buffers
restored: :func:`~initlab.modelinit.dataflow.buffers_kept`), with the user's batch, or, for a
plain model (no forward hooks, no DTensor parameters: :func:`_plain`) of at most
:data:`REAL_PROBE_MAX_PARAMS` parameters, with the built inputs; else none
(``"names-fallback"``), with the reason in the notes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from ..core.validation import InitlabError, fail
from .dataflow import probe
from .dataflow_graph import Graph
from .inputs import config_inputs, split_batch
from .probe_meta import global_hooks_registered, user_hook_count

__all__ = ["REAL_PROBE_MAX_PARAMS", "dataflow_of", "shape_of"]

#: the largest model (in parameters) that is probed on itself with inputs built from it when it
#: cannot run on meta (no batch given): one forward of two short inputs, a fraction of a second
#: on a CPU at this size; a larger one takes the names-fallback (pass ``batch=`` to probe it)
REAL_PROBE_MAX_PARAMS = 200_000_000


def dataflow_of(model: nn.Module, batch: Any, config_input: bool
                ) -> tuple[Graph | None, str, list[str]]:
    """``(graph, method, notes)``: the dataflow of ``model`` seen by the first forward that runs
    (see the module docs; ``config_input``: build inputs from the model when no ``batch``), or
    ``(None, "names-fallback", notes)`` with the reason. A batch the model does not accept is
    an error naming it, the model unchanged."""
    notes: list[str] = []
    candidates = [split_batch(batch)] if batch is not None else \
        (config_inputs(model) if config_input else [])
    errors = []
    hooks = user_hook_count(model)
    for inputs in candidates:
        for with_hooks in (False, True) if hooks else (False,):
            try:
                g = probe(model, inputs, on_meta=True, user_hooks=with_hooks)
            except InitlabError:
                raise
            except Exception as exc:  # the forward does not run on meta with this input
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            if hooks:
                notes.append(f"the meta probe ran {'with' if with_hooks else 'without'} the "
                             f"model's {hooks} forward/backward hook(s) not torch's own" +
                             (" (it failed without them)" if with_hooks else
                              " (they see real forwards only)"))
            return g, "probe", notes + g.notes
    is_meta = any(p.is_meta for p in model.parameters())
    if batch is not None and not is_meta:
        try:
            g = _real(model, split_batch(batch))
            notes.append("the model did not run on meta (" + errors[-1] + "); probed with the "
                         "real batch instead")
            return g, "probe-real", notes + g.notes
        except Exception as exc:
            raise fail("batch", f"must fit the model: the forward pass raised "
                       f"{type(exc).__name__}: {str(exc)[:300]}", shape_of(batch),
                       "pass a batch the model accepts (a tensor, a tuple of positional "
                       "inputs or a dict of keyword inputs); the model is unchanged.") \
                from exc
    if batch is None and not is_meta and candidates and _plain(model) and \
            sum(p.numel() for p in model.parameters()) <= REAL_PROBE_MAX_PARAMS:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        for inputs in candidates:     # the model itself, on the inputs built from it
            try:
                g = _real(model, _on(inputs, device))
            except Exception as exc:  # noqa: BLE001  (this input does not fit either)
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            notes.append("the model did not run on meta (" + errors[0] + "); probed the "
                         "model itself on an input built from it (its buffers restored)")
            return g, "probe-real", notes + g.notes
    if batch is not None and errors:
        raise fail("batch", f"must fit the model: the forward pass raised {errors[-1]}",
                   shape_of(batch), "pass a batch the model accepts (a tensor, a tuple of "
                   "positional inputs or a dict of keyword inputs); the model is unchanged.")
    # the first input is the fullest one built from the config (text and pixels): its error
    # says what the model needs; the later, simpler inputs mostly fail for wanting it
    why = (errors[0] + (f"; {len(errors) - 1} other input(s) failed too" if len(errors) > 1
                        else "")) if errors else "no input could be built from the model"
    notes.append("dataflow not seen (" + why + "): names-fallback used (layers in registration "
                 "order, residual closers by RESIDUAL_NAMES); pass batch= for a probe")
    return None, "names-fallback", notes


def _plain(model: nn.Module) -> bool:
    """Whether a forward of ``model`` initlab starts on its own (no batch given) has no effect
    beyond its buffers: no module carries forward hooks (the user's own, FSDP's, which swap
    sharded and unsharded parameters, accelerate's), none is registered for every module
    (``register_module_forward_hook``), and every parameter is a plain tensor (not
    a DTensor or another subclass)."""
    if global_hooks_registered():
        return False          # torch.nn.modules.module.register_module_forward_hook & co.
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return False      # (hooks registered with_kwargs are in these dicts too)
    return all(type(p.data) is torch.Tensor for p in model.parameters())


def _real(model: nn.Module, inputs: tuple[tuple, dict]) -> Graph:
    """The probe on the model itself; the global random state (a forward may draw) as it was:
    the probe runs the forward inside :func:`~initlab.modelinit.stochastic.stochastic_off`,
    which keeps it."""
    return probe(model, inputs, on_meta=False)


def _on(inputs: tuple[tuple, dict], device: torch.device) -> tuple[tuple, dict]:
    """Built inputs (meta tensors, all zeros as built) as zeros on ``device``."""
    def real(v: Any) -> Any:
        if isinstance(v, torch.Tensor) and v.is_meta:
            return torch.zeros(v.shape, dtype=v.dtype, device=device)
        return v

    args, kwargs = inputs
    return tuple(real(a) for a in args), {k: real(v) for k, v in kwargs.items()}


def shape_of(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return tuple(batch.shape)
    if isinstance(batch, Mapping):
        return {k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                for k, v in batch.items()}
    return type(batch).__name__
