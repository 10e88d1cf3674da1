"""materialize on Hugging Face models built on the meta device: their computed buffers (rotary
inv_freq, BERT's position_ids) are recomputed by the model's own _init_weights, module by
module, and equal those of the same model built on CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import initlab
from initlab import InitlabError

transformers = pytest.importorskip("transformers")

from hf_models import bert, llama  # noqa: E402  (after the skip)


def _llama():
    return llama(tied=True, vocab_size=97)


def _bert():
    return bert(vocab_size=97, max_position_embeddings=64)


@pytest.mark.parametrize("build", [_llama, _bert], ids=["llama", "bert"])
def test_meta_hf_model_materializes_with_its_computed_buffers(build):
    ref = build()
    with torch.device("meta"):
        model = build()
    rng_state = torch.get_rng_state()
    initlab.materialize(model, "gpt2", device="cpu", seed=0)
    assert torch.equal(torch.get_rng_state(), rng_state)      # HF's weight init never ran
    refb = dict(ref.named_buffers())
    for name, b in model.named_buffers():
        assert not b.is_meta and torch.equal(b, refb[name]), name
    ids = torch.randint(0, 97, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()
    if isinstance(model, transformers.LlamaForCausalLM):
        assert model.lm_head.weight is model.model.embed_tokens.weight


def test_meta_buffers_nobody_computes_are_an_error_and_the_model_stays_meta():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.register_buffer("table", torch.arange(4.0), persistent=False)

        def forward(self, x):
            return self.fc(x) + self.table

    with torch.device("meta"):
        net = Net()
    with pytest.raises(InitlabError, match="`buffers`.*`table`"):
        initlab.materialize(net, "he", device="cpu", seed=0)
    assert net.fc.weight.is_meta and net.table.is_meta
    with torch.device("meta"):
        model = _llama()
    with pytest.raises(InitlabError, match="inv_freq"):
        initlab.materialize(model, "gpt2", device="cpu", seed=0, buffers="error")
