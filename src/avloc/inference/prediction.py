"""What ``avloc predict`` knows about one video once a detector has run: what the report writers draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avloc.inference.events import Events


class PredictError(ValueError):
    """Bad input to ``avloc predict`` (a video, run folder, feature folder or annotation file); the message
    names the file."""

@dataclass
class ScoreTrack:
    """Per-step scores of one track: ``scores`` (T, C) over ``labels`` (C,), step t covering
    [t * step_s, (t + 1) * step_s)."""

    name: str  # "av" (the events' track), "audio", "visual"
    labels: list[str]
    scores: np.ndarray
    step_s: float

    def top(self, k: int) -> list[int]:
        """Indices of the ``k`` labels with the highest peak score (ties by order)."""
        peak = self.scores.max(0) if len(self.scores) else np.zeros(len(self.labels))
        return [int(i) for i in np.argsort(-peak, kind="stable")[:k]]


@dataclass
class VideoPrediction:
    """One video's events, per-step scores, optional ground truth and score, and notes (e.g. "no audio")."""

    video_id: str
    path: Path
    duration: float
    method: str  # "zero-shot" or "run:<run dir name>"
    events: Events
    tracks: list[ScoreTrack]
    ground_truth: Events | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)  # per track and label: where a step
    # counts as an event (a threshold decision: the zero-shot detector); empty for an argmax decision

    def track(self, name: str) -> ScoreTrack:
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(f"{self.video_id}: no score track '{name}'")
