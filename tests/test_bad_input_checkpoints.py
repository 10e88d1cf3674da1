"""Bad checkpoints and mappings (issue #13, cause 7): each a clear error naming the file or the
parameter; the model (a real GPT-2 from a small config) and the file are byte-for-byte
unchanged; no pickle payload ever runs (each hostile file's payload would write a file).

One row per case: (id, how to make the checkpoint, load kwargs, exception type, texts the
message must contain). ``{path}`` in a text stands for the checkpoint's path.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

import initlab
from initlab.core.validation import InitlabError, InitlabTypeError

transformers = pytest.importorskip("transformers")

from hf_models import tiny_gpt2  # noqa: E402  (after the skip)

safetensors_torch = pytest.importorskip("safetensors.torch")


def model_bytes(model) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


class Payload:
    """Unpickling this writes the file ``marker`` (os.system would be the real attack)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"with open({self.marker!r}, 'w') as f: f.write('payload ran')",))


def _state(model):
    # safetensors refuses shared tensors: GPT-2's lm_head is tied to wte, so drop the alias
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if k != "lm_head.weight"}


def good_safetensors(path, model):
    safetensors_torch.save_file(_state(model), str(path))


def make_empty_safetensors(path, model, marker):
    path.write_bytes(b"")


def make_truncated_safetensors(path, model, marker):
    good_safetensors(path, model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_garbage_safetensors(path, model, marker):
    path.write_bytes(b"\x13\x00\x00\x00\x00\x00\x00\x00{not a header at all}" + bytes(range(64)))


def make_huge_header_safetensors(path, model, marker):
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")   # header length beyond the file


def make_truncated_npz(path, model, marker):
    np.savez(path, **{k: v.numpy() for k, v in _state(model).items()})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_npy_named_npz(path, model, marker):
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 3), dtype=np.float32))


def make_object_npz(path, model, marker):
    # an object array is stored as a pickle inside the .npz: its payload must never run
    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    np.savez(path, **{"transformer.wte.weight": arr})


def make_string_npz(path, model, marker):
    np.savez(path, **{"transformer.wte.weight": np.array(["a", "bc"])})


def make_zip_not_npz(path, model, marker):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not an array")


def make_malicious_pt(path, model, marker):
    with open(path, "wb") as f:
        pickle.dump({"transformer.wte.weight": Payload(marker)}, f)


def make_malicious_torch_zip(path, model, marker):
    # the same payload inside torch.save's zip format
    torch.save({"transformer.wte.weight": Payload(marker)}, path)


def make_good(path, model, marker):
    good_safetensors(path, model)


def make_dir(path, model, marker):
    path.mkdir()


def make_txt(path, model, marker):
    path.write_text("weights")


def _returns_int(key):
    return 42


def _raises(key):
    raise KeyError(key)


CASES = [
    ("empty safetensors", "w.safetensors", make_empty_safetensors, {}, InitlabError,
     ["`path`", "{path}", "safetensors"]),
    ("truncated safetensors", "w.safetensors", make_truncated_safetensors, {}, InitlabError,
     ["`path`", "{path}", "safetensors"]),
    ("garbage safetensors", "w.safetensors", make_garbage_safetensors, {}, InitlabError,
     ["{path}"]),
    ("header longer than the file", "w.safetensors", make_huge_header_safetensors, {},
     InitlabError, ["{path}"]),
    ("truncated npz", "w.npz", make_truncated_npz, {}, InitlabError, ["`path`", "{path}"]),
    ("npy renamed npz", "w.npz", make_npy_named_npz, {}, InitlabError,
     ["{path}", ".npy"]),
    ("object array in npz (pickle payload)", "w.npz", make_object_npz, {}, InitlabError,
     ["{path}"]),
    ("string array in npz", "w.npz", make_string_npz, {}, InitlabError,
     ["{path}", "transformer.wte.weight", "numeric"]),
    ("zip archive that is not an npz", "w.npz", make_zip_not_npz, {}, InitlabError,
     ["{path}"]),
    ("malicious pickle .pt", "w.pt", make_malicious_pt, {}, InitlabError,
     ["{path}", "weights-only"]),
    ("malicious torch.save zip", "w.pt", make_malicious_torch_zip, {}, InitlabError,
     ["{path}", "never runs code"]),
    ("a directory", "w.safetensors", make_dir, {}, InitlabError, ["`path`", "{path}"]),
    ("unknown suffix", "w.txt", make_txt, {}, InitlabError, ["`path`", "{path}"]),
    ("mapping=42", "w.safetensors", make_good, {"mapping": 42}, InitlabTypeError,
     ["`mapping`", "42"]),
    ("mapping returning a non-string", "w.safetensors", make_good, {"mapping": _returns_int},
     InitlabTypeError, ["`mapping`", "42"]),
    ("mapping that raises", "w.safetensors", make_good, {"mapping": _raises}, InitlabError,
     ["`mapping`", "KeyError"]),
    ("mapping to a non-string target", "w.safetensors", make_good,
     {"mapping": {"transformer.*": 3}}, InitlabTypeError, ["`mapping`"]),
    ("mapping with bad items", "w.safetensors", make_good, {"mapping": [("a",)]},
     InitlabError, ["`mapping`"]),
]


@pytest.mark.parametrize("name,make,kwargs,exc,texts", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_checkpoint(name, make, kwargs, exc, texts, tmp_path):
    model = tiny_gpt2()
    path, marker = tmp_path / name, tmp_path / "PAYLOAD_RAN"
    make(path, model, marker)
    before_file = path.read_bytes() if path.is_file() else None
    before_model = model_bytes(model)
    with pytest.raises(exc) as info:
        initlab.load_pretrained(model, path, strict=False, **kwargs)
    msg = str(info.value)
    for text in texts:
        text = text.replace("{path}", str(path))
        assert text in msg, f"{text!r} not in {msg!r}"
    assert model_bytes(model) == before_model
    if before_file is not None:
        assert path.read_bytes() == before_file
    assert not marker.exists(), "a pickle payload ran"


def test_good_file_still_loads(tmp_path):
    # the control: the same writer's intact file loads, so the cases above fail for their flaw
    src, dst = tiny_gpt2(), tiny_gpt2()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    path = tmp_path / "w.safetensors"
    good_safetensors(path, src)
    rep = initlab.load_pretrained(dst, path, strict=False)
    assert not rep.unexpected and model_bytes(dst) == model_bytes(src)


def test_no_payload_runs_through_apply_pretrained(tmp_path):
    model = tiny_gpt2()
    path, marker = tmp_path / "w.pt", tmp_path / "PAYLOAD_RAN"
    make_malicious_pt(path, model, marker)
    before = model_bytes(model)
    with pytest.raises(InitlabError, match="weights-only"):
        initlab.apply(model, "he", seed=0, pretrained=str(path))
    assert model_bytes(model) == before and not marker.exists()
    assert not os.path.exists(marker)


def test_the_payload_is_live(tmp_path):
    # the control for the hostile files: plain pickle.load runs the payload
    path, marker = tmp_path / "w.pt", tmp_path / "PAYLOAD_RAN"
    make_malicious_pt(path, None, marker)
    with open(path, "rb") as f:
        pickle.load(f)  # noqa: S301  (deliberately unsafe, on our own file)
    assert marker.read_text() == "payload ran"
