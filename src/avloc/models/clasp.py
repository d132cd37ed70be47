"""CLASP: cross-modal salient anchors for weakly-supervised dense audio-visual event localization.

The paper (arXiv 2508.04566) names three modules but its equations are not public; this is our concrete
design of them (see docs/dense.md), read top to bottom like a method section:

1. Encoders + unimodal heads: audio and visual features are encoded over time and each gets its own
   per-timestep class head (trained by video-level MIL), so each modality votes for event classes.
2. MEAE (mutual event agreement evaluation), per timestep AND class: the agreement score
   m[t, c] = sqrt(p_a p_v), high only where the audio AND the visual branch predict class c. It does two
   jobs: it scores events (item 6: the event CAS is sqrt(p_fused * m), so a single-modality distractor,
   p_a high and p_v low, scores low) and it chooses CSAI's global anchors. Off: the event CAS is the fused
   branch alone and the global anchors are chosen by confidence. Agreement is used where it is soft (the
   CAS) and for the few global anchors only: as the hard selector of every anchor it finds fewer event steps
   than confidence does (docs/dense.md).
3. CSAI (cross-modal salient anchor identification), per class: global anchors = the top-ceil(T/r) steps of
   m[:, c], the moments where the whole video's two modalities agree most on c; local anchors = the most
   confident step (confidence (p_a + p_v) / 2) of each window of ``w`` steps when it reaches ``local_min``
   x the class maximum, one per window, so every occurrence of a class gets an anchor, not only the
   strongest. For the video's labelled classes the anchors are per-step pseudo-labels that the clasp loss
   fits with the event CAS: anchor (after ATP) -> 1; background -> 0, where background is every step whose
   confidence is below ``negative_ratio`` x the class maximum (1.0: every step ATP did not reach, so an
   occurrence without an anchor is taught as background: this is what makes the local anchors count).
   Why pseudo-labels: MIL alone never pushes a labelled class down anywhere, so the distractors and the
   background of a present class would never be taught as negatives.
   Global anchors also *claim* their step (``claim_ratio``): where a labelled class has a global anchor,
   another labelled class of the video is background unless its agreement there reaches ``claim_ratio`` x
   the claiming class's, so a class's labels do not spread into the surest moments of a co-labelled class
   (a sibling lit up by it, or the next event of another class). Only the training targets read the labels;
   the CAS never does. Claiming is the global anchors' own job: as seeds alone they add nothing the local
   anchors do not already seed (docs/dense.md).
4. ATP (anchor-based temporal propagation): (a) labels: each anchor spreads along time over the contiguous
   steps whose confidence stays >= ``grow_ratio`` x the class maximum, so an anchor labels the whole extent
   of its event and noise does not split long events into fragments;
   (b) features (``propagate_features``): every timestep of each modality attends to the anchors' fused
   A/V features (single-head attention over the global and local anchors of the step confidence, the
   confidence of a step being that of its most confident class; logits biased by
   ``salience_bias * log(confidence)``; residual + LayerNorm), so anchor semantics reach every step.
5. Fused branch: the propagated audio and visual features are fused, convolved over time and classified
   per timestep.
6. Event CAS: with MEAE on, sqrt(p_fused * m) = (p_fused^2 p_a p_v)^(1/4): an AV event must be audible AND
   visible. The video prediction is the top-k MIL pooling of that same CAS, so training picks its top-k
   steps where the modalities agree instead of at the (stronger) single-modality distractors.
7. ``linear_skip`` (our change): each class head adds a linear map of its raw inputs (audio,
   visual, concat(audio, visual) for the fused head), so CLASP contains the ``linear_mil`` classifier and
   its encoders, anchors and propagation only have to learn what a linear read-out misses.

Switching ``atp`` off keeps the anchors' pseudo-labels at the anchor steps only (no spreading, no feature
propagation), which isolates what the propagation adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from avloc.models.base import AVModel, Batch, DenseInputs
from avloc.models.dense_blocks import (
    Fusion,
    MaskedConv1d,
    TemporalEncoder,
    check_dense_inputs,
    class_head,
    masked_topk_mean,
    topk_counts,
)
from avloc.models.mil import dense_example_batch
from avloc.models.outputs import DenseOutput
from avloc.registry import MODELS


def meae_agreement(logits_a: torch.Tensor, logits_v: torch.Tensor) -> torch.Tensor:
    """MEAE per step and class: sqrt(p_a p_v), the joint evidence of the two modalities for class c.

    Why per class: an audio-visual event of class c needs both modalities to say c; a single-modality
    distractor (p_a high, p_v low) scores low. (B,T,C) x2 -> (B,T,C) in [0, 1].
    """
    return torch.sqrt(torch.sigmoid(logits_a) * torch.sigmoid(logits_v))


def confidence_salience(logits_a: torch.Tensor, logits_v: torch.Tensor) -> torch.Tensor:
    """Either modality's evidence for each class, (p_a + p_v) / 2: (B,T,C) x2 -> (B,T,C).

    Why for local anchors, spreading and background: it finds more of each event's steps than the
    agreement (a modality may be weak for a while inside a real event) while MEAE guards the CAS.
    """
    return 0.5 * (torch.sigmoid(logits_a) + torch.sigmoid(logits_v))


def class_peak(salience: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each class's largest valid salience: (B, T, C), (B, T) bool -> (B, 1, C)."""
    return salience.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1, keepdim=True)


def top_steps(salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ceil(T_valid / ratio) valid steps of every column: (B, T, C), (B, T) bool ->
    (index (B, K, C) long, keep (B, K, C) bool: rank < the video's k), K = the largest k of the batch."""
    k = topk_counts(mask, ratio)  # (B,)
    kmax = int(k.max())
    index = salience.masked_fill(~mask.unsqueeze(-1), float("-inf")).topk(kmax, dim=1).indices  # (B, K, C)
    keep = (torch.arange(kmax, device=salience.device).view(1, -1, 1) < k.view(-1, 1, 1)).expand_as(index)
    return index, keep


def window_peaks(salience: torch.Tensor, mask: torch.Tensor, window: int) -> torch.Tensor:
    """The most salient valid step of each non-overlapping window of ``window`` steps, per column:
    (B, T, C), (B, T) bool -> index (B, ceil(T / window), C) long."""
    b, t, c = salience.shape
    n = -(-t // window)
    filled = salience.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    padded = F.pad(filled, (0, 0, 0, n * window - t), value=float("-inf"))  # (B, n*w, C)
    best = padded.view(b, n, window, c).argmax(dim=2)  # (B, n, C) offset inside each window
    return (best + (torch.arange(n, device=salience.device) * window).view(1, -1, 1)).clamp(max=t - 1)


def class_global_anchors(salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """CSAI global anchors: the top ceil(T_valid / ratio) valid steps of each class.

    salience: (B, T, C); mask: (B, T) bool -> (B, T, C) bool.
    """
    index, keep = top_steps(salience, mask, ratio)
    positive = torch.zeros_like(salience, dtype=torch.bool).scatter(1, index, keep)  # ranks > k write False
    return positive & mask.unsqueeze(-1)


def class_local_anchors(
    salience: torch.Tensor, mask: torch.Tensor, window: int, local_min: float,
) -> torch.Tensor:
    """CSAI local anchors: the argmax step of each window of ``window`` steps, per class, when it reaches
    ``local_min`` x the class's maximum. (B, T, C), (B, T) bool -> (B, T, C) bool."""
    index = window_peaks(salience, mask, window)  # (B, n, C)
    strong = salience.gather(1, index) >= local_min * class_peak(salience, mask)  # (B, n, C)
    return torch.zeros_like(salience, dtype=torch.bool).scatter(1, index, strong) & mask.unsqueeze(-1)


def class_background(salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """Background: valid steps below ``ratio`` x their class's maximum (1.0: all but the maximum).

    salience: (B, T, C); mask: (B, T) bool -> (B, T, C) bool.
    """
    return mask.unsqueeze(-1) & (salience < ratio * class_peak(salience, mask))


def grow_anchors(positive: torch.Tensor, salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """ATP on the labels: each class's anchors spread along time over the contiguous steps whose salience stays
    >= ``ratio`` x the class's maximum, so one anchor labels the whole extent of its event.

    positive: (B, T, C) bool anchors; salience: (B, T, C); mask: (B, T) bool -> (B, T, C) bool.
    """
    region = mask.unsqueeze(-1) & ((salience >= ratio * class_peak(salience, mask)) | positive)  # (B, T, C)
    start = region & ~F.pad(region, (0, 0, 1, 0))[:, :-1]  # first step of each run
    run = torch.cumsum(start.long(), dim=1) * region  # (B, T, C): run id, 0 outside runs
    hit = torch.zeros(run.shape[0], run.shape[1] + 1, run.shape[2], device=run.device)
    hit = hit.scatter_reduce(1, run, positive.float(), reduce="amax")  # (B, T+1, C): run holds an anchor
    return region & (hit.gather(1, run) > 0)


def claimed_steps(global_anchor: torch.Tensor, agreement: torch.Tensor, labels: torch.Tensor,
                  ratio: float) -> torch.Tensor:
    """Where a labelled class has a global anchor, the other labelled classes whose agreement there is below
    ``ratio`` x the claiming class's: these steps are not theirs.

    Why: a global anchor is the video's surest audio-visual moment of its class; a co-labelled class that
    agrees much less there is a sibling lit up by it or a label spread in from a neighbouring event.
    global_anchor: (B, T, C) bool; agreement: (B, T, C); labels: (B, C) bool -> (B, T, C) bool.
    """
    labelled = labels.unsqueeze(1)  # (B, 1, C)
    anchored = global_anchor & labelled  # (B, T, C)
    level = (agreement * anchored).amax(dim=-1, keepdim=True)  # (B, T, 1): 0 where no labelled class is anchored
    return labelled & ~anchored & (agreement < ratio * level)


def pseudo_labels(confidence: torch.Tensor, agreement: torch.Tensor, mask: torch.Tensor, cfg: CLASP.Config,
                  labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CSAI + ATP on the labels: global anchors by ``agreement``, local anchors by ``confidence``, spread by
    ATP over ``confidence``, background where ``confidence`` is low, and with the video's ``labels`` the
    global anchors' claims; the model's switches and thresholds.

    confidence, agreement: (B, T, C); mask: (B, T) bool; labels: (B, C) bool or None (no claims) ->
    (positive (B, T, C) bool, negative (B, T, C) bool).
    """
    positive = torch.zeros_like(confidence, dtype=torch.bool)
    claimed = torch.zeros_like(positive)
    if cfg.global_anchors:
        glob = class_global_anchors(agreement, mask, cfg.global_ratio)
        positive |= glob
        if labels is not None and cfg.claim_ratio > 0.0:
            claimed = claimed_steps(glob, agreement, labels, cfg.claim_ratio)
    if cfg.local_anchors:
        positive |= class_local_anchors(confidence, mask, cfg.window, cfg.local_min)
    if cfg.atp and cfg.grow_ratio > 0.0:
        positive = grow_anchors(positive, confidence, mask, cfg.grow_ratio)
    positive &= ~claimed
    return positive, (class_background(confidence, mask, cfg.negative_ratio) | claimed) & ~positive


def global_anchors(salience: torch.Tensor, mask: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-ceil(T_valid / ratio) valid timesteps by salience.

    salience: (B, T); mask: (B, T) bool -> (index (B, K) long, valid (B, K) bool), K = max k over the batch.
    """
    index, keep = top_steps(salience.unsqueeze(-1), mask, ratio)
    return index.squeeze(-1), keep.squeeze(-1)


def local_anchors(salience: torch.Tensor, mask: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The most salient valid timestep of each non-overlapping window of ``window`` steps.

    salience: (B, T); mask: (B, T) bool -> (index (B, W) long, valid (B, W) bool), W = ceil(T / window);
    a window with no valid step gives an invalid anchor.
    """
    b, t = salience.shape
    index = window_peaks(salience.unsqueeze(-1), mask, window).squeeze(-1)  # (B, W)
    valid = F.pad(mask, (0, index.shape[1] * window - t), value=False).view(b, -1, window).any(dim=2)
    return index, valid


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
    and ``audio_video_logits`` / ``visual_video_logits`` (B, C) (unimodal branches), ``salience`` (B, T, C),
    ``anchor_positive`` / ``anchor_negative`` (B, T, C) bool (per-class anchors after ATP, background; when
    the batch holds ``video_labels``, after the global anchors' claims); with
    feature propagation on also ``anchor_index`` / ``anchor_valid`` (B, K) and ``anchor_attention`` (B, T, K).
    """

    task = "dense"

    @dataclass
    class Config(DenseInputs):
        hidden: int = 256  # width of every per-timestep feature
        encoder_layers: int = 1  # residual masked temporal conv blocks per modality encoder
        fused_layers: int = 1  # masked temporal conv blocks after fusing the propagated features
        kernel: int = 3  # temporal kernel size (odd)
        dropout: float = 0.3  # dropout on hidden features
        fusion: str = "concat"  # fused branch: how propagated A and V features are joined (concat | sum | mean)
        topk_ratio: float = 8.0  # MIL pooling of every branch: top ceil(T_valid / topk_ratio) steps
        prior_prob: float = 0.01  # initial class probability of every class head (bias = logit of it)
        meae: bool = True  # MEAE agreement sqrt(p_a p_v): event CAS sqrt(p_f m), global anchors by m (False: fused CAS, confidence)
        global_anchors: bool = True  # CSAI global anchors: per class, the top ceil(T_valid / global_ratio) steps of MEAE
        global_ratio: float = 8.0  # see global_anchors
        claim_ratio: float = 0.8  # a global anchor's step is background for co-labelled classes below this x its agreement (0: off)
        local_anchors: bool = True  # CSAI local anchors: per class, the most confident step of each window ...
        window: int = 8  # ... of this many timesteps ...
        local_min: float = 0.5  # ... when it reaches this fraction of the class's most confident step
        negative_ratio: float = 1.0  # background: steps below this x the class's confidence maximum (1.0: all not spread to)
        atp: bool = True  # anchor-based temporal propagation of the anchor labels (and features, see below)
        grow_ratio: float = 0.3  # ATP labels: anchors spread over contiguous steps >= this x the class confidence maximum
        propagate_features: bool = True  # ATP features: every step attends to the anchors' fused A/V features
        anchor_fusion: str = "concat"  # how the audio and visual features at an anchor are joined
        salience_bias: float = 1.0  # ATP attention logits get salience_bias * log(anchor confidence); 0 = plain
        linear_skip: bool = False  # every class head also reads its raw input features linearly (see docstring)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if not (cfg.global_anchors or cfg.local_anchors):
            raise ValueError("clasp: CSAI needs global_anchors or local_anchors (or both)")
        ratios = (cfg.negative_ratio, cfg.local_min, cfg.grow_ratio, cfg.claim_ratio)
        if not all(0.0 <= r <= 1.0 for r in ratios):
            raise ValueError("clasp: negative_ratio, local_min, grow_ratio and claim_ratio must lie in [0, 1], "
                             f"got {ratios}")
        if cfg.window < 1 or cfg.global_ratio < 1.0 or cfg.topk_ratio < 1.0:
            raise ValueError("clasp: window must be >= 1 and global_ratio, topk_ratio >= 1")
        self.enc_a = TemporalEncoder(cfg.audio_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.enc_v = TemporalEncoder(cfg.visual_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.head_a = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        self.head_v = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        if self.feature_atp:
            self.anchor_fuse = Fusion(cfg.anchor_fusion, cfg.hidden)
            self.atp_a = AnchorPropagation(cfg.hidden, cfg.dropout)
            self.atp_v = AnchorPropagation(cfg.hidden, cfg.dropout)
        self.fuse = Fusion(cfg.fusion, cfg.hidden)
        self.fused_convs = nn.ModuleList(
            MaskedConv1d(cfg.hidden, cfg.hidden, cfg.kernel) for _ in range(cfg.fused_layers)
        )
        self.head_f = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        if cfg.linear_skip:
            self.skip_a = nn.Linear(cfg.audio_dim, cfg.num_classes, bias=False)
            self.skip_v = nn.Linear(cfg.visual_dim, cfg.num_classes, bias=False)
            self.skip_f = nn.Linear(cfg.audio_dim + cfg.visual_dim, cfg.num_classes, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    @property
    def feature_atp(self) -> bool:
        return self.cfg.atp and self.cfg.propagate_features

    def select_anchors(self, salience: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CSAI for ATP's features: global and/or local anchor steps (B, K) and validity (B, K) of a (B, T) score."""
        parts = []
        if self.cfg.global_anchors:
            parts.append(global_anchors(salience, mask, self.cfg.global_ratio))
        if self.cfg.local_anchors:
            parts.append(local_anchors(salience, mask, self.cfg.window))
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def forward(self, batch: Batch) -> DenseOutput:
        audio, visual, mask = batch["audio"], batch["visual"], batch["mask"]
        check_dense_inputs(audio, visual, mask)
        cfg = self.cfg
        a = self.enc_a(audio, mask)  # (B, T, d)
        v = self.enc_v(visual, mask)
        logits_a = self.head_a(self.drop(a))  # (B, T, C)
        logits_v = self.head_v(self.drop(v))
        if cfg.linear_skip:
            logits_a = logits_a + self.skip_a(audio)  # (B, T, C)
            logits_v = logits_v + self.skip_v(visual)
        with torch.no_grad():  # anchors are chosen, not learned through: they carry no gradient
            valid = mask.unsqueeze(-1)  # (B, T, 1)
            confidence = confidence_salience(logits_a, logits_v) * valid  # (B, T, C)
            agreement = meae_agreement(logits_a, logits_v) * valid if cfg.meae else confidence  # (B, T, C)
            labels = batch.get("video_labels")  # training targets only: the CAS below never reads them
            labels = None if labels is None else labels.bool()
            positive, negative = pseudo_labels(confidence, agreement, mask, cfg, labels)  # (B, T, C) x2
        out: dict[str, torch.Tensor] = {"salience": agreement, "anchor_positive": positive, "anchor_negative": negative}
        if self.feature_atp:
            step_confidence = confidence.amax(dim=-1)  # (B, T): a step is as confident as its most confident class
            index, valid_k = self.select_anchors(step_confidence, mask)
            anchors = self.anchor_fuse(gather_steps(a, index), gather_steps(v, index))  # (B, K, d)
            bias = cfg.salience_bias * torch.log(step_confidence.gather(1, index).clamp(min=1e-4))  # (B, K)
            a, att_a = self.atp_a(a, anchors, valid_k, mask, bias)
            v, _ = self.atp_v(v, anchors, valid_k, mask, bias)
            out.update(anchor_index=index, anchor_valid=valid_k, anchor_attention=att_a)
        h = self.fuse(a, v)
        for conv in self.fused_convs:
            h = h + self.drop(torch.relu(conv(h, mask)))
        logits_f = self.head_f(self.drop(h))  # (B, T, C)
        if cfg.linear_skip:
            logits_f = logits_f + self.skip_f(torch.cat([audio, visual], dim=-1))
        if cfg.meae:  # event CAS sqrt(p_f m): log p = (2 log p_f + log p_a + log p_v) / 4, as a logit
            log_p = 0.25 * (2.0 * F.logsigmoid(logits_f) + F.logsigmoid(logits_a) + F.logsigmoid(logits_v))
            logits_f = log_p - torch.log1p(-log_p.exp().clamp(max=1.0 - 1e-6))  # (B, T, C)
        out.update(
            cas_logits=logits_f,
            cas=torch.sigmoid(logits_f) * mask.unsqueeze(-1),
            video_logits=masked_topk_mean(logits_f, mask, cfg.topk_ratio),
            audio_logits=logits_a,
            visual_logits=logits_v,
            audio_video_logits=masked_topk_mean(logits_a, mask, cfg.topk_ratio),
            visual_video_logits=masked_topk_mean(logits_v, mask, cfg.topk_ratio),
        )
        return DenseOutput(**out)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.cfg
        return dense_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.num_classes, steps=12)
