"""The ``features.json`` sidecar that ``avloc extract`` writes beside the features it makes.

Its ``data`` section is the data-config section that reads the folder (for UnAV: file suffixes, dims and the
time grid ``feat_stride`` / ``num_frames`` / ``fps``). ``avloc train`` layers it over the config file, so that
training on extracted features needs no hand-copied grid: the grid the features were made on is the grid the
dataset maps back to seconds. JSON only (no torch, no PyAV), so reading it costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FILE = "features.json"


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The parsed ``folder/features.json``: a JSON object, or an error that names the file."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no feature sidecar; was this folder written by avloc extract?")
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable feature sidecar ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the feature sidecar is not a JSON object")
    return raw


def sidecar_data_section(folder: str | Path) -> dict[str, Any] | None:
    """The ``data`` section of ``folder/features.json``; None when the folder has no sidecar."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        return None
    section = read_sidecar(folder).get("data")
    if not isinstance(section, dict) or not isinstance(section.get("name"), str):
        raise ValueError(f"{path}: the feature sidecar has no 'data' section with a dataset 'name'")
    return section


def sidecar_failed(folder: str | Path) -> list[dict[str, Any]]:
    """The videos ``avloc extract`` could not make features for (``failed``: row, id, reason): their AVE h5 rows
    are zeros. Empty when the folder has no sidecar (the official features) or nothing failed."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        return []
    failed = read_sidecar(folder).get("failed", [])
    if not isinstance(failed, list) or not all(isinstance(f, dict) and "id" in f for f in failed):
        raise ValueError(f"{path}: 'failed' must be a list of {{row, id, reason}} objects")
    return failed
