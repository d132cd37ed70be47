"""The AVVP F-scores exactly as the official evaluation defines them (``utils/eval_metrics.py`` and ``eval``
of ``YapengTian/AVVP-ECCV20``), vectorised over clips, classes and modalities.

Per clip, predictions and truths are binary (T, C) maps per modality; audio-visual = audio AND visual
(for predictions and truths alike). From them, per clip and class, TP / FP / FN:

* segment level: counted over the T segments;
* event level: an event is a maximal run of consecutive positive segments; a predicted event is a TP when
  it overlaps ANY true event of its class with intersection >= 0.5 * union (else an FP), a true event is
  an FN when no predicted event does so (no one-to-one matching, as there).

A clip's F-score averages F_c = 2 TP / (2 TP + FP + FN) over the classes with a prediction or a truth
(1.0 when there is none: all true negatives); the score of a split is the mean over its clips. Audio,
visual, audio-visual: the three modalities alone. Type@AV: the mean of those three. Event@AV: one F per
class from the audio and visual counts summed (TP_a + TP_v, ...).
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_counts(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """pred, gt (N, T, C) bool -> TP, FP, FN (N, C) over the T segments."""
    tp = (pred & gt).sum(1)
    return tp, (pred & ~gt).sum(1), (~pred & gt).sum(1)


def event_runs(x: Tensor) -> Tensor:
    """(M, T) bool -> (M, T, K) bool, K = ceil(T / 2): column k marks the k-th run of consecutive Trues."""
    m, t = x.shape
    before = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # (M, T): the previous segment
    starts = x & ~before  # (M, T): a run begins here
    run = torch.cumsum(starts.long(), dim=1) * x  # (M, T): 1-based run number, 0 outside runs
    return run.unsqueeze(-1) == torch.arange(1, (t + 1) // 2 + 1, device=x.device)  # (M, T, K)


def event_counts(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """pred, gt (N, T, C) bool -> TP, FP, FN (N, C) of the events (runs) of every clip and class."""
    n, t, c = pred.shape
    p = event_runs(pred.transpose(1, 2).reshape(n * c, t)).long()  # (M, T, K)
    g = event_runs(gt.transpose(1, 2).reshape(n * c, t)).long()  # (M, T, K)
    inter = torch.einsum("mtk,mtl->mkl", p, g)  # (M, K, K) segments shared by predicted run k, true run l
    len_p, len_g = p.sum(1), g.sum(1)  # (M, K): 0 for runs that do not exist
    union = len_p[:, :, None] + len_g[:, None, :] - inter
    exist = (len_p > 0)[:, :, None] & (len_g > 0)[:, None, :]
    match = exist & (2 * inter >= union)  # (M, K, K): intersection >= 0.5 * union
    tp = match.any(2).sum(1)  # predicted runs that match some true run
    fp = (len_p > 0).sum(1) - tp
    fn = (len_g > 0).sum(1) - match.any(1).sum(1)
    return tuple(v.view(n, c) for v in (tp, fp, fn))  # type: ignore[return-value]


def clip_f(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """(N, C) counts -> (N,) the mean F over the classes with a prediction or a truth; 1.0 without any."""
    active = (tp + fp > 0) | (tp + fn > 0)  # (N, C)
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    f = 2.0 * tp / (2.0 * tp + fp + fn).clamp(min=1)  # (N, C) float64; 0 where inactive
    n_active = active.sum(1)
    return torch.where(n_active > 0, (f * active).sum(1) / n_active.clamp(min=1), torch.ones_like(f[:, 0]))


def avvp_f_scores(pred_a: Tensor, pred_v: Tensor, gt_a: Tensor, gt_v: Tensor) -> dict[str, Tensor]:
    """Binary (N, T, C) audio/visual predictions and truths -> per-clip F-scores (N,) of every official
    metric: ``{seg,evt}_{audio,visual,av,type,event}``."""
    pred_a, pred_v, gt_a, gt_v = (x.bool() for x in (pred_a, pred_v, gt_a, gt_v))
    out = {}
    for level, counts in (("seg", segment_counts), ("evt", event_counts)):
        ca, cv, cav = counts(pred_a, gt_a), counts(pred_v, gt_v), counts(pred_a & pred_v, gt_a & gt_v)
        out[f"{level}_audio"], out[f"{level}_visual"], out[f"{level}_av"] = clip_f(*ca), clip_f(*cv), clip_f(*cav)
        out[f"{level}_type"] = (out[f"{level}_audio"] + out[f"{level}_visual"] + out[f"{level}_av"]) / 3.0
        out[f"{level}_event"] = clip_f(*(x + y for x, y in zip(ca, cv)))
    return out


def binarize(segment_prob: Tensor, video_prob: Tensor, audio_threshold: float = 0.5, visual_threshold: float = 0.5,
             video_threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """The official decisions: a segment is positive for class c in modality m when P[t, m, c] >= its
    threshold AND the clip's video probability of c >= ``video_threshold`` (weak labels filter the
    segments' false positives). segment_prob (N, T, 2, C), video_prob (N, C) -> audio, visual (N, T, C) bool."""
    video = (video_prob >= video_threshold).unsqueeze(1)  # (N, 1, C)
    return (segment_prob[:, :, 0] >= audio_threshold) & video, (segment_prob[:, :, 1] >= visual_threshold) & video
