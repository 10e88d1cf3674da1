"""Distribution kinds: moments and bounds on the types, one sampler table per backend."""

from __future__ import annotations

import ast
import importlib
import math
from pathlib import Path

import numpy as np
import pytest

import initlab
from initlab.backends import numpy_backend
from initlab.core import distributions as D

BACKENDS_DIR = Path(initlab.__file__).parent / "backends"


def _all_subclasses(cls):
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_kinds_lists_every_distribution_type():
    defined = {c for c in _all_subclasses(D.Distribution) if c.__module__ == D.__name__}
    # a shared base (RowDistribution) names no kind of its own and is no kind: every class
    # that names none must be a base of listed kinds
    bases = {c for c in defined if "kind" not in vars(c)}
    for b in bases:
        assert any(issubclass(k, b) for k in D.KINDS), b
    assert defined - bases == set(D.KINDS)
    assert len({k.kind for k in D.KINDS}) == len(D.KINDS)  # kind names are unique


def _backends_with_tables() -> list[str]:
    """Every module under initlab/backends/ that defines (or re-exports) a module-level SAMPLERS
    table (read with ast, so a backend whose framework is not installed is still found)."""
    found = []
    for path in sorted(BACKENDS_DIR.glob("*_backend.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            imported = isinstance(node, ast.ImportFrom) and \
                any((a.asname or a.name) == "SAMPLERS" for a in node.names)
            if imported or any(isinstance(t, ast.Name) and t.id == "SAMPLERS" for t in targets):
                found.append(path.stem)
    return found


def test_numpy_and_torch_backends_have_a_sampler_table():
    # jax_backend (helper C's) is covered by the next test as soon as it defines SAMPLERS
    assert {"numpy_backend", "torch_backend"} <= set(_backends_with_tables())


@pytest.mark.parametrize("backend", _backends_with_tables())
def test_every_kind_is_covered_by_every_backend(backend):
    if backend == "jax_backend":
        pytest.importorskip("jax", reason="jax is not installed: its backend cannot be imported")
    mod = importlib.import_module(f"initlab.backends.{backend}")
    assert D.missing_kinds(mod.SAMPLERS) == []
    assert set(mod.SAMPLERS) == set(D.KINDS)


# (distribution, torch-layout shape, kurtosis bound for the std's sampling error; None when the
# tensor's moments are exact for every draw; "rms" when the root mean square about the expected
# mean is exact and only the elements' mean varies: orthogonal kinds)
CASES = [
    (D.Constant(0.7), (300, 200), None),
    (D.Normal(0.3, 2.0), (300, 200), 3.0),
    (D.Uniform(-1.0, 3.0), (300, 200), 1.8),
    (D.TruncatedNormal(0.5, 1.0, -1.0, 2.5), (300, 200), 3.0),
    (D.TruncatedNormal(0.0, 0.0, -1.0, 1.0), (10, 10), None),
    (D.Orthogonal(1.5), (300, 200), "rms"),      # sum of squares = min(rows, cols): exact
    (D.Orthogonal(0.5, "householder"), (40, 6, 3), "rms"),
    (D.Eye(2.0), (30, 50), None),
    (D.Dirac(2, 1.5), (8, 6, 3, 3), None),
    (D.DeltaOrthogonal(1.3), (8, 5, 3, 3), "rms"),
    (D.Sparse(0.75, 0.5), (400, 150), 3.0 / 0.25),
    (D.MartensSparse(10, 2.0), (300, 200), 3.0 * 200 / 10),
]


@pytest.mark.parametrize("dist, shape, kurtosis", CASES, ids=lambda c: getattr(c, "kind", None))
def test_moments_match_the_numpy_draw(dist, shape, kurtosis):
    x = numpy_backend.draw(dist, shape, numpy_backend.make_rng(0), np.float64)
    mean, std = dist.moments(shape)
    n = x.size
    if kurtosis in (None, "rms"):
        # exact for every draw: only rounding error (the mean too unless "rms", where the
        # elements' mean has standard error std / sqrt(n) by the sign symmetry of Haar matrices)
        tol = 1e-12 if kurtosis is None else 6 * std / math.sqrt(n)
        assert float(np.mean(x)) == pytest.approx(mean, abs=tol)
        assert float(np.sqrt(np.mean((x - mean) ** 2))) == pytest.approx(std, rel=1e-9, abs=1e-12)
    else:
        # 6 standard errors: se(mean) = std / sqrt(n), se(s)/s ~ sqrt((kurtosis - 1) / (4 n))
        assert abs(float(np.mean(x)) - mean) < 6 * std / math.sqrt(n)
        s = float(np.sqrt(np.mean((x - mean) ** 2)))
        assert abs(s / std - 1) < 6 * math.sqrt((kurtosis - 1) / (4 * n))
    assert dist.expected_mean(shape) == mean and dist.expected_std(shape) == std
    assert dist.expected_var(shape) == pytest.approx(std**2)


@pytest.mark.parametrize("dist, shape, kurtosis", CASES, ids=lambda c: getattr(c, "kind", None))
def test_draws_stay_within_bounds_and_extent(dist, shape, kurtosis):
    x = numpy_backend.draw(dist, shape, numpy_backend.make_rng(1), np.float32)
    lim = dist.bounds()
    if lim is not None:
        assert lim[0] <= x.min() and x.max() <= lim[1]
    assert np.abs(x).max() <= dist.extent()


def test_structured_moments_need_a_shape_and_elementwise_do_not():
    assert D.Normal(0, 1).moments() == (0, 1)
    assert D.Orthogonal(1.0).moments() is None
    assert D.Orthogonal(1.0).moments((5,)) is None
    assert D.Normal(0, 1).bounds() is None and D.Uniform(-1, 2).bounds() == (-1, 2)


def test_moments_do_not_overflow_for_huge_uniform_bounds():
    u = D.Uniform(-1e308, 1e308)
    assert u.mean == 0.0 and math.isfinite(u.std) and u.std == pytest.approx(1e308 / 3**0.5)
    assert u.extent() == 1e308


def test_is_elementwise_and_iid_agree():
    for kind in D.KINDS:
        assert isinstance(kind.is_elementwise, bool)
    assert D.Normal(0, 1).iid and not D.Orthogonal().iid
