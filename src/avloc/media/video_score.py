"""Ground truth of one video from an ActivityNet/UnAV annotation JSON, and how well its events match it.

Two scores, both printed on the report: ``average_mAP`` (ActivityNet/UnAV rules of ``avloc detect-eval``,
mean over tIoU 0.1:0.1:0.9) and ``per_second_acc`` (AVE-style: each second's label, "background" where no
event covers its centre, predicted vs true).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from avloc.evaluation.detection import evaluate_detection
from avloc.formats.activitynet import Segments
from avloc.media.events import Events

BACKGROUND = "background"


class AnnotationError(ValueError):
    """The annotation file is unreadable or has no entry for a video; the message names both."""


def read_database(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: not valid JSON ({exc})") from None
    db = raw.get("database") if isinstance(raw, dict) else None
    if not isinstance(db, dict):
        raise AnnotationError(f"{path}: top level needs a 'database' mapping of video id -> entry")
    return db


def ground_truth(db: dict[str, Any], video_id: str, path: str | Path) -> Events:
    """The annotated segments of ``video_id`` as Events (track "gt", score 1)."""
    if video_id not in db:
        some = ", ".join(sorted(db)[:5])
        raise AnnotationError(f"{path}: no video '{video_id}' in the annotations (it has {len(db)}: {some}, ...)")
    anns = db[video_id].get("annotations") or []
    try:
        seg = np.array([[float(a["segment"][0]), float(a["segment"][1])] for a in anns]).reshape(-1, 2)
        labels = [str(a["label"]) for a in anns]
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise AnnotationError(f"{path}: database[{video_id!r}] has a malformed annotation ({exc})") from None
    return Events(labels, seg[:, 0], seg[:, 1], np.ones(len(labels)), np.full(len(labels), "gt"))


def per_second_labels(events: Events, seconds: int) -> np.ndarray:
    """(seconds,) label of the highest-scored event covering each second's centre, else background."""
    centre = np.arange(seconds) + 0.5  # (S,)
    covers = (events.start[None, :] <= centre[:, None]) & (centre[:, None] < events.end[None, :])  # (S, N)
    score = np.where(covers, events.score[None, :], -np.inf)  # (S, N)
    best = score.argmax(1) if len(events) else np.zeros(seconds, dtype=int)
    found = covers.any(1) if len(events) else np.zeros(seconds, dtype=bool)
    return np.where(found, events.label[best] if len(events) else BACKGROUND, BACKGROUND)


def score_video(pred: Events, gt: Events, duration: float) -> dict[str, float]:
    seconds = max(1, int(round(duration)))
    acc = float((per_second_labels(pred, seconds) == per_second_labels(gt, seconds)).mean())
    out = {"per_second_acc": acc}
    if len(gt):
        vid = np.zeros(len(gt), dtype=int)
        res = evaluate_detection(Segments(vid, gt.start, gt.end, gt.label),
                                 Segments(np.zeros(len(pred), dtype=int), pred.start, pred.end,
                                          pred.label.astype(str), pred.score), "unav")
        out["average_mAP"] = float(res.average_map)
    return out
