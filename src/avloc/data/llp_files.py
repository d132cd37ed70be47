"""The LLP annotation files of audio-visual video parsing (AVVP), read and checked line by line.

LLP (Tian, Li & Xu, ECCV 2020) is 11,849 ten-second YouTube clips of 25 classes, cut into ten one-second
segments. Two kinds of tab-separated files with a header line:

* weak label lists, one per split (``AVVP_train.csv`` 10,000 / ``AVVP_val_pd.csv`` 649 /
  ``AVVP_test_pd.csv`` 1,200 rows): ``filename<TAB>event_labels``, the filename ``<11-char YouTube id>_<start>_
  <end>``, the labels comma separated and modality-agnostic (an event may be heard, seen or both);
* dense per-modality labels of the val and test clips (``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv``):
  ``filename<TAB>onset<TAB>offset<TAB>event_labels``, one event per row, whole seconds, segments
  ``onset .. offset - 1`` (the official evaluation marks ``GT[c, onset:offset] = 1``).

Facts of the official files these readers keep as the official code reads them: six audio rows have
onset == offset and one audio row onset 9, offset 0 (``8DF2PxdT5tE_390_400``):
the official ``GT[c, onset:offset] = 1`` marks no segment for them, nor does this reader; 8 audio and 7 visual rows name a clip of no split (typos such as
``19jWnmYnlD8_30_400``): the official evaluation looks rows up by the exact filename, so they count nowhere.
Anything else malformed is a ``DataError`` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avloc.data.base import DataError

# The official class order (``ids_to_multinomial`` of the official dataloader): index = output column.
CLASS_NAMES: tuple[str, ...] = (
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)", "Basketball_bounce", "Fire_alarm", "Chainsaw",
    "Cello", "Banjo", "Singing", "Chicken_rooster", "Violin_fiddle", "Vacuum_cleaner", "Baby_laughter",
    "Accordion", "Lawn_mower", "Motorcycle", "Helicopter", "Acoustic_guitar", "Telephone_bell_ringing",
    "Baby_cry_infant_cry", "Blender", "Clapping",
)
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
NUM_SEGMENTS = 10  # one-second segments per clip
ID_CHARS = 11  # the official dataloader names feature files by filename[:11], the YouTube id

WEAK_HEADER = ["filename", "event_labels"]
DENSE_HEADER = ["filename", "onset", "offset", "event_labels"]


@dataclass
class WeakList:
    """One split's clips in file order: ``filenames`` (N,), multi-hot ``labels`` (N, 25) float32."""

    filenames: list[str]
    labels: np.ndarray


@dataclass
class DenseEvents:
    """The rows of one per-modality eval file: filename, onset, offset (s) and class index per event."""

    filenames: list[str]
    onset: np.ndarray  # (E,) int64
    offset: np.ndarray  # (E,) int64
    label: np.ndarray  # (E,) int64


def _lines(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the data lines of a tab-separated file whose first line is ``header``."""
    if not path.is_file():
        raise DataError(f"{path}: LLP annotation file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    if not lines or lines[0].rstrip("\r").split("\t") != header:
        got = lines[0] if lines else "an empty file"
        raise DataError(f"{path}: line 1 must be the header {chr(9).join(header)!r} (tab-separated), got {got!r}")
    out = []
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            raise DataError(f"{path}: line {no}: expected {len(header)} tab-separated fields "
                            f"({', '.join(header)}), got {len(fields)}: {line!r}")
        out.append((no, fields))
    return out


def _class(name: str, path: Path, no: int) -> int:
    if name not in CLASS_INDEX:
        raise DataError(f"{path}: line {no}: unknown event label {name!r} (not one of the 25 LLP classes)")
    return CLASS_INDEX[name]


def _filename(name: str, path: Path, no: int) -> str:
    if len(name) < ID_CHARS or not name.strip() or name != name.strip():
        raise DataError(f"{path}: line {no}: filename {name!r} must start with an {ID_CHARS}-character "
                        "YouTube id (the feature files are named by it)")
    return name


def read_weak_list(path: Path) -> WeakList:
    """A split file: every clip once, at least one known label each."""
    rows = _lines(path, WEAK_HEADER)
    names: list[str] = []
    labels = np.zeros((len(rows), len(CLASS_NAMES)), dtype=np.float32)
    seen: dict[str, int] = {}
    for i, (no, (name, events)) in enumerate(rows):
        name = _filename(name, path, no)
        if name[:ID_CHARS] in seen:
            raise DataError(f"{path}: line {no}: clip {name!r} repeats the YouTube id of line {seen[name[:ID_CHARS]]}")
        seen[name[:ID_CHARS]] = no
        parts = [p for p in events.split(",")]
        if not events or any(not p for p in parts):
            raise DataError(f"{path}: line {no}: event_labels {events!r} must be comma-separated class names")
        for part in parts:
            labels[i, _class(part, path, no)] = 1.0
        names.append(name)
    return WeakList(names, labels)


def read_dense_events(path: Path) -> DenseEvents:
    """A per-modality eval file: whole-second events, onset and offset in 0 .. 10 (a row with
    onset >= offset marks no segment, as in the official evaluation)."""
    rows = _lines(path, DENSE_HEADER)
    names, on, off, lab = [], [], [], []
    for no, (name, onset, offset, event) in rows:
        try:
            a, b = int(onset), int(offset)
        except ValueError:
            raise DataError(f"{path}: line {no}: onset {onset!r} and offset {offset!r} must be whole seconds") from None
        if not (0 <= a <= NUM_SEGMENTS and 0 <= b <= NUM_SEGMENTS):
            raise DataError(f"{path}: line {no}: onset {a} and offset {b} must lie in 0 .. {NUM_SEGMENTS}")
        names.append(_filename(name, path, no))
        on.append(a)
        off.append(b)
        lab.append(_class(event, path, no))
    return DenseEvents(names, np.asarray(on, np.int64), np.asarray(off, np.int64), np.asarray(lab, np.int64))


def segment_labels(events: DenseEvents, filenames: list[str]) -> tuple[np.ndarray, int]:
    """(N, 10, 25) float32 per-segment labels of ``filenames`` (exact filename match, as the official
    evaluation looks them up) and the number of event rows that matched no clip."""
    row = {name: i for i, name in enumerate(filenames)}
    out = np.zeros((len(filenames), NUM_SEGMENTS, len(CLASS_NAMES)), dtype=np.float32)
    clip = np.array([row.get(n, -1) for n in events.filenames], dtype=np.int64)  # (E,)
    hit = clip >= 0
    t = np.arange(NUM_SEGMENTS)
    inside = (t >= events.onset[hit, None]) & (t < events.offset[hit, None])  # (E', 10)
    e, s = np.nonzero(inside)
    out[clip[hit][e], s, events.label[hit][e]] = 1.0
    return out, int((~hit).sum())
