"""Finishing a run (the report of the val-selected checkpoint) and scoring a finished run folder again
(``avloc eval``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from avloc.engine import distributed as dist_utils
from avloc.engine.build import Run, build_evaluator, build_model, load_data, resolve_device
from avloc.engine.checkpoint import load_safe
from avloc.engine.memory import peak_rss_mb
from avloc.engine.run_folder import recorded_data_folder
from avloc.formats.atomic import write_text_atomic
from avloc.registry import ConfigError


def write_report(run: Run) -> dict[str, Any]:
    """Write ``report.json`` (rank 0) from the val-selected epoch's scores; the evaluator adds artefacts."""
    report: dict[str, Any] = {}
    if run.info.is_main:
        report = _final_report(run)
        write_text_atomic(run.run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    dist_utils.barrier(run.info)
    return report

def _final_report(run: Run) -> dict[str, Any]:
    """The selected epoch was scored on val and test when it was selected; only the evaluator's artefacts
    (e.g. the test predictions file) need the reloaded checkpoint."""
    cfg, state, model, evaluator = run.cfg, run.state, run.model, run.evaluator
    assert model is not None and evaluator is not None and run.data is not None
    model.load_state_dict(load_safe(run.best_path)["model"])
    bs = cfg.train.eval_batch_size
    selected = state["selected"] or {  # a run folder checkpointed before the scores were kept
        split: evaluator(model, run.data, split, run.device, bs) for split in ("val", "test")}
    val, test = selected["val"], selected["test"]
    p = evaluator.primary
    epochs_done = max(state["epoch"], 1)
    report: dict[str, Any] = {
        "model": cfg.name("model"),
        "loss": cfg.name("loss"),
        "data": cfg.name("data"),
        f"val_{p}": val[p],
        f"test_{p}": test[p],
        f"best_test_{p}": state["best_test"],
        "selected_epoch": state["best_epoch"],
        "best_test_epoch": state["best_test_epoch"],
        "note": f"test_{p} is the val-selected checkpoint; best_test_{p} is the best test score over all "
                "evaluations (test-set selection, what the official repos report)",
        "epochs": state["epoch"],
        "params": model.num_parameters(),
        "seconds_per_epoch": state["train_seconds"] / epochs_done,
        "load_seconds": run.load_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "val": val,
        "test": test,
    }
    report.update(evaluator.finalize(model, run.data, run.run_dir, run.device, bs))
    return report

def evaluate_run(run_dir: str | Path, data_root: str | Path | None = None, split: str = "test",
                 device: str = "auto", checkpoint: str = "best.pt") -> dict[str, Any]:
    """Score a finished run folder's checkpoint on one split (``avloc eval``); ``data_root`` None: the data
    folder the run recorded in ``data.json``."""
    from avloc.config import load_config

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder: config.yaml is missing")
    cfg = load_config(cfg_path)
    data_root = recorded_data_folder(run_dir) if data_root is None else data_root
    data = load_data(cfg, data_root)
    if split not in data.splits:
        raise ConfigError(f"unknown split {split!r}; the data has {sorted(data.splits)}")
    dev = resolve_device(device)
    model = build_model(cfg, data).to(dev)
    model.load_state_dict(load_safe(run_dir / checkpoint)["model"])
    evaluator = build_evaluator(cfg)
    t0 = time.perf_counter()
    metrics = evaluator(model, data, split, dev, cfg.train.eval_batch_size)
    return {"run": str(run_dir), "data": str(data_root), "split": split, "checkpoint": checkpoint, **metrics,
            "eval_seconds": time.perf_counter() - t0}
