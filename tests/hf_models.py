"""Small Hugging Face transformers models built from configs (no weight download): the one place
the tests build GPT-2, Llama, BERT and ViT. Each factory's keywords override its config's fields, so a
test states only what it needs (a width, a vocabulary, a tie). Importing this module skips the
importing test module (or, imported inside a test, that test) when transformers is not
installed."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed")


def gpt2(n_layer=2, **kw):
    cfg = dict(n_layer=n_layer, n_embd=64, n_head=4, vocab_size=128, n_positions=32,
               bos_token_id=0, eos_token_id=0)
    cfg.update(kw)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg))


def llama(tied=False, n_layer=2, **kw):
    cfg = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=n_layer,
               num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
               tie_word_embeddings=tied, bos_token_id=0, eos_token_id=0)
    cfg.update(kw)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg))


def bert(n_layer=2, **kw):
    cfg = dict(hidden_size=64, num_hidden_layers=n_layer, num_attention_heads=4,
               intermediate_size=128, vocab_size=128, max_position_embeddings=32)
    cfg.update(kw)
    return transformers.BertForMaskedLM(transformers.BertConfig(**cfg))


def vit(hidden=64, n_layer=2, **kw):
    """A ViT image classifier on 32x32 RGB in 8x8 patches (16 patches + the class token)."""
    cfg = dict(hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=4,
               intermediate_size=2 * hidden, image_size=32, patch_size=8, num_channels=3,
               num_labels=10)
    cfg.update(kw)
    return transformers.ViTForImageClassification(transformers.ViTConfig(**cfg))


def tiny_gpt2():
    """A one-layer GPT-2 of width 8, drawn by transformers' own init from global seed 0."""
    cfg = transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg)
