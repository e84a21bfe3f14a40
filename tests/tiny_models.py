"""Tiny random-weight diffusers pipelines built from configs only (no Hugging Face hub access).

Component configs follow diffusers' own fast tests (``get_dummy_components()`` in
tests/pipelines/{flux,stable_diffusion_3,sana,wan,ltx,cogvideo}/...), with these deliberate changes:

* Tokenizers are built locally with the ``tokenizers`` library through the transformers-5 tokenizer
  classes (``CLIPTokenizer``, ``T5Tokenizer``, ``GemmaTokenizer``), which accept ``vocab=``/``merges=``
  directly; the text encoders' ``vocab_size`` is set to cover every id the tokenizer can emit.
  (The tests load "hf-internal-testing/tiny-random-*" from the hub; this module never does.)
* The VAEs and patch sizes are chosen so that the spatial/temporal compression equals the real
  model's (Flux/SD3: 8x VAE, SD3 patch 2; Sana: 32x DC-AE; Wan: 8x/4x; LTX: 32x/8x; CogVideoX: 8x/4x).
  Size/frame rules that depend on ``vae_scale_factor`` therefore behave like the full-size models.
* CogVideoX's ``max_text_seq_length`` is 226 (the real value) so the pipeline default
  ``max_sequence_length=226`` works.

Every ``build_*`` function builds the pipeline, saves it with ``save_pretrained(dir,
safe_serialization=True)`` and returns the directory. ``CALL_KWARGS[name]`` holds a call that runs on CPU
with 2 steps; ``load(name, dir)`` reloads with ``local_files_only=True``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import string
from pathlib import Path

import torch

# --------------------------------------------------------------------------------------------------
# Tokenizers (built locally)
# --------------------------------------------------------------------------------------------------

_WORDS = ["a", "an", "the", "of", "and", "in", "on", "with", "at", "to", "is", "are", "dance", "monkey", "cat", "dog", "painting", "squirrel", "eating", "burger", "photo", "red", "blue", "green", "bad", "quality", "blurry", "deformed", "negative", "different", "prompt", "another", "astronaut", "horse", "riding", "video", "image", "man", "woman", "city", "night", "day", "sky", "sea", "forest"]


def make_clip_tokenizer(model_max_length: int = 77):
    """Byte-level BPE CLIP tokenizer: the 256 byte-alphabet chars, each also with the '</w>' suffix,
    a few merged words, and the two CLIP special tokens. ids: <|startoftext|>=0, <|endoftext|>=1
    (also used as pad/unk, like real CLIP). Returns a ``transformers.CLIPTokenizer`` (== CLIPTokenizerFast in v5)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    # merge a handful of whole words so tokenization is not purely per-character
    for w in _WORDS[:40]:
        if len(w) < 2:
            continue
        cur = w[0]
        for i, ch in enumerate(w[1:], start=1):
            nxt = ch + ("</w>" if i == len(w) - 1 else "")
            merges.append((cur, nxt))
            cur = cur + nxt
            vocab.setdefault(cur, len(vocab))
    # de-duplicate merges while preserving order
    seen = set()
    merges = [m for m in merges if not (m in seen or seen.add(m))]
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    return tok


def _t5_vocab() -> list[tuple[str, float]]:
    pieces: list[tuple[str, float]] = [
        ("<pad>", 0.0),
        ("</s>", 0.0),
        ("<unk>", 0.0),
        ("\u2581", -2.0),
    ]
    seen = {p for p, _ in pieces}

    def add(p, s):
        if p not in seen:
            seen.add(p)
            pieces.append((p, s))

    for w in _WORDS:
        add("\u2581" + w, -3.0)
    chars = string.ascii_letters + string.digits + string.punctuation
    for ch in chars:
        add("\u2581" + ch, -8.0)
    for ch in chars:
        add(ch, -9.0)
    return pieces


def make_t5_tokenizer(model_max_length: int = 512):
    """Unigram T5 tokenizer (transformers.T5Tokenizer == T5TokenizerFast in v5). <pad>=0, </s>=1, <unk>=2.
    No <extra_id_*> sentinels (extra_ids=0). Vocabulary ~ 230 pieces."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=_t5_vocab(), extra_ids=0, model_max_length=model_max_length)


def make_gemma_tokenizer(model_max_length: int = 8192):
    """BPE Gemma tokenizer with byte fallback (transformers.GemmaTokenizer == GemmaTokenizerFast in v5).
    <pad>=0 <eos>=1 <bos>=2 <unk>=3 <mask>=4, then <0x00>..<0xFF>, then characters and a few words."""
    from transformers import GemmaTokenizer

    vocab: dict[str, int] = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    vocab.setdefault("\u2581", len(vocab))
    for ch in string.ascii_letters + string.digits + string.punctuation:
        vocab.setdefault(ch, len(vocab))
    merges: list[tuple[str, str]] = []
    for w in _WORDS[:30]:
        cur = w[0]
        for ch in w[1:]:
            merges.append((cur, ch))
            cur = cur + ch
            vocab.setdefault(cur, len(vocab))
    seen = set()
    merges = [m for m in merges if not (m in seen or seen.add(m))]
    return GemmaTokenizer(
        vocab=vocab, merges=merges, model_max_length=model_max_length, add_bos_token=True
    )


def _vocab_size_for(tok, multiple: int = 64) -> int:
    n = len(tok)
    return ((n + multiple - 1) // multiple) * multiple


# --------------------------------------------------------------------------------------------------
# Text encoders
# --------------------------------------------------------------------------------------------------


def _clip_text_config(tok, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,  # != 2 -> pooled output taken at first eos position
        pad_token_id=tok.pad_token_id,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        vocab_size=_vocab_size_for(tok),
        hidden_act="gelu",
        projection_dim=projection_dim,
        max_position_embeddings=77,
    )


def _t5_config(tok, cls_name: str = "T5Config"):
    import transformers

    cfg_cls = getattr(transformers, cls_name)
    # mirrors hf-internal-testing/tiny-random-t5 sizes (d_model=32, d_ff=37, 4 heads x 8)
    return cfg_cls(
        vocab_size=_vocab_size_for(tok),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
        is_encoder_decoder=True,
    )


def make_t5_encoder(tok):
    from transformers import T5EncoderModel

    torch.manual_seed(0)
    return T5EncoderModel(_t5_config(tok))


def make_umt5_encoder(tok):
    from transformers import UMT5EncoderModel

    torch.manual_seed(0)
    return UMT5EncoderModel(_t5_config(tok, "UMT5Config"))


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _save(pipe, out_dir) -> str:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    bad = [p for p in out_dir.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    if bad:
        raise RuntimeError(f"non-safetensors weight files written: {bad}")
    return str(out_dir)


def _vae_kl_2d(latent_channels: int, n_blocks: int = 4):
    """AutoencoderKL like the Flux/SD3 tests but with 4 blocks -> vae_scale_factor 8 (as real models)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n_blocks,
        up_block_types=("UpDecoderBlock2D",) * n_blocks,
        block_out_channels=(4,) * n_blocks,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


def make_flux(guidance_embeds: bool = False):
    """FluxPipeline: FluxTransformer2DModel + AutoencoderKL(8x) + CLIPTextModel + T5EncoderModel.
    guidance_embeds=False ~ FLUX.1-schnell style, True ~ FLUX.1-dev style (guidance_scale fed to the model)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # = 4 latent channels * 2x2 packing
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # = T5 d_model
        pooled_projection_dim=32,  # = CLIP hidden_size (pooler_output)
        axes_dims_rope=[4, 4, 8],  # sums to attention_head_dim
        guidance_embeds=guidance_embeds,
    )
    tokenizer = make_clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer))
    tokenizer_2 = make_t5_tokenizer()
    text_encoder_2 = make_t5_encoder(tokenizer_2)
    vae = _vae_kl_2d(latent_channels=4)
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        image_encoder=None,
        feature_extractor=None,
    )
    return pipe


def make_sd3():
    """StableDiffusion3Pipeline: SD3Transformer2DModel(patch 2) + AutoencoderKL(8x) + 2x CLIPTextModelWithProjection + T5."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,  # = T5 d_model (CLIP embeds are padded/truncated to this)
        pooled_projection_dim=64,  # = 2 x CLIP projection_dim
        out_channels=4,
        pos_embed_max_size=96,
    )
    tokenizer = make_clip_tokenizer()
    tokenizer_2 = make_clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer))
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer_2))
    tokenizer_3 = make_t5_tokenizer()
    text_encoder_3 = make_t5_encoder(tokenizer_3)
    vae = _vae_kl_2d(latent_channels=4)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
        image_encoder=None,
        feature_extractor=None,
    )
    return pipe


def make_sana():
    """SanaPipeline: SanaTransformer2DModel + AutoencoderDC(32x, 6 tiny stages) + Gemma2Model."""
    from diffusers import (
        AutoencoderDC,
        FlowMatchEulerDiscreteScheduler,
        SanaPipeline,
        SanaTransformer2DModel,
    )
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    transformer = SanaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=4,
        num_cross_attention_heads=2,
        cross_attention_head_dim=4,
        cross_attention_dim=8,
        caption_channels=8,  # = Gemma2 hidden_size
        sample_size=32,  # 32 -> ASPECT_RATIO_1024_BIN when use_resolution_binning=True
    )
    torch.manual_seed(0)
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock",) * 4 + ("EfficientViTBlock",) * 2,
        decoder_block_types=("ResBlock",) * 4 + ("EfficientViTBlock",) * 2,
        encoder_block_out_channels=(8,) * 6,
        decoder_block_out_channels=(8,) * 6,
        encoder_qkv_multiscales=((), (), (), (), (5,), (5,)),
        decoder_qkv_multiscales=((), (), (), (), (5,), (5,)),
        encoder_layers_per_block=(1,) * 6,
        decoder_layers_per_block=(1,) * 6,
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )
    tokenizer = make_gemma_tokenizer()
    torch.manual_seed(0)
    text_encoder = Gemma2Model(
        Gemma2Config(
            head_dim=16,
            hidden_size=8,
            initializer_range=0.02,
            intermediate_size=64,
            max_position_embeddings=8192,
            num_attention_heads=2,
            num_hidden_layers=1,
            num_key_value_heads=2,
            vocab_size=_vocab_size_for(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            attn_implementation="eager",
        )
    )
    pipe = SanaPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    return pipe


def _wan_vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[
            False,
            True,
            True,
        ],  # -> 8x spatial, 4x temporal (config scale_factor_* 8/4)
    )


def make_wan():
    """WanPipeline (T2V, Wan2.1 style): WanTransformer3DModel + AutoencoderKLWan + UMT5EncoderModel."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    vae = _wan_vae()
    tokenizer = make_t5_tokenizer()
    text_encoder = make_umt5_encoder(tokenizer)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,  # = UMT5 d_model
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
        transformer_2=None,
    )
    return pipe


def make_wan_i2v():
    """WanImageToVideoPipeline (Wan2.1 I2V style): transformer in_channels=36 (16 noise + 16 cond + 4 mask),
    image_dim=CLIP-vision hidden size; CLIPVisionModel + CLIPImageProcessor(32px)."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    vae = _wan_vae()
    tokenizer = make_t5_tokenizer()
    text_encoder = make_umt5_encoder(tokenizer)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,  # = image_encoder hidden_size (hidden_states[-2] is used)
    )
    torch.manual_seed(0)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    image_processor = CLIPImageProcessor(crop_size=32, size=32)
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=image_processor,
        image_encoder=image_encoder,
        transformer=transformer,
        transformer_2=None,
    )
    return pipe


def make_ltx():
    """LTXPipeline: LTXVideoTransformer3DModel + AutoencoderKLLTXVideo(32x spatial, 8x temporal) + T5EncoderModel.
    The same saved folder loads as LTXImageToVideoPipeline (identical components)."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,  # = T5 d_model
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        patch_size=4,  # 4 * 2^3 = 32x spatial like LTX-Video 0.9
        patch_size_t=1,  # 2^3 = 8x temporal
        encoder_causal=True,
        decoder_causal=False,
    )
    # diffusers' test disables framewise en/decoding for the tiny VAE; the setting is not saved in the config.
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    tokenizer = make_t5_tokenizer(model_max_length=128)  # LTX uses tokenizer.model_max_length
    text_encoder = make_t5_encoder(tokenizer)
    pipe = LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    return pipe


def make_cogvideox():
    """CogVideoXPipeline (CogVideoX 1.0 style, sincos pos-emb, DDIM): CogVideoXTransformer3DModel +
    AutoencoderKLCogVideoX(8x spatial, 4x temporal) + T5EncoderModel."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,  # heads*dim must be divisible by 16 (3D sincos pos-emb)
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,  # = T5 d_model
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,  # must equal the max_sequence_length used at call time (default 226)
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    tokenizer = make_t5_tokenizer(model_max_length=226)
    text_encoder = make_t5_encoder(tokenizer)
    scheduler = CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )
    pipe = CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )
    return pipe


# --------------------------------------------------------------------------------------------------
# Loading + the calls verified to work on CPU
# --------------------------------------------------------------------------------------------------

PIPELINE_CLASS = {
    "flux": "FluxPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "sana": "SanaPipeline",
    "wan": "WanPipeline",
    "wan_i2v": "WanImageToVideoPipeline",
    "ltx": "LTXPipeline",
    "ltx_i2v": "LTXImageToVideoPipeline",  # loads the ltx folder
    "cogvideox": "CogVideoXPipeline",
}


def build_flux(out_dir, guidance_embeds: bool = False) -> str:
    return _save(make_flux(guidance_embeds=guidance_embeds), out_dir)


def build_sd3(out_dir) -> str:
    return _save(make_sd3(), out_dir)


def build_sana(out_dir) -> str:
    return _save(make_sana(), out_dir)


def build_wan(out_dir) -> str:
    return _save(make_wan(), out_dir)


def build_wan_i2v(out_dir) -> str:
    return _save(make_wan_i2v(), out_dir)


def build_ltx(out_dir) -> str:
    """Also serves LTXImageToVideoPipeline: load the folder with LTXImageToVideoPipeline.from_pretrained."""
    return _save(make_ltx(), out_dir)


def build_cogvideox(out_dir) -> str:
    return _save(make_cogvideox(), out_dir)


# --------------------------------------------------------------------------------------------------
# IP-Adapters (reference images): adapter safetensors + image_encoder/ subfolder, random weights
# --------------------------------------------------------------------------------------------------


def _save_ip_adapter(out_dir, tensors: dict, encoder, processor=None,
                     weight_name: str = "ip-adapter.safetensors") -> str:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(out_dir / weight_name))
    encoder.save_pretrained(str(out_dir / "image_encoder"), safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(str(out_dir / "image_encoder"))
    return str(out_dir)


def build_flux_ip_adapter(out_dir) -> str:
    """FLUX IP-Adapter in the XLabs file layout that ``FluxIPAdapterMixin.load_ip_adapter`` reads:
    ``ip_adapter_proj_model.{proj,norm}.*`` (an ImageProjection: CLIP image embeds -> 4 tokens
    of ``joint_attention_dim``) and, per double-stream block N,
    ``double_blocks.N.processor.ip_adapter_double_stream_{k,v}_proj.*`` (joint_attention_dim ->
    inner_dim), plus a
    CLIPVisionModelWithProjection in ``image_encoder/``. Fits ``make_flux()``'s transformer
    (1 double-stream block, joint_attention_dim 32, inner_dim 2 x 16)."""
    from diffusers.models.embeddings import ImageProjection
    from diffusers.models.transformers.transformer_flux import FluxIPAdapterAttnProcessor
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    joint_dim, inner_dim = 32, 32
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
        num_attention_heads=4, image_size=32, patch_size=4))
    projection = ImageProjection(image_embed_dim=32, cross_attention_dim=joint_dim,
                                 num_image_text_embeds=4)
    tensors = {f"ip_adapter_proj_model.{k.replace('image_embeds', 'proj')}": v
               for k, v in projection.state_dict().items()}
    attention = FluxIPAdapterAttnProcessor(hidden_size=inner_dim, cross_attention_dim=joint_dim)
    for key, value in attention.state_dict().items():  # to_k_ip.0.weight, to_v_ip.0.bias, ...
        name, _, param = key.split(".")
        kind = "k" if name == "to_k_ip" else "v"
        tensors[f"double_blocks.0.processor.ip_adapter_double_stream_{kind}_proj.{param}"] = value
    return _save_ip_adapter(out_dir, tensors, encoder, weight_name="ip_adapter.safetensors")


def build_sd3_ip_adapter(out_dir) -> str:
    """SD3 IP-Adapter as ``SD3IPAdapterMixin.load_ip_adapter`` reads it from safetensors:
    ``image_proj.*`` (an IPAdapterTimeImageProjection: SigLIP hidden states -> tokens of the
    transformer's inner dim; depth 4, 64-dim heads) and ``ip_adapter.<layer>.*`` (one
    SD3IPAdapterJointAttnProcessor2_0 per transformer block), plus a SiglipVisionModel and
    SiglipImageProcessor in ``image_encoder/``. Fits ``make_sd3()``'s transformer."""
    from diffusers.models.attention_processor import SD3IPAdapterJointAttnProcessor2_0
    from diffusers.models.embeddings import IPAdapterTimeImageProjection
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    encoder = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=4))
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    inner_dim, head_dim, hidden_dim = 32, 8, 64  # make_sd3: 4 heads x 8
    projection = IPAdapterTimeImageProjection(embed_dim=32, output_dim=inner_dim,
                                              hidden_dim=hidden_dim, heads=hidden_dim // 64,
                                              num_queries=4, timestep_in_dim=32)
    tensors = {f"image_proj.{k}": v for k, v in projection.state_dict().items()}
    attention = SD3IPAdapterJointAttnProcessor2_0(hidden_size=inner_dim,
                                                  ip_hidden_states_dim=inner_dim,
                                                  head_dim=head_dim, timesteps_emb_dim=hidden_dim)
    tensors.update({f"ip_adapter.0.{k}": v for k, v in attention.state_dict().items()})
    return _save_ip_adapter(out_dir, tensors, encoder, processor)


MAKERS = {
    "flux": make_flux,
    "sd3": make_sd3,
    "sana": make_sana,
    "wan": make_wan,
    "wan_i2v": make_wan_i2v,
    "ltx": make_ltx,
    "cogvideox": make_cogvideox,
}

BUILDERS = {
    "flux": build_flux,
    "sd3": build_sd3,
    "sana": build_sana,
    "wan": build_wan,
    "wan_i2v": build_wan_i2v,
    "ltx": build_ltx,
    "cogvideox": build_cogvideox,
}

_P = "a red cat eating a burger"

# Calls verified on CPU (2 steps). generator is added by the runner.
CALL_KWARGS = {
    "flux": dict(
        prompt=_P,
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=3.5,
        max_sequence_length=64,
        output_type="np",
    ),
    "sd3": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=5.0,
        max_sequence_length=64,
        output_type="np",
    ),
    "sana": dict(
        prompt=_P,
        negative_prompt="",
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=4.5,
        use_resolution_binning=False,
        complex_human_instruction=None,
        max_sequence_length=64,
        output_type="np",
    ),
    "wan": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=32,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=5.0,
        max_sequence_length=64,
        output_type="np",
    ),
    "wan_i2v": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=32,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=5.0,
        max_sequence_length=64,
        output_type="np",
    ),
    "ltx": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=3.0,
        max_sequence_length=64,
        output_type="np",
    ),
    "ltx_i2v": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=3.0,
        max_sequence_length=64,
        output_type="np",
    ),
    "cogvideox": dict(
        prompt=_P,
        negative_prompt="blurry",
        height=32,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=6.0,
        output_type="np",
    ),
}
# image inputs (PIL) for the i2v pipelines are added by `call_kwargs()`
_NEEDS_IMAGE = {"wan_i2v", "ltx_i2v"}


def call_kwargs(name: str, seed: int = 0) -> dict:
    kw = dict(CALL_KWARGS[name])
    if name in _NEEDS_IMAGE:
        from PIL import Image

        kw["image"] = Image.new("RGB", (kw["width"], kw["height"]), (200, 80, 40))
    kw["generator"] = torch.Generator("cpu").manual_seed(seed)
    return kw


def load(name: str, model_dir, generic: bool = True):
    """Reload a saved tiny pipeline from disk only. generic=True uses DiffusionPipeline.from_pretrained
    (class taken from model_index.json); ltx_i2v always uses LTXImageToVideoPipeline on the ltx folder."""
    import diffusers

    if name == "ltx_i2v" or not generic:
        cls = getattr(diffusers, PIPELINE_CLASS[name])
    else:
        cls = diffusers.DiffusionPipeline
    pipe = cls.from_pretrained(str(model_dir), local_files_only=True)
    if name in ("ltx", "ltx_i2v"):
        pipe.vae.use_framewise_encoding = False
        pipe.vae.use_framewise_decoding = False
    pipe.set_progress_bar_config(disable=True)
    return pipe


def ensure_ftfy(shim: bool = True) -> str:
    """WanImageToVideoPipeline (also WanAnimate/WanVACE/WanVideoToVideo) call ``ftfy.fix_text`` unconditionally
    when encoding a text prompt, but import ftfy only if installed -> ``NameError: name 'ftfy' is not defined``.
    (WanPipeline T2V guards the call with is_ftfy_available().) Returns "ftfy" if the real package is importable;
    otherwise, with shim=True, injects an identity ``fix_text`` into those pipeline modules and returns "shim"."""
    import importlib
    import types

    try:
        import ftfy  # noqa: F401

        real = True
    except ImportError:
        real = False
    stub = None if real else types.SimpleNamespace(fix_text=lambda text, *a, **k: text)
    for mod in (
        "pipeline_wan_i2v",
        "pipeline_wan_animate",
        "pipeline_wan_vace",
        "pipeline_wan_video2video",
    ):
        try:
            m = importlib.import_module(f"diffusers.pipelines.wan.{mod}")
        except Exception:
            continue
        if not hasattr(m, "ftfy"):
            if real:
                import ftfy as _f

                m.ftfy = _f
            elif shim:
                m.ftfy = stub
    return "ftfy" if real else ("shim" if shim else "missing")


def adapter_support(pipeline_cls) -> dict:
    """Introspect LoRA / IP-Adapter support of a pipeline class."""
    from diffusers import loaders

    mixins = [
        c.__name__ for c in pipeline_cls.__mro__ if c.__module__.startswith("diffusers.loaders")
    ]
    ip_mixins = tuple(
        getattr(loaders, n)
        for n in ("IPAdapterMixin", "FluxIPAdapterMixin", "SD3IPAdapterMixin")
        if hasattr(loaders, n)
    )
    return {
        "lora": hasattr(pipeline_cls, "load_lora_weights"),
        "lora_mixin": [m for m in mixins if "Lora" in m],
        "ip_adapter": hasattr(pipeline_cls, "load_ip_adapter")
        or issubclass(pipeline_cls, ip_mixins),
        "ip_adapter_mixin": [m for m in mixins if "IPAdapter" in m],
        "single_file": hasattr(pipeline_cls, "from_single_file"),
    }
