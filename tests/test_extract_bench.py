"""``avloc bench extract``: speed rows by stage and engine, fidelity rows against eager float32 (no timing
assertions: the figures depend on the machine)."""

from __future__ import annotations

import json

import pytest
import torch

from avloc.media.engines import installed
from avloc.media.extract_bench import bench_fidelity, bench_speed, combos, cpu_report, parse_combo
from test_extract import make_video

OTHER = "onnxruntime" if installed("onnxruntime") else "openvino" if installed("openvino") else None


def test_speed_rows_split_the_stages_for_each_engine(tmp_path):
    clip = make_video(tmp_path / "c.mp4", seconds=1.0, fps=5)
    before = torch.get_num_threads()
    rows = bench_speed(clip, ["efficientnet_lite0+aisfx"], rounds=1, engines=[("torch", "fp32", "uint8")],
                       frames_per_segment=1, threads=[1, 2])
    assert [r["threads"] for r in rows] == [1, 2] and torch.get_num_threads() == before
    row = rows[0]
    assert (row["engine"], row["precision"], row["resize_precision"]) == ("torch", "fp32", "uint8")
    assert row["x_realtime"] > 0
    assert all(row[f"{k}_s_per_video_s"] > 0 for k in ("decode", "resize", "visual", "audio"))
    report = cpu_report()
    assert report["cpu"] and "torch" in report["versions"] and combos()[0] == ("torch", "fp32", "fp32")
    assert report["torch_cpu_capability"]  # the ISA torch dispatches to, which an environment variable can lower
    assert ("torch", "fp32", "uint8") in combos()


def test_engine_specs_name_the_resize_precision():
    assert parse_combo("openvino:bf16") == ("openvino", "bf16", "fp32")
    assert parse_combo("torch:fp32:uint8") == ("torch", "fp32", "uint8")
    with pytest.raises(ValueError, match="ENGINE:PRECISION"):
        parse_combo("openvino")


@pytest.mark.skipif(OTHER is None, reason="no ONNX engine installed")
def test_fidelity_rows_compare_each_engine_with_eager_float32(tmp_path):
    clips = [make_video(tmp_path / f"c{i}.mp4", seconds=1.0, fps=5, amplitude=0.1 * (i + 1)) for i in range(2)]
    (row,) = bench_fidelity(clips, ["efficientnet_lite0+aisfx"], frames_per_segment=1, engines=[(OTHER, "fp32", "fp32")])
    assert row["engine"] == OTHER and row["videos"] == 2
    assert 0 <= row["visual_rel_err_mean"] <= row["visual_rel_err_max"] < 1e-4
    assert 0 <= row["audio_rel_err_max"] < 1e-4
    json.dumps(row)  # printable as it is


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_extract_lets_openmp_workers_sleep_unless_the_user_chose(preset, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os; from avloc.tools.extract import passive_openmp; passive_openmp(); "
            "print(os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
