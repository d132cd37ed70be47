"""Event files any tool reads: ActivityNet results JSON, SRT and WebVTT captions, a TSV label track.

- ``events.json``: ``{"version", "results": {video: [{segment, label, score}]}, "external_data"}``, the file
  ``avloc detect-eval`` scores; the audio-visual (main) track only. The extra top-level ``avloc`` key holds,
  per video, the audio-/visual-only events and the per-step scores of the top classes of each track.
- ``events.srt`` / ``events.vtt``: one caption per event ("dog 0.39"); ground truth, when given, as captions
  in green ("GT: Bark").
- ``events.tsv``: ``onset offset label score``, tab-separated, no header, main track; ``labels.txt`` the same
  without the score (``onset offset label``: an Audacity label track, and a ``sed_eval.io.load_event_list``
  event list).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from avloc.inference.events import Events
from avloc.inference.prediction import VideoPrediction

TOP_CLASSES = 5  # per-step scores kept in events.json for this many classes per track
MAIN_TRACK = "av"


def _main(pred: VideoPrediction) -> Events:
    return pred.events.of_track(MAIN_TRACK)


def results_entries(pred: VideoPrediction) -> list[dict[str, Any]]:
    ev = _main(pred)
    return [{"segment": [round(s, 3), round(e, 3)], "label": str(lab), "score": round(float(sc), 4)}
            for s, e, lab, sc in zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist())]


def extra_entry(pred: VideoPrediction) -> dict[str, Any]:
    """Per-step scores of each track's top classes, the other tracks' events, notes and metrics."""
    tracks = {}
    for tr in pred.tracks:
        top = tr.top(TOP_CLASSES)
        tracks[tr.name] = {"step_s": tr.step_s,
                           "scores": {tr.labels[i]: np.round(tr.scores[:, i], 4).tolist() for i in top}}
    others = pred.events.take(pred.events.track != MAIN_TRACK)
    return {
        "duration": round(pred.duration, 3),
        "method": pred.method,
        "tracks": tracks,
        "other_events": [{"track": str(t), "segment": [round(s, 3), round(e, 3)], "label": str(lab),
                          "score": round(float(sc), 4)}
                         for t, s, e, lab, sc in zip(others.track.tolist(), others.start.tolist(), others.end.tolist(),
                                                     others.label.tolist(), others.score.tolist())],
        "notes": pred.notes,
        "metrics": pred.metrics,
    }


def events_json(preds: list[VideoPrediction]) -> str:
    doc = {"version": "VERSION 1.3",
           "results": {p.video_id: results_entries(p) for p in preds},
           "external_data": {"used": True, "details": "pretrained backbones; see the avloc key"},
           "avloc": {p.video_id: extra_entry(p) for p in preds}}
    return json.dumps(doc, indent=1)


def _clock(t: float, sep: str) -> str:
    ms = int(round(max(t, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(pred: VideoPrediction) -> list[tuple[float, float, str, bool]]:
    """(start, end, text, is_ground_truth) in time order."""
    ev = _main(pred)
    cues = [(s, e, f"{lab} {sc:.2f}", False) for s, e, lab, sc in
            zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist())]
    if pred.ground_truth is not None:
        gt = pred.ground_truth
        cues += [(s, e, f"GT: {lab}", True) for s, e, lab in zip(gt.start.tolist(), gt.end.tolist(), gt.label.tolist())]
    return sorted(cues, key=lambda c: (c[0], c[3]))


def srt(pred: VideoPrediction) -> str:
    blocks = []
    for i, (s, e, text, is_gt) in enumerate(_cues(pred), 1):
        body = f'<font color="#00c000">{text}</font>' if is_gt else text
        blocks.append(f"{i}\n{_clock(s, ',')} --> {_clock(e, ',')}\n{body}\n")
    return "\n".join(blocks)


def vtt(pred: VideoPrediction) -> str:
    blocks = ["WEBVTT\n"]
    for s, e, text, is_gt in _cues(pred):
        body = f"<c.lime>{text}</c>" if is_gt else text  # lime: one of WebVTT's default colour classes
        blocks.append(f"{_clock(s, '.')} --> {_clock(e, '.')}\n{body}\n")
    return "\n".join(blocks)


def tsv(pred: VideoPrediction, with_score: bool = True) -> str:
    ev = _main(pred)
    lines = [f"{s:.3f}\t{e:.3f}\t{lab}" + (f"\t{sc:.4f}" if with_score else "")
             for s, e, lab, sc in zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist())]
    return "".join(line + "\n" for line in lines)
