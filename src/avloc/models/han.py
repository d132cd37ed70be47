"""HAN: the hybrid attention network with attentive multimodal MIL pooling for weakly-supervised
audio-visual video parsing (Tian, Li & Xu, "Unified Multisensory Perception: Weakly-Supervised
Audio-Visual Video Parsing", ECCV 2020; official code ``YapengTian/AVVP-ECCV20``).

Task. A 10-second clip of T = 10 one-second segments comes with video-level labels only (which of C = 25
events occur, not when, not whether heard or seen); the model must say, per segment, which events are
audible and which are visible.

Input features (Sec. 5.1). Audio a_t: VGGish, 128-d per segment. Visual: ResNet-152 at 8 frames per
second (2048-d, averaged per segment) and R(2+1)D-18 per segment (512-d); both are projected to D = 512
and fused by a linear layer of their concatenation into v_t.

Hybrid attention (Sec. 4.1). Each modality attends to its own segments (self-attention: temporal
context) and to the other modality's (cross-modal attention: the sound of a seen dog, the sight of a heard
one), with residual connections, layer norm and a feed-forward block
(:class:`~avloc.models.avvp_blocks.HybridAttentionLayer`); one layer, shared by both directions.

Prediction and attentive MMIL pooling (Sec. 4.2). A shared linear layer + sigmoid gives per-segment,
per-modality class probabilities P[t, m, c]; the video-level probability weighs them by a softmax over
time and a softmax over the two modalities, both attention logits linear in the same features
(:func:`~avloc.models.avvp_blocks.attentive_mmil`). Training (:mod:`avloc.losses.avvp_losses`) supervises
the video probability with the weak labels and the audio and visual video probabilities with smoothed
copies of them ("guided" modality-aware labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avloc.models.avvp_blocks import HybridAttentionLayer, MMILHead, attentive_mmil
from avloc.models.base import AVModel, AVVPInputs, Batch
from avloc.models.outputs import AVVPOutput
from avloc.registry import MODELS


def check_llp_inputs(batch: Batch, audio_dim: int, visual_dim: int, st_dim: int, who: str) -> tuple[Tensor, ...]:
    """The three LLP feature tensors, checked: audio (B, T, Da), visual (B, T * K, Dv), visual_st (B, T, Ds)."""
    for key in ("audio", "visual", "visual_st"):
        if key not in batch:
            raise ValueError(f"{who}: the batch has no '{key}' (keys: {sorted(batch)})")
    audio, visual, st = batch["audio"], batch["visual"], batch["visual_st"]
    b, t = audio.shape[:2] if audio.dim() == 3 else (0, 0)
    for key, x, dim in (("audio", audio, audio_dim), ("visual_st", st, st_dim)):
        if x.dim() != 3 or x.shape[-1] != dim or tuple(x.shape[:2]) != (b, t):
            raise ValueError(f"{who}: '{key}' must be (B, T, {dim}) with the audio's B, T, got {tuple(x.shape)}")
    if visual.dim() != 3 or visual.shape[0] != b or visual.shape[-1] != visual_dim or visual.shape[1] % t:
        raise ValueError(f"{who}: 'visual' must be (B, T * K, {visual_dim}) frames (K per segment), got "
                         f"{tuple(visual.shape)} for T = {t}")
    return audio, visual, st


def segment_visual(visual: Tensor, segments: int) -> Tensor:
    """(B, T * K, D) frame features -> (B, T, D), the mean of each segment's K frames."""
    b, n, d = visual.shape
    return visual.view(b, segments, n // segments, d).mean(dim=2)


def llp_example_batch(batch_size: int, generator: torch.Generator, audio_dim: int, visual_dim: int, st_dim: int,
                      num_classes: int, segments: int = 10, frames: int = 8) -> dict[str, Tensor]:
    """A random batch with the keys of the ``llp`` dataset."""
    b, t = batch_size, segments
    labels = (torch.rand(b, num_classes, generator=generator) < 0.15).float()
    labels[torch.arange(b), torch.randint(0, num_classes, (b,), generator=generator)] = 1.0
    seg = (torch.rand(b, 2, t, num_classes, generator=generator) < 0.5).float() * labels[:, None, None]
    return {
        "audio": torch.randn(b, t, audio_dim, generator=generator),
        "visual": torch.randn(b, t * frames, visual_dim, generator=generator),
        "visual_st": torch.randn(b, t, st_dim, generator=generator),
        "video_labels": labels,
        "audio_labels": seg[:, 0],
        "visual_labels": seg[:, 1],
        "index": torch.arange(b),
    }


@MODELS.register("han")
class HAN(AVModel):
    """Hybrid attention network + attentive MMIL pooling on the LLP features.

    Inputs: ``audio`` (B, T, Da), ``visual`` (B, T * K, Dv) frames, ``visual_st`` (B, T, Ds).
    Returns an :class:`AVVPOutput` (per-segment, per-modality probabilities and the pooled ones).
    """

    task = "avvp"

    @dataclass
    class Config(AVVPInputs):
        hidden: int = 512  # D: width of every segment feature
        heads: int = 1  # attention heads (official: 1)
        ffn: int = 512  # feed-forward width of the HAN layer (official: 512)
        layers: int = 1  # HAN layers (official: 1)
        dropout: float = 0.1  # in the attention weights, residual branches and feed-forward block

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.layers < 1 or cfg.hidden % cfg.heads:
            raise ValueError(f"han: layers >= 1 and hidden divisible by heads, got {cfg.layers}, {cfg.hidden}/{cfg.heads}")
        d = cfg.hidden
        self.audio_proj = nn.Linear(cfg.audio_dim, d)
        self.frame_proj = nn.Linear(cfg.visual_dim, d)
        self.snippet_proj = nn.Linear(cfg.st_dim, d)
        self.visual_fusion = nn.Linear(2 * d, d)
        self.han = nn.ModuleList(HybridAttentionLayer(d, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers))
        self.head = MMILHead(d, cfg.num_classes)

    def forward(self, batch: Batch) -> AVVPOutput:
        audio, visual, st = check_llp_inputs(batch, self.cfg.audio_dim, self.cfg.visual_dim, self.cfg.st_dim, "han")
        t = audio.shape[1]
        a = self.audio_proj(audio)  # (B, T, D)
        # The official code projects every frame, then averages each second's frames; both are linear, so
        # averaging first is the same function, K times cheaper.
        frames = self.frame_proj(segment_visual(visual, t))  # (B, T, D)
        v = self.visual_fusion(torch.cat([frames, self.snippet_proj(st)], dim=-1))  # (B, T, D)
        for layer in self.han:  # both directions read the previous layer's features
            a, v = layer(a, v), layer(v, a)  # (B, T, D) each
        x = torch.stack([a, v], dim=2)  # (B, T, 2, D): modality 0 audio, 1 visual
        prob, time_logits, modality_logits = self.head(x)  # (B, T, 2, C) each
        video, audio_prob, visual_prob = attentive_mmil(prob, time_logits, modality_logits)  # (B, C) each
        return AVVPOutput(segment_prob=prob, video_prob=video, audio_prob=audio_prob, visual_prob=visual_prob)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        c = self.cfg
        return llp_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.st_dim, c.num_classes)
