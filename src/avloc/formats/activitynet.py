"""The ActivityNet JSON format (UnAV-100 uses it too): one reader and checker for ground truth and predictions.

Ground truth: ``{"database": {video_id: {"subset", "duration", "annotations": [{"segment": [s, e],
"label", "label_id"?}]}}}``. Predictions (the ActivityNet results format): ``{"results": {video_id:
[{"segment": [s, e], "label", "score"}]}}``.

The rules are those of the reference evaluators (ActivityNet ``eval_detection.py``, UnAV ``metrics.py``), so
that the dense dataset and ``avloc detect-eval`` read a file the same way:

- a segment is two finite numbers with end >= start: a zero-length segment is kept (UnAV keeps it, only
  ActionFormer drops GT shorter than 1 ms); a reversed one is an error naming the entry;
- a present ``duration`` is a positive number; a missing one is NaN (the evaluators never read it);
- labels are read as strings; ``label_id``, when given, must be one number per label.

NumPy only (no torch), so ``detect-eval`` starts fast. Every check runs on whole columns; the slow search
for the culprit runs only once a check has failed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


class FormatError(ValueError):
    """An ActivityNet-format file or a Segments table is wrong; the message names the file, video and entry."""


@dataclass
class Segments:
    """Temporal segments, one row per (video, segment, class): ground truth or scored predictions.

    video: (N,) video ids (str) or indices (int); start, end: (N,) float64 seconds; label: (N,) class
    names (str) or indices (int); score: (N,) float64 or None (ground truth).
    """

    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray
    score: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.video = np.asarray(self.video)
        self.label = np.asarray(self.label)
        self.start = np.asarray(self.start, dtype=np.float64).reshape(-1)
        self.end = np.asarray(self.end, dtype=np.float64).reshape(-1)
        if self.score is not None:
            self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        n = self.start.shape[0]
        cols = {"video": self.video, "end": self.end, "label": self.label}
        if self.score is not None:
            cols["score"] = self.score
        for name, col in cols.items():
            if col.ndim != 1 or col.shape[0] != n:
                raise FormatError(f"Segments.{name} has shape {col.shape}, expected ({n},) like start")

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def take(self, idx: np.ndarray) -> Segments:
        """Rows ``idx`` (an index array or boolean mask) as new Segments."""
        return Segments(
            self.video[idx],
            self.start[idx],
            self.end[idx],
            self.label[idx],
            None if self.score is None else self.score[idx],
        )


@dataclass
class GroundTruth:
    """A checked annotation file. Per video (V, database order): ``video_ids``, ``subsets`` (None where
    absent), ``durations`` (NaN where absent). Per annotation (N, file order): ``events`` (video = index
    into ``video_ids``, label = class name) and ``label_ids`` (None where absent)."""

    path: Path
    video_ids: list[str]
    subsets: np.ndarray  # (V,) object
    durations: np.ndarray  # (V,) float64
    events: Segments
    label_ids: list[Any]

    def subset(self, name: str) -> Segments:
        """Events of the videos in subset ``name``, video as its id string (the predictions' key)."""
        in_subset = self.subsets == name
        if not in_subset[self.events.video].any():
            found = sorted({str(s) for s in self.subsets})
            raise FormatError(f"{self.path}: no annotated video in subset {name!r}; subsets present: {found}")
        rows = self.events.take(in_subset[self.events.video])
        return Segments(np.asarray(self.video_ids)[rows.video], rows.start, rows.end, rows.label)

    def class_names(self) -> list[str]:
        """Classes ordered by label_id (UnAV), or by name where no annotation has a label_id (ActivityNet)."""
        names = self.events.label
        if len(names) == 0:
            raise FormatError(f"{self.path}: no annotation at all; cannot derive the class list")
        given = np.array([i is not None for i in self.label_ids])
        if not given.any():
            return sorted(set(names.tolist()))
        if not given.all():
            raise FormatError(f"{self.path}: label_id must be given for every label and be unique per label")
        ids = np.array(self.label_ids, dtype=object)
        uniq, first, inv = np.unique(names, return_index=True, return_inverse=True)
        clash = ids != ids[first][inv]
        if clash.any():
            k = int(np.argmax(clash))
            raise FormatError(
                f"{self.path}: label {str(names[k])!r} has label_id {ids[first][inv][k]} and {ids[k]} "
                f"(video {self.video_ids[self.events.video[k]]})"
            )
        if len(set(ids[first].tolist())) != len(uniq):
            raise FormatError(f"{self.path}: label_id must be given for every label and be unique per label")
        return [str(n) for n in uniq[np.argsort(ids[first].astype(np.int64), kind="stable")]]


def read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: {what} file not found")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{p}: not valid JSON ({exc})") from exc


def read_ground_truth(path: str | Path) -> GroundTruth:
    """Read and check an ActivityNet/UnAV annotation file (the module docstring has the rules)."""
    path = Path(path)
    raw = read_json(path, "annotation")
    db = raw.get("database") if isinstance(raw, dict) else None
    if not isinstance(db, dict) or not db:
        raise FormatError(f"{path}: needs a non-empty 'database' mapping of video id -> entry")
    for vid, e in db.items():
        if not isinstance(e, dict):
            raise FormatError(f"{path}: database[{vid!r}] must be a mapping, got {type(e).__name__}")
        if not isinstance(e.get("annotations", []), list):
            raise FormatError(f"{path}: database[{vid!r}].annotations must be a list")
    video_ids = list(db)
    lists = [db[v].get("annotations") or [] for v in video_ids]
    counts = np.array([len(a) for a in lists], dtype=np.int64)
    anns = [a for one in lists for a in one]
    video = np.repeat(np.arange(len(video_ids)), counts)
    pos = np.arange(len(anns)) - np.repeat(np.cumsum(counts) - counts, counts)

    def where(k: int) -> str:
        return f"{path}: database[{video_ids[video[k]]!r}].annotations[{pos[k]}]"

    start, end = _check_segments([a.get("segment") if isinstance(a, dict) else None for a in anns], where)
    labels = _check_labels(anns, ("label",), where)
    subsets = np.empty(len(video_ids), dtype=object)
    subsets[:] = [db[v].get("subset") for v in video_ids]
    return GroundTruth(
        path=path,
        video_ids=video_ids,
        subsets=subsets,
        durations=np.array([_duration(db[v], f"{path}: database[{v!r}]") for v in video_ids]),
        events=Segments(video, start, end, labels),
        label_ids=[a.get("label_id") for a in anns],
    )


def load_ground_truth(path: str | Path, subset: str) -> Segments:
    """GT events of one subset, video = id string, label = class name (what ``detect-eval`` scores)."""
    return read_ground_truth(path).subset(subset)


def load_predictions(path: str | Path) -> Segments:
    """Predictions in the ActivityNet results format ``{"results": {vid: [{segment, label, score}]}}``."""
    raw = read_json(path, "prediction")
    res = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(res, dict):
        raise FormatError(f"{path}: top level needs a 'results' mapping of video id -> list of predictions")
    for vid, items in res.items():
        if not isinstance(items, list):
            raise FormatError(f"{path}: results[{vid!r}] must be a list, got {type(items).__name__}")
    video_ids = list(res)
    counts = np.array([len(res[v]) for v in video_ids], dtype=np.int64)
    items = [it for v in video_ids for it in res[v]]
    video = np.repeat(np.arange(len(video_ids)), counts)
    pos = np.arange(len(items)) - np.repeat(np.cumsum(counts) - counts, counts)

    def where(k: int) -> str:
        return f"{path}: results[{video_ids[video[k]]!r}][{pos[k]}]"

    start, end = _check_segments([it.get("segment") if isinstance(it, dict) else None for it in items], where)
    labels = _check_labels(items, ("label", "score"), where)
    scores = _numbers([it["score"] for it in items])
    bad = ~np.isfinite(scores) if scores is not None else None
    if scores is None or bad.any():
        k = _first(lambda it: not _is_number(it["score"]), items) if scores is None else int(np.argmax(bad))
        raise FormatError(f"{where(k)}: score {items[k]['score']!r} is not a finite number")
    return Segments(np.asarray(video_ids, dtype=str)[video], start, end, labels, scores)


def save_predictions(
    path: str | Path,
    pred: Segments,
    video_ids: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Write ``pred`` as ActivityNet results JSON (atomically); int video/label columns index the given lists."""
    if pred.score is None:
        raise FormatError("predictions need scores")
    vids = np.asarray(video_ids)[pred.video] if video_ids is not None else pred.video.astype(str)
    labs = np.asarray(class_names)[pred.label] if class_names is not None else pred.label.astype(str)
    results: dict[str, list[dict[str, Any]]] = {str(v): [] for v in dict.fromkeys(vids.tolist())}
    for v, s, e, lab, sc in zip(
        vids.tolist(), pred.start.tolist(), pred.end.tolist(), labs.tolist(), pred.score.tolist()
    ):
        results[str(v)].append({"segment": [s, e], "label": str(lab), "score": sc})
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": "avloc", "results": results, "external_data": {}}))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------- column checks


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _numbers(values: list[Any]) -> np.ndarray | None:
    """float64 array of ``values`` when every one is an int or float (not bool, not str), else None."""
    if not all(type(x) in (int, float) for x in values):
        return None
    return np.asarray(values, dtype=np.float64)


def _first(bad: Callable[[Any], bool], items: list[Any]) -> int:
    return next(k for k, it in enumerate(items) if bad(it))


def _check_segments(segs: list[Any], where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) float64 columns of ``[s, e]`` pairs: finite numbers with end >= start."""
    if not segs:
        return np.zeros(0), np.zeros(0)
    pairs = all(type(s) in (list, tuple) and len(s) == 2 for s in segs)
    flat = _numbers([x for s in segs for x in s]) if pairs else None
    if flat is None:
        k = _first(lambda s: not (isinstance(s, (list, tuple)) and len(s) == 2 and all(map(_is_number, s))),
                   segs)
        raise FormatError(f"{where(k)}: 'segment' must be two finite numbers [start, end], got {segs[k]!r}")
    start, end = flat[0::2], flat[1::2]
    bad = ~(np.isfinite(start) & np.isfinite(end)) | (end < start)
    if bad.any():
        k = int(np.argmax(bad))
        raise FormatError(f"{where(k)}: segment {segs[k]!r} must be finite with end >= start")
    return start, end


def _check_labels(entries: list[Any], keys: tuple[str, ...], where: Callable[[int], str]) -> np.ndarray:
    """(N,) str labels; every entry must hold ``keys``."""
    missing = [k for k, e in enumerate(entries) if not all(key in e for key in keys)]
    if missing:
        raise FormatError(f"{where(missing[0])}: needs {' and '.join(repr(key) for key in keys)}")
    return np.array([str(e["label"]) for e in entries], dtype=str).reshape(-1)


def _duration(entry: dict[str, Any], where: str) -> float:
    if "duration" not in entry:
        return math.nan
    dur = entry["duration"]
    if not _is_number(dur) or dur <= 0:
        raise FormatError(f"{where}.duration must be a positive number, got {dur!r}")
    return float(dur)
