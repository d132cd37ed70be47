"""`avloc demo` end to end on a tiny synthetic set: table printed, both models trained, timeline written."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("matplotlib")


def test_demo_small(tmp_path, capsys):
    from avloc.tools.cli import main

    assert main(["demo", "--out", str(tmp_path), "--videos", "40", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| PSP \| \d+\.\d\d \|", out) and re.search(r"\| VSCG \| \d+\.\d\d \|", out)
    png = tmp_path / "timeline.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert str(png) in out
    assert (tmp_path / "runs" / "vscg" / "report.json").is_file()
