"""The checks a dense dataset adds to an ActivityNet-format annotation file: a fixed class list without
duplicates, and events of known classes inside their videos (the reader checks the file format)."""

from __future__ import annotations

import numpy as np

from avloc.data.base import DataError
from avloc.formats.activitynet import GroundTruth, Segments


def given_classes(names: list[str]) -> list[str]:
    """The config's fixed class list ([] = derive it from the annotations)."""
    if len(set(names)) != len(names):
        raise DataError(f"class_names has duplicates: {sorted({n for n in names if names.count(n) > 1})}")
    return list(names)


def checked_events(gt: GroundTruth, class_names: list[str], tol: float) -> Segments:
    """Events with label = class index, clipped to [0, duration] when within ``tol`` seconds of it.

    The file format is checked by the reader; this adds what training needs: every video has a duration,
    every label is a known class and no event lies outside its video by more than ``tol``."""
    bad = ~(gt.durations > 0)
    if bad.any():
        vid = gt.video_ids[int(np.argmax(bad))]
        raise DataError(f"{gt.path}: database[{vid!r}].duration must be a positive number (missing)")
    ev = gt.events
    names = np.asarray(class_names, dtype=str)
    order = np.argsort(names)
    slot = np.minimum(np.searchsorted(names[order], ev.label), len(names) - 1)
    known = names[order][slot] == ev.label
    dur = gt.durations[ev.video]
    outside = (ev.start < -tol) | (ev.end > dur + tol)
    if (~known).any() or outside.any():
        k = int(np.argmax(~known | outside))
        pos = k - int(np.searchsorted(ev.video, ev.video[k]))
        where = f"{gt.path}: database[{gt.video_ids[ev.video[k]]!r}].annotations[{pos}]"
        if not known[k]:
            raise DataError(f"{where}: unknown label {str(ev.label[k])!r} (not in class_names)")
        raise DataError(
            f"{where}: segment [{ev.start[k]}, {ev.end[k]}] is outside the video [0, {dur[k]}] "
            f"by more than {tol} s"
        )
    start, end = np.clip(ev.start, 0.0, dur), np.clip(ev.end, 0.0, dur)
    return Segments(ev.video, start, end, order[slot])
