"""One portable file per trained model: ``avloc export RUN --out model.avloc``.

The file is a safetensors file (the format model hubs use): the val-selected weights as named tensors, and in
its string metadata the resolved config, the model record (class names, how the features were made), the
avloc release that wrote it and a SHA-256 digest over all of that. Loading parses a JSON header and raw
tensor bytes; nothing in the file is ever executed, unlike a pickled checkpoint.

A file from an avloc release with another format version, or whose config no longer fits this release's
typed defaults, fails with one line that says which and why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avloc.config import Config, resolve
from avloc.engine.checkpoint import content_digest, load_safe
from avloc.formats.model_record import ModelRecord, RecordError
from avloc.inference.prediction import PredictError
from avloc.registry import ConfigError

FORMAT = "avloc-model"
FORMAT_VERSION = 1


@dataclass
class TrainedModel:
    """Everything needed to run a trained model: its resolved config, record and val-selected weights."""

    cfg: Config
    record: ModelRecord
    state: dict[str, torch.Tensor]
    source: str  # where it came from, for messages: a run folder or a model file
    selected_epoch: int = 0


def _digest(state: dict[str, torch.Tensor], config: str, record: str) -> str:
    return content_digest({"model": dict(sorted(state.items())), "config": config, "record": record})


def write_model_file(model: TrainedModel, out: str | Path) -> Path:
    """Write ``model`` to ``out`` atomically (a temp file renamed into place)."""
    from safetensors.torch import save_file

    from avloc import __version__

    out = Path(out)
    if out.is_dir():
        raise PredictError(f"{out}: is a folder; --out names the model file to write (e.g. model.avloc)")
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state.items()}
    config = json.dumps(model.cfg.to_dict(), sort_keys=True)
    record = json.dumps(model.record.to_json(), sort_keys=True)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "avloc_version": __version__,
            "config": config, "record": record, "selected_epoch": str(model.selected_epoch),
            "sha256": _digest(state, config, record)}
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata=meta)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def read_model_file(path: str | Path) -> TrainedModel:
    """Load a file written by ``write_model_file``; every failure is a PredictError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta: dict[str, Any] = fh.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PredictError(f"{path}: not an avloc model file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise PredictError(f"{path}: a safetensors file, but not an avloc model file (no '{FORMAT}' format tag)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise PredictError(f"{path}: model file format {meta.get('format_version')} from avloc "
                           f"{meta.get('avloc_version', '?')}; this avloc reads format {FORMAT_VERSION}: export the "
                           "run again with this release, or predict with the release that wrote it")
    if _digest(state, meta.get("config", ""), meta.get("record", "")) != meta.get("sha256"):
        raise PredictError(f"{path}: content digest mismatch: the file is corrupt or was edited")
    try:
        cfg = resolve(json.loads(meta["config"]), where=f"{path} (config)")
        record = ModelRecord.from_json(json.loads(meta["record"]), f"{path} (record)")
    except (ConfigError, RecordError) as exc:
        raise PredictError(f"{exc} (written by avloc {meta.get('avloc_version', '?')})") from None
    return TrainedModel(cfg, record, state, str(path), int(meta.get("selected_epoch", 0)))


def read_run(run_dir: str | Path, data: str | Path | None = None) -> TrainedModel:
    """The val-selected model of a run folder. Runs trained before ``model.json`` existed rebuild their
    record from the training data (``data``, else the folder ``data.json`` records)."""
    from avloc.config import load_config
    from avloc.engine.checkpoint import CheckpointError
    from avloc.formats.model_record import read_record

    run_dir = Path(run_dir)
    cfg_path, ckpt_path = run_dir / "config.yaml", run_dir / "best.pt"
    if not cfg_path.is_file():
        raise PredictError(f"{run_dir} is not a run folder: {cfg_path} is missing")
    if not ckpt_path.is_file():
        raise PredictError(f"{ckpt_path}: no val-selected checkpoint in the run folder (has training finished?)")
    try:
        cfg = load_config(cfg_path)
        record = read_record(run_dir) or _record_from_data(cfg, run_dir, data)
        ckpt = load_safe(ckpt_path)
    except (ConfigError, RecordError, CheckpointError) as exc:
        raise PredictError(str(exc)) from None
    return TrainedModel(cfg, record, ckpt["model"], str(run_dir), int(ckpt.get("epoch", 0)))


def _record_from_data(cfg: Config, run_dir: Path, data: str | Path | None) -> ModelRecord:
    """A run trained before runs kept ``model.json``: its record, rebuilt from its training data."""
    from avloc.engine.build import load_data, model_record
    from avloc.engine.run_folder import recorded_data_folder

    return model_record(cfg, load_data(cfg, data or recorded_data_folder(run_dir)))
