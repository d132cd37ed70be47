"""dense_map evaluator: keys, the CAS -> seconds -> mAP glue (via an oracle model), batching, finalize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avloc.data.synth_unav import write_synthetic_unav
from avloc.evaluation.dense_map import PREDICTIONS_FILE, metric_name
from avloc.evaluation.detection import evaluate_detection
from avloc.formats.activitynet import load_ground_truth, load_predictions
from avloc.models.base import AVModel
from avloc.catalog import DATASETS, EVALUATORS, MODELS

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_unav(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tiny_unav")
    write_synthetic_unav(root, videos=30, seed=1)
    return root, DATASETS.create({"name": "unav"}, root)


class OracleModel(AVModel):
    """Outputs the ground truth as its CAS (1 inside annotated segments) and video scores: the evaluator
    must then find the annotated segments again, which tests the step <-> seconds and index bookkeeping."""

    task = "dense"

    def __init__(self, data) -> None:
        super().__init__()
        self.data = data

    def forward(self, batch):
        d = self.data
        idx = batch["index"].numpy()
        t = batch["mask"].shape[1]
        centres = d.offset_sec[idx][:, None] + np.arange(t)[None] * d.step_sec[idx][:, None]  # (B, T)
        cas = np.zeros((len(idx), t, len(d.class_names)), dtype=np.float32)
        for row, v in enumerate(idx):
            sel = d.gt_video == v
            for s, e, c in zip(d.gt_start[sel], d.gt_end[sel], d.gt_label[sel]):
                cas[row, (centres[row] >= s) & (centres[row] <= e), c] = 1.0
        cas = torch.from_numpy(cas) * batch["mask"].unsqueeze(-1)
        video_logits = torch.where(batch["video_labels"] > 0, 10.0, -10.0)
        return {"cas": cas, "video_logits": video_logits}


def test_metric_names():
    assert metric_name(0.1) == "mAP@0.1" and metric_name(0.5) == "mAP@0.5" and metric_name(0.55) == "mAP@0.55"
    assert metric_name(np.linspace(0.1, 0.9, 9)[2]) == "mAP@0.3"


def test_oracle_cas_is_scored_near_perfect(tiny_unav):
    _, data = tiny_unav
    ev = EVALUATORS.create({"name": "dense_map", "tiou": "unav"})
    res = ev(OracleModel(data), data, "test", CPU, batch_size=4)
    assert list(res) == [f"mAP@0.{i}" for i in range(1, 10)] + ["mAP_avg", "num_predictions"]
    assert ev.primary == "mAP_avg"
    assert res["mAP@0.1"] > 0.95 and res["mAP@0.5"] > 0.9
    assert res["mAP_avg"] == pytest.approx(np.mean([res[f"mAP@0.{i}"] for i in range(1, 10)]))


def test_wrong_cas_scores_low_and_batching_does_not_matter(tiny_unav):
    _, data = tiny_unav
    torch.manual_seed(0)
    model = MODELS.create({"name": "mil", **data.model_dims(), "hidden": 8})
    ev = EVALUATORS.create({"name": "dense_map"})
    small, large = ev(model, data, "val", CPU, 3), ev(model, data, "val", CPU, 100)
    assert small == large
    assert small["mAP_avg"] < ev(OracleModel(data), data, "val", CPU, 100)["mAP_avg"] - 0.5


def test_anet_preset_keys(tiny_unav):
    _, data = tiny_unav
    res = EVALUATORS.create({"name": "dense_map", "tiou": "anet"})(OracleModel(data), data, "test", CPU, 8)
    assert [k for k in res if k.startswith("mAP@")] == [metric_name(t) for t in np.linspace(0.5, 0.95, 10)]


def test_finalize_writes_activitynet_results_that_rescore_identically(tiny_unav, tmp_path: Path):
    root, data = tiny_unav
    torch.manual_seed(0)
    model = MODELS.create({"name": "clasp", **data.model_dims(), "hidden": 8})
    ev = EVALUATORS.create({"name": "dense_map"})
    extra = ev.finalize(model, data, tmp_path, CPU, 8)
    assert extra["predictions"] == PREDICTIONS_FILE
    assert set(extra["mAP_table"]) == {f"mAP@0.{i}" for i in range(1, 10)} | {"mAP_avg"}
    # The written file, read back by name (video ids, class names), scores the same against the JSON.
    pred = load_predictions(tmp_path / PREDICTIONS_FILE)
    assert set(pred.video.tolist()) <= {data.video_ids[i] for i in data.splits["test"].tolist()}
    gt = load_ground_truth(root / "unav100_annotations.json", "test")
    again = evaluate_detection(gt, pred, "unav")
    assert again.average_map == pytest.approx(extra["mAP_table"]["mAP_avg"], abs=1e-9)
    assert again.average_map == pytest.approx(ev(model, data, "test", CPU, 8)["mAP_avg"], abs=1e-9)
