"""`avloc demo` end to end on a tiny synthetic set: table printed, both models trained, timeline written."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("matplotlib")


def test_demo_small(tmp_path, capsys):
    from avloc.tools.cli import main

    import torch

    threads = torch.get_num_threads()
    assert main(["demo", "--out", str(tmp_path), "--videos", "40", "--epochs", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "training with 1 torch threads" in out and torch.get_num_threads() == threads
    assert re.search(r"PSP epoch 1/1 \| loss \d", out) and re.search(r"VSCG epoch 1/1 \| loss \d", out)
    assert re.search(r"\| PSP \| \d+\.\d\d \|", out) and re.search(r"\| VSCG \| \d+\.\d\d \|", out)
    png = tmp_path / "timeline.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert str(png) in out
    assert (tmp_path / "runs" / "vscg" / "report.json").is_file() and (tmp_path / "data").is_dir()
    assert f"demo outputs in {tmp_path}" in out
    # a second demo in the same folder replaces the first one's runs instead of refusing them
    assert main(["demo", "--out", str(tmp_path), "--videos", "40", "--epochs", "1", "--threads", "1"]) == 0


def test_demo_keeps_its_outputs_in_runs_demo_by_default():
    from avloc.tools.cli import build_parser

    assert build_parser().parse_args(["demo"]).out == "runs/demo"


def test_make_demo_fixes_the_thread_count_the_readme_table_was_made_with():
    from pathlib import Path

    from avloc.tools.cli import build_parser
    from avloc.tools.demo import DEMO_THREADS

    assert build_parser().parse_args(["demo"]).threads == DEMO_THREADS
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert f"OMP_NUM_THREADS={DEMO_THREADS} $(BIN)/avloc demo --threads {DEMO_THREADS}" in makefile
