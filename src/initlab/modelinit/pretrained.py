"""Load pre-trained tensors into a model: safetensors, ``.pt`` (weights only) or ``.npz``.

All or nothing: every selected tensor is checked (name, shape, dtype) before anything is
written; if any check fails the model is unchanged and the error lists every problem. Nothing in
a checkpoint is ever executed: ``.pt`` files go through ``torch.load(weights_only=True)``,
``.npz`` through ``numpy.load(allow_pickle=False)``.

Key mapping (``mapping=``): a dict or a list of ``(source_glob, target)`` rename rules tried in
order on each checkpoint key, first match wins. ``*`` in the source glob captures any run of
characters (dots included) and each ``*`` in the target is replaced by the captures in order;
a target of ``None`` drops the key. Or a callable ``key -> new key | None``. Keys are compared
after wrappers' prefixes are stripped on both sides (DDP's ``module.``, ``_orig_mod.``).

    load_pretrained(model, "backbone.safetensors", mapping={"encoder.*": "backbone.*",
                                                         "head.*": None}, strict=False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..core.validation import InitlabError, InitlabTypeError, error_message, fail
from ..util.hashing import canonical_param_name
from .hooked import hooked_of, refresh

# ----------------------------------------------------------------------------- reading


def read_checkpoint(source: Any) -> tuple[dict[str, torch.Tensor], str]:
    """``(state_dict of CPU tensors, description)`` from a path or a mapping of tensors."""
    if isinstance(source, Mapping):
        sd = dict(source)
        desc = "state dict"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise fail("path", "must be an existing checkpoint file", str(path),
                       "check the path (.safetensors, .pt/.pth/.bin or .npz).")
        suffix = path.suffix.lower()
        desc = str(path)
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            try:
                sd = load_file(str(path), device="cpu")
            except Exception as exc:  # SafetensorError: empty, truncated, garbage header
                raise _unreadable(path, "a complete safetensors file", exc) from None
        elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
            except Exception as exc:  # pickle with code, corrupt file
                raise fail("path", "must be a weights-only torch checkpoint (tensors in dicts; "
                           f"loading refused: {type(exc).__name__}: {str(exc)[:200]})", str(path),
                           "re-save it with torch.save(model.state_dict(), path) or as "
                           "safetensors; initlab never runs code from a checkpoint.") from None
            sd = _unwrap(obj, str(path))
        elif suffix == ".npz":
            sd = _read_npz(path)
        else:
            raise fail("path", "must end in .safetensors, .pt/.pth/.bin/.ckpt or .npz", str(path),
                       "convert the checkpoint to one of those formats.")
    else:
        raise InitlabTypeError(error_message(
            "source", "must be a path or a state dict (mapping of name -> tensor)",
            type(source).__name__, "pass e.g. 'model.safetensors' or model.state_dict()."))
    out = {}
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v)
        if not isinstance(v, torch.Tensor):
            raise fail(f"checkpoint[{k!r}]", "must be a tensor or array", type(v).__name__,
                       "pass a flat state dict of tensors.")
        out[str(k)] = v
    return out, desc


def _unreadable(path: Path, what: str, exc: BaseException) -> InitlabError:
    detail = f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")
    return fail("path", f"must be {what} (reading it failed: {detail})", str(path),
                "re-save the checkpoint (it may be truncated, empty or another format); the "
                "model is unchanged.")


# dtype kinds a checkpoint array may have: bool, signed/unsigned int, float, complex
_NUMERIC_KINDS = "biufc"


def _read_npz(path: Path) -> dict[str, torch.Tensor]:
    """An ``.npz`` of numeric arrays; no pickle (object arrays are refused), errors name the file."""
    with open(path, "rb") as fh:   # ours to close, whatever np.load raises
        try:
            z = np.load(fh, allow_pickle=False)
        except Exception as exc:  # BadZipFile, a pickle refused, not an array file at all
            raise _unreadable(path, "a complete .npz archive of numeric arrays", exc) from None
        if not isinstance(z, np.lib.npyio.NpzFile):   # a .npy (one array) under an .npz name
            raise fail("path", "must be an .npz archive (name -> array); this file holds a "
                       f"single {type(z).__name__}, as a .npy file does", str(path),
                       "save with np.savez(path, **state_dict), or rename it .npy and load it "
                       "yourself.")
        with z:
            return {k: _npz_tensor(z, k, path) for k in z.files}


def _npz_tensor(z, key: str, path: Path) -> torch.Tensor:
    try:
        arr = np.array(z[key])
    except Exception as exc:  # ValueError (object array: pickle refused), truncated member
        raise _unreadable(path, f"a complete .npz archive of numeric arrays (array {key!r} "
                          "is not readable)", exc) from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise fail("path", f"must hold numeric arrays; array {key!r} has dtype {arr.dtype} "
                   f"({'object' if arr.dtype.kind == 'O' else 'text/bytes'})", str(path),
                   "store only numeric tensors (bool, int, float) in the checkpoint.")
    try:
        return torch.from_numpy(arr)
    except TypeError as exc:  # a numeric dtype torch has no tensor type for
        raise fail("path", f"holds array {key!r} of dtype {arr.dtype}, which torch cannot "
                   f"hold ({exc})", str(path),
                   "cast it to a torch dtype (float32, int64...) before saving.") from None


def _unwrap(obj: Any, where: str) -> dict:
    if isinstance(obj, Mapping):
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and all(isinstance(v, torch.Tensor)
                                                  for v in inner.values()):
                return dict(inner)
    raise fail("path", "must hold a state dict (name -> tensor), possibly under 'state_dict' or "
               "'model'", where, "save model.state_dict().")


# ----------------------------------------------------------------------------- mapping


def _compile_mapping(mapping: Any) -> Callable[[str], str | None]:
    if mapping is None:
        return lambda k: k
    if callable(mapping):
        return _checked_callable(mapping)
    if isinstance(mapping, Mapping):
        items = list(mapping.items())
    elif isinstance(mapping, (list, tuple)):
        items = list(mapping)
    else:
        raise InitlabTypeError(error_message(
            "mapping", "must be None, a dict of rename rules, a list of (source_glob, target) "
            "pairs or a callable key -> new key | None", mapping,
            "pass e.g. mapping={'encoder.*': 'backbone.*', 'head.*': None}."))
    compiled = []
    for item in items:
        try:
            src, dst = item
        except (TypeError, ValueError):
            raise fail("mapping", "must be a dict or a list of (source_glob, target) pairs",
                       item, "pass e.g. {'encoder.*': 'backbone.*'}.") from None
        if not isinstance(src, str) or not (dst is None or isinstance(dst, str)):
            raise InitlabTypeError(error_message(
                "mapping", "rules must map a string glob to a string target or None",
                (src, dst), "pass e.g. {'encoder.*': 'backbone.*', 'head.*': None}."))
        rx = re.compile("^" + "(.*)".join(re.escape(p) for p in str(src).split("*")) + "$")
        compiled.append((src, rx, dst))

    def rename(key: str) -> str | None:
        for src, rx, dst in compiled:
            m = rx.match(key)
            if m is None:
                continue
            if dst is None:
                return None
            groups = iter(m.groups())
            n_star = str(dst).count("*")
            if n_star > len(m.groups()):
                raise fail("mapping", f"target {dst!r} has more '*' than its source {src!r}",
                           dst, "use at most as many '*' in the target as in the source.")
            return "".join(part + (next(groups) if i < n_star else "")
                           for i, part in enumerate(str(dst).split("*")))
        return key

    return rename


def _checked_callable(func: Callable) -> Callable[[str], str | None]:
    def rename(key: str) -> str | None:
        try:
            new = func(key)
        except Exception as exc:
            raise fail("mapping", f"raised {type(exc).__name__}: {exc} for checkpoint key "
                       f"{key!r}", func, "make the callable return a new key (str) or None "
                       "for every key.") from None
        if new is not None and not isinstance(new, str):
            raise InitlabTypeError(error_message(
                "mapping", f"must return a string key or None; for checkpoint key {key!r} it "
                "returned", new, "return the new name as a str, or None to drop the key."))
        return new

    return rename


# ----------------------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: loaded, missing, unexpected, shape-mismatched keys."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    cast: list[tuple[str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": self.loaded, "missing": self.missing,
                "unexpected": self.unexpected,
                "mismatched": [{"key": k, "checkpoint": list(a), "model": list(b)}
                               for k, a, b in self.mismatched],
                "renamed": self.renamed, "dropped": self.dropped,
                "cast": [{"key": k, "from": a, "to": b} for k, a, b in self.cast]}

    def summary(self) -> str:
        return (f"pretrained {self.source}: {len(self.loaded)} loaded, {len(self.missing)} "
                f"missing, {len(self.unexpected)} unexpected, {len(self.mismatched)} mismatched")

    def __str__(self) -> str:
        lines = [self.summary()]
        for title, items in (("missing (left to the plan / unchanged)", self.missing),
                             ("unexpected (ignored)", self.unexpected)):
            if items:
                lines.append(f"  {title}: " + ", ".join(items[:20])
                             + (f" ... (+{len(items) - 20})" if len(items) > 20 else ""))
        for k, a, b in self.mismatched:
            lines.append(f"  shape mismatch {k}: checkpoint {tuple(a)} vs model {tuple(b)}")
        return "\n".join(lines)


@dataclass
class PreparedLoad:
    """A checked load, not yet written: ``commit()`` copies every tensor."""

    pairs: list[tuple[torch.Tensor, torch.Tensor]]
    report: LoadReport
    #: modules with a weight a torch hook computes (:mod:`~initlab.modelinit.hooked`), each
    #: recomputed after the copy; True: loaded by the plain model's key, so a spectral norm's
    #: vectors are fitted to it (they came with the checkpoint otherwise)
    hooked: list[tuple[nn.Module, bool]] = field(default_factory=list)

    @property
    def targets(self) -> list[torch.Tensor]:
        return [t for t, _ in self.pairs]

    @property
    def buffer_ids(self) -> list[int]:
        return [id(t) for t, _ in self.pairs]

    def commit(self) -> None:
        with torch.no_grad():
            for target, value in self.pairs:
                target.copy_(value.to(device=target.device, dtype=target.dtype))
        for mod, refit in self.hooked:       # as the module's next forward computes it
            refresh(mod, refit=refit)


def prepare_load(model: nn.Module, source: Any, *, mapping: Any = None,
                 strict: bool = True) -> PreparedLoad:
    """Read, rename and check a checkpoint against ``model``; raise listing every problem."""
    from .checks import check_model

    check_model(model)
    sd, desc = read_checkpoint(source)
    rename = _compile_mapping(mapping)
    report = LoadReport(desc)
    targets: dict[str, torch.Tensor] = {}
    for k, t in model.state_dict(keep_vars=True).items():
        targets.setdefault(canonical_param_name(k), t)
    # a weight a torch hook reparametrizes (prune, spectral_norm, weight_norm) also loads from
    # the plain model's key: `x.weight` into `x.weight_orig` (a lottery ticket rewound to a
    # saved init), or weight norm's g and v; the hook's buffers (the mask) are then the model's
    plain_of: dict[str, tuple[nn.Module, Any]] = {}   # `x.weight` -> (module, Hooked)
    owned: dict[str, str] = {}                        # `x.weight_orig`, `x.weight_mask` -> it
    hooked = []
    for mname, mod in model.named_modules():
        hooks = set(hooked_of(mod).values())
        if hooks:
            hooked.append(mod)
        for hook in hooks:
            pre = f"{mname}." if mname else ""
            plain = canonical_param_name(pre + hook.name)
            if plain not in targets:
                targets[plain] = getattr(mod, hook.name)   # its shape, dtype and device
                plain_of[plain] = (mod, hook)
                owned.update((canonical_param_name(pre + n), plain)
                             for n in (*hook.stored, *hook.buffers))
    problems: list[str] = []
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen: set[str] = set()
    for key, value in sd.items():
        new = rename(key)
        if new is None:
            report.dropped.append(key)
            continue
        new = canonical_param_name(new)
        if new != key:
            report.renamed[key] = new
        if new not in targets:
            report.unexpected.append(new)
            continue
        if new in seen:
            problems.append(f"`{new}` is given twice (after renaming)")
            continue
        seen.add(new)
        tgt = targets[new]
        if tuple(value.shape) != tuple(tgt.shape):
            report.mismatched.append((new, tuple(value.shape), tuple(tgt.shape)))
            problems.append(f"`{new}`: checkpoint shape {tuple(value.shape)} != model shape "
                            f"{tuple(tgt.shape)}")
            continue
        if value.dtype != tgt.dtype:
            if value.is_floating_point() and tgt.is_floating_point():
                report.cast.append((new, str(value.dtype), str(tgt.dtype)))
            else:
                problems.append(f"`{new}`: checkpoint dtype {value.dtype} cannot be loaded into "
                                f"{tgt.dtype}")
                continue
        if tgt.device.type == "meta":
            problems.append(f"`{new}` is on the meta device; materialize the model first")
            continue
        if new in plain_of:
            mod, hook = plain_of[new]
            pairs.extend(zip((getattr(mod, n) for n in hook.stored),
                             hook.right_inverse(value)))
        else:
            pairs.append((tgt, value))
        report.loaded.append(new)
    loaded_ids = {id(t) for t, _ in pairs}   # a tied tensor loaded under another name
    given = {owned[k] for k in seen if k in owned}     # a hooked weight by its stored names
    report.missing = [k for k, t in targets.items() if k not in seen and id(t) not in loaded_ids
                      and owned.get(k) not in seen and k not in given]
    if strict and (report.missing or report.unexpected):
        if report.missing:
            problems.append("missing from the checkpoint: " + ", ".join(report.missing))
        if report.unexpected:
            problems.append("not in the model: " + ", ".join(report.unexpected))
    if problems:
        raise InitlabError(
            f"`checkpoint` ({desc}) cannot be loaded; the model is unchanged. "
            f"{len(problems)} problem(s):\n  - " + "\n  - ".join(problems)
            + "\nFix: rename keys with mapping={'old.*': 'new.*'}, drop keys with "
            "{'head.*': None}, or pass strict=False to load only what matches "
            "(shape mismatches are always errors).")
    by_plain = {id(mod) for name, (mod, _) in plain_of.items() if name in seen}
    return PreparedLoad(pairs, report, [(m, id(m) in by_plain) for m in hooked])


def load_pretrained(model: nn.Module, path_or_state_dict: Any, *, mapping: Any = None,
                    strict: bool = True) -> LoadReport:
    """Load tensors from a checkpoint into ``model``; return a :class:`LoadReport`.

    ``path_or_state_dict``: a ``.safetensors`` file (``safetensors.torch.load_file``), a ``.pt``
    / ``.pth`` / ``.bin`` file (``torch.load(weights_only=True)``: no code is executed), an
    ``.npz`` (``allow_pickle=False``) or a mapping of name -> tensor/array. ``mapping``: rename
    rules (module docs). ``strict=True``: every model key must be provided and every checkpoint
    key used; ``strict=False`` loads what matches and reports the rest. Shape mismatches and
    impossible dtype conversions are always errors. Floating dtypes are cast to the model's (the
    report lists the casts). All or nothing: on any error, the model is unchanged.
    """
    from .write import _restore, _snapshot

    prepared = prepare_load(model, path_or_state_dict, mapping=mapping, strict=strict)
    snap = _snapshot(prepared.targets)
    try:
        prepared.commit()
    except BaseException:
        _restore(snap)
        raise
    return prepared.report
