"""`avloc reproduce`: every table resolves, a quick table runs through the CLI, finished cells are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from avloc.tools.cli import main
from avloc.config import load_config
from avloc.tools.paths import config_path
from avloc.tools.reproduce import TABLES, format_table
from avloc.tools.tables.table import Run, Table


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_cell_config_resolves(name):
    table = TABLES[name]
    assert table.runs
    for run in table.runs:
        assert set(run.columns) <= set(table.columns)
        load_config(config_path(run.config), [*table.quick_overrides, *run.overrides, "train.seed=0"])


def test_format_table_mean_std_and_paper():
    t = Table("x", "T", ["a"], [Run("r", "ave/psp_fully.yaml", {"a": "test_acc"}, paper={"a": 77.8})])
    md = format_table(t, {("r", "a"): [0.5, 0.7]}, seeds=2, quick=False, seconds=60)
    assert "| r | 60.00 ± 14.14 (77.8) |" in md and "Mean ± std over 2 seeds" in md
    one = format_table(t, {("r", "a"): [0.5]}, seeds=1, quick=False, seconds=60)
    assert "| r | 50.00 (77.8) |" in one and "One seed" in one


def test_quick_losses_table_through_cli(tmp_path: Path, capsys):
    from avloc.data.synth_ave import write_synthetic_ave

    data = tmp_path / "data"
    write_synthetic_ave(data, videos=40, seed=3, dtype="float32")
    out = tmp_path / "rep"
    args = ["reproduce", "losses", "--data", str(data), "--seeds", "1", "--out", str(out), "--quick",
            "train.epochs=1", "train.threads=1"]
    assert main(args) == 0
    md = (out / "losses.md").read_text()
    assert "CE + negative pair filter" in md and "QUICK" in md
    reports = sorted(out.rglob("report.json"))
    assert len(reports) == 3
    stamps = [p.stat().st_mtime_ns for p in reports]
    capsys.readouterr()
    assert main(args) == 0  # second call: every cell is done, nothing retrains
    assert "training" not in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in reports] == stamps


def test_tables_share_cells_with_equal_configs(tmp_path: Path, capsys):
    """Table III's "full VSCG" is Table V's pair-psp cell (the shipped VSCG loss): the second table reuses it
    instead of retraining."""
    from avloc.data.synth_ave import write_synthetic_ave

    data = tmp_path / "data"
    write_synthetic_ave(data, videos=40, seed=3, dtype="float32")
    out = tmp_path / "rep"
    common = ["--data", str(data), "--seeds", "1", "--out", str(out), "--quick", "train.epochs=1", "train.threads=1"]
    assert main(["reproduce", "losses", "--rows", "CE + PSP pair loss", *common]) == 0
    capsys.readouterr()
    assert main(["reproduce", "ablation", "--rows", "full VSCG", *common]) == 0
    printed = capsys.readouterr().out
    assert "training" not in printed and "| full VSCG |" in printed
    assert len(list((out / "cells").rglob("report.json"))) == 1
    assert main(["reproduce", "ablation", "--rows", "w/o ESCM", *common]) == 0  # a different config trains
    assert len(list((out / "cells").rglob("report.json"))) == 2


def test_cell_folder_ignores_keys_that_do_not_change_the_numbers(tmp_path: Path):
    from avloc.tools.reproduce import cell_dir

    run = Run("r", "ave/psp_fully.yaml", {"a": "test_acc"})

    def folder(*overrides: str) -> Path:
        return cell_dir(tmp_path, run, load_config(config_path(run.config), ["train.seed=0", *overrides]), "d1")

    base = folder()
    assert folder("train.eval_batch_size=7", "train.threads=1", "train.progress=false") == base
    assert folder("train.lr=0.5").parent != base.parent
    cfg = load_config(config_path(run.config), ["train.seed=0"])
    assert cell_dir(tmp_path, run, cfg, "d2").parent != base.parent  # other data: another cell
    assert folder("train.seed=1").parent == base.parent and folder("train.seed=1") != base


def test_dense_rows_share_one_common_post_processing(tmp_path: Path):
    """Every model row "under the common post-processing" resolves to the same proposal settings, whatever
    its shipped config says; an "own" row is its shipped config, and shares the common row's cell where the
    two are equal (linear_mil, MIL, HAN), not where they differ (CLASP: min-max off)."""
    import dataclasses

    from avloc.evaluation.proposals import ProposalConfig
    from avloc.tools.reproduce import cell_dir
    from avloc.tools.tables.dense import COMMON_ROWS, DENSE, MODELS, OWN_ROWS

    runs = {r.row: r for r in DENSE.runs}
    keys = [f.name for f in dataclasses.fields(ProposalConfig)]

    def resolved(row: str):
        return load_config(config_path(runs[row].config), [*runs[row].overrides, "train.seed=0"])

    common = [resolved(row) for row in COMMON_ROWS]
    assert {c.name("model") for c in common} == {"linear_mil", "mil", "han_dense", "clasp"}
    settings = [{k: getattr(c.eval, k) for k in keys} for c in common]
    assert all(s == settings[0] for s in settings) and settings[0]["minmax"] is True
    for (_, cfg_name, _), common_row, own_row in zip(MODELS, COMMON_ROWS, OWN_ROWS):
        shipped = load_config(config_path(cfg_name), ["train.seed=0"])
        assert resolved(own_row).to_dict() == shipped.to_dict()
        same = {k: getattr(shipped.eval, k) for k in keys} == settings[0]
        cells = {cell_dir(tmp_path, runs[row], resolved(row), "d") for row in (common_row, own_row)}
        assert len(cells) == (1 if same else 2), own_row
    assert resolved(OWN_ROWS[-1]).eval.minmax is False  # CLASP's own pipeline is the one that differs
