"""The videos a prediction is asked for: files, folders and list files, each checked before any work."""

from __future__ import annotations

from pathlib import Path

from avloc.inference.prediction import PredictError
from avloc.media.decode import MediaError, probe
from avloc.media.extract_folder import collect_inputs


def readable_videos(items: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Usable inputs and one message per unusable one (missing, not a video PyAV can read). Two usable
    inputs with one video id (file name without extension) would write one report folder: an error."""
    ok: list[Path] = []
    bad: list[str] = []
    for path in collect_inputs(items):
        if not path.is_file():
            bad.append(f"{path}: video file not found")
            continue
        try:
            probe(path)
        except MediaError as exc:
            bad.append(f"{path}: unreadable video ({exc.reason})")  # the path once
            continue
        ok.append(path)
    ids = [p.stem for p in ok]
    if len(set(ids)) != len(ids):
        raise PredictError(f"two inputs share a video id (file name without extension): {sorted(ids)}")
    return ok, bad
