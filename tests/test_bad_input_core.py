"""Bad input to the core, the NumPy path and initlab.torch (issue #13, causes 1-4): a table.

Each case builds its own target (a tensor, or nothing for the NumPy path), runs the call and
asserts: the exception type (InitlabError / InitlabTypeError, never a raw Python, NumPy or torch
error), that the message names the parameter or the value (``fragment``), and that the target is
byte-for-byte unchanged. A second table holds inputs at the edge that must *work* (zero-size
shapes, 0-d truncated normal, wide uniforms computed in float64).

The gain cases of cause 3 (calculate_gain("leaky_relu", nan / inf), gain(np.log), gain(math.tanh))
go through the public functions, which call the validators of core/validation.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import initlab
import initlab.torch as it
from initlab.core.validation import (
    InitlabError,
    InitlabTypeError,
    check_finite_param,
    check_numeric_function,
    check_scalar,
)

HUGE = 10**5000  # Python refuses to print it (digit limit): messages must describe it instead


def _inference(shape=(4, 3)):
    with torch.inference_mode():
        return torch.zeros(shape)


def _t(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


def _expanded():
    return torch.zeros(3).expand(4, 3)


# (id, target factory or None, call(target), exception type, fragment of the message)
CASES = [
    # cause 2: overflow on the NumPy path / in the catalog -> InitlabError, never OverflowError
    ("normal-std-10**400", None, lambda _: initlab.normal(std=10**400), InitlabError, "`std`"),
    ("normal-mean-10**400", None, lambda _: initlab.normal(mean=-(10**400)), InitlabError,
     "`mean`"),
    ("he_normal-a-1e200", None, lambda _: initlab.he_normal(a=1e200), InitlabError, "`a`"),
    ("glorot-gain-1e200", None, lambda _: initlab.glorot_normal(gain=1e200), InitlabError,
     "`gain`"),
    ("fans-10**400", None, lambda _: initlab.he_normal().resolve((2, 2), fans=(10**400, 1)),
     InitlabError, "fan_in"),
    ("shape-dim-10**400", None, lambda _: initlab.he_normal().resolve((10**400, 2)),
     InitlabError, "`shape`"),
    ("uniform-1e308-in-float32", None,
     lambda _: initlab.uniform(-1e308, 1e308).sample((3,), seed=0), InitlabError, "float32"),
    ("variance-underflow", None,
     lambda _: initlab.variance_scaling(scale=1e-320).resolve((4, 10**6)), InitlabError,
     "`scale`"),
    ("normal-1e39-in-float32", None, lambda _: initlab.normal(std=1e38).sample((3,), seed=0),
     InitlabError, "float32"),
    # seeds (the one validator): huge, negative, float, bool
    ("seed-10**5000", None, lambda _: initlab.normal().sample((2,), seed=HUGE), InitlabError,
     "`seed`"),
    ("seed-negative", None, lambda _: initlab.normal().sample((2,), seed=-1), InitlabError,
     "`seed`"),
    ("seed-float", None, lambda _: initlab.normal().sample((2,), seed=1.0), InitlabTypeError,
     "`seed`"),
    ("seed-bool", None, lambda _: initlab.normal().sample((2,), seed=True), InitlabTypeError,
     "`seed`"),
    # cause 1: a fan-based formula on a zero-element shape, asked for directly
    ("resolve-zero-fan", None, lambda _: initlab.he_normal().resolve((3, 0)), InitlabError,
     "`shape`"),
    # cause 4: initlab.torch
    ("inference-normal_", _inference, lambda t: it.normal_(t), InitlabError, "inference"),
    ("inference-orthogonal_", _inference, lambda t: it.orthogonal_(t), InitlabError,
     "inference"),
    ("inference-kaiming_uniform_", _inference, lambda t: it.kaiming_uniform_(t), InitlabError,
     "inference"),
    ("inference-zeros_", _inference, lambda t: it.zeros_(t), InitlabError, "inference"),
    ("expanded-normal_", _expanded, lambda t: it.normal_(t), InitlabError, "stride (0, 1)"),
    ("expanded-xavier_uniform_", _expanded, lambda t: it.xavier_uniform_(t), InitlabError,
     "share memory"),
    ("expanded-constant_", _expanded, lambda t: it.constant_(t, 2.0), InitlabError,
     "share memory"),
    ("constant-int8-1000", lambda: _t(3, dtype=torch.int8), lambda t: it.constant_(t, 1000),
     InitlabError, "1000"),
    ("constant-uint8--1", lambda: _t(3, dtype=torch.uint8), lambda t: it.constant_(t, -1),
     InitlabError, "-1"),
    ("constant-int64-fraction", lambda: _t(3, dtype=torch.int64), lambda t: it.constant_(t, 2.5),
     InitlabError, "2.5"),
    ("constant-fp16-1e6", lambda: _t(3, dtype=torch.float16), lambda t: it.constant_(t, 1e6),
     InitlabError, "65504"),
    ("constant-bf16-1e39", lambda: _t(3, dtype=torch.bfloat16), lambda t: it.constant_(t, 1e39),
     InitlabError, "bfloat16"),
    ("normal-fp16-std-1e6", lambda: _t(3, dtype=torch.float16),
     lambda t: it.normal_(t, std=1e6), InitlabError, "65504"),
    ("uniform-fp16-1e5", lambda: _t(3, dtype=torch.float16),
     lambda t: it.uniform_(t, -1e5, 1e5), InitlabError, "float16"),
    ("normal-fp32-std-1e38", lambda: _t(3), lambda t: it.normal_(t, std=1e38), InitlabError,
     "float32"),
    ("eye-int8-gain-300", lambda: _t(3, 3, dtype=torch.int8),
     lambda t: it.init_(t, "identity", gain=300.0), InitlabError, "300"),
    ("normal-std-10**400-torch", lambda: _t(3), lambda t: it.normal_(t, std=10**400),
     InitlabError, "`std`"),
    ("kaiming-a-1e200-torch", lambda: _t(3, 3), lambda t: it.kaiming_normal_(t, a=1e200),
     InitlabError, "`a`"),
    ("init_-fans-10**400", lambda: _t(3, 3),
     lambda t: it.init_(t, "lecun_normal", fans=(10**400, 3)), InitlabError, "fan_in"),
    # validators for core/gains.py (cause 3)
    ("calculate_gain-nan", None, lambda _: initlab.calculate_gain("leaky_relu", math.nan),
     InitlabError, "`param`"),
    ("calculate_gain-inf", None, lambda _: initlab.calculate_gain("leaky_relu", math.inf),
     InitlabError, "`param`"),
    ("gain-np.log", None, lambda _: initlab.gain(np.log), InitlabError, "log"),
    ("gain-math.tanh", None, lambda _: initlab.gain(math.tanh), InitlabTypeError, "vectorized"),
    ("slope-nan", None, lambda _: check_finite_param(math.nan, "param", what="the slope"),
     InitlabError, "`param`"),
    ("slope-inf", None, lambda _: check_finite_param(math.inf, "param", what="the slope"),
     InitlabError, "`param`"),
    ("slope-str", None, lambda _: check_finite_param("0.2", "param", what="the slope"),
     InitlabTypeError, "`param`"),
    ("activation-np.log", None, lambda _: check_numeric_function(np.log), InitlabError, "log"),
    ("activation-math.tanh", None, lambda _: check_numeric_function(math.tanh), InitlabTypeError,
     "tanh"),
    ("activation-not-callable", None, lambda _: check_numeric_function(3), InitlabTypeError,
     "`activation`"),
    ("scalar-10**5000", None, lambda _: check_scalar(HUGE, "x"), InitlabError, "`x`"),
]


@pytest.mark.parametrize("make, call, exc, fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(make, call, exc, fragment):
    target = make() if make is not None else None
    before = None
    if target is not None:
        before = target.clone()  # clone keeps the values; compare bytes, not ==, (nan-safe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow warnings on the way
        with pytest.raises(exc) as info:
            call(target)
    assert type(info.value) in (InitlabError, InitlabTypeError)
    msg = str(info.value)
    assert fragment in msg, msg
    assert len(msg) < 1000  # nothing printed digit by digit
    if target is not None:
        assert target.dtype == before.dtype and target.shape == before.shape
        assert _bytes(target) == _bytes(before)


def _bytes(t: torch.Tensor) -> bytes:
    flat = t.contiguous().reshape(-1)
    if flat.dtype in (torch.bfloat16, torch.float16):
        flat = flat.view(torch.int16)
    return flat.numpy().tobytes()


FAN_BASED = [n for n in initlab.names() if initlab.get(n).needs_fans]


@pytest.mark.parametrize("shape", [(3, 0), (0, 0), (2, 0, 3)])
@pytest.mark.parametrize("name", FAN_BASED)
def test_zero_size_shapes_are_an_empty_no_op_for_every_fan_based_name(name, shape):
    with pytest.warns(UserWarning, match="zero-element"):
        x = initlab.get(name).sample(shape, seed=0)
    assert x.shape == shape and x.size == 0 and x.dtype == np.float32
    with pytest.warns(UserWarning, match="zero-element"):
        w = it.init_(torch.empty(shape), name)
    assert tuple(w.shape) == shape


def test_zero_size_shapes_still_validate_their_arguments():
    with pytest.raises(InitlabError, match="`seed`"):
        initlab.he_normal().sample((3, 0), seed=-1)
    with pytest.raises(InitlabError, match="`layout`"):
        initlab.he_normal().sample((3, 0), seed=0, layout="tf")


def test_zero_dimensional_draws_work():
    for init in (initlab.truncated_normal(), initlab.normal(), initlab.uniform()):
        x = init.sample((), seed=0)
        assert x.shape == () and np.isfinite(x)
    x = initlab.truncated_normal(a=-0.5, b=0.5).sample((), seed=1, dtype="float64")
    assert -0.5 <= float(x) <= 0.5


def test_uniform_bounds_whose_width_overflows_the_working_dtype():
    # float32: -3e38..3e38 fits float32 but 6e38 does not: drawn in float64 and cast
    w = it.uniform_(torch.empty(200_000), -3e38, 3e38, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(w).all() and w.min() >= -3e38 and w.max() <= 3e38
    # mean 0, std 6e38 / sqrt(12) = 1.73e38: 6 standard errors of the mean = 2.3e36
    assert abs(w.double().mean().item()) < 6 * 1.74e38 / math.sqrt(w.numel())
    # float64: 2e308 overflows float64 itself: halved bounds, doubled
    d = it.uniform_(torch.empty(1000, dtype=torch.float64), -1e308, 1e308)
    assert torch.isfinite(d).all() and d.abs().max() <= 1e308
    x = initlab.uniform(-1e308, 1e308).sample((1000,), seed=0, dtype="float64")
    assert np.isfinite(x).all() and np.abs(x).max() <= 1e308 and (x / 1e300).std() > 1e7


def test_ordinary_uniform_stays_bit_identical_to_torch():
    # the float64 fallback only applies when high - low overflows
    ours = it.uniform_(torch.empty(50, 40), -0.3, 0.7, generator=torch.Generator().manual_seed(2))
    theirs = torch.nn.init.uniform_(torch.empty(50, 40), -0.3, 0.7,
                                    generator=torch.Generator().manual_seed(2))
    assert torch.equal(ours, theirs)


def test_inference_tensors_work_inside_inference_mode():
    with torch.inference_mode():
        t = torch.zeros(4, 3)
        it.normal_(t, generator=torch.Generator().manual_seed(0))
    assert t.abs().sum() > 0


def test_truncated_normal_with_far_bounds_fits_float16():
    # [a, b] = [-1e6, 1e6] is beyond float16, but the draw stays within 9 std of the mean
    w = it.trunc_normal_(torch.empty(1000, dtype=torch.float16), a=-1e6, b=1e6)
    assert torch.isfinite(w).all()
