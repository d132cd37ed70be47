"""Class activation sequences -> scored temporal proposals (start, end, class, score) in seconds.

The weakly-supervised localization recipe (W-TALC / CO2-Net lineage, reference notes section 3.3), in
NumPy without a compiled NMS extension (ActionFormer's most reported install failure):

1. Classes: keep class c of a video when its video-level score >= ``class_threshold`` (else the top class).
2. For each kept (video, class) and each threshold, binarise the CAS (optionally min-max normalised per
   video and class) and take connected runs of steps as segments [s, e) (steps s..e-1), found for all
   rows at once from the diff of the zero-padded binary masks.
3. Outer-inner contrast: score = mean CAS inside - mean CAS in the outer ring (the segment inflated by
   ``oic_inflation`` x its length on each side, clipped to the video) + ``oic_gamma`` x video score.
   Identical segments found at several thresholds are kept once.
4. Per (video, class): Gaussian soft-NMS (score *= exp(-tIoU^2 / sigma) after each pick, dropped below
   ``min_score``) or hard NMS (drop tIoU > ``nms_iou``) or none; then the ``top_n`` best per video.
5. Seconds: step i is centred at ``offset + i * step``; a segment [s, e) spans
   ``offset + (s - 0.5) step .. offset + (e - 0.5) step``, extended to 0 when it starts at the first
   step and to the duration when it ends at the last, then clipped to [0, duration].
Python loops run only over NMS rounds (bounded by proposals per (video, class)), never over proposals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avloc.evaluation.detection import tiou
from avloc.formats.activitynet import Segments


@dataclass
class ProposalConfig:
    """Post-processing settings (CO2-Net defaults unless noted)."""

    thresholds: list[float] = field(
        default_factory=lambda: np.linspace(0.1, 0.9, 10).round(4).tolist()
    )  # CAS cut-offs
    minmax: bool = False  # min-max normalise each (video, class) CAS to [0, 1] before thresholding
    class_threshold: float = 0.2  # keep classes with video score >= this; the top class is always kept
    oic_inflation: float = 0.25  # outer ring = this fraction of the segment length on each side
    oic_gamma: float = 0.2  # weight of the video-level class score added to the OIC score
    nms: str = "soft"  # soft (Gaussian) | hard | none, per (video, class)
    soft_sigma: float = 0.3  # Gaussian soft-NMS: score *= exp(-tIoU^2 / sigma) (CO2-Net 0.3, UnAV 0.4)
    nms_iou: float = 0.7  # hard NMS: drop proposals overlapping a kept one by more than this
    min_score: float = (
        0.0  # drop proposals scoring <= this (before and during soft-NMS; keeps decay meaningful)
    )
    top_n: int = 100  # proposals kept per video (UnAV / ActionFormer: 100)

    def __post_init__(self) -> None:
        if self.nms not in ("soft", "hard", "none"):
            raise ValueError(f"nms must be soft, hard or none, got {self.nms!r}")
        if not self.thresholds or self.soft_sigma <= 0 or self.top_n < 1:
            raise ValueError("thresholds must be non-empty, soft_sigma > 0 and top_n >= 1")


def _np(x: Any, dtype: type = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def find_segments(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True in each row of ``binary`` (R, T): (row, start, end_exclusive), row-major order."""
    r = binary.shape[0]
    padded = np.zeros((r, binary.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = binary
    d = np.diff(padded, axis=1)  # +1 at a run's first step, -1 one past its last
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rows, starts, ends


def oic_scores(
    cas_rows: np.ndarray, lengths: np.ndarray, row: np.ndarray, s: np.ndarray, e: np.ndarray, inflation: float
) -> np.ndarray:
    """Mean CAS inside [s, e) minus mean CAS of the outer ring; cas_rows (R, T), lengths (R,) valid steps.

    Ring: [trunc(s - inflation L), s) and [e, min(len - 1, trunc(e - 1 + inflation L)) + 1), L = e - s;
    an empty ring scores 0 (CO2-Net's integer rounding).
    """
    cs = np.concatenate([np.zeros((cas_rows.shape[0], 1)), np.cumsum(cas_rows, axis=1)], axis=1)
    n = (e - s).astype(np.float64)
    inner = (cs[row, e] - cs[row, s]) / n
    o_s = np.maximum(0, np.trunc(s - inflation * n).astype(np.int64))
    o_e = np.minimum(lengths[row] - 1, np.trunc(e - 1 + inflation * n).astype(np.int64)) + 1
    o_e = np.maximum(o_e, e)
    count = (s - o_s) + (o_e - e)
    outer_sum = (cs[row, s] - cs[row, o_s]) + (cs[row, o_e] - cs[row, e])
    outer = np.where(count > 0, outer_sum / np.maximum(count, 1), 0.0)
    return inner - outer


def _pad_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Order by group and slot of each item in a (G, W) table: (order, grp, slot, G, W)."""
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    uniq, first, counts = np.unique(g_sorted, return_index=True, return_counts=True)
    grp = np.repeat(np.arange(len(uniq)), counts)
    slot = np.arange(len(order)) - np.repeat(first, counts)
    return order, grp, slot, len(uniq), int(counts.max()) if len(counts) else 0


def nms(
    start: np.ndarray,
    end: np.ndarray,
    score: np.ndarray,
    group: np.ndarray,
    method: str = "soft",
    sigma: float = 0.3,
    iou_threshold: float = 0.7,
    min_score: float = 0.0,
    max_picks: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """NMS inside each group: (kept indices into the inputs, final scores), in pick order per group.

    soft: pick the best, multiply every other live score of its group by exp(-tIoU^2 / sigma), drop scores
    <= min_score, repeat. hard: pick the best, drop the rest of its group with tIoU > iou_threshold.
    All groups advance together: the loop runs over picks (<= the largest group), not over proposals.
    Picked scores never increase within a group, so ``max_picks`` > 0 (e.g. the per-video top-N) may stop
    each group early without changing any top-N selection.
    """
    start, end, score = _np(start), _np(end), _np(score)
    if len(score) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if method == "none":
        keep = np.nonzero(score > min_score)[0]
        return keep, score[keep]
    order, grp, slot, n_grp, width = _pad_groups(_np(group, np.int64))
    tab_s = np.zeros((n_grp, width))
    tab_e = np.zeros((n_grp, width))
    tab_v = np.full((n_grp, width), -np.inf)
    idx = np.full((n_grp, width), -1, dtype=np.int64)
    tab_s[grp, slot], tab_e[grp, slot], tab_v[grp, slot], idx[grp, slot] = (
        start[order],
        end[order],
        score[order],
        order,
    )
    alive = (idx >= 0) & (tab_v > min_score)
    rows = np.arange(n_grp)
    picked_idx, picked_val = [], []
    for _ in range(min(width, max_picks) if max_picks > 0 else width):
        if not alive.any():
            break
        cur = np.where(alive, tab_v, -np.inf)
        j = np.argmax(cur, axis=1)
        has = alive[rows, j]
        g, jj = rows[has], j[has]
        picked_idx.append(idx[g, jj])
        picked_val.append(tab_v[g, jj])
        alive[g, jj] = False
        ov = tiou(tab_s[g, jj][:, None], tab_e[g, jj][:, None], tab_s[g], tab_e[g])  # (n, W)
        if method == "soft":
            tab_v[g] = np.where(alive[g], tab_v[g] * np.exp(-(ov**2) / sigma), tab_v[g])
            alive[g] &= tab_v[g] > min_score
        else:
            alive[g] &= ~(ov > iou_threshold)
    if not picked_idx:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(picked_idx), np.concatenate(picked_val)


def generate_proposals(
    cas: Any,
    video_scores: Any,
    lengths: Any,
    step_sec: Any,
    offset_sec: Any,
    durations: Any,
    cfg: ProposalConfig | None = None,
) -> Segments:
    """Proposals for a batch of videos.

    cas: (B, T, C) per-step class scores (probabilities; steps >= lengths[b] are ignored);
    video_scores: (B, C) video-level class scores; lengths: (B,) valid steps; step_sec, offset_sec,
    durations: (B,) the feature time grid of each video. Returns Segments with video = batch position,
    label = class index, times in seconds, sorted by video then score (descending), <= top_n per video.
    """
    cfg = cfg or ProposalConfig()
    cas, vsc = _np(cas), _np(video_scores)
    lengths, step, off, dur = _np(lengths, np.int64), _np(step_sec), _np(offset_sec), _np(durations)
    b, t, c = cas.shape
    if vsc.shape != (b, c) or lengths.shape != (b,):
        raise ValueError(
            f"video_scores {vsc.shape} / lengths {lengths.shape} do not match cas (B, T, C) = {cas.shape}"
        )
    if b == 0 or t == 0:
        return _empty()
    keep = vsc >= cfg.class_threshold
    keep[np.arange(b), np.argmax(vsc, axis=1)] = True
    kb, kc = np.nonzero(keep)  # kept (video, class) rows
    rows_cas = cas[kb, :, kc]  # (R, T)
    valid = np.arange(t)[None, :] < lengths[kb][:, None]
    src = rows_cas
    if cfg.minmax:
        lo = np.where(valid, rows_cas, np.inf).min(axis=1, keepdims=True)
        hi = np.where(valid, rows_cas, -np.inf).max(axis=1, keepdims=True)
        src = (rows_cas - lo) / np.maximum(hi - lo, 1e-12)
    thr = np.asarray(cfg.thresholds, dtype=np.float64)
    binary = (src[:, None, :] >= thr[None, :, None]) & valid[:, None, :]  # (R, K, T)
    row_k, s, e = find_segments(binary.reshape(-1, t))
    if len(s) == 0:
        return _empty()
    row = row_k // len(thr)
    # Same segment from several thresholds: keep it once.
    key = np.unique((row.astype(np.int64) * (t + 1) + s) * (t + 1) + e)
    row, s, e = key // ((t + 1) * (t + 1)), (key // (t + 1)) % (t + 1), key % (t + 1)
    score = (
        oic_scores(rows_cas, lengths[kb], row, s, e, cfg.oic_inflation)
        + cfg.oic_gamma * vsc[kb[row], kc[row]]
    )
    kept, score = nms(s, e, score, row, cfg.nms, cfg.soft_sigma, cfg.nms_iou, cfg.min_score, cfg.top_n)
    row, s, e = row[kept], s[kept], e[kept]
    vid = kb[row]
    # Top-N per video by score.
    order = np.lexsort((-score, vid))
    vid, row, s, e, score = vid[order], row[order], s[order], e[order], score[order]
    first = np.searchsorted(vid, vid, side="left")
    top = (np.arange(len(vid)) - first) < cfg.top_n
    vid, row, s, e, score = vid[top], row[top], s[top], e[top], score[top]
    t0 = off[vid] + (s - 0.5) * step[vid]
    t1 = off[vid] + (e - 0.5) * step[vid]
    t0 = np.where(s == 0, 0.0, t0)
    t1 = np.where(e == lengths[vid], dur[vid], t1)
    t0, t1 = np.clip(t0, 0.0, dur[vid]), np.clip(t1, 0.0, dur[vid])
    return Segments(vid, t0, t1, kc[row], score)


def _empty() -> Segments:
    z = np.zeros(0)
    return Segments(np.zeros(0, dtype=np.int64), z, z, np.zeros(0, dtype=np.int64), z)
