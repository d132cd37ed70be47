"""Cells spread over workers: claims exclude each other and die with their holder, 2 workers give the same
table as 1, a failing cell is recorded while the others train, a torchrun rank trains alone and stays quiet."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from avloc.config import load_config
from avloc.engine.workers import FAILED, Cell, claim, run_workers
from avloc.tools.paths import config_path
from avloc.tools.reproduce import CellsFailed, run_table

QUICK = ["train.epochs=1", "train.threads=1", "train.batch_size=16", "train.lr_decay_epochs=[]"]


def _cell(run_dir: Path, *overrides: str) -> Cell:
    return Cell(run_dir, load_config(config_path("ave/psp_fully.yaml"), [*QUICK, *overrides]), run_dir.name)


def _table_lines(md: str) -> list[str]:
    """The table's rows (the header line with the measured training time differs between runs)."""
    return [line for line in md.splitlines() if line.startswith("|")]


def test_a_claim_excludes_others_and_is_released(tmp_path: Path):
    cell = _cell(tmp_path / "cells" / "c" / "seed0")
    with claim(cell) as first:
        with claim(cell) as second:
            assert first and not second
    with claim(cell) as again:
        assert again


def test_a_killed_workers_claim_is_freed(tmp_path: Path):
    cell = _cell(tmp_path / "cells" / "c" / "seed0")
    lock = cell.run_dir.parent / "seed0.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"fh = open({str(lock)!r}, 'a+'); fcntl.flock(fh, fcntl.LOCK_EX); print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with claim(cell) as mine:
            assert not mine
    finally:
        holder.kill()
        holder.wait()
    with claim(cell) as mine:
        assert mine


def test_two_workers_give_the_same_table_as_one(tmp_path: Path, tiny_ave_dir: Path):
    common = dict(seeds=1, quick=True, overrides=["train.epochs=1", "train.threads=1"], log=lambda *_: None)
    one = run_table("losses", tiny_ave_dir, out=tmp_path / "one", workers=1, **common)
    t0 = time.perf_counter()
    two = run_table("losses", tiny_ave_dir, out=tmp_path / "two", workers=2, **common)
    assert time.perf_counter() - t0 < 120
    assert _table_lines(two) == _table_lines(one) and len(_table_lines(one)) == 5
    reports = sorted((tmp_path / "two" / "cells").rglob("report.json"))
    assert len(reports) == 3  # every cell trained exactly once, by one of the two workers
    assert not list((tmp_path / "two").rglob(FAILED))


def test_a_failing_cell_is_recorded_and_the_others_train(tmp_path: Path, tiny_ave_dir: Path):
    good = _cell(tmp_path / "good" / "seed0", "data.max_videos=20")
    bad = _cell(tmp_path / "bad" / "seed0", "data.audio_file=missing.h5")
    failed = run_workers([bad, good], tiny_ave_dir, workers=1, log=lambda *_: None)
    assert failed == [bad] and good.done
    assert "missing.h5" in (bad.run_dir / FAILED).read_text()


def test_a_failed_table_cell_raises_and_a_rerun_retries_it(tmp_path: Path, tiny_ave_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    """A cell whose training raises is recorded (failed.txt), the command fails naming it, and the same command
    again retries that cell (same data, so the same cell folder)."""
    import avloc.engine.workers as workers

    real_fit = workers.fit

    def fit_that_fails_once(*a, **kw):
        monkeypatch.setattr(workers, "fit", real_fit)
        raise RuntimeError("disk hiccup")

    monkeypatch.setattr(workers, "fit", fit_that_fails_once)
    args = dict(seeds=1, quick=True, rows=["CE only"], overrides=["train.epochs=1", "train.threads=1"],
                out=tmp_path / "rep", log=lambda *_: None)
    with pytest.raises(CellsFailed, match=FAILED):
        run_table("losses", tiny_ave_dir, **args)
    failed = list((tmp_path / "rep").rglob(FAILED))
    assert len(failed) == 1 and "disk hiccup" in failed[0].read_text()
    md = run_table("losses", tiny_ave_dir, **args)  # the same command again: the failed cell is retried
    assert "| CE only |" in md and not list((tmp_path / "rep").rglob(FAILED))
    assert (failed[0].parent / "report.json").is_file()


def test_a_torchrun_rank_trains_alone_and_only_rank_0_prints(tmp_path: Path, tiny_ave_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    args = dict(seeds=1, quick=True, rows=["CE only"], overrides=["train.epochs=1", "train.threads=1"])
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    printed: list[str] = []
    assert run_table("losses", tiny_ave_dir, out=tmp_path, log=printed.append, **args) == ""
    assert len(list(tmp_path.rglob("report.json"))) == 1  # rank 1 trained the cell as a single process
    assert not [line for line in printed if line.startswith("###")]
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    md = run_table("losses", tiny_ave_dir, out=tmp_path, log=printed.append, **args)
    assert "| CE only |" in md and sum("training" in line for line in printed) == 1
