"""AVE class names, the ``Annotations.txt`` reader and the label tensors built from it.

``Annotations.txt`` has one line per sample, no header: ``Category&VideoID&Quality&Start&End`` (integer
seconds). Line i describes row i of every AVE h5 file. Every label tensor the methods use can be rebuilt
from it (checked bit for bit against the official ``labels_closs.h5`` and ``mil_labels.h5``):

* ``labels`` (N, 10, 29): one-hot per one-second segment, the category on ``[Start, End)``, background
  (index 28) elsewhere; what AVEL/CMBS read from ``labels.h5``.
* ``event_mask`` (N, 10): 1 on event segments (``labels_closs.h5``).
* ``mil_labels`` (N, 29): one-hot video category, background column never set (``mil_labels.h5``).
* ``prob_label`` (N, 29): PSP's weak target, k/10 on the category and (10-k)/10 on background for an event
  lasting k segments (PSP issue #7; the file itself only exists on a Drive folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avloc.data.base import DataError

# The 28 AVE event categories in the official index order (order of first appearance in Annotations.txt,
# the same list as STANDARD_AVE_DATASET in the PSP/VSCG loaders); index 28 is background.
AVE_CLASSES: tuple[str, ...] = (
    "Church bell",
    "Male speech, man speaking",
    "Bark",
    "Fixed-wing aircraft, airplane",
    "Race car, auto racing",
    "Female speech, woman speaking",
    "Helicopter",
    "Violin, fiddle",
    "Flute",
    "Ukulele",
    "Frying (food)",
    "Truck",
    "Shofar",
    "Motorcycle",
    "Acoustic guitar",
    "Train horn",
    "Clock",
    "Banjo",
    "Goat",
    "Baby cry, infant cry",
    "Bus",
    "Chainsaw",
    "Cat",
    "Horse",
    "Toilet flush",
    "Rodents, rats, mice",
    "Accordion",
    "Mandolin",
)
BACKGROUND = len(AVE_CLASSES)  # 28: the background class index
NUM_CLASSES = BACKGROUND + 1  # 29 outputs: 28 events + background
NUM_SEGMENTS = 10  # one-second segments per AVE video
CLASS_NAMES: tuple[str, ...] = AVE_CLASSES + ("background",)


BACKGROUND_NAME = "background"  # the category of a background-only clip (no event; its times are ignored)
CLASSES_FILE = "classes.txt"  # an AVE-layout set's own event classes, one a line, beside Annotations.txt


@dataclass
class Annotations:
    """The parsed ``Annotations.txt``: one entry per line (= per h5 row).

    category: (N,) int64 in 0..C, C = len(classes) for a background-only clip; start, end: (N,) int64 seconds
    with 0 <= start <= end <= 10. ``classes``: the event classes (the 28 AVE ones unless a class list is given).
    """

    category: np.ndarray
    video_ids: list[str]
    quality: list[str]
    start: np.ndarray
    end: np.ndarray
    path: Path
    classes: tuple[str, ...] = AVE_CLASSES

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def background(self) -> int:
        """The background class index (after the events)."""
        return len(self.classes)


def read_classes(path: str | Path) -> tuple[str, ...]:
    """A class list: one event class per line, in index order (``#`` comments and blank lines skipped). Names
    must be unique, without ``&``, and not ``background`` (always the last class, added by the reader)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: class list not found")
    names: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if "&" in name or name.lower() == BACKGROUND_NAME or name in names:
            why = "contains '&'" if "&" in name else "is reserved" if name.lower() == BACKGROUND_NAME else "repeats"
            raise DataError(f"{path}:{lineno}: class name {name!r} {why}")
        names.append(name)
    if not names:
        raise DataError(f"{path}: no class names")
    return tuple(names)


def read_annotations(path: str | Path, segments: int = NUM_SEGMENTS,
                     classes: tuple[str, ...] | None = None) -> Annotations:
    """Parse an AVE ``Annotations.txt`` (no header, ``&``-separated), independent of any loader.

    ``classes``: the event classes (default: the 28 AVE ones); the category ``background`` marks a clip with
    no event (``background&ID&good&0&0``). Raises ``DataError`` naming the file and 1-based line number for a
    malformed line, an unknown class name or times outside ``0 <= start <= end <= segments``. A header line like the raw-zip one
    (``Category&VideoID&Quality&StartTime&EndTime``) is skipped. Blank lines are allowed only at the end.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors write one) is not part of line 1
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc})") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and lines[0].replace(" ", "").lower().startswith("category&videoid"):
        first, lines = 2, lines[1:]
    else:
        first = 1
    classes = AVE_CLASSES if classes is None else tuple(classes)
    index = {name: i for i, name in enumerate(classes)}
    index[BACKGROUND_NAME] = len(classes)
    cats, ids, quals, starts, ends = [], [], [], [], []
    for lineno, line in enumerate(lines, start=first):
        parts = line.rstrip("\r").split("&")
        if len(parts) != 5:
            raise DataError(
                f"{path}:{lineno}: expected 5 '&'-separated fields "
                f"(Category&VideoID&Quality&Start&End), got {len(parts)}: {line!r}"
            )
        name, vid, qual, s, e = (p.strip() for p in parts)
        if name not in index:
            which = "AVE class name" if classes == AVE_CLASSES else "class name (see the class list)"
            raise DataError(f"{path}:{lineno}: unknown {which} {name!r}")
        if not vid:
            raise DataError(f"{path}:{lineno}: empty video id")
        try:
            s_i, e_i = int(s), int(e)
        except ValueError:
            raise DataError(f"{path}:{lineno}: start/end must be integer seconds, got {s!r}, {e!r}") from None
        if not 0 <= s_i <= e_i <= segments:
            raise DataError(f"{path}:{lineno}: need 0 <= start <= end <= {segments}, got {s_i}, {e_i}")
        cats.append(index[name])
        ids.append(vid)
        quals.append(qual)
        starts.append(s_i)
        ends.append(e_i)
    if not cats:
        raise DataError(f"{path}: no annotation lines")
    return Annotations(
        category=np.asarray(cats, dtype=np.int64),
        video_ids=ids,
        quality=quals,
        start=np.asarray(starts, dtype=np.int64),
        end=np.asarray(ends, dtype=np.int64),
        path=path,
        classes=classes,
    )


def classes_beside(annotations: str | Path) -> tuple[str, ...]:
    """The class list of the set an ``Annotations.txt`` belongs to: its ``classes.txt``, else AVE's 28."""
    path = Path(annotations).parent / CLASSES_FILE
    return read_classes(path) if path.is_file() else AVE_CLASSES


def write_annotations(path: str | Path, category: np.ndarray, video_ids: list[str], start: np.ndarray,
                      end: np.ndarray, quality: str = "good", classes: tuple[str, ...] = AVE_CLASSES) -> None:
    """Write the official ``Annotations.txt`` layout (no header, '\\n' line ends, trailing newline); category
    ``len(classes)`` is written as ``background``."""
    names = (*classes, BACKGROUND_NAME)
    rows = (
        f"{names[c]}&{v}&{quality}&{s}&{e}\n"
        for c, v, s, e in zip(category.tolist(), video_ids, start.tolist(), end.tolist())
    )
    Path(path).write_text("".join(rows), encoding="utf-8", newline="\n")


def event_mask(ann: Annotations, segments: int = NUM_SEGMENTS) -> torch.Tensor:
    """(N, T) float32: 1 on segments t with start <= t < end (the ``labels_closs.h5`` content); 0 throughout
    a background-only clip."""
    t = torch.arange(segments)
    s = torch.from_numpy(ann.start)[:, None]
    e = torch.from_numpy(ann.end)[:, None]
    event = torch.from_numpy(ann.category != ann.background)[:, None]
    return ((t >= s) & (t < e) & event).float()


def segment_labels(ann: Annotations, segments: int = NUM_SEGMENTS) -> torch.Tensor:
    """(N, T) int64: the category on event segments, background (28 for AVE) elsewhere."""
    mask = event_mask(ann, segments).bool()
    cat = torch.from_numpy(ann.category)[:, None].expand(-1, segments)
    return torch.where(mask, cat, torch.full_like(cat, ann.background))


def one_hot_labels(seg: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(N, T) class indices -> (N, T, C + 1) float32 one-hot (the ``labels.h5`` content; 29 for AVE)."""
    return torch.nn.functional.one_hot(seg, num_classes).float()


def mil_labels(ann: Annotations) -> torch.Tensor:
    """(N, C + 1) float32 one-hot video category (the ``mil_labels.h5`` content; bg column set only for a
    background-only clip).

    The 0-length row 26 (file line 27, ``VWi2ENBuTbw 0&0``) keeps its category, exactly like the official
    file; its event mask is all zeros.
    """
    return torch.nn.functional.one_hot(torch.from_numpy(ann.category), ann.background + 1).float()


def prob_label(category: torch.Tensor, mask: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(N, C + 1) float32 PSP weak target: k/T on the category, (T-k)/T on bg; k = event segments.

    category: (N,) int64 in 0..C (C: background); mask: (N, T) event mask.
    """
    n, t = mask.shape
    frac = mask.sum(1) / t
    out = torch.zeros(n, num_classes)
    out[torch.arange(n), category] = frac
    out[:, num_classes - 1] = 1.0 - frac
    return out
