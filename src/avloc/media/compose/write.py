"""A benchmark composed of real media: real recordings and real photos on a known timeline, as real video files.

``write_media_ave`` writes the AVE layout: ``videos/<id>.mp4`` (10 s each), ``Annotations.txt`` and the split
files ``trainSet.txt`` / ``valSet.txt`` / ``testSet.txt`` (AVE's ``Category&VideoID&Quality&Start&End``, with
this set's own class names; ``background`` for a training video without an event),
``{train,val,test}_order.h5`` (rows of Annotations.txt) and ``classes.txt``.
``write_media_unav`` writes the UnAV layout: longer videos with several events and the annotation JSON
(``{"database": {id: {duration, subset, annotations: [{segment, label, label_id}]}}}``). Both write
``timeline.json``: per video and second what is heard and what is seen, and which file each came from.

Splits are by source (ESC folds for sounds, disjoint photos: :mod:`avloc.media.compose.sources`), classes are
balanced per split, and the same inputs and seed give the same bytes. This is composed real media (still
photos, no motion, no natural co-occurrence): tables that use it must say so, never "AVE" or "UnAV".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from avloc.data.ave_labels import BACKGROUND_NAME
from avloc.formats.atomic import write_text_atomic
from avloc.media.compose.sources import SPLITS, MediaSources, collect_sources, read_class_map
from avloc.media.compose.timeline import P_FULL, Timeline, ave_timeline, background_timeline, runs, unav_timeline
from avloc.media.compose.video import MediaCache, VideoFormat, encode, render_audio

UNAV_SUBSETS = {"train": "train", "val": "validation", "test": "test"}  # the unav loader's default names
SET_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
UNAV_ANNOTATIONS = "unav100_annotations.json"  # the unav loader's default file name


def _split_counts(videos: int) -> dict[str, int]:
    """AVE's 3339 / 402 / 402 proportions, at least one video per split."""
    val = max(1, round(videos * 402 / 4143))
    return {"train": max(1, videos - 2 * val), "val": val, "test": val}


def _pick(rng: np.random.Generator, items: list[Path]) -> Path:
    return items[int(rng.integers(len(items)))]


def _render(vid_path: Path, tl: Timeline, src: MediaSources, split: str, cache: MediaCache,
            rng: np.random.Generator) -> dict[str, Any]:
    """Choose a recording per audio run and a photo per visual run, encode, and return the provenance."""
    sounds = {(s, e): _pick(rng, src.sounds[split][lab]) for lab, s, e in runs(tl.audio) if lab}
    photos = {(s, e): _pick(rng, src.photos[split][lab] if lab else src.unrelated[split])
              for lab, s, e in runs(tl.visual)}
    seconds = [cache.photo(p) for (s, e), p in sorted(photos.items()) for _ in range(e - s)]
    wave = render_audio(tl, sounds, cache, rng)
    encode(vid_path, seconds, wave, cache.fmt)
    return {"split": split, "audio": tl.audio, "visual": tl.visual, "kinds": tl.kinds(src.visual_classes),
            "sounds": [[s, e, f"{p.parent.name}/{p.name}"] for (s, e), p in sorted(sounds.items())],
            "photos": [[s, e, p.name] for (s, e), p in sorted(photos.items())]}


def _compose(out: Path, counts: dict[str, int], seed: int, src: MediaSources, fmt: VideoFormat, prefix: str,
             draw: Callable[[np.random.Generator, int], Timeline], stream: tuple[int, ...] = ()
             ) -> dict[str, dict[str, Any]]:
    """Render ``counts[split]`` videos per split; video i of split si draws from ``rng([seed, si, i, *stream])``
    (another ``stream`` composes more videos without changing those composed before)."""
    (out / "videos").mkdir(parents=True, exist_ok=True)
    cache = MediaCache(fmt)
    records: dict[str, dict[str, Any]] = {}
    k = 0  # running index over all videos: classes take turns across the splits too
    for split, n in counts.items():
        si = SPLITS.index(split)
        for i in range(n):
            rng = np.random.default_rng([seed, si, i, *stream])
            tl = draw(rng, k)
            k += 1
            vid = f"{prefix}_{split}_{i:05d}"
            records[vid] = _render(out / "videos" / f"{vid}.mp4", tl, src, split, cache, rng)
            records[vid]["events"] = [list(e) for e in tl.events]
    return records


def _sources(sounds: str | Path, photos: str | Path, class_map: str | Path) -> MediaSources:
    mapping, not_unrelated = read_class_map(class_map)
    return collect_sources(sounds, photos, mapping, str(class_map), not_unrelated)


def _timeline_json(out: Path, layout: str, src: MediaSources, seed: int, records: dict[str, Any],
                   class_map: str | Path, full_share: float | None = None, background_videos: int = 0) -> None:
    """``timeline.json``, with what the composition was made with (``check_composition`` reads it back)."""
    mapping, not_unrelated = read_class_map(class_map)
    made_with: dict[str, Any] = {"class_map": {"classes": mapping, "not_unrelated": sorted(not_unrelated)}}
    if full_share is not None:
        made_with["full_share"] = full_share
    if background_videos:
        made_with["background_videos"] = background_videos
    meta = {"layout": layout, "composed_real_media": True, "seed": seed, "classes": src.visual_classes,
            "audio_only_classes": src.audio_only(), **made_with, "videos": records}
    write_text_atomic(out / "timeline.json", json.dumps(meta, indent=1) + "\n")


def write_media_ave(out: str | Path, sounds: str | Path, photos: str | Path, class_map: str | Path,
                    videos: int, seed: int = 0, fmt: VideoFormat = VideoFormat(), full_share: float = P_FULL,
                    background_videos: int = 0) -> dict[str, Any]:
    """Compose ``videos`` 10-s videos (one event class each) in the AVE layout under ``out``; ``full_share``:
    the share of videos whose event spans the whole clip (``ave_timeline``).

    ``background_videos`` more training videos hold no event (``background_timeline``; ``background`` in
    Annotations.txt). AVE's weak setting trains beside 178 such videos: a model that learns from video labels
    alone, such as AVEL's, can answer background for a second only if some training video is background."""
    if not 0.0 <= full_share <= 1.0:
        raise ValueError(f"full_share (--full-share) must be within [0, 1], got {full_share}")
    if background_videos < 0:
        raise ValueError(f"background_videos (--background-videos) must be >= 0, got {background_videos}")
    import h5py

    out = Path(out)
    src = _sources(sounds, photos, class_map)
    classes = src.visual_classes
    audio_only = src.audio_only()

    def draw(rng: np.random.Generator, i: int) -> Timeline:
        return ave_timeline(rng, classes[i % len(classes)], audio_only, full_share)

    records = _compose(out, _split_counts(videos), seed, src, fmt, "ave", draw)
    records.update(_compose(out, {"train": background_videos}, seed, src, fmt, "ave_background",
                            lambda rng, i: background_timeline(rng, classes, audio_only), stream=(1,)))
    lines = {s: [] for s in SPLITS}
    for vid, rec in records.items():
        cls, start, end = rec["events"][0] if rec["events"] else (BACKGROUND_NAME, 0, 0)
        lines[rec["split"]].append(f"{cls}&{vid}&good&{start}&{end}\n")
    write_text_atomic(out / "Annotations.txt", "".join(ln for s in SPLITS for ln in lines[s]))
    first = 0
    for s in SPLITS:
        write_text_atomic(out / SET_FILES[s], "".join(lines[s]))
        tmp = out / f".{s}_order.tmp.h5"
        with h5py.File(tmp, "w", libver=("earliest", "v110")) as h5:
            h5.create_dataset("order", data=np.arange(first, first + len(lines[s]), dtype=np.int64))
        os.replace(tmp, out / f"{s}_order.h5")
        first += len(lines[s])
    write_text_atomic(out / "classes.txt", "".join(f"{c}\n" for c in classes))
    _timeline_json(out, "ave", src, seed, records, class_map, full_share, background_videos)
    return {"videos": len(records), "classes": classes, "audio_only_classes": audio_only}


def write_media_unav(out: str | Path, sounds: str | Path, photos: str | Path, class_map: str | Path,
                     videos: int, seed: int = 0, fmt: VideoFormat = VideoFormat(),
                     seconds: tuple[int, int] = (20, 40)) -> dict[str, Any]:
    """Compose ``videos`` videos of ``seconds`` (min, max) with 1-3 events each in the UnAV layout."""
    out = Path(out)
    src = _sources(sounds, photos, class_map)
    classes, audio_only = src.visual_classes, src.audio_only()
    records = _compose(out, _split_counts(videos), seed, src, fmt, "unav",
                       lambda rng, i: unav_timeline(rng, classes, audio_only, *seconds))
    database = {
        vid: {"duration": float(len(rec["audio"])), "subset": UNAV_SUBSETS[rec["split"]],
              "annotations": [{"segment": [float(s), float(e)], "label": c, "label_id": classes.index(c)}
                              for c, s, e in rec["events"]]}
        for vid, rec in records.items()}
    write_text_atomic(out / UNAV_ANNOTATIONS, json.dumps({"version": "composed real media", "database": database},
                                                   indent=1) + "\n")
    write_text_atomic(out / "classes.txt", "".join(f"{c}\n" for c in classes))
    _timeline_json(out, "unav", src, seed, records, class_map)
    return {"videos": len(records), "classes": classes, "audio_only_classes": audio_only}
