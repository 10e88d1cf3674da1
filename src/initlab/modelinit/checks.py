"""Argument checks shared by apply, materialize, auto and lsuv (each names the argument)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..core.seeding import check_seed as _core_check_seed
from ..core.validation import InitlabTypeError, error_message, fail


def check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message(
            "model", "must be a torch.nn.Module", type(model).__name__,
            "pass the model itself (e.g. nn.Sequential(...)), not its parameters or state_dict."))
    return model


def check_seed(seed: Any) -> int:
    """The one seed validator (:func:`initlab.core.seeding.check_seed`)."""
    return _core_check_seed(seed, "seed")


def check_not_meta(model: nn.Module, what: str = "apply") -> None:
    meta = [n for n, p in model.named_parameters() if p.is_meta]
    if meta:
        raise fail("model", f"has parameters on the meta device ({len(meta)}, e.g. "
                   f"`{meta[0]}`): they hold no storage, so {what} cannot write them",
                   type(model).__name__,
                   "allocate and initialize in one step with initlab.materialize(model, plan, "
                   "device='cpu', seed=0).")


def check_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise fail("device", f"must be a torch device ({exc})", device,
                   "pass e.g. device='cpu' or device='cuda:0'.") from None
    if dev.type == "meta":
        raise fail("device", "must be a device with storage, not meta", device,
                   "pass e.g. device='cpu'.")
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as exc:
        raise fail("device", f"is not usable here ({str(exc)[:120]})", device,
                   "pass a device this machine has, e.g. device='cpu'.") from None
    return dev
