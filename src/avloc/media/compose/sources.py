"""The inputs of a composed real-media benchmark: labelled sounds, labelled photos, a class map, split by source.

* Sounds: a folder of class folders (``NNN - Class/...`` as ESC, or plain ``Class/...``) of audio files. A file
  named ``F-...`` with F in 1-5 carries its ESC fold; clips of one source recording share a fold, so folds
  decide the split (``SOUND_SPLITS``). Any other file is split by a stable hash of its name.
* Photos: a folder of ``<wnid>_<name>.<ext>`` files (one or more per WordNet id).
* Class map (JSON, ``configs/media/esc10_imagenet.json``): per sound class, the wnids whose photos ``depicts``
  it and those that ``stands_in`` for it. A class with fewer than three mapped photos is audio-only.
  ``not_unrelated`` lists wnids whose photos show a class's source incidentally (dogsled: dogs).
* Photos of the wnids no class maps to are the "unrelated" pictures (audio-only and background seconds).

Every photo goes to exactly one split (round-robin over its class's sorted photos), so no recording and no
photo appears in two splits.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")
SOUND_SPLITS = {1: "train", 2: "train", 3: "train", 4: "val", 5: "test"}  # ESC fold -> split
AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".mp3", ".m4a")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
MIN_PHOTOS = len(SPLITS)  # a class needs a photo of its own in every split to be seen
_FOLD = re.compile(r"^([1-5])-")
_WNID = re.compile(r"^(n\d{8})_")


@dataclass
class MediaSources:
    """Per split: sound files of each class, photo files of each seen class and unrelated photos."""

    classes: list[str]  # every sound class, in the sound folder's order
    visual_classes: list[str]  # classes with photos (the audio-visual events); the others are audio-only
    sounds: dict[str, dict[str, list[Path]]] = field(default_factory=dict)  # split -> class -> files
    photos: dict[str, dict[str, list[Path]]] = field(default_factory=dict)  # split -> class -> files
    unrelated: dict[str, list[Path]] = field(default_factory=dict)  # split -> photos no class maps to

    def audio_only(self) -> list[str]:
        return [c for c in self.classes if c not in self.visual_classes]


def _split_of_sound(path: Path) -> str:
    m = _FOLD.match(path.name)
    if m:
        return SOUND_SPLITS[int(m.group(1))]
    h = int(hashlib.sha256(path.name.encode()).hexdigest()[:8], 16)
    return ("train", "train", "train", "val", "test")[h % 5]


def _class_name(folder: Path) -> str:
    return folder.name.split(" - ", 1)[1] if " - " in folder.name else folder.name


def read_class_map(path: str | Path) -> tuple[dict[str, list[str]], set[str]]:
    """Sound class -> wnids (``depicts`` then ``stands_in``) of a class-map JSON, and the wnids never used as
    unrelated pictures (``not_unrelated``: photos that show a class's source incidentally)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        mapping = {name: list(entry.get("depicts", [])) + list(entry.get("stands_in", []))
                   for name, entry in raw["classes"].items()}
        return mapping, set(raw.get("not_unrelated", {}).get("wnids", []))
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"{path}: not a class map ({{'classes': {{name: {{depicts, stands_in}}}}}}): {exc}") from None


def collect_sources(sounds_dir: str | Path, photos_dir: str | Path, class_map: dict[str, list[str]],
                    path_for_errors: str = "class map", not_unrelated: set[str] | None = None) -> MediaSources:
    """Read both folders and split every sound and photo by source (see the module docstring)."""
    sounds_dir, photos_dir = Path(sounds_dir), Path(photos_dir)
    class_dirs = sorted(d for d in sounds_dir.iterdir() if d.is_dir()) if sounds_dir.is_dir() else []
    if not class_dirs:
        raise FileNotFoundError(f"{sounds_dir}: no class folders of sounds")
    classes = [_class_name(d) for d in class_dirs]
    unknown = sorted(set(class_map) - set(classes))
    if unknown:
        raise ValueError(f"{path_for_errors}: classes {unknown} have no folder in {sounds_dir}")
    photos = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                    and _WNID.match(p.name)) if photos_dir.is_dir() else []
    if not photos:
        raise FileNotFoundError(f"{photos_dir}: no photos named '<wnid>_<name>.JPEG'")
    by_wnid: dict[str, list[Path]] = {}
    for p in photos:
        by_wnid.setdefault(_WNID.match(p.name).group(1), []).append(p)
    out = MediaSources(classes=classes, visual_classes=[])
    out.sounds = {s: {c: [] for c in classes} for s in SPLITS}
    for d, name in zip(class_dirs, classes):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{d}: no audio files")
        for p in files:
            out.sounds[_split_of_sound(p)][name].append(p)
    mapped = {w for wnids in class_map.values() for w in wnids} | set(not_unrelated or ())
    out.photos = {s: {} for s in SPLITS}
    for name in classes:
        files = [p for w in class_map.get(name, []) for p in by_wnid.get(w, [])]
        if len(files) < MIN_PHOTOS:
            continue
        out.visual_classes.append(name)
        for s in SPLITS:
            out.photos[s][name] = files[SPLITS.index(s)::len(SPLITS)]
    rest = [p for w in sorted(by_wnid) if w not in mapped for p in by_wnid[w]]
    out.unrelated = {s: rest[i::len(SPLITS)] for i, s in enumerate(SPLITS)}
    for s in SPLITS:
        empty = [c for c in classes if not out.sounds[s][c]]
        if empty:
            raise ValueError(f"{sounds_dir}: split {s!r} has no sound of {empty} (ESC folds 1-3 train, 4 val, 5 test)")
        if not out.unrelated[s]:
            raise ValueError(f"{photos_dir}: no unrelated photo left for split {s!r}")
    if not out.visual_classes:
        raise ValueError(f"{path_for_errors}: no class has {MIN_PHOTOS} or more photos in {photos_dir}")
    return out


def check_composition(folder: str | Path, class_map: str | Path, full_share: float | None = None,
                      background_videos: int | None = None) -> None:
    """Refuse a composed ``folder`` whose ``timeline.json`` records another class map than ``class_map`` (or,
    given, another ``full_share`` or number of ``background_videos``): resuming into it, or scoring it with the
    wrong class map, would silently mix two compositions. A timeline written before these were recorded passes."""
    path = Path(folder) / "timeline.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a composed real-media timeline ({exc})") from None
    mapping, not_unrelated = read_class_map(class_map)
    made = meta.get("class_map") if isinstance(meta, dict) else None
    if made is not None:
        want = {"classes": mapping, "not_unrelated": sorted(not_unrelated)}
        if made != want:
            diff = sorted(c for c in set(made.get("classes", {})) | set(mapping)
                          if made.get("classes", {}).get(c) != mapping.get(c))
            raise ValueError(f"{path}: composed with another class map than {class_map} (classes that differ: "
                             f"{diff or 'none; not_unrelated differs'})")
    if full_share is not None and "full_share" in meta and abs(float(meta["full_share"]) - full_share) > 1e-9:
        raise ValueError(f"{path}: composed with full_share {meta['full_share']}, not {full_share}")
    made_background = int(meta.get("background_videos", 0)) if isinstance(meta, dict) else 0
    if background_videos is not None and made_background != background_videos:
        raise ValueError(f"{path}: composed with {made_background} background videos, not {background_videos}")
