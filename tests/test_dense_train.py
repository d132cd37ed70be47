"""Dense W-DAVEL training end to end: the CLI on a tiny synthetic UnAV set, and learning from weak labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avloc.tools.cli import main
from avloc.config import load_config
from avloc.data.synth_unav import SynthUnavConfig, write_synthetic_unav
from avloc.engine.loop import fit
from avloc.catalog import DATASETS
from avloc.evaluation.detection import evaluate_detection
from avloc.formats.activitynet import load_ground_truth, load_predictions

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "unav"
SMALL = ["train.batch_size=8", "train.eval_batch_size=16"]


def width(method: str, hidden: int) -> list[str]:
    """``model.hidden`` for the models that have a hidden width (``linear_mil`` has none)."""
    return [] if method == "linear_mil" else [f"model.hidden={hidden}"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dense_train")
    write_synthetic_unav(root, videos=30, seed=0)
    return root


@pytest.mark.parametrize("method", ["linear_mil", "mil", "clasp"])
def test_cli_train_writes_predictions_and_map_table(tiny_dir: Path, tmp_path: Path, method: str, capsys):
    out = tmp_path / "run"
    rc = main(["train", str(CONFIGS / f"{method}.yaml"), "--data", str(tiny_dir), "--out", str(out),
               "train.epochs=2", *SMALL, *width(method, 16)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == method and report["data"] == "unav"
    for split in ("val", "test"):
        assert set(report[split]) >= {f"mAP@0.{i}" for i in range(1, 10)} | {"mAP_avg"}
    assert report["test_mAP_avg"] == report["test"]["mAP_avg"] == report["mAP_table"]["mAP_avg"]
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and "val_mAP@0.5" in rows[-1]
    pred = load_predictions(out / "predictions_test.json")
    gt = load_ground_truth(tiny_dir / "unav100_annotations.json", "test")
    assert evaluate_detection(gt, pred).average_map == pytest.approx(report["test_mAP_avg"], abs=1e-9)
    assert "mAP_avg" in capsys.readouterr().out


@pytest.fixture(scope="module")
def easy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Few classes, 1 s steps, clean events and no distractors: weak labels suffice to localize."""
    root = tmp_path_factory.mktemp("dense_easy")
    cfg = SynthUnavConfig(num_classes=4, feat_stride=25, num_frames=25, distractor_rate=0.0, p_hard=0.0,
                          max_duration=30.0, p_full=0.0)
    write_synthetic_unav(root, videos=120, seed=0, cfg=cfg)
    return root


@pytest.mark.parametrize("method", ["linear_mil", "mil", "clasp"])
def test_weak_training_learns_to_localize(easy_dir: Path, tmp_path: Path, method: str):
    cfg = load_config(CONFIGS / f"{method}.yaml", [
        *width(method, 32), "train.epochs=15", "train.batch_size=8", "train.lr=3e-3", "train.lr_decay_epochs=[]",
        "train.eval_every=15", "data.feat_stride=25", "data.num_frames=25"])
    cfg.train.progress = False
    report = fit(cfg, easy_dir, tmp_path / "run", log=lambda *_: None)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.7 * rows[0]["train_loss"]
    assert report["val"]["mAP@0.1"] > 0.35
    assert report["test_mAP_avg"] > 0.2
    assert np.isfinite(report["test_mAP_avg"])


def test_bench_dense_reports_epoch_time_bound_and_rss(tiny_dir: Path, tmp_path: Path):
    from avloc.tools.bench_dense import bench_dense, unav_scale_features

    data = unav_scale_features(50, 10, audio_dim=4, visual_dim=6, num_classes=3)
    assert data.model_dims() == {"audio_dim": 4, "visual_dim": 6, "num_classes": 3}
    assert data.visual.dtype == torch.float16 and data.batch(torch.tensor([0, 1]))["visual"].dtype == torch.float32
    assert 10 / 0.32 - 1 <= int(data.lengths.min()) and int(data.lengths.max()) <= 60 / 0.32 + 1  # 0.32 s grid
    assert torch.all(data.video_labels.sum(1) >= 1) and len(data.splits["val"]) == 10
    assert set(data.ground_truth("val").video.tolist()) <= set(range(50, 60))
    res = bench_dense(None, videos=6, val_videos=3, epochs=1, models=("mil",), json_out=str(tmp_path / "b.json"))
    m = res["models"]["mil"]
    assert res["train_videos"] == 6 and res["val_videos"] == 3 and m["steps_per_epoch"] == 1
    for key in ("seconds_per_epoch", "flops_per_epoch", "bound_seconds", "ratio_to_bound", "eval_val_seconds"):
        assert m[key] > 0, key
    steps = bench_dense(None, videos=70, val_videos=2, epochs=1, models=("mil",), steps=1)["models"]["mil"]
    assert steps["timed_steps"] == 1 and steps["steps_per_epoch"] == 3 and steps["extrapolated"]
    assert res["peak_rss_mb"] > 0 and json.loads((tmp_path / "b.json").read_text())["models"]["mil"]["params"] > 0
    on_disk = bench_dense(tiny_dir, epochs=1, models=("clasp",))
    assert on_disk["train_videos"] == len(DATASETS.create({"name": "unav"}, tiny_dir).splits["train"])
    assert on_disk["models"]["clasp"]["seconds_per_epoch"] > 0
