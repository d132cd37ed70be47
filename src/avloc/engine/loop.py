"""One training loop for every method: fit, evaluate, checkpoint, resume.

The loop knows models, losses, datasets and evaluators only through the registries. Model selection is on
the *validation* split; the report gives the test score of the val-selected checkpoint and, separately and
labelled as such, the best test score over all evaluations (what the official repos report).

Single process: ``avloc train CONFIG --data DIR --out RUN``. Many processes (CPU gloo or GPU nccl):
``torchrun --standalone --nproc_per_node=N -m avloc train CONFIG --data DIR --out RUN``; the global batch
``train.batch_size`` is split evenly over ranks and the learning rate is not rescaled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from avloc.catalog import DATASETS, EVALUATORS, LOSSES, MODELS
from avloc.config import Config, TrainConfig, save_config, with_data_dims
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.checkpoint import load_safe, save_atomic
from avloc.engine.memory import peak_rss_mb, reset_peak_rss
from avloc.engine.precision import bf16_matmul_support
from avloc.engine.run_folder import (
    RunLock,
    append_metrics,
    check_new_run,
    check_same_data,
    clean_stale_temps,
    data_fingerprint,
    record_data,
    remove_run_files,
    repair_metrics,
    write_text_atomic,
)
from avloc.evaluation.base import Evaluator
from avloc.losses.base import Loss
from avloc.models.base import AVModel
from avloc.models.outputs import float32_fields
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


def lr_at_epoch(cfg: Config, epoch: int) -> float:
    """LR for 0-based ``epoch``: decayed by ``lr_gamma`` after each 1-indexed epoch in ``lr_decay_epochs``."""
    n = sum(1 for m in cfg.train.lr_decay_epochs if epoch >= m)
    return cfg.train.lr * (cfg.train.lr_gamma**n)


def batches_per_epoch(n: int, train: TrainConfig) -> int:
    """Global batches in one pass over ``n`` training videos (the last partial one dropped with drop_last)."""
    return n // train.batch_size if train.drop_last else math.ceil(n / train.batch_size)


def epoch_batches(
    n: int, cfg: Config, epoch: int, info: dist_utils.DistInfo
) -> Iterator[torch.Tensor]:
    """Positions (into the train split) of this rank's share of each global batch, reshuffled every epoch
    from ``seed`` and ``epoch`` alone so a resumed run sees exactly the same order."""
    gen = torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    bs = cfg.train.batch_size
    n_batches = batches_per_epoch(n, cfg.train)
    if n_batches == 0:
        raise ConfigError(f"train.batch_size={bs} is larger than the training split ({n} videos) with drop_last")
    for b in range(n_batches):
        chunk = perm[b * bs : (b + 1) * bs]
        yield chunk[info.rank :: info.world_size]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(cfg: Config, device: torch.device) -> contextlib.AbstractContextManager:
    if cfg.train.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _progress(cfg: Config, total: int, desc: str, info: dist_utils.DistInfo) -> Any:
    show = cfg.train.progress and info.is_main and sys.stderr.isatty() and not os.environ.get("CI")
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def train_one_epoch(
    model: torch.nn.Module,
    loss_fn: Loss,
    opt: torch.optim.Optimizer,
    data: InMemoryDataset,
    cfg: Config,
    epoch: int,
    device: torch.device,
    info: dist_utils.DistInfo,
) -> dict[str, float]:
    """One pass over the training split; returns the mean of every loss part."""
    model.train()
    train_idx = data.splits["train"]
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    batches = list(epoch_batches(len(train_idx), cfg, epoch, info))
    bar = _progress(cfg, len(batches), f"epoch {epoch + 1}", info)
    for batch in data.batches(train_idx[pos] for pos in batches):
        batch = _to(batch, device)
        with _autocast(cfg, device):
            out = model(batch)
        out = float32_fields(out)
        parts = loss_fn(out, batch)
        loss = parts["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, step {steps + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
        steps += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    if bar is not None:
        bar.close()
    return {f"train_{k}": dist_utils.all_reduce_mean(v / steps, info).item() for k, v in sums.items()}


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


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
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


def fit(
    cfg: Config,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    data: InMemoryDataset | None = None,
    log: Any = print,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` on the data in ``data_root`` and write the run folder ``run_dir``.

    One process writes a run folder at a time (an advisory lock). A fresh run refuses a folder holding
    another run's files unless ``overwrite``; nothing is written into the folder before the data and the
    model are built, so a run that cannot start leaves it as it was.

    Args:
        resume: continue from ``run_dir/last.pt``; the result equals an uninterrupted run. The config must
            match the saved one except ``train.epochs`` (raise it to add epochs, also to a finished run)
            and the keys in ``RESUME_FREE_KEYS``; the data must match the fingerprint in ``data.json``.
        stop_after: train at most this many epochs in this call, then return (a time-limited job); the
            run is finished later with ``resume=True``.
        data: an already loaded dataset to reuse (several runs on the same data load it once).
        overwrite: start afresh in a folder that holds another run, replacing its files.
    Returns:
        the report dict (also written to ``run_dir/report.json`` when training is complete).
    """
    run = open_run(cfg, run_dir, resume)  # 1. device, then the run folder: one writer, no other run, same data
    with RunLock(run.run_dir) if run.info.is_main else contextlib.nullcontext():
        check_run_folder(run, data_root, resume, overwrite)
        build_run(run, data_root, data)  # 2. data and model
        resume_run(run, resume, log)  # 3. resume
        start_run_folder(run, log)
        train_epochs(run, stop_after, log)  # 4. epochs
        if run.state["epoch"] < cfg.train.epochs:
            return {"finished": False, "epoch": run.state["epoch"]}
        return write_report(run)  # 5. report


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
    path = run_dir / "config.yaml"
    try:
        return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc


def build_run(run: Run, data_root: str | Path, data: InMemoryDataset | None = None) -> None:
    """Load the data (unless given), then seed and build the model, loss, evaluator and optimizer."""
    reset_peak_rss()  # report this run's peak (data included), not an earlier run's in the same process
    t_load = time.perf_counter()
    run.data = data if data is not None else load_data(run.cfg, data_root)
    run.load_seconds = time.perf_counter() - t_load
    _warn_overridden_dims(run.cfg, run.data)
    run.cfg = with_data_dims(run.cfg, run.data.model_dims())
    torch.manual_seed(run.cfg.train.seed)
    run.model = build_model(run.cfg, run.data).to(run.device)
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
    repair_metrics(run.run_dir / "metrics.jsonl", run.state["epoch"])
    log(f"model {run.cfg.name('model')}: {run.model.num_parameters():,} parameters; "  # type: ignore[union-attr]
        f"data {run.cfg.name('data')}: {len(run.data.splits['train'])} train videos; "  # type: ignore[union-attr]
        f"device {run.device}; world size {run.info.world_size}")
    if run.cfg.train.precision == "bf16":
        fast, reason = bf16_matmul_support(run.device)
        if not fast:  # still bf16, as the config asks: the results are what the user asked for
            log(f"warning: train.precision=bf16 without fast bf16 matmuls ({reason}): expect it to be slower "
                "than fp32 (`avloc bench ave --precisions fp32 bf16` measures both)")


def train_epochs(run: Run, stop_after: int | None, log: Any) -> None:
    """Train from the saved epoch on; evaluate, select on val, checkpoint and log after each epoch."""
    cfg, state, model, opt = run.cfg, run.state, run.model, run.opt
    assert model is not None and opt is not None and run.evaluator is not None and run.data is not None
    ddp_model: torch.nn.Module = DistributedDataParallel(model) if run.info.enabled else model
    primary = run.evaluator.primary
    for epochs_run, epoch in enumerate(range(state["epoch"], cfg.train.epochs)):
        if stop_after is not None and epochs_run >= stop_after:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at_epoch(cfg, epoch)
        t0 = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
        try:
            row.update(train_one_epoch(ddp_model, run.loss_fn, opt, run.data, cfg, epoch, run.device, run.info))
        except FloatingPointError as exc:
            kept = f"; last.pt keeps epoch {state['epoch']}" if state["epoch"] else ""
            raise FloatingPointError(f"{run.run_dir}: {exc} (unscaled features or too high a train.lr?){kept}"
                                     ) from None
        row["seconds"] = time.perf_counter() - t0
        state["train_seconds"] += row["seconds"]
        last_epoch = epoch + 1 == cfg.train.epochs
        if run.info.is_main and ((epoch + 1) % cfg.train.eval_every == 0 or last_epoch):
            _evaluate_epoch(run, epoch, row)
        state["epoch"] = epoch + 1
        if run.info.is_main:  # the row first: a kill between the two re-runs the epoch and rewrites its row
            append_metrics(run.run_dir / "metrics.jsonl", row)
            save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(),
                         "rng": _rng_state(run.device), "state": dict(state)}, run.last_path)
            log(_epoch_line(row, primary))
        dist_utils.barrier(run.info)


def _evaluate_epoch(run: Run, epoch: int, row: dict[str, Any]) -> None:
    """Score val and test; keep the val-selected checkpoint and its scores (the report reuses them)."""
    assert run.evaluator is not None and run.model is not None and run.data is not None
    t1 = time.perf_counter()
    scores = {split: run.evaluator(run.model, run.data, split, run.device, run.cfg.train.eval_batch_size)
              for split in ("val", "test")}
    row.update({f"{split}_{k}": v for split, metrics in scores.items() for k, v in metrics.items()})
    row["eval_seconds"] = time.perf_counter() - t1
    p = run.evaluator.primary
    if scores["val"][p] > run.state["best_val"]:
        run.state.update(best_val=scores["val"][p], best_epoch=epoch + 1, selected=scores)
        save_atomic({"model": run.model.state_dict(), "epoch": epoch + 1}, run.best_path)
    if scores["test"][p] > run.state["best_test"]:
        run.state.update(best_test=scores["test"][p], best_test_epoch=epoch + 1)


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


def _epoch_line(row: dict[str, Any], primary: str) -> str:
    parts = [f"epoch {row['epoch']:>3}", f"loss {row.get('train_loss', float('nan')):.4f}", f"{row['seconds']:.1f}s"]
    if f"val_{primary}" in row:
        parts += [f"val {primary} {row[f'val_{primary}']:.4f}", f"test {primary} {row[f'test_{primary}']:.4f}"]
    return " | ".join(parts)


def evaluate_run(run_dir: str | Path, data_root: str | Path, split: str = "test",
                 device: str = "auto", checkpoint: str = "best.pt") -> dict[str, Any]:
    """Score a finished run folder's checkpoint on one split (``avloc eval``)."""
    from avloc.config import load_config

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder: config.yaml is missing")
    cfg = load_config(cfg_path)
    data = load_data(cfg, data_root)
    if split not in data.splits:
        raise ConfigError(f"unknown split {split!r}; the data has {sorted(data.splits)}")
    dev = resolve_device(device)
    model = build_model(cfg, data).to(dev)
    model.load_state_dict(load_safe(run_dir / checkpoint)["model"])
    evaluator = build_evaluator(cfg)
    t0 = time.perf_counter()
    metrics = evaluator(model, data, split, dev, cfg.train.eval_batch_size)
    return {"run": str(run_dir), "split": split, "checkpoint": checkpoint, **metrics,
            "eval_seconds": time.perf_counter() - t0}
