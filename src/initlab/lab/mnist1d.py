"""MNIST-1D, generated procedurally (no download).

Our own implementation of the published procedure of Greydanus, "Scaling down deep learning"
(2020; the ``mnist1d`` package, ``mnist1d/data.py`` and ``transform.py``, v0.0.2): ten 12-point
templates (one per digit) are padded with 36-60 zeros, stretched to 72 points, scaled by
1 + 0.4 (u - 1/2), cyclically shifted by up to 47 points, their zero background replaced by
Gaussian-smoothed noise (scale 0.25, filter sigma 2), i.i.d. noise added (scale 0.02), sheared by
0.75 (u - 1/2) and linearly resampled to 40 points; then the whole set is centred and scaled to
unit standard deviation. The package draws from NumPy's *global* RNG after ``np.random.seed``;
here every draw comes from one explicit ``numpy.random.Generator``, so a given seed gives a
statistically identical but not bit-identical dataset to the package's.
"""

from __future__ import annotations

import numpy as np

# Defaults of mnist1d.data.get_dataset_args (Greydanus 2020).
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
CORR_NOISE_SIGMA = 2.0  # gaussian_filter(noise, 2) in transform.corr_noise_like
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
EPS = 1e-8  # added before padding, so that "x != 0" marks the signal, not the background


def templates() -> np.ndarray:
    """The ten 12-point digit templates (rows), whitened, starting at 0 and divided by 6."""
    d = np.asarray([
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ], dtype=np.float64)
    d = d - d.mean(1, keepdims=True)
    d = d / d.std(1, keepdims=True)
    d = d - d[:, :1]
    return d / 6.0


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    low, high = PADDING
    p = low + int(rng.random() * (high - low + 1))
    x = np.concatenate([x + EPS, np.zeros(p)])
    x = _interpolate(x, TEMPLATE_LEN + PADDING[1])  # dilate to 72 points
    x = x * (1 + SCALE_COEFF * (rng.random() - 0.5))  # scale
    k = int(rng.integers(MAX_TRANSLATION))  # translate (cyclic shift by k)
    x = np.concatenate([x[len(x) - k:], x[:len(x) - k]])
    mask = x != 0
    corr = gaussian_filter(CORR_NOISE_SCALE * rng.standard_normal(x.shape), CORR_NOISE_SIGMA)
    x = mask * x + (1 - mask) * corr
    x = x + IID_NOISE_SCALE * rng.standard_normal(x.shape)
    coeff = SHEAR_SCALE * (rng.random() - 0.5)  # shear
    x = x - coeff * np.linspace(-0.5, 0.5, len(x))
    return _interpolate(x, FINAL_SEQ_LENGTH)


def make_mnist1d(n_samples: int = 5000, *, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_samples`` MNIST-1D examples: ``(x, y)`` with x of shape (n, 40), float64.

    ``n_samples // 10`` examples per class, shuffled, then the set is centred and scaled to unit
    standard deviation (one global mean and std, as in the package). Procedure of Greydanus,
    "Scaling down deep learning" (2020); randomness from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    temp = templates()
    per_class = n_samples // 10
    xs = np.stack([_transform(temp[c], rng) for c in range(10) for _ in range(per_class)])
    ys = np.repeat(np.arange(10, dtype=np.int64), per_class)
    perm = rng.permutation(len(ys))
    xs, ys = xs[perm], ys[perm]
    xs = (xs - xs.mean()) / xs.std()
    return xs, ys
