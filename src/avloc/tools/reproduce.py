"""``avloc reproduce TABLE``: train every cell of a paper table over seeds and print mean ± std.

A table is a list of runs (a shipped config plus overrides); each run fills one or more columns of its row
from keys of its ``report.json``. Every training run lives in ``OUT/cells/<config>-<hash>/seed<k>``, named by a
hash of its fully resolved config, so a cell that two tables share (the plain baselines of Tables I and IV, the
full VSCG of Tables I, III and V) trains once; finished cells are skipped and interrupted ones resumed, so the
command can be re-run after a kill. Data sets are loaded once and shared by all runs that use them.
``--workers N`` (and ``torchrun`` / ``srun`` ranks) spread the cells over processes that claim them one by
one (:mod:`avloc.engine.workers`); rank 0 prints the table once every cell is done.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from pathlib import Path
from typing import Any

from avloc.config import Config, load_config
from avloc.engine.build import RESUME_FREE_KEYS
from avloc.engine.run_folder import data_fingerprint
from avloc.engine.workers import Cell, launch_from_env, run_workers
from avloc.registry import ConfigError
from avloc.tools.paths import config_path
from avloc.tools.tables import ave, dense
from avloc.tools.tables.table import Run, Table

TABLES: dict[str, Table] = {**ave.TABLES, **dense.TABLES}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def cell_dir(out: Path, run: Run, cfg: Config, data_digest: str) -> Path:
    """``out/cells/<config stem>-<hash of the resolved config without seed, and of the data>/seed<k>``: equal
    configs on the same data share it. Keys that never change the numbers (those a resumed run may change
    too) are left out of the hash; ``data_digest`` (the data folder's fingerprint) keeps two datasets apart."""
    resolved = cfg.to_dict()
    skip = {"seed"} | RESUME_FREE_KEYS
    train = {k: v for k, v in resolved["train"].items() if k not in skip}
    key = json.dumps({**resolved, "train": train, "data_digest": data_digest}, sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return out / "cells" / f"{_slug(Path(run.config).stem)}-{digest}" / f"seed{cfg.train.seed}"


def run_table(name: str, data_root: Path, seeds: int = 3, out: Path = Path("runs/reproduce"),
              quick: bool = False, overrides: list[str] | None = None, log: Any = print,
              rows: list[str] | None = None, workers: int = 1) -> str:
    """Train (or resume / skip) every run x seed under ``out/cells``, then print and write ``out/<name>.md``.

    ``rows`` restricts the table to those row names (case-insensitive); the others print as "–".
    ``workers`` local processes train the cells (per rank under torchrun / srun); only rank 0 prints.
    """
    if name not in TABLES:
        raise ConfigError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
    table = TABLES[name]
    out = Path(out)
    results: dict[tuple[str, str], list[float]] = {}
    jobs = []
    wanted = {r.lower() for r in rows} if rows else None
    if wanted is not None and not wanted & {r.row.lower() for r in table.runs}:
        raise ConfigError(f"none of the rows {sorted(rows or [])} is in table {name!r}")
    data_digest = data_fingerprint(data_root, exclude=out)["digest"]
    for run in table.runs:
        if wanted is not None and run.row.lower() not in wanted:
            continue
        for seed in range(seeds):
            extra = [*(table.quick_overrides if quick else []), *(overrides or []), *run.overrides,
                     f"train.seed={seed}"]
            cfg = load_config(config_path(run.config), extra)
            cfg.train.progress = False
            rdir = cell_dir(out, run, cfg, data_digest)
            jobs.append((json.dumps(cfg.to_dict()["data"], sort_keys=True), run, rdir, cfg))
    # Train grouped by data config (stable), so each data set is read once; results keep table order.
    cells = list({rdir: Cell(rdir, cfg, f"[{name}] {run.row} seed {cfg.train.seed}")
                  for key, run, rdir, cfg in sorted(jobs, key=lambda job: job[0])}.values())
    failed = run_workers([c for c in cells if not c.done], data_root, workers=workers, log=log)
    if launch_from_env().rank != 0:
        return ""
    if failed:
        raise CellsFailed("cells failed (the others are kept; re-run to retry them): "
                          + ", ".join(str(c.run_dir / "failed.txt") for c in failed))
    train_seconds: dict[Path, float] = {}  # per distinct cell (shared cells count once)
    for _, run, rdir, _ in jobs:
        report_path = rdir / "report.json"
        report = json.loads(report_path.read_text())
        train_seconds[rdir] = float(report.get("seconds_per_epoch", 0.0)) * int(report.get("epochs", 0))
        for col, key in run.columns.items():
            if key not in report and key.split(".")[0] not in report:
                raise ConfigError(f"{report_path} has no key {key!r}")
            results.setdefault((run.row, col), []).append(_lookup(report, key))
    md = format_table(table, results, seeds, quick, sum(train_seconds.values()))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(md)
    log(md)
    return md


class CellsFailed(RuntimeError):
    """Some cells of a table raised while training; each one's traceback is in its ``failed.txt``."""


def _lookup(report: dict[str, Any], key: str) -> float:
    """``"test.mAP@0.5"`` -> report["test"]["mAP@0.5"]: a key that itself holds dots is matched whole first."""
    if key in report:
        return float(report[key])
    head, _, rest = key.partition(".")
    if not rest:
        raise KeyError(key)
    return _lookup(report[head], rest)


def format_table(table: Table, results: dict[tuple[str, str], list[float]], seeds: int, quick: bool,
                 seconds: float) -> str:
    """Markdown: mean ± std over seeds per cell, the paper's number beside it where known."""
    rows = list(dict.fromkeys(r.row for r in table.runs))
    paper = {(r.row, c): v for r in table.runs for c, v in r.paper.items()}
    lines = [f"### {table.title}", "",
             (f"Mean ± std over {seeds} seeds" if seeds > 1 else "One seed") + " of the val-selected test score"
             f"{' (QUICK smoke run: few epochs)' if quick else ''}; (paper) = published number"
             f"{' ' + table.paper_source if table.paper_source else ''}. Training time of its cells (from their "
             f"reports; a cell shared with another table counts here too): {seconds / 60:.1f} min.", "",
             "| | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    for row in rows:
        cells = []
        for col in table.columns:
            vals = results.get((row, col))
            if not vals:
                cells.append("–")
                continue
            mean = statistics.fmean(vals) * table.scale
            cell = f"{mean:.2f}"  # one seed: no spread to show
            if len(vals) > 1:
                cell += f" ± {statistics.stdev(vals) * table.scale:.2f}"
            if (row, col) in paper:
                cell += f" ({paper[(row, col)]:.1f})"
            cells.append(cell)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
