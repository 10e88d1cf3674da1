"""Conformance with torch.nn.init as its own tests define it (pytorch test/nn/test_init.py).

Each test names the peer case it mirrors. The peer suite itself, adapted to call initlab.torch,
was run as docs/frameworks.md records; its code is not part of initlab. The drop-ins' statistics
are checked in tests/test_torch_dropins.py; this module covers what the peer suite found missing.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import initlab.torch as it

ALIASES = ("normal", "uniform", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
           "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse")
ARGS = {"constant": (0.5,), "sparse": (0.5,)}
SHAPES = {"dirac": (4, 4, 3, 3)}


def test_deprecation():
    """Mirrors TestNNInit.test_deprecation: `init.normal(x)` warns FutureWarning 'deprecated'."""
    with pytest.warns(FutureWarning, match="deprecated"):
        it.normal(torch.randn(3, 3))


@pytest.mark.parametrize("old", ALIASES)
def test_every_deprecated_alias_warns_like_torch_and_forwards(old):
    """torch.nn.init's 11 non-underscore aliases: the same FutureWarning text as torch's, the
    underscore function's signature, and the same tensor for the same generator."""
    new = getattr(it, old + "_")
    alias = getattr(it, old)
    assert inspect.signature(alias) == inspect.signature(new)
    assert alias.__name__ == old
    shape = SHAPES.get(old, (6, 5))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.nn.init.normal(torch.empty(2, 2)) if old == "normal" else None
        theirs = [str(w.message) for w in seen]
    with pytest.warns(FutureWarning) as record:
        kwargs = {"generator": torch.Generator().manual_seed(0)} if "generator" in \
            inspect.signature(new).parameters else {}
        a = alias(torch.empty(shape), *ARGS.get(old, ()), **kwargs)
    assert str(record[0].message) == (f"`nn.init.{old}` is now deprecated in favor of "
                                      f"`nn.init.{old}_`.")
    assert record[0].filename == __file__  # stacklevel points at the caller, as torch's
    if old == "normal":
        assert theirs == [str(record[0].message)]  # word for word torch's own warning
    kwargs = {"generator": torch.Generator().manual_seed(0)} if kwargs else {}
    b = new(torch.empty(shape), *ARGS.get(old, ()), **kwargs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_zero_element_warning():
    """Mirrors test_kaiming_{uniform,normal}_warning_on_0element_tensor."""
    for fn in (it.kaiming_uniform_, it.kaiming_normal_):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            fn(torch.empty(0, 1))


@pytest.mark.parametrize(("fn", "dims"), [(it.eye_, (1, 3)), (it.dirac_, (1, 2, 6)),
                                          (it.xavier_uniform_, (0, 1)), (it.kaiming_normal_,
                                                                         (0, 1))])
def test_shape_errors_are_value_errors(fn, dims):
    """Mirrors test_eye_only_works_on_2d_inputs, test_dirac_only_works_on_3_4_5d_inputs and
    test_{xavier,kaiming}_*_errors_on_inputs_smaller_than_2d: ValueError, as torch raises."""
    for d in dims:
        with pytest.raises(ValueError):
            fn(torch.zeros((2,) * d))
