"""Per-step scores -> events, and the post-processing users ask for (minimum score and duration, merging).

Every detector in ``avloc predict`` ends the same way: a boolean "active" matrix over (step, class) whose runs
become events scored by the mean score over the run, then optional merging of same-label events across short
gaps, then the minimum-duration and minimum-score filters, in that order (merging first, so two short halves
of one event split by a one-step dip survive a minimum duration they each miss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avloc.evaluation.proposals import find_segments


@dataclass
class PostProcess:
    """The knobs; defaults keep every event as detected."""

    min_score: float = 0.0  # drop events whose score is below this
    min_duration: float = 0.0  # drop events shorter than this (seconds), after merging
    merge_gap: float = 0.0  # merge same-label events of one track separated by a gap shorter than this (s)


@dataclass
class Events:
    """Events as columns: label (N,) str, start/end (N,) seconds, score (N,), track (N,) str (av/audio/visual)."""

    label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))

    def __post_init__(self) -> None:
        self.label = np.asarray(self.label, dtype=str)
        self.track = np.asarray(self.track, dtype=str)
        self.start, self.end, self.score = (np.asarray(a, dtype=np.float64) for a in (self.start, self.end, self.score))
        n = len(self.start)
        if not all(len(a) == n for a in (self.label, self.end, self.score, self.track)):
            raise ValueError("Events columns must have equal lengths")

    def __len__(self) -> int:
        return len(self.start)

    def take(self, idx: np.ndarray) -> "Events":
        return Events(self.label[idx], self.start[idx], self.end[idx], self.score[idx], self.track[idx])

    def of_track(self, track: str) -> "Events":
        return self.take(self.track == track)

    def sorted(self) -> "Events":
        return self.take(np.lexsort((self.label, self.start)))

    @staticmethod
    def concat(parts: list["Events"]) -> "Events":
        if not parts:
            return Events()
        cols = [np.concatenate([getattr(p, c) for p in parts]) for c in ("label", "start", "end", "score", "track")]
        return Events(*cols)


def runs_to_events(active: np.ndarray, scores: np.ndarray, step_s: float, labels: list[str], track: str,
                   duration: float | None = None, t0: float = 0.0) -> Events:
    """Runs of True down each column of ``active`` (T, C) -> events scored by the mean of ``scores`` (T, C).

    Step t covers [t0 + t * step_s, t0 + (t + 1) * step_s), cut at ``duration``.
    """
    rows, s, e = find_segments(np.asarray(active, bool).T)  # per class c: runs [s, e) of active steps
    csum = np.concatenate([np.zeros((1, scores.shape[1])), np.cumsum(scores, 0)])  # (T + 1, C)
    mean = (csum[e, rows] - csum[s, rows]) / np.maximum(e - s, 1)  # (N,) mean score over each run
    start, end = t0 + s * step_s, t0 + e * step_s
    if duration is not None:
        end = np.minimum(end, duration)
    return Events(np.asarray(labels, dtype=str)[rows], start, end, mean, np.full(len(rows), track))


def postprocess(events: Events, pp: PostProcess) -> Events:
    """Merge same-(track, label) events across gaps < ``merge_gap``, then drop short and low-score ones."""
    if len(events) and pp.merge_gap > 0:
        ev = events.take(np.lexsort((events.start, events.label, events.track)))
        same = (ev.track[1:] == ev.track[:-1]) & (ev.label[1:] == ev.label[:-1])
        key = np.concatenate([[0], np.cumsum(~same)])  # (N,) index of the (track, label) key
        shift = key * (ev.end.max() + 2 * pp.merge_gap + 1.0)  # keys far apart on one time line
        run_end = np.maximum.accumulate(ev.end + shift)  # an event may end before an earlier one of its key
        joins = same & (ev.start[1:] + shift[1:] - run_end[:-1] < pp.merge_gap)
        first = np.concatenate([[True], ~joins])  # (N,) starts a merged event
        heads = np.flatnonzero(first)
        length = ev.end - ev.start
        dur = np.add.reduceat(length, heads)
        weighted = np.add.reduceat(ev.score * length, heads)
        events = Events(ev.label[heads], np.minimum.reduceat(ev.start, heads), np.maximum.reduceat(ev.end, heads),
                        np.where(dur > 0, weighted / np.maximum(dur, 1e-12), np.maximum.reduceat(ev.score, heads)),
                        ev.track[heads])
    keep = (events.end - events.start >= pp.min_duration - 1e-9) & (events.score >= pp.min_score)
    return events.take(keep).sorted()
