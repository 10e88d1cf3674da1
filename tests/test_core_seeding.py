"""The one seed validator and the one stream derivation (initlab.core.seeding)."""

from __future__ import annotations

import numpy as np
import pytest

from initlab.core.seeding import SEED_BITS, check_seed, stable_u64, stream_seed
from initlab.core.validation import InitlabError, InitlabTypeError


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, np.int64(7), np.uint64(2**64 - 1), np.int8(3)])
def test_check_seed_accepts_python_and_numpy_ints(seed):
    out = check_seed(seed)
    assert type(out) is int and out == int(seed)


@pytest.mark.parametrize("seed, exc, fragment", [
    (None, InitlabTypeError, "must be given"),
    (True, InitlabTypeError, "must be a non-negative int"),
    (1.0, InitlabTypeError, "must be a non-negative int"),
    ("0", InitlabTypeError, "must be a non-negative int"),
    (np.float64(2.0), InitlabTypeError, "must be a non-negative int"),
    (-1, InitlabError, "must be >= 0"),
    (np.int64(-5), InitlabError, "must be >= 0"),
    (2**64, InitlabError, "must be < 2**64"),
    # Python cannot print these (digit limit): the message describes them by their size
    pytest.param(10**5000, InitlabError, "must be < 2**64", id="10**5000"),
    pytest.param(-(10**5000), InitlabError, "must be >= 0", id="-10**5000"),
])
def test_check_seed_refuses_with_a_message_naming_the_parameter(seed, exc, fragment):
    with pytest.raises(exc) as info:
        check_seed(seed, name="my_seed")
    msg = str(info.value)
    assert msg.startswith("`my_seed` ") and fragment in msg
    assert len(msg) < 400          # a huge int is described by its size, never printed


def test_stream_seed_is_the_stable_hash_of_seed_and_key():
    # pinned to the values every stream has used since stream v1 (apply's torch generators are
    # seeded with the low 63 bits, the counter stream's Philox key is all 64)
    assert stream_seed(0, "fc.weight") == stable_u64(0, "fc.weight") == 1174139401830448985
    assert stream_seed(0, "fc.weight", bits=63) == 1174139401830448985 % 2**63
    assert stream_seed(np.int64(3), "a") == stream_seed(3, "a")
    assert stream_seed(0, "a") != stream_seed(1, "a") != stream_seed(0, "b")
    assert 0 <= stream_seed(2**64 - 1, "x") < 2**SEED_BITS


@pytest.mark.parametrize("kwargs, exc, name", [
    ({"seed": -1, "key": "a"}, InitlabError, "`seed`"),
    pytest.param({"seed": 10**5000, "key": "a"}, InitlabError, "`seed`", id="huge"),
    ({"seed": 0, "key": ""}, InitlabTypeError, "`key`"),
    ({"seed": 0, "key": 3}, InitlabTypeError, "`key`"),
    ({"seed": 0, "key": "a", "bits": 65}, InitlabError, "`bits`"),
])
def test_stream_seed_validates(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        stream_seed(**kwargs)


def test_numpy_sampling_uses_the_one_validator():
    import initlab

    with pytest.raises(InitlabError, match=r"`seed` must be < 2\*\*64"):
        initlab.normal().sample((2, 2), seed=10**5000)
    a = initlab.normal().sample((3,), seed=np.int64(5))
    b = initlab.normal().sample((3,), seed=5)
    assert np.array_equal(a, b)
