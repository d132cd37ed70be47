"""``model.json``: what a trained model needs at inference beside its weights and config.

A run folder's ``config.yaml`` fixes the architecture (dims filled in from the data) and the proposal settings,
``best.pt`` the weights. What is left lives in the training data: the class names and how the features were
made. ``avloc train`` copies both here, so that a run folder (or a model file exported from it) predicts on a
machine that never saw the training data. JSON only, read without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avloc.formats.atomic import write_text_atomic

MODEL_RECORD = "model.json"
RECORD_VERSION = 1


class RecordError(ValueError):
    """A model record that cannot be read; the message names the file."""


@dataclass(frozen=True)
class ModelRecord:
    """``class_names`` (C,) in the model's output order (AVE: background last); ``features``: the
    ``features.json`` of the training data without its per-video list (backbones, their settings, the grid,
    dims), or None when the features were not made by ``avloc extract`` (then the backbones must be named)."""

    task: str
    class_names: list[str]
    audio_dim: int
    visual_dim: int
    features: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, **asdict(self)}

    @staticmethod
    def from_json(raw: Any, where: str) -> "ModelRecord":
        """Parse and check a record; ``where`` names its source in errors (a file, or a file's entry)."""
        if not isinstance(raw, dict):
            raise RecordError(f"{where}: the model record is not a JSON object")
        version = raw.get("version")
        if version != RECORD_VERSION:
            raise RecordError(f"{where}: model record version {version!r}; this avloc reads version "
                              f"{RECORD_VERSION} (made by another avloc release)")
        try:
            rec = ModelRecord(str(raw["task"]), [str(n) for n in raw["class_names"]], int(raw["audio_dim"]),
                              int(raw["visual_dim"]), raw.get("features"))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{where}: malformed model record ({type(exc).__name__}: {exc})") from None
        if rec.features is not None and not isinstance(rec.features, dict):
            raise RecordError(f"{where}: 'features' must be a features.json object or null")
        return rec


def features_recipe(sidecar: dict[str, Any]) -> dict[str, Any]:
    """A ``features.json`` object without its per-video entries: how any video's features are made."""
    return {k: v for k, v in sidecar.items() if k != "videos"}


def write_record(run_dir: Path, record: ModelRecord) -> None:
    write_text_atomic(run_dir / MODEL_RECORD, json.dumps(record.to_json(), indent=1) + "\n")


def read_record(run_dir: Path) -> ModelRecord | None:
    """The record of a run folder; None for a run trained before avloc kept one."""
    path = run_dir / MODEL_RECORD
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable ({exc})") from None
    return ModelRecord.from_json(raw, str(path))
