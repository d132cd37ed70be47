"""The ActivityNet JSON format (UnAV-100 uses it too): one reader and checker of ground truth and results.

Ground truth: ``{"database": {video_id: {"subset", "duration", "annotations": [{"segment": [s, e],
"label", "label_id"?}]}}}``. Predictions (the ActivityNet results format): ``{"results": {video_id:
[{"segment": [s, e], "label", "score"}]}}``.

The rules are those of the reference evaluators (ActivityNet ``eval_detection.py``, UnAV ``metrics.py``), so
that the dense dataset and ``avloc detect-eval`` read a file the same way:

- a segment is two finite numbers with end >= start: a zero-length segment is kept (UnAV keeps it, only
  ActionFormer drops GT shorter than 1 ms); a reversed one is an error naming the entry;
- a present ``duration`` is a positive number; a missing one is NaN (the evaluators never read it);
- labels are read as strings; ``label_id`` (UnAV) orders the class list and must be one number per label.

NumPy only (no torch), so ``detect-eval`` starts fast. Every check runs on whole columns; the slow search
for the culprit runs only once a check has failed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

import numpy as np


class FormatError(ValueError):
    """An ActivityNet-format file or a Segments table is wrong; the message names file, video and entry."""


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


def _read_json(path: str | Path, what: str) -> Any:
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
    raw = _read_json(path, "annotation")
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

    _check_mappings(anns, where)
    start, end = _check_segments(_column(anns, "segment", where, "a 'segment'"), where)
    labels = _strings(_column(anns, "label", where, "'label'"), where)
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
    raw = _read_json(path, "prediction")
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

    _check_mappings(items, where)
    start, end = _check_segments(_column(items, "segment", where, "a 'segment'"), where)
    labels = _strings(_column(items, "label", where, "'label' and 'score'"), where)
    raw_scores = _column(items, "score", where, "'label' and 'score'")
    scores = _numbers(raw_scores)
    bad = ~np.isfinite(scores) if scores is not None else None
    if scores is None or bad.any():
        k = _first(lambda x: not _is_number(x), raw_scores) if scores is None else int(np.argmax(bad))
        raise FormatError(f"{where(k)}: score {raw_scores[k]!r} is not a finite number")
    return Segments(np.asarray(video_ids, dtype=str)[video], start, end, labels, scores)


def save_predictions(
    path: str | Path,
    pred: Segments,
    video_ids: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Write ``pred`` as ActivityNet results JSON, atomically; int video/label columns index the lists."""
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
    if not set(map(type, values)) <= {int, float}:
        return None
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _first(bad: Callable[[Any], bool], items: list[Any]) -> int:
    return next(k for k, it in enumerate(items) if bad(it))


def _check_mappings(entries: list[Any], where: Callable[[int], str]) -> None:
    if not set(map(type, entries)) <= {dict}:
        k = _first(lambda e: not isinstance(e, dict), entries)
        raise FormatError(f"{where(k)}: must be a mapping, got {type(entries[k]).__name__}")


def _column(entries: list[dict[str, Any]], key: str, where: Callable[[int], str], need: str) -> list[Any]:
    """``entry[key]`` of every entry; a missing key names the first entry without it."""
    try:
        return list(map(itemgetter(key), entries))
    except KeyError:
        k = _first(lambda e: key not in e, entries)
        raise FormatError(f"{where(k)}: needs {need}") from None


def _strings(values: list[Any], where: Callable[[int], str]) -> np.ndarray:
    """(N,) str array of ``values``, converted once per distinct value (labels repeat a few names)."""
    try:
        code_of = {v: i for i, v in enumerate(dict.fromkeys(values))}
    except TypeError:
        k = _first(lambda v: not isinstance(v, (str, int, float)), values)
        raise FormatError(f"{where(k)}: label {values[k]!r} is not a name") from None
    codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int64, count=len(values))
    return np.array([str(v) for v in code_of] or [""], dtype=str)[codes]


def _check_segments(segs: list[Any], where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) float64 columns of ``[s, e]`` pairs: finite numbers with end >= start."""
    if not segs:
        return np.zeros(0), np.zeros(0)
    pairs = set(map(type, segs)) <= {list, tuple} and set(map(len, segs)) == {2}
    flat = _numbers(list(chain.from_iterable(segs))) if pairs else None
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


def _duration(entry: dict[str, Any], where: str) -> float:
    if "duration" not in entry:
        return math.nan
    dur = entry["duration"]
    if not _is_number(dur) or dur <= 0:
        raise FormatError(f"{where}.duration must be a positive number, got {dur!r}")
    return float(dur)
