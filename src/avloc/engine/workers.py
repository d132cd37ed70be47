"""Train many independent runs ("cells") over several workers: local processes and/or torchrun ranks.

Every worker walks the same list of cells and trains the ones it can *claim*. A claim is an exclusive
``flock`` on ``<cell>.lock`` beside the cell's run folder, held while the cell trains: two workers never
train the same cell, and the kernel drops the lock of a worker that is killed, so a live worker claims that
cell next and resumes it from its ``last.pt``. A worker keeps polling until every cell has a
``report.json`` (finished) or a ``failed.txt`` (its error, recorded so that the other cells go on). Across
machines the cells' folder must be on a shared file system whose ``flock`` is seen by all of them (NFS
v4 is; Lustre needs the ``flock`` mount option).

Workers never form a process group: each trains its cell as one process. Local workers get an equal share
of the CPU threads, or one GPU each (round-robin) when CUDA is there; under ``torchrun`` / ``srun`` every
rank is a worker (``LOCAL_RANK`` picks its GPU).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from avloc.config import Config
from avloc.engine.build import load_data
from avloc.engine.loop import fit
from avloc.formats.atomic import write_text_atomic

REPORT, FAILED = "report.json", "failed.txt"
POLL_SECONDS = 0.5  # how often a worker with nothing to claim looks again
# Variables that make ``fit`` join a process group; a worker hides them so each cell trains on its own.
LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


@dataclass
class Cell:
    """One training run: its folder, its resolved config, and the label its log line shows."""

    run_dir: Path
    cfg: Config
    label: str

    @property
    def done(self) -> bool:
        return (self.run_dir / REPORT).exists()

    @property
    def failed(self) -> bool:
        return (self.run_dir / FAILED).exists()


@dataclass(frozen=True)
class Launch:
    """Where this process sits among the ranks that ``torchrun`` or ``srun`` started (one when neither)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def launch_from_env() -> Launch:
    """Read rank, world size and local rank from torchrun's or SLURM's variables."""

    def first(*names: str, default: int) -> int:
        for name in names:
            if os.environ.get(name, "") != "":
                return int(os.environ[name])
        return default

    world = first("WORLD_SIZE", "SLURM_NTASKS", default=1)
    if world <= 1:
        return Launch()
    return Launch(rank=first("RANK", "SLURM_PROCID", default=0), world_size=world,
                  local_rank=first("LOCAL_RANK", "SLURM_LOCALID", default=0))


@contextlib.contextmanager
def claim(cell: Cell) -> Iterator[bool]:
    """Yield True while this process holds ``cell``'s lock, False when another process holds it."""
    lock_path = cell.run_dir.parent / f"{cell.run_dir.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            fh.truncate(0)
            fh.write(f"{socket.gethostname()} pid {os.getpid()}\n")  # who trains it, for a human reader
            fh.flush()
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _single_process() -> Iterator[None]:
    """Hide the launcher's variables while a cell trains, so ``fit`` does not wait for a process group."""
    saved = {name: os.environ.pop(name) for name in LAUNCH_VARS if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def work(cells: list[Cell], data_root: str | Path, log: Callable[[str], Any] = print, tag: str = "") -> int:
    """Claim and train cells until each is finished or failed; returns how many this worker trained.

    One data set is kept in RAM at a time (``cells`` sorted by data config keeps reloads rare)."""
    data_key, data = "", None
    trained = 0
    while True:
        open_cells = [c for c in cells if not c.done and not c.failed]
        if not open_cells:
            return trained
        claimed_any = False
        for cell in open_cells:
            with claim(cell) as mine:
                if not mine or cell.done or cell.failed:  # re-checked under the lock: another worker finished
                    continue
                claimed_any = True
                key = json.dumps(cell.cfg.to_dict()["data"], sort_keys=True)
                try:
                    if key != data_key:
                        data_key, data = "", None  # drop the previous data set before reading the next
                        data = load_data(cell.cfg, data_root)
                        data_key = key
                    log(f"{tag}{cell.label}: training -> {cell.run_dir}")
                    with _single_process():
                        # resume: a killed cell goes on from last.pt, one without it starts afresh
                        fit(cell.cfg, data_root, cell.run_dir, resume=True, data=data, log=lambda *_: None)
                    trained += 1
                except Exception as exc:  # recorded, so this and the other workers go on with other cells
                    cell.run_dir.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(cell.run_dir / FAILED, traceback.format_exc())
                    log(f"{tag}{cell.label}: FAILED ({type(exc).__name__}: {exc}); see {cell.run_dir / FAILED}")
        if not claimed_any:
            time.sleep(POLL_SECONDS)  # every open cell is held by another worker: wait for one to finish or die


def _worker_device(index: int) -> str | None:
    """``cuda:k`` for global worker ``index`` when CUDA is there (one GPU each, round-robin), else None."""
    if not torch.cuda.is_available():
        return None
    return f"cuda:{index % torch.cuda.device_count()}"


def _assign(cells: list[Cell], index: int, threads: int) -> list[Cell]:
    """The cells with this worker's device and thread share filled in where the config left them open
    (``train.device: auto``, ``train.threads: 0``); neither key enters a cell's folder name."""
    device = _worker_device(index)
    out = []
    for cell in cells:
        train = cell.cfg.train
        if device is not None and train.device == "auto":
            train.device = device
        if train.threads == 0:
            train.threads = threads
        out.append(cell)
    return out


def _local_worker(cells: list[Cell], data_root: str, index: int, threads: int) -> None:
    work(_assign(cells, index, threads), data_root, log=lambda line: print(line, flush=True),
         tag=f"[worker {index}] ")


def run_workers(cells: list[Cell], data_root: str | Path, workers: int = 1,
                log: Callable[[str], Any] = print) -> list[Cell]:
    """Train ``cells`` with ``workers`` local processes (per torchrun / srun rank when launched so).

    Failed markers left by an earlier invocation are cleared first (by rank 0), so a re-run retries them.
    Returns the cells that failed in this invocation; on ranks other than 0 it returns once no cell is open.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    launch = launch_from_env()
    if launch.rank == 0:
        for cell in cells:
            (cell.run_dir / FAILED).unlink(missing_ok=True)
    total_threads = torch.get_num_threads()
    if workers == 1:
        index = launch.local_rank
        work(_assign(cells, index, 0 if launch.world_size == 1 else total_threads), data_root, log=log,
             tag="" if launch.world_size == 1 else f"[rank {launch.rank}] ")
    else:
        share = max(1, total_threads // workers)
        # Fresh processes (a fork of this one would copy its thread pools and CUDA state) forked from one
        # server that imports torch, and torch._dynamo (which Adam imports), once rather than per worker.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "torch._dynamo"])
        procs = [ctx.Process(target=_local_worker, args=(cells, str(data_root), launch.local_rank * workers + i,
                                                         share), name=f"avloc-worker-{i}")
                 for i in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        work(cells, data_root, log=log)  # a cell whose worker died outside fit: finish it here
    return [c for c in cells if c.failed]
