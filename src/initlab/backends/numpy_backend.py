"""NumPy backend: the core's reference sampler (:mod:`initlab.core.sampling`) under its backend
name. It lives in the core because ``Initializer.sample`` uses it and the core imports nothing
above itself (tests/test_layering.py)."""

from ..core.sampling import (  # noqa: F401
    SAMPLERS,
    bounds_in_dtype,
    dirac_array,
    draw,
    haar_orthogonal,
    make_rng,
    truncated_standard_normal,
)

__all__ = ["SAMPLERS", "bounds_in_dtype", "dirac_array", "draw", "haar_orthogonal", "make_rng",
           "truncated_standard_normal"]
