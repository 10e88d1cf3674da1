"""The `critical` initializer: catalog registration, resolution, round trip, light import."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import initlab
from initlab.core.distributions import Normal
from initlab.core.validation import InitlabError
from initlab.theory import DEFAULT_SIGMA_B2, critical_sigma_w2


def test_registered_in_catalog():
    assert "critical" in initlab.names()
    init = initlab.get("critical")
    assert init.params == {"activation": "tanh", "sigma_b2": DEFAULT_SIGMA_B2, "sigma_w2": None}


@pytest.mark.parametrize("fan_in", [10, 300])
def test_weights_and_bias_distributions(fan_in):
    init = initlab.get("critical", activation="tanh", sigma_b2=0.05)
    w = init.resolve((7, fan_in))
    assert isinstance(w, Normal) and w.mean == 0.0
    assert w.std**2 * fan_in == pytest.approx(1.761, abs=1e-3)
    b = init.resolve((7,), fans=(fan_in, 7), role="bias")
    assert isinstance(b, Normal) and b.std**2 == pytest.approx(0.05)


def test_explicit_sigma_w2_and_other_activations():
    init = initlab.get("critical", sigma_w2=1.2, sigma_b2=0.0)
    assert init.resolve((4, 100)).std == pytest.approx(math.sqrt(1.2 / 100))
    assert init.resolve((4,), fans=(100, 4), role="bias").std == 0.0
    relu = initlab.get("critical", activation="relu", sigma_b2=0.0)
    assert relu.resolve((4, 50)).std ** 2 * 50 == pytest.approx(2.0, abs=1e-9)  # He
    tanh0 = initlab.get("critical", activation="tanh", sigma_b2=0.0)
    assert tanh0.resolve((4, 50)).std ** 2 * 50 == pytest.approx(1.0, abs=1e-9)


def test_to_dict_round_trip_json():
    for init in (initlab.get("critical"), initlab.get("critical", activation="gelu", sigma_b2=0.1),
                 initlab.get("critical", sigma_w2=1.5)):
        d = json.loads(json.dumps(init.to_dict()))
        back = initlab.from_dict(d)
        assert back == init
        assert back.resolve((3, 20)) == init.resolve((3, 20))


def test_samples_have_the_critical_variance():
    init = initlab.get("critical", sigma_b2=0.09)
    fan_in, rows = 200, 500
    w = init.sample((rows, fan_in), seed=0, dtype="float64")
    var = critical_sigma_w2(0.09, "tanh") / fan_in
    n = w.size
    # sample variance of n normal draws: std var * sqrt(2 / (n - 1)); 6 sigma
    assert abs(w.var() - var) < 6 * var * math.sqrt(2 / (n - 1))
    b = init.sample((rows,), seed=1, dtype="float64", fans=(fan_in, rows), role="bias")
    assert abs(np.mean(b**2) - 0.09) < 6 * 0.09 * math.sqrt(2 / rows)


def test_errors_name_the_parameter():
    with pytest.raises(InitlabError, match="`activation`"):
        initlab.get("critical", activation="nope")
    with pytest.raises(InitlabError, match="`sigma_b2`"):
        initlab.get("critical", sigma_b2=-0.1)
    with pytest.raises(InitlabError, match="`sigma_w2`"):
        initlab.get("critical", sigma_w2=0.0)


def test_catalog_import_does_not_pull_torch():
    code = ("import sys, initlab; initlab.get('critical'); "
            "print('torch' in sys.modules, 'initlab.theory.critical' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
