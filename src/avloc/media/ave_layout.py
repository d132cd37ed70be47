"""The label files of an AVE-layout feature folder, written by ``avloc extract`` beside the h5 pair it made, so
that ``avloc train --data OUT`` needs nothing else: ``Annotations.txt`` (the row order the features follow),
``classes.txt`` (a class list other than AVE's 28) and ``{train,val,test}_order.h5`` (a seeded split).

Labels come from ``--annotations FILE`` (copied in) or from the clips' folders (``--class-from-folder``:
``clips/dog/a.mp4`` is a dog clip, ``clips/background/b.mp4`` a clip with no event; the event spans the
clip's first 10 s, or all of a shorter clip). Split files already in the folder are never replaced: they
may be the official ones, or the user's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np

from avloc.data.ave_labels import (AVE_CLASSES, BACKGROUND_NAME, CLASSES_FILE, classes_beside, read_annotations,
                                   read_classes, write_annotations)

SPLIT_FILES = {"train": "train_order.h5", "val": "val_order.h5", "test": "test_order.h5"}
ANNOTATIONS_FILE = "Annotations.txt"


def folder_classes(paths: list[Path]) -> tuple[tuple[str, ...], np.ndarray]:
    """The event classes named by the clips' parent folders (AVE's 28 when every name is one of them, else the
    names sorted) and each clip's category (N,), ``len(classes)`` for a ``background`` folder."""
    names = [p.parent.name for p in paths]
    bad = [p for p, n in zip(paths, names) if not n or "&" in n]
    if bad:
        raise ValueError(f"{bad[0]}: its folder name {bad[0].parent.name!r} cannot be a class name")
    events = sorted({n for n in names if n.lower() != BACKGROUND_NAME})
    classes = AVE_CLASSES if set(events) <= set(AVE_CLASSES) else tuple(events)
    index = {c: i for i, c in enumerate(classes)}
    cat = np.array([len(classes) if n.lower() == BACKGROUND_NAME else index[n] for n in names], dtype=np.int64)
    return classes, cat


def write_folder_annotations(out: Path, ids: list[str], classes: tuple[str, ...], category: np.ndarray,
                             seconds: dict[str, float], segments: int = 10) -> list[str]:
    """``Annotations.txt`` (event from 0 to the clip's whole seconds, at most ``segments``; 0-0 for
    background) and, for a class list other than AVE's, ``classes.txt``. Returns the names written."""
    end = np.array([min(segments, max(1, int(round(seconds.get(v, segments))))) for v in ids], dtype=np.int64)
    end = np.where(category == len(classes), 0, end)
    write_annotations(out / ANNOTATIONS_FILE, category, ids, np.zeros_like(end), end, classes=classes)
    written = [ANNOTATIONS_FILE]
    if classes != AVE_CLASSES:
        (out / CLASSES_FILE).write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
        written.append(CLASSES_FILE)
    return written


def copy_label_files(out: Path, annotations: Path, classes: Path | None) -> list[str]:
    """Copy the user's ``Annotations.txt`` (and class list) into ``out`` unless they are the files there."""
    written = []
    for src, name in ((annotations, ANNOTATIONS_FILE), (classes, CLASSES_FILE)):
        if src is not None and (not (out / name).exists() or not (out / name).samefile(src)):
            shutil.copyfile(src, out / name)
            written.append(name)
    return written


def write_splits(out: Path, category: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> list[str]:
    """``{train,val,test}_order.h5`` when none is in ``out``: every class's rows shuffled (``seed``) and cut by
    ``fractions``, so each split sees every class it can; val and test get at least one row when there are
    three or more. Returns the names written ([] when the folder already has split files)."""
    if any((out / f).exists() for f in SPLIT_FILES.values()):
        return []
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three numbers >= 0 summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_FILES}
    for c in np.unique(category):
        rows = rng.permutation(np.flatnonzero(category == c))
        cut = np.round(np.cumsum(fractions)[:2] * len(rows)).astype(int)
        for name, chunk in zip(SPLIT_FILES, np.split(rows, cut)):
            parts[name] += chunk.tolist()
    for name in ("val", "test"):  # a tiny folder: a row from train, so that no split is empty
        if not parts[name] and len(parts["train"]) > 1:
            parts[name].append(parts["train"].pop())
    for name, fname in SPLIT_FILES.items():
        with h5py.File(out / fname, "w") as h5:
            h5.create_dataset("order", data=np.sort(np.asarray(parts[name], dtype=np.int64)))
    return [f"{f} ({len(parts[n])} rows)" for n, f in SPLIT_FILES.items()]


def annotation_order(annotations: Path, classes: Path | None) -> tuple[list[str], np.ndarray]:
    """The video ids (h5 row order) and categories of the user's ``Annotations.txt``; its class list is
    ``classes``, else the ``classes.txt`` beside it, else AVE's 28."""
    ann = read_annotations(annotations, classes=read_classes(classes) if classes is not None
                           else classes_beside(annotations))
    return ann.video_ids, ann.category
