"""Building a run: the device, the data, the model, loss, evaluator and optimizer, and the checks of the run
folder that must pass before anything is written into it (one writer, no other run, a resume on the same data
and config).

``fit`` (:mod:`avloc.engine.loop`) calls these in order; benchmarks and scripts call the builders alone.
"""

from __future__ import annotations

import dataclasses
import time
import logging
import math
from pathlib import Path
from typing import Any

import torch
import yaml

from avloc.catalog import DATASETS, EVALUATORS, LOSSES, MODELS
from avloc.config import Config, resolve, save_config, with_data_dims
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.checkpoint import load_safe
from avloc.engine.memory import reset_peak_rss
from avloc.engine.precision import bf16_matmul_support
from avloc.engine.run_folder import (
    check_new_run,
    check_same_data,
    clean_stale_temps,
    data_fingerprint,
    record_data,
    remove_run_files,
    repair_metrics,
)
from avloc.evaluation.base import Evaluator
from avloc.formats.feature_sidecar import META_FILE, read_sidecar
from avloc.formats.model_record import ModelRecord, features_recipe, write_record
from avloc.losses.base import Loss
from avloc.models.base import AVModel
from avloc.registry import ConfigError

logger = logging.getLogger(__name__)

# Config keys that may change between a run and its resumption (they do not change the numbers).
RESUME_FREE_KEYS = {"device", "threads", "progress", "eval_batch_size"}

def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available; an explicit ``cuda`` without a GPU is an error, not a fallback."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"train.device={spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={spec!r} but no CUDA device is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device={spec!r} but this machine has {torch.cuda.device_count()} CUDA "
                          "device(s), numbered from 0")
    return dev

def load_data(cfg: Config, data_root: str | Path) -> InMemoryDataset:
    """Read and validate the dataset once; everything downstream reuses the returned tensors."""
    return DATASETS.create(cfg.data, data_root)

def build_model(cfg: Config, data: InMemoryDataset) -> AVModel:
    """Create the model of ``cfg`` with the dims the data fixes (feature sizes, class count) filled in."""
    model = MODELS.create(with_data_dims(cfg, data.model_dims()).model)
    if model.task != data.task:
        raise ConfigError(
            f"model '{cfg.name('model')}' is for task '{model.task}' but data '{cfg.name('data')}' "
            f"is task '{data.task}'"
        )
    return model

def build_loss(cfg: Config) -> Loss:
    return LOSSES.create(cfg.loss)

def check_model_and_loss(cfg: Config, model: AVModel, loss_fn: Loss, device: torch.device) -> None:
    """Score the model's own 2-video example batch with the loss (eval mode, no gradient, no global random
    draw), so that a pair that cannot work together fails when the run is built, naming both."""
    batch = {k: v.to(device) for k, v in model.example_batch(2, torch.Generator().manual_seed(0)).items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss_fn(model(batch), batch)
    except (AttributeError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"model '{cfg.name('model')}' and loss '{cfg.name('loss')}' do not work together: "
                          f"{exc}") from exc
    finally:
        model.train(was_training)

def build_evaluator(cfg: Config) -> Evaluator:
    return EVALUATORS.create(cfg.eval)

def build_optimizer(cfg: Config, model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam (every method's optimizer). On CPU and CUDA it runs as PyTorch's fused kernel: one call for all
    parameters instead of ~10 per parameter; same update rule, rounding may differ in the last bits."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, fused=fused)

def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"escm": {"thr": 1}}}`` -> ``{"model.escm.thr": 1}`` (nested sections compare key by key)."""
    out: dict[str, Any] = {}
    for key, val in d.items():
        if isinstance(val, dict):
            out.update(_flatten(val, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = val
    return out

def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = _flatten(a), _flatten(b)
    free = {f"train.{k}" for k in (*RESUME_FREE_KEYS, "epochs")}  # epochs: checked against the epochs done
    return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
            if k not in free and fa.get(k) != fb.get(k)]

def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state

def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)

@dataclasses.dataclass
class Run:
    """What ``fit``'s steps share: the run folder, where it runs, and the objects built for it."""

    cfg: Config
    run_dir: Path
    device: torch.device
    info: dist_utils.DistInfo
    data: InMemoryDataset | None = None
    model: AVModel | None = None
    loss_fn: Loss | None = None
    evaluator: Evaluator | None = None
    opt: torch.optim.Optimizer | None = None
    load_seconds: float = 0.0
    fingerprint: dict[str, Any] = dataclasses.field(default_factory=dict)  # the data it trains on
    replaced: list[str] = dataclasses.field(default_factory=list)  # old run files removed once it starts
    state: dict[str, Any] = dataclasses.field(default_factory=lambda: {
        "epoch": 0, "best_val": -math.inf, "best_epoch": 0, "best_test": -math.inf, "best_test_epoch": 0,
        "train_seconds": 0.0, "selected": {}})

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

def open_run(cfg: Config, run_dir: str | Path, resume: bool) -> Run:
    """Pick the device and join the process group."""
    run_dir = Path(run_dir)
    device = resolve_device(cfg.train.device)
    info = dist_utils.init_distributed(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    return Run(cfg=cfg, run_dir=run_dir, device=device, info=info)

def check_run_folder(run: Run, data_root: str | Path, resume: bool, overwrite: bool) -> None:
    """Under the lock, before the long data load: the folder holds no other run (or may be replaced), and
    a resumed run's data is the one it was trained on."""
    if not run.info.is_main:
        return
    clean_stale_temps(run.run_dir)
    run.fingerprint = data_fingerprint(data_root, exclude=run.run_dir)
    if resume:
        check_same_data(run.run_dir, run.fingerprint)
    if resume and run.last_path.exists():
        return
    # A fresh start; on --resume without last.pt (the config matched), the leftovers of this same run's
    # unfinished first epoch.
    run.replaced = check_new_run(run.run_dir, overwrite or (resume and (run.run_dir / "config.yaml").exists()))

def _saved_config(run_dir: Path) -> dict[str, Any]:
    """The saved config completed with this release's typed defaults: a key a later release added (absent
    from a run folder written before it) reads as its default, which keeps the old behaviour, so upgrading
    avloc does not block a resume; a key this release no longer knows is refused by name."""
    path = run_dir / "config.yaml"
    try:
        raw = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    try:
        return resolve(raw, where=str(path)).to_dict() if raw else {}
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None

def build_run(run: Run, data_root: str | Path, data: InMemoryDataset | None = None) -> None:
    """Load the data (unless given), then seed and build the model, loss, evaluator and optimizer."""
    reset_peak_rss()  # report this run's peak (data included), not an earlier run's in the same process
    t_load = time.perf_counter()
    run.data = data if data is not None else load_data(run.cfg, data_root)
    run.load_seconds = time.perf_counter() - t_load
    _warn_overridden_dims(run.cfg, run.data)
    run.cfg = with_data_dims(run.cfg, run.data.model_dims())
    init_seed = run.cfg.train.init_seed
    torch.manual_seed(run.cfg.train.seed if init_seed is None else init_seed)
    run.model = build_model(run.cfg, run.data).to(run.device)
    if init_seed is not None:  # the weights from init_seed; dropout (and the order) from train.seed
        torch.manual_seed(run.cfg.train.seed)
    run.loss_fn = build_loss(run.cfg).to(run.device)
    check_model_and_loss(run.cfg, run.model, run.loss_fn, run.device)
    run.evaluator = build_evaluator(run.cfg)
    run.opt = build_optimizer(run.cfg, run.model, run.device)

def _warn_overridden_dims(cfg: Config, data: InMemoryDataset) -> None:
    """The data fixes the model's input dims; say so where that replaces another value in the config."""
    for key, val in data.model_dims().items():
        if getattr(cfg.model, key, val) != val:
            logger.warning("model.%s=%s in the config, but the data in %s has %s: using %s",
                           key, getattr(cfg.model, key), data.root, val, val)

def resume_run(run: Run, resume: bool, log: Any) -> None:
    """Check the config against the saved one (after ``build_run`` filled in the data's dims), then restore
    model, optimizer, RNG and loop state from ``last.pt``."""
    if not resume:
        return
    if (run.run_dir / "config.yaml").exists() or run.last_path.exists():
        diffs = _config_diff(_saved_config(run.run_dir), run.cfg.to_dict())
        if diffs:
            raise ConfigError(f"cannot resume {run.run_dir}: the config differs from the saved one: "
                              f"{'; '.join(diffs)} (a resume may change only train.epochs and "
                              f"{', '.join(f'train.{k}' for k in sorted(RESUME_FREE_KEYS))})")
    if not run.last_path.exists():
        log(f"nothing to resume in {run.run_dir}; starting a new run")
        return
    ckpt = load_safe(run.last_path)
    done = ckpt["state"]["epoch"]
    if run.cfg.train.epochs < done:
        raise ConfigError(f"cannot resume {run.run_dir}: train.epochs={run.cfg.train.epochs} is below the "
                          f"{done} epochs it has trained")
    run.model.load_state_dict(ckpt["model"])  # type: ignore[union-attr]
    run.opt.load_state_dict(ckpt["optimizer"])  # type: ignore[union-attr]
    _set_rng_state(ckpt["rng"], run.device)
    run.state.update(ckpt["state"])
    log(f"resumed {run.run_dir} after epoch {run.state['epoch']}")

def model_record(cfg: Config, data: InMemoryDataset) -> ModelRecord:
    """What inference needs from the training data: class names and, when ``avloc extract`` made the
    features, how (its ``features.json`` without the per-video list)."""
    sidecar = read_sidecar(data.root) if (Path(data.root) / META_FILE).is_file() else None
    return ModelRecord(task=data.task, class_names=list(data.class_names), audio_dim=int(cfg.model.audio_dim),
                       visual_dim=int(cfg.model.visual_dim),
                       features=features_recipe(sidecar) if sidecar is not None else None)


def start_run_folder(run: Run, log: Any) -> None:
    """The run is known to start: replace an old run's files, write the resolved config and the data
    record, drop log rows newer than the checkpoint, and say what runs where."""
    if not run.info.is_main:
        return
    remove_run_files(run.run_dir, run.replaced)
    if run.state["epoch"] < run.cfg.train.epochs:
        (run.run_dir / "report.json").unlink(missing_ok=True)  # more epochs to come: no longer the result
    save_config(run.cfg, run.run_dir / "config.yaml")
    if not (run.run_dir / "data.json").exists() or run.state["epoch"] == 0:
        record_data(run.run_dir, run.fingerprint)
    write_record(run.run_dir, model_record(run.cfg, run.data))  # type: ignore[arg-type]
    repair_metrics(run.run_dir / "metrics.jsonl", run.state["epoch"])
    log(f"model {run.cfg.name('model')}: {run.model.num_parameters():,} parameters; "  # type: ignore[union-attr]
        f"data {run.cfg.name('data')}: {len(run.data.splits['train'])} train videos; "  # type: ignore[union-attr]
        f"device {run.device}; world size {run.info.world_size}")
    if run.cfg.train.precision == "bf16":
        fast, reason = bf16_matmul_support(run.device)
        if not fast:  # still bf16, as the config asks: the results are what the user asked for
            log(f"warning: train.precision=bf16 without fast bf16 matmuls ({reason}): expect it to be slower "
                "than fp32 (`avloc bench ave --precisions fp32 bf16` measures both)")
