"""Every error of the core, pinned: each names the parameter, the rule, the value and the fix."""

from __future__ import annotations

import math

import numpy as np
import pytest

import initlab
from initlab import InitlabError, InitlabTypeError


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: initlab.normal(std=-1.0), r"`std` must be >= 0.0 \(a standard deviation cannot be negative\); got -1.0. Fix:"),
        (lambda: initlab.normal(std=float("nan")), r"`std` must be a finite number.*got nan"),
        (lambda: initlab.glorot_uniform(gain=-2), r"`gain` must be >= 0.0 \(a gain multiplies the standard deviation\).*got -2.0"),
        (lambda: initlab.glorot_normal(gain=float("nan")), r"`gain` must be a finite number"),
        (lambda: initlab.variance_scaling(scale=-1), r"`scale` must be > 0.0.*got -1.0"),
        (lambda: initlab.variance_scaling(mode="fan_sum"), r"`mode` must be one of 'fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg'; got 'fan_sum'"),
        (lambda: initlab.variance_scaling(distribution="cauchy"), r"`distribution` must be one of 'normal', 'truncated_normal', 'uniform'; got 'cauchy'"),
        (lambda: initlab.he_normal(nonlinearity="swish"), r"`nonlinearity` must be one of .*got 'swish'.*initlab.gain"),
        (lambda: initlab.he_normal(mode="fan_avg"), r"`mode` must be one of 'fan_in', 'fan_out'; got 'fan_avg'"),
        (lambda: initlab.truncated_normal(a=2.0, b=-2.0), r"`a` must be <= `b` \(=-2.0\).*got 2.0. Fix: pass a <= b"),
        (lambda: initlab.truncated_normal(a=math.inf, b=math.inf), r"`a` must be finite when a == b.*got inf"),
        (lambda: initlab.truncated_normal(b=math.nan), r"`b` must be a number or \+-inf, not NaN.*got nan. Fix: pass a real bound, or -math.inf"),
        (lambda: initlab.uniform(low=1.0, high=0.0), r"`low` must be <= `high` \(=0.0\).*got 1.0"),
        (lambda: initlab.sparse(sparsity=1.5), r"`sparsity` must be <= 1.0 \(the fraction of each column set to zero; 1 zeros it all, as torch\); got 1.5"),
        (lambda: initlab.sparse(sparsity=-0.1), r"`sparsity` must be >= 0.0"),
        (lambda: initlab.martens_sparse(k=0), r"`k` must be >= 1"),
        (lambda: initlab.dirac(groups=0), r"`groups` must be >= 1"),
        (lambda: initlab.orthogonal(method="lu"), r"`method` must be one of 'qr', 'svd', 'householder'; got 'lu'"),
    ],
)
def test_parameter_errors(build, match):
    with pytest.raises(InitlabError, match=match):
        build()


def test_type_errors():
    with pytest.raises(InitlabTypeError, match=r"`std` must be a real number; got 'big'"):
        initlab.normal(std="big")
    with pytest.raises(InitlabTypeError, match=r"`gain` must be a real number; got True"):
        initlab.glorot_uniform(gain=True)


def test_unknown_name_lists_valid_and_suggests():
    with pytest.raises(InitlabError, match=r"`name` must be a registered initializer; got 'glorot_unifrom'.*glorot_uniform.*Did you mean 'glorot_uniform'"):
        initlab.get("glorot_unifrom")


def test_unknown_param_lists_valid():
    with pytest.raises(InitlabTypeError, match=r"`he_normal` got unknown parameter\(s\) 'gain'; valid parameters: a, mode, nonlinearity"):
        initlab.get("he_normal", gain=2.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: initlab.identity().sample((3, 3, 3), seed=0), r"`shape` must be 2-D for `identity`; got \(3, 3, 3\)"),
        (lambda: initlab.dirac().sample((3, 3), seed=0), r"`shape` must be 3-, 4- or 5-D"),
        (lambda: initlab.dirac(groups=2).sample((3, 3, 3), seed=0), r"`groups` must divide the number of output channels \(=3\); got 2"),
        (lambda: initlab.delta_orthogonal().sample((4, 8, 3, 3), seed=0), r"in_channels <= out_channels.*in=8, out=4"),
        (lambda: initlab.sparse().sample((3, 3, 3), seed=0), r"`shape` must be 2-D for `sparse`"),
        (lambda: initlab.martens_sparse(k=20).sample((5, 10), seed=0), r"`k` must be <= fan_in \(=10\)"),
        (lambda: initlab.orthogonal().sample((5,), seed=0), r"`shape` must have at least 2 dimensions for `orthogonal`"),
        (lambda: initlab.normal().sample((3, -1), seed=0), r"`shape` must be a tuple of non-negative integers"),
        (lambda: initlab.normal().sample((3, 3), seed=0, layout="tf"), r"`layout` must be one of 'torch', 'torch_transposed', 'jax'"),
        (lambda: initlab.normal().sample((3, 3), seed=0, role="gamma"), r"`role` must be one of 'weight', 'bias'"),
        (lambda: initlab.normal().sample((3, 3), seed=-1), r"`seed` must be >= 0"),
        (lambda: initlab.normal().sample((3, 3), seed=0, dtype="int32"), r"`dtype` must be float32 or float64"),
        (lambda: initlab.normal().sample((3, 3), seed=0, dtype="float16"), r"`dtype` must be float32 or float64.*initlab.torch"),
    ],
)
def test_sample_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_seed_must_be_explicit_and_typed():
    with pytest.raises(TypeError):
        initlab.normal().sample((3, 3))  # no seed: keyword-only and required
    with pytest.raises(InitlabTypeError, match=r"`seed` must be a non-negative int or a numpy.random.Generator; got 1.5"):
        initlab.normal().sample((3, 3), seed=1.5)


def test_zero_element_shapes_warn_and_return():
    with pytest.warns(UserWarning, match="zero-element"):
        x = initlab.he_normal().sample((0, 5), seed=0)
    assert x.shape == (0, 5)


def test_from_dict_refuses_other_stream():
    d = initlab.he_normal().to_dict()
    d["stream"] = "numpy-pcg64-f64-v0"
    with pytest.raises(InitlabError, match=r"`d\['stream'\]` must be 'numpy-pcg64-f64-v2'"):
        initlab.from_dict(d)
    del d["stream"]
    assert initlab.from_dict(d) == initlab.he_normal()
    with pytest.raises(InitlabError, match=r"`d` must be a dict with at least a 'name' key"):
        initlab.from_dict({"params": {}})


def test_numpy_generator_seed_is_consumed():
    rng = np.random.default_rng(0)
    a = initlab.normal().sample((4,), seed=rng)
    b = initlab.normal().sample((4,), seed=rng)
    assert not np.array_equal(a, b)
