"""Bad input to the theory calculators (issue #13, cause 8): impossible variances, second
moments and search bounds are refused with an error naming the parameter; the input arrays are
unchanged. One row per case: (id, call, exception type, texts the message must contain)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.core.validation import InitlabError, InitlabTypeError
from initlab.theory import (
    IidInputs,
    chi1,
    correlation_map,
    critical_line,
    critical_sigma_w2,
    derivative,
    fixed_point_q,
    length_map,
    length_map_slope,
    mean_field,
    saturated_fraction,
    weighted_input,
)
from initlab.theory.meanfield import second_moment

# the arrays some cases receive; checked byte-for-byte after each case
X_NAN = np.array([1.0, np.nan, 0.5])
X_INF = np.array([[1.0, 2.0], [np.inf, 0.0]])
X_HUGE = np.full(10, 1e200)
ARRAYS = {"X_NAN": X_NAN, "X_INF": X_INF, "X_HUGE": X_HUGE}

CASES = [
    ("negative input variance", lambda: weighted_input("lecun_normal", IidInputs(100, 0.0, -1.0)),
     InitlabError, ["`input_var`", "-1.0"]),
    ("NaN input variance", lambda: weighted_input("lecun_normal", IidInputs(100, 0.0, math.nan)),
     InitlabError, ["`input_var`", "nan"]),
    ("infinite input variance",
     lambda: weighted_input("lecun_normal", IidInputs(100, 0.0, math.inf)), InitlabError,
     ["`input_var`", "inf"]),
    ("NaN input mean", lambda: IidInputs(100, math.nan, 1.0), InitlabError, ["`input_mean`"]),
    ("zero inputs", lambda: IidInputs(0), InitlabError, ["`n`"]),
    ("NaN in a fixed input vector", lambda: weighted_input("lecun_normal", X_NAN),
     InitlabError, ["`inputs`", "index (1,)"]),
    ("inf in empirical inputs", lambda: weighted_input("lecun_normal", X_INF), InitlabError,
     ["`inputs`", "index (1, 0)"]),
    ("variance overflowing float64", lambda: weighted_input("normal", X_HUGE), InitlabError,
     ["`inputs`", "overflows"]),
    ("inputs of strings", lambda: weighted_input("lecun_normal", ["a", "b"]), InitlabTypeError,
     ["`inputs`"]),
    ("negative q in the length map", lambda: length_map(-1.0, 1.5, 0.1), InitlabError,
     ["`q`", "-1.0"]),
    ("negative q in the slope", lambda: length_map_slope(-0.5, 1.5), InitlabError,
     ["`q`", "-0.5"]),
    ("NaN q in the slope", lambda: length_map_slope(math.nan, 1.5), InitlabError, ["`q`"]),
    ("NaN q in the second moment", lambda: second_moment("tanh", math.nan), InitlabError,
     ["`q`"]),
    ("slope with sigma_w2 = -1", lambda: length_map_slope(1.0, -1.0), InitlabError,
     ["`sigma_w2`"]),
    ("negative q_star in chi1", lambda: chi1(1.5, 0.1, q_star=-2.0), InitlabError,
     ["`q_star`", "-2.0"]),
    ("NaN q_star in chi1", lambda: chi1(1.5, 0.1, q_star=math.nan), InitlabError,
     ["`q_star`"]),
    ("NaN q_star in the correlation map", lambda: correlation_map(0.5, 1.5, 0.1,
                                                                  q_star=math.nan),
     InitlabError, ["`q_star`"]),
    ("correlation outside [-1, 1]", lambda: correlation_map(1.5, 1.5, 0.1), InitlabError,
     ["`c`"]),
    ("q0 = 0 for the fixed point", lambda: fixed_point_q(1.5, 0.1, q0=0.0), InitlabError,
     ["`q0`"]),
    ("max_sigma_w2 = -1", lambda: critical_sigma_w2(0.05, "tanh", max_sigma_w2=-1),
     InitlabError, ["`max_sigma_w2`", "-1"]),
    ("max_sigma_w2 below the critical point", lambda: critical_sigma_w2(0.1, "relu",
                                                                         max_sigma_w2=1.5),
     InitlabError, ["`max_sigma_w2`", "relu"]),
    ("an empty critical line", lambda: critical_line([]), InitlabError, ["`sigma_b2`"]),
    ("a critical line of strings", lambda: critical_line(["a"]), InitlabError,
     ["`sigma_b2`"]),
    ("mean field at sigma_b2 = inf", lambda: mean_field(1.5, math.inf), InitlabError,
     ["`sigma_b2`"]),
    ("f'(NaN)", lambda: derivative("sigmoid", math.nan), InitlabError, ["`x`"]),
    ("saturation of a NaN (mean, std)", lambda: saturated_fraction((math.nan, 1.0)),
     InitlabError, ["`z[0] (mean)`"]),
]


@pytest.mark.parametrize("call,exc,texts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_theory_input(call, exc, texts):
    before = {k: v.tobytes() for k, v in ARRAYS.items()}
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for text in texts:
        assert text in msg, f"{text!r} not in {msg!r}"
    assert {k: v.tobytes() for k, v in ARRAYS.items()} == before


def test_infinities_are_limits_not_errors():
    # f'(+-inf) is the limit of the derivative; only NaN has no value
    assert derivative("sigmoid", math.inf) == 0.0 and derivative("tanh", -math.inf) == 0.0
