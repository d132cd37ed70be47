"""torch.distributed set-up from torchrun or SLURM variables; a single process is world size 1.

Launch many processes with e.g. ``torchrun --standalone --nproc_per_node=4 -m avloc train ...``
(or ``srun`` under SLURM). Backend: nccl on CUDA, gloo on CPU. Rank 0 alone logs and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(*names: str) -> int | None:
    for name in names:
        if name in os.environ:
            return int(os.environ[name])
    return None


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group when launched by torchrun/SLURM; otherwise return the single-process info."""
    world = _env_int("WORLD_SIZE", "SLURM_NTASKS") or 1
    if world <= 1:
        return DistInfo()
    rank = _env_int("RANK", "SLURM_PROCID") or 0
    local = _env_int("LOCAL_RANK", "SLURM_LOCALID") or 0
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world))
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over ranks (used for logged losses; gradients go through DDP)."""
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t)
        t /= info.world_size
    return t

