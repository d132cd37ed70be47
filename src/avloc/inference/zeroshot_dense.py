"""The zero-shot detector scored like the dense models: mAP@tIoU of its audio-visual events on a composed split.

The trained dense models (linear_mil, MIL, CLASP) are judged by average mAP over tIoU 0.1:0.9 on the UnAV-layout
composition, so the detector they must beat is judged the same way on the same videos: each audio-visual event
it finds (a run of seconds whose agreement passes the threshold) is one scored proposal, labelled with the
composed class its group stands for and scored with the run's mean agreement. Groups of no composed class
propose nothing that can match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.evaluation.detection import DetectionResult, evaluate_detection
from avloc.formats.activitynet import Segments
from avloc.inference.sound_vocab import load_vocabulary
from avloc.inference.zeroshot import ZeroShotConfig, detect
from avloc.inference.zeroshot_eval import LabelledVideo, composed_truth, group_classes, require_scores
from avloc.inference.zeroshot_scores import SecondScores, load_scores
from avloc.media.compose.sources import check_composition


def _truth_segments(truth: dict[str, LabelledVideo]) -> Segments:
    rows = [(vid, s, e, c) for vid, lab in truth.items() for c, s, e in lab.events]
    return Segments(np.array([r[0] for r in rows], dtype=str), np.array([r[1] for r in rows], float),
                    np.array([r[2] for r in rows], float), np.array([r[3] for r in rows], dtype=str))


def zero_shot_proposals(scores: dict[str, SecondScores], videos: list[str], vocab_name: str, classes: dict[str, str],
                        cfg: ZeroShotConfig) -> Segments:
    """Scored (video, start, end, class) proposals: every audio-visual event of ``videos``, its group named by
    the class it stands for (``other:<group>`` for none)."""
    vocab = load_vocabulary(vocab_name)
    events = {vid: detect(scores[vid], vocab, cfg).events.of_track("av") for vid in videos}
    cat = list(events.values())
    return Segments(np.array([vid for vid, ev in events.items() for _ in ev.start], dtype=str),
                    np.concatenate([ev.start for ev in cat] + [np.zeros(0)]),
                    np.concatenate([ev.end for ev in cat] + [np.zeros(0)]),
                    np.array([classes.get(g) or f"other:{g}" for ev in cat for g in ev.label.tolist()], dtype=str),
                    np.concatenate([ev.score for ev in cat] + [np.zeros(0)]))


def zero_shot_map(cache: str | Path, data_dir: str | Path, split: str, vocabs: list[str], class_map: str | Path,
                  thresholds: str | Path | None = None, tious: str = "unav") -> dict[str, DetectionResult]:
    """Per vocabulary, mAP@tIoU of the detector's audio-visual events on ``split`` of a composed folder (its
    ``timeline.json``), at the file's thresholds or the shipped ones."""
    check_composition(data_dir, class_map)  # before the cache is read: the cheap refusal first
    scores, truth = load_scores(cache), composed_truth(data_dir, split)
    require_scores(scores, truth, f"{cache}, split '{split}': ")
    gt = _truth_segments(truth)
    out = {}
    for name in vocabs:
        cfg = (ZeroShotConfig.from_file(thresholds, name) if thresholds else ZeroShotConfig(name)).resolved()
        classes = group_classes(load_vocabulary(name), class_map)
        out[name] = evaluate_detection(gt, zero_shot_proposals(scores, list(truth), name, classes, cfg), tious)
    return out
