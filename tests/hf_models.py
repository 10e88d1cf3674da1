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


# ---------------------------------------------------------------------------- more architectures
# Each with its expected number of residual branches (identity or projection shortcuts of the
# dataflow): what the model description must find.

_ENC = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def opt(**config):
    return transformers.OPTForCausalLM(transformers.OPTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64, vocab_size=100,
        word_embed_proj_dim=32, **config))


def bart(**config):
    return transformers.BartForConditionalGeneration(transformers.BartConfig(
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100,
        **config))


def clip():
    return transformers.CLIPModel(transformers.CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, vocab_size=100),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=16))


def wav2vec2(**config):
    # the default config's layerdrop 0.1 skips a layer at random in train mode (initlab's probe
    # and doctor switch it off)
    return transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(
        **_ENC, vocab_size=32, conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3),
        num_feat_extract_layers=2, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        **config))


def dinov2():
    return transformers.Dinov2Model(transformers.Dinov2Config(**_ENC, image_size=32,
                                                              patch_size=8))


def beit(drop_path_rate=0.1):
    return transformers.BeitForImageClassification(transformers.BeitConfig(
        **_ENC, image_size=32, patch_size=8, drop_path_rate=drop_path_rate))


def swin(drop_path_rate=0.1):
    return transformers.SwinForImageClassification(transformers.SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
        window_size=4, drop_path_rate=drop_path_rate))


ARCHITECTURES = {  # name: (factory, residual branches)
    "opt": (opt, 4), "bart": (bart, 5), "clip": (clip, 4), "wav2vec2": (wav2vec2, 4),
    "dinov2": (dinov2, 4), "beit": (beit, 4), "swin": (swin, 4),
}


# ---------------------------------------------------------------------------- mixtures of experts
# transformers v5 stores each MoE layer's experts stacked in one module (an expert bank, e.g.
# MixtralExperts: gate_up_proj (E, 2I, H), down_proj (E, H, I)) beside a router of its own class.

_MOE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=128, bos_token_id=0, eos_token_id=0)


def mixtral(**config):
    cfg = dict(_MOE, intermediate_size=96, num_local_experts=4, num_experts_per_tok=2)
    cfg.update(config)
    return transformers.MixtralForCausalLM(transformers.MixtralConfig(**cfg))


def gpt_oss(**config):
    """GPT-OSS: experts stored (in, out) (``is_transposed=True``), with per-expert biases."""
    cfg = dict(_MOE, intermediate_size=96, head_dim=16, num_local_experts=4,
               num_experts_per_tok=2, layer_types=["full_attention"] * 2)
    cfg.update(config)
    return transformers.GptOssForCausalLM(transformers.GptOssConfig(**cfg))


def deepseek_v3(**config):
    """DeepSeek-V3: a dense first layer, then routed experts beside a shared expert (both close
    the MoE branch: the residual add takes their sum)."""
    cfg = dict(_MOE, intermediate_size=96, moe_intermediate_size=48, n_routed_experts=4,
               num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1, n_group=1,
               topk_group=1, kv_lora_rank=16, q_lora_rank=32, qk_rope_head_dim=8,
               qk_nope_head_dim=8, v_head_dim=16)
    cfg.update(config)
    return transformers.DeepseekV3ForCausalLM(transformers.DeepseekV3Config(**cfg))


def qwen2_moe(**config):
    """Qwen2-MoE: a shared expert beside the routed bank, behind a sigmoid gate
    (``sigmoid(shared_expert_gate(x)) * shared_expert(x)``)."""
    cfg = dict(_MOE, intermediate_size=96, moe_intermediate_size=48,
               shared_expert_intermediate_size=96, num_experts=4, num_experts_per_tok=2)
    cfg.update(config)
    return transformers.Qwen2MoeForCausalLM(transformers.Qwen2MoeConfig(**cfg))


def llama4(**config):
    """Llama 4 (text): the routed bank's outputs summed over experts (``.sum(dim=0)``) and added
    in place to the shared expert's."""
    cfg = dict(_MOE, intermediate_size=96, intermediate_size_mlp=128, head_dim=16,
               num_local_experts=4, num_experts_per_tok=1, interleave_moe_layer_step=1)
    cfg.update(config)
    return transformers.Llama4ForCausalLM(transformers.Llama4TextConfig(**cfg))


def ernie45_moe(**config):
    """Ernie 4.5 MoE: a dense first layer, then a router whose child ``moe_statics`` holds the
    routing bias ``e_score_correction_bias`` as a frozen parameter, beside a shared expert."""
    cfg = dict(_MOE, intermediate_size=96, moe_intermediate_size=48, num_experts=4,
               num_experts_per_tok=2, head_dim=16, pad_token_id=0)
    cfg.update(config)
    return transformers.Ernie4_5_MoeForCausalLM(transformers.Ernie4_5_MoeConfig(**cfg))


def laguna(**config):
    """Laguna: its router holds its weight and the routing bias ``e_score_correction_bias`` as
    its own parameters (the bias frozen)."""
    cfg = dict(_MOE, intermediate_size=96, moe_intermediate_size=48,
               shared_expert_intermediate_size=48, num_experts=4, num_experts_per_tok=2,
               head_dim=16, sliding_window=8, pad_token_id=0)
    cfg.update(config)
    return transformers.LagunaForCausalLM(transformers.LagunaConfig(**cfg))


def afmoe(**config):
    """AFMoE: the MoE block holds the routing bias (``expert_bias``) and passes it to its
    router."""
    cfg = dict(_MOE, intermediate_size=96, moe_intermediate_size=48, num_experts=4,
               num_experts_per_tok=2, num_shared_experts=1, head_dim=16, sliding_window=8,
               global_attn_every_n_layers=2, pad_token_id=0)
    cfg.update(config)
    return transformers.AfmoeForCausalLM(transformers.AfmoeConfig(**cfg))


def gpt_neox(**config):
    """GPT-NeoX with its parallel block: x + attention(ln1(x)) + mlp(ln2(x)), one residual
    addition closed by two layers."""
    return transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
        vocab_size=128, use_parallel_residual=True, **config))


def convnext(**config):
    """ConvNeXt: each block's output scaled by ``layer_scale_parameter`` (config 1e-6)."""
    return transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
        hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, num_labels=10, image_size=32,
        **config))


def mamba(n_layer=2, **kw):
    """A Mamba language model: per layer a ``MambaMixer`` with ``A_log`` (d_inner, N), ``D``
    and ``dt_proj`` (its bias the time-step bias), d_inner = 2 * hidden."""
    cfg = dict(hidden_size=32, state_size=8, num_hidden_layers=n_layer, vocab_size=64,
               bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg.update(kw)
    return transformers.MambaForCausalLM(transformers.MambaConfig(**cfg))


def mamba2(n_layer=2, **kw):
    """A Mamba-2 language model: per-head ``A_log``/``D``/``dt_bias`` (4 heads of 16)."""
    cfg = dict(hidden_size=32, state_size=8, num_heads=4, head_dim=16, n_groups=1,
               num_hidden_layers=n_layer, vocab_size=64, bos_token_id=0, eos_token_id=0,
               pad_token_id=0)
    cfg.update(kw)
    return transformers.Mamba2ForCausalLM(transformers.Mamba2Config(**cfg))


def jamba(**kw):
    """A Jamba hybrid: layer 0 a Mamba mixer (``dt_proj.bias``) with a dense MLP, layer 1
    attention with a 2-expert MoE."""
    cfg = dict(hidden_size=32, num_hidden_layers=2, vocab_size=64, num_attention_heads=4,
               num_key_value_heads=2, intermediate_size=64, num_experts=2,
               num_experts_per_tok=1, attn_layer_period=2, attn_layer_offset=1,
               expert_layer_period=2, expert_layer_offset=1, mamba_d_state=8, mamba_dt_rank=4,
               bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg.update(kw)
    return transformers.JambaForCausalLM(transformers.JambaConfig(**cfg))


def bamba(**kw):
    """A Bamba hybrid: layer 0 a Mamba-2 mixer (``dt_bias``, which Hugging Face starts at 1),
    layer 1 attention."""
    cfg = dict(hidden_size=32, num_hidden_layers=2, vocab_size=64, num_attention_heads=4,
               num_key_value_heads=2, intermediate_size=64, mamba_n_heads=4, mamba_d_head=16,
               mamba_d_state=8, mamba_n_groups=1, attn_layer_indices=[1],
               bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg.update(kw)
    return transformers.BambaForCausalLM(transformers.BambaConfig(**cfg))


def siglip():
    return transformers.SiglipModel(transformers.SiglipConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, vocab_size=100),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=4, image_size=32, patch_size=8)))


def swinv2():
    return transformers.Swinv2ForImageClassification(transformers.Swinv2Config(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
        window_size=4))


def clap():
    return transformers.ClapModel(transformers.ClapConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, vocab_size=100),
        audio_config=dict(hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2],
                          patch_embeds_hidden_size=16, spec_size=64, num_mel_bins=64,
                          window_size=4, patch_stride=(4, 4)),
        projection_dim=16))


def poolformer():
    """PoolFormer: both branches of a block scaled by ``layer_scale_1``/``layer_scale_2``
    (config 1e-5); the token mixer is a pooling (no layer), so one branch per block has layers."""
    return transformers.PoolFormerForImageClassification(transformers.PoolFormerConfig(
        hidden_sizes=[8, 16], depths=[1, 1], num_encoder_blocks=2, patch_sizes=[7, 3],
        strides=[4, 2], padding=[2, 1], num_labels=10))


def levit():
    """LeViT: per attention an ``attention_biases`` (heads, offsets) table, and a
    ``LevitSubsample`` (a view and a strided slice, no parameters) between its stages."""
    return transformers.LevitForImageClassification(transformers.LevitConfig(
        image_size=32, hidden_sizes=[16, 32], num_attention_heads=[2, 2], depths=[1, 1],
        key_dim=[8, 8], drop_path_rate=0, mlp_ratio=[2, 2], attention_ratio=[2, 2],
        down_ops=[["Subsample", 8, 2, 4, 2, 2]], num_labels=10))


def convnextv2():
    """ConvNeXt V2: a global response norm (``grn.weight``/``grn.bias``, (1, 1, 1, C)) per
    block."""
    return transformers.ConvNextV2ForImageClassification(transformers.ConvNextV2Config(
        hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, num_labels=10, image_size=32))


def bloom():
    """BLOOM: its MLP's activation is its own ``BloomGelu`` module."""
    return transformers.BloomForCausalLM(transformers.BloomConfig(
        hidden_size=32, n_layer=2, n_head=4, vocab_size=128))


ARCHITECTURES.update({"poolformer": (poolformer, 2), "levit": (levit, 5),
                      "convnextv2": (convnextv2, 2), "bloom": (bloom, 4)})


def deberta_v2():
    """DeBERTa-v2: its forward checks ``pad_token_id in input_ids`` (a data-dependent
    ``Tensor.__contains__``, answered without data on meta)."""
    return transformers.DebertaV2Model(transformers.DebertaV2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        vocab_size=128, max_position_embeddings=64))


def hiera():
    """Hiera: between stages, a max over each window's positions (``Tensor.max(dim)``, a
    pooling)."""
    return transformers.HieraForImageClassification(transformers.HieraConfig(
        embed_dim=16, image_size=[64, 64], patch_size=[7, 7], patch_stride=[4, 4],
        patch_padding=[3, 3], depths=[1, 1], num_heads=[1, 2], query_stride=[2, 2],
        masked_unit_size=[4, 4], num_query_pool=1, num_labels=10))


def mobilevit():
    """MobileViT at 48 pixels: the last stage's 3x3 map does not divide into 2x2 patches, so a
    1x1 conv's output is resized by ``interpolate`` before its transformer."""
    return transformers.MobileViTForImageClassification(transformers.MobileViTConfig(
        image_size=48, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
        num_labels=10))


def vit_mae():
    """ViT-MAE: its embeddings shuffle the patches by a random permutation and keep a share
    (``torch.gather`` with an argsort of noise), a selection between the patch projection and
    the encoder."""
    return transformers.ViTMAEModel(transformers.ViTMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        image_size=32, patch_size=8))


def olmo():
    """OLMo (v1): its layer norms have no parameters (``OlmoLayerNorm``, ``F.layer_norm``
    without weight or bias)."""
    return transformers.OlmoForCausalLM(transformers.OlmoConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64, pad_token_id=0, bos_token_id=0, eos_token_id=0))


ARCHITECTURES.update({"deberta_v2": (deberta_v2, 4), "hiera": (hiera, 4),
                      "mobilevit": (mobilevit, 21), "vit_mae": (vit_mae, 4), "olmo": (olmo, 4)})


def qwen3_next(**kw):
    """A Qwen3-Next hybrid: layer 0 a Gated DeltaNet (per value head ``A_log``, log U(0, 16)
    in FLA, and ``dt_bias``, which Hugging Face starts at 1), layer 1 gated attention; both
    with a 2-expert MoE and a shared expert."""
    cfg = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, vocab_size=64,
               num_attention_heads=4, num_key_value_heads=2, head_dim=8,
               linear_key_head_dim=8, linear_value_head_dim=8, linear_num_key_heads=2,
               linear_num_value_heads=4, moe_intermediate_size=16,
               shared_expert_intermediate_size=16, num_experts=2, num_experts_per_tok=1,
               layer_types=["linear_attention", "full_attention"],
               bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg.update(kw)
    return transformers.Qwen3NextForCausalLM(transformers.Qwen3NextConfig(**cfg))


def kimi_linear(**kw):
    """A Kimi Linear hybrid: layer 0 Kimi Delta Attention (``A_log`` log U(1, 16) per head and
    a ``dt_bias`` per channel), layer 1 multi-head latent attention."""
    cfg = dict(hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
               num_hidden_layers=2, vocab_size=64, num_attention_heads=4,
               num_key_value_heads=4, kv_lora_rank=16, qk_rope_head_dim=4, v_head_dim=8,
               qk_nope_head_dim=4, num_local_experts=2, num_experts_per_tok=1,
               linear_head_dim=8, linear_num_heads=4,
               layer_types=["linear_attention", "full_attention"],
               bos_token_id=0, eos_token_id=0, pad_token_id=0)
    cfg.update(kw)
    return transformers.KimiLinearForCausalLM(transformers.KimiLinearConfig(**cfg))


def diffllama(**kw):
    """DiffLlama: differential attention (Ye et al. 2024) with per-layer lambda vectors
    ``lambda_q1``/``k1``/``q2``/``k2`` of head_dim entries, N(0, lambda_std_dev^2)."""
    cfg = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=64, pad_token_id=0, bos_token_id=0,
               eos_token_id=0)
    cfg.update(kw)
    return transformers.DiffLlamaForCausalLM(transformers.DiffLlamaConfig(**cfg))


def recurrent_gemma(**kw):
    """A RecurrentGemma (Griffin): layers 0 and 1 recurrent blocks (an RG-LRU with its
    ``recurrent_param`` and two block-diagonal gates of 4 heads), layer 2 local attention."""
    cfg = dict(num_hidden_layers=3, vocab_size=64, hidden_size=32, intermediate_size=48,
               num_attention_heads=4, lru_width=32, attention_window_size=8,
               block_types=["recurrent", "recurrent", "attention"])
    cfg.update(kw)
    return transformers.RecurrentGemmaForCausalLM(transformers.RecurrentGemmaConfig(**cfg))


ARCHITECTURES.update({"recurrent_gemma": (recurrent_gemma, 6)})


def cpmant():
    """CPM-Ant: a relative-position bias table held as a raw parameter
    (``position_bias.relative_attention_bias``, buckets + segment pairs by heads)."""
    return transformers.CpmAntForCausalLM(transformers.CpmAntConfig(
        vocab_size=128, hidden_size=32, num_attention_heads=4, dim_head=8, dim_ff=64,
        num_hidden_layers=2, prompt_length=4, segment_types=4, position_bias_num_buckets=32,
        position_bias_max_distance=64))


def xlstm(**kw):
    """An xLSTM (xLSTM 7B's layout, Hugging Face's ``single`` weight mode): two mLSTM blocks of 4
    heads, each with its ``igate_preact`` and ``fgate_preact`` (one output per head) beside a
    gated feed-forward. Query/key width equal to the value width: with xLSTM 7B's
    ``qk_dim_factor=0.5`` Hugging Face's cached forward (transformers 5.25) fails on any
    sequence shorter than a chunk ("matC_old has wrong shape")."""
    cfg = dict(vocab_size=128, hidden_size=64, embedding_dim=64, num_heads=4, num_blocks=2,
               qk_dim_factor=1.0, v_dim_factor=1.0)
    cfg.update(kw)
    return transformers.xLSTMForCausalLM(transformers.xLSTMConfig(**cfg))


ARCHITECTURES.update({"xlstm": (xlstm, 4)})


def apertus(**kw):
    """Apertus: an MLP ``down_proj(xielu(up_proj(x)))`` whose xIELU activation holds learnable
    ``alpha_p``/``alpha_n`` (Huang et al. 2024)."""
    cfg = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2)
    cfg.update(kw)
    return transformers.ApertusForCausalLM(transformers.ApertusConfig(**cfg))


ARCHITECTURES.update({"apertus": (apertus, 4)})


def rwkv(**kw):
    """RWKV-4 (Peng et al. 2023): per block a time-mixing ``attention`` (``time_decay``,
    ``time_first``, three token-shift mixes) and a channel-mixing ``feed_forward`` (two mixes),
    each closing a residual branch."""
    cfg = dict(vocab_size=64, hidden_size=32, num_hidden_layers=3, attention_hidden_size=32,
               intermediate_size=64, context_length=32)
    cfg.update(kw)
    return transformers.RwkvForCausalLM(transformers.RwkvConfig(**cfg))


ARCHITECTURES.update({"rwkv": (rwkv, 6)})


_VISION_TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, image_size=32, patch_size=8)


def llava():
    """LLaVA: a CLIP vision tower and a Llama, joined by a two-layer GELU projector; the image's
    features go where the input holds ``image_token_index``."""
    return transformers.LlavaForConditionalGeneration(transformers.LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", **_VISION_TOWER),
        text_config=dict(model_type="llama", hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=64),
        image_token_index=63, projector_hidden_act="gelu"))


def gemma3_vlm():
    """Gemma 3 (image-text): a SigLIP tower pooled to ``mm_tokens_per_image`` tokens and a Gemma 3
    text model."""
    return transformers.Gemma3ForConditionalGeneration(transformers.Gemma3Config(
        vision_config=dict(_VISION_TOWER),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=300,
                         head_dim=8),
        mm_tokens_per_image=4, image_token_index=299, boi_token_index=297,
        eoi_token_index=298))


# Gemma 3's SigLIP tower ends in an attention-pooling head with a residual MLP: one more branch
ARCHITECTURES.update({"llava": (llava, 8), "gemma3_vlm": (gemma3_vlm, 9)})

# Llama 4 rotates q and k as complex numbers (view_as_complex, a product, view_as_real)
ARCHITECTURES.update({"llama4": (llama4, 4)})


def sam_vision():
    """SAM's vision encoder: windowed and global attention with decomposed relative-position
    tables ``rel_pos_h``/``rel_pos_w`` (also GOT-OCR2's vision tower)."""
    return transformers.SamVisionModel(transformers.SamVisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=64, patch_size=16,
        use_rel_pos=True, window_size=2, global_attn_indexes=[1], output_channels=16,
        mlp_dim=64))


def xlnet():
    """XLNet: its attention's projections are raw (d_model, heads, head) parameters read by
    einsum (``einsum("ibh,hnd->ibnd", h, self.q)``), its content/position/segment biases are
    added to the query's projection, and its segment encoding ``seg_embed`` runs only when
    segment ids are given."""
    return transformers.XLNetLMHeadModel(transformers.XLNetConfig(
        vocab_size=128, d_model=32, n_layer=2, n_head=4, d_inner=64))


def gpt_neox_japanese():
    """GPT-NeoX-Japanese: the last layer's attention adds ``dense_bias``, a parameter of the
    attention module, to its bias-free ``dense`` output after the block returns."""
    return transformers.GPTNeoXJapaneseForCausalLM(transformers.GPTNeoXJapaneseConfig(
        vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_multiple_size=2, bos_token_id=0, eos_token_id=1))


ARCHITECTURES.update({"xlnet": (xlnet, 4), "gpt_neox_japanese": (gpt_neox_japanese, 4)})
