"""Measured draws: ``draw_(..., sink=[])`` fills chunk by chunk and sums each chunk while it is in
cache, for the report's statistics. Values must equal one call of torch's kernel exactly (this is
what makes the chunking legal; a torch release that changes its CPU kernels fails here first), and
the sums must give the tensor's mean and std to the report's 1e-4."""

from __future__ import annotations

import pytest
import torch

import initlab
from initlab.backends.torch_backend import MEASURE_CHUNK, draw_
from initlab.core.distributions import Constant, Normal, TruncatedNormal, Uniform
from initlab.modelinit.report import moments_from_sums

C = MEASURE_CHUNK
# lengths around every boundary the chunking has: below 16 (torch's scalar path), the 16-block
# tail, one chunk, a chunk plus a short tail (merged into the last chunk), several chunks
LENGTHS = [1, 5, 15, 16, 17, 31, 33, 1000, C - 1, C, C + 1, C + 15, C + 16, C + 17,
           3 * C + 7, 5 * C + 57]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dist", [Normal(0.0, 0.02), Uniform(-0.5, 0.5), Normal(0.001, 0.05)],
                         ids=["normal", "uniform", "normal-mean"])
def test_measured_draw_equals_one_call(dtype, dist):
    for n in LENGTHS:
        whole = torch.empty(n, dtype=dtype)
        draw_(whole, dist, torch.Generator().manual_seed(n))
        chunked = torch.empty(n, dtype=dtype)
        sink: list = []
        draw_(chunked, dist, torch.Generator().manual_seed(n), sink=sink)
        assert torch.equal(whole, chunked), (n, dtype, dist)
        if n < 10_000 and not sink:
            # a short zero-mean tensor's sample mean^2 is ~1/n of E[x^2], above the 1e-3 at
            # which E[x^2] - mean^2 is not trusted: the caller measures the tensor instead
            continue
        assert len(sink) == 1, n
        mean, std = sink[0]
        x = whole.double()
        # chunk sums in the dtype (cascaded) and BLAS dots, accumulated in float64: ~1e-6
        # relative, far inside the report's 1e-4
        assert mean == pytest.approx(float(x.mean()), abs=1e-5 * float(x.abs().mean()))
        if n > 1:
            assert std == pytest.approx(float(x.std(unbiased=False)), rel=1e-4)


def test_measured_draw_on_2d_weight_equals_torch_nn_init():
    w = torch.empty(300, 1000)
    draw_(w, Normal(0.0, 0.02), torch.Generator().manual_seed(3), sink=[])
    ref = torch.empty(300, 1000)
    torch.nn.init.normal_(ref, 0.0, 0.02, generator=torch.Generator().manual_seed(3))
    assert torch.equal(w, ref)


def test_unmeasured_cases_append_nothing_and_draw_as_usual():
    cases = [
        (torch.empty(40, 30).t(), Normal(0, 1)),                    # not contiguous
        (torch.empty(1000), Normal(5.0, 1e-3)),                     # sums would cancel
        (torch.empty(1000, dtype=torch.bfloat16), Normal(0, 1)),     # drawn through a buffer
        (torch.empty(1000), TruncatedNormal(0, 1, -2, 2)),           # other kinds
    ]
    for t, dist in cases:
        ref = t.clone()
        draw_(ref, dist, torch.Generator().manual_seed(0))
        sink: list = []
        draw_(t, dist, torch.Generator().manual_seed(0), sink=sink)
        assert sink == []
        assert torch.equal(t, ref)


def test_constant_fill_reports_its_value_as_the_dtype_holds_it():
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        t = torch.empty(7, 3, dtype=dtype).t()           # non-contiguous too
        sink: list = []
        draw_(t, Constant(0.1), None, sink=sink)
        assert sink == [(float(torch.tensor(0.1, dtype=dtype)), 0.0)]
        assert torch.all(t == torch.tensor(0.1, dtype=dtype))


def test_moments_from_sums_refuses_cancellation():
    assert moments_from_sums(4, 4.0, 4.0) is None        # a constant 1: var would cancel
    assert moments_from_sums(4, 0.0, 0.0) == (0.0, 0.0)
    mean, std = moments_from_sums(4, 0.0, 4.0)
    assert (mean, std) == (0.0, 1.0)


def test_apply_report_std_equals_tensor_on_gpt2():
    """The report's statistics come from the measured draws on HF GPT-2 (every Linear/Conv1D
    weight and embedding under `gpt2`); each equals the tensor's own to 1e-4 relative."""
    pytest.importorskip("transformers")
    from hf_models import gpt2

    model = gpt2()
    report = initlab.apply(model, "gpt2", seed=0)
    params = dict(model.named_parameters())
    checked = 0
    for rec in report.records:
        t = params.get(rec.name)
        if t is None or rec.std is None:
            continue
        x = t.detach().double()
        assert rec.mean == pytest.approx(float(x.mean()), abs=1e-4 * max(float(x.std()), 1e-12))
        if float(x.std()) > 0:
            assert rec.std == pytest.approx(float(x.std(unbiased=False)), rel=1e-4), rec.name
            checked += 1
    assert checked >= 10


def test_large_tensor_moments_exact_to_1e4():
    """Over 16.7M float32 values one whole-tensor float32 vector_norm is off by ~1.5e-3 in the
    sum of squares (measured); the report's chunked sums (and the measured draw) stay within
    1e-5 of the float64 values."""
    from initlab.modelinit.report import _tensor_moments

    g = torch.Generator().manual_seed(0)
    t = torch.empty(4096, 4096)
    sink: list = []
    draw_(t, Normal(0.0, 0.02), g, sink=sink)
    x = t.double()
    true_mean, true_std = float(x.mean()), float(x.std(unbiased=False))
    for mean, std in (sink[0], _tensor_moments(t)):
        assert std == pytest.approx(true_std, rel=1e-5)
        assert mean == pytest.approx(true_mean, abs=1e-5 * true_std)
