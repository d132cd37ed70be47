"""One training loop for every method: ``fit`` builds the run, trains epoch by epoch, selects on val,
checkpoints and writes the report.

The loop knows models, losses, datasets and evaluators only through the registries. Model selection is on
the *validation* split; the report gives the test score of the val-selected checkpoint and, separately and
labelled as such, the best test score over all evaluations (what the official repos report).

Single process: ``avloc train CONFIG --data DIR --out RUN``. Many processes (CPU gloo or GPU nccl):
``torchrun --standalone --nproc_per_node=N -m avloc train CONFIG --data DIR --out RUN``; the global batch
``train.batch_size`` is split evenly over ranks and the learning rate is not rescaled.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from avloc.config import Config, TrainConfig
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.build import (
    Run,
    build_run,
    check_run_folder,
    open_run,
    resume_run,
    rng_state,
    start_run_folder,
)
from avloc.engine.checkpoint import save_atomic
from avloc.engine.finish import write_report
from avloc.engine.run_folder import RunLock, append_metrics
from avloc.losses.base import Loss
from avloc.models.outputs import float32_fields
from avloc.registry import ConfigError


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
        loss_fn.step = epoch * len(batches) + steps  # global step, from the loop's own state
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
                         "rng": rng_state(run.device), "state": dict(state)}, run.last_path)
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

def _epoch_line(row: dict[str, Any], primary: str) -> str:
    parts = [f"epoch {row['epoch']:>3}", f"loss {row.get('train_loss', float('nan')):.4f}", f"{row['seconds']:.1f}s"]
    if f"val_{primary}" in row:
        parts += [f"val {primary} {row[f'val_{primary}']:.4f}", f"test {primary} {row[f'test_{primary}']:.4f}"]
    return " | ".join(parts)
