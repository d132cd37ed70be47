"""``scripts/gpu_check.sh --device cpu --quick`` (what CI runs of the GPU check) goes through every step and
reports every figure for every run (no timing assertions: speed is measured on a GPU, not here)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_quick(tmp_path: Path):
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu", "--quick",
                           "--json", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "GPU-marked tests" in proc.stdout and "QUICK smoke run" in proc.stdout
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["quick"] is True
    runs = {**res["ave"], **res["dense"]}
    assert {"vscg_fully_fp32", "psp_fully_bf16", "vscg_weak_fp32", "psp_weak_fp32", "clasp_fp32"} <= set(runs)
    for name, m in runs.items():
        assert m["seconds_per_epoch"] > 0 and m["eval_seconds"] > 0 and m["peak_rss_mib"] > 0, name
        assert m["eval_videos"] >= 1 and m["train_videos"] >= 1, name
