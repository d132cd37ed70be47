"""Ground truth of one video from an ActivityNet/UnAV annotation JSON, and how well its events match it.

Two scores, both printed on the report: ``average_mAP`` (ActivityNet/UnAV rules of ``avloc detect-eval``,
mean over tIoU 0.1:0.1:0.9) and ``per_second_acc`` (AVE-style: each second's label, "background" where no
event covers its centre, predicted vs true).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.evaluation.detection import evaluate_detection
from avloc.formats.activitynet import GroundTruth, Segments, read_ground_truth
from avloc.inference.events import Events
from avloc.inference.prediction import VideoPrediction

BACKGROUND = "background"


class AnnotationError(ValueError):
    """The annotation file has no entry for a video; the message names both."""


def ground_truth(gt: GroundTruth, video_id: str) -> Events:
    """The annotated segments of ``video_id`` in a checked annotation file as Events (track "gt", score 1)."""
    if video_id not in gt.video_ids:
        some = ", ".join(sorted(gt.video_ids)[:5])
        raise AnnotationError(f"{gt.path}: no video '{video_id}' in the annotations "
                              f"(it has {len(gt.video_ids)}: {some}, ...)")
    rows = gt.events.take(gt.events.video == gt.video_ids.index(video_id))
    return Events(list(rows.label), rows.start, rows.end, np.ones(len(rows)), np.full(len(rows), "gt"))


def ground_truth_of(annotations: str | Path, video_ids: list[str]) -> dict[str, Events]:
    """Each video's ground truth from an ActivityNet/UnAV annotation file; a video it lacks is an error
    naming both (before anything is written)."""
    db = read_ground_truth(annotations)
    return {vid: ground_truth(db, vid) for vid in video_ids}


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


def scored_events(pred: VideoPrediction, gt: Events) -> Events:
    """The main-track events, their zero-shot group names replaced by the dataset's class name where the
    ground truth uses it (the ``dog`` group scores against a ``Bark`` annotation)."""
    ev = pred.events.of_track("av")  # a copy
    if pred.method != "zero-shot" or not len(ev):
        return ev
    from avloc.inference.event_groups import load_event_groups

    groups = load_event_groups()
    known = set(gt.label.tolist())
    names = {g: groups.ave_name(g) if g in groups.names else g for g in set(ev.label.tolist())}
    ev.label = np.array([names[g] if g not in known and names[g] in known else g for g in ev.label.tolist()])
    return ev
