"""Two-process CPU (gloo) training gives the same numbers as one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from avloc.config import load_config
from avloc.engine.loop import fit
from avloc.tools.paths import config_path

pytestmark = pytest.mark.distributed

# No dropout: each rank draws its own masks, so only a deterministic model can match one process exactly.
OVERRIDES = ["train.epochs=2", "train.batch_size=8", "train.eval_batch_size=16", "train.threads=1",
             "model.dropout=0.0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    cfg = load_config(config_path("ave/psp_fully.yaml"), OVERRIDES)
    fit(cfg, data, out, log=lambda *_: None)
    torch.distributed.destroy_process_group()


def test_two_ranks_match_one(tmp_path: Path) -> None:
    from avloc.data.synth_ave import write_synthetic_ave

    data = tmp_path / "data"
    write_synthetic_ave(data, videos=40, seed=1, dtype="float32")
    single = fit(load_config(config_path("ave/psp_fully.yaml"), OVERRIDES), data, tmp_path / "one",
                 log=lambda *_: None)
    mp.spawn(_worker, args=(2, _free_port(), str(data), str(tmp_path / "two")), nprocs=2, join=True)
    double = json.loads((tmp_path / "two" / "report.json").read_text())
    rows1 = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    rows2 = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows1, rows2):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4, abs=1e-5)
    assert double["test_acc"] == pytest.approx(single["test_acc"], abs=1e-6)
