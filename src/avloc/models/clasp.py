"""CLASP: cross-modal salient anchors for weakly-supervised dense audio-visual event localization.

The paper (arXiv 2508.04566) names three modules but its equations are not public; this is our concrete
design of them (see docs / reference notes), read top to bottom like a method section:

1. Encoders + unimodal heads: audio and visual features are encoded over time and each gets its own
   per-timestep class head (trained by video-level MIL), so each modality votes for event classes.
2. MEAE (mutual event agreement evaluation): per timestep, agreement = 1 - JS divergence between the
   audio and the visual class distributions, times the joint class confidence max_c sqrt(p_a p_v).
   Off: salience is the plain fused confidence max_c (p_a + p_v) / 2.
3. CSAI (cross-modal salient anchor identification): global anchors = the top-ceil(T/r) most salient
   valid timesteps of the video; local anchors = the most salient valid timestep of each window of ``w``
   steps. The audio and visual features at the anchors are fused into anchor features.
4. ATP (anchor-based temporal propagation): every timestep of each modality attends to the anchors
   (single-head scaled dot-product attention, padded/invalid anchors masked, logits biased by
   ``salience_bias * log(anchor salience)`` so the most trustworthy anchors speak loudest) and adds what
   it reads (residual + LayerNorm), so anchor semantics reach the whole extent of an event.
5. Fused branch: the propagated audio and visual features are fused, convolved over time and classified
   per timestep; its top-k MIL pooling gives the video prediction used at inference.

Switching ``atp`` off removes anchors altogether (no CSAI layers are built): the model is then the
three-branch MIL network, which isolates what the anchors add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from avloc.models.base import AVModel, Batch
from avloc.models.dense_blocks import (
    AGREEMENTS,
    Fusion,
    MaskedConv1d,
    TemporalEncoder,
    check_dense_inputs,
    class_head,
    masked_topk_mean,
    topk_counts,
)
from avloc.models.mil import dense_example_batch
from avloc.registry import MODELS


def meae_salience(logits_a: torch.Tensor, logits_v: torch.Tensor, kind: str) -> torch.Tensor:
    """MEAE score per timestep: A/V class agreement times joint confidence. (B,T,C) x2 -> (B,T) in [0,1]."""
    agreement = AGREEMENTS[kind](logits_a, logits_v)
    joint = torch.sqrt(torch.sigmoid(logits_a) * torch.sigmoid(logits_v)).amax(dim=-1)
    return agreement * joint


def confidence_salience(logits_a: torch.Tensor, logits_v: torch.Tensor) -> torch.Tensor:
    """Without MEAE: confidence of the averaged A/V prediction. (B,T,C) x2 -> (B,T) in [0,1]."""
    return (0.5 * (torch.sigmoid(logits_a) + torch.sigmoid(logits_v))).amax(dim=-1)


def global_anchors(salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-ceil(T_valid / ratio) valid timesteps by salience.

    salience: (B, T); mask: (B, T) bool -> (index (B, K) long, valid (B, K) bool), K = max k over the batch.
    """
    k = topk_counts(mask, ratio)
    kmax = int(k.max())
    filled = salience.masked_fill(~mask, float("-inf"))
    index = filled.topk(kmax, dim=1).indices
    valid = torch.arange(kmax, device=salience.device).unsqueeze(0) < k.unsqueeze(1)
    return index, valid


def local_anchors(salience: torch.Tensor, mask: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The most salient valid timestep of each non-overlapping window of ``window`` steps.

    salience: (B, T); mask: (B, T) bool -> (index (B, W) long, valid (B, W) bool), W = ceil(T / window);
    a window with no valid step gives an invalid anchor.
    """
    b, t = salience.shape
    n = -(-t // window)
    pad = n * window - t
    filled = F.pad(salience.masked_fill(~mask, float("-inf")), (0, pad), value=float("-inf"))
    best = filled.view(b, n, window).argmax(dim=2)  # (B, W) offset inside each window
    index = best + torch.arange(n, device=salience.device).unsqueeze(0) * window
    valid = F.pad(mask, (0, pad), value=False).view(b, n, window).any(dim=2)
    return index.clamp(max=t - 1), valid


def gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x: (B, T, D), index: (B, K) -> (B, K, D)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class AnchorPropagation(nn.Module):
    """ATP for one modality: x_t <- LayerNorm(x_t + W_o Attn(W_q x_t, W_k f, W_v f)) over valid anchors f.

    x: (B, T, d); anchors: (B, K, d); anchor_valid: (B, K) bool (at least one True per video);
    anchor_bias: (B, K) added to every timestep's attention logits (prefers the more salient anchors).
    """

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(
        self, x: torch.Tensor, anchors: torch.Tensor, anchor_valid: torch.Tensor, mask: torch.Tensor,
        anchor_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        att = torch.einsum("btd,bkd->btk", self.q(x), self.k(anchors)) * self.scale + anchor_bias.unsqueeze(1)
        att = att.masked_fill(~anchor_valid.unsqueeze(1), float("-inf")).softmax(dim=-1)  # (B, T, K)
        read = torch.einsum("btk,bkd->btd", att, self.v(anchors))
        out = self.norm(x + self.drop(self.o(read))) * mask.unsqueeze(-1).to(x.dtype)
        return out, att


@MODELS.register("clasp")
class CLASP(AVModel):
    """CLASP for W-DAVEL (our design of MEAE + CSAI + ATP; see the module docstring).

    Inputs: audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool.
    Outputs: ``cas`` (B, T, C) fused per-timestep class probabilities (sigmoid, 0 at padding),
    ``cas_logits``, ``video_logits`` (B, C) (fused branch), ``audio_logits`` / ``visual_logits`` (B, T, C)
    and ``audio_video_logits`` / ``visual_video_logits`` (B, C) (unimodal branches), ``salience`` (B, T);
    with ATP on also ``anchor_index`` / ``anchor_valid`` (B, K) and ``anchor_attention`` (B, T, K).
    """

    task = "dense"

    @dataclass
    class Config:
        audio_dim: int = 128  # audio feature size (VGGish: 128); filled from the data
        visual_dim: int = 2048  # visual feature size (I3D RGB+flow: 2048); filled from the data
        num_classes: int = 100  # event classes (UnAV-100: 100); filled from the data
        hidden: int = 256  # width of every per-timestep feature
        encoder_layers: int = 1  # residual masked temporal conv blocks per modality encoder
        fused_layers: int = 1  # masked temporal conv blocks after fusing the propagated features
        kernel: int = 3  # temporal kernel size (odd)
        dropout: float = 0.3  # dropout on hidden features
        fusion: str = "concat"  # fused branch: how propagated A and V features are joined (concat | sum | mean)
        topk_ratio: float = 8.0  # MIL pooling of every branch: top ceil(T_valid / topk_ratio) steps
        prior_prob: float = 0.01  # initial class probability of every class head (bias = logit of it)
        meae: bool = True  # anchors by A/V agreement x confidence (False: by fused confidence only)
        agreement: str = "js"  # MEAE discrepancy: js (Jensen-Shannon) | l1 (total variation)
        global_anchors: bool = True  # CSAI global anchors: top ceil(T_valid / global_ratio) salient steps
        global_ratio: float = 8.0  # see global_anchors
        local_anchors: bool = True  # CSAI local anchors: the most salient step of each window
        window: int = 8  # local anchor window, in timesteps
        anchor_fusion: str = "concat"  # how the audio and visual features at an anchor are joined
        atp: bool = True  # anchor-based temporal propagation (False: no anchors at all)
        salience_bias: float = 1.0  # ATP attention logits get salience_bias * log(anchor salience); 0 = plain

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.agreement not in AGREEMENTS:
            raise ValueError(f"clasp: agreement must be one of {sorted(AGREEMENTS)}, got {cfg.agreement!r}")
        if cfg.atp and not (cfg.global_anchors or cfg.local_anchors):
            raise ValueError("clasp: atp needs global_anchors or local_anchors (or set atp: false)")
        if cfg.window < 1 or cfg.global_ratio < 1.0 or cfg.topk_ratio < 1.0:
            raise ValueError("clasp: window must be >= 1 and global_ratio, topk_ratio >= 1")
        self.enc_a = TemporalEncoder(cfg.audio_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.enc_v = TemporalEncoder(cfg.visual_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.head_a = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        self.head_v = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        if cfg.atp:
            self.anchor_fuse = Fusion(cfg.anchor_fusion, cfg.hidden)
            self.atp_a = AnchorPropagation(cfg.hidden, cfg.dropout)
            self.atp_v = AnchorPropagation(cfg.hidden, cfg.dropout)
        self.fuse = Fusion(cfg.fusion, cfg.hidden)
        self.fused_convs = nn.ModuleList(
            MaskedConv1d(cfg.hidden, cfg.hidden, cfg.kernel) for _ in range(cfg.fused_layers)
        )
        self.head_f = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        self.drop = nn.Dropout(cfg.dropout)

    def select_anchors(self, salience: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CSAI: global and/or local anchor indices (B, K) and validity (B, K) from salience (B, T)."""
        parts = []
        if self.cfg.global_anchors:
            parts.append(global_anchors(salience, mask, self.cfg.global_ratio))
        if self.cfg.local_anchors:
            parts.append(local_anchors(salience, mask, self.cfg.window))
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        audio, visual, mask = batch["audio"], batch["visual"], batch["mask"]
        check_dense_inputs(audio, visual, mask)
        cfg = self.cfg
        a = self.enc_a(audio, mask)  # (B, T, d)
        v = self.enc_v(visual, mask)
        logits_a = self.head_a(self.drop(a))  # (B, T, C)
        logits_v = self.head_v(self.drop(v))
        with torch.no_grad():  # anchors are chosen, not learned through: salience carries no gradient
            if cfg.meae:
                salience = meae_salience(logits_a, logits_v, cfg.agreement)
            else:
                salience = confidence_salience(logits_a, logits_v)
            salience = salience * mask
        out: dict[str, torch.Tensor] = {"salience": salience}
        if cfg.atp:
            index, valid = self.select_anchors(salience, mask)
            anchors = self.anchor_fuse(gather_steps(a, index), gather_steps(v, index))  # (B, K, d)
            bias = cfg.salience_bias * torch.log(salience.gather(1, index).clamp(min=1e-4))  # (B, K)
            a, att_a = self.atp_a(a, anchors, valid, mask, bias)
            v, _ = self.atp_v(v, anchors, valid, mask, bias)
            out.update(anchor_index=index, anchor_valid=valid, anchor_attention=att_a)
        h = self.fuse(a, v)
        for conv in self.fused_convs:
            h = h + self.drop(torch.relu(conv(h, mask)))
        logits_f = self.head_f(self.drop(h))
        out.update(
            cas_logits=logits_f,
            cas=torch.sigmoid(logits_f) * mask.unsqueeze(-1),
            video_logits=masked_topk_mean(logits_f, mask, cfg.topk_ratio),
            audio_logits=logits_a,
            visual_logits=logits_v,
            audio_video_logits=masked_topk_mean(logits_a, mask, cfg.topk_ratio),
            visual_video_logits=masked_topk_mean(logits_v, mask, cfg.topk_ratio),
        )
        return out

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.cfg
        return dense_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.num_classes, steps=12)
