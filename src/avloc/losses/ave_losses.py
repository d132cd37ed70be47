"""Losses of the AVE methods PSP and VSCG, fully and weakly supervised.

Fully supervised losses read the segment-level keys (``segment_labels``, ``event_mask``, ``video_class``);
weakly supervised ones read only the video-level ``prob_label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from torch import nn

from avloc.losses.base import Loss, need
from avloc.models.outputs import AVEOutput
from avloc.registry import LOSSES

L1_EPS = 1e-8  # guard of the AVPS normalisation (official `sum + 1e-8`)
Tensors = Mapping[str, torch.Tensor]


def avps_targets(event_mask: torch.Tensor) -> torch.Tensor:
    """PSP's soft pair labels, built fresh from each batch: (B, T) event mask -> (B, T) targets.

    ``1/k`` on the k event segments, 0 on background. A video with no event segment gets ``1/T``
    everywhere, as the official code does (it then treats the background column as "the" category).
    The official loader fills these targets into a buffer it never clears, so background positions keep
    the 1/k of earlier batches (about a third of training samples get a wrong target); here nothing is
    carried between batches.
    """
    k = event_mask.sum(-1, keepdim=True)
    uniform = torch.full_like(event_mask, 1.0 / event_mask.shape[-1])
    return torch.where(k > 0, event_mask / k.clamp(min=1.0), uniform)


AVPS_TARGETS = ("fresh", "carried")


class CarriedTargets(nn.Module):
    """The official loaders' AVPS targets (``avps_targets: carried``), kept to reproduce the official
    training: one (rows, T) buffer, zero at the start, that is never cleared. Each batch writes ``1/k``
    at the event segments of the video in row i (all T segments for an event-free video) and leaves the
    other entries as earlier batches left them, so a background segment inherits the ``1/k`` of an earlier
    video in the same row. The buffer is not part of a checkpoint: a resumed run starts it from zeros.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buffer", torch.zeros(0, 0), persistent=False)

    def forward(self, event_mask: torch.Tensor) -> torch.Tensor:
        """event_mask (B, T) -> targets (B, T) for this batch (the buffer's first B rows after the write)."""
        b, t = event_mask.shape
        buf = self.buffer
        if buf.shape[0] < b or buf.shape[1] != t:
            grown = event_mask.new_zeros(max(b, buf.shape[0]), t)
            if buf.shape[1] == t:
                grown[: buf.shape[0]] = buf
            buf = grown
        fresh = avps_targets(event_mask)  # (B, T)
        written = (event_mask > 0) | (event_mask.sum(-1, keepdim=True) == 0)  # (B, T) the entries set
        buf = buf.clone()
        buf[:b] = torch.where(written, fresh, buf[:b])
        self.buffer = buf
        return buf[:b]


def avps_loss(similarity: torch.Tensor, event_mask: torch.Tensor, targets: torch.Tensor | None = None
              ) -> torch.Tensor:
    """PSP's audio-visual pair similarity loss: MSE between ``relu(cos_t) / sum_t relu(cos_t)`` and the
    soft labels (``targets``, default :func:`avps_targets` of ``event_mask``). similarity, event_mask: (B, T).
    """
    s = F.relu(similarity)
    s = s / (s.sum(-1, keepdim=True) + L1_EPS)
    return F.mse_loss(s, avps_targets(event_mask) if targets is None else targets)


def make_targets(kind: str, who: str) -> CarriedTargets | None:
    """The AVPS target builder of ``avps_targets`` (None: fresh per batch)."""
    if kind not in AVPS_TARGETS:
        raise ValueError(f"{who}: avps_targets must be one of {AVPS_TARGETS}, got {kind!r}")
    return CarriedTargets() if kind == "carried" else None


def negative_pair_filter_loss(similarity: torch.Tensor, event_mask: torch.Tensor) -> torch.Tensor:
    """VSCG's negative pair filter (NPF) loss, as implemented here.

    ``L = sum_{b,t} m_bt (1 - cos_bt) / max(1, sum_{b,t} m_bt)``: every positive (event) audio-visual
    pair is pulled towards cosine 1, and every negative (background) pair is filtered out of the loss,
    so it is neither pulled together nor pushed into a distribution over time. PSP's AVPS instead
    normalises relu(cos) over all 10 segments and regresses background pairs to 0.
    The official VSCG code ships no separate NPF term (it uses PSP's AVPS with weight 1) and the paper's
    equation could not be consulted, so this definition is our reading of "filter out the irrelevant
    (negative) segment pairs". similarity, event_mask: (B, T).
    """
    return ((1.0 - similarity) * event_mask).sum() / event_mask.sum().clamp(min=1.0)


def video_class_ce(scores: torch.Tensor, video_class: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of event-class ``scores`` (B, E) vs ``video_class`` (B,), ignoring videos whose class
    is background (== E: no event to classify); 0 when the batch has none."""
    valid = video_class < scores.shape[-1]
    per = F.cross_entropy(scores, video_class.clamp(max=scores.shape[-1] - 1), reduction="none")
    return (per * valid).sum() / valid.sum().clamp(min=1)


@LOSSES.register("psp")
class PSPLoss(Loss):
    """PSP fully supervised: per-segment cross-entropy + ``lambda_avps`` x AVPS.

    Reads ``out.class_logits`` (B, T, C), ``out.av_similarity`` (B, T), ``batch['segment_labels']`` (B, T),
    ``batch['event_mask']`` (B, T)."""

    @dataclass
    class Config:
        lambda_avps: float = 100.0  # weight of the AVPS pair-similarity loss (PSP README: --LAMBDA 100)
        avps_targets: str = "fresh"  # fresh (per batch) | carried (the official loader's uncleared buffer)
        avps_warmup_steps: int = 0  # AVPS weight ramps linearly up to lambda_avps over these first steps

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        if cfg.avps_warmup_steps < 0:
            raise ValueError(f"psp loss: avps_warmup_steps must be >= 0, got {cfg.avps_warmup_steps}")
        self.carried = make_targets(cfg.avps_targets, "psp loss")

    def avps_weight(self) -> float:
        """``lambda_avps``, times ``(step + 1) / avps_warmup_steps`` during the warm-up.

        Why a warm-up: at initialisation few segments may have a positive audio-visual cosine, so
        ``relu(cos) / sum relu(cos)`` is spiky and the 100 x AVPS gradient can be ~30x the CE gradient (seed
        dependent, ``scripts/recipe_grad_share.py``); Adam's second moments keep that spike for hundreds of
        steps and slow the classifier's start (``docs/training_recipe.md``)."""
        warm = self.cfg.avps_warmup_steps
        return self.cfg.lambda_avps * (min(1.0, (self.step + 1) / warm) if warm > 0 else 1.0)

    def forward(self, out: AVEOutput, batch: Tensors) -> dict[str, torch.Tensor]:
        logits = need(out, "class_logits", "psp loss")
        labels = need(batch, "segment_labels", "psp loss")
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        sim = need(out, "av_similarity", "psp loss")
        mask = need(batch, "event_mask", "psp loss")
        avps = avps_loss(sim, mask, None if self.carried is None else self.carried(mask))
        return {"loss": ce + self.avps_weight() * avps, "ce": ce.detach(), "avps": avps.detach()}


PAIR_TERMS = ("npf", "psp", "ce")


@LOSSES.register("vscg")
class VSCGLoss(Loss):
    """VSCG fully supervised: ``w_relevance`` BCEWithLogits(event_logits, event_mask) + ``w_category``
    CE(class_logits, video_class) + ``w_pair`` x pair term.

    ``pair`` (paper Table V): ``npf`` (negative pair filter, :func:`negative_pair_filter_loss`), ``psp``
    (PSP's AVPS, :func:`avps_loss`; the official VSCG code uses this with weight 1), ``ce`` (no pair term).
    Videos whose ``video_class`` is background (>= the number of category logits) add no category loss.
    """

    @dataclass
    class Config:
        w_relevance: float = 1.0  # weight of the per-segment event/background BCE
        w_category: float = 1.0  # weight of the video-level category cross-entropy
        w_pair: float = 1.0  # weight of the pair-similarity term
        pair: str = "npf"  # pair term (Table V): npf | psp | ce
        avps_targets: str = "fresh"  # pair psp: fresh (per batch) | carried (the official uncleared buffer)

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        if cfg.pair not in PAIR_TERMS:
            raise ValueError(f"vscg loss: pair must be one of {PAIR_TERMS}, got {cfg.pair!r}")
        self.carried = make_targets(cfg.avps_targets, "vscg loss")

    def forward(self, out: AVEOutput, batch: Tensors) -> dict[str, torch.Tensor]:
        relevance_logits = need(out, "event_logits", "vscg loss")
        mask = need(batch, "event_mask", "vscg loss").to(relevance_logits.dtype)
        relevance = F.binary_cross_entropy_with_logits(relevance_logits, mask)
        cls = need(batch, "video_class", "vscg loss")
        category = video_class_ce(need(out, "class_logits", "vscg loss"), cls)
        parts = {"relevance": relevance, "category": category}
        loss = self.cfg.w_relevance * relevance + self.cfg.w_category * category
        if self.cfg.pair != "ce":
            sim = need(out, "av_similarity", "vscg loss")
            if self.cfg.pair == "npf":
                pair = negative_pair_filter_loss(sim, mask)
            else:
                pair = avps_loss(sim, mask, None if self.carried is None else self.carried(mask))
            loss = loss + self.cfg.w_pair * pair
            parts["pair"] = pair
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}


@LOSSES.register("psp_weak_bce")
class PSPWeakBCE(Loss):
    """PSP weakly supervised: BCE(softmax(``out.video_logits``), ``batch['prob_label']``), both (B, C).

    ``prob_label`` holds k/T for the video's event and (T-k)/T for background (video-level only)."""

    @dataclass
    class Config:
        pass

    def forward(self, out: AVEOutput, batch: Tensors) -> dict[str, torch.Tensor]:
        target = need(batch, "prob_label", "psp_weak_bce loss")
        probs = torch.softmax(need(out, "video_logits", "psp_weak_bce loss"), dim=-1)  # (B, C)
        bce = F.binary_cross_entropy(probs, target)
        return {"loss": bce}


@LOSSES.register("vscg_smooth")
class VSCGSmoothLoss(Loss):
    """VSCG weakly supervised: ``w_main`` BCE(p, prob_label) + ``w_smooth`` BCE(softmax(p), prob_label) with
    p = softmax(video_logits): the double softmax is the paper's smooth loss (as in the official code)."""

    @dataclass
    class Config:
        w_main: float = 2.0  # weight of the BCE on the video probabilities
        w_smooth: float = 1.0  # weight of the BCE on the double-softmax ("smooth") probabilities

    def forward(self, out: AVEOutput, batch: Tensors) -> dict[str, torch.Tensor]:
        target = need(batch, "prob_label", "vscg_smooth loss")
        probs = torch.softmax(need(out, "video_logits", "vscg_smooth loss"), dim=-1)  # (B, C)
        main = F.binary_cross_entropy(probs, target)
        smooth = F.binary_cross_entropy(torch.softmax(probs, dim=-1), target)
        loss = self.cfg.w_main * main + self.cfg.w_smooth * smooth
        return {"loss": loss, "main": main.detach(), "smooth": smooth.detach()}
