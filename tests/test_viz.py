"""The timeline PNG renders with the expected size and content."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def test_timeline_png(tmp_path):
    from avloc.tools.viz import plot_ave_timelines

    truth = np.array([[28, 1, 1, 1, 28, 28, 28, 28, 28, 28], [2] * 10])
    pred = np.array([[28, 1, 1, 28, 28, 28, 28, 28, 28, 28], [2] * 9 + [5]])
    names = [f"class{i}" for i in range(28)] + ["background"]
    path = plot_ave_timelines(["vid_a", "vid_b"], truth, {"PSP": pred, "VSCG": truth}, names, tmp_path / "t.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    width = int.from_bytes(data[16:20], "big")
    assert width == 990  # 9 inches at 110 dpi
