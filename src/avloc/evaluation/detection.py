"""Temporal detection mAP at tIoU thresholds, with the exact ActivityNet / UnAV-100 rules, in NumPy.

Why our own: the ActivityNet toolkit is Python 2 and fetches a web list; the ActionFormer/UnAV port needs
pandas/joblib and calls ``np.float`` (gone since NumPy 1.24). The rules reproduced here (UnAV
``libs/utils/metrics.py``, ActivityNet ``Evaluation/eval_detection.py``):

1. Ground truth: exact duplicates are removed (same video and class, |d start| and |d end| <= 1e-3; the
   earlier annotation is kept). A segment carrying k labels is k ground-truth instances, one per class.
2. Classes come from the ground truth only: predictions of other classes are ignored; a GT class without
   predictions scores AP 0. Predictions in videos without GT of their class (or unknown videos) are FPs.
3. Per class, predictions are ranked by ``np.argsort(score)[::-1]`` over that class's predictions in input
   order (the reference code's tie order). Each prediction, at each threshold, takes the highest-tIoU
   still-unmatched GT of its video and class with tIoU >= threshold (TP), else it is a FP; a GT is matched
   at most once. Among GTs with equal tIoU the one visited first by the reference is taken: it visits the
   GTs of the video and class (in file order) as ``np.argsort(tiou)[::-1]`` with NumPy's default, not
   stable, sort, so the same NumPy build gives the same tie order here as there. One difference is left:
   a zero-length prediction against a zero-length GT has tIoU 0 here and NaN (0/0, then a TP at every
   threshold) in the reference.
4. AP = VOC-2011 interpolated area (precision envelope, summed over recall changes); mAP(thr) = mean AP
   over the GT classes; average mAP = mean of mAP over the thresholds.

Vectorised: greedy matching runs all (class, video) groups and all thresholds at once, looping only over
the rank of a prediction inside its (class, video) group (bounded by predictions per video).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.formats.activitynet import Segments, load_ground_truth, load_predictions

# tIoU presets: UnAV code `np.linspace(0.1, 0.9, 9)`, ActivityNet toolkit `np.linspace(0.5, 0.95, 10)`.
TIOU_PRESETS: dict[str, np.ndarray] = {
    "unav": np.linspace(0.1, 0.9, 9),
    "anet": np.linspace(0.5, 0.95, 10),
}
DUPLICATE_TOL = 1e-3  # seconds; UnAV `remove_duplicate_annotations(tol=1e-3)`


class DetectionError(ValueError):
    """Inputs that cannot be scored together (tIoU spec, label kinds, missing scores); errors in a file
    are ``FormatError``s of its reader."""


@dataclass
class DetectionResult:
    """tious: (K,); ap: (K, C) per threshold and GT class; mAP: (K,); average_map: mean of mAP."""

    tious: np.ndarray
    classes: np.ndarray
    ap: np.ndarray
    mAP: np.ndarray
    average_map: float
    num_gt: int
    num_predictions: int

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"mAP@{t:.2f}": float(m) for t, m in zip(self.tious, self.mAP)}
        out["average_mAP"] = float(self.average_map)
        out["num_gt"] = self.num_gt
        out["num_predictions"] = self.num_predictions
        out["num_classes"] = int(len(self.classes))
        return out


def tiou(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray) -> np.ndarray:
    """Temporal IoU of segments, broadcasting like NumPy; 0 where the union is empty."""
    a_start, a_end, b_start, b_end = (
        np.asarray(x, dtype=np.float64) for x in (a_start, a_end, b_start, b_end)
    )
    inter = np.maximum(np.minimum(a_end, b_end) - np.maximum(a_start, b_start), 0.0)
    union = (a_end - a_start) + (b_end - b_start) - inter
    out = np.zeros(np.broadcast(inter, union).shape)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def resolve_tious(spec: str | Sequence[float] | np.ndarray) -> np.ndarray:
    """A preset name ("unav", "anet"), a comma list ("0.3,0.5") or numbers -> (K,) float64 thresholds."""
    if isinstance(spec, str):
        if spec in TIOU_PRESETS:
            return TIOU_PRESETS[spec].copy()
        try:
            vals = np.array([float(x) for x in spec.split(",") if x.strip()], dtype=np.float64)
        except ValueError:
            raise DetectionError(
                f"tIoU thresholds {spec!r}: use a preset ({', '.join(TIOU_PRESETS)}) or a comma list"
            ) from None
    else:
        vals = np.asarray(spec, dtype=np.float64).reshape(-1)
    if vals.size == 0 or not np.all((vals > 0) & (vals <= 1)):
        raise DetectionError(f"tIoU thresholds must be a non-empty list in (0, 1], got {vals.tolist()}")
    return vals


def _factorize(*cols: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unique values of the concatenated columns and each column's codes into them."""
    uniq, inv = np.unique(np.concatenate(cols), return_inverse=True)
    bounds = np.cumsum([0] + [len(c) for c in cols])
    return uniq, [inv[bounds[i] : bounds[i + 1]] for i in range(len(cols))]


def remove_duplicates(gt: Segments, tol: float = DUPLICATE_TOL) -> Segments:
    """Drop a GT row when an earlier kept row of the same video and class has |ds|, |de| <= tol."""
    _, (vid,) = _factorize(gt.video.astype(str))
    _, (lab,) = _factorize(gt.label)
    return gt.take(_unique_rows(vid, lab, gt.start, gt.end, tol))


def _unique_rows(
    vid: np.ndarray, lab: np.ndarray, start: np.ndarray, end: np.ndarray, tol: float
) -> np.ndarray:
    """Keep-mask of the duplicate rule on integer video/label codes (pairs found vectorised per group)."""
    n = len(start)
    dropped = np.zeros(n, dtype=bool)
    if n < 2:
        return ~dropped
    key = vid.astype(np.int64) * (int(lab.max()) + 1) + lab
    order = np.argsort(key, kind="stable")  # groups contiguous, input order inside a group
    skey = key[order]
    pos = np.arange(n)
    counts = np.searchsorted(skey, skey, side="right") - pos - 1  # partners after each row in its group
    total = int(counts.sum())
    if total == 0:
        return ~dropped
    i_pos = np.repeat(pos, counts)
    j_pos = i_pos + 1 + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    i, j = order[i_pos], order[j_pos]
    close = (np.abs(start[i] - start[j]) <= tol) & (np.abs(end[i] - end[j]) <= tol)
    i, j = np.minimum(i[close], j[close]), np.maximum(i[close], j[close])
    for later, earlier in sorted(zip(j.tolist(), i.tolist())):  # near-identical pairs only (rare)
        if not dropped[earlier]:
            dropped[later] = True
    return ~dropped


def _interpolated_ap(prec: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """VOC-2011 AP per row. prec, rec: (K, n) -> (K,). Zero-width recall steps add exactly 0."""
    k = prec.shape[0]
    mprec = np.concatenate([np.zeros((k, 1)), prec, np.zeros((k, 1))], axis=1)
    mrec = np.concatenate([np.zeros((k, 1)), rec, np.ones((k, 1))], axis=1)
    env = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    return np.sum(np.diff(mrec, axis=1) * env[:, 1:], axis=1)


def evaluate_detection(
    gt: Segments, pred: Segments, tious: str | Sequence[float] | np.ndarray = "unav"
) -> DetectionResult:
    """mAP of ``pred`` (scored) against ``gt`` at each tIoU threshold (module docstring has the rules)."""
    thr = resolve_tious(tious)
    if pred.score is None:
        raise DetectionError("predictions need scores")
    if len(gt) == 0:
        raise DetectionError("ground truth is empty: no class to evaluate")
    if (
        len(pred)
        and gt.label.dtype.kind != pred.label.dtype.kind
        and {gt.label.dtype.kind, pred.label.dtype.kind} != {"i", "u"}
    ):
        raise DetectionError(
            f"ground-truth labels are {gt.label.dtype} but prediction labels are {pred.label.dtype}; "
            "use class names for both or class indices for both"
        )
    if len(pred) == 0:
        pred = Segments(
            pred.video.astype(gt.video.dtype),
            pred.start,
            pred.end,
            pred.label.astype(gt.label.dtype),
            pred.score,
        )
    same_kind = gt.video.dtype.kind in "iu" and pred.video.dtype.kind in "iu"
    _, (g_v, p_v) = _factorize(
        *((gt.video, pred.video) if same_kind else (gt.video.astype(str), pred.video.astype(str)))
    )
    names, (g_l, p_l) = _factorize(gt.label, pred.label)
    keep_gt = _unique_rows(g_v, g_l, gt.start, gt.end, DUPLICATE_TOL)
    gt, g_v, g_l = gt.take(keep_gt), g_v[keep_gt], g_l[keep_gt]
    # Classes from the GT only: predictions of other classes are ignored.
    gt_codes = np.unique(g_l)
    class_of = np.full(len(names), -1, dtype=np.int64)
    class_of[gt_codes] = np.arange(len(gt_codes))
    classes, g_c, p_c = names[gt_codes], class_of[g_l], class_of[p_l]
    n_cls, n_thr = len(classes), len(thr)
    ap = np.zeros((n_thr, n_cls))
    num_pred = len(pred)
    keep_pred = p_c >= 0
    pred, p_c, p_v = pred.take(keep_pred), p_c[keep_pred], p_v[keep_pred]
    n_pos = np.bincount(g_c, minlength=n_cls)
    if len(pred):
        # Rank predictions per class exactly like the reference: argsort(score)[::-1] in input order.
        by_class = np.argsort(p_c, kind="stable")
        cls_bounds = np.searchsorted(p_c[by_class], np.arange(n_cls + 1))
        ranked = np.empty_like(by_class)
        for c in range(n_cls):
            idx = by_class[cls_bounds[c] : cls_bounds[c + 1]]
            ranked[cls_bounds[c] : cls_bounds[c + 1]] = idx[np.argsort(pred.score[idx])[::-1]]
        tp = _greedy_match(gt, g_c, g_v, pred.take(ranked), p_c[ranked], p_v[ranked], thr)  # (K, Np)
        for c in range(n_cls):
            lo, hi = cls_bounds[c], cls_bounds[c + 1]
            if hi == lo:
                continue
            tp_cum = np.cumsum(tp[:, lo:hi], axis=1, dtype=np.float64)
            fp_cum = np.cumsum(~tp[:, lo:hi], axis=1, dtype=np.float64)
            rec = tp_cum / n_pos[c]
            prec = tp_cum / (tp_cum + fp_cum)
            ap[:, c] = _interpolated_ap(prec, rec)
    m_ap = ap.mean(axis=1)
    return DetectionResult(thr, classes, ap, m_ap, float(m_ap.mean()), len(gt), num_pred)


def _greedy_match(
    gt: Segments,
    g_c: np.ndarray,
    g_v: np.ndarray,
    pred: Segments,
    p_c: np.ndarray,
    p_v: np.ndarray,
    thr: np.ndarray,
) -> np.ndarray:
    """TP flags (K, Np) of predictions already ranked class-major, score-descending within a class."""
    n_vid = int(max(g_v.max(initial=0), p_v.max(initial=0))) + 1
    g_key = g_c.astype(np.int64) * n_vid + g_v
    p_key = p_c.astype(np.int64) * n_vid + p_v
    # GT of each (class, video) group as a padded (groups, G) table.
    g_order = np.argsort(g_key, kind="stable")
    keys, g_start, g_size = np.unique(g_key[g_order], return_index=True, return_counts=True)
    width = int(g_size.max())
    slot = np.arange(len(g_order)) - np.repeat(g_start, g_size)
    grp_of_gt = np.repeat(np.arange(len(keys)), g_size)
    tab_s = np.full((len(keys), width), np.nan)
    tab_e = np.full((len(keys), width), np.nan)
    tab_s[grp_of_gt, slot] = gt.start[g_order]
    tab_e[grp_of_gt, slot] = gt.end[g_order]
    # Group of each prediction (-1: no GT of its class in its video -> always FP).
    loc = np.minimum(np.searchsorted(keys, p_key), len(keys) - 1)
    p_grp = np.where(keys[loc] == p_key, loc, -1)
    live = p_grp >= 0
    live_idx = np.nonzero(live)[0]
    row_of = np.full(len(p_key), -1, dtype=np.int64)
    row_of[live_idx] = np.arange(len(live_idx))
    lg = p_grp[live_idx]
    ov = tiou(pred.start[live_idx, None], pred.end[live_idx, None], tab_s[lg], tab_e[lg])  # (live, G)
    ov[np.isnan(tab_s[lg])] = -1.0  # padding never matches
    # Position of each GT in the reference's visiting order: the default argsort of each unpadded row, so one
    # argsort per distinct group size (rows of a 2-D argsort sort exactly as the 1-D argsort of each row).
    visit = np.full(ov.shape, width, dtype=np.int64)  # (live, G); padding is visited last
    size = g_size[lg]
    for w in np.unique(size):
        rows = np.nonzero(size == w)[0]
        order = np.argsort(ov[rows, :w], axis=1)[:, ::-1]  # (n, w) GT slots, highest tIoU first
        visit[rows[:, None], order] = np.arange(w)
    # Rank of each prediction inside its (class, video) group, keeping the score order.
    within = np.argsort(p_key, kind="stable")
    sk = p_key[within]
    first = np.searchsorted(sk, sk, side="left")
    rank = np.empty(len(p_key), dtype=np.int64)
    rank[within] = np.arange(len(p_key)) - first
    n_thr = len(thr)
    tp = np.zeros((n_thr, len(p_key)), dtype=bool)
    matched = np.zeros((n_thr, len(keys), width), dtype=bool)
    order_by_rank = np.argsort(np.where(live, rank, -1), kind="stable")
    bounds = np.searchsorted(
        np.where(live, rank, -1)[order_by_rank], np.arange(int(rank[live].max(initial=-1)) + 2)
    )
    for r in range(len(bounds) - 1):  # one prediction per group per round: no write conflicts
        sel = order_by_rank[bounds[r] : bounds[r + 1]]
        grp = p_grp[sel]
        o = ov[row_of[sel]]  # (n, G)
        elig = (o[None] >= thr[:, None, None]) & ~matched[:, grp, :]  # (K, n, G)
        j = np.argmin(np.where(elig, visit[row_of[sel]][None], width + 1), axis=2)  # (K, n) first visited
        has = elig.any(axis=2)
        tp[:, sel] = has
        kk, nn = np.nonzero(has)
        matched[kk, grp[nn], j[kk, nn]] = True
    return tp


def format_table(res: DetectionResult) -> str:
    """Markdown table: one column per threshold plus the average."""
    head = "| " + " | ".join(f"{t:.2f}" for t in res.tious) + " | Avg |"
    rule = "|" + "---|" * (len(res.tious) + 1)
    cells = [f"{100 * m:.2f}" for m in res.mAP] + [f"{100 * res.average_map:.2f}"]
    row = "| " + " | ".join(cells) + " |"
    info = (
        f"mAP (%) at tIoU; {len(res.classes)} GT classes, {res.num_gt} GT segments, "
        f"{res.num_predictions} predictions"
    )
    return "\n".join([info, head, rule, row])


def detect_eval(
    annotations: str | Path, subset: str, predictions: str | Path, tious: str = "unav", as_json: bool = False
) -> str:
    """The ``avloc detect-eval`` command: score a results JSON against a subset of an annotation JSON."""
    res = evaluate_detection(load_ground_truth(annotations, subset), load_predictions(predictions), tious)
    return json.dumps(res.as_dict(), indent=2) if as_json else format_table(res)
